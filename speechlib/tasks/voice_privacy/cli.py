"""Reading one option ahead of the stage's own parsing (stages named after an option).
(protect/restore live in apply.py, on the shared inference front end.)"""
from __future__ import annotations

import sys


def argv_option(name: str, default: str | None = None, argv: list[str] | None = None) -> str | None:
    """The value after `--name` in argv (stage entry points whose saved-config name depends on it,
    e.g. train_speaker_white vs train_speaker_black), before hyperpyyaml parses the rest."""
    argv = sys.argv if argv is None else argv
    for index, arg in enumerate(argv[:-1]):
        if arg == f"--{name}":
            return argv[index + 1]
    return default

