"""Stage 6 of egs/voice_privacy: Tables 1 and 2 in the paper's layout, with the paper's numbers
beside ours, audio examples, and the speed figures of the run.

    python -m speechlib.tasks.voice_privacy.report conf/x.yaml --output_folder exp/x
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Callable

import numpy as np

from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.audio import load_audio
from speechlib.io.kaldi import read_dict
from speechlib.metrics.verification import percentile_ci
from speechlib.metrics.wer import corpus_wer
from speechlib.results.examples import write_example
from speechlib.results.tables import ResultTable, write_results
from speechlib.tasks.stage import start_stage
from speechlib.tasks.voice_privacy.asr import text_normaliser
from speechlib.tasks.voice_privacy.asv import CONDITION_PAIRS, DIFFERENCES, MODELS, PROTOCOLS
from speechlib.tasks.voice_privacy.figures import cosine_histograms, learning_curves
from speechlib.tasks.voice_privacy.protect_sets import CONTROL, condition_dir
from speechlib.tasks.voice_privacy.quality import TABLE2_CONDITIONS

logger = logging.getLogger("voice_privacy.report")

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
TRAINED_SYSTEMS = ("speaker_white", "speaker_black", "joint")  # the kit's exp/<tag>/<system>/
MODEL_NAMES = {"white": "white box: our ECAPA-TDNN, the model the generator was trained against",
               "black": "black box: our x-vector (another architecture, trained separately, never seen by the generator)",
               "ge2e": "black box: resemblyzer's pretrained GE2E encoder (someone else's model and training data)"}
PAPER_COLUMNS = {"white": slice(0, 5), "black": slice(5, 10)}  # the paper's black box is ENSKD


def with_ci(cell: dict, key: str = "eer", decimals: int = 1) -> str:
    return f"{cell[key]:.{decimals}f} [{cell[key + '_lo']:.{decimals}f}, {cell[key + '_hi']:.{decimals}f}]"


def cell_rows(subsets: list[str]) -> list[tuple[str, str, str]]:
    """(row name, subset, gender) in the paper's order, plus any other configured subset."""
    return [(f"{subset} {GENDER_NAMES[g]}", subset, g)
            for subset in dict.fromkeys(["test-clean", "dev-clean", *subsets]) for g in ("m", "f")]


def missing_reason(subset: str, hp: dict) -> str:
    if subset in hp["speaker_train_extra_subsets"]:
        return "not run (its speakers train the speaker models on this corpus)"
    return "not run (not in eval_subsets)"


def eer_tables(asv: dict, hp: dict, corpus: str) -> list[ResultTable]:
    """Table 1 per protocol and model: EER (%) [95 % CI] per condition pair."""
    subsets = list(hp["eval_subsets"])
    tables = []
    for protocol in PROTOCOLS:
        for model in MODELS:
            rows, paper = {}, {}
            for name, subset, gender in cell_rows(subsets):
                cells = asv["metrics"][protocol].get(subset, {}).get(gender, {}).get(model)
                rows[name] = ([with_ci(cells[pair]) for pair in CONDITION_PAIRS] if cells else
                              [missing_reason(subset, hp)] + [None] * (len(CONDITION_PAIRS) - 1))
                if protocol == "paper" and model in PAPER_COLUMNS and (subset, gender) in PAPER_TABLE1:
                    paper[name] = PAPER_TABLE1[(subset, gender)][PAPER_COLUMNS[model]] + [None]
            trials = ("1 target + 30 non-target trials per speaker (the paper's protocol, 20 target trials "
                      "per cell)" if protocol == "paper" else
                      "every same-gender pair of the evaluation utterances (every within-speaker pair a target)")
            headline = ([("test-clean male", "rec-rec"), ("test-clean male", "rec-adv"), ("test-clean male", "rec-rst")]
                        if protocol == "extended" and model == "white" and "test-clean" in subsets else [])
            tables.append(ResultTable(
                title=f"Table 1 ({protocol} protocol, {model}): EER (%) [95 % CI] ({corpus})",
                columns=list(CONDITION_PAIRS), rows=rows, paper=paper, headline=headline,
                caption=f"{MODEL_NAMES[model]}. Trials: {trials}; cosine scoring. rec-gn: the recording plus "
                        "Gaussian noise at the SNR of its own adversarial perturbation (the control). CIs: "
                        f"bootstrap over enrolment speakers, {asv['bootstrap']} replicates."))
    return tables


