"""Run the generator (protect) or the removal module (restore) over many recordings.

Inputs: one wav file, a directory of audio files, or a Kaldi wav.scp. A bad entry (unreadable,
shorter than the model's receptive field) is refused with a message naming it and the run goes
on; silent and clipped inputs are processed (clipped outputs are limited to [-1, 1]) and counted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm import tqdm

from speechlib.io.audio import load_audio, write_audio
from speechlib.io.errors import InputError
from speechlib.io.kaldi import read_dict
from speechlib.nn.ssed import SSED

AUDIO_SUFFIXES = (".wav", ".flac")
CLIP_LEVEL = 0.999


@dataclass
class ApplyReport:
    """What happened to each input, for the summary line and the refused-list file."""

    done: int = 0
    silent: list[str] = field(default_factory=list)
    clipped: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"{self.done} processed, {len(self.refused)} refused, {len(self.silent)} silent, "
                f"{len(self.clipped)} clipped")


def list_inputs(source: str | Path) -> dict[str, str]:
    """{key: wav.scp entry} from a wav file, a directory (recursive) or a wav.scp."""
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise InputError("no .wav or .flac files in this directory", str(source))
        return {str(p.relative_to(source).with_suffix("")).replace("/", "__"): str(p) for p in files}
    if source.suffix.lower() in AUDIO_SUFFIXES:
        if not source.is_file():
            raise InputError("audio file does not exist", str(source))
        return {source.stem: str(source)}
    if source.is_file():
        return read_dict(source)
    raise InputError("input is neither an audio file, a directory nor a wav.scp", str(source))


@torch.no_grad()
def transform(model: SSED, signal: np.ndarray) -> np.ndarray:
    """x -> x + eps * n * m for one utterance (float32 in, float32 out)."""
    return model(torch.from_numpy(np.asarray(signal, np.float32)).unsqueeze(0)).wav[0].numpy()


def process(model: SSED, entries: dict[str, str], sample_rate: int, report: ApplyReport,
            desc: str = "") -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield (key, input, output) per accepted entry; refusals go to `report.refused`."""
    for key, spec in tqdm(sorted(entries.items()), desc=desc, leave=False, disable=len(entries) < 2):
        try:
            signal, _ = load_audio(spec, sample_rate, utt=key, on_rate_mismatch="resample")
        except InputError as err:
            report.refused[key] = str(err)
            continue
        if signal.size < model.receptive_field:
            report.refused[key] = (f"utterance '{key}': {signal.size} samples, shorter than the model's "
                                   f"receptive field ({model.receptive_field} samples)")
            continue
        peak = float(np.max(np.abs(signal)))
        if peak < 1e-4:
            report.silent.append(key)
        output = transform(model, signal)
        if peak >= CLIP_LEVEL or float(np.max(np.abs(output))) > 1.0:
            report.clipped.append(key)
            output = np.clip(output, -1.0, 1.0)
        report.done += 1
        yield key, signal, output


def apply_to_dir(model: SSED, source: str | Path, out: str | Path, sample_rate: int = 16000,
                 desc: str = "") -> ApplyReport:
    """Write one output per input; a single-file input may name the output file directly.
    A directory output gets <key>.wav files and a wav.scp listing them."""
    entries = list_inputs(source)
    out = Path(out)
    single_file = len(entries) == 1 and out.suffix.lower() == ".wav"
    report = ApplyReport()
    written: dict[str, str] = {}
    for key, _, output in process(model, entries, sample_rate, report, desc):
        path = out if single_file else out / f"{key}.wav"
        write_audio(path, output, sample_rate)
        written[key] = str(path.resolve())
    if not single_file:
        from speechlib.io.kaldi import write_table

        out.mkdir(parents=True, exist_ok=True)
        write_table(out / "wav.scp", written)
        if report.refused:
            write_table(out / "refused.txt", report.refused)
    return report
