"""Benchmark egs/voice_privacy's speed targets on CPU.

Targets (issues 7, 13): protect and restore at >= 50x real time each on one CPU thread (the mini
config's SSED), measured through the user commands on a 60 s 48 kHz stereo file, so reading,
resampling to 16 kHz and back (each channel), headroom, provenance and writing are included
(model loading too): warm calls in this process, the best of two. Recorded beside them: the same
command as a fresh `python -m` process per file, whose interpreter start and imports are part of
what a user waits for. EER + minDCF (p_target 0.01, 0.05) + their bootstrap 95 % CIs (1,000
replicates, 1,000 speakers resampled) over 1,000,000 trials in < 2 s; batched embedding
extraction (utterances/s, recorded, no target). Speed does not depend on the weights, so
untrained models of the configured shapes are timed (a trained exp dir can be given with --model).

The machine these run on may be shared and loaded, so times are CPU seconds of this one-thread
process (time.process_time; the commands also in wall-clock time), and each figure comes with a
peer timed in the same run (best of the repeats): the commands against the SSED alone (the model's
share; a stereo file runs it twice, so 0.5 is the floor; the SSED as the commands run it, its
inference copy one 10 s window per call, against the plain modules on a whole batch), and the
EER+minDCF+CI against one np.argsort of the same scores (the floor of any exact sort-based EER),
the two taking turns. The ratios are what to compare across machines; the load average is
recorded.

    python tests/benchmarks/bench_voice_privacy.py [--model egs/voice_privacy/exp/mini_voice_privacy]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
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


def command_inputs(hp: dict, model: str | None, work: Path, seconds: float = 60.0) -> tuple[str, dict[str, tuple[Path, Path]]]:
    """(model, {verb: (input, output)}): a 48 kHz stereo file of `seconds` in `work` and, unless
    `model` (an exp dir) is given, untrained models of the config's shapes there."""
    import soundfile

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
    return model, {"protect": (work / "x.wav", work / "p.wav"), "restore": (work / "p.wav", work / "r.wav")}


def command_args(model: str, source: Path, out: Path) -> list[str]:
    return ["--model", model, "--in", str(source), "--out", str(out), "--quiet", "--threads", "1"]


def command_real_time_factors(hp: dict, model: str | None, seconds: float = 60.0, repeats: int = 2) -> dict[str, float]:
    """Audio seconds per second of `protect` then `restore` on a 48 kHz stereo file (best of
    `repeats`): wall and CPU time of calls in this process, CPU time of a fresh process per call."""
    work = Path(tempfile.mkdtemp(prefix="bench_vp_"))
    model, steps = command_inputs(hp, model, work, seconds)
    factors = {}
    for verb, (source, out) in steps.items():
        runs = [_timed_both(lambda: command(verb, "", command_args(model, source, out))) for _ in range(repeats)]
        factors[f"{verb} wall"] = seconds / min(wall for wall, _ in runs)
        factors[f"{verb} cpu"] = seconds / min(cpu for _, cpu in runs)
        fresh = [sys.executable, "-m", f"speechlib.tasks.voice_privacy.{verb}",
                 *command_args(model, source, work / "fresh.wav")]
        factors[f"{verb} cold"] = seconds / min(_child_cpu(fresh) for _ in range(repeats))
    shutil.rmtree(work)
    return factors


# Where a command's CPU goes: (file, function) whose cumulative time is one part.
PARTS = {"SSED (the model calls, every window of every channel)": [("voice_privacy/apply.py", "forward")],
         "reading (decoding, checks)": [("speechlib/io/audio.py", "read_audio"), ("speechlib/io/inference.py", "check_usable")],
         "resampling (every channel, to 16 kHz and back)": [("speechlib/io/audio.py", "resample_channels"),
                                                            ("speechlib/io/audio.py", "resample")],
         "writing (16-bit, atomic)": [("speechlib/io/audio.py", "write_audio")],
         "model loading (incl. SSED.for_inference)": [("voice_privacy/apply.py", "load")],
         "cross-fading the windows": [("speechlib/io/inference.py", "assemble")],
         "headroom and provenance hooks": [("voice_privacy/apply.py", name) for name in ("before_protect", "before_restore", "after")]}


def profile_parts(hp: dict, model: str | None, seconds: float = 60.0, repeats: int = 3) -> None:
    """Print, per command, the CPU seconds of each part (cProfile on the CPU clock, the fastest of
    `repeats` warm calls): the table behind the README's account of where the time goes."""
    import cProfile
    import pstats

    work = Path(tempfile.mkdtemp(prefix="bench_vp_"))
    model, steps = command_inputs(hp, model, work, seconds)
    for verb, (source, out) in steps.items():
        command(verb, "", command_args(model, source, out))  # first call: imports, kernel set-up
        stats = []
        for _ in range(repeats):
            profiler = cProfile.Profile(time.process_time)
            profiler.runcall(command, verb, "", command_args(model, source, out))
            stats.append(pstats.Stats(profiler))
        best = min(stats, key=lambda st: st.total_tt)
        parts = {part: sum(v[3] for (path, _, name), v in best.stats.items()
                           if any(path.endswith(f) and name == n for f, n in where)) for part, where in PARTS.items()}
        parts["rest (argument parsing, planning, batching, peak check)"] = best.total_tt - sum(parts.values())
        print(f"{verb}: {best.total_tt:.3f} CPU s under the profiler ({seconds / best.total_tt:.1f}x real time)")
        for part, value in parts.items():
            print(f"  {part.ljust(60)} {value:6.3f} s  {100 * value / best.total_tt:5.1f} %")
    shutil.rmtree(work)


