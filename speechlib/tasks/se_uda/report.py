"""Stage 8 of egs/se_uda, the merge: Table 1, Table 2, DNSMOS, Figure 3 -> exp/<tag>/RESULTS.md.

    python -m speechlib.tasks.se_uda.report conf/mini_se_uda.yaml --output_folder exp/x --nj 2

Means skip NaN: a PESQ that found no utterance is NaN for that utterance, and the table
caption says how many there were, per system and SNR.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from speechlib.io.atomic import atomic_path
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.results.tables import ResultTable, write_results
from speechlib.tasks.se_uda.common import SYSTEMS, model_dir
from speechlib.tasks.se_uda.score import COLUMNS, _pop, test_sets
from speechlib.tasks.stage import start_stage

ROW_NAMES = {"noisy": "Noisy", "source": "Source model", "remixit": "RemixIT", "dann": "DANN",
             "dann_remixit": "DANN+RemixIT", "srst_random": "SRST (random source)",
             "srst_similar": "SRST (similar source)", "target": "Target model"}
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


def read_scores(exp_dir: Path, name: str, system: str, nj: int) -> dict[str, np.ndarray]:
    """Every job's rows for one (set, system), as column arrays."""
    rows = []
    for job in range(1, nj + 1):
        path = exp_dir / "scores" / name / f"{system}.{job}.tsv"
        if not path.is_file():
            raise InputError(f"scores missing for job {job} (did every scoring job finish?)", str(path))
        rows += [line.split("\t") for line in path.read_text().splitlines()[1:]]
    if not rows:
        raise InputError("no scored utterances", str(exp_dir / "scores" / name))
    values = np.array([[float(x) for x in row[1:]] for row in rows])
    return {column: values[:, i] for i, column in enumerate(COLUMNS)}


def _mean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def table1(exp_dir: Path, hp: dict, nj: int) -> tuple[ResultTable, dict, list[str]]:
    snrs = list(hp["test_snrs"])
    columns = [f"{m} {snr} dB" for snr in snrs for m in ("PESQ", "STOI", "SI-SDR")]
    rows, means, nan_notes = {}, {}, []
    for system in ("noisy",) + SYSTEMS:
        cells = []
        for snr in snrs:
            scores = read_scores(exp_dir, f"target_test_snr{snr}", system, nj)
            mean = {m: _mean(scores[m]) for m in ("pesq", "stoi", "si_sdr")}
            means[(system, snr)] = mean
            cells += [mean["pesq"], mean["stoi"], mean["si_sdr"]]
            nans = int(np.isnan(scores["pesq"]).sum())
            if nans:
                nan_notes.append(f"{ROW_NAMES[system]} at {snr} dB: {nans} of {len(scores['pesq'])}")
        rows[ROW_NAMES[system]] = cells
    paper = {name: PAPER_TABLE1[name] for name in rows} if snrs == [-5, 0, 5] else {}
    count = len(read_scores(exp_dir, f"target_test_snr{snrs[0]}", "noisy", nj)["pesq"])
    caption = (f"Target-domain (non-English speech, target noise) test set, {count} utterances per SNR. "
               "PESQ: wide-band P.862.2. PESQ undefined (no utterance detected, left out of the mean): "
               + ("; ".join(nan_notes) if nan_notes else "none") + ".")
    return ResultTable("Table 1: enhancement of the target-domain test set", columns, rows, paper, caption, 3), \
        means, nan_notes


def table2(exp_dir: Path, hp: dict, nj: int, means: dict) -> ResultTable | None:
    if 0 not in list(hp["english_test_snrs"]) or 0 not in list(hp["test_snrs"]):
        return None
    rows = {}
    for label, name in (("DNS English", "english_test_snr0"), ("DNS non-English", "target_test_snr0")):
        got = {}
        for system in ("noisy", "source", "target"):
            scores = read_scores(exp_dir, name, system, nj)
            got[system] = [_mean(scores[m]) for m in ("pesq", "stoi", "si_sdr")]
        rows[f"{label}: Noisy"] = got["noisy"]
        rows[f"{label}: Source model"] = got["source"]
        rows[f"{label}: Target model"] = got["target"]
        rows[f"{label}: Gap"] = [t - s for t, s in zip(got["target"], got["source"])]
    caption = ("English vs non-English target speech (target noise, SNR 0 dB; the paper used the DNS "
               "test sets). Gap = target model - source model. The paper's English SI-SDR cells for the "
               "target model and the gap are not legible in its text.")
    return ResultTable("Table 2: the language gap", ["PESQ", "STOI", "SI-SDR"], rows, PAPER_TABLE2, caption, 3)


