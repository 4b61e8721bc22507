"""VoxCeleb1/2 -> one Kaldi data dir for speaker-model training.

Accepts the usual unpacked layouts under one root: `<root>/**/wav/id*/<video>/<n>.wav`
(VoxCeleb1) and `<root>/**/aac/id*/<video>/<n>.m4a` (VoxCeleb2, decoded by an `ffmpeg ... |`
pipe to 16 kHz mono). Utterance ids are `<speaker>-<video>-<n>` so the speaker is a prefix.
Gender is not needed for training and is not written.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from speechlib.data.datadir import group_by_speaker
from speechlib.io.errors import InputError
from speechlib.io.kaldi import write_table


def find_utterances(root: str | Path) -> dict[str, tuple[str, str]]:
    """{utt: (speaker, wav.scp entry)} for every VoxCeleb file under `root`."""
    root = Path(root)
    found: dict[str, tuple[str, str]] = {}
    for pattern, pipe in (("wav/id*/*/*.wav", False), ("aac/id*/*/*.m4a", True)):
        for path in sorted(root.rglob(pattern)):
            speaker, video, number = path.parts[-3], path.parts[-2], path.stem
            utt = f"{speaker}-{video}-{number}"
            entry = (f"ffmpeg -nostdin -loglevel error -i {shlex.quote(str(path))} -ac 1 -ar 16000 -f wav - |"
                     if pipe else str(path))
            found[utt] = (speaker, entry)
    return found


def prepare(root: str | Path, data_dir: str | Path) -> int:
    """Write wav.scp, utt2spk, spk2utt; returns the number of utterances."""
    found = find_utterances(root)
    if not found:
        raise InputError("no VoxCeleb audio found (expected wav/id*/<video>/*.wav or aac/id*/<video>/*.m4a "
                         "below it)", str(root))
    out = Path(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "wav.scp", {utt: entry for utt, (_, entry) in found.items()})
    write_table(out / "utt2spk", {utt: spk for utt, (spk, _) in found.items()})
    utts = sorted(found)
    speakers, groups = group_by_speaker(utts, [found[utt][0] for utt in utts])
    write_table(out / "spk2utt", dict(zip(speakers, groups)))
    return len(found)
