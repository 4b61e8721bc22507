"""Stage 6 of egs/mos_pretrain: Tables I, II, III, controls, linear probes, label histograms and
Figure 2 into exp/<tag>/RESULTS.md.

Every number comes from this run's files (<run>/meta.json, mos_<set>.json, probe.json for every
(system, pre-training seed) run; dnsmos/mos_<set>.json; data/<tag>/pretrain_labels.json); the
paper's numbers are printed under ours. A row's metrics are means over pre-training seeds x head
seeds (± their std); its 95 % CI is a t interval over the pre-training seeds (each averaged over
its heads); the difference to the PASE baseline is a two-level bootstrap (test files paired,
seeds resampled per system: speechlib.metrics.seed_stats). A row that could not be produced says
why in its first cell.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from speechlib.io.audio import load_audio
from speechlib.io.errors import exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.data.mini import CATEGORIES
from speechlib.metrics.seed_stats import seeded_accuracy_difference, seeded_difference, t_interval
from speechlib.results.plots import scatter_lcc
from speechlib.results.tables import ResultTable, write_results
from speechlib.signal.mixing import fit_length, mix_at_snr
from speechlib.signal.noise_labels import REGIONS, SNRS_DB, band_energies, region_edges
from speechlib.tasks.mos_pretrain.noisy import LABEL_KEYS
from speechlib.tasks.mos_pretrain.systems import run_dir, system_dir, system_names, system_seeds
from speechlib.tasks.stage import start_stage

# (row label, system, paper MSE, LCC, SRCC) -- Table I, VCC2018
TABLE1 = [
    ("PASE baseline", "pase_baseline", 0.420, 0.642, 0.621),
    ("- waveform", "pase_no_waveform", 0.449, 0.615, 0.574),
    ("- LPS", "pase_no_lps", 0.426, 0.635, 0.607),
    ("- MFCC", "pase_no_mfcc", 0.415, 0.649, 0.627),
    ("- Prosody", "pase_no_prosody", 0.449, 0.616, 0.569),
    ("- SPC", "pase_no_spc", 0.442, 0.621, 0.597),
    ("- GIM", "pase_no_gim", 0.441, 0.617, 0.588),
    ("- LIM", "pase_no_lim", 0.442, 0.619, 0.587),
    ("PASE + Noise workers", "pase_noise", 0.397, 0.666, 0.639),
    ("- SNR", "pase_noise_no_snr", 0.386, 0.680, 0.655),
    ("- Category of noise", "pase_noise_no_category", 0.423, 0.646, 0.618),
    ("- Spectral Energy Distribution", "pase_noise_no_region", 0.430, 0.631, 0.598),
    ("- MFCC, SNR", "pase_noise_no_mfcc_snr", 0.437, 0.636, 0.596),
]
# (row label, system, paper emb dim, paper total params, MSE, LCC, SRCC) -- Table II, VCC2018
TABLE2 = [
    ("PASE+", "pase_plus", 256, "-", 0.423, 0.655, 0.622),
    ("Dasheng (Base)", "dasheng", 768, "86M", 0.406, 0.667, 0.634),
    ("wav2vec 2.0 (Base)", "wav2vec2", 768, "95M", 0.452, 0.624, 0.602),
    ("HuBERT (Base)", "hubert", 768, "95M", 0.460, 0.634, 0.597),
    ("ME baseline", "masked_baseline", 128, "2.5M", 0.576, 0.440, 0.448),
    ("ME + Noise workers", "masked_noise", 100, "9.63M", 0.471, 0.583, 0.577),
    ("PASE baseline", "pase_baseline", 100, "12.88M", 0.420, 0.642, 0.621),
    ("PASE + Noise workers (w/o SNR)", "pase_noise_no_snr", 100, "12.94M", 0.386, 0.680, 0.655),
]
# Table III, NISQA
TABLE3 = [
    ("PASE baseline", "pase_baseline", 1.132, 0.516, 0.494),
    ("PASE + Noise workers (w/o SNR)", "pase_noise_no_snr", 0.448, 0.752, 0.754),
    ("Masked Encoder", "masked_baseline", 1.471, 0.057, 0.074),
    ("Masked Encoder + Noise workers", "masked_noise", 1.149, 0.453, 0.443),
]
DNSMOS_ROW = "DNSMOS P.835 OVRL (reference, not trained)"
DNSMOS_P808_ROW = "DNSMOS P.808 (reference, not trained)"


CONTROLS = [
    ("Random-init PASE (untrained)", "pase_random"),
    ("Mean-pooled log-mel (no encoder)", "logmel"),
    ("PASE on noisy data, no noise workers", "pase_noisy_ssl"),
]
BASELINE = "pase_baseline"
METRIC_COLUMNS = ["MSE", "LCC", "SRCC", "LCC 95% CI", "ΔMSE vs PASE baseline", "ΔLCC vs PASE baseline",
                  "ΔSRCC vs PASE baseline", "runs"]


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def load_runs(exp: Path, hp: dict, system: str, name: str) -> list[dict] | str:
    """The result files `name` of every pre-training seed of `system` (externals: one), or why none."""
    if system in (hp["external_systems"] or {}):
        result = read_json(system_dir(exp, system) / name)
        return result["not_run"] if result and "not_run" in result else [result] if result else \
            "not run: stage 5 produced no result"
    if system not in hp["systems"]:
        return "not run: not in this config"
    runs = [read_json(run_dir(exp, system, seed) / name) for seed in system_seeds(hp, system)]
    runs = [r for r in runs if r is not None]
    return runs or "not run: stage 5 produced no result"


def predictions(runs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, heads, items) predictions and the (items,) targets of a row's runs."""
    return (np.array([[h["predictions"] for h in r["heads"]] for r in runs]), np.array(runs[0]["targets"]))


