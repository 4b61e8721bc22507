"""Stage 5 of egs/mos_pretrain: the MOS head on each frozen encoder, for each MOS set.

    python -m speechlib.tasks.mos_pretrain.downstream conf/mini_mos_pretrain.yaml --output_folder exp/x --job 1

For every (system, pre-training seed) run (job j of nj takes runs j, j+nj, ...): embed the MOS sets
with the frozen encoder (no masking; frame embeddings mean-pooled over time, cached as .npy under a
key of encoder weights + file list), train one head per head seed (64 hidden, LayerNorm, ReLU,
dropout 0.2, output clipped to [1, 5]; Adam lr 1.2e-4, weight decay 1e-3, batch 16, MSE; up to
1000 epochs, early stopping on validation MSE), and write every head's test predictions and
MSE/LCC/SRCC to <run>/mos_<set>.json; then the linear probes (SNR class, category, region) of the
frozen encoder to <run>/probe.json.
External encoders (wav2vec 2.0, HuBERT, Dasheng) without a local checkpoint get a "not run" record.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch

from speechlib.io.atomic import atomic_path, atomic_write_text
from speechlib.io.errors import InputError, TrainingDiverged, exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.metrics.correlation import mos_metrics
from speechlib.nn.mos_head import MOSHeadEnsemble
from speechlib.tasks.mos_pretrain.external import NotRunnable, load_external
from speechlib.tasks.mos_pretrain.noisy import LABEL_KEYS
from speechlib.tasks.mos_pretrain.systems import (embed_files, encoder_identity, file_identity, fingerprint,
                                                  load_encoder, run_dir, save_head, system_dir, system_names,
                                                  system_seeds)
from speechlib.tasks.stage import start_stage

SPLITS = ("train", "valid", "test")


def set_items(data: Path, mos_set: str, split: str) -> tuple[list[tuple[str, str]], np.ndarray]:
    wavs = read_dict(data / f"{mos_set}_{split}" / "wav.scp")
    mos = read_dict(data / f"{mos_set}_{split}" / "utt2mos")
    utts = sorted(wavs)
    return [(u, wavs[u]) for u in utts], np.array([float(mos[u]) for u in utts], dtype=np.float32)


def cached_embeddings(encoder, folder: Path, items, hp: dict, name: str, encoder_id: str) -> np.ndarray:
    """Pooled embeddings of `items`, cached under a name keyed by what made them: the encoder's
    weights (encoder_id), the file list with each file's size and time, and the cut length. A
    re-trained encoder or a re-drawn set (same counts or not) never reads an old cache."""
    key = fingerprint(encoder_id, file_identity(items), hp["mos_max_seconds"], hp["sample_rate"])
    path = folder / f"emb_{name}.{key}.npy"
    if path.is_file():
        return np.load(path)
    emb = embed_files(encoder, items, hp["sample_rate"], hp["mos_max_seconds"], desc=f"embed {name}")
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, emb)
    for stale in folder.glob(f"emb_{name}.*.npy"):
        if stale != path:
            stale.unlink()
    return emb


def train_heads(folder: Path, mos_set: str, embs: dict, targets: dict, utts: dict, hp: dict,
                head_seeds: list[int]) -> dict[str, object]:
    """One MOS head per head seed, trained together (MOSHeadEnsemble), each with its own shuffles;
    minibatch Adam on the cached pooled embeddings until `epochs` or until no head's validation
    MSE improved for `patience` epochs; each head keeps its best-validation epoch.

    A plain loop rather than a Brain: a head has ~7k parameters and the per-epoch bookkeeping of a
    Brain would dominate; a killed run is simply re-run. A non-finite loss stops with the batch's
    utterance ids. The first head is saved as the model directory head_<set>/ (what `predict` loads).
    """
    opts = hp["downstream"]
    count = len(head_seeds)
    gens = [torch.Generator().manual_seed(int(s)) for s in head_seeds]
    heads = MOSHeadEnsemble(count, embs["train"].shape[1], opts["hidden"], opts["dropout"], seeds=head_seeds)
    optimizer = torch.optim.Adam(heads.parameters(), lr=opts["lr"], weight_decay=opts["weight_decay"])
    x, y = torch.from_numpy(embs["train"]), torch.from_numpy(targets["train"])
    xv, yv = torch.from_numpy(embs["valid"]), torch.from_numpy(targets["valid"])
    run = folder / f"head_{mos_set}"
    run.mkdir(parents=True, exist_ok=True)
    tb = sb.utils.train_logger.TensorboardLogger(str(run / "tensorboard"))
    best = torch.full((count,), float("inf"))
    best_epoch = torch.zeros(count, dtype=torch.long)
    best_state = {k: v.detach().clone() for k, v in heads.state_dict().items()}
    lines, epoch, batch = [], 0, opts["batch_size"]
    for epoch in range(1, opts["epochs"] + 1):
        heads.train()
        orders = torch.stack([torch.randperm(len(x), generator=g) for g in gens])
        total = torch.zeros(count)
        for start in range(0, len(x), batch):
            idx = orders[:, start:start + batch]
            per_head = ((heads(x[idx]) - y[idx]) ** 2).mean(1)
            if not torch.isfinite(per_head).all():
                bad = int(torch.nonzero(~torch.isfinite(per_head))[0])
                ids = ", ".join(utts["train"][i] for i in idx[bad].tolist())
                raise TrainingDiverged(f"non-finite MOS-head loss at epoch {epoch}; batch utterances: {ids}")
            optimizer.zero_grad()
            per_head.sum().backward()
            optimizer.step()
            total += per_head.detach() * idx.shape[1]
        heads.eval()
        with torch.no_grad():
            valid = ((heads(xv) - yv) ** 2).mean(1)
        better = valid < best
        if better.any():
            best = torch.where(better, valid, best)
            best_epoch[better] = epoch
            for name, value in heads.state_dict().items():
                best_state[name][better] = value[better].detach().clone()
        if epoch % max(1, opts["log_every"]) == 0:
            tb.log_stats({"epoch": epoch}, train_stats={"mse": float(total.mean()) / len(x)},
                         valid_stats={"mse": float(valid.mean())})
            lines.append(f"epoch {epoch}: train MSE {(total / len(x)).tolist()}, valid MSE {valid.tolist()}")
        if int((epoch - best_epoch).min()) >= opts["patience"]:
            lines.append(f"early stop at epoch {epoch}: no head improved for {opts['patience']} epochs")
            break
    heads.load_state_dict(best_state)
    heads.eval()
    with torch.no_grad():
        preds = heads(torch.from_numpy(embs["test"])).numpy()
    save_head(run, heads.head_state(0), sample_rate=int(hp["sample_rate"]), corpus=str(hp["corpus"]))
    atomic_write_text(run / "train_log.txt", "\n".join(lines) + "\n")
    per_head = [{"head_seed": int(seed), **mos_metrics(pred, targets["test"]), "best_epoch": int(best_epoch[k]),
                 "best_valid_mse": float(best[k]), "predictions": [float(p) for p in pred]}
                for k, (seed, pred) in enumerate(zip(head_seeds, preds))]
    means = {m: float(np.mean([h[m] for h in per_head])) for m in ("mse", "lcc", "srcc")}
    return {"system": folder.name, "mos_set": mos_set, **means, "n_test": int(preds.shape[1]),
            "epochs_run": epoch, "emb_dim": int(embs["train"].shape[1]), "test_utts": list(utts["test"]),
            "targets": [float(t) for t in targets["test"]], "heads": per_head}


def probe_items(data: Path, split: str) -> tuple[list[tuple[str, str]], dict[str, np.ndarray]]:
    wavs = read_dict(data / split / "wav.scp")
    utts = sorted(wavs)
    labels = {key: np.array([int(read_dict(data / split / f"utt2{key}")[u]) for u in utts]) for key in LABEL_KEYS}
    return [(u, wavs[u]) for u in utts], labels


def run_probes(folder: Path, encoder, hp: dict, encoder_id: str) -> None:
    """Linear probes (multinomial logistic regression on standardised pooled embeddings) of the
    SNR class, noise category and region, trained on probe_train, accuracy on probe_test."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = Path(hp["data_folder"])
    out = folder / "probe.json"
    (train_items, train_labels), (test_items, test_labels) = (probe_items(data, s) for s in ("probe_train",
                                                                                            "probe_test"))
    stamp = fingerprint(encoder_id, file_identity(train_items), file_identity(test_items), hp["probe"])
    if out.is_file() and json.loads(out.read_text()).get("stamp") == stamp:
        return
    x_train = cached_embeddings(encoder, folder, train_items, hp, "probe_train", encoder_id)
    x_test = cached_embeddings(encoder, folder, test_items, hp, "probe_test", encoder_id)
    result: dict[str, object] = {"stamp": stamp, "n_train": len(train_items), "n_test": len(test_items)}
    for key in LABEL_KEYS:
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=float(hp["probe"]["C"]),
                                                                   max_iter=int(hp["probe"]["max_iter"])))
        probe.fit(x_train, train_labels[key])
        correct = probe.predict(x_test) == test_labels[key]
        result[key] = {"accuracy": float(correct.mean()), "correct": correct.astype(int).tolist(),
                       "chance": float(np.bincount(test_labels[key]).max() / len(test_labels[key]))}
    atomic_write_text(out, json.dumps(result) + "\n")


