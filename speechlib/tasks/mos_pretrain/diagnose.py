"""What limits MOS prediction on the mini MOS sets: label checks and simple-feature ceilings.

    python -m speechlib.tasks.mos_pretrain.diagnose conf/mini_mos_pretrain.yaml --output_folder exp/x \\
        --data_folder data/x [--ref_files 100]

Written when the PASE baseline reached LCC 0.14 against the DistillMOS labels (issue 12's target
0.80), to tell a pipeline defect from a limit of the data. It checks, on the mini sets as the
recipe prepared them (mini corpus only: it needs the clean references and the degradation log):

- alignment: DistillMOS recomputed for the first test files equals their utt2mos (the labels
  belong to the files, in the order the embeddings are made: sorted utterance ids);
- label statistics per split, and how much of a label is the clean voice rather than the
  degradation: correlation of the label with DistillMOS of the undegraded reference
  (`ref_files` test files, every k-th);
- ceilings of simple predictors, ridge regression fitted on train + valid, LCC on test:
  the exact degradation parameters (NISQA-style set; its csv keeps the degradation chain),
  mean-pooled log-mel of the first 1 s vs the whole file (the old `mos_max_seconds: 1.0`
  embedded only the first second), and log-mel mean/std of the louder and quieter frames,
  this last one also fitted on a quarter and a half of the training files (does more data help?);
- an oracle of the label's two parts (NISQA-style set): the exact degradation parameters plus
  DistillMOS of the file's own clean reference (the voice as the label source hears it);
- the frozen encoders' pooled embeddings (the stage-5 caches of each system's first seed) under
  the same ridge regression, beside the MOS heads' LCC: a head far below its ridge would be a
  head-training defect, both low an encoder that does not carry the information;
- with --pooling, the same ridge on each encoder's frames pooled by their mean and by mean and
  standard deviation (re-embedded): what the frame-to-frame spread adds.
Writes <output_folder>/diagnosis.json (DistillMOS of the references goes into stage 0's label cache).
"""
from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path

import numpy as np
import torch

from speechlib.data.nisqa import utt_id
from speechlib.io.atomic import atomic_write_text
from speechlib.io.audio import load_audio
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.metrics.correlation import lcc
from speechlib.metrics.seed_stats import t_interval
from speechlib.nn.pase import PASEEncoder
from speechlib.signal.features import log_mel
from speechlib.tasks.mos_pretrain.downstream import SPLITS, set_items
from speechlib.tasks.mos_pretrain.mini_mos import CODEC_BITRATES, distillmos_scores
from speechlib.tasks.mos_pretrain.systems import load_encoder
from speechlib.tasks.stage import Option, start_stage

log = logging.getLogger("mos_pretrain")
REF_FILES = Option("ref_files", "files per split whose clean reference DistillMOS scores (0: none)", default="100")
POOLING = Option("pooling", "re-embed the MOS sets with mean and with mean+std pooling (pooling_ceilings)",
                 flag=True)


def degradation_features(chain: str) -> list[float]:
    """The degradation chain of a mini MOS file (its `con` column) as numbers."""
    def number(pattern: str) -> float | None:
        found = re.search(pattern, chain)
        return float(found.group(1)) if found else None

    cutoff, loss, snr = number(r"lowpass (\d+)"), number(r"packet loss (\d+)"), number(r"noise ([\d.]+)")
    codec = [float(f"{name} " in chain) for name in sorted(CODEC_BITRATES)]
    kbps = number(r"(\d+) kb/s")
    return [float("reverb" in chain), cutoff / 8000 if cutoff else 1.0, *codec, (kbps or 32.0) / 32,
            (loss or 0.0) / 100, float("clipping" in chain), (40 - snr) / 40 if snr is not None else 0.0]


def ridge_lcc(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13))).fit(train_x, train_y)
    return lcc(model.predict(test_x), test_y)


