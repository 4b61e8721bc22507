"""Benchmark egs/mushra_gml: GML inference speed against visqol-python, and training throughput.

Targets (issue 14), measured in one run on the same files:
  inference  GML including the gammatone front end (48 kHz stereo pair -> L/R/M/S gammatone
             spectrograms -> network -> mean and CI), one CPU thread: >= 50x real time and
             >= 10x faster than visqol-python (audio mode) on the same pairs. The paper-size network
             (conf/paper_mushra_gml.yaml, 15.3 M parameters) is timed too (reported, no target).
  training   items per second of one training step (forward, backward, Adam) on CPU, mini and paper
             networks (reported).
The machine's load average is recorded: the development machine is 2 cores shared by 8 people.

    python tests/benchmarks/bench_mushra_gml.py [--pairs 6] [--seconds 10]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
RESULTS = Path(__file__).resolve().parent / "results" / "mushra_gml.json"
SR = 48000


def music_like(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Stereo chords with a panned noise-burst rhythm: broadband, transient, not silent."""
    t = np.arange(int(seconds * SR)) / SR
    chord = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (220, 277, 330, 440, 880))
    bursts = rng.standard_normal(t.size) * (np.sin(2 * np.pi * 4 * t) > 0.9)
    left, right = 0.1 * chord + 0.2 * bursts, 0.1 * chord * 0.8 - 0.1 * bursts
    return np.stack([left, right], axis=1).astype(np.float32)


def load_config(name: str) -> dict:
    from hyperpyyaml import load_hyperpyyaml

    with open(REPO / "egs" / "mushra_gml" / "conf" / f"{name}_mushra_gml.yaml", encoding="utf-8") as handle:
        return load_hyperpyyaml(handle)


def gml_seconds(config: dict, pairs: list[tuple[np.ndarray, np.ndarray]], repeats: int) -> float:
    """Wall seconds per pair: gammatone front end + network + mean/CI, one thread, best of repeats."""
    import torch

    from speechlib.metrics.mushra import distribution_std, t_ci_halfwidth
    from speechlib.nn.inse import StereoInSENet
    from speechlib.signal.gammatone import GammatoneSpectrogram, stereo_pair_features

    gammatone = GammatoneSpectrogram(SR, **config["gammatone"])
    model = StereoInSENet(outputs=2, **config["model"]).eval()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for ref, deg in pairs:
            with torch.no_grad():
                feats = stereo_pair_features(gammatone, torch.from_numpy(ref.T.copy())[None],
                                             torch.from_numpy(deg.T.copy())[None])
                out = model(feats)[0].numpy()
            t_ci_halfwidth(distribution_std(out[1], "logistic"), 20)
        best = min(best, (time.perf_counter() - start) / len(pairs))
    return best


def visqol_seconds(pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    from visqol import VisqolApi

    api = VisqolApi()
    api.create(mode="audio")
    api.measure_from_arrays(pairs[0][0].mean(1).astype(np.float64), pairs[0][1].mean(1).astype(np.float64), SR)
    start = time.perf_counter()  # after one warm-up pair (numba compilation, caches)
    for ref, deg in pairs:
        api.measure_from_arrays(ref.mean(1).astype(np.float64), deg.mean(1).astype(np.float64), SR)
    return (time.perf_counter() - start) / len(pairs)


def train_items_per_second(config: dict, seconds: float, batch: int = 8, steps: int = 3) -> float:
    import torch

    from speechlib.metrics.mushra import logistic_nll
    from speechlib.nn.inse import StereoInSENet
    from speechlib.signal.gammatone import GammatoneSpectrogram

    frames = GammatoneSpectrogram(SR, **config["gammatone"]).num_frames(int(seconds * SR))
    model = StereoInSENet(outputs=2, **config["model"])
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    feats = torch.randn(batch, 4, 2, config["gammatone"]["num_bands"], frames)
    scores = torch.randn(batch, 10)
    start = time.perf_counter()
    for _ in range(steps):
        out = model(feats)
        loss = logistic_nll(scores, out[:, :1], out[:, 1:]).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    import torch

    from speechlib.signal.codecs import encode_decode

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    pairs = []
    for k in range(args.pairs):
        ref = music_like(args.seconds, rng)
        pairs.append((ref, encode_decode(ref, SR, ("aac", "opus", "mp3")[k % 3], 48)))
    mini, paper = load_config("mini"), load_config("paper")
    load_before = os.getloadavg()[0]
    gml = gml_seconds(mini, pairs, repeats=3)
    gml_paper = gml_seconds(paper, pairs[:2], repeats=1)
    visqol = visqol_seconds(pairs)
    result = {
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs, shared with other users)",
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "audio": f"{args.pairs} pairs of {args.seconds:g} s, 48 kHz stereo, one CPU thread",
        "gml_mini_seconds_per_pair": round(gml, 4),
        "gml_mini_realtime_factor": round(args.seconds / gml, 1),
        "gml_paper_size_seconds_per_pair": round(gml_paper, 4),
        "gml_paper_size_realtime_factor": round(args.seconds / gml_paper, 2),
        "visqol_python_seconds_per_pair": round(visqol, 4),
        "visqol_python_realtime_factor": round(args.seconds / visqol, 2),
        "gml_vs_visqol_speedup": round(visqol / gml, 1),
        "train_items_per_second_mini_cpu": round(train_items_per_second(mini, 5.0), 1),
        "train_items_per_second_paper_cpu": round(train_items_per_second(paper, 5.0, steps=1), 2),
        "targets": {"gml_realtime_factor": ">= 50", "gml_vs_visqol_speedup": ">= 10"},
    }
    result["met"] = {"gml_realtime_factor": result["gml_mini_realtime_factor"] >= 50,
                     "gml_vs_visqol_speedup": result["gml_vs_visqol_speedup"] >= 10}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
