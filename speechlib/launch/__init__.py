"""Launching work: Kaldi-style job arrays (local processes or Slurm) and multi-GPU training."""
