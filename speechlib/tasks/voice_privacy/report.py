"""Stage 6 of egs/voice_privacy: Tables 1 and 2 in the paper's layout, with the paper's numbers
beside ours, audio examples, and the speed figures of the run.

    python -m speechlib.tasks.voice_privacy.report conf/x.yaml --output_folder exp/x
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np

from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.metrics.wer import corpus_wer
from speechlib.results.tables import ResultTable, write_results
from speechlib.tasks.stage import start_stage
from speechlib.tasks.voice_privacy.asv import CONDITION_PAIRS
from speechlib.tasks.voice_privacy.protect_sets import condition_dir
from speechlib.tasks.voice_privacy.quality import TABLE2_CONDITIONS

# Guo et al., Table 1 (EER %): white box then black box, columns as CONDITION_PAIRS.
PAPER_TABLE1 = {
    ("test-clean", "m"): [1.21, 18.62, 13.69, 1.21, 4.82, 1.21, 12.17, 9.56, 1.15, 3.78],
    ("test-clean", "f"): [1.64, 9.27, 18.92, 1.64, 4.80, 2.23, 11.78, 14.55, 2.29, 5.57],
    ("dev-clean", "m"): [0.50, 15.01, 13.12, 0.50, 1.29, 0.60, 7.62, 9.34, 0.60, 1.29],
    ("dev-clean", "f"): [2.48, 23.16, 17.09, 2.42, 7.90, 2.59, 15.23, 13.36, 2.77, 6.60],
}
# Guo et al., Table 2 (test-clean), columns rec adv rst an qt ms.
PAPER_TABLE2 = {
    "PESQ": [4.50, 3.67, 4.47, 3.15, 3.26, 3.31],
    "SNR (dB)": ["∞", 32.44, 50.29, 24.15, 26.96, 15.68],
    "WER (%)": [4.08, 6.94, 4.08, 5.01, 5.17, 5.61],
    "P-Mean": [1.00, 0.99, 1.00, 0.95, 0.98, 0.95],
    "P-Std": [0.00, 0.03, 0.01, 0.11, 0.43, 0.08],
}
GENDER_NAMES = {"m": "male", "f": "female"}


def table1(eers: dict, subsets: list[str], corpus: str) -> ResultTable:
    columns = [f"{box} {pair}" for box in ("white", "black") for pair in CONDITION_PAIRS]
    rows, paper = {}, {}
    for subset in list(dict.fromkeys(["test-clean", "dev-clean", *subsets])):
        for gender in ("m", "f"):
            name = f"{subset} {GENDER_NAMES[gender]}"
            cells = eers.get(subset, {}).get(gender)
            rows[name] = ([cells[box][pair] for box in ("white", "black") for pair in CONDITION_PAIRS]
                          if cells else ["not run (not in eval_subsets)"] + [None] * (len(columns) - 1))
            if (subset, gender) in PAPER_TABLE1:
                paper[name] = PAPER_TABLE1[(subset, gender)]
    return ResultTable(
        title=f"Table 1: EER (%) per set and gender ({corpus})", columns=columns, rows=rows, paper=paper,
        caption="white = our ECAPA-TDNN (the model the generator was trained against); black = our x-vector "
                "(the paper's ENSKD role: another architecture, never seen by the generator). "
                "Per set and gender: 20 speakers, 1 target + 30 non-target trials each (trial lists in "
                "exp/<tag>/asv/trials/), cosine scoring.")


def summarise(rows: list[dict]) -> tuple[dict[str, list], dict[str, list]]:
    """Table 2 rows (ours) and count rows (NaNs, utterances) from the per-utterance records."""
    table: dict[str, list] = {name: [] for name in PAPER_TABLE2}
    counts: dict[str, list] = {"utterances": [], "PESQ failures (NaN)": [], "pitch NaN (unvoiced)": []}
    for cond in TABLE2_CONDITIONS:
        mine = [r for r in rows if r["cond"] == cond]
        pesq = np.array([r["pesq"] for r in mine], float)
        snr = np.array([r["snr"] for r in mine], float)
        pitch = np.array([r["pitch_corr"] for r in mine], float)
        finite_snr = snr[np.isfinite(snr)]
        table["PESQ"].append(float(np.nanmean(pesq)) if np.isfinite(pesq).any() else math.nan)
        table["SNR (dB)"].append("∞" if finite_snr.size == 0 else float(finite_snr.mean()))
        table["WER (%)"].append(corpus_wer([r["ref"] for r in mine], [r["hyp"] for r in mine]))
        voiced = pitch[np.isfinite(pitch)]
        table["P-Mean"].append(float(voiced.mean()) if voiced.size else math.nan)
        table["P-Std"].append(float(voiced.std()) if voiced.size else math.nan)
        counts["utterances"].append(len(mine))
        counts["PESQ failures (NaN)"].append(int(np.isnan(pesq).sum()))
        counts["pitch NaN (unvoiced)"].append(int(np.isnan(pitch).sum()))
    return table, counts


def copy_examples(hp: dict, exp_dir: Path, tag: str, count: int) -> list[str]:
    subset = hp["quality_subset"]
    scps = {c: read_dict(condition_dir(hp["data_folder"], subset, c, tag) / "wav.scp") for c in ("rec", "adv", "rst")}
    utts = sorted(scps["adv"])[:: max(1, len(scps["adv"]) // max(count, 1))][:count]
    lines = []
    for utt in utts:
        links = []
        for cond in ("rec", "adv", "rst"):
            suffix = Path(scps[cond][utt]).suffix
            dest = exp_dir / "examples" / f"{utt}_{cond}{suffix}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(scps[cond][utt], dest)
            links.append(f"[{cond}](exp/{tag}/examples/{dest.name})")
        lines.append(f"- `{utt}`: " + " · ".join(links))
    return lines


def main() -> None:
    stage = start_stage("report")
    hp = stage.hparams
    exp_dir, tag = stage.exp_dir, stage.exp_dir.name
    eer_path = exp_dir / "asv" / "eer.json"
    parts = sorted((exp_dir / "quality").glob("part.*.jsonl"))
    if not eer_path.is_file() or not parts:
        raise InputError("run stages 4 (asv) and 5 (quality) first", str(exp_dir))
    corpus = str(hp["corpus"])
    t1 = table1(json.loads(eer_path.read_text()), list(hp["eval_subsets"]), corpus)
    rows = [json.loads(line) for part in parts for line in part.read_text().splitlines()]
    ours, counts = summarise(rows)
    columns = list(TABLE2_CONDITIONS)
    t2 = ResultTable(
        title=f"Table 2: quality and content on {hp['quality_subset']} ({corpus})", columns=columns,
        rows={**ours, **counts}, paper=dict(PAPER_TABLE2),
        caption="PESQ: wide band, raw P.862 scale (-0.5..4.5), against the recording; SNR against the "
                f"recording (mean over utterances, ∞ = identical); WER: {hp['asr']} (the paper: Whisper); "
                "P-Mean/P-Std: YAAPT pitch correlation with the recording over jointly voiced frames. "
                "NaN PESQ and NaN pitch correlations are counted below and left out of the means.")
    speed = {}
    curve = exp_dir / "joint_loss_curve.json"
    if curve.is_file():
        last = json.loads(curve.read_text())[-1]
        speed["joint training (audio s / s)"] = [last["audio_seconds_per_second"]]
    throughput = exp_dir / "asv" / "throughput.json"
    if throughput.is_file():
        speed["embedding extraction (utterances / s)"] = [json.loads(throughput.read_text())["utterances_per_second"]]
    t3 = ResultTable(title="Speed of this run (CPU)", columns=["value"], rows=speed or {"not recorded": ["–"]})
    notes = ["Audio examples (recording, protected, restored):", "", *copy_examples(hp, exp_dir, tag,
                                                                                 int(hp["num_examples"]))]
    if corpus == "mini":
        notes += ["", "Mini corpus: pseudo-speakers (voice-transformed copies of a few real voices), tiny "
                  "speaker models and a few epochs of joint training; the paper's rows are for LibriSpeech "
                  "with models trained on VoxCeleb1+2 and 30 epochs. Paper-scale configs "
                  "(conf/paper_voice_privacy.yaml) were not run: they need a GPU."]
    path = write_results(exp_dir, "egs/voice_privacy", [t1, t2, t3], corpus=corpus, notes="\n".join(notes))
    stage.mark_done()
    print(f"report: wrote {path}")


if __name__ == "__main__":
    exit_on_input_error("voice_privacy.report", main)
