"""Benchmark egs/voice_privacy's speed targets on CPU.

Targets (issues 7, 13): protect and restore at >= 50x real time each on one CPU thread (the mini
config's SSED), measured through the user commands on a 60 s 48 kHz stereo file, so reading,
resampling to 16 kHz and back (each channel), headroom, provenance and writing are included
(model loading too); EER + minDCF (p_target 0.01, 0.05) + their bootstrap 95 % CIs (1,000
replicates, 1,000 speakers resampled) over 1,000,000 trials in < 2 s; batched embedding
extraction (utterances/s, recorded, no target). Speed does not depend on the weights, so
untrained models of the configured shapes are timed (a trained exp dir can be given with --model).

The machine these run on may be shared and loaded, so each figure comes with a peer timed in the
same run, alternating with it (best of the repeats): the SSED's autograd-free fused path
against its plain module path (the same weights and outputs), and the EER+minDCF+CI against one
np.argsort of the same scores (the floor of any exact sort-based EER). The ratios are what to
compare across machines; the load average is recorded.

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
    """Audio seconds per wall second of `protect` then `restore` on a 48 kHz stereo file (best
    of `repeats`); untrained models of the config's shapes unless `model` (an exp dir) is given."""
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
    soundfile.write(work / "x.wav", np.stack([speech_like, 0.5 * np.roll(speech_like, 480)], axis=1), 48000)
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


def best_of_alternating(functions: dict[str, object], repeats: int = 3) -> dict[str, float]:
    """Best wall time of each function, the functions taking turns (a load change hits both)."""
    best = {name: float("inf") for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            best[name] = min(best[name], _timed(function))
    return best


def ssed_paths(hp: dict, seconds: float = 20.0) -> dict[str, float]:
    """x real time of the SSED alone at 16 kHz, fused (inference) path and module path."""
    from speechlib.nn.ssed import SSED

    model = SSED(**ssed_kwargs(hp)).eval()
    wav = 0.1 * torch.randn(2, int(seconds * 16000))  # two channels of one recording
    with torch.inference_mode():
        fused = lambda: model(wav)  # noqa: E731
        times = best_of_alternating({"fused": fused, "modules": lambda: _module_path(model, wav)})
    return {name: 2 * seconds / value for name, value in times.items()}


def _module_path(model, wav: torch.Tensor) -> None:
    """The same forward pass through the nn.Module decoders (what training runs)."""
    length = wav.shape[-1]
    padded = -(-length // model.hop) * model.hop
    latent = model.encoder(torch.nn.functional.pad(wav, (0, padded - length)).unsqueeze(1))
    model.noise_decoder(latent), model.mask_decoder(latent)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None, help="a trained exp dir (default: untrained, mini config shapes)")
    parser.add_argument("--trials", type=int, default=1_000_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_at_start = os.getloadavg()[0]
    from hyperpyyaml import load_hyperpyyaml

    hp = load_hyperpyyaml(CONFIG.read_text())
    rows: dict[str, float] = {}
    for verb, factor in command_real_time_factors(hp, args.model).items():
        rows[f"{verb} (x real time, 1 thread, 60 s 48 kHz stereo file, command incl. resampling)"] = factor
    paths = ssed_paths(hp)
    rows["SSED fused inference path (x real time per channel, 16 kHz, 1 thread)"] = paths["fused"]
    rows["SSED module path, same run (x real time per channel)"] = paths["modules"]
    rows["ratio fused / module path"] = paths["fused"] / paths["modules"]

    rng = np.random.default_rng(1)
    labels = rng.random(args.trials) < 0.05
    scores = rng.standard_normal(args.trials) + 2.0 * labels
    groups = rng.integers(0, 1000, args.trials)
    times = best_of_alternating({
        "summary": lambda: verification_summary(scores, labels, groups, group_weights(1000, 1000), max_bins=1000),
        "argsort": lambda: np.argsort(scores)})
    rows[f"EER+minDCF+CI over {args.trials:,} trials (s)"] = times["summary"]
    rows["one np.argsort of the same scores, same run (s)"] = times["argsort"]
    rows["ratio EER+minDCF+CI / argsort"] = times["summary"] / times["argsort"]

    spec = hp["white_model"]
    encoder = build_encoder(spec["architecture"], hp["n_mels"], spec["channels"], spec["embedding_dim"]).eval()
    utterances = [(0.1 * rng.standard_normal(int(16000 * rng.uniform(2, 6)))).astype(np.float32) for _ in range(64)]
    embed_batched(encoder, utterances[:4], 4)
    for batch in (1, 16):
        seconds = _timed(lambda: embed_batched(encoder, utterances, batch))
        rows[f"embedding extraction, batch {batch} (utterances/s, 1 thread)"] = len(utterances) / seconds

    targets = {"protect": ">= 50", "restore": ">= 50", "EER": "< 2"}  # the rest: recorded
    width = max(len(k) for k in rows)
    print(f"{'measure'.ljust(width)}  value      target")
    for name, value in rows.items():
        target = next((t for key, t in targets.items() if name.startswith(key)), "recorded")
        print(f"{name.ljust(width)}  {value:9.2f}  {target}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"results": rows, "model": args.model or "untrained, mini config shapes",
                                   "ssed": ssed_kwargs(hp), "machine": platform.machine(),
                                   "python": platform.python_version(), "torch": torch.__version__,
                                   "load_average_1min": [load_at_start, os.getloadavg()[0]], "cpus": os.cpu_count()}, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
