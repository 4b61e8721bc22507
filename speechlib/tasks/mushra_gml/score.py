"""Stage 5 of egs/mushra_gml: Table I(a), Table I(b), CI coverage and held-out NLL, Figures 1 and 2.

    python -m speechlib.tasks.mushra_gml.score conf/mini_mushra_gml.yaml --output_folder exp/x

For every held-out test set and every trained system x seed: the predicted mean score (mu), the
predicted 95 % CI for the test's number of listeners (t-distribution; logistic std = pi a / sqrt 3)
against the subjective mean and its t-CI (from the screened panel). ViSQOL v3's R_p and R_s on
the same items; its OR is "n.a." as in the paper, and beside it our own OR after a 3rd-order
polynomial ViSQOL -> MUSHRA mapping fitted on training-test items (our addition). Numbers are
means over seeds with the half-width of their 95 % t-CI; the paper's numbers are printed under ours.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from speechlib.data.listening_tests import load_test_dir  # noqa: E402
from speechlib.io.atomic import atomic_path, atomic_write_text  # noqa: E402
from speechlib.io.errors import InputError, exit_on_input_error  # noqa: E402
from speechlib.metrics.correlation import lcc, srcc  # noqa: E402
from speechlib.metrics.mushra import (NLLS, distribution_std, mean_and_ci, outlier_ratio,  # noqa: E402
                                      panel_statistics, rmse, t_ci_halfwidth, test_set_metrics)
from speechlib.io.audio import load_audio  # noqa: E402
from speechlib.results.examples import write_example  # noqa: E402
from speechlib.results.tables import ResultTable, write_results  # noqa: E402
from speechlib.tasks.model_dir import load_model_dir  # noqa: E402
from speechlib.signal.augment import mix_scores  # noqa: E402
from speechlib.tasks.mushra_gml.train import load_tests, merge_tests  # noqa: E402
from speechlib.tasks.mushra_gml.visqol import pair_key  # noqa: E402
from speechlib.nn.inse import StereoInSENet  # noqa: E402
from speechlib.tasks.stage import start_stage  # noqa: E402

log = logging.getLogger("mushra_gml.score")

LABELS = {"visqol": "ViSQOL-v3", "visqol_mapped": "ViSQOL-v3 + cubic map (ours)", "nongml": "Non-GML",
          "gml": "GML", "gml_cutmix": "GML w/ CutMix", "nongml_cutmix": "Non-GML w/ CutMix"}
TEST_LABELS = {"mono_low": "Mono Bitrates", "stereo_low": "Stereo Low Bitrates",
               "stereo_high": "Stereo High Bitrates", "binaural_1": "Binaural Test-1", "binaural_2": "Binaural Test-2"}
# Jiang et al., Table I(a): (R_p, R_s, OR) per test in the order of TEST_LABELS; (b): (R_p, R_s, RMSE).
PAPER_A = {"visqol": [0.81, 0.84, None, 0.77, 0.78, None, 0.82, 0.90, None, 0.90, 0.93, None, 0.96, 0.85, None],
           "nongml": [0.87, 0.82, 0.92, 0.87, 0.83, 0.82, 0.93, 0.93, 0.78, 0.98, 0.96, 0.27, 0.98, 0.89, 0.77],
           "gml": [0.84, 0.80, 0.75, 0.82, 0.75, 0.63, 0.90, 0.90, 0.62, 0.96, 0.94, 0.34, 0.99, 0.95, 0.42],
           "gml_cutmix": [0.88, 0.88, 0.80, 0.89, 0.86, 0.70, 0.92, 0.94, 0.56, 0.98, 0.95, 0.19, 0.98, 0.92, 0.56],
           "nongml_cutmix": [0.87, 0.83, 0.87, 0.87, 0.80, 0.80, 0.90, 0.89, 0.78, 0.98, 0.95, 0.23, 0.99, 0.95,
                             0.51]}
PAPER_B = {"gml": [0.36, 0.28, 2.80, 0.31, 0.23, 3.82, 0.38, 0.34, 4.44, 0.37, 0.38, 7.61, 0.21, 0.28, 4.46],
           "gml_cutmix": [0.79, 0.44, 0.87, 0.80, 0.43, 1.13, 0.78, 0.67, 1.50, 0.70, 0.65, 3.20, 0.76, 0.60, 2.25]}
NOT_RUN = "not run: no binaural data"


def subjective(test: dict) -> dict:
    """Per item: subjective mean, t-CI, std and listeners of the screened panel."""
    scores = test["scores"].numpy()
    mask = np.isfinite(scores)
    mean, std, n = panel_statistics(np.nan_to_num(scores), mask)
    return {"mean": mean, "std": std, "n": n, "ci": t_ci_halfwidth(std, n), "scores": scores, "mask": mask}


def predict(model_dir: Path, features: torch.Tensor, batch: int = 32) -> tuple[dict, np.ndarray]:
    """(extra of the model dir, raw outputs (items, 1 or 2)) of a trained system on features."""
    md = load_model_dir(model_dir, "mushra_gml", "listener")
    model = md.build("model", StereoInSENet)
    with torch.no_grad():
        outputs = torch.cat([model(features[i:i + batch].float()) for i in range(0, len(features), batch)])
    return md.extra, outputs.numpy().astype(np.float64)


def gml_statistics(extra: dict, outputs: np.ndarray, listeners: np.ndarray) -> dict:
    """Predicted mean (score points), std, CI for `listeners`, and (for scoring NLL) mu/log scale in points."""
    centre, scale = extra["score_centre"], extra["score_scale"]
    out = {"mean": centre + scale * outputs[:, 0]}
    if outputs.shape[1] == 2:
        log_scale = outputs[:, 1] + math.log(scale)
        out.update(log_scale=log_scale, std=distribution_std(log_scale, extra["distribution"]))
        out["ci"] = t_ci_halfwidth(out["std"], listeners)
    return out


def heldout_nll(pred: dict, subj: dict, distribution: str) -> float:
    """Mean NLL (score points) of the held-out individual scores under the predicted distribution."""
    mask = subj["mask"]
    s = torch.tensor(np.nan_to_num(subj["scores"]))
    nll = NLLS[distribution](s, torch.tensor(pred["mean"])[:, None], torch.tensor(pred["log_scale"])[:, None])
    return float(nll.numpy()[mask].mean())


def in_sample(exp_dir: Path, system: str, seeds: list, test: dict) -> list[dict]:
    """Per seed: RMSE of the mean scores and mean predicted std on a test the system trained on."""
    subj = subjective(test)
    out = []
    for seed in seeds:
        extra, outputs = predict(exp_dir / f"{system}_seed{seed}" / "model", test["features"])
        pred = gml_statistics(extra, outputs, subj["n"])
        out.append({"rmse": rmse(pred["mean"], subj["mean"]), "std_mean": float(np.mean(pred["std"]))})
    return out


def mixed_label_spread(train_tests: list[dict], alpha: float, seed: int, draws: int = 20) -> tuple[float, float]:
    """Mean per-item std (score points) of the training labels as rated, and after eq. 5 mixing
    with a random partner item and lambda ~ Beta(alpha, alpha) (averaged over `draws` draws):
    how much narrower the score distributions a mixed item teaches are."""
    _, scores, _, _ = merge_tests(train_tests)
    mask = torch.isfinite(scores)
    scores = torch.nan_to_num(scores)
    generator = torch.Generator().manual_seed(seed)
    mixed = []
    for _ in range(draws):
        permutation = torch.randperm(len(scores), generator=generator)
        gammas = torch._standard_gamma(torch.full((len(scores), 2), float(alpha), dtype=torch.float64),
                                       generator=generator)
        lam = (gammas[:, 0] / gammas.sum(1)).float()
        labels = mix_scores(scores, mask, permutation, lam, generator)
        mixed.append(float(np.mean(panel_statistics(labels.numpy(), mask.numpy())[1])))
    return float(np.mean(panel_statistics(scores.numpy(), mask.numpy())[1])), float(np.mean(mixed))


def read_visqol(exp_dir: Path) -> dict[str, float]:
    parts = sorted((exp_dir / "visqol").glob("part.*.tsv"))
    if not parts:
        raise InputError("no ViSQOL scores: run stage 4 (visqol) first", str(exp_dir / "visqol"))
    scores = {}
    for part in parts:
        for line in part.read_text().splitlines():
            reference, coded, value = line.split("\t")
            scores[pair_key(reference, coded)] = float(value)
    return scores


def visqol_mapping(visqol: dict[str, float], hp: dict) -> np.poly1d:
    """3rd-order polynomial ViSQOL MOS-LQO -> MUSHRA mean, fitted on the scored training items."""
    data = Path(hp["data_folder"])
    roles = json.loads((data / "tests.json").read_text())
    x, y = [], []
    for test, info in roles.items():
        if info["role"] != "train":
            continue
        items = load_test_dir(data / test)
        means = np.nanmean(items.scores, axis=1)
        for ref, cod, mean in zip(items.reference, items.coded, means):
            if pair_key(ref, cod) in visqol:
                x.append(visqol[pair_key(ref, cod)])
                y.append(mean)
    if len(x) < 4:
        raise InputError(f"{len(x)} training items have ViSQOL scores: need 4 for a cubic (visqol_train_items)")
    return np.poly1d(np.polyfit(x, y, 3))


def cell(values: list[float]) -> str:
    mean, half = mean_and_ci(values)
    if math.isnan(mean):
        return "nan"
    return f"{mean:.2f}" if math.isnan(half) else f"{mean:.2f} ± {half:.2f}"


def target_table(per_seed: dict, baseline: dict, order: list[str]) -> ResultTable:
    """The issue's checks: CutMix lowers the CI RMSE (paired over seeds), and mean-score R_p."""
    rows: dict[str, list] = {"CI RMSE, GML w/ CutMix - GML (paired by seed)": [],
                             "R_p of means, GML": [], "R_p of means, GML w/ CutMix": [], "R_p of means, ViSQOL-v3": []}
    for test in order:
        diff = [c["ci_rmse"] - g["ci_rmse"] for c, g in zip(per_seed["gml_cutmix"][test], per_seed["gml"][test])]
        mean, half = mean_and_ci(diff)
        verdict = "met" if mean + (0 if math.isnan(half) else half) < 0 else "not met"
        rows["CI RMSE, GML w/ CutMix - GML (paired by seed)"].append(f"{cell(diff)} ({verdict})")
        for system, label in (("gml", "GML"), ("gml_cutmix", "GML w/ CutMix")):
            values = [m["rp"] for m in per_seed[system][test]]
            rp = mean_and_ci(values)[0]
            note = "" if test.startswith("mono") else f" ({'met' if rp >= 0.85 else 'not met'})"
            rows[f"R_p of means, {label}"].append(cell(values) + note)
        rows["R_p of means, ViSQOL-v3"].append(cell([baseline[test]["rp"]]))
    return ResultTable("Targets of the mini run (issue 14)", [TEST_LABELS.get(t, t) for t in order], rows,
                       caption=("Met: the CutMix - no-CutMix difference of CI RMSE is below 0 with its whole "
                                "95 % t-CI over seeds; the GML mean-score R_p (mean over seeds) is >= 0.85 on "
                                "the held-out stereo tests. ViSQOL's R_p beside it."))


