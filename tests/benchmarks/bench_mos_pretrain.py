"""Benchmark egs/mos_pretrain: MOS prediction speed against DNSMOS, and pre-training throughput.

Targets (issue 6): MOS prediction (encoder + head) on CPU with one thread faster than DNSMOS on
the same files in the same run, and at least 50x real time; pre-training throughput recorded.
Speed does not depend on the weights, so freshly initialised models of the recipe's
architectures are timed (the mini config's narrow PASE, the paper-size PASE, the masked
encoder). Files: the first test-clean utterances of the mini corpus (synthetic harmonics if it
is missing), 10 s each.

    python tests/benchmarks/bench_mos_pretrain.py [--files 20]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
RESULTS = Path(__file__).resolve().parent / "results" / "mos_pretrain.json"

from hyperpyyaml import load_hyperpyyaml  # noqa: E402

from speechlib.io.audio import load_audio  # noqa: E402
from speechlib.metrics.enhancement import DNSMOS  # noqa: E402
from speechlib.nn.masked_encoder import MaskedEncoder  # noqa: E402
from speechlib.nn.mos_head import MOSHead, mean_pool  # noqa: E402
from speechlib.nn.pase import PASEEncoder  # noqa: E402
from speechlib.nn.workers import WorkerSet  # noqa: E402
from speechlib.signal import features  # noqa: E402

SR = 16000


def test_files(count: int, seconds: float = 10.0) -> tuple[list[np.ndarray], str]:
    """`count` signals of `seconds` each, concatenated from mini test-clean utterances (10 s: DNSMOS
    sees whole 9 s windows, so neither side pays for padding)."""
    root = REPO / "mini" / "LibriSpeech" / "test-clean"
    flacs = sorted(root.rglob("*.flac")) if root.is_dir() else []
    length = int(seconds * SR)
    if flacs:
        pool = np.concatenate([load_audio(str(f), SR)[0] for f in flacs[: 8 * count]])
        if pool.size >= count * length:
            return [pool[i * length:(i + 1) * length] for i in range(count)], \
                f"mini test-clean speech, {count} x {seconds:.0f} s"
    t = np.arange(length) / SR
    return [(0.2 * np.sin(2 * np.pi * (100 + 10 * i) * t)).astype(np.float32) for i in range(count)], "synthetic"


def time_predictor(name: str, encoder: torch.nn.Module, signals: list[np.ndarray], batch: int) -> dict:
    """Encoder + MOS head over `signals` in batches of `batch` equal-length files, under
    torch.inference_mode (PASE then takes its inference path: sinc filters built once, BatchNorm
    folded into the convolutions)."""
    encoder.eval()
    head = MOSHead(encoder.emb_dim).eval()
    batches = [torch.from_numpy(np.stack(signals[i:i + batch])) for i in range(0, len(signals), batch)]
    with torch.inference_mode():
        head(mean_pool(encoder(batches[0])))  # warm-up (and PASE's inference weights)
        start, cpu = time.perf_counter(), time.process_time()
        for wav in batches:
            head(mean_pool(encoder(wav)))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    audio = sum(s.size for s in signals) / SR
    return {"system": name, "batch": batch, "seconds": seconds, "cpu_seconds": cpu, "audio_seconds": audio,
            "x_real_time": audio / seconds, "x_real_time_cpu": audio / cpu,
            "params": int(sum(p.numel() for p in encoder.parameters()) + sum(p.numel() for p in head.parameters()))}


def time_dnsmos(signals: list[np.ndarray]) -> dict:
    model = DNSMOS()
    model(signals[0], SR)  # the first call loads the ONNX sessions
    start, cpu = time.perf_counter(), time.process_time()
    for s in signals:
        model(s, SR)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    audio = sum(s.size for s in signals) / SR
    return {"system": "DNSMOS P.835 (speechmos, onnxruntime)", "seconds": seconds, "cpu_seconds": cpu,
            "audio_seconds": audio, "x_real_time": audio / seconds, "x_real_time_cpu": audio / cpu, "params": None}


def conv_macs_per_second(encoder: PASEEncoder) -> int:
    """Multiply-accumulates of the encoder's convolutions for one second of 16 kHz audio
    (output length x out channels x in channels x kernel, every Conv1d and the sinc layer)."""
    macs = 0

    def count(module, _inputs, output):
        nonlocal macs
        out_ch, in_ch, kernel = module.weight.shape
        macs += output.shape[-1] * out_ch * in_ch * kernel

    hooks = [m.register_forward_hook(count) for m in encoder.modules() if isinstance(m, torch.nn.Conv1d)]
    encoder.train()  # the layer-by-layer path, where the hooks fire
    with torch.no_grad():
        encoder(torch.zeros(1, SR))
    for hook in hooks:
        hook.remove()
    sinc = encoder.sinc
    macs += SR * sinc.out_channels * sinc.kernel_size  # SincConv builds its filters and calls conv1d
    encoder.eval()
    return macs


def gemm_macs_per_second(size: int = 1024, repeats: int = 8) -> float:
    """This core's fp32 matrix-multiply throughput (MAC/s, one thread): what the best-shaped
    convolution can reach; x real time can be no higher than this over the encoder's MACs/s."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.process_time()
    for _ in range(repeats):
        a @ b
    return repeats * size ** 3 / (time.process_time() - start)