def spectral_summaries(items: list[tuple[str, str]], sample_rate: int) -> dict[str, np.ndarray]:
    """Per file: mean log-mel of the first second, of the whole file, and mean/std of the louder
    half of the frames plus the mean of the quietest fifth (40 bands each)."""
    rows: dict[str, list[np.ndarray]] = {"logmel_first_1s": [], "logmel_whole": [], "logmel_loud_quiet": []}
    for utt, wav in items:
        signal = torch.from_numpy(load_audio(wav, sample_rate, utt=utt)[0])
        mel = log_mel(signal[None], sample_rate, 40)[0]  # (frames, 40)
        rows["logmel_first_1s"].append(log_mel(signal[None, :sample_rate], sample_rate, 40)[0].mean(0).numpy())
        rows["logmel_whole"].append(mel.mean(0).numpy())
        energy = mel.mean(1)
        loud, quiet = mel[energy > energy.quantile(0.5)], mel[energy <= energy.quantile(0.2)]
        rows["logmel_loud_quiet"].append(torch.cat([loud.mean(0), loud.std(0), quiet.mean(0)]).numpy())
    return {name: np.stack(values) for name, values in rows.items()}


def reference_scores(paths: list[str], cache: Path) -> np.ndarray:
    """DistillMOS of clean references, cached by file content (the labelling is the costly part)."""
    return np.array(distillmos_scores(paths, nj=1, cache=cache))


def reference_path(wav: str) -> str:
    """The clean reference the mini MOS build wrote beside a degraded file (deg/ or wav/ -> ref/)."""
    return str(Path(wav).parent.parent / "ref" / Path(wav).name)


def encoder_ceilings(exp: Path, sets: dict, systems: list[str]) -> dict[str, dict[str, float]]:
    """Ridge on each system's cached pooled embeddings (first pre-training seed) vs its heads."""
    out: dict[str, dict[str, float]] = {}
    for name, by_split in sets.items():
        fit_y = np.concatenate([by_split["train"][1], by_split["valid"][1]])
        for system in systems:
            folder = exp / "encoders" / system / "seed1"
            found = {split: sorted(folder.glob(f"emb_{name}_{split}.*.npy")) for split in SPLITS}
            if not all(len(f) == 1 for f in found.values()) or not (folder / f"mos_{name}.json").is_file():
                continue
            x = {split: np.load(found[split][0]) for split in SPLITS}
            heads = json.loads((folder / f"mos_{name}.json").read_text())
            out[f"{name}: {system}"] = {
                "ridge_lcc": ridge_lcc(np.concatenate([x["train"], x["valid"]]), fit_y, x["test"], by_split["test"][1]),
                "head_lcc": float(heads["lcc"])}
    return out


def layer_statistics(encoder: torch.nn.Module, items: list[tuple[str, str]], sample_rate: int
                     ) -> dict[str, dict[str, np.ndarray]]:
    """Per file, each layer's frames pooled by their mean and by mean + standard deviation:
    {layer: {"mean": (files, C), "mean_std": (files, 2C)}}. PASE: the sinc layer, every conv block
    and the output; other encoders: the output only. Whole files, one at a time, layer by layer
    (the folded inference path skips the modules the hooks sit on)."""
    layers = {"output": None}
    if isinstance(encoder, PASEEncoder):
        layers = {"sinc": encoder.sinc_act, **{f"block{i + 1}": b for i, b in enumerate(encoder.blocks)},
                  "output": None}
    seen: dict[str, torch.Tensor] = {}
    hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: seen.__setitem__(name, out[0].T))
             for name, module in layers.items() if module is not None]  # (channels, frames) -> (frames, C)
    rows: dict[str, dict[str, list[np.ndarray]]] = {name: {"mean": [], "mean_std": []} for name in layers}
    try:
        with torch.enable_grad():  # grad mode on: the layer-by-layer forward, whose modules the hooks see
            for utt, wav in items:
                signal = torch.from_numpy(load_audio(wav, sample_rate, utt=utt, on_rate_mismatch="resample")[0])
                seen["output"] = encoder(signal[None])[0].detach()
                for name in layers:
                    frames = seen[name].detach()
                    rows[name]["mean"].append(frames.mean(0).numpy())
                    rows[name]["mean_std"].append(torch.cat([frames.mean(0), frames.std(0)]).numpy())
    finally:
        for hook in hooks:
            hook.remove()
    return {name: {k: np.stack(v) for k, v in by.items()} for name, by in rows.items()}


