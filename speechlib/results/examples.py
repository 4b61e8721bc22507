"""Listening examples: a few short FLACs per recipe, committed so RESULTS.md links work on a clone.

A scoring stage writes its examples under its exp dir with `write_example` and names them in
`write_results(..., examples=[...])`; `python -m speechlib.results.collect egs/<recipe>` copies
them to `egs/<recipe>/examples/<exp>-<file>.flac`. The directory is generated as a whole (files
no experiment names any more are removed) and may hold at most BUDGET_BYTES: a recipe that asks
for more is refused with one line, rather than bloating the repository.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import soundfile

from speechlib.io.atomic import atomic_path
from speechlib.io.errors import InputError

EXAMPLE_SECONDS = 4.0
BUDGET_BYTES = 1_000_000


def write_example(path: str | Path, signal: np.ndarray, sample_rate: int, seconds: float = EXAMPLE_SECONDS) -> Path:
    """A 16-bit FLAC of the first `seconds` of `signal` (samples x channels or samples), scaled
    down only if it would clip; returns the path (its suffix is forced to .flac)."""
    path = Path(path).with_suffix(".flac")
    audio = np.asarray(signal, dtype=np.float64)[: int(round(seconds * sample_rate))]
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if not np.isfinite(peak):
        raise InputError("listening example has non-finite samples", str(path))
    if peak > 1.0:
        audio = audio / peak
    with atomic_path(path, suffix=".flac") as tmp:
        soundfile.write(tmp, audio, sample_rate, subtype="PCM_16", format="FLAC")
    return path


def publish_examples(recipe_dir: str | Path, published: dict[Path, Path]) -> None:
    """Copy `{source under exp/: target under examples/}`, remove examples nobody names any
    more, and refuse a total over BUDGET_BYTES."""
    folder = Path(recipe_dir) / "examples"
    total = sum(source.stat().st_size for source in published)
    if total > BUDGET_BYTES:
        raise InputError(f"listening examples take {total} bytes, over the {BUDGET_BYTES}-byte budget per "
                         f"recipe: publish fewer or shorter ones ({EXAMPLE_SECONDS:g} s each)", str(folder))
    for source, target in published.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target, suffix=target.suffix) as tmp:
            shutil.copyfile(source, tmp)
    if folder.is_dir():
        keep = {target.resolve() for target in published.values()}
        for stale in folder.iterdir():
            if stale.is_file() and stale.resolve() not in keep:
                stale.unlink()
