"""NISQA corpus: its csv files -> Kaldi data dirs.

The released NISQA_Corpus has one csv for everything, `NISQA_corpus_file.csv`, whose `db`
column names the set (NISQA_TRAIN_SIM, NISQA_VAL_SIM, NISQA_TEST_FOR, ...), and one csv per set
(e.g. NISQA_TRAIN_SIM/NISQA_TRAIN_SIM_file.csv); both have the columns of NISQA_COLUMNS and a
`filepath_deg` relative to the corpus root. The corpus file is read when present, the per-set
csv otherwise. The mini corpus's MOS sets are written in the same layout, so the same reader
prepares both. A bad row (missing file, non-numeric or out-of-range MOS) stops prep with one line
naming the csv and the row.
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
CORPUS_FILE = "NISQA_corpus_file.csv"
# column order of the released csv files
NISQA_COLUMNS = ["db", "con", "file", "con_description", "filename_deg", "filename_ref", "source", "lang",
                 "votes", "mos", "noi", "col", "dis", "loud", "noi_std", "col_std", "dis_std", "loud_std",
                 "mos_std", "filepath_deg", "filepath_ref"]


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
                   mos_range: tuple[float, float] = MOS_RANGE, db: str | None = None) -> list[tuple[str, Path, float]]:
    """[(utt, absolute wav path, mos)] for every row (only rows whose `db` is `db` when given), checked."""
    csv_path, root = Path(csv_path), Path(root)
    if not csv_path.is_file():
        raise InputError("NISQA csv does not exist", str(csv_path))
    rows = []
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"filepath_deg", "mos", *(["db"] if db else [])} - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"missing column(s) {sorted(missing)} (NISQA csv needs filepath_deg and mos)",
                             str(csv_path), 1)
        for line, row in enumerate(reader, 2):
            if db is not None and (row["db"] or "").strip() != db:
                continue
            rel = (row["filepath_deg"] or "").strip()
            mos = checked_row(rel, root / rel, row["mos"], str(csv_path), line, mos_range)
            rows.append((utt_id(rel), (root / rel).resolve(), mos))
    if not rows:
        raise InputError(f"no rows{f' with db {db}' if db else ''}", str(csv_path))
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
        raise InputError(f"db.sh: NISQA={root}: expected {CORPUS_FILE} or {set_name}/{set_name}_file.csv inside it")
    return path


def read_nisqa_set(root: str | os.PathLike, set_name: str) -> list[tuple[str, Path, float]]:
    """The rows of one set: from NISQA_corpus_file.csv (its `db` column) when the corpus has it,
    else from the set's own csv."""
    corpus = Path(root) / CORPUS_FILE
    if corpus.is_file():
        return read_nisqa_csv(corpus, root, db=set_name)
    return read_nisqa_csv(find_set_csv(root, set_name), root)


def write_nisqa_csv(path: str | os.PathLike, rows: Iterable[dict[str, object]]) -> None:
    """Write rows (dicts holding at least filepath_deg and mos) in NISQA's csv layout (NISQA_COLUMNS,
    missing values empty)."""
    rows = list(rows)
    extra = sorted({k for row in rows for k in row} - set(NISQA_COLUMNS))
    if extra:
        raise ValueError(f"columns {extra} are not NISQA columns")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=NISQA_COLUMNS, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