def pm(values) -> str:
    mean, std, _, _ = t_interval(values)
    return f"{mean:.3f}" if np.isnan(std) else f"{mean:.3f} ± {std:.3f}"


def interval(mean: float, low: float, high: float, signed: bool = False) -> str:
    fmt = "{:+.3f}" if signed else "{:.3f}"
    if np.isnan(low):
        return fmt.format(mean) + " (one seed: no CI)"
    return f"{fmt.format(mean)} [{fmt.format(low)}, {fmt.format(high)}]"


def metric_row(runs: list[dict] | str, base: list[dict] | str, hp: dict) -> list:
    """Cells of METRIC_COLUMNS for one system (strings: mean ± std, intervals)."""
    if isinstance(runs, str):
        return [runs] + [None] * (len(METRIC_COLUMNS) - 1)
    heads = {m: [h[m] for r in runs for h in r["heads"]] for m in ("mse", "lcc", "srcc")}
    seed_lcc = [np.mean([h["lcc"] for h in r["heads"]]) for r in runs]
    cells = [pm(heads["mse"]), pm(heads["lcc"]), pm(heads["srcc"]), interval(*_mean_ci(seed_lcc))]
    if isinstance(base, str) or runs is base:
        cells += ["–", "–", "–"]
    else:
        pred, target = predictions(runs)
        base_pred, _ = predictions(base)
        for metric in ("mse", "lcc", "srcc"):
            cells.append(interval(*seeded_difference(pred, base_pred, target, metric, int(hp["bootstrap"]),
                                                     seed=int(hp["seed"])), signed=True))
    return cells + [f"{len(runs)} x {len(runs[0]['heads'])}"]


def _mean_ci(values) -> tuple[float, float, float]:
    mean, _, low, high = t_interval(values)
    return mean, low, high


