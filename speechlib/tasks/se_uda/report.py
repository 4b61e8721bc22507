"""Stage 8 of egs/se_uda, the report: Table 1 (mean +- 95 % CI), the paired differences to the
source model, the source-domain test, Table 2, DNSMOS, figures -> exp/<tag>/RESULTS.md.

    python -m speechlib.tasks.se_uda.report conf/mini_se_uda.yaml --output_folder exp/x --nj 2 --seeds "1 2 3"

Per-seed scores are read from exp/<tag>/seed<N>/scores/<set>/<system>.<job>.tsv. A Table 1 cell is
the mean over seeds of the per-seed means +- the 95 % CI half-width over seeds (Student t) when
more than one seed ran; with one seed, +- the 95 % bootstrap CI half-width over test utterances.
The paired comparison averages each utterance's score over seeds, then resamples utterances
(paired bootstrap, the same utterances for both systems) for the mean difference and its 95 % CI.
Means skip NaN (a PESQ that found no utterance); captions say how many.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy import stats

from speechlib.io.audio import load_audio, write_audio
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.results.tables import ResultTable, write_results
from speechlib.tasks.se_uda.common import SYSTEMS, load_model, model_dir
from speechlib.tasks.se_uda.enhancer import enhance
from speechlib.tasks.se_uda.mix import read_manifest
from speechlib.tasks.se_uda.score import COLUMNS, test_sets
from speechlib.tasks.stage import Option, start_stage

ROW_NAMES = {"noisy": "Noisy", "source": "Source model", "remixit": "RemixIT", "dann": "DANN",
             "dann_remixit": "DANN+RemixIT", "srst_random": "SRST (random source)",
             "srst_similar": "SRST (similar source)", "target": "Target model"}
ADAPTED = ("dann", "remixit", "dann_remixit", "srst_random", "srst_similar", "target")
# The paper's Table 1: PESQ, STOI, SI-SDR at SNR -5, 0, 5 dB (DNS non-English test set).
PAPER_TABLE1 = {
    "Noisy": [1.126, 0.648, -4.867, 1.177, 0.714, 0.151, 1.299, 0.823, 4.969],
    "Source model": [1.325, 0.707, 3.315, 1.443, 0.777, 8.234, 1.872, 0.888, 12.556],
    "RemixIT": [1.364, 0.723, 5.598, 1.496, 0.790, 9.924, 1.919, 0.896, 14.000],
    "DANN": [1.597, 0.772, 8.762, 1.859, 0.834, 12.857, 2.301, 0.915, 14.951],
    "DANN+RemixIT": [1.557, 0.769, 9.241, 1.750, 0.829, 12.716, 2.221, 0.913, 15.228],
    "SRST (random source)": [1.603, 0.767, 8.999, 1.855, 0.833, 13.006, 2.290, 0.915, 15.237],
    "SRST (similar source)": [1.616, 0.775, 9.248, 1.861, 0.837, 13.260, 2.317, 0.917, 15.336],
    "Target model": [1.602, 0.770, 8.972, 1.900, 0.842, 13.170, 2.375, 0.916, 15.118],
}
# The paper's Table 2 (PESQ, STOI, SI-SDR). The English SI-SDR cells of the target model and the
# gap are not legible in the paper's text (only 9.229 and 15.696 survive): left empty.
PAPER_TABLE2 = {
    "DNS English: Noisy": [1.582, 0.915, 9.229], "DNS English: Source model": [2.320, 0.952, 15.696],
    "DNS English: Target model": [2.387, 0.953, None], "DNS English: Gap": [0.067, 0.010, None],
    "DNS non-English: Noisy": [1.177, 0.714, 0.151], "DNS non-English: Source model": [1.443, 0.777, 8.234],
    "DNS non-English: Target model": [1.900, 0.842, 13.170], "DNS non-English: Gap": [0.457, 0.065, 4.936],
}


# -- statistics
def bootstrap_mean_ci(values: np.ndarray, samples: int, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the 2.5 and 97.5 percentiles of the means of `samples` resamplings
    (with replacement) of the finite values."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(values.size, size=(samples, values.size))].mean(axis=1)
    return float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def seed_mean_ci(per_seed: np.ndarray) -> tuple[float, float]:
    """(mean, 95 % CI half-width) over seeds, Student t with n - 1 degrees of freedom."""
    per_seed = per_seed[np.isfinite(per_seed)]
    if per_seed.size < 2:
        return (float(per_seed.mean()) if per_seed.size else math.nan), math.nan
    half = stats.t.ppf(0.975, per_seed.size - 1) * per_seed.std(ddof=1) / math.sqrt(per_seed.size)
    return float(per_seed.mean()), float(half)


def paired_bootstrap(system: np.ndarray, baseline: np.ndarray, samples: int, seed: int = 0):
    """(mean difference, low, high) of system - baseline over the same utterances, resampled together."""
    both = np.isfinite(system) & np.isfinite(baseline)
    return bootstrap_mean_ci(system[both] - baseline[both], samples, seed)


# -- scores
class Scores:
    """Per-utterance scores of every (seed, set, system), aligned by utterance id."""

    def __init__(self, exp_dir: Path, seeds: list[int], nj: int):
        self.exp_dir, self.seeds, self.nj = exp_dir, seeds, nj
        self.cache: dict[tuple, dict[str, np.ndarray]] = {}

    def seed_dir(self, seed: int) -> Path:
        return self.exp_dir / f"seed{seed}"

    def read(self, seed: int, name: str, system: str) -> dict[str, np.ndarray]:
        key = (seed, name, system)
        if key not in self.cache:
            rows = []
            for job in range(1, self.nj + 1):
                path = self.seed_dir(seed) / "scores" / name / f"{system}.{job}.tsv"
                if not path.is_file():
                    raise InputError(f"scores missing for job {job} (did every scoring job finish?)", str(path))
                rows += [line.split("\t") for line in path.read_text().splitlines()[1:]]
            if not rows:
                raise InputError("no scored utterances", str(self.seed_dir(seed) / "scores" / name))
            rows.sort(key=lambda row: row[0])
            values = np.array([[float(x) for x in row[1:]] for row in rows])
            self.cache[key] = {"utt": np.array([row[0] for row in rows]),
                               **{column: values[:, i] for i, column in enumerate(COLUMNS)}}
        return self.cache[key]

    def metric(self, name: str, system: str, column: str) -> np.ndarray:
        """(seeds, utterances) array of one metric."""
        return np.stack([self.read(seed, name, system)[column] for seed in self.seeds])

    def improvement(self, name: str, system: str) -> np.ndarray:
        return self.metric(name, system, "si_sdr") - self.metric(name, "noisy", "si_sdr")


def cell(values: np.ndarray, samples: int) -> tuple[float, float]:
    """(mean, 95 % CI half-width) of a (seeds, utterances) array: over seeds when > 1 seed."""
    if values.shape[0] > 1:
        return seed_mean_ci(np.nanmean(values, axis=1))
    mean, low, high = bootstrap_mean_ci(values[0], samples)
    return mean, (high - low) / 2


def fmt(mean: float, half: float, decimals: int = 2) -> str:
    return f"{mean:.{decimals}f}" if math.isnan(half) else f"{mean:.{decimals}f} ± {half:.{decimals}f}"


def ci_label(scores: Scores) -> str:
    return (f"mean ± 95 % CI over {len(scores.seeds)} seeds (Student t)" if len(scores.seeds) > 1 else
            "mean ± 95 % bootstrap CI over test utterances (one seed ran)")


def table1(scores: Scores, hp: dict) -> ResultTable:
    snrs, samples = list(hp["test_snrs"]), int(hp["bootstrap_samples"])
    columns = [f"{m} {snr} dB" for snr in snrs for m in ("PESQ", "STOI", "SI-SDR")]
    rows, nan_notes = {}, []
    for system in ("noisy",) + SYSTEMS:
        cells = []
        for snr in snrs:
            name = f"target_test_snr{snr}"
            for column, decimals in (("pesq", 3), ("stoi", 3), ("si_sdr", 2)):
                cells.append(fmt(*cell(scores.metric(name, system, column), samples), decimals))
            nans = int(np.isnan(scores.metric(name, system, "pesq")).sum())
            if nans:
                nan_notes.append(f"{ROW_NAMES[system]} at {snr} dB: {nans}")
        rows[ROW_NAMES[system]] = cells
    paper = {name: PAPER_TABLE1[name] for name in rows} if snrs == [-5, 0, 5] else {}
    count = scores.metric(f"target_test_snr{snrs[0]}", "noisy", "pesq").shape[1]
    caption = (f"Target-domain (non-English speech, target noise) test set, {count} utterances per SNR; "
               f"{ci_label(scores)}. PESQ: wide-band P.862.2; undefined PESQ (no utterance detected, "
               "left out): " + ("; ".join(nan_notes) if nan_notes else "none") + ".")
    headline = [(row, "SI-SDR 0 dB") for row in ("Source model", "SRST (similar source)", "Target model")] \
        if 0 in snrs else []
    return ResultTable("Table 1: enhancement of the target-domain test set", columns, rows, paper, caption, 3,
                       headline=headline)


def paired_cell(scores: Scores, name: str, system: str, baseline: str, column: str, decimals: int,
                samples: int) -> str:
    """'+d [low, high]': system - baseline on one set and metric (seeds averaged), paired bootstrap."""
    mean, low, high = paired_bootstrap(np.nanmean(scores.metric(name, system, column), axis=0),
                                       np.nanmean(scores.metric(name, baseline, column), axis=0), samples)
    return f"{mean:+.{decimals}f} [{low:+.{decimals}f}, {high:+.{decimals}f}]"


def mixture_table(scores: Scores, hp: dict) -> ResultTable:
    """Source model (source-domain test) and oracle target model (target test) minus the unprocessed
    mixture, paired over utterances: whether each model beats the mixture, not only on average."""
    samples = int(hp["bootstrap_samples"])
    metrics = (("si_sdr", 2, "SI-SDR"), ("stoi", 3, "STOI"), ("pesq", 3, "PESQ"))
    rows = {}
    for system, prefix, key in (("source", "source_test", "source_test_snrs"), ("target", "target_test", "test_snrs")):
        for snr in hp[key]:
            rows[f"{ROW_NAMES[system]}, {prefix.replace('_', ' ')} {snr} dB"] = [
                paired_cell(scores, f"{prefix}_snr{snr}", system, "noisy", column, decimals, samples)
                for column, decimals, _ in metrics]
    caption = ("Model minus the unprocessed mixture on the same utterances (seeds averaged), paired "
               f"bootstrap ({samples} resamplings); ΔSI-SDR is the SI-SDR improvement.")
    return ResultTable("Paired differences to the mixture (source and oracle models)",
                       [f"Δ{label} [95 % CI]" for *_, label in metrics], rows, caption=caption, decimals=3)


def paired_table(scores: Scores, hp: dict) -> ResultTable:
    """Each adapted system (and the oracle) minus the source model, paired over test utterances."""
    snrs, samples = list(hp["test_snrs"]), int(hp["bootstrap_samples"])
    columns = [f"Δ{m} {snr} dB [95 % CI]" for snr in snrs for m in ("SI-SDR", "STOI")]
    rows = {}
    for system in ADAPTED:
        cells = [paired_cell(scores, f"target_test_snr{snr}", system, "source", column, decimals, samples)
                 for snr in snrs for column, decimals in (("si_sdr", 2), ("stoi", 3))]
        label = "Target model (domain gap)" if system == "target" else ROW_NAMES[system]
        rows[label] = cells
    caption = ("System minus source model on the target test set: per-utterance scores (averaged over "
               f"seeds), paired bootstrap over utterances ({samples} resamplings). A CI that excludes 0 "
               "is a difference this test set can tell apart; 'Target model' is the domain gap.")
    return ResultTable("Paired differences to the source model (target test set)", columns, rows,
                       caption=caption, decimals=3)


def source_table(scores: Scores, hp: dict) -> ResultTable:
    """The source-domain test (LibriSpeech test-clean + WHAM! tt): is the source model any good?"""
    samples = int(hp["bootstrap_samples"])
    snrs = list(hp["source_test_snrs"])
    columns = [f"{m} {snr} dB" for snr in snrs for m in ("PESQ", "STOI", "SI-SDR", "SI-SDRi")]
    rows = {}
    for system in ("noisy",) + SYSTEMS:
        cells = []
        for snr in snrs:
            name = f"source_test_snr{snr}"
            cells += [fmt(*cell(scores.metric(name, system, "pesq"), samples), 3),
                      fmt(*cell(scores.metric(name, system, "stoi"), samples), 3),
                      fmt(*cell(scores.metric(name, system, "si_sdr"), samples), 2),
                      fmt(*cell(scores.improvement(name, system), samples), 2)]
        rows[ROW_NAMES[system]] = cells
    count = scores.metric(f"source_test_snr{snrs[0]}", "noisy", "pesq").shape[1]
    return ResultTable("Source-domain test set (LibriSpeech test-clean + WHAM! tt noise)", columns, rows,
                       caption=f"{count} utterances per SNR; {ci_label(scores)}. Not in the paper: it shows "
                               "whether the source model learned its own domain.", decimals=3)


def table2(scores: Scores, hp: dict) -> ResultTable | None:
    if 0 not in list(hp["english_test_snrs"]) or 0 not in list(hp["test_snrs"]):
        return None
    rows = {}
    for label, name in (("DNS English", "english_test_snr0"), ("DNS non-English", "target_test_snr0")):
        got = {system: [float(np.nanmean(scores.metric(name, system, m))) for m in ("pesq", "stoi", "si_sdr")]
               for system in ("noisy", "source", "target")}
        rows[f"{label}: Noisy"] = got["noisy"]
        rows[f"{label}: Source model"] = got["source"]
        rows[f"{label}: Target model"] = got["target"]
        rows[f"{label}: Gap"] = [t - s for t, s in zip(got["target"], got["source"])]
    count = scores.metric("english_test_snr0", "noisy", "pesq").shape[1]
    caption = (f"English ({count} utterances, held-out DNS English readers) vs non-English target speech "
               "(target noise, SNR 0 dB; the paper used the DNS test sets). Gap = target model - source "
               "model. The paper's English SI-SDR cells for the target model and the gap are not legible.")
    return ResultTable("Table 2: the language gap", ["PESQ", "STOI", "SI-SDR"], rows, PAPER_TABLE2, caption, 3)


def dnsmos_table(scores: Scores, hp: dict) -> ResultTable | None:
    if not hp["dnsmos"] or 0 not in list(hp["test_snrs"]):
        return None
    rows = {}
    for system in ("noisy",) + SYSTEMS:
        values = {c: scores.metric("target_test_snr0", system, c) for c in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")}
        rows[ROW_NAMES[system]] = [float(np.nanmean(v)) for v in values.values()] + \
            [int(np.isfinite(values["dnsmos_ovrl"][0]).sum())]
    return ResultTable("DNSMOS P.835 (reference-free), target test set at 0 dB",
                       ["SIG", "BAK", "OVRL", "utterances"], rows,
                       caption="Not in the paper: a reference-free check of the same systems "
                               f"({hp['dnsmos_utts']} utterances spread over the set; speechmos, offline).")


# -- figures
def figure3(exp_dir: Path, seed_dir: Path, hp: dict) -> str:
    """Histogram of the post-DANN classifier's P(target) for source and target samples."""
    from speechlib.results import plots

    scores = json.loads((seed_dir / "srst" / "domain_scores.json").read_text())
    source = np.array(list(scores["source"].values()))
    target = np.array(list(scores["target"].values()))
    share = float(hp["srst_start_share"])
    threshold = float(np.quantile(source, 1.0 - share))
    fig, ax = plots.plt.subplots(figsize=(6, 3.5))
    both = np.concatenate([source, target])
    low, high = float(both.min()), float(both.max())
    bins = np.linspace(low, high + 1e-6 + 1e-3 * (high - low), 31)  # the data's range: small models sit near 0.5
    ax.hist(source, bins=bins, alpha=0.6, density=True, label=f"source ({len(source)})")
    ax.hist(target, bins=bins, alpha=0.6, density=True, label=f"target ({len(target)})")
    ax.axvline(threshold, color="k", linestyle="--", label=f"top {share:.0%} of source")
    ax.set_xlabel("domain classifier soft decision P(target) after DANN")
    ax.set_ylabel("density")
    ax.legend()
    name = "figure3_domain_scores.png"  # collect copies it to <recipe>/figures/<tag>-<name>
    plots._save(fig, exp_dir / name)
    return name


