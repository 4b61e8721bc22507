"""ODAQ (Open Dataset of Audio Quality, Fraunhofer IIS; Zenodo 10.5281/zenodo.10405774).

Layout: one MUSHRA XML result file per listener session (in one or more result folders) and the
audio under `<audio>/<trialName>/`, where the trial folder holds the reference (a file whose name
contains "reference") and every rated file by its `fileName` (anchors `*lp35*`, `*lp70*`).
A result file:

    <MUSHRA>
      <info subjectName="..." testName="..." stimuliDirectory="..." trialsPerSession="..." .../>
      <trial trialName="<Experiment>_<item>" trialSeconds="..." referencePlays="...">
        <testFile fileName="x.wav" plays="..." score="87"/> ...
      </trial> ...
    </MUSHRA>

The test (the panel a CI is computed over) is the experiment, the part of `trialName` before its
first underscore; the condition is `fileName` without its extension.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from speechlib.data.listening_tests import Rating, parse_score
from speechlib.io.errors import InputError


def _line_of(path: Path, needle: str) -> int | None:
    """Line number of the first occurrence of `needle` (ElementTree keeps no positions)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if needle in text:
                return number
    return None


def read_odaq_xml(path: str | os.PathLike, audio_root: str | os.PathLike | None = None) -> list[Rating]:
    """One listener's ratings from an ODAQ MUSHRA XML file; audio paths under `audio_root`."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise InputError(f"not well-formed XML: {err}", str(path), err.position[0]) from None
    except OSError:
        raise InputError("listening-test file does not exist", str(path)) from None
    info = root.find("info")
    if root.tag != "MUSHRA" or info is None or not info.get("subjectName"):
        raise InputError("not an ODAQ MUSHRA result (need <MUSHRA><info subjectName=...>)", str(path))
    listener = info.get("subjectName")
    ratings = []
    for trial in root.iter("trial"):
        trial_name = trial.get("trialName")
        if not trial_name:
            raise InputError("<trial> without trialName", str(path), _line_of(path, "<trial"))
        folder = Path(audio_root) / trial_name if audio_root else None
        reference = ""
        if folder is not None:
            found = sorted(p for p in folder.glob("*") if "reference" in p.name.lower()) if folder.is_dir() else []
            if not found:
                raise InputError(f"trial {trial_name}: no reference file in {folder}", str(path),
                                 _line_of(path, f'"{trial_name}"'))
            reference = str(found[0])
        for test_file in trial.iter("testFile"):
            name = test_file.get("fileName") or ""
            line = _line_of(path, f'"{name}"') if name else None
            if not name:
                raise InputError(f"trial {trial_name}: <testFile> without fileName", str(path), line)
            score = parse_score(test_file.get("score"), str(path), line)
            ratings.append(Rating(trial_name.split("_", 1)[0], trial_name, Path(name).stem, listener, score,
                                  reference, str(folder / name) if folder is not None else "", str(path), line))
    if not ratings:
        raise InputError("no <trial>/<testFile> scores", str(path))
    return ratings


def read_odaq(result_dirs: list[str | os.PathLike], audio_root: str | os.PathLike | None = None) -> list[Rating]:
    """Every listener's XML in `result_dirs` (sorted, so the order never depends on the filesystem)."""
    ratings = []
    for folder in result_dirs:
        files = sorted(Path(folder).glob("*.xml"))
        if not files:
            raise InputError("no ODAQ result files (*.xml)", str(folder))
        for file in files:
            ratings.extend(read_odaq_xml(file, audio_root))
    return ratings
