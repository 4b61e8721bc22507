"""Stage 4 (part) of egs/mos_pretrain: DNSMOS on the test files, a reference and a second label.

DNSMOS (speechmos package, ONNX, offline) predicts MOS with no training on our sets. Its P.835
OVRL and P.808 scores against the test labels go into Tables II/III as reference rows (not
competitors: on the mini sets the labels themselves come from another predictor, DistillMOS);
the P.808 scores are also the second label source of the mini sets (agreement reported).
"""
from __future__ import annotations

import json
import math
import time
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
    """speechmos' DNSMOS: P.835 OVRL and P.808 MOS of a 16 kHz signal (nan for silence)."""

    def __init__(self) -> None:
        from speechmos import dnsmos

        self._run = dnsmos.run

    def __call__(self, signal: np.ndarray) -> dict[str, float]:
        peak = float(np.max(np.abs(signal))) if signal.size else 0.0
        if peak < 1e-6:
            return {"ovrl": math.nan, "p808": math.nan}
        # speechmos insists on [-1, 1]
        result = self._run((signal / peak * 0.9 if peak > 1 else signal).astype(np.float32), sr=16000)
        return {"ovrl": float(result["ovrl_mos"]), "p808": float(result["p808_mos"])}


def main() -> None:
    stage = start_stage("dnsmos")
    hp = stage.hparams
    data = Path(hp["data_folder"])
    outputs = tuple(stage.exp_dir / "dnsmos" / f"mos_{s}.json" for s in hp["mos_sets"])
    if stage.is_done(outputs):
        print("dnsmos: up to date")
        return
    model = DNSMOSWithP808()
    for mos_set in hp["mos_sets"]:
        wavs = read_dict(data / f"{mos_set}_test" / "wav.scp")
        labels = read_dict(data / f"{mos_set}_test" / "utt2mos")
        preds, targets, seconds, audio = {}, [], 0.0, 0.0
        for utt in tqdm(sorted(wavs), desc=f"DNSMOS {mos_set}", leave=False):
            signal = load_audio(wavs[utt], 16000, utt=utt, on_rate_mismatch="resample")[0]
            start = time.perf_counter()
            scores = model(signal)
            seconds += time.perf_counter() - start
            audio += signal.size / 16000
            if not math.isnan(scores["ovrl"]):
                for key, value in scores.items():
                    preds.setdefault(key, {})[utt] = value
                targets.append(float(labels[utt]))
        ovrl = np.array(list(preds.get("ovrl", {}).values()))
        p808 = np.array(list(preds.get("p808", {}).values()))
        result = {"system": "dnsmos", "mos_set": mos_set, **mos_metrics(ovrl, targets),
                  "p808": mos_metrics(p808, targets), "n_test": len(ovrl), "skipped": len(wavs) - len(ovrl),
                  "real_time_factor": audio / seconds if seconds else None, "predictions": preds}
        atomic_write_text(stage.exp_dir / "dnsmos" / f"mos_{mos_set}.json", json.dumps(result, indent=1) + "\n")
        print(f"dnsmos: {mos_set}: OVRL vs labels LCC {result['lcc']:.3f}; P.808 vs labels LCC "
              f"{result['p808']['lcc']:.3f}")
    stage.mark_done()


if __name__ == "__main__":
    exit_on_input_error("mos_pretrain.dnsmos", main)
