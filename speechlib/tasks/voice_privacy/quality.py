"""Stage 5 of egs/voice_privacy: speech quality and content on the test set (the paper's Table 2).

    python -m speechlib.tasks.voice_privacy.quality conf/x.yaml --output_folder exp/x --job 1 --nj 2

For rec, adv, rst, an, qt, ms: PESQ (wide band, on the paper's -0.5..4.5 scale) and SNR against
the recording, the ASR transcript (for the WER), and the YAAPT pitch correlation with the
recording. The ASR runs on English utterances only (utt2lang); the others get no transcript.
One JSON line per utterance and condition in exp/<tag>/quality/part.<job>.jsonl;
a failed PESQ or an unvoiced pitch track is NaN there, and the report counts them.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from speechlib.io.atomic import atomic_write_text
from speechlib.io.audio import load_audio
from speechlib.io.errors import exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.metrics.enhancement import pesq_wb
from speechlib.metrics.pitch import f0_track, track_correlation
from speechlib.signal.mixing import snr_db
from speechlib.tasks.stage import start_stage
from speechlib.tasks.voice_privacy.asr import build_recogniser
from speechlib.tasks.voice_privacy.protect_sets import CONDITIONS, condition_dir

logger = logging.getLogger("voice_privacy.quality")

TABLE2_CONDITIONS = ("rec", *CONDITIONS)


def mos_lqo_to_raw(mos_lqo: float) -> float:
    """Invert the P.862.2 mapping MOS-LQO = 0.999 + 4 / (1 + exp(-1.3669 x + 3.8224)) back to the
    raw P.862 score x, whose range is -0.5..4.5 (the scale the paper reports: rec = 4.50)."""
    if not math.isfinite(mos_lqo):
        return math.nan
    fraction = 4.0 / min(max(mos_lqo - 0.999, 1e-9), 4.0 - 1e-9) - 1.0
    raw = (3.8224 - math.log(fraction)) / 1.3669
    return float(min(max(raw, -0.5), 4.5))


def signal_to_noise(reference: np.ndarray, test: np.ndarray) -> float:
    """SNR (dB) of the recording over the difference; infinite for an identical signal."""
    n = min(len(reference), len(test))
    difference = test[:n] - reference[:n]
    if not np.any(difference):
        return math.inf
    return float(snr_db(reference[:n], difference))


def round_robin(utt2spk: dict[str, str], limit: int | None) -> list[str]:
    """Up to `limit` utterances, spread over speakers (round-robin in sorted order)."""
    by_speaker: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        by_speaker.setdefault(utt2spk[utt], []).append(utt)
    chosen, depth = [], 0
    while (limit is None or len(chosen) < limit) and any(depth < len(u) for u in by_speaker.values()):
        for utts in by_speaker.values():
            if depth < len(utts) and (limit is None or len(chosen) < limit):
                chosen.append(utts[depth])
        depth += 1
    return chosen


def select_utterances(utt2spk: dict[str, str], languages: dict[str, str], limit: int | None) -> list[str]:
    """Up to `limit` utterances: up to half of them English (the WER needs English; the mini
    corpus's evaluation sets are mostly other languages), the rest spread over the speakers of
    the other languages."""
    if limit is None:
        return sorted(utt2spk)
    english = round_robin({u: s for u, s in utt2spk.items() if languages[u] == "en"}, limit // 2)
    others = round_robin({u: s for u, s in utt2spk.items() if languages[u] != "en"}, limit - len(english))
    return sorted(english + others)


def main() -> None:
    stage = start_stage("quality.{job}of{nj}", options=(), jobs=True)
    hp = stage.hparams
    tag, job, jobs = stage.exp_dir.name, stage.job, stage.nj
    out = stage.exp_dir / "quality" / f"part.{job}.jsonl"
    if stage.is_done((out,)):
        logger.info(f"quality: {out} is up to date")
        return
    subset, rate = hp["quality_subset"], hp["sample_rate"]
    scps = {c: read_dict(condition_dir(hp["data_folder"], subset, c, tag) / "wav.scp") for c in TABLE2_CONDITIONS}
    utt2spk = {u: s for u, s in read_dict(Path(hp["data_folder"]) / subset / "utt2spk").items()
               if all(u in scp for scp in scps.values())}
    languages = read_dict(Path(hp["data_folder"]) / subset / "utt2lang")
    utts = select_utterances(utt2spk, languages, hp["quality_max_utts"])[job - 1::jobs]
    text = read_dict(Path(hp["data_folder"]) / subset / "text")
    recognise = build_recogniser(hp["asr"], hp["whisper_dir"], rate)
    rows = []
    for utt in tqdm(utts, desc=f"quality job {job}/{jobs}"):
        reference, _ = load_audio(scps["rec"][utt], rate, utt=utt)
        reference_f0 = f0_track(reference, rate)
        for cond in TABLE2_CONDITIONS:
            signal = reference if cond == "rec" else load_audio(scps[cond][utt], rate, utt=utt)[0]
            n = min(len(reference), len(signal))
            rows.append({"utt": utt, "cond": cond,
                         "pesq": mos_lqo_to_raw(pesq_wb(signal[:n], reference[:n], rate)),
                         "snr": signal_to_noise(reference, signal),
                         "lang": languages[utt], "ref": text[utt],
                         "hyp": recognise(signal) if languages[utt] == "en" else None,
                         "pitch_corr": track_correlation(reference_f0, reference_f0 if cond == "rec"
                                                         else f0_track(signal, rate))})
    atomic_write_text(out, "".join(json.dumps(row) + "\n" for row in rows))
    stage.mark_done()
    logger.info(f"quality: job {job}/{jobs}: {len(utts)} utterances x {len(TABLE2_CONDITIONS)} conditions -> {out}")


if __name__ == "__main__":
    exit_on_input_error("voice_privacy.quality", main)