def metric_table(title: str, rows: list[tuple[str, str]], exp: Path, hp: dict, mos_set: str,
                 paper: dict | None = None, caption: str = "") -> ResultTable:
    base = load_runs(exp, hp, BASELINE, f"mos_{mos_set}.json")
    cells = {label: metric_row(load_runs(exp, hp, system, f"mos_{mos_set}.json"), base, hp)
             for label, system in rows}
    return ResultTable(title, METRIC_COLUMNS, cells, paper=paper or {}, decimals=3, caption=caption)


def table1(exp: Path, hp: dict, vcc: str) -> ResultTable:
    paper = {label: [*nums, None, None, None, None, None] for label, _, *nums in TABLE1}
    return metric_table(f"Table I: worker ablation, PASE encoder, {vcc}", [(l, s) for l, s, *_ in TABLE1],
                        exp, hp, "vcc", paper,
                        "Upper half: PASE baseline (clean data) minus one worker; lower half: PASE + noise workers "
                        "(noisy data) minus workers. MSE/LCC/SRCC: mean ± std over pre-training seeds x head "
                        "seeds (runs); LCC 95% CI: t interval over pre-training seeds; Δ: difference to the PASE "
                        "baseline with its 95% two-level bootstrap CI (test files paired, seeds resampled).")


def controls_table(exp: Path, hp: dict, vcc: str) -> ResultTable:
    rows = [("PASE baseline", BASELINE), *CONTROLS, ("PASE + Noise workers", "pase_noise")]
    return metric_table(f"Controls, {vcc}", rows, exp, hp, "vcc",
                        caption="Same columns as Table I. The untrained PASE and the log-mel average show what "
                                "the MOS head gets without pre-training; PASE on the noisy data without noise "
                                "workers separates the effect of the noisy data from that of the workers.")


def reference_rows(exp: Path, mos_set: str) -> dict[str, list]:
    dns = read_json(exp / "dnsmos" / f"mos_{mos_set}.json")
    rows = {}
    for label, key in ((DNSMOS_ROW, None), (DNSMOS_P808_ROW, "p808")):
        if dns is None:
            rows[label] = ["not run: stage 4 produced no result", None, None]
        else:
            res = dns if key is None else dns[key]
            rows[f"{label}, {dns['n_test']} test files"] = [res["mse"], res["lcc"], res["srcc"]]
    return rows


def table2(exp: Path, hp: dict, vcc: str) -> ResultTable:
    cols = ["Emb. Dim", "Total Param", "Encoder Param", "MSE", "LCC", "SRCC"]
    rows, paper = {}, {}
    for label, system, dim, total, *nums in TABLE2:
        runs = load_runs(exp, hp, system, "mos_vcc.json")
        meta = read_json((system_dir(exp, system) if system not in hp["systems"] else
                          run_dir(exp, system, system_seeds(hp, system)[0])) / "meta.json") or {}
        if isinstance(runs, str):
            rows[label] = [runs, None, None, None, None, None]
        else:
            enc = meta.get("encoder_params")
            total_ours = None if enc is None else enc + int(meta.get("worker_params", 0))
            metrics = [pm([h[m] for r in runs for h in r["heads"]]) for m in ("mse", "lcc", "srcc")]
            rows[label] = [meta.get("emb_dim"), millions(total_ours), millions(enc), *metrics]
        paper[label] = [dim, total, None, *nums]
    for label, cells in reference_rows(exp, "vcc").items():
        rows[label] = [None, None, None, *cells]
    return ResultTable(f"Table II: encoder comparison, {vcc}", cols, rows, paper=paper, decimals=3,
                       caption="Total Param: encoder + pre-training workers (ours, counted from the models); "
                               "Encoder Param: what the MOS head sees. The paper does not say which it counts. "
                               "MSE/LCC/SRCC: mean ± std over runs. DNSMOS rows: a reference scored against the "
                               "labels, not a competitor (on the mini sets the labels come from DistillMOS).")


