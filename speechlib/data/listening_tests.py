"""Per-listener MUSHRA scores: one record type, the generic CSV, BS.1534-3 post-screening, and
the Kaldi-style data dir the mushra_gml recipe trains and scores on.

Readers of the real formats (ODAQ's MUSHRA XML, webMUSHRA's results CSV) live in
`speechlib.data.odaq` and `speechlib.data.webmushra` and return the same `Rating` records.

The generic CSV (header required, one row per listener and stimulus, UTF-8, comma-separated):

    test,trial,condition,listener,score,reference,coded
    usac_stereo_lo,es01,usac_24k,L07,63,items/es01/ref.wav,items/es01/usac_24k.wav

`test` groups trials rated by one panel (the unit of a CI and of screening), `trial` is an
excerpt (one MUSHRA screen), `condition` a system under test (the hidden reference and anchors
included), `score` a number in [0, 100]; relative audio paths are relative to the CSV's folder.

A listening-test data dir (one per test): `wav.scp` (item -> coded audio), `utt2ref` (item ->
reference audio), `utt2spk` (item -> its trial, so the speaker-prefix rule holds), `utt2condition`,
and `utt2scores` (item -> `listener:score` pairs). Items are `<test>-<trial>-<condition>`.
"""
from __future__ import annotations

import csv
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechlib.io.errors import InputError
from speechlib.io.kaldi import read_dict

GENERIC_COLUMNS = ("test", "trial", "condition", "listener", "score", "reference", "coded")


@dataclass(frozen=True)
class Rating:
    """One listener's score of one stimulus; `source` and `line` say where it was read."""

    test: str
    trial: str
    condition: str
    listener: str
    score: float
    reference: str = ""
    coded: str = ""
    source: str = ""
    line: int | None = None


def parse_score(text: str, path: str, line: int | None) -> float:
    """A MUSHRA score: a finite number in [0, 100], else an InputError naming file and line."""
    try:
        score = float(text)
    except (TypeError, ValueError):
        raise InputError(f"score {text!r} is not a number", path, line) from None
    if not np.isfinite(score) or not 0.0 <= score <= 100.0:
        raise InputError(f"score {text} is outside 0-100", path, line)
    return score


def _resolve(path: str, base: Path) -> str:
    return "" if not path else path if os.path.isabs(path) else str((base / path).resolve())