def nll_curves(exp_dir: Path, hp: dict, systems: tuple[tuple[str, str, str], ...], splits: tuple[str, ...],
               title: str, name: str) -> str:
    """NLL per score (score points) per epoch of every seed of `systems` ((system, colour, label)),
    solid for training, dashed for the validation fold."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for system, colour, label in systems:
        seeds = hp["figure1_seeds"] if system == "gml_gaussian" else hp["seeds"]
        for k, seed in enumerate(seeds):
            path = exp_dir / f"{system}_seed{seed}" / "loss_curve.json"
            if not path.is_file():
                continue
            rows = json.loads(path.read_text())
            for split, style in zip(splits, ("-", "--")):
                points = [(r["epoch"], r[split]["nll_points"]) for r in rows if r.get(split)]
                ax.plot(*zip(*points), style, color=colour, alpha=0.9 if k == 0 else 0.4,
                        label=f"{label} ({split})" if k == 0 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("NLL per score (score points)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, exp_dir / "figures" / f"{name}.png", exp_dir)


def figure1(exp_dir: Path, hp: dict) -> str:
    """Training NLL per epoch (score points), logistic GML vs Gaussian GML."""
    return nll_curves(exp_dir, hp, (("gml", "tab:blue", "Logistic"), ("gml_gaussian", "tab:red", "Gaussian")),
                      ("train",), "Figure 1: NLL training losses (simulated panel)", "figure1_nll")


def calibration_table(per_seed: dict, columns: list[str], panel_std: dict[str, float]) -> ResultTable:
    """Where the predicted spread comes from: an NLL-trained model widens its distribution by its
    own mean-score error, so its std should track sqrt(panel std^2 + RMSE^2), not the panel's."""
    rows = {}
    for system in per_seed:
        rows[f"{LABELS[system]}: RMSE of means"] = [cell([m["rmse"] for m in per_seed[system][t]]) for t in columns]
        rows[f"{LABELS[system]}: predicted std"] = [cell([m["std_mean"] for m in per_seed[system][t]])
                                                    for t in columns]
        rows[f"{LABELS[system]}: sqrt(panel std^2 + RMSE^2)"] = [
            cell([math.sqrt(panel_std[t] ** 2 + m["rmse"] ** 2) for m in per_seed[system][t]]) for t in columns]
    rows["panel std (subjective)"] = [f"{panel_std[t]:.2f}" for t in columns]
    labels = [TEST_LABELS.get(t, f"{t} (training)") for t in columns]
    return ResultTable("Calibration: mean-score error and predicted spread (score points)", labels, rows,
                       caption=("Per test, training tests included (in-sample: their items were trained on). "
                                "RMSE of predicted vs panel mean scores; mean predicted std of an individual "
                                "score; the panel's mean per-item std. A model that fits the means to the "
                                "panel's noise predicts about the panel std; an under-fitted one predicts "
                                "about sqrt(panel std^2 + RMSE^2), i.e. CIs that are too wide."))


