"""Peak memory of every user command on a 10-minute recording (issue 17 item 14).

Each command (enhance, protect, restore, predict) runs as its own process, with paper-size
models (random weights: memory does not depend on their values), on one 10-minute 16 kHz mono
file, with its default options. Its peak resident memory (the kernel's ru_maxrss of that child)
must stay below the bound its --help states (MEMORY_MB of the command module). The peer, measured
in the same run, is the same command with --chunk-seconds 600: the whole file in one window, as
the commands ran before the front end (issue 17 measured 2.6 / 2.4 / 5.7 GB for enhance /
protect / predict).

    python tests/benchmarks/bench_inference_memory.py [--no-peer]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
RESULTS = Path(__file__).resolve().parent / "results" / "inference_memory.json"
SECONDS = 600
RATE = 16000

# Architectures of the paper configs (egs/<recipe>/conf/paper_*.yaml).
UNET_CHANNELS = [32, 64, 128, 256, 256]
SSED = {"channels": (32, 64, 128), "strides": (2, 2), "residual_blocks": 6, "kernel": 7, "eps": 0.05}
PASE = {"emb_dim": 100, "sinc_filters": 64, "sinc_kernel": 251, "channels": [64, 128, 128, 256, 256, 512, 512]}


def make_models(root: Path) -> None:
    from speechlib.nn.mos_head import MOSHead
    from speechlib.nn.pase import PASEEncoder
    from speechlib.nn.speaker import build_encoder, save_pretrained
    from speechlib.nn.ssed import SSED as SSEDNet
    from speechlib.nn.unet import SpeechNoiseUNet
    from speechlib.tasks.mos_pretrain.systems import save_encoder, save_head
    from speechlib.tasks.se_uda.common import save_model
    from speechlib.tasks.voice_privacy.model_io import save_models

    torch.manual_seed(0)
    corpus = "none (benchmark, random weights)"
    save_model(root / "se_uda", SpeechNoiseUNet(UNET_CHANNELS), corpus=corpus)
    save_pretrained(build_encoder("ecapa", 80, 16, 8), root / "speaker", "ecapa", 16, 8)  # only for --report
    save_models(root / "vp" / "model", SSED, SSEDNet(**SSED), SSEDNet(**SSED), root / "speaker", RATE, corpus)
    folder = root / "mos" / "encoders" / "pase_noise_no_snr"
    save_encoder(folder, PASEEncoder(**PASE).eval(), "pase", PASE, {}, corpus=corpus)
    save_head(folder / "head_nisqa", MOSHead(PASE["emb_dim"]).state_dict(), corpus=corpus)


def long_recording(path: Path, seconds: int) -> None:
    """A speech-like signal: a gliding voiced tone with a syllable-rate envelope."""
    t = np.arange(seconds * RATE) / RATE
    rng = np.random.default_rng(0)
    pitch = 140 + 40 * np.sin(2 * np.pi * 0.3 * t)
    voiced = np.sin(2 * np.pi * np.cumsum(pitch) / RATE) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    soundfile.write(path, (0.2 * voiced + 0.01 * rng.standard_normal(t.size)).astype(np.float32), RATE)


def peak_mb(argv: list[str], log: Path) -> tuple[float, float, int]:
    """(peak RSS in MB, wall seconds, exit status) of one child process."""
    start = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err,
                                env=dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1"))
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, time.perf_counter() - start, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-peer", action="store_true", help="skip the whole-file peer runs")
    parser.add_argument("--only", nargs="*", default=None, help="commands to run (default: all)")
    parser.add_argument("--seconds", type=int, default=SECONDS, help="recording length (calibration only)")
    args = parser.parse_args()
    from speechlib.tasks.mos_pretrain import predict
    from speechlib.tasks.se_uda import enhance
    from speechlib.tasks.voice_privacy import apply

    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_models(root)
        long_recording(root / "long.wav", args.seconds)
        commands = {
            "enhance": (["-m", "speechlib.tasks.se_uda.enhance", "--model", str(root / "se_uda")], ".wav",
                        enhance.MEMORY_MB),
            "protect": (["-m", "speechlib.tasks.voice_privacy.protect", "--model", str(root / "vp")], ".wav",
                        apply.MEMORY_MB),
            "restore": (["-m", "speechlib.tasks.voice_privacy.restore", "--model", str(root / "vp")], ".wav",
                        apply.MEMORY_MB),  # restores protect's output (it refuses unprotected files)
            "predict": (["-m", "speechlib.tasks.mos_pretrain.predict", "--model", str(root / "mos")], ".csv",
                        predict.MEMORY_MB),
        }
        for name, (argv, suffix, bound) in commands.items():
            if args.only and name not in args.only and not (name == "protect" and "restore" in args.only):
                continue
            source = root / ("protect.wav" if name == "restore" else "long.wav")
            base = [sys.executable, *argv, "--in", str(source), "--quiet"]
            mb, seconds, code = peak_mb(base + ["--out", str(root / f"{name}{suffix}")], root / f"{name}.log")
            row = {"peak_mb": round(mb), "seconds": round(seconds, 1), "exit": code, "bound_mb": bound,
                   "below_bound": bool(code == 0 and mb < bound)}
            if code != 0:
                row["stderr"] = (root / f"{name}.log").read_text()[-2000:]
            if not args.no_peer:
                mb, seconds, code = peak_mb(base + ["--out", str(root / f"{name}_peer{suffix}"),
                                                    "--chunk-seconds", str(args.seconds)], root / f"{name}_peer.log")
                row.update(peer_whole_file_mb=round(mb), peer_seconds=round(seconds, 1), peer_exit=code)
            rows[name] = row
            print(name, json.dumps(row), flush=True)
    if args.seconds != SECONDS:
        return  # a calibration run: the committed results are of 10-minute recordings only
    # Commands run one per call (--only) on a loaded machine add their rows to the earlier ones.
    earlier = json.loads(RESULTS.read_text())["rows"] if RESULTS.is_file() else {}
    rows = {**earlier, **rows}
    verdict = all(row["below_bound"] for row in rows.values())
    print("every peak below the bound in --help:", verdict)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"file": f"{SECONDS} s, {RATE} Hz mono", "threads": 1, "rows": rows,
                                   "targets_met": verdict,
                                   "note": "measured on a shared 2-core machine (timings loaded; memory not)"},
                                  indent=1) + "\n")

if __name__ == "__main__":
    main()
