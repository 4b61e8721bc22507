"""Benchmark egs/voice_privacy's speed targets on CPU.

Targets (issues 7, 13): protect and restore at >= 50x real time each on one CPU thread (the mini
config's SSED), measured through the user commands on a 60 s 48 kHz file (one channel: each channel costs the same again), so reading,
resampling to 16 kHz and back, headroom, provenance and writing are included (model loading too);
EER + minDCF (p_target 0.01, 0.05) + their bootstrap 95 % CIs (1,000 replicates,
1,000 speakers resampled) over 1,000,000 trials in < 2 s; batched embedding extraction
(utterances/s, recorded, no target). Speed does not depend on the weights, so untrained models of the configured
shapes are timed (a trained exp dir can be given with --model).

    python tests/benchmarks/bench_voice_privacy.py [--model egs/voice_privacy/exp/mini_voice_privacy]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
RESULTS = Path(__file__).resolve().parent / "results" / "voice_privacy.json"
CONFIG = REPO / "egs" / "voice_privacy" / "conf" / "mini_voice_privacy.yaml"

from speechlib.metrics.verification import group_weights, verification_summary  # noqa: E402
from speechlib.nn.speaker import build_encoder, embed_batched  # noqa: E402
from speechlib.nn.ssed import SSED  # noqa: E402
from speechlib.nn.speaker import save_pretrained  # noqa: E402
from speechlib.tasks.voice_privacy.apply import main as command  # noqa: E402
from speechlib.tasks.voice_privacy.model_io import save_models, ssed_kwargs  # noqa: E402


def command_real_time_factors(hp: dict, model: str | None, seconds: float = 60.0, repeats: int = 2) -> dict[str, float]:
    """Audio seconds per wall second of `protect` then `restore` on a 48 kHz mono file (best of
    `repeats`); untrained models of the config's shapes unless `model` (an exp dir) is given."""
    import soundfile

    work = Path(tempfile.mkdtemp(prefix="bench_vp_"))
    if model is None:
        spec = hp["white_model"]
        encoder = build_encoder(spec["architecture"], hp["n_mels"], spec["channels"], spec["embedding_dim"]).eval()
        save_pretrained(encoder, work / "speaker_white", spec["architecture"], spec["channels"], spec["embedding_dim"])
        kwargs = ssed_kwargs(hp)
        save_models(work / "model", kwargs, SSED(**kwargs), SSED(**kwargs), work / "speaker_white", 16000, "mini")
        model = str(work)
    t = np.arange(int(seconds * 48000)) / 48000
    speech_like = 0.2 * np.sin(2 * np.pi * 150 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    soundfile.write(work / "x.wav", speech_like, 48000)
    steps = {"protect": (work / "x.wav", work / "p.wav"), "restore": (work / "p.wav", work / "r.wav")}
    factors = {}
    for verb, (source, out) in steps.items():
        args = ["--model", model, "--in", str(source), "--out", str(out), "--quiet", "--threads", "1"]
        best = min(_timed(lambda: command(verb, "", args)) for _ in range(repeats))
        factors[verb] = seconds / best
    shutil.rmtree(work)
    return factors


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None, help="a trained exp dir (default: untrained, mini config shapes)")
    parser.add_argument("--trials", type=int, default=1_000_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from hyperpyyaml import load_hyperpyyaml

    hp = load_hyperpyyaml(CONFIG.read_text())
    rows: dict[str, float] = {}
    for verb, factor in command_real_time_factors(hp, args.model).items():
        rows[f"{verb} (x real time, 1 thread, 60 s 48 kHz file, command incl. resampling)"] = factor

    rng = np.random.default_rng(1)
    labels = rng.random(args.trials) < 0.05
    scores = rng.standard_normal(args.trials) + 2.0 * labels
    groups = rng.integers(0, 1000, args.trials)
    rows[f"EER+minDCF+CI over {args.trials:,} trials (s)"] = _timed(
        lambda: verification_summary(scores, labels, groups, group_weights(1000, 1000), max_bins=1000))

    spec = hp["white_model"]
    encoder = build_encoder(spec["architecture"], hp["n_mels"], spec["channels"], spec["embedding_dim"]).eval()
    utterances = [(0.1 * rng.standard_normal(int(16000 * rng.uniform(2, 6)))).astype(np.float32) for _ in range(64)]
    embed_batched(encoder, utterances[:4], 4)
    for batch in (1, 16):
        seconds = _timed(lambda: embed_batched(encoder, utterances, batch))
        rows[f"embedding extraction, batch {batch} (utterances/s, 1 thread)"] = len(utterances) / seconds

    targets = {"protect": ">= 50", "restore": ">= 50", "EER": "< 2"}
    width = max(len(k) for k in rows)
    print(f"{'measure'.ljust(width)}  value      target")
    for name, value in rows.items():
        target = next((t for key, t in targets.items() if name.startswith(key)), "recorded")
        print(f"{name.ljust(width)}  {value:9.2f}  {target}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"results": rows, "model": args.model or "untrained, mini config shapes",
                                   "ssed": ssed_kwargs(hp), "machine": platform.machine(),
                                   "python": platform.python_version(), "torch": torch.__version__,
                                   "load_average_1min": os.getloadavg()[0], "cpus": os.cpu_count()}, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
