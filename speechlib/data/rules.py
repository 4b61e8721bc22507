"""The rules of a Kaldi data dir, each as one check that names the file, the line and the rule.

Why bulk checks: data dirs reach millions of lines, so every check first runs over whole columns
with C-level builtins (list equality, sets, `map` of str methods, NumPy); only when that fails
does a Python loop look for the first offending line, so that the message can name it.
"""
from __future__ import annotations

import bisect
import math
import operator
import re
from itertools import islice, repeat
from typing import Callable, Sequence

import numpy as np

from speechlib.io.errors import InputError
from speechlib.io.kaldi import Table

UTT = "utterance"
SPK = "speaker"
RECO = "recording"
SPK2UTT = "spk2utt"

# Fixed names, plus the utt2*/spk2*/reco2* families. A suffix such as `.bak` or `~` is not a
# table, so that backups lying in a data dir are not taken for data.
_FIXED_KINDS = {"text": UTT, "feats.scp": UTT, "utt2spk": UTT, "cmvn.scp": SPK, "spk2utt": SPK2UTT}
_FAMILY = re.compile(r"^(utt2|spk2|reco2)[A-Za-z0-9_]+(\.scp)?$")

SORT_RULE = "not sorted in C locale (LC_ALL=C sort)"
UTT_COVER_RULE = "utterance-keyed files must cover exactly the utterances of utt2spk"
SPK_COVER_RULE = "speaker-keyed files must cover exactly the speakers of utt2spk"
RECO_COVER_RULE = "recording-keyed files must cover exactly the recordings of wav.scp"
SEGMENT_SLACK = 0.01  # seconds a segment may run past the recording end (rounding of times)


def is_table_name(name: str) -> bool:
    """Whether a file in a data dir is one of its tables (the others are left alone)."""
    return name in _FIXED_KINDS or name in ("wav.scp", "segments") or bool(_FAMILY.match(name))


def table_kind(name: str, has_segments: bool) -> str:
    """What a table's keys are: utterances, speakers, recordings, or spk2utt's own case.

    Without segments a recording is an utterance, so wav.scp and reco2* are utterance-keyed.
    """
    if name in _FIXED_KINDS:
        return _FIXED_KINDS[name]
    if name == "segments" or name.startswith("utt2"):
        return UTT
    if name.startswith("spk2"):
        return SPK
    if name == "wav.scp" or name.startswith("reco2"):
        return RECO if has_segments else UTT
    raise ValueError(f"not a data-dir table: {name}")


def first_not_increasing(keys: Sequence[str]) -> int | None:
    """Index of the first key not strictly after its predecessor, or None if all are."""
    if all(map(operator.lt, keys, islice(keys, 1, None))):
        return None
    return list(map(operator.lt, keys, islice(keys, 1, None))).index(False) + 1


def check_sorted_unique(table: Table) -> None:
    """Keys strictly increasing in byte order: sorted as `LC_ALL=C sort` and without repeats."""
    index = first_not_increasing(table.keys)
    if index is None:
        return
    key, previous = table.keys[index], table.keys[index - 1]
    if key == previous:
        raise InputError(f"duplicate key '{key}' (also on line {index}); keys must be unique",
                         table.path, table.line_of(index))
    raise InputError(f"{SORT_RULE}: '{key}' after '{previous}'", table.path, table.line_of(index))


def check_single_tokens(table: Table, what: str) -> None:
    """Each value is one token (utt2spk's speaker, a duration, a gender)."""
    if len("\n".join(table.values).split()) == len(table.values):
        return
    index = next(i for i, value in enumerate(table.values) if len(value.split()) != 1)
    raise InputError(f"{what} '{table.values[index]}' of '{table.keys[index]}' must be a single token",
                     table.path, table.line_of(index))


def check_speaker_prefix(utt2spk: Table) -> None:
    """The speaker id starts the utterance id, so sorting by either gives the same order."""
    if all(map(str.startswith, utt2spk.keys, utt2spk.values)):
        return
    index = list(map(str.startswith, utt2spk.keys, utt2spk.values)).index(False)
    raise InputError(f"speaker id '{utt2spk.values[index]}' is not a prefix of utterance id "
                     f"'{utt2spk.keys[index]}' (name utterances <speaker>-<rest>)",
                     utt2spk.path, utt2spk.line_of(index))