def run_system(name: str, seed: int | None, stage, hp: dict, encoder, meta: dict, folder: Path) -> None:
    data = Path(hp["data_folder"])
    encoder_id = encoder_identity(folder) if seed is not None else fingerprint(meta)
    for mos_set in hp["mos_sets"]:
        allowed = (hp["set_systems"] or {}).get(mos_set)
        if allowed is not None and name not in allowed:
            continue
        out = folder / f"mos_{mos_set}.json"
        items, targets, utts, embs = {}, {}, {}, {}
        for split in SPLITS:
            items[split], targets[split] = set_items(data, mos_set, split)
            utts[split] = [u for u, _ in items[split]]
        stamp = fingerprint(encoder_id, [file_identity(items[s]) for s in SPLITS],
                            [targets[s].tolist() for s in SPLITS], hp["downstream"], hp["head_seeds"],
                            hp["mos_max_seconds"])
        if out.is_file() and json.loads(out.read_text()).get("stamp") == stamp:
            print(f"downstream: {name} seed {seed} / {mos_set} is up to date")
            continue
        for split in SPLITS:
            embs[split] = cached_embeddings(encoder, folder, items[split], hp, f"{mos_set}_{split}", encoder_id)
        result = train_heads(folder, mos_set, embs, targets, utts, hp, [int(s) for s in hp["head_seeds"]])
        result.update(stamp=stamp, pretrain_seed=seed, emb_dim=int(meta.get("emb_dim", result["emb_dim"])))
        atomic_write_text(out, json.dumps(result) + "\n")
        print(f"downstream: {name} seed {seed} / {mos_set}: MSE {result['mse']:.3f} LCC {result['lcc']:.3f} "
              f"SRCC {result['srcc']:.3f} (mean of {len(result['heads'])} heads, {result['epochs_run']} epochs)",
              flush=True)
    if seed is not None:
        run_probes(folder, encoder, hp, encoder_id)


