"""VCC2018 listening-test MOS -> train/valid/test Kaldi data dirs.

The VCC2018 MOS release as used by MOSNet: a list `mos_list.txt` of `<wav name>,<mean MOS>` lines
and a directory of the converted wavs. The paper uses 5400 / 600 / 500 files for train / valid /
test but does not say which; we draw the split with a fixed seed (after sorting the names), so
it is the same on every machine.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from speechlib.data.nisqa import MOS_RANGE, checked_row, utt_id
from speechlib.io.errors import InputError

PAPER_SPLIT = (5400, 600, 500)


def read_mos_list(list_path: str | os.PathLike, wav_dir: str | os.PathLike,
                  mos_range: tuple[float, float] = MOS_RANGE) -> list[tuple[str, Path, float]]:
    list_path, wav_dir = Path(list_path), Path(wav_dir)
    if not list_path.is_file():
        raise InputError("VCC2018 MOS list does not exist", str(list_path))
    rows = []
    for line_no, line in enumerate(list_path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 2:
            raise InputError(f"expected '<wav>,<mos>', got '{line}'", str(list_path), line_no)
        name, score = parts
        path = wav_dir / name
        mos = checked_row(name, path, score, str(list_path), line_no, mos_range)
        rows.append((utt_id(name), path.resolve(), mos))
    if not rows:
        raise InputError("no rows", str(list_path))
    return rows


def split_rows(rows: list, sizes: tuple[int, int, int], seed: int) -> tuple[list, list, list]:
    """Train / valid / test of the given sizes, drawn with `seed` after sorting by key."""
    if sum(sizes) > len(rows):
        raise InputError(f"VCC2018: split {sizes} needs {sum(sizes)} files, the list has {len(rows)}")
    ordered = sorted(rows, key=lambda row: row[0])
    perm = np.random.default_rng(seed).permutation(len(ordered))
    picked = [ordered[i] for i in perm]
    a, b, c = sizes
    return picked[:a], picked[a:a + b], picked[a + b:a + b + c]
