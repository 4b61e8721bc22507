"""The mini corpus as Kaldi data dirs, so that any recipe can draw from its pools.

The corpus keeps its indexes with paths relative to its root (it may be moved); the functions
here write data dirs with absolute paths for the corpus where it is now.

    from speechlib.data import mini
    root = mini.mini_root()                    # builds nothing; tells you how if missing
    mini.speech_pool("data/pool", langs=["en", "fr"])
    mini.noise_pool("data/noise", categories=["animal", "music"])
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterable

from speechlib.io.errors import InputError
from speechlib.data.writer import write_data_dir

REPO = Path(__file__).resolve().parents[2]
CATEGORIES = ("human", "source_ambiguous", "animal", "things", "music", "natural", "background")


def default_root() -> Path:
    """$SPEECHLIB_MINI if set, else mini/ at the repository root."""
    return Path(os.environ.get("SPEECHLIB_MINI") or REPO / "mini")


def mini_root(root: str | os.PathLike | None = None) -> Path:
    """The corpus directory, checked to be a complete build."""
    path = Path(root) if root is not None else default_root()
    if not (path / ".complete").is_file():
        raise InputError("mini corpus missing or incomplete; build it with tools/make_mini_corpus.sh "
                         f"--out {path}", str(path))
    return path


def ensure_mini(root: str | os.PathLike | None = None, small: bool = False) -> Path:
    """Build the corpus if needed (downloads the packages on first use), then return its root."""
    path = Path(root) if root is not None else default_root()
    command = [str(REPO / "tools/make_mini_corpus.sh"), "--out", str(path)] + (["--small"] if small else [])
    if subprocess.run(command).returncode != 0:
        raise InputError(f"building the mini corpus failed: {' '.join(command)}", str(path))
    return mini_root(path)


def _read_tsv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise InputError("index missing (rebuild the mini corpus)", str(path))
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    rows = []
    for number, line in enumerate(lines[1:], 2):
        fields = line.split("\t")
        if len(fields) != len(header):
            raise InputError(f"expected {len(header)} tab-separated fields, got {len(fields)}", str(path), number)
        rows.append(dict(zip(header, fields)))
    return rows


def speakers(root: str | os.PathLike | None = None) -> dict[str, dict[str, str]]:
    """speakers.tsv: {spk: {gender, langs, kind (real|synthesised|pseudo), gender_rule, median_f0, libri_id,
    libri_subset, source, base (the recorded person it derives from), transform}}."""
    return {row["spk"]: row for row in _read_tsv(mini_root(root) / "speakers.tsv")}


def speech_index(root: str | os.PathLike | None = None) -> list[dict[str, str]]:
    """speech/index.tsv rows: utt, spk, lang, split (pool|<LibriSpeech subset>), duration, path, text."""
    return _read_tsv(mini_root(root) / "speech" / "index.tsv")


def noise_index(root: str | os.PathLike | None = None) -> list[dict[str, str]]:
    """noise/index.tsv rows: clip, category, duration, path, source."""
    return _read_tsv(mini_root(root) / "noise" / "index.tsv")


def speech_pool(dest_dir: str | os.PathLike, root: str | os.PathLike | None = None,
                langs: Iterable[str] | None = None, kinds: Iterable[str] | None = None,
                splits: Iterable[str] | None = None) -> Path:
    """Write a Kaldi data dir of the speech pool (optionally filtered) and return its path.

    Files: wav.scp, utt2spk, spk2utt, text, utt2lang, spk2gender, utt2dur, utt2kind.
    """
    base = mini_root(root)
    spk_info = speakers(base)
    want_langs = set(langs) if langs is not None else None
    want_kinds = set(kinds) if kinds is not None else None
    want_splits = set(splits) if splits is not None else None
    rows = [r for r in speech_index(base)
            if (want_langs is None or r["lang"] in want_langs)
            and (want_kinds is None or spk_info[r["spk"]]["kind"] in want_kinds)
            and (want_splits is None or r["split"] in want_splits)]
    if not rows:
        raise InputError(f"no utterances match langs={want_langs} kinds={want_kinds} splits={want_splits}",
                         str(base))
    tables = {
        "wav.scp": {r["utt"]: str((base / r["path"]).resolve()) for r in rows},
        "text": {r["utt"]: r["text"] for r in rows},
        "utt2lang": {r["utt"]: r["lang"] for r in rows},
        "utt2dur": {r["utt"]: r["duration"] for r in rows},
        "utt2kind": {r["utt"]: spk_info[r["spk"]]["kind"] for r in rows},
    }
    spk2gender = {spk: info["gender"] for spk, info in spk_info.items()}
    return write_data_dir(dest_dir, {r["utt"]: r["spk"] for r in rows}, tables, spk2gender)


def noise_pool(dest_dir: str | os.PathLike, root: str | os.PathLike | None = None,
               categories: Iterable[str] | None = None) -> Path:
    """Write a Kaldi data dir of noise/music clips: wav.scp, utt2category, utt2dur, utt2spk.

    Each clip is its own "speaker" (utt2spk maps it to itself), which keeps Kaldi tools happy.
    """
    base = mini_root(root)
    wanted = set(categories) if categories is not None else None
    if wanted is not None and wanted - set(CATEGORIES):
        raise InputError(f"unknown categories {sorted(wanted - set(CATEGORIES))}; known: {', '.join(CATEGORIES)}")
    rows = [r for r in noise_index(base) if wanted is None or r["category"] in wanted]
    if not rows:
        raise InputError(f"no noise clips match categories={wanted}", str(base))
    tables = {
        "wav.scp": {r["clip"]: str((base / r["path"]).resolve()) for r in rows},
        "utt2category": {r["clip"]: r["category"] for r in rows},
        "utt2dur": {r["clip"]: r["duration"] for r in rows},
    }
    return write_data_dir(dest_dir, {r["clip"]: r["clip"] for r in rows}, tables)


def librispeech_root(root: str | os.PathLike | None = None) -> Path:
    """The LibriSpeech-layout tree (feed it to speechlib.data.librispeech.prepare)."""
    return mini_root(root) / "LibriSpeech"
