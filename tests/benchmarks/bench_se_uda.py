"""Benchmark egs/se_uda: enhancement speed, training throughput per system, scoring parallelism,
mixing speed.

Targets (issues 5 and 11), each measured against a peer in the same run:
  enhancement  one CPU thread, 16 kHz, the mini config's U-Net: >= 20x faster than real time
               (peer: the audio's own duration);
  training     utterances per second of one optimiser step of every system's Brain (the mini
               config's model, batch and segment length, one thread; recorded, no target): the
               peer is the supervised source model, each system's cost is also given relative to it;
  scoring      PESQ + STOI + SI-SDR through utils/run.py JOB=1:N: --nj 2 >= 1.7x faster than --nj 1
               on 2 cores (peer: the --nj 1 run);
  mixing       crop/tile + SNR mixing (speechlib.signal.mixing), one thread: >= 200x real time.
The machine's load average is recorded: other processes on a 2-core box lower the nj ratio.

    python tests/benchmarks/bench_se_uda.py [--utts 300] [--seconds 4]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
RESULTS = Path(__file__).resolve().parent / "results" / "se_uda.json"
SR = 16000


def speech_like(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Amplitude-modulated harmonics with pauses: PESQ detects utterances in it."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.5 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 1.5 * t + rng.uniform(0, 6)), 0, None)
    return (0.2 * voiced * envelope).astype(np.float32)


def bench_enhancement(seconds: float = 10.0, repeats: int = 5) -> dict:
    import torch
    from hyperpyyaml import load_hyperpyyaml

    from speechlib.nn.unet import SpeechNoiseUNet

    torch.set_num_threads(1)
    config = load_hyperpyyaml(open(REPO / "egs/se_uda/conf/mini_se_uda.yaml"))
    model = SpeechNoiseUNet(**config["unet"]).eval()
    wav = torch.from_numpy(speech_like(seconds, np.random.default_rng(0)))[None]
    with torch.no_grad():
        model(wav)  # warm-up
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            model(wav)
        wall = (time.perf_counter() - start) / repeats
        cpu = (time.process_time() - cpu_start) / repeats
    # CPU seconds: what one thread of its own achieves; wall: what this (maybe shared) machine gave
    return {"audio_s": seconds, "wall_s": round(wall, 4), "x_real_time": round(seconds / wall, 1),
            "cpu_s": round(cpu, 4), "x_real_time_cpu": round(seconds / cpu, 1), "threads": 1,
            "unet": dict(config["unet"]), "target": 20}


def bench_training(steps: int = 6) -> dict:
    """fit_batch of each system's Brain on synthetic batches of the mini config's shape."""
    import torch
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.dataio.batch import PaddedBatch

    from speechlib.nn.unet import SpeechNoiseUNet
    from speechlib.tasks.se_uda import brains
    from speechlib.tasks.se_uda.common import build_classifier

    torch.set_num_threads(1)
    hp = load_hyperpyyaml(open(REPO / "egs/se_uda/conf/mini_se_uda.yaml"))
    rng = np.random.default_rng(3)
    size, length = int(hp["batch_size"]), int(hp["segment_seconds"] * SR)

    def batch(tag: str):
        rows = []
        for index in range(size):
            speech = torch.from_numpy(speech_like(hp["segment_seconds"], rng))
            noise = torch.from_numpy(0.1 * rng.standard_normal(length).astype(np.float32))
            rows.append({"id": f"{tag}{index}", "sig": speech + noise, "speech_sig": speech, "noise_sig": noise})
        return PaddedBatch(rows)

    def endless(tag: str):
        while True:
            yield batch(tag)

    common = {"epoch_datasets": [], "total_steps": 1000, "base_lr": 1e-3}
    unet = lambda: SpeechNoiseUNet(**hp["unet"])  # noqa: E731
    systems = {
        "source / target (supervised)": (brains.SupervisedBrain, {"unet": unet()}, {}),
        "classifier": (brains.ClassifierBrain, None, {"other_dataset": None, "valid_target": None}),
        "dann": (brains.DANNBrain, None, {"other_dataset": None}),
        "remixit / dann_remixit": (brains.RemixITBrain, {"unet": unet()}, {"teacher": unet(), "teacher_update": "replace"}),
        "srst": (brains.SRSTBrain, {"unet": unet()}, {"teacher": unet(), "other_dataset": None, "ranking": None}),
    }
    results = {}
    for name, (cls, modules, deps) in systems.items():
        if modules is None:
            model = unet()
            modules = {"unet": model, "classifier": build_classifier(hp, model)}
        brain = cls(modules=modules, opt_class=lambda params: torch.optim.Adam(params, 1e-3), hparams=dict(hp),
                    run_opts={"device": "cpu", "noprogressbar": True}, **common, **deps)
        brain.on_fit_start()
        brain.other = endless("o")
        if cls is brains.SRSTBrain:
            brain.share, brain.weight, brain.chosen = 0.3, 1.0, np.arange(size)
        batches = [batch("b") for _ in range(steps + 1)]
        brain.fit_batch(batches[0])  # warm-up
        start, cpu_start = time.perf_counter(), time.process_time()
        for item in batches[1:]:
            brain.fit_batch(item)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        results[name] = {"utterances_per_second": round(steps * size / cpu, 2),  # per CPU second (one thread)
                         "utterances_per_wall_second": round(steps * size / wall, 2), "step_cpu_s": round(cpu / steps, 3)}
    peer = results["source / target (supervised)"]["utterances_per_second"]
    for value in results.values():
        value["relative_to_supervised"] = round(value["utterances_per_second"] / peer, 2)
    return {"batch": size, "segment_seconds": hp["segment_seconds"], "threads": 1, "systems": results}


def score_part(directory: Path, job: int, nj: int) -> None:
    """One job of the scoring benchmark: every nj-th utterance from job-1."""
    from speechlib.metrics.enhancement import intrusive_scores

    files = sorted(directory.glob("*_ref.wav"))[job - 1::nj]
    for ref_path in files:
        ref, _ = soundfile.read(ref_path, dtype="float32")
        est, _ = soundfile.read(str(ref_path).replace("_ref", "_est"), dtype="float32")
        intrusive_scores(est, ref, SR)


def bench_scoring(utts: int, seconds: float) -> dict:
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for index in range(utts):
            ref = speech_like(seconds, rng)
            soundfile.write(directory / f"u{index:03d}_ref.wav", ref, SR)
            soundfile.write(directory / f"u{index:03d}_est.wav", ref + 0.05 * rng.standard_normal(ref.size).astype(np.float32), SR)
        walls, cpu = {}, {}
        for nj in (1, 2):
            command = [sys.executable, str(REPO / "utils" / "run.py"), f"JOB=1:{nj}", str(directory / f"log{nj}.JOB.log"),
                       sys.executable, __file__, "--score-part", "JOB", "--nj", str(nj), "--dir", str(directory)]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(command, check=True, env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO)))
            walls[nj] = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[nj] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # cpu / wall of the --nj 2 run: how many cores the jobs actually got (2.0 on an idle 2-core box)
    return {"utterances": utts, "seconds_each": seconds, "nj1_s": round(walls[1], 2), "nj2_s": round(walls[2], 2),
            "speedup": round(walls[1] / walls[2], 2), "nj1_cpu_s": round(cpu[1], 2), "nj2_cpu_s": round(cpu[2], 2),
            "nj2_cores_obtained": round(cpu[2] / walls[2], 2),
            # what the same CPU work gives when both jobs get a whole core (an estimate, not a measurement)
            "idle_two_core_estimate": round(2 * cpu[1] / cpu[2], 2), "target": 1.7}


def bench_mixing(batch: int = 64, seconds: float = 4.0, repeats: int = 5) -> dict:
    from speechlib.signal.mixing import fit_length, mix_at_snr

    rng = np.random.default_rng(2)
    speech = [speech_like(rng.uniform(2, 8), rng) for _ in range(batch)]
    noise = [rng.standard_normal(int(rng.uniform(1, 10) * SR)).astype(np.float32) for _ in range(batch)]
    length = int(seconds * SR)
    start = time.perf_counter()
    for _ in range(repeats):
        s = np.stack([fit_length(x, length, rng, pad="zeros") for x in speech])
        n = np.stack([fit_length(x, length, rng) for x in noise])
        mix_at_snr(s, n, rng.uniform(-5, 5, size=batch))
    wall = (time.perf_counter() - start) / repeats
    return {"mixtures": batch, "seconds_each": seconds, "wall_s": round(wall, 4),
            "x_real_time": round(batch * seconds / wall, 1), "target": 200}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utts", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--score-part", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--nj", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.score_part is not None:
        score_part(Path(args.dir), args.score_part, args.nj)
        return
    os.environ["OMP_NUM_THREADS"] = "1"
    load_before = os.getloadavg()[0]
    results = {"enhancement": bench_enhancement(), "training": bench_training(),
               "scoring": bench_scoring(args.utts, args.seconds), "mixing": bench_mixing()}
    results["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2)}
    rows = [("enhancement (1 thread)", f"{results['enhancement']['x_real_time_cpu']}x real time per CPU second "
                                        f"({results['enhancement']['x_real_time']}x wall)", ">= 20x"),
            ("scoring --nj 2 vs --nj 1", f"{results['scoring']['speedup']}x ({results['scoring']['nj1_s']} s -> "
                                          f"{results['scoring']['nj2_s']} s, "
                                          f"{results['scoring']['nj2_cores_obtained']} cores; idle estimate "
                                          f"{results['scoring']['idle_two_core_estimate']}x)", ">= 1.7x"),
            ("mixing (1 core)", f"{results['mixing']['x_real_time']}x real time", ">= 200x")]
    rows += [(f"training {name}", f"{value['utterances_per_second']} utt/s per CPU second "
                                   f"({value['relative_to_supervised']}x the supervised step)", "recorded")
             for name, value in results["training"]["systems"].items()]
    print(f"{'benchmark':28s} {'measured':60s} target")
    for name, value, target in rows:
        print(f"{name:28s} {value:60s} {target}")
    print(f"load average {results['machine']['load_average_before']} -> {results['machine']['load_average_after']} "
          f"on {results['machine']['cpus']} CPUs")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