def table3(exp: Path, hp: dict, nisqa: str) -> ResultTable:
    rows, paper = {}, {}
    for label, system, *nums in TABLE3:
        runs = load_runs(exp, hp, system, "mos_nisqa.json")
        rows[label] = [runs, None, None] if isinstance(runs, str) else \
            [pm([h[m] for r in runs for h in r["heads"]]) for m in ("mse", "lcc", "srcc")]
        paper[label] = list(nums)
    rows.update(reference_rows(exp, "nisqa"))
    return ResultTable(f"Table III: {nisqa}", ["MSE", "LCC", "SRCC"], rows, paper=paper, decimals=3,
                       caption="Mean ± std over runs (pre-training seeds x head seeds).")


def probe_systems(hp: dict) -> list[tuple[str, str]]:
    labels = {system: label for label, system, *_ in TABLE1}
    labels.update({system: label for label, system in CONTROLS})
    labels.update({"masked_baseline": "ME baseline", "masked_noise": "ME + Noise workers", "pase_plus": "PASE+"})
    names = [n for group in ("pase", "control", "masked", "plus") for n in system_names(hp, group)]
    return [(labels.get(n, n), n) for n in names]


def probe_table(exp: Path, hp: dict) -> tuple[ResultTable, dict]:
    cols = ["SNR class", "category", "region", "runs"]
    rows: dict[str, list] = {}
    correct: dict[str, np.ndarray] = {}
    chance = None
    for label, system in probe_systems(hp):
        runs = load_runs(exp, hp, system, "probe.json")
        if isinstance(runs, str):
            rows[label] = [runs, None, None, None]
            continue
        rows[label] = [interval(*_mean_ci([r[k]["accuracy"] for r in runs])) for k in LABEL_KEYS] + [len(runs)]
        correct[system] = np.array([r["snr"]["correct"] for r in runs])
        chance = [runs[0][k]["chance"] for k in LABEL_KEYS]
    if chance is not None:
        rows["majority class (chance)"] = [f"{c:.3f}" for c in chance] + [None]
    table = ResultTable("Linear probes of the frozen encoders (held-out noisy chunks)", cols, rows, decimals=3,
                        caption="Accuracy of a logistic-regression probe on the mean-pooled embedding, trained on "
                                "probe_train and tested on probe_test (noisy 1 s chunks of held-out speech, split "
                                "by utterance): mean [95% t CI over pre-training seeds]. Classes: SNR 6, category "
                                "8, region 4 (clean included).")
    return table, correct


def probe_differences(correct: dict[str, np.ndarray], hp: dict) -> ResultTable:
    rows = {}
    for label, system, base in (("PASE + noise workers − PASE baseline", "pase_noise", BASELINE),
                                ("PASE + noise workers − PASE on noisy data (no noise workers)", "pase_noise",
                                 "pase_noisy_ssl"),
                                ("PASE + noise workers − the same without the SNR worker", "pase_noise", "pase_noise_no_snr")):
        if system in correct and base in correct:
            diff = seeded_accuracy_difference(correct[system], correct[base], int(hp["bootstrap"]), int(hp["seed"]))
            rows[label] = [interval(*diff, signed=True), "yes" if diff[1] > 0 or diff[2] < 0 else "no"]
        else:
            rows[label] = ["not run: probe results missing", None]
    return ResultTable("SNR-class probe: differences", ["Δ accuracy [95% CI]", "CI excludes 0"], rows,
                       caption="Two-level bootstrap: probe test chunks paired, pre-training seeds resampled per "
                               "system.")


