"""Benchmark egs/voice_privacy's speed targets on CPU.

Targets (issues 7, 13): protect and restore at >= 50x real time each on one CPU thread (the mini
config's SSED); EER + minDCF (p_target 0.01, 0.05) + their bootstrap 95 % CIs (1,000 replicates,
1,000 speakers resampled) over 1,000,000 trials in < 2 s; batched embedding extraction
(utterances/s, recorded, no target). Speed does not depend on the weights, so untrained models of the configured
shapes are timed (a trained exp dir can be given with --model).

    python tests/benchmarks/bench_voice_privacy.py [--model egs/voice_privacy/exp/mini_voice_privacy]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
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
from speechlib.tasks.voice_privacy.apply import transform  # noqa: E402
from speechlib.tasks.voice_privacy.model_io import load_model, ssed_kwargs  # noqa: E402


def real_time_factor(model: SSED, seconds: float, repeats: int = 3) -> float:
    """Audio seconds per wall second for utterances of `seconds` (best of `repeats`)."""
    signal = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * 16000))).astype(np.float32)
    transform(model, signal[:16000])  # warm-up
    best = min(_timed(lambda: transform(model, signal)) for _ in range(repeats))
    return seconds / best


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
    if args.model:
        models = {"protect": load_model(args.model, "generator"), "restore": load_model(args.model, "remover")}
    else:
        models = {"protect": SSED(**ssed_kwargs(hp)).eval(), "restore": SSED(**ssed_kwargs(hp)).eval()}
    rows: dict[str, float] = {}
    for name, model in models.items():
        rows[f"{name} (x real time, 1 thread, 10 s utterance)"] = real_time_factor(model, 10.0)

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
                                   "python": platform.python_version(), "torch": torch.__version__}, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
