#!/usr/bin/env python3
"""Kaldi's slurm.pl for this repository: JOB=1:N as one Slurm job array. See speechlib/launch/slurm.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
from speechlib.launch.slurm import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