def dnsmos_table(exp_dir: Path, hp: dict, nj: int) -> ResultTable | None:
    if not hp["dnsmos"] or 0 not in list(hp["test_snrs"]):
        return None
    rows = {}
    for system in ("noisy",) + SYSTEMS:
        scores = read_scores(exp_dir, "target_test_snr0", system, nj)
        done = ~np.isnan(scores["dnsmos_ovrl"])
        rows[ROW_NAMES[system]] = [_mean(scores[c]) for c in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")] + \
            [int(done.sum())]
    return ResultTable("DNSMOS P.835 (reference-free), target test set at 0 dB",
                       ["SIG", "BAK", "OVRL", "utterances"], rows,
                       caption="Not in the paper: a reference-free check of the same systems "
                               f"({hp['dnsmos_utts']} utterances spread over the set; speechmos, offline).")


def figure3(exp_dir: Path, hp: dict) -> str:
    """Histogram of the post-DANN classifier's P(target) for source and target samples."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = json.loads((exp_dir / "srst" / "domain_scores.json").read_text())
    source = np.array(list(scores["source"].values()))
    target = np.array(list(scores["target"].values()))
    share = float(hp["srst_start_share"])
    threshold = float(np.quantile(source, 1.0 - share))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    both = np.concatenate([source, target])
    low, high = float(both.min()), float(both.max())
    bins = np.linspace(low, high + 1e-6 + 1e-3 * (high - low), 31)  # the data's range: small models sit near 0.5
    ax.hist(source, bins=bins, alpha=0.6, density=True, label=f"source ({len(source)})")
    ax.hist(target, bins=bins, alpha=0.6, density=True, label=f"target ({len(target)})")
    ax.axvline(threshold, color="k", linestyle="--", label=f"top {share:.0%} of source")
    ax.set_xlabel("domain classifier soft decision P(target) after DANN")
    ax.set_ylabel("density")
    ax.legend()
    fig.tight_layout()
    name = "figure3_domain_scores.png"  # collect copies it to <recipe>/figures/<tag>-<name>
    with atomic_path(exp_dir / name, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return name


def throughput_notes(exp_dir: Path) -> str:
    lines = []
    for system in ("source", "classifier", "dann", "remixit", "dann_remixit", "srst_random", "srst_similar",
                   "target"):
        info = model_dir(exp_dir, system) / "info.json"
        if info.is_file():
            data = json.loads(info.read_text())
            if data:
                lines.append(f"{system} {data['utterances_per_second']} utt/s ({data['epochs']} epochs, "
                             f"{data['train_seconds']} s)")
    return "Training throughput (this run's device): " + "; ".join(lines) + "." if lines else ""


def main() -> None:
    nj, argv = _pop(sys.argv[1:], "--nj")
    if nj is None:
        raise InputError("--nj is required (the number of scoring jobs)")
    stage = start_stage("report", argv)
    hp, exp_dir = stage.hparams, stage.exp_dir
    corpus_file = Path(hp["data_folder"]) / "corpus.txt"
    corpus = corpus_file.read_text().strip() if corpus_file.is_file() else str(hp["corpus"])
    t1, means, nan_notes = table1(exp_dir, hp, int(nj))
    tables = [t for t in (t1, table2(exp_dir, hp, int(nj), means), dnsmos_table(exp_dir, hp, int(nj))) if t]
    figure = figure3(exp_dir, hp)
    notes = "\n\n".join(part for part in (
        f"Config `{Path(stage.exp_dir / 'conf' / 'report.yaml')}`; test sets: {', '.join(test_sets(hp))}.",
        "Figure 3: the post-DANN domain classifier's soft decisions on the source and target training "
        "mixtures; the dashed line marks the 30% most target-like source samples (SRST's selection).",
        throughput_notes(exp_dir)) if part)
    path = write_results(exp_dir, "egs/se_uda: domain adaptation for speech enhancement", tables, corpus,
                         notes, [figure])
    print(f"report: wrote {path}")
    for name, cells in t1.rows.items():
        print(f"  {name:24s} " + " ".join(f"{c:7.3f}" for c in cells))


if __name__ == "__main__":
    exit_on_input_error("se_uda.report", main)
