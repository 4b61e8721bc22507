"""Benchmark egs/mushra_gml: GML inference speed against visqol-python, and training throughput.

Targets (issue 14), measured in one run on the same files:
  inference  predict's path per pair, one CPU thread: read the 48 kHz stereo FLAC pair, align,
             L/R/M/S gammatone spectrograms, network, mean and CI: >= 50x real time and >= 10x
             faster than visqol-python (audio mode, the files read and mixed to mono) on the same
             pairs. Both are timed in CPU seconds of the process (and wall seconds, reported). The paper-size network
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
import tempfile
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


def write_pairs(folder: Path, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[str, str]]:
    import soundfile

    paths = []
    for k, (ref, deg) in enumerate(pairs):
        paths.append((str(folder / f"ref{k}.flac"), str(folder / f"deg{k}.flac")))
        for path, signal in zip(paths[-1], (ref, deg)):
            soundfile.write(path, signal, SR, subtype="PCM_24")
    return paths


def timed(run, items: list, repeats: int = 1) -> tuple[float, float]:
    """(wall, CPU) seconds per item, best of `repeats`. The process's CPU time is what a core
    would take alone: on the shared machine the wall time mostly measures the queue for a core."""
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        for item in items:
            run(item)
        best = min(best, ((time.perf_counter() - wall) / len(items), (time.process_time() - cpu) / len(items)))
    return best


def gml_seconds(config: dict, files: list[tuple[str, str]], folder: Path, repeats: int) -> tuple[float, float]:
    """predict's path per pair, one thread: read both files, align, gammatone front end, network,
    mean and CI (a randomly initialised model directory of the config's size: the cost is the same)."""
    from speechlib.metrics.mushra import distribution_std, t_ci_halfwidth
    from speechlib.nn.inse import StereoInSENet
    from speechlib.tasks.mushra_gml.predict import Listener, resolve_model
    from speechlib.tasks.mushra_gml.train import model_config, save_listener, SystemSpec

    model = StereoInSENet(**model_config(config, SystemSpec.of("gml")))
    save_listener(folder / "model", model, config, "gml", int(10 * SR), seed=0)
    listener = Listener(resolve_model(str(folder)))

    def predict(pair: tuple[str, str]) -> None:
        mean, log_scale = listener([listener.load_pair(*pair, max_offset=0.5)])[0]
        t_ci_halfwidth(distribution_std(log_scale, "logistic"), 20)

    predict(files[0])  # warm-up
    return timed(predict, files, repeats)


def visqol_seconds(files: list[tuple[str, str]]) -> tuple[float, float]:
    """visqol-python (audio mode) per pair on the same files, read and mixed to mono as the
    recipe's baseline stage does."""
    import soundfile
    from visqol import VisqolApi

    api = VisqolApi()
    api.create(mode="audio")

    def measure(pair: tuple[str, str]) -> None:
        ref, deg = (soundfile.read(path, dtype="float64")[0].mean(axis=1) for path in pair)
        api.measure_from_arrays(ref, deg, SR)

    measure(files[0])  # warm-up (numba compilation, caches)
    return timed(measure, files)


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
    with tempfile.TemporaryDirectory() as tmp:
        files = write_pairs(Path(tmp), pairs)
        gml = gml_seconds(mini, files, Path(tmp) / "mini", repeats=3)
        gml_paper = gml_seconds(paper, files[:2], Path(tmp) / "paper", repeats=1)
        visqol = visqol_seconds(files)
    result = {
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs, shared with other users)",
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "audio": f"{args.pairs} pairs of {args.seconds:g} s, 48 kHz stereo FLAC files, one CPU thread",
        "timing": "per pair: wall seconds, and CPU seconds of the process (what one idle core takes); "
                  "real-time factors and the speed-up use the CPU seconds, the wall ones are shown beside",
        "gml_mini_seconds_per_pair": {"wall": round(gml[0], 4), "cpu": round(gml[1], 4)},
        "gml_mini_realtime_factor": round(args.seconds / gml[1], 1),
        "gml_mini_realtime_factor_wall": round(args.seconds / gml[0], 1),
        "gml_paper_size_seconds_per_pair": {"wall": round(gml_paper[0], 4), "cpu": round(gml_paper[1], 4)},
        "gml_paper_size_realtime_factor": round(args.seconds / gml_paper[1], 2),
        "visqol_python_seconds_per_pair": {"wall": round(visqol[0], 4), "cpu": round(visqol[1], 4)},
        "visqol_python_realtime_factor": round(args.seconds / visqol[1], 2),
        "gml_vs_visqol_speedup": round(visqol[1] / gml[1], 1),
        "gml_vs_visqol_speedup_wall": round(visqol[0] / gml[0], 1),
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