def pretrain_throughput(name: str, encoder: PASEEncoder, decoder: dict, batch: int, steps: int) -> dict:
    """Utterances (1 s chunks) per second for full PASE + noise-worker training steps."""
    names = ["waveform", "lps", "mfcc", "prosody", "lim", "gim", "spc", "snr", "category", "region"]
    workers = WorkerSet(names, encoder.emb_dim, {"lps": 1025, "mfcc": 20, "prosody": 4}, waveform_decoder=decoder)
    optimizer = torch.optim.Adam(list(encoder.parameters()) + list(workers.parameters()), lr=5e-4)
    wav = torch.randn(batch, SR) * 0.1
    targets = {"waveform": wav, "lps": features.lps(wav), "mfcc": features.mfcc(wav),
               "prosody": torch.from_numpy(np.stack([features.prosody(w.numpy()) for w in wav])),
               "snr": torch.randint(6, (batch,)), "category": torch.randint(8, (batch,)),
               "region": torch.randint(4, (batch,))}
    encoder.train()
    times = []
    for step in range(steps + 1):
        start = time.perf_counter()
        loss, _ = workers(encoder(wav), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:  # the first step warms up
            times.append(time.perf_counter() - start)
    return {"system": name, "device": "cpu", "threads": torch.get_num_threads(), "batch": batch,
            "utts_per_s": batch / float(np.mean(times))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--batch", type=int, default=4, help="files per encoder call")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with open(REPO / "egs" / "mos_pretrain" / "conf" / "mini_mos_pretrain.yaml") as handle:
        hp = load_hyperpyyaml(handle)
    signals, source = test_files(args.files)
    load_before = os.getloadavg()
    mini = PASEEncoder(**{k: list(v) if isinstance(v, list) else v for k, v in hp["pase"].items()})
    paper = PASEEncoder()
    rows = [time_dnsmos(signals),  # DNSMOS first and last: the load of the machine drifts
            time_predictor("PASE (mini config) + MOS head", mini, signals, args.batch),
            time_predictor("PASE (paper size) + MOS head", paper, signals, args.batch),
            time_predictor("PASE (paper size) + MOS head, one file per call", paper, signals, 1),
            time_predictor("Masked encoder + MOS head", MaskedEncoder(), signals, args.batch),
            time_dnsmos(signals)]
    dnsmos_runs = [rows.pop(0), rows[-1]]
    rows[-1] = {**dnsmos_runs[1], "seconds": sum(r["seconds"] for r in dnsmos_runs) / 2,
                "cpu_seconds": sum(r["cpu_seconds"] for r in dnsmos_runs) / 2}
    rows[-1].update(x_real_time=rows[-1]["audio_seconds"] / rows[-1]["seconds"],
                    x_real_time_cpu=rows[-1]["audio_seconds"] / rows[-1]["cpu_seconds"],
                    runs_x_real_time=[r["x_real_time"] for r in dnsmos_runs])
    dns, dns_cpu = rows[-1]["x_real_time"], rows[-1]["x_real_time_cpu"]
    for row in rows:
        row["vs_dnsmos"] = row["x_real_time"] / dns
        row["vs_dnsmos_cpu"] = row["x_real_time_cpu"] / dns_cpu
        row["meets_50x_cpu"] = row["x_real_time_cpu"] >= 50
    macs, gemm = conv_macs_per_second(paper), gemm_macs_per_second()
    bound = {"paper_pase_gmac_per_audio_second": macs / 1e9, "gemm_gmac_per_cpu_second": gemm / 1e9,
             "x_real_time_cpu_upper_bound": gemm / macs}
    train = [pretrain_throughput("PASE (mini config) + 10 workers", mini, dict(hp["waveform_decoder"]), 16, 3),
             pretrain_throughput("PASE (paper size) + 10 workers", paper, {}, 8, 2)]
    print(f"MOS prediction on CPU, 1 torch thread, {source}, {rows[0]['audio_seconds']:.0f} s of audio; "
          f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after (2 cores)")
    print("DNSMOS: the mean of a run before and a run after the encoders (the machine's load drifts)")
    print("x RT wall: audio / wall-clock time; x RT CPU: audio / CPU time of the process (all its threads),")
    print("which a shared machine does not distort; DNSMOS's onnxruntime uses its own thread pool.")
    print(f"{'system':42s} {'x RT wall':>10s} {'x RT CPU':>9s} {'vs DNSMOS (wall/CPU)':>21s} {'>=50x CPU':>9s} "
          f"{'params':>8s}")
    for row in rows:
        params = "-" if row["params"] is None else f"{row['params'] / 1e6:.2f}M"
        print(f"{row['system']:42s} {row['x_real_time']:10.1f} {row['x_real_time_cpu']:9.1f} "
              f"{row['vs_dnsmos']:10.2f}/{row['vs_dnsmos_cpu']:<10.2f} {str(row['meets_50x_cpu']):>9s} {params:>8s}")
    print(f"\nBound: the paper-size PASE costs {macs / 1e9:.2f} GMAC per second of audio; this core's fp32 "
          f"GEMM does {gemm / 1e9:.1f} GMAC per CPU second, so no fp32 implementation on one thread exceeds "
          f"{gemm / macs:.1f}x real time here (50x needs {50 * macs / 1e9:.0f} GMAC/s)")
    print("\nPre-training throughput on CPU (1 s chunks, forward + backward + Adam step)")
    for row in train:
        print(f"{row['system']:42s} {row['utts_per_s']:8.2f} utterances/s (batch {row['batch']})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"host": platform.node(), "cpu_count": os.cpu_count(), "files": source,
                                   "load_average_before": load_before, "load_average_after": os.getloadavg(),
                                   "prediction": rows, "pretraining": train, "bound": bound,
                                   "gpu": "not measured: no GPU in this session"}, indent=1) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
