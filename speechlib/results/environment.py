"""Describe where a result came from: date, git revision, package versions, device, corpus.

Cheap to call (no `pip freeze`): it asks the already imported modules for their versions.
"""
from __future__ import annotations

import datetime
import importlib
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def git_revision(root: Path = REPO_ROOT) -> str:
    """Short hash of HEAD, with `-dirty` when tracked code has uncommitted changes.

    Generated results (RESULTS.md, published figures) are left out: a recipe run rewrites them,
    and they would otherwise mark every later stage of the same run as dirty.
    """
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":(exclude,glob)**/RESULTS.md", ":(exclude,glob)egs/*/figures/**"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def package_version(name: str) -> str:
    try:
        return str(importlib.import_module(name).__version__)
    except Exception:  # not installed, or no __version__: say so rather than fail a stage
        return "not installed"


def device_description() -> str:
    try:
        import torch
    except ImportError:
        return "cpu"
    if torch.cuda.is_available():
        names = {torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}
        return f"{torch.cuda.device_count()} x {', '.join(sorted(names))}"
    return f"cpu ({os.cpu_count()} cores)"


def describe_environment(corpus: str) -> dict[str, str]:
    """The environment block of RESULTS.md and of every exp dir's versions.json."""
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git": git_revision(),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "torch": package_version("torch"),
        "torchaudio": package_version("torchaudio"),
        "speechbrain": package_version("speechbrain"),
        "numpy": package_version("numpy"),
        "device": device_description(),
        "corpus": corpus,
        "command": " ".join(sys.argv),
    }