def read_generic_csv(path: str | os.PathLike) -> list[Rating]:
    """Read the generic per-listener CSV described in the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise InputError("listening-test file does not exist", str(path))
    ratings = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in GENERIC_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"missing column(s) {', '.join(missing)} (need {','.join(GENERIC_COLUMNS)})",
                             str(path), 1)
        for line, row in enumerate(reader, start=2):
            empty = [c for c in GENERIC_COLUMNS[:4] if not (row[c] or "").strip()]
            if empty:
                raise InputError(f"empty {', '.join(empty)}", str(path), line)
            ratings.append(Rating(row["test"].strip(), row["trial"].strip(), row["condition"].strip(),
                                  row["listener"].strip(), parse_score(row["score"], str(path), line),
                                  _resolve(row["reference"].strip(), path.parent),
                                  _resolve(row["coded"].strip(), path.parent), str(path), line))
    return ratings


def write_generic_csv(path: str | os.PathLike, ratings: list[Rating]) -> None:
    """The inverse of `read_generic_csv` (absolute audio paths), written atomically."""
    from speechlib.io.atomic import atomic_open

    with atomic_open(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(GENERIC_COLUMNS)
        for r in ratings:
            writer.writerow([r.test, r.trial, r.condition, r.listener, f"{r.score:g}", r.reference, r.coded])


def check_complete(ratings: list[Rating]) -> None:
    """Every listener of a test rated every trial and condition of that test exactly once.

    A missing trial (a listener's file cut short) or a duplicate row is an InputError naming the
    listener's file (and line for duplicates).
    """
    by_test: dict[str, dict[str, dict[tuple[str, str], Rating]]] = defaultdict(lambda: defaultdict(dict))
    for r in ratings:
        seen = by_test[r.test][r.listener]
        if (r.trial, r.condition) in seen:
            raise InputError(f"listener {r.listener} scored trial {r.trial} condition {r.condition} twice",
                             r.source, r.line)
        seen[(r.trial, r.condition)] = r
    for test, listeners in by_test.items():
        stimuli = set().union(*[set(s) for s in listeners.values()])
        for listener, seen in sorted(listeners.items()):
            lacking = sorted(stimuli - set(seen))
            if lacking:
                trial, condition = lacking[0]
                source = next(iter(seen.values())).source
                raise InputError(f"test {test}: listener {listener} has no score for trial {trial} "
                                 f"condition {condition} ({len(lacking)} stimuli missing)", source)


@dataclass
class ScreeningReport:
    """Who post-screening excluded and why (shares of trials failing each rule)."""

    kept: dict[str, list[str]]
    excluded: dict[str, dict[str, str]]

    def summary(self) -> str:
        lines = []
        for test in sorted(self.kept):
            gone = self.excluded.get(test, {})
            lines.append(f"{test}: kept {len(self.kept[test])} listeners, excluded {len(gone)}"
                         + "".join(f"\n  {who}: {why}" for who, why in sorted(gone.items())))
        return "\n".join(lines)


def post_screen(ratings: list[Rating], reference_pattern: str = "reference", anchor_pattern: str = "lp35",
                reference_min: float = 90.0, anchor_max: float = 90.0, max_share: float = 0.15
                ) -> tuple[list[Rating], ScreeningReport]:
    """ITU-R BS.1534-3 post-screening, per test: a listener is excluded who rated the hidden
    reference below `reference_min` in more than `max_share` of the trials, or the anchor
    (the 3.5 kHz low-pass by default) above `anchor_max` in more than `max_share` of the trials.
    Conditions are recognised by a regular expression on their name (case-insensitive)."""
    is_ref = re.compile(reference_pattern, re.IGNORECASE).search
    is_anchor = re.compile(anchor_pattern, re.IGNORECASE).search
    failures: dict[tuple[str, str], dict[str, list[bool]]] = defaultdict(lambda: {"ref": [], "anchor": []})
    for r in ratings:
        if is_ref(r.condition):
            failures[(r.test, r.listener)]["ref"].append(r.score < reference_min)
        elif is_anchor(r.condition):
            failures[(r.test, r.listener)]["anchor"].append(r.score > anchor_max)
    kept: dict[str, list[str]] = defaultdict(list)
    excluded: dict[str, dict[str, str]] = defaultdict(dict)
    for test, listener in sorted({(r.test, r.listener) for r in ratings}):
        rules = failures.get((test, listener), {"ref": [], "anchor": []})
        reasons = []
        if rules["ref"] and np.mean(rules["ref"]) > max_share:
            reasons.append(f"hidden reference < {reference_min:g} in {np.mean(rules['ref']):.0%} of trials")
        if rules["anchor"] and np.mean(rules["anchor"]) > max_share:
            reasons.append(f"anchor > {anchor_max:g} in {np.mean(rules['anchor']):.0%} of trials")
        if reasons:
            excluded[test][listener] = "; ".join(reasons)
        else:
            kept[test].append(listener)
    keep = {(test, who) for test, names in kept.items() for who in names}
    return [r for r in ratings if (r.test, r.listener) in keep], ScreeningReport(dict(kept), dict(excluded))


def item_id(test: str, trial: str, condition: str) -> str:
    """Kaldi-safe item id; the trial prefix makes `<test>-<trial>` a valid speaker id."""
    clean = [re.sub(r"[^A-Za-z0-9_.]+", "_", part) for part in (test, trial, condition)]
    return "-".join(clean)


def write_test_dir(dest: str | os.PathLike, ratings: list[Rating]) -> Path:
    """Write one test's ratings as a listening-test data dir (see the module docstring)."""
    from speechlib.data.writer import write_data_dir

    items: dict[str, list[Rating]] = defaultdict(list)
    for r in ratings:
        items[item_id(r.test, r.trial, r.condition)].append(r)
    wav, ref, spk, cond, scores = {}, {}, {}, {}, {}
    for utt, rows in items.items():
        first = rows[0]
        for path, what in ((first.coded, "coded"), (first.reference, "reference")):
            if not path:
                raise InputError(f"no {what} audio for trial {first.trial} condition {first.condition}",
                                 first.source, first.line)
        wav[utt], ref[utt], cond[utt] = first.coded, first.reference, first.condition
        spk[utt] = utt.rsplit("-", 1)[0]
        scores[utt] = " ".join(f"{re.sub(r'[^A-Za-z0-9_.]+', '_', r.listener)}:{r.score:g}"
                               for r in sorted(rows, key=lambda r: r.listener))
    return write_data_dir(dest, spk, {"wav.scp": wav, "utt2ref": ref, "utt2condition": cond,
                                      "utt2scores": scores})


@dataclass
class TestItems:
    """A listening-test data dir in memory: items, audio paths, and a padded score matrix whose
    column k is the same listener for every item of the test."""

    name: str
    items: list[str]
    coded: list[str]
    reference: list[str]
    conditions: list[str]
    listeners: list[str]
    scores: np.ndarray  # (items, listeners), NaN where a listener did not rate an item

    @property
    def mask(self) -> np.ndarray:
        return np.isfinite(self.scores)


def load_test_dir(path: str | os.PathLike) -> TestItems:
    """Read a data dir written by `write_test_dir`."""
    path = Path(path)
    wav, ref = read_dict(path / "wav.scp"), read_dict(path / "utt2ref")
    cond, raw = read_dict(path / "utt2condition"), read_dict(path / "utt2scores")
    items = sorted(wav)
    pairs = {utt: [field.rsplit(":", 1) for field in raw[utt].split()] for utt in items}
    listeners = sorted({who for rows in pairs.values() for who, _ in rows})
    column = {who: k for k, who in enumerate(listeners)}
    scores = np.full((len(items), len(listeners)), np.nan)
    for i, utt in enumerate(items):
        for who, value in pairs[utt]:
            scores[i, column[who]] = parse_score(value, str(path / "utt2scores"), i + 1)
    return TestItems(path.name, items, [wav[u] for u in items], [ref[u] for u in items],
                     [cond[u] for u in items], listeners, scores)