def curves_figure(exp_dir: Path, seed_dir: Path) -> str:
    """Learning curves: validation SI-SDR improvement and training loss per epoch, every system
    (the kit's exp/<tag>/seed<N>/<system>/loss_curve.json)."""
    from speechlib.results import plots

    fig, (left, right) = plots.plt.subplots(1, 2, figsize=(11, 4))
    for index, path in enumerate(sorted(seed_dir.glob("*/loss_curve.json"))):
        rows = json.loads(path.read_text())
        system, epochs = path.parent.name, [row["epoch"] for row in rows]
        style = {"marker": "o", "label": system, "color": f"C{index % 10}"}  # one colour per system in both panels
        if rows and "si_sdri" in (rows[0].get("valid") or {}):
            left.plot(epochs, [row["valid"]["si_sdri"] for row in rows], **style)
        right.plot(epochs, [row["train"]["loss"] for row in rows], **style)
    left.set(xlabel="epoch", ylabel="validation SI-SDRi (dB)", title="validation (labelled set of the system)")
    right.set(xlabel="epoch", ylabel="training loss", title="training loss (each system's own objective)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    name = "learning_curves.png"
    plots._save(fig, exp_dir / name)
    return name


def snr_figure(exp_dir: Path, scores: Scores, hp: dict) -> str:
    from speechlib.results import plots

    curves = {ROW_NAMES[s]: {float(snr): float(np.nanmean(scores.metric(f"target_test_snr{snr}", s, "si_sdr")))
                             for snr in hp["test_snrs"]} for s in ("noisy",) + SYSTEMS}
    name = "si_sdr_vs_snr.png"
    plots.metric_vs_snr(curves, exp_dir / name, "SI-SDR (dB)", "target test set: SI-SDR vs input SNR")
    return name


def examples(exp_dir: Path, seed_dir: Path, hp: dict) -> tuple[str, list[str]]:
    """Spectrograms and listening examples (FLAC, committed by collect) of one target test
    utterance at 0 dB, the median-length one: noisy, three systems, clean."""
    from speechlib.results import plots
    from speechlib.results.examples import write_example

    data = Path(hp["data_folder"]) / "target_test_snr0"
    wav, speech = read_dict(data / "wav.scp"), read_dict(data / "utt2speech")
    sr = int(hp["sample_rate"])
    utts = sorted(wav)
    mixtures = {u: load_audio(wav[u], sr)[0] for u in utts}
    utt = sorted(utts, key=lambda u: len(mixtures[u]))[len(utts) // 2]
    signals = {"noisy": mixtures[utt]}
    for system in ("source", "srst_similar", "target"):
        signals[system] = enhance(load_model(model_dir(seed_dir, system)), [mixtures[utt]])[0]
    signals["clean"] = load_audio(speech[utt], sr)[0]
    written = [write_example(exp_dir / "examples" / f"target0dB_{label}", signal, sr).relative_to(exp_dir)
               for label, signal in signals.items()]
    name = "spectrograms.png"
    plots.spectrograms(signals, sr, exp_dir / name, f"target test utterance {utt} at 0 dB")
    return name, [str(path) for path in written]


def manifests(hp: dict) -> str:
    lines = ["Fixed sets (manifest.sha256 of each: the SHA-256 of its audio, first 16 hex digits):"]
    for name in ["source_valid", "target_valid"] + test_sets(hp):
        manifest = read_manifest(Path(hp["data_folder"]) / name)
        lines.append(f"- {name}: `{manifest.get('audio', 'missing')[:16]}`")
    return "\n".join(lines)


def throughput_notes(seed_dir: Path, hp: dict) -> str:
    lines = []
    for system in ("source", "target", "classifier", "dann", "remixit", "dann_remixit", "post_dann_classifier",
                   "srst_random", "srst_similar"):
        path = seed_dir / system / "throughput.json"
        if path.is_file():
            data = json.loads(path.read_text())
            kept = "best validation loss" if system in hp["best_checkpoint_systems"] else "last epoch"
            lines.append(f"{system} {data['utterances_per_second']} utt/s ({data['epochs']} epochs, "
                         f"{data['train_seconds']} s, kept: {kept})")
    return ("Training (seed " + seed_dir.name[4:] + ", this run's device and load): " + "; ".join(lines) + "."
            if lines else "")


OPTIONS = (Option("nj", "number of scoring jobs whose score files are merged"),
           Option("seeds", 'the seeds that were trained and scored, e.g. "1 2 3"'))


def main() -> None:
    stage = start_stage("report", options=OPTIONS)
    hp, exp_dir = stage.hparams, stage.exp_dir
    nj, seeds = stage.options["nj"], stage.options["seeds"]
    scores = Scores(exp_dir, [int(s) for s in seeds.split()], int(nj))
    corpus_file = Path(hp["data_folder"]) / "corpus.txt"
    corpus = corpus_file.read_text().strip() if corpus_file.is_file() else str(hp["corpus"])
    t1 = table1(scores, hp)
    tables = [t for t in (t1, paired_table(scores, hp), source_table(scores, hp), mixture_table(scores, hp),
                          table2(scores, hp), dnsmos_table(scores, hp)) if t]
    first = scores.seed_dir(scores.seeds[0])
    spectrogram, listening = examples(exp_dir, first, hp)
    figures = [snr_figure(exp_dir, scores, hp), curves_figure(exp_dir, first), figure3(exp_dir, first, hp),
               spectrogram]
    notes = "\n\n".join(part for part in (
        f"Config `{Path(stage.exp_dir / 'conf' / 'report.yaml')}`; seeds: {seeds}; test sets: "
        f"{', '.join(test_sets(hp))}.",
        manifests(hp),
        "Figures: SI-SDR against input SNR (target test); learning curves of seed "
        f"{scores.seeds[0]}; Figure 3, the post-DANN domain classifier's soft decisions on the SRST "
        "pools (the dashed line marks SRST's selection); spectrograms of one target test utterance at "
        "0 dB (noisy, source model, SRST (similar source), target model, clean), whose audio is in "
        "examples/ (first 4 s, FLAC): " + ", ".join(Path(p).stem for p in listening) + ".",
        throughput_notes(first, hp),
        "" if len(scores.seeds) >= 3 else
        "Multi-seed results (conf/small_se_uda.yaml: every system with 3 seeds, sized for ~75 min on 2 "
        "idle CPU cores) and paper scale (conf/paper_se_uda.yaml: real corpora, GPU): not run here; "
        "the recipe's README says why.") if part)
    path = write_results(exp_dir, "egs/se_uda: domain adaptation for speech enhancement", tables, corpus,
                         notes, figures, examples=listening)
    print(f"report: wrote {path}")
    for name, cells in t1.rows.items():
        print(f"  {name:24s} " + " | ".join(str(c) for c in cells))


if __name__ == "__main__":
    exit_on_input_error("se_uda.report", main)