def dcf_and_difference_tables(asv: dict, subsets: list[str], corpus: str) -> list[ResultTable]:
    """Extended protocol: minDCF per condition pair, and the paired EER differences."""
    dcf_rows, diff_rows = {}, {}
    for name, subset, gender in cell_rows(subsets):
        for model in MODELS:
            cells = asv["metrics"]["extended"].get(subset, {}).get(gender, {}).get(model)
            diffs = asv["differences"]["extended"].get(subset, {}).get(gender, {}).get(model)
            if not cells:
                continue
            dcf_rows[f"{name} {model}"] = [f"{with_ci(cells[pair], 'min_dcf_0.01', 3)} / "
                                           f"{with_ci(cells[pair], 'min_dcf_0.05', 3)}" for pair in CONDITION_PAIRS]
            diff_rows[f"{name} {model}"] = [with_ci(diffs[d]) for d in DIFFERENCES]
    dcf = ResultTable(title=f"minDCF (p_target 0.01 / 0.05) [95 % CI], extended protocol ({corpus})",
                      columns=list(CONDITION_PAIRS), rows=dcf_rows,
                      caption="Normalised minimum detection cost, C_miss = C_fa = 1.")
    diff = ResultTable(title=f"Paired EER differences (points) [95 % CI], extended protocol ({corpus})",
                       columns=list(DIFFERENCES), rows=diff_rows,
                       caption="Same trials and the same bootstrap resamples for both terms. rec-adv - rec-gn "
                               "> 0 with a CI above 0: the learned perturbation hides the speaker better than "
                               "Gaussian noise of the same SNR.")
    return [dcf, diff]


def cosine_table(cosines: dict, subsets: list[str], corpus: str) -> ResultTable:
    rows = {}
    for subset in subsets:
        for model in MODELS:
            values = cosines[subset][model]
            rows[f"{subset} {model}"] = [
                f"{np.mean(values[c]):.3f} ({np.percentile(values[c], 5):.3f}, {np.percentile(values[c], 95):.3f})"
                for c in ("adv", "rst", CONTROL)]
    return ResultTable(title=f"Per-utterance cosine to the recording's embedding: mean (5th, 95th percentile) ({corpus})",
                       columns=["cos(z(x), z(x'))  adv", "cos(z(x), z(x_hat))  rst", "cos(z(x), z(gn))  noise control"],
                       rows=rows, caption="Histograms: exp/<tag>/asv/cosines_<set>.png.")


