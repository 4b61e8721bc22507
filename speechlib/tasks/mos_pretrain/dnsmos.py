"""Stage 4 (part) of egs/mos_pretrain: DNSMOS P.835 OVRL as an untrained reference row.

DNSMOS (speechmos package, ONNX, offline) predicts MOS with no training on our sets; its OVRL
score against the test labels goes into Table II/III as an extra reference.
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
from speechlib.metrics.enhancement import DNSMOS
from speechlib.tasks.stage import start_stage


def main() -> None:
    stage = start_stage("dnsmos")
    hp = stage.hparams
    data = Path(hp["data_folder"])
    outputs = tuple(stage.exp_dir / "dnsmos" / f"mos_{s}.json" for s in hp["mos_sets"])
    if stage.is_done(outputs):
        print("dnsmos: up to date")
        return
    model = DNSMOS()
    for mos_set in hp["mos_sets"]:
        wavs = read_dict(data / f"{mos_set}_test" / "wav.scp")
        labels = read_dict(data / f"{mos_set}_test" / "utt2mos")
        preds, targets, seconds, audio = {}, [], 0.0, 0.0
        for utt in tqdm(sorted(wavs), desc=f"DNSMOS {mos_set}", leave=False):
            signal = load_audio(wavs[utt], 16000, utt=utt, on_rate_mismatch="resample")[0]
            start = time.perf_counter()
            score = model(signal, 16000)["dnsmos_ovrl"]
            seconds += time.perf_counter() - start
            audio += signal.size / 16000
            if not math.isnan(score):
                preds[utt] = float(score)
                targets.append(float(labels[utt]))
        result = {"system": "dnsmos", "mos_set": mos_set, **mos_metrics(np.array(list(preds.values())), targets),
                  "n_test": len(preds), "skipped": len(wavs) - len(preds),
                  "real_time_factor": audio / seconds if seconds else None, "predictions": preds}
        atomic_write_text(stage.exp_dir / "dnsmos" / f"mos_{mos_set}.json", json.dumps(result, indent=1) + "\n")
        print(f"dnsmos: {mos_set}: MSE {result['mse']:.3f} LCC {result['lcc']:.3f} SRCC {result['srcc']:.3f}")
    stage.mark_done()


if __name__ == "__main__":
    exit_on_input_error("mos_pretrain.dnsmos", main)
