"""WHAM! noise (Wichern et al., 2019) -> Kaldi data dir of noise clips.

Real layout: `<WHAM>/wham_noise/{tr,cv,tt}/*.wav` (or the `wham_noise` directory itself),
`metadata/noise_meta_{split}.csv`. Clips are 2-channel recordings; readers average them to mono.
Each clip is its own "speaker", which satisfies Kaldi's rules without inventing speakers.
"""
from __future__ import annotations

import os
from pathlib import Path

from speechlib.io.errors import InputError
from speechlib.io.kaldi import write_table

SPLITS = ("tr", "cv", "tt")


def noise_root(path: str | os.PathLike) -> Path:
    """Accept either the directory holding `wham_noise/` or `wham_noise/` itself."""
    path = Path(path)
    for candidate in (path / "wham_noise", path):
        if all((candidate / split).is_dir() for split in SPLITS[:1]):
            return candidate
    raise InputError("not a WHAM! noise directory (expected wham_noise/tr/*.wav)", str(path))


def prepare_noise(wham: str | os.PathLike, split: str, data_dir: str | os.PathLike) -> int:
    """Write wav.scp, utt2spk, spk2utt for one split (tr, cv, tt); returns the clip count."""
    if split not in SPLITS:
        raise InputError(f"unknown WHAM! split '{split}' (known: {', '.join(SPLITS)})")
    split_dir = noise_root(wham) / split
    clips = sorted(split_dir.glob("*.wav"))
    if not clips:
        raise InputError("no .wav noise clips found", str(split_dir))
    wav = {f"wham-{split}-{clip.stem}": str(clip.resolve()) for clip in clips}
    out = Path(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "wav.scp", wav)
    write_table(out / "utt2spk", {utt: utt for utt in wav})
    write_table(out / "spk2utt", {utt: utt for utt in wav})
    return len(wav)