def histogram_table(data: Path) -> ResultTable:
    info = read_json(data / "pretrain_labels.json")
    names = {"snr": [f"{s} dB" for s in SNRS_DB] + ["clean"], "category": list(CATEGORIES) + ["clean"],
             "region": [f"{r}" for r in REGIONS] + ["clean"]}
    rows = {}
    if info is None:
        return ResultTable("Noise-label histograms", ["counts"], {"all": ["not run: stage 1 produced none"]})
    for key in LABEL_KEYS:
        counts = info["histograms"][key]
        total = sum(counts) or 1
        rows[key] = ["; ".join(f"{n} {c} ({100 * c / total:.0f}%)" for n, c in zip(names[key], counts))]
    edges = region_edges(16000)
    return ResultTable("Noise-label histograms of the pre-training draws", ["class counts (share)"], rows,
                       caption=f"Every draw of {info['epochs']} epoch(s) x {info['utterances']} utterances (fresh "
                               f"crop, clip and SNR per epoch). Regions: thirds of the mel scale, edges "
                               f"{edges[0]:.0f} Hz and {edges[1]:.0f} Hz at 16 kHz.")


def millions(count: int | None) -> str | None:
    return None if count is None else f"{count / 1e6:.2f}M"


def throughput_table(exp: Path, hp: dict) -> ResultTable:
    rows = {}
    for group in ("pase", "control", "masked", "plus"):
        for system in system_names(hp, group):
            metas = [read_json(run_dir(exp, system, seed) / "meta.json") or {} for seed in system_seeds(hp, system)]
            first = metas[0]
            rows[system] = [first.get("device"), first.get("train_utts"), first.get("epochs"), len(metas),
                            sum(float(m.get("train_seconds") or 0.0) for m in metas),
                            first.get("throughput_utts_per_s")]
    rows["paper settings on GPU"] = ["not run: no GPU in this session", None, None, None, None, None]
    return ResultTable("Pre-training cost (this run)", ["device", "utterances", "epochs", "seeds",
                                                        "seconds (all seeds)", "utterances/s (seed 1)"],
                       rows, decimals=2, caption=f"{hp['chunk_seconds']} s chunks; training time only (no "
                                                 "validation); a shared, loaded 2-core machine.")


def label_agreement(exp: Path) -> str:
    parts = []
    for mos_set in ("vcc", "nisqa"):
        dns = read_json(exp / "dnsmos" / f"mos_{mos_set}.json")
        if dns:
            parts.append(f"{mos_set} test: LCC {dns['p808']['lcc']:.3f}, SRCC {dns['p808']['srcc']:.3f} "
                         f"(n={dns['n_test']})")
    return "; ".join(parts) or "not run"


def figure2(exp: Path, hp: dict) -> str:
    """Spectral noise energy distribution of a noisy example at 0 dB (the paper uses street noise)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = Path(hp["data_folder"])
    sr = hp["sample_rate"]
    noises, cats = {}, {}
    for part in ("noise_train", "noise_test"):
        noises.update(read_dict(data / part / "wav.scp"))
        cats.update(read_dict(data / part / "utt2category"))
    # the paper shows street noise; the closest mini clips are vehicle sounds
    preferred = [c for c in sorted(noises) if any(k in c for k in ("street", "traffic", "vehicles"))]
    clip = (preferred or [c for c in sorted(noises) if cats[c] in ("things", "background")] or sorted(noises))[0]
    speech_utt, speech_wav = sorted(read_dict(data / "pretrain_eval" / "wav.scp").items())[0]
    speech = load_audio(speech_wav, sr, utt=speech_utt)[0][: 3 * sr]
    noise = load_audio(noises[clip], sr, utt=clip, on_rate_mismatch="resample")[0]
    _, _, scaled = mix_at_snr(speech, fit_length(noise, speech.size, np.random.default_rng(0)), 0.0)
    power = np.abs(np.fft.rfft(scaled.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(scaled.size, 1 / sr)
    bands = band_energies(scaled, sr)
    share = bands / bands.sum()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5), gridspec_kw={"width_ratios": [2, 1]})
    smooth = np.convolve(power, np.ones(64) / 64, mode="same")
    ax1.semilogy(freqs, smooth + 1e-12, lw=0.8)
    edges = [0.0, *region_edges(sr), sr / 2]
    for i, colour in enumerate(("tab:blue", "tab:orange", "tab:green")):
        ax1.axvspan(edges[i], edges[i + 1], alpha=0.12, color=colour, label=f"{REGIONS[i]} (mel third)")
    ax1.set_xlabel("frequency (Hz)")
    ax1.set_ylabel("noise power")
    ax1.legend(loc="upper right")
    ax1.set_title(f"noise '{clip}' at 0 dB SNR")
    ax2.bar(REGIONS, share * 100, color=["tab:blue", "tab:orange", "tab:green"])
    ax2.set_ylabel("share of noise energy (%)")
    ax2.set_title(f"label: {REGIONS[int(np.argmax(bands))]}")
    fig.tight_layout()
    fig.savefig(exp / "figure2.png", dpi=120)
    plt.close(fig)
    return "figure2.png"


def scatter(exp: Path, hp: dict) -> str | None:
    """Predicted vs DistillMOS (or real) labels of the PASE baseline's first run and head."""
    runs = load_runs(exp, hp, BASELINE, "mos_vcc.json")
    if isinstance(runs, str):
        return None
    scatter_lcc(runs[0]["targets"], runs[0]["heads"][0]["predictions"], exp / "scatter_pase_baseline_vcc.png",
                title="PASE baseline, VCC-style test")
    return "scatter_pase_baseline_vcc.png"


