#!/usr/bin/env python3
"""Kaldi's run.pl for this repository: run JOB=1:N as local processes. See speechlib/launch/local.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
from speechlib.launch.local import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
