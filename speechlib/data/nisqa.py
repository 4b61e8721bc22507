"""NISQA corpus: its csv files (columns include filepath_deg and mos) -> Kaldi data dirs.

The released NISQA_Corpus has one csv per set (e.g. NISQA_TRAIN_SIM/NISQA_TRAIN_SIM_file.csv)
whose `filepath_deg` is relative to the corpus root. The mini corpus's proxy MOS sets are
written in the same format, so the same reader prepares both. A bad row (missing file,
non-numeric or out-of-range MOS) stops prep with one line naming the csv and the row.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterable

from speechlib.io.errors import InputError
from speechlib.io.kaldi import write_table

MOS_RANGE = (1.0, 5.0)
NISQA_SETS = {"train": "NISQA_TRAIN_SIM", "valid": "NISQA_VAL_SIM", "test": "NISQA_TEST_FOR"}


def utt_id(filepath: str) -> str:
    """A Kaldi-safe key from the degraded file's relative path."""
    stem = os.path.splitext(filepath)[0]
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem.replace(os.sep, "-"))


def checked_row(name: str, path: Path, score: str | None, source: str, line: int,
                mos_range: tuple[float, float] = MOS_RANGE) -> float:
    """The row's MOS as a float, after checking the file exists and the score is a number in range;
    otherwise one InputError naming the list, the line and the row."""
    if not name or not path.is_file():
        raise InputError(f"row '{name}': file {path} does not exist", source, line)
    try:
        mos = float(score)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"row '{name}': MOS '{score}' is not a number", source, line) from None
    if not mos_range[0] <= mos <= mos_range[1]:
        raise InputError(f"row '{name}': MOS {mos} is outside {mos_range[0]}..{mos_range[1]}", source, line)
    return mos


def read_nisqa_csv(csv_path: str | os.PathLike, root: str | os.PathLike,
                   mos_range: tuple[float, float] = MOS_RANGE) -> list[tuple[str, Path, float]]:
    """[(utt, absolute wav path, mos)] for every row, checked."""
    csv_path, root = Path(csv_path), Path(root)
    if not csv_path.is_file():
        raise InputError("NISQA csv does not exist", str(csv_path))
    rows = []
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"filepath_deg", "mos"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"missing column(s) {sorted(missing)} (NISQA csv needs filepath_deg and mos)",
                             str(csv_path), 1)
        for line, row in enumerate(reader, 2):
            rel = (row["filepath_deg"] or "").strip()
            mos = checked_row(rel, root / rel, row["mos"], str(csv_path), line, mos_range)
            rows.append((utt_id(rel), (root / rel).resolve(), mos))
    if not rows:
        raise InputError("no rows", str(csv_path))
    return rows


def write_mos_datadir(rows: Iterable[tuple[str, Path, float]], data_dir: str | os.PathLike) -> int:
    """wav.scp, utt2mos, utt2spk (each file its own speaker), spk2utt."""
    rows = list(rows)
    out = Path(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "wav.scp", {utt: str(path) for utt, path, _ in rows})
    write_table(out / "utt2mos", {utt: f"{mos:.4f}" for utt, _, mos in rows})
    write_table(out / "utt2spk", {utt: utt for utt, _, _ in rows})
    write_table(out / "spk2utt", {utt: utt for utt, _, _ in rows})
    return len(rows)


def find_set_csv(root: str | os.PathLike, set_name: str) -> Path:
    """<root>/<SET>/<SET>_file.csv as released (NISQA_TEST_FOR has the same layout)."""
    path = Path(root) / set_name / f"{set_name}_file.csv"
    if not path.is_file():
        raise InputError(f"db.sh: NISQA={root}: expected {set_name}/{set_name}_file.csv inside it")
    return path


def write_nisqa_csv(path: str | os.PathLike, rows: Iterable[dict[str, object]]) -> None:
    """Write rows (dicts holding at least filepath_deg and mos) in NISQA's csv layout."""
    rows = list(rows)
    columns = ["db", "con", "filepath_deg", "filepath_ref", "con_description", "mos"]
    extra = sorted({k for row in rows for k in row} - set(columns))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns + extra)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
