"""Input/output: atomic writes, Kaldi table files, audio (files and `cmd |` pipes)."""
