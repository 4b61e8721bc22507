"""Data-dir rules and corpus preparation (LibriSpeech, WHAM!, DNS, mini corpus, ...)."""