def bootstrap_mean(values: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    """(mean, 95 % CI low, high) of the finite values, resampling utterances."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan, math.nan
    means = finite[np.random.default_rng(seed).integers(0, finite.size, (n_boot, finite.size))].mean(axis=1)
    low, high = percentile_ci(means)
    return float(finite.mean()), low, high


def summarise(rows: list[dict], normalise: Callable[[str], str], n_boot: int, seed: int
              ) -> tuple[dict[str, list], dict[str, list]]:
    """Table 2 rows (ours) and count rows (NaNs, utterances) from the per-utterance records.
    PESQ and SNR: mean [95 % CI over utterances]; WER over English utterances only. Rows are taken
    in utterance order, so the bootstrap does not depend on how stage 5 split them into jobs."""
    table: dict[str, list] = {name: [] for name in PAPER_TABLE2}
    counts: dict[str, list] = {"utterances": [], "English utterances (WER)": [], "PESQ failures (NaN)": [],
                               "pitch NaN (unvoiced)": []}
    for cond in TABLE2_CONDITIONS:
        mine = sorted((r for r in rows if r["cond"] == cond), key=lambda r: r["utt"])
        english = [r for r in mine if r["lang"] == "en"]
        pesq = np.array([r["pesq"] for r in mine], float)
        snr = np.array([r["snr"] for r in mine], float)
        pitch = np.array([r["pitch_corr"] for r in mine], float)
        mean, low, high = bootstrap_mean(pesq, n_boot, seed)
        table["PESQ"].append(f"{mean:.2f} [{low:.2f}, {high:.2f}]")
        if np.isfinite(snr).any():
            mean, low, high = bootstrap_mean(snr, n_boot, seed)
            table["SNR (dB)"].append(f"{mean:.2f} [{low:.2f}, {high:.2f}]")
        else:
            table["SNR (dB)"].append("∞")
        table["WER (%)"].append(corpus_wer([normalise(r["ref"]) for r in english], [normalise(r["hyp"]) for r in english])
                                if english else "no English utterance")
        voiced = pitch[np.isfinite(pitch)]
        table["P-Mean"].append(float(voiced.mean()) if voiced.size else math.nan)
        table["P-Std"].append(float(voiced.std()) if voiced.size else math.nan)
        counts["utterances"].append(len(mine))
        counts["English utterances (WER)"].append(len(english))
        counts["PESQ failures (NaN)"].append(int(np.isnan(pesq).sum()))
        counts["pitch NaN (unvoiced)"].append(int(np.isnan(pitch).sum()))
    return table, counts


def cosine_figures(cosines: dict, out_dir: Path) -> None:
    for subset, per_model in cosines.items():
        cosine_histograms(per_model, out_dir / f"cosines_{subset}.png",
                          title=f"{subset}: cosine of each utterance's embedding to its recording's")


def listening_examples(hp: dict, exp_dir: Path, tag: str, count: int) -> list[str]:
    """rec, adv and rst of `count` Table-2 utterances as short FLACs (speechlib.results.examples),
    paths relative to exp_dir."""
    subset, rate = hp["quality_subset"], hp["sample_rate"]
    scps = {c: read_dict(condition_dir(hp["data_folder"], subset, c, tag) / "wav.scp") for c in ("rec", "adv", "rst")}
    utts = sorted(scps["adv"])[:: max(1, len(scps["adv"]) // max(count, 1))][:count]
    names = []
    for utt in utts:
        for cond in ("rec", "adv", "rst"):
            signal, _ = load_audio(scps[cond][utt], rate, utt=utt)
            path = write_example(exp_dir / "examples" / f"{utt}_{cond}.flac", signal, rate)
            names.append(str(path.relative_to(exp_dir)))
    return names


def perturbation_note(hp: dict) -> str:
    """Which perturbation the tables are for: the paper's, or the one bounded under the speech."""
    rho = hp["spectral_ratio"]
    if rho is None:
        return f"Perturbation: the paper's, |delta| <= eps = {hp['eps']} per sample."
    return (f"Perturbation: bounded under the speech spectrum (spectral_ratio {rho}: every STFT bin of delta at "
            f"most {rho} x the recording's, {20 * math.log10(rho):.0f} dB; not in the paper, README), and "
            f"|delta| <= eps = {hp['eps']}.")


def training_note(hp: dict) -> str:
    """How the generator and the remover were trained: jointly (the paper), or in two phases."""
    epochs, first = int(hp["number_of_epochs"]), hp["generator_epochs"]
    if first is None:
        return f"{epochs} epoch(s) of joint training"
    return (f"two-phase training, not the paper's joint training: {first} epoch(s) of the generator alone on "
            f"L_SSED, then {epochs - int(first)} of the remover alone on L_rpt with the generator frozen")


def main() -> None:
    stage = start_stage("report", options=())
    hp = stage.hparams
    exp_dir, tag = stage.exp_dir, stage.exp_dir.name
    eer_path = exp_dir / "asv" / "eer.json"
    parts = sorted((exp_dir / "quality").glob("part.*.jsonl"))
    if not eer_path.is_file() or not parts:
        raise InputError("run stages 4 (asv) and 5 (quality) first", str(exp_dir))
    corpus, subsets = str(hp["corpus"]), list(hp["eval_subsets"])
    asv = json.loads(eer_path.read_text())
    cosines = json.loads((exp_dir / "asv" / "cosines.json").read_text())
    cosine_figures(cosines, exp_dir / "asv")
    rows = [json.loads(line) for part in parts for line in part.read_text().splitlines()]
    ours, counts = summarise(rows, text_normaliser(hp["asr"]), int(hp["bootstrap"]), int(hp["seed"]))
    asr_note = ("Whisper (local checkpoint) with Whisper's English text normaliser" if hp["asr"] == "whisper" else
                "pocketsphinx (offline; far weaker than the paper's Whisper service: its WERs are NOT comparable "
                "with the paper's, only rec vs adv vs rst within this table)")
    t2 = ResultTable(
        title=f"Table 2: quality and content on {hp['quality_subset']} ({corpus})", columns=list(TABLE2_CONDITIONS),
        rows={**ours, **counts}, paper={name: [*cells, None] for name, cells in PAPER_TABLE2.items()},
        caption="PESQ: wide band, raw P.862 scale (-0.5..4.5), against the recording; SNR against the "
                "recording; both mean [95 % CI, bootstrap over utterances] (∞ = identical). WER: "
                f"{asr_note}; English utterances only (utt2lang). P-Mean/P-Std: YAAPT pitch correlation "
                "with the recording over jointly voiced frames. NaN PESQ and NaN pitch correlations are "
                "counted below and left out of the means. gn: the recording plus Gaussian noise at the "
                "adversarial perturbation's SNR (the ASV control; not in the paper).")
    speed = {}
    for system in TRAINED_SYSTEMS:
        throughput = exp_dir / system / "throughput.json"
        if throughput.is_file():
            row = json.loads(throughput.read_text())
            speed[f"training {system} (utterances / s; {row['epochs']} epochs in {row['train_seconds']:.0f} s)"] = [
                row["utterances_per_second"]]
    throughput = exp_dir / "asv" / "throughput.json"
    if throughput.is_file():
        for model, row in json.loads(throughput.read_text()).items():
            if model in MODELS:
                speed[f"embedding extraction, {model} (utterances / s)"] = [row["utterances_per_second"]]
    t3 = ResultTable(title="Speed of this run (CPU)", columns=["value"], rows=speed or {"not recorded": ["–"]})
    notes = ["Listening examples: the first 4 s of the recording (rec), protected (adv) and restored (rst) "
             "audio of a few Table-2 utterances.", "", perturbation_note(hp)]
    if corpus == "mini":
        notes += ["", "Mini corpus: 20 base voices per evaluation set (recorded people, recorded-voice "
                  "synthesisers and Praat pseudo-speakers), small speaker models (white "
                  f"{hp['white_model']['epochs']} epochs, black {hp['black_model']['epochs']}) and "
                  f"{training_note(hp)}; the paper's rows are for LibriSpeech "
                  "with models trained on VoxCeleb1+2 and 30 epochs. Paper-scale configs "
                  "(conf/paper_voice_privacy.yaml) were not run: they need a GPU."]
    tables = [*eer_tables(asv, hp, corpus), *dcf_and_difference_tables(asv, subsets, corpus),
              cosine_table(cosines, subsets, corpus), t2, t3]
    figures = [str(path.relative_to(exp_dir)) for path in sorted((exp_dir / "asv").glob("det/*.png"))]
    figures += [str(path.relative_to(exp_dir)) for path in sorted((exp_dir / "asv").glob("cosines_*.png"))]
    curves = {system: json.loads((exp_dir / system / "loss_curve.json").read_text()) for system in TRAINED_SYSTEMS
              if (exp_dir / system / "loss_curve.json").is_file()}
    if curves:
        figures.append(learning_curves(curves, exp_dir / "learning_curves.png",
                                       "training curves (the kit's loss_curve.json)").name)
    path = write_results(exp_dir, "egs/voice_privacy", tables, corpus=corpus, notes="\n".join(notes),
                         figures=figures, examples=listening_examples(hp, exp_dir, tag, int(hp["num_examples"])))
    stage.mark_done()
    logger.info(f"report: wrote {path}")


if __name__ == "__main__":
    exit_on_input_error("voice_privacy.report", main)