def _child_cpu(command_line: list[str]) -> float:
    """CPU seconds of a fresh process running `command_line` (interpreter start and imports included)."""
    before = os.times()
    subprocess.run(command_line, check=True, cwd=REPO, stdout=subprocess.DEVNULL,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    after = os.times()
    return after.children_user + after.children_system - before.children_user - before.children_system


def _timed(function) -> float:
    """CPU seconds of this process (one thread: the work itself, whatever the machine's load)."""
    start = time.process_time()
    function()
    return time.process_time() - start


def _timed_both(function) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def best_of_alternating(functions: dict[str, object], repeats: int = 3) -> dict[str, float]:
    """Best wall time of each function, the functions taking turns (a load change hits both)."""
    best = {name: float("inf") for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            best[name] = min(best[name], _timed(function))
    return best


def ssed_alone(hp: dict, seconds: float = 20.0) -> dict[str, float]:
    """x real time (CPU time) per channel of the SSED alone at 16 kHz: as the commands run it (the
    inference copy, SSED.for_inference(), one 10 s window per call: their floor, paid once per channel) and,
    as the peer, the trained modules on both channels in one call (the previous way), taking turns."""
    model = SSED(**ssed_kwargs(hp)).eval()
    fast = model.for_inference()
    wav = 0.1 * torch.randn(2, int(seconds * 16000))  # two channels of one recording
    windows = [w.contiguous() for w in wav.reshape(-1, 160000)]
    with torch.inference_mode():
        best = best_of_alternating({"fast": lambda: [fast(w[None]) for w in windows], "plain": lambda: model(wav)})
    return {name: 2 * seconds / value for name, value in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None, help="a trained exp dir (default: untrained, mini config shapes)")
    parser.add_argument("--trials", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true",
                        help="only print where protect's and restore's CPU goes (cProfile), write nothing")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_at_start = os.getloadavg()[0]
    from hyperpyyaml import load_hyperpyyaml

    hp = load_hyperpyyaml(CONFIG.read_text())
    if args.profile:
        return profile_parts(hp, args.model)
    rows: dict[str, float] = {}
    for name, factor in command_real_time_factors(hp, args.model).items():
        verb, clock = name.split()
        if clock == "cold":
            rows[f"{verb}, a fresh process per file (x real time, CPU time incl. Python start, imports, model "
                 f"loading; 1 thread, 60 s 48 kHz stereo file)"] = factor
            continue
        clock = "CPU time" if clock == "cpu" else "wall clock, loaded machine"
        rows[f"{verb} (x real time, {clock}, 1 thread, 60 s 48 kHz stereo file, command incl. resampling)"] = factor
    speeds = ssed_alone(hp)
    alone = speeds["fast"]
    rows["SSED alone as the commands run it, same run (x real time per channel, CPU time, 16 kHz, 1 thread)"] = alone
    rows["SSED alone, plain modules, 2 channels x 20 s in one call (x real time per channel, CPU time)"] = speeds["plain"]
    rows["ratio SSED as run / plain modules"] = alone / speeds["plain"]
    for verb in ("protect", "restore"):  # a stereo file has two channels: 0.5 = the model's floor
        command_cpu = next(v for k, v in rows.items() if k.startswith(f"{verb} (x real time, CPU"))
        rows[f"ratio {verb} command / SSED alone"] = command_cpu / alone
    rng = np.random.default_rng(1)
    labels = rng.random(args.trials) < 0.05
    scores = rng.standard_normal(args.trials) + 2.0 * labels
    groups = rng.integers(0, 1000, args.trials)
    times = best_of_alternating({
        "summary": lambda: verification_summary(scores, labels, groups, group_weights(1000, 1000), max_bins=1000),
        "argsort": lambda: np.argsort(scores)})
    rows[f"EER+minDCF+CI over {args.trials:,} trials (CPU s)"] = times["summary"]
    rows["one np.argsort of the same scores, same run (CPU s)"] = times["argsort"]
    rows["ratio EER+minDCF+CI / argsort"] = times["summary"] / times["argsort"]

    spec = hp["white_model"]
    encoder = build_encoder(spec["architecture"], hp["n_mels"], spec["channels"], spec["embedding_dim"]).eval()
    utterances = [(0.1 * rng.standard_normal(int(16000 * rng.uniform(2, 6)))).astype(np.float32) for _ in range(64)]
    embed_batched(encoder, utterances[:4], 4)
    for batch in (1, 16):
        seconds = _timed(lambda: embed_batched(encoder, utterances, batch))
        rows[f"embedding extraction, batch {batch} (utterances/s, CPU time, 1 thread)"] = len(utterances) / seconds

    targets = {"protect (x real time, CPU": ">= 50", "restore (x real time, CPU": ">= 50", "EER": "< 2"}
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