def pooling_ceilings(exp: Path, sets: dict, systems: list[str], sample_rate: int) -> dict[str, dict]:
    """Ridge on each encoder's frames (whole files) pooled by their mean (what the heads see at the
    output) and by mean + standard deviation: is the quality information in the frame-to-frame
    spread the mean discards (as for log-mel, "logmel_loud_quiet"), and is it lost between the sinc
    layer and the output? Every layer for the first pre-training seed ("layers"); the output for
    every seed, with Student-t intervals over seeds of both and of their paired difference ("seeds")."""
    layers: dict[str, dict[str, float]] = {}
    seeds: dict[str, dict[str, object]] = {}
    for system in systems:
        folders = sorted((exp / "encoders" / system).glob("seed*/encoder.pt"), key=lambda f: int(f.parent.name[4:]))
        for name, by_split in sets.items():
            fit_y = np.concatenate([by_split["train"][1], by_split["valid"][1]])
            per_seed: dict[str, list[float]] = {"mean": [], "mean_std": []}
            for weights in folders:
                encoder = load_encoder(weights.parent)[0].eval()
                stats = {split: layer_statistics(encoder, by_split[split][0], sample_rate) for split in SPLITS}
                for layer in stats["train"] if weights.parent.name == "seed1" else ["output"]:
                    row = {pooling: ridge_lcc(
                        np.concatenate([stats["train"][layer][pooling], stats["valid"][layer][pooling]]), fit_y,
                        stats["test"][layer][pooling], by_split["test"][1]) for pooling in ("mean", "mean_std")}
                    if weights.parent.name == "seed1":
                        layers[f"{name}: {system} {layer}"] = row
                    if layer == "output":
                        for pooling in per_seed:
                            per_seed[pooling].append(row[pooling])
            if per_seed["mean"]:
                difference = np.subtract(per_seed["mean_std"], per_seed["mean"])
                seeds[f"{name}: {system}"] = {
                    **per_seed, **{f"{k} (mean, std, low, high)": t_interval(v) for k, v in
                                   (("mean", per_seed["mean"]), ("mean_std", per_seed["mean_std"]),
                                    ("mean_std - mean", difference))}}
                log.info("diagnose: pooling %s %s: %s", name, system, seeds[f"{name}: {system}"])
    return {"layers": layers, "seeds": seeds}


