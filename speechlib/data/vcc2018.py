r"""VCC2018 listening-test MOS -> train/valid/test Kaldi data dirs.

Two layouts are read. The official release, `vcc2018_listening_test_scores/vcc2018_evaluation_mos.txt`:
one row per rating, comma-separated, no header, 16 fields (test id, user id, set id, sentence index,
system id, right system id, source speaker, target speaker, task, same/different ground truth,
MOS 1-5, similarity, blank, time stamp, left audio sample, right audio sample; `\N` for "none");
the recipe averages the ratings of each audio sample. And MOSNet's derived list `mos_list.txt` of
`<wav name>,<mean MOS>` lines. Both next to a directory of the converted wavs. The paper uses 5400 / 600 / 500 files for train / valid /
test but does not say which; we draw the split with a fixed seed (after sorting the names), so
it is the same on every machine.
"""
from __future__ import annotations

import csv
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


EVALUATION_FIELDS = 16
MOS_FIELD, AUDIO_FIELD = 10, 14


def read_evaluation_mos(ratings_path: str | os.PathLike, wav_dir: str | os.PathLike
                        ) -> list[tuple[str, Path, float]]:
    """Average the raw ratings of `vcc2018_evaluation_mos.txt` per audio sample: [(utt, wav, mean)].

    Every rating must be an integer 1..5 and every rated sample a file in `wav_dir`; otherwise one
    InputError names the file, the line and what is wrong.
    """
    ratings_path, wav_dir = Path(ratings_path), Path(wav_dir)
    if not ratings_path.is_file():
        raise InputError("VCC2018 ratings file does not exist", str(ratings_path))
    sums: dict[str, list[float]] = {}
    first_line: dict[str, int] = {}
    with open(ratings_path, newline="", encoding="utf-8") as handle:
        for line_no, fields in enumerate(csv.reader(handle), 1):
            if not fields or not any(f.strip() for f in fields):
                continue
            if len(fields) != EVALUATION_FIELDS:
                raise InputError(f"expected {EVALUATION_FIELDS} comma-separated fields, got {len(fields)}",
                                 str(ratings_path), line_no)
            name, score = fields[AUDIO_FIELD].strip(), fields[MOS_FIELD].strip()
            if score not in {"1", "2", "3", "4", "5"}:
                raise InputError(f"sample '{name}': rating '{score}' is not an integer 1..5", str(ratings_path),
                                 line_no)
            sums.setdefault(name, [0.0, 0.0])
            sums[name][0] += float(score)
            sums[name][1] += 1
            first_line.setdefault(name, line_no)
    rows = []
    for name in sorted(sums):
        path = wav_dir / name
        if not path.is_file():
            raise InputError(f"sample '{name}': file {path} does not exist", str(ratings_path), first_line[name])
        total, count = sums[name]
        rows.append((utt_id(name), path.resolve(), total / count))
    if not rows:
        raise InputError("no ratings", str(ratings_path))
    return rows


def read_vcc2018(root: str | os.PathLike) -> tuple[list[tuple[str, Path, float]], str]:
    """Rows of a VCC2018 directory: the official ratings when present (averaged here), else
    MOSNet's mos_list.txt; wavs in `wav/` (MOSNet) or the release's `mnt/sysope/test_files/testVCC2/`."""
    root = Path(root)
    wav_dir = next((d for d in (root / "wav", root / "mnt" / "sysope" / "test_files" / "testVCC2") if d.is_dir()),
                   root / "wav")
    for ratings in (root / "vcc2018_listening_test_scores" / "vcc2018_evaluation_mos.txt",
                    root / "vcc2018_evaluation_mos.txt"):
        if ratings.is_file():
            return read_evaluation_mos(ratings, wav_dir), "subjective MOS (VCC2018 ratings averaged per file)"
    if (root / "mos_list.txt").is_file():
        return read_mos_list(root / "mos_list.txt", wav_dir), "subjective MOS (VCC2018, MOSNet's mos_list.txt)"
    raise InputError(f"db.sh: VCC2018={root}: expected vcc2018_listening_test_scores/vcc2018_evaluation_mos.txt "
                     "or mos_list.txt inside it")


def split_rows(rows: list, sizes: tuple[int, int, int], seed: int) -> tuple[list, list, list]:
    """Train / valid / test of the given sizes, drawn with `seed` after sorting by key."""
    if sum(sizes) > len(rows):
        raise InputError(f"VCC2018: split {sizes} needs {sum(sizes)} files, the list has {len(rows)}")
    ordered = sorted(rows, key=lambda row: row[0])
    perm = np.random.default_rng(seed).permutation(len(ordered))
    picked = [ordered[i] for i in perm]
    a, b, c = sizes
    return picked[:a], picked[a:a + b], picked[a + b:a + b + c]