def figure2(exp_dir: Path, train: list[dict], tests: list[dict]) -> str:
    """Histograms of mean scores (train, test) and individual scores (train), no augmentation."""
    train_scores = np.concatenate([t["scores"].numpy().ravel() for t in train])
    train_means = np.concatenate([subjective(t)["mean"] for t in train])
    test_means = np.concatenate([subjective(t)["mean"] for t in tests])
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), sharex=True)
    bins = np.linspace(0, 100, 21)
    for ax, values, title in ((axes[0], train_means, "mean scores, training"),
                              (axes[1], test_means, "mean scores, held-out tests"),
                              (axes[2], train_scores[np.isfinite(train_scores)], "individual scores, training")):
        ax.hist(values, bins=bins, color="tab:gray", edgecolor="white")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("MUSHRA score")
    axes[0].set_ylabel("count")
    fig.suptitle("Figure 2: score histograms (simulated listener panel)", fontsize=10)
    return _save(fig, exp_dir / "figures" / "figure2_histograms.png", exp_dir)


def _save(fig, path: Path, exp_dir: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return str(path.relative_to(exp_dir))


def listening_examples(exp_dir: Path, hp: dict, name: str, test: dict, seconds: float = 2.0
                       ) -> tuple[list[str], str]:
    """The first excerpt of held-out test `name`: its reference and the coded conditions the panel
    rated lowest and highest (anchors aside), first `seconds` as FLAC (stereo: three fit the
    repository's 1 MB budget), and a note with the panel's and GML w/ CutMix's (first seed) scores."""
    data = load_test_dir(Path(hp["data_folder"]) / name)
    subj = subjective(test)
    trial = data.items[0].rsplit("-", 1)[0]
    coded = [i for i, item in enumerate(data.items) if item.rsplit("-", 1)[0] == trial
             and data.conditions[i] not in ("reference", "lp35", "lp70")]
    picked = [min(coded, key=lambda i: subj["mean"][i]), max(coded, key=lambda i: subj["mean"][i])]
    seed = hp["seeds"][0]
    extra, outputs = predict(exp_dir / f"gml_cutmix_seed{seed}" / "model", test["features"][picked])
    pred = gml_statistics(extra, outputs, subj["n"][picked])
    files, scored = [], []
    for label, path in [("reference", data.reference[picked[0]])] + [(data.conditions[i], data.coded[i]) for i in picked]:
        audio, rate = load_audio(path, None, mono=False)
        files.append(str(write_example(exp_dir / "examples" / f"{trial}_{label}", audio, rate, seconds)
                         .relative_to(exp_dir)))
    for k, i in enumerate(picked):
        scored.append(f"{data.conditions[i]}: panel {subj['mean'][i]:.1f} ± {subj['ci'][i]:.1f} "
                      f"({subj['n'][i]} simulated listeners), GML w/ CutMix (seed {seed}) "
                      f"{pred['mean'][k]:.1f} ± {pred['ci'][k]:.1f}")
    return files, (f"Listening examples: excerpt {trial} of the held-out test {TEST_LABELS.get(name, name)}, first "
                   f"{seconds:g} s; " + "; ".join(scored) + " (mean ± 95 % CI).")


def main() -> None:
    stage = start_stage("score", options=())
    hp = stage.hparams
    exp_dir = Path(stage.exp_dir)
    tests = {t["name"]: t for t in load_tests(hp["data_folder"], names=list(hp["test_sets"]))}
    missing = [name for name in hp["test_sets"] if name not in tests]
    if missing:
        raise InputError(f"test sets {missing} have no features (stage 2)", hp["data_folder"])
    visqol = read_visqol(exp_dir)
    mapping = visqol_mapping(visqol, hp)
    systems = [s for s in ("nongml", "gml", "gml_cutmix", "nongml_cutmix") if s in hp["systems"]]
    per_seed: dict[str, dict[str, list[dict]]] = {s: {t: [] for t in tests} for s in systems}
    baseline: dict[str, dict] = {}
    for name, test in tests.items():
        subj = subjective(test)
        listeners = int(np.median(subj["n"]))
        data = load_test_dir(Path(hp["data_folder"]) / name)
        raw = np.array([visqol[pair_key(r, c)] for r, c in zip(data.reference, data.coded)])
        baseline[name] = {"rp": lcc(raw, subj["mean"]), "rs": srcc(raw, subj["mean"]),
                          "or_mapped": outlier_ratio(mapping(raw), subj["mean"], subj["ci"])}
        for system in systems:
            for seed in hp["seeds"]:
                extra, outputs = predict(exp_dir / f"{system}_seed{seed}" / "model", test["features"])
                pred = gml_statistics(extra, outputs, np.full(len(outputs), listeners))
                metrics = test_set_metrics(pred["mean"], subj["mean"], subj["ci"], pred.get("ci"))
                if "ci" in pred:
                    metrics["nll"] = heldout_nll(pred, subj, extra["distribution"])
                    metrics["ci_mean"] = float(np.mean(pred["ci"]))
                    metrics.update(rmse=rmse(pred["mean"], subj["mean"]), std_mean=float(np.mean(pred["std"])))
                per_seed[system][name].append(metrics)
        log.info("progress: scored %s (%d items, %d listeners)", name, len(subj["mean"]), listeners)
    order = list(hp["test_sets"])
    binaural = ["binaural_1", "binaural_2"]
    columns_a = [f"{TEST_LABELS.get(t, t)} {m}" for t in order + binaural for m in ("R_p", "R_s", "OR")]
    rows_a = {LABELS["visqol"]: sum(([cell([baseline[t]["rp"]]), cell([baseline[t]["rs"]]), "n.a."]
                                     for t in order), []) + [NOT_RUN] * 6,
              LABELS["visqol_mapped"]: sum(([None, None, cell([baseline[t]["or_mapped"]])] for t in order), [])
              + [NOT_RUN] * 6}
    for system in systems:
        rows_a[LABELS[system]] = sum(([cell([m[k] for m in per_seed[system][t]]) for k in ("rp", "rs", "or")]
                                      for t in order), []) + [NOT_RUN] * 6
    paper_a = {LABELS[s]: PAPER_A[s] for s in ["visqol"] + systems}
    gmls = [s for s in ("gml", "gml_cutmix") if s in systems]
    columns_b = [f"{TEST_LABELS.get(t, t)} {m}" for t in order + binaural for m in ("R_p", "R_s", "RMSE")]
    rows_b = {LABELS[s]: sum(([cell([m[k] for m in per_seed[s][t]]) for k in ("ci_rp", "ci_rs", "ci_rmse")]
                              for t in order), []) + [NOT_RUN] * 6 for s in gmls}
    columns_c = [f"{TEST_LABELS.get(t, t)} {m}" for t in order for m in ("CI coverage", "mean CI", "NLL")]
    rows_c = {LABELS[s]: sum(([cell([m[k] for m in per_seed[s][t]]) for k in ("coverage", "ci_mean", "nll")]
                              for t in order), []) for s in gmls}
    subjective_ci = {t: float(np.mean(subjective(tests[t])["ci"])) for t in order}
    rows_c["subjective panel"] = sum(([None, f"{subjective_ci[t]:.2f}", None] for t in order), [])
    seeds = len(hp["seeds"])
    tables = [
        ResultTable("Table I(a): predicted vs subjective mean MUSHRA scores (simulated panel)", columns_a, rows_a,
                    {k: v for k, v in paper_a.items()}, caption=(
                        f"R_p, R_s up, OR down; mean ± 95 % t-CI over {seeds} seeds (ViSQOL is deterministic). "
                        "OR: share of items whose prediction lies outside the subjective mean's 95 % t-CI. "
                        "ViSQOL's OR is n.a. as in the paper; the row below it is our addition: OR after a "
                        "cubic ViSQOL -> MUSHRA map fitted on training-test items. Paper rows: USAC "
                        "verification and internal binaural tests, not comparable with the mini tests.")),
        ResultTable("Table I(b): predicted vs subjective 95 % CI (simulated panel)", columns_b, rows_b,
                    {LABELS[s]: PAPER_B[s] for s in gmls},
                    caption=f"CI R_p, R_s up, RMSE (score points) down; mean ± 95 % t-CI over {seeds} seeds."),
        ResultTable("Beyond the paper: CI coverage, mean CI half-width and held-out NLL", columns_c, rows_c,
                    caption=("CI coverage: share of items whose subjective mean lies inside the predicted CI "
                             "(ideal about 0.95 if the CI is calibrated); mean CI: predicted (or subjective) "
                             "half-width in score points; NLL: mean negative log-likelihood of the held-out "
                             "individual scores (score points, lower is better).")),
    ]
    if {"gml", "gml_cutmix"} <= set(systems):
        tables.append(target_table(per_seed, baseline, order))
    train_tests = load_tests(hp["data_folder"], role="train")
    calibration = {s: {**per_seed[s], **{t["name"]: in_sample(exp_dir, s, hp["seeds"], t) for t in train_tests}}
                   for s in gmls}
    columns = [t["name"] for t in train_tests] + order
    panel_std = {t["name"]: float(np.mean(subjective(t)["std"])) for t in train_tests + list(tests.values())}
    tables.append(calibration_table(calibration, columns, panel_std))
    rated, mixed = mixed_label_spread(train_tests, hp["mix_alpha"], int(hp["seed"]))
    tables.append(ResultTable(
        "Label spread under per-listener mixing (eq. 5), training tests", ["per-item std of the labels"],
        {"as rated (screened panel)": [f"{rated:.2f}"], "after eq. 5 mixing with a random partner": [f"{mixed:.2f}"]},
        caption=(f"Mean over items of the std across listeners (score points); lambda ~ Beta({hp['mix_alpha']}, "
                 f"{hp['mix_alpha']}) per item (CutMix's box clipping moves it slightly), 20 draws. A model "
                 "trained on mixed items learns the narrower spread of the second row.")))
    figures = [figure1(exp_dir, hp), figure2(exp_dir, train_tests, list(tests.values())),
               nll_curves(exp_dir, hp, (("gml", "tab:blue", "GML"), ("gml_cutmix", "tab:orange", "GML w/ CutMix")),
                          ("train", "valid"), "GML with and without CutMix: NLL per epoch (simulated panel)",
                          "cutmix_nll_curves")]
    notes = ("Scores come from a **simulated listener panel** (speechlib/tasks/mushra_gml/panel.py), not from "
             "real listeners: the tables show that the recipe runs and how the systems compare on that "
             "panel, not the paper's results. Binaural tests: not run (no binaural data).")
    shown = "stereo_low" if "stereo_low" in tests else order[0]
    examples, heard = listening_examples(exp_dir, hp, shown, tests[shown]) if "gml_cutmix" in systems else ([], "")
    atomic_write_text(exp_dir / "per_seed.json", json.dumps({"systems": per_seed, "visqol": baseline}, indent=1))
    path = write_results(exp_dir, "mushra_gml: Generative Machine Listener", tables, corpus=str(hp["corpus"]),
                         notes=f"{notes} {heard}".strip(), figures=figures, examples=examples)
    log.info("wrote %s", path)


if __name__ == "__main__":
    exit_on_input_error("mushra_gml.score", main)