def all_units(hp: dict) -> list[tuple[str, int | None]]:
    """(system, pre-training seed) for every trained system, then (external, None)."""
    units: list[tuple[str, int | None]] = []
    for group in ("pase", "masked", "plus", "control"):
        units += [(name, seed) for name in system_names(hp, group) for seed in system_seeds(hp, name)]
    return units + [(name, None) for name in (hp["external_systems"] or {})]


def main() -> None:
    argv = sys.argv[1:]
    job = int(argv[argv.index("--job") + 1]) if "--job" in argv else 1
    stage = start_stage(f"downstream.{job}", argv)
    hp = stage.hparams
    nj = int(hp["nj"])
    if not 1 <= job <= nj:
        raise InputError(f"--job {job} must be in 1..{nj} (--nj)")
    torch.set_num_threads(1)
    units = all_units(hp)[job - 1::nj]
    for name, seed in units:
        if seed is None:
            folder = system_dir(stage.exp_dir, name)
            try:
                encoder, meta = load_external(name, hp[hp["external_systems"][name]])
            except NotRunnable as why:
                folder.mkdir(parents=True, exist_ok=True)
                for mos_set in hp["mos_sets"]:
                    atomic_write_text(folder / f"mos_{mos_set}.json", json.dumps({"not_run": str(why)}) + "\n")
                print(f"downstream: {name}: not run: {why}")
                continue
        else:
            folder = run_dir(stage.exp_dir, hp, name, seed)
            encoder, meta = load_encoder(folder)
        run_system(name, seed, stage, hp, encoder, meta, folder)
    print(f"downstream: job {job}/{nj}: {len(units)} run(s) done")


if __name__ == "__main__":
    exit_on_input_error("mos_pretrain.downstream", main)
