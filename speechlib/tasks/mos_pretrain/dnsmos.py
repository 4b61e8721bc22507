"""Stage 4 (part) of egs/mos_pretrain: DNSMOS on the test files, a reference and a second label.

DNSMOS (speechmos package, ONNX, offline) predicts MOS with no training on our sets. Its P.835
OVRL and P.808 scores against the test labels go into Tables II/III as reference rows (not
competitors: on the mini sets the labels themselves come from another predictor, DistillMOS);
the P.808 scores are also the second label source of the mini sets (agreement reported).
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from speechlib.io.atomic import atomic_write_text
from speechlib.io.audio import load_audio
from speechlib.io.errors import exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.metrics.correlation import mos_metrics
from speechlib.tasks.stage import start_stage


class DNSMOSWithP808:
    """speechmos' DNSMOS: P.835 OVRL and P.808 MOS of a 16 kHz signal (nan for silence).

    speechmos builds its ONNX sessions with onnxruntime's default thread pool (one thread per
    core); on a shared machine that oversubscribes the cores (16 s per 2.5 s file under load). We
    install sessions limited to one thread in speechmos' module-level cache, which its `run` reuses.
    """

    def __init__(self) -> None:
        import onnxruntime as ort
        from speechmos import dnsmos

        models = Path(dnsmos.__file__).parent / "dnsmos_models"
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        model = dnsmos.DNSMOS.__new__(dnsmos.DNSMOS)
        model.primary_model_path = str(models / "sig_bak_ovr.onnx")
        model.onnx_sess = ort.InferenceSession(model.primary_model_path, options)
        model.p808_onnx_sess = ort.InferenceSession(str(models / "model_v8.onnx"), options)
        dnsmos.dnsmos = model
        self._run = dnsmos.run

    def __call__(self, signal: np.ndarray) -> dict[str, float]:
        peak = float(np.max(np.abs(signal))) if signal.size else 0.0
        if peak < 1e-6:
            return {"ovrl": math.nan, "p808": math.nan}
        # speechmos insists on [-1, 1]
        result = self._run((signal / peak * 0.9 if peak > 1 else signal).astype(np.float32), sr=16000)
        return {"ovrl": float(result["ovrl_mos"]), "p808": float(result["p808_mos"])}


_MODEL: DNSMOSWithP808 | None = None


def _score(items: list[tuple[str, str]]) -> list[tuple[str, dict[str, float], float, float]]:
    """(utt, scores, seconds of DNSMOS, seconds of audio) for each item; one model per process."""
    global _MODEL
    if _MODEL is None:
        _MODEL = DNSMOSWithP808()
    out = []
    for utt, wav in items:
        signal = load_audio(wav, 16000, utt=utt, on_rate_mismatch="resample")[0]
        start = time.perf_counter()
        scores = _MODEL(signal)
        out.append((utt, scores, time.perf_counter() - start, signal.size / 16000))
    return out


def test_items(data: Path, mos_set: str, limit: int | None, seed: int) -> list[tuple[str, str]]:
    """The test files DNSMOS scores: all, or a seeded random `limit` of them (a reference row
    needs no more, and DNSMOS costs ~0.5 s of CPU per file)."""
    wavs = read_dict(data / f"{mos_set}_test" / "wav.scp")
    utts = sorted(wavs)
    if limit is not None and limit < len(utts):
        utts = sorted(utts[i] for i in np.random.default_rng(seed).permutation(len(utts))[:limit])
    return [(u, wavs[u]) for u in utts]


def main() -> None:
    stage = start_stage("dnsmos")
    hp = stage.hparams
    data = Path(hp["data_folder"])
    outputs = tuple(stage.exp_dir / "dnsmos" / f"mos_{s}.json" for s in hp["mos_sets"])
    if stage.is_done(outputs):
        print("dnsmos: up to date")
        return
    sets = {mos_set: test_items(data, mos_set, hp["dnsmos_max_files"], int(hp["seed"])) for mos_set in hp["mos_sets"]}
    tagged = [(mos_set, item) for mos_set, items in sets.items() for item in items]
    chunks = [tagged[i:i + 16] for i in range(0, len(tagged), 16)]
    # one pool for every set, and none for a single chunk: each worker loads both ONNX models
    nj = min(max(1, int(hp["nj"])), len(chunks))
    with ProcessPoolExecutor(max_workers=nj) if nj > 1 else contextlib.nullcontext() as pool:
        parts = tqdm((pool.map if pool else map)(_score, [[item for _, item in c] for c in chunks]),
                     total=len(chunks), desc="DNSMOS", leave=False, disable=None)
        rows = [(mos_set, row) for chunk, part in zip(chunks, parts) for (mos_set, _), row in zip(chunk, part)]
    for mos_set, items in sets.items():
        labels = read_dict(data / f"{mos_set}_test" / "utt2mos")
        scored = [row for name, row in rows if name == mos_set]
        preds: dict[str, dict[str, float]] = {}
        targets = []
        for utt, scores, _, _ in scored:
            if not math.isnan(scores["ovrl"]):
                for key, value in scores.items():
                    preds.setdefault(key, {})[utt] = value
                targets.append(float(labels[utt]))
        seconds, audio = sum(r[2] for r in scored), sum(r[3] for r in scored)
        ovrl = np.array(list(preds.get("ovrl", {}).values()))
        p808 = np.array(list(preds.get("p808", {}).values()))
        result = {"system": "dnsmos", "mos_set": mos_set, **mos_metrics(ovrl, targets),
                  "p808": mos_metrics(p808, targets), "n_test": len(ovrl), "skipped": len(items) - len(ovrl),
                  "real_time_factor": audio / seconds if seconds else None, "predictions": preds}
        atomic_write_text(stage.exp_dir / "dnsmos" / f"mos_{mos_set}.json", json.dumps(result, indent=1) + "\n")
        print(f"dnsmos: {mos_set}: {len(ovrl)} files; OVRL vs labels LCC {result['lcc']:.3f}; P.808 vs labels "
              f"LCC {result['p808']['lcc']:.3f}")
    stage.mark_done()


if __name__ == "__main__":
    exit_on_input_error("mos_pretrain.dnsmos", main)
