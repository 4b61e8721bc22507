"""webMUSHRA results (audiolabs/webMUSHRA): `results/<testId>/mushra.csv`, written by its
service/write.php with the header

    session_test_id,<participant fields...>,trial_id,rating_stimulus,rating_score,rating_time,rating_comment

The participant fields are those the experiment's YAML asks for (e.g. email, age, gender; newer
versions add session_uuid). The listener is identified by `listener_column` (default: the first
participant field). The hidden reference is the stimulus named `reference`; anchors and
conditions carry the names given in the experiment's YAML. Audio paths come from a mapping
`{(trial_id, stimulus): (reference path, coded path)}` when the caller has one (the YAML lists
them); otherwise they stay empty and the ratings serve screening and statistics only.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

from speechlib.data.listening_tests import Rating, parse_score
from speechlib.io.errors import InputError

FIXED_COLUMNS = ("session_test_id", "trial_id", "rating_stimulus", "rating_score", "rating_time", "rating_comment")


def read_webmushra_csv(path: str | os.PathLike, listener_column: str | None = None,
                       audio: dict[tuple[str, str], tuple[str, str]] | None = None) -> list[Rating]:
    path = Path(path)
    if not path.is_file():
        raise InputError("listening-test file does not exist", str(path))
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        missing = [c for c in FIXED_COLUMNS if c not in header]
        if missing:
            raise InputError(f"not a webMUSHRA mushra.csv: missing column(s) {', '.join(missing)}", str(path), 1)
        participant = [c for c in header if c not in FIXED_COLUMNS]
        column = listener_column or (participant[0] if participant else None)
        if column is None or column not in header:
            raise InputError(f"no listener column {column!r} (participant fields: {participant})", str(path), 1)
        ratings = []
        for line, row in enumerate(reader, start=2):
            listener = (row[column] or "").strip()
            if not listener:
                raise InputError(f"empty listener field {column!r}", str(path), line)
            trial, stimulus = row["trial_id"].strip(), row["rating_stimulus"].strip()
            reference, coded = (audio or {}).get((trial, stimulus), ("", ""))
            ratings.append(Rating(row["session_test_id"].strip(), trial, stimulus, listener,
                                  parse_score(row["rating_score"], str(path), line), reference, coded,
                                  str(path), line))
    if not ratings:
        raise InputError("no ratings", str(path))
    return ratings
