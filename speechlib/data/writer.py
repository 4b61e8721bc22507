"""Write a whole Kaldi data dir at once: every table sorted, spk2utt derived, swapped in atomically.

Every prep stage ends by writing a data dir; doing it here keeps spk2utt consistent with
utt2spk by construction and means a killed prep never leaves half a directory behind.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from speechlib.io.atomic import atomic_directory
from speechlib.io.kaldi import write_table


def spk2utt_from(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Invert utt2spk; utterance lists come out C-sorted."""
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return spk2utt


def write_data_dir(dest: str | os.PathLike, utt2spk: Mapping[str, str],
                   tables: Mapping[str, Mapping[str, object]],
                   spk2gender: Mapping[str, str] | None = None, validate: bool = True) -> Path:
    """Write utt2spk, spk2utt, every `tables` entry (e.g. "wav.scp", "text", "utt2lang") and
    spk2gender (restricted to the speakers present) into `dest`, replacing it as a whole.

    `validate` runs the Kaldi rules (without opening audio) on the new dir before it replaces
    the old one, so a broken prep fails where it happened instead of in a later stage.
    """
    from speechlib.data.datadir import validate_data_dir

    spk2utt = spk2utt_from(utt2spk)
    with atomic_directory(dest) as tmp:
        write_table(tmp / "utt2spk", utt2spk)
        write_table(tmp / "spk2utt", spk2utt)
        for name, table in tables.items():
            write_table(tmp / name, table)
        if spk2gender is not None:
            write_table(tmp / "spk2gender", {spk: spk2gender[spk] for spk in spk2utt})
        if validate:
            validate_data_dir(tmp, check_audio=False, require_text="text" in tables)
    return Path(dest)