def main() -> None:
    stage = start_stage("score")
    hp = stage.hparams
    exp = stage.exp_dir
    data = Path(hp["data_folder"])
    info = read_json(data / "info.json") or {}
    labels = info.get("mos_labels", {})
    mini = "DistillMOS" in labels.get("vcc", "")
    notes = "\n".join([
        f"MOS labels: VCC2018 column: {labels.get('vcc', '?')}; NISQA column: {labels.get('nisqa', '?')}.",
        f"Second label source, DNSMOS P.808 against these labels on the test files: {label_agreement(exp)}.",
        f"Data counts: {json.dumps(info.get('counts', {}))}.",
        "Downstream: frozen encoder, frame embeddings mean-pooled over "
        f"{'the whole file' if hp['mos_max_seconds'] is None else 'the first %s s' % hp['mos_max_seconds']}, "
        "standardised with the training set's statistics, head 64-LayerNorm-ReLU-dropout 0.2, "
        f"output clipped to [1, 5], up to {hp['downstream']['epochs']} epochs with early stopping (patience "
        f"{hp['downstream']['patience']}) on validation MSE; {len(hp['head_seeds'])} head seeds per encoder.",
        f"Pre-training: {hp['pretrain']['epochs']} epochs (paper 60) on "
        f"{info.get('counts', {}).get('pretrain_train')} utterances, fresh draws every epoch, seeds "
        f"{list(hp['pretrain_seeds'])}; paper-scale configs (conf/paper_*.yaml) were not run: no GPU in this session.",
        "wav2vec 2.0 / HuBERT / Dasheng rows need local weights (db.sh).",
    ])
    vcc = "mini VCC2018-format set, DistillMOS labels" if mini else "VCC2018 test set"
    nisqa = "mini NISQA-format set, DistillMOS labels" if "DistillMOS" in labels.get("nisqa", "") else \
        "NISQA (TEST_FOR)"
    probes, correct = probe_table(exp, hp)
    tables = [table1(exp, hp, vcc), controls_table(exp, hp, vcc), probes, probe_differences(correct, hp),
              table2(exp, hp, vcc), table3(exp, hp, nisqa), histogram_table(data), throughput_table(exp, hp)]
    figures = [figure2(exp, hp)] + [f for f in [scatter(exp, hp)] if f]
    path = write_results(exp, "egs/mos_pretrain: noise-aware pre-training for MOS prediction", tables,
                         corpus=str(hp["corpus"]), notes=notes, figures=figures)
    print(f"score: wrote {path} and {', '.join(figures)}")


if __name__ == "__main__":
    exit_on_input_error("mos_pretrain.score", main)