def check_same_keys(table: Table, expected: Sequence[str], what: str, rule: str, source: str,
                    locate: Callable[[str], int] | None = None) -> None:
    """`table` has exactly the keys `expected` (both sorted and unique, checked before).

    `source` names where the expected keys come from (utt2spk, wav.scp); `locate` gives the
    line of a key there, so that a missing entry points at both files.
    """
    if table.keys == list(expected):
        return
    wanted = set(expected)
    present = list(map(wanted.__contains__, table.keys))
    if not all(present):
        index = present.index(False)
        raise InputError(f"{what} '{table.keys[index]}' is not in {source}; {rule}",
                         table.path, table.line_of(index))
    have = set(table.keys)
    key = expected[list(map(have.__contains__, expected)).index(False)]
    where = f"{source} line {locate(key)}" if locate is not None else source
    line = bisect.bisect_left(table.keys, key) + 1
    raise InputError(f"{what} '{key}' ({where}) has no entry; {rule}", table.path, line)


def parse_floats(table: Table, column: Sequence[str], what: str) -> np.ndarray:
    """Parse a column of numbers, naming the line of the first one that is not a number."""
    try:
        return np.fromiter(map(float, column), dtype=np.float64, count=len(column))
    except ValueError:
        for index, text in enumerate(column):
            try:
                float(text)
            except ValueError:
                raise InputError(f"{what} '{text}' is not a number", table.path,
                                 table.line_of(index)) from None
        raise


def check_positive(table: Table, numbers: np.ndarray, what: str) -> None:
    """Durations are finite and above zero (a zero-length utterance breaks feature extraction)."""
    bad = ~(np.isfinite(numbers) & (numbers > 0))
    if bad.any():
        index = int(np.argmax(bad))
        raise InputError(f"{what} {table.values[index]} of '{table.keys[index]}' must be a positive "
                         f"number", table.path, table.line_of(index))


def check_choice(table: Table, allowed: Sequence[str], what: str) -> None:
    """Every value is one of `allowed` (spk2gender: m or f)."""
    allowed_set = set(allowed)
    if set(table.values) <= allowed_set:
        return
    index = list(map(allowed_set.__contains__, table.values)).index(False)
    choices = "/".join(allowed)
    raise InputError(f"{what} '{table.values[index]}' of '{table.keys[index]}' must be {choices}",
                     table.path, table.line_of(index))


def split_fields(table: Table, count: int, layout: str) -> list[list[str]]:
    """Split each value into exactly `count` fields (segments: `<reco> <start> <end>`)."""
    fields = list(map(str.split, table.values))
    if set(map(len, fields)) <= {count}:
        return fields
    index = next(i for i, row in enumerate(fields) if len(row) != count)
    raise InputError(f"expected '{table.keys[index]} {layout}', got {len(fields[index]) + 1} fields",
                     table.path, table.line_of(index))


def check_segments(segments: Table, fields: list[list[str]],
                   reco_durations: dict[str, float], duration_source: str) -> None:
    """0 <= start < end <= recording duration (+10 ms); unknown durations are not bounded."""
    starts = parse_floats(segments, [f[1] for f in fields], "segment start")
    ends = parse_floats(segments, [f[2] for f in fields], "segment end")
    bad = ~np.isfinite(starts) | (starts < 0)
    if bad.any():
        index = int(np.argmax(bad))
        raise InputError(f"segment start {fields[index][1]} of '{segments.keys[index]}' must be >= 0",
                         segments.path, segments.line_of(index))
    bad = ~np.isfinite(ends) | (ends <= starts)
    if bad.any():
        index = int(np.argmax(bad))
        raise InputError(f"segment end {fields[index][2]} of '{segments.keys[index]}' must be after "
                         f"its start {fields[index][1]}", segments.path, segments.line_of(index))
    if not reco_durations:
        return
    limits = np.fromiter(map(reco_durations.get, [f[0] for f in fields], repeat(math.nan)),
                         dtype=np.float64, count=len(fields))
    bad = ends > limits + SEGMENT_SLACK  # NaN (duration unknown) compares False
    if bad.any():
        index = int(np.argmax(bad))
        reco = fields[index][0]
        raise InputError(f"segment '{segments.keys[index]}' ends at {fields[index][2]} s, after the end "
                         f"of recording '{reco}' ({reco_durations[reco]:.3f} s from {duration_source}); "
                         f"segments must lie inside their recording", segments.path,
                         segments.line_of(index))