def nisqa_oracles(data: Path, nisqa: dict, ref_files: int, cache: Path, result: dict) -> dict[str, float]:
    """Ridge from the exact degradation parameters (the NISQA-style csv keeps the chain) and, with
    ref_files > 0, from those plus DistillMOS of the file's clean reference, on every k-th file of
    each split (about ref_files per split: scoring the references is the costly part)."""
    rows = list(csv.DictReader((data / "mini_mos" / "nisqa" / "NISQA_corpus_file.csv").open(encoding="utf-8")))
    chains = {utt_id(r["filepath_deg"]): r["con"] for r in rows}
    feats = {split: np.array([degradation_features(chains[u]) for u, _ in nisqa[split][0]]) for split in SPLITS}
    out = {"nisqa: exact degradation parameters": ridge_lcc(
        np.concatenate([feats["train"], feats["valid"]]), np.concatenate([nisqa["train"][1], nisqa["valid"][1]]),
        feats["test"], nisqa["test"][1])}
    if not ref_files:
        return out
    every = {split: slice(None, None, -(-len(nisqa[split][1]) // ref_files)) for split in SPLITS}
    voice = {split: reference_scores([reference_path(w) for _, w in nisqa[split][0][every[split]]], cache)[:, None]
             for split in SPLITS}
    sub_y = {split: nisqa[split][1][every[split]] for split in SPLITS}
    for label, parts in (("clean reference's DistillMOS only", lambda split: voice[split]),
                         ("degradation parameters, same files", lambda split: feats[split][every[split]]),
                         ("degradation parameters + clean reference's DistillMOS", lambda split: np.concatenate(
                             [feats[split][every[split]], voice[split]], axis=1))):
        out[f"nisqa: {label}"] = ridge_lcc(np.concatenate([parts("train"), parts("valid")]),
                                           np.concatenate([sub_y["train"], sub_y["valid"]]), parts("test"),
                                           sub_y["test"])
    result["oracle_files"] = {split: len(sub_y[split]) for split in SPLITS}
    return out


def main() -> None:
    stage = start_stage("diagnose", options=(REF_FILES, POOLING))
    hp = stage.hparams
    data, sr = Path(hp["data_folder"]), int(hp["sample_rate"])
    if str(hp["vcc2018"] or "").strip() or str(hp["nisqa"] or "").strip():
        raise InputError("diagnose needs the mini MOS sets (clean references, degradation log): "
                         "run it with empty vcc2018/nisqa")
    sets = {name: {split: set_items(data, name, split) for split in SPLITS} for name in hp["mos_sets"]}
    result: dict[str, object] = {"labels": {
        f"{name}_{split}": {"n": len(y), "mean": float(y.mean()), "std": float(y.std()), "min": float(y.min()),
                            "max": float(y.max())}
        for name, by_split in sets.items() for split, (_, y) in by_split.items()}}
    # alignment: the labels are the files' DistillMOS, in the order the embeddings are made
    first = sets[next(iter(sets))]
    items, labels = first["test"]
    again = distillmos_scores([wav for _, wav in items[:10]], nj=1)
    result["alignment_max_abs_diff"] = float(np.max(np.abs(np.clip(again, 1, 5) - labels[:10])))
    ref_files = int(stage.options["ref_files"])  # 0: skip everything that needs the references scored
    cache = data / "local" / "distillmos_labels.json"  # stage 0's labels cache, by file content
    if ref_files:  # the clean voice's share: DistillMOS of the undegraded reference
        chosen = list(range(0, len(items), max(1, len(items) // ref_files)))
        ref_scores = reference_scores([reference_path(items[i][1]) for i in chosen], cache)
        result["clean_reference"] = {"n": len(chosen), "ref_mean": float(ref_scores.mean()),
                                     "ref_std": float(ref_scores.std()),
                                     "lcc_label_vs_ref": lcc(labels[chosen], ref_scores)}
    # ceilings of simple predictors (ridge; train + valid -> test)
    ceilings: dict[str, float] = {}
    if "nisqa" in sets:
        ceilings.update(nisqa_oracles(data, sets["nisqa"], ref_files, cache, result))
    for name, by_split in sets.items():
        summaries = {split: spectral_summaries(by_split[split][0], sr) for split in SPLITS}
        fit_y = np.concatenate([by_split["train"][1], by_split["valid"][1]])
        for kind in summaries["train"]:
            ceilings[f"{name}: {kind}"] = ridge_lcc(
                np.concatenate([summaries["train"][kind], summaries["valid"][kind]]), fit_y,
                summaries["test"][kind], by_split["test"][1])
        for share in (4, 2):  # learning curve of the best simple features
            count = len(by_split["train"][1]) // share
            ceilings[f"{name}: logmel_loud_quiet, 1/{share} of train"] = ridge_lcc(
                np.concatenate([summaries["train"]["logmel_loud_quiet"][:count],
                                summaries["valid"]["logmel_loud_quiet"]]),
                np.concatenate([by_split["train"][1][:count], by_split["valid"][1]]),
                summaries["test"]["logmel_loud_quiet"], by_split["test"][1])
    result["ridge_test_lcc"] = ceilings
    result["encoders"] = encoder_ceilings(Path(stage.exp_dir), sets, [
        "pase_baseline", "pase_noise", "pase_random", "logmel", "masked_baseline", "pase_plus"])
    if stage.options["pooling"]:
        result["pooling"] = pooling_ceilings(Path(stage.exp_dir), sets, [
            "pase_baseline", "pase_noise", "pase_random", "masked_baseline"], sr)
    atomic_write_text(Path(stage.exp_dir) / "diagnosis.json", json.dumps(result, indent=1) + "\n")
    log.info("diagnose: %s", json.dumps(result, indent=1))


if __name__ == "__main__":
    exit_on_input_error("mos_pretrain.diagnose", main)
