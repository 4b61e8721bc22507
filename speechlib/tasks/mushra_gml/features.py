"""Stage 2 of egs/mushra_gml: gammatone features of every (reference, coded) item of every test.

    python -m speechlib.tasks.mushra_gml.features conf/mini_mushra_gml.yaml --output_folder exp/x

Per test, `<data_folder>/features/<test>.pt` holds the items, their log gammatone spectrograms
(items, 4 [L, R, M, S], 2 [ref, coded], bands, frames) as float16, the padded score matrix and
the listener names. Excerpts are zero-padded on both sides to the longest excerpt of all tests
(the paper), or cut to the shortest (`length_mode: crop`). Computed in batches with torch, on
the GPU when `--device cuda` is given.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from speechlib.data.listening_tests import TestItems, load_test_dir
from speechlib.io.atomic import atomic_path
from speechlib.io.audio import audio_info, check_not_silent, load_audio, resample
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.signal.gammatone import GammatoneSpectrogram, stereo_pair_features
from speechlib.tasks.stage import start_stage

log = logging.getLogger("mushra_gml.features")


def as_stereo(audio: np.ndarray) -> np.ndarray:
    """(samples[, channels]) -> (2, samples): mono is played as dual mono; more than 2 refused."""
    if audio.ndim == 1:
        return np.stack([audio, audio])
    if audio.shape[1] == 1:
        return np.repeat(audio.T, 2, axis=0)
    if audio.shape[1] != 2:
        raise InputError(f"{audio.shape[1]} channels: only mono or stereo is supported")
    return audio.T


def load_pair(reference: str, coded: str, sample_rate: int, item: str, resample_other_rates: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
    """Reference and coded signal as (2, samples) at `sample_rate`. Another rate is an error
    naming the file (data dirs) or resampled (user files); a silent reference is refused."""
    pair = []
    for path in (reference, coded):
        audio, rate = load_audio(path, None, utt=item, mono=False)
        if rate != sample_rate:
            if not resample_other_rates:
                raise InputError(f"item {item}: sample rate {rate} Hz, expected {sample_rate} Hz", path)
            audio = resample(audio, rate, sample_rate)
        try:
            pair.append(as_stereo(np.asarray(audio, dtype=np.float32)))
        except InputError as err:
            raise InputError(f"item {item}: {err.message}", path) from None
    check_not_silent(pair[0], f"{reference} (reference of {item})")
    return pair[0], pair[1]


def fit_length(signal: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad both sides (centred) or cut the middle to `length` samples."""
    excess = signal.shape[-1] - length
    if excess >= 0:
        return signal[..., excess // 2: excess // 2 + length]
    left = -excess // 2
    return np.pad(signal, [(0, 0)] * (signal.ndim - 1) + [(left, -excess - left)])


def compute_features(gammatone: GammatoneSpectrogram, pairs: list[tuple[np.ndarray, np.ndarray]], length: int,
                     batch: int, device: str) -> torch.Tensor:
    """(items, 4, 2, bands, frames) float16 features of (reference, coded) pairs fitted to `length`."""
    out = []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start:start + batch]
        ref = torch.tensor(np.stack([fit_length(r, length) for r, _ in chunk]), device=device)
        cod = torch.tensor(np.stack([fit_length(c, length) for _, c in chunk]), device=device)
        with torch.no_grad():
            out.append(stereo_pair_features(gammatone, ref, cod).half().cpu())
    return torch.cat(out)


def target_length(tests: list[TestItems], mode: str) -> int:
    """The longest (pad) or shortest (crop) excerpt over every item of every test, in samples."""
    lengths = [audio_info(path).frames for test in tests for path in test.reference + test.coded]
    return max(lengths) if mode == "pad" else min(lengths)


def main() -> None:
    stage = start_stage("features", options=())
    hp = stage.hparams
    data = Path(hp["data_folder"])
    roles = json.loads((data / "tests.json").read_text())
    out_dir = data / "features"
    outputs = tuple(out_dir / f"{test}.pt" for test in roles)
    if stage.is_done(outputs):
        log.info("%s is up to date", out_dir)
        return
    tests = [load_test_dir(data / test) for test in roles]
    length = target_length(tests, hp["length_mode"])
    device = stage.run_opts.get("device", "cpu")
    gammatone = GammatoneSpectrogram(hp["sample_rate"], **hp["gammatone"]).to(device)
    for test in tests:
        pairs = [load_pair(r, c, hp["sample_rate"], item)
                 for r, c, item in zip(test.reference, test.coded, test.items)]
        features = compute_features(gammatone, pairs, length, hp["feature_batch"], device)
        with atomic_path(out_dir / f"{test.name}.pt", suffix=".pt") as tmp:
            torch.save({"items": test.items, "conditions": test.conditions, "listeners": test.listeners,
                        "scores": torch.tensor(test.scores, dtype=torch.float32), "features": features,
                        "num_samples": length, "role": roles[test.name]["role"]}, tmp)
        log.info("progress: %s: %d items, features %s", test.name, len(test.items), tuple(features.shape))
    stage.mark_done()


if __name__ == "__main__":
    exit_on_input_error("mushra_gml.features", main)
