"""egs/voice_privacy: speaker adversarial perturbation, generation and removal (Guo et al.).

A perturbation generator (SSED) hides the speaker from a speaker model; a removal module of the
same structure, trained jointly, predicts the reverse perturbation and restores the recording.
Stage entry points: prepare, train_speaker, train, protect_sets, asv, quality, report; the
commands a user runs on their own recordings: protect and restore.
"""
