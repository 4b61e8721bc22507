"""Stage 5 of egs/mos_pretrain: the MOS head on each frozen encoder, for each MOS set.

    python -m speechlib.tasks.mos_pretrain.downstream conf/mini_mos_pretrain.yaml --output_folder exp/x --job 1

For every system (job j of nj takes systems j, j+nj, ...): embed the MOS sets with the frozen
encoder (no masking; frame embeddings mean-pooled over time, cached as .npy), train the head
(64 hidden, LayerNorm, ReLU, dropout 0.2, output clipped to [1, 5]; Adam lr 1.2e-4, weight decay
1e-3, batch 16, MSE) (a plain loop: see train_head), keep the epoch with the lowest validation MSE, and
write predictions and MSE/LCC/SRCC on the test split to encoders/<system>/mos_<set>.json.
External encoders (wav2vec 2.0, HuBERT, Dasheng) without a local checkpoint get a "not run" record.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch

from speechlib.io.atomic import atomic_write_text
from speechlib.io.errors import InputError, TrainingDiverged, exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.metrics.correlation import mos_metrics
from speechlib.nn.mos_head import MOSHead
from speechlib.tasks.mos_pretrain.external import NotRunnable, load_external
from speechlib.tasks.mos_pretrain.systems import (embed_files, fingerprint, load_encoder, save_head, system_dir,
                                                  system_names)
from speechlib.tasks.stage import start_stage

SPLITS = ("train", "valid", "test")


def set_items(data: Path, mos_set: str, split: str) -> tuple[list[tuple[str, str]], np.ndarray]:
    wavs = read_dict(data / f"{mos_set}_{split}" / "wav.scp")
    mos = read_dict(data / f"{mos_set}_{split}" / "utt2mos")
    utts = sorted(wavs)
    return [(u, wavs[u]) for u in utts], np.array([float(mos[u]) for u in utts], dtype=np.float32)


def cached_embeddings(encoder, folder: Path, items, hp: dict, name: str) -> np.ndarray:
    path = folder / f"emb_{name}.npy"
    if path.is_file():
        cached = np.load(path)
        if cached.shape[0] == len(items):
            return cached
    emb = embed_files(encoder, items, hp["sample_rate"], hp["mos_max_seconds"], desc=f"embed {name}")
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    tmp.replace(path)
    return emb


def train_head(folder: Path, mos_set: str, embs: dict, targets: dict, utts: dict, hp: dict) -> dict[str, object]:
    """Minibatch Adam on the cached pooled embeddings; the best-validation-MSE epoch is kept.

    A plain loop rather than a Brain: the head has ~7k parameters and 1000 epochs take seconds
    this way (a Brain's per-epoch bookkeeping alone would take minutes), so a killed run is
    simply re-run rather than resumed. A non-finite loss stops with the batch's utterance ids.
    """
    opts = hp["downstream"]
    gen = torch.Generator().manual_seed(int(hp["seed"]))
    torch.manual_seed(hp["seed"])
    head = MOSHead(embs["train"].shape[1], opts["hidden"], opts["dropout"])
    optimizer = torch.optim.Adam(head.parameters(), lr=opts["lr"], weight_decay=opts["weight_decay"])
    x, y = torch.from_numpy(embs["train"]), torch.from_numpy(targets["train"])
    xv, yv = torch.from_numpy(embs["valid"]), torch.from_numpy(targets["valid"])
    run = folder / f"head_{mos_set}"
    run.mkdir(parents=True, exist_ok=True)
    tb = sb.utils.train_logger.TensorboardLogger(str(run / "tensorboard"))
    log_every = max(1, opts["epochs"] // 10)
    best, best_epoch, best_state = float("inf"), 0, None
    lines = []
    for epoch in range(1, opts["epochs"] + 1):
        head.train()
        order, total = torch.randperm(len(x), generator=gen), 0.0
        for start in range(0, len(x), opts["batch_size"]):
            idx = order[start:start + opts["batch_size"]]
            loss = torch.nn.functional.mse_loss(head(x[idx]), y[idx])
            if not torch.isfinite(loss):
                ids = ", ".join(utts["train"][i] for i in idx.tolist())
                raise TrainingDiverged(f"non-finite MOS-head loss at epoch {epoch}; batch utterances: {ids}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        head.eval()
        with torch.no_grad():
            valid = float(torch.nn.functional.mse_loss(head(xv), yv))
        if valid < best:
            best, best_epoch = valid, epoch
            best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
        if epoch % log_every == 0 or epoch == opts["epochs"]:
            tb.log_stats({"epoch": epoch}, train_stats={"mse": total / len(x)}, valid_stats={"mse": valid})
            lines.append(f"epoch {epoch}: train MSE {total / len(x):.4f}, valid MSE {valid:.4f}")
    head.load_state_dict(best_state)
    head.eval()
    with torch.no_grad():
        pred = head(torch.from_numpy(embs["test"])).numpy()
    save_head(run, head.state_dict())
    (run / "train_log.txt").write_text("\n".join(lines) + "\n")
    return {"system": folder.name, "mos_set": mos_set, **mos_metrics(pred, targets["test"]),
            "n_test": int(len(pred)), "best_epoch": best_epoch, "best_valid_mse": best,
            "emb_dim": int(embs["train"].shape[1]), "predictions": {u: float(p) for u, p in zip(utts["test"], pred)}}


def run_system(name: str, stage, hp: dict, encoder, meta: dict) -> None:
    folder = system_dir(stage.exp_dir, name)
    data = Path(hp["data_folder"])
    for mos_set in hp["mos_sets"]:
        out = folder / f"mos_{mos_set}.json"
        stamp = fingerprint(meta.get("train_seconds"), meta.get("kwargs"), hp["downstream"], hp["seed"],
                            hp["mos_max_seconds"], str(data.resolve()), mos_set)
        if out.is_file() and json.loads(out.read_text()).get("stamp") == stamp:
            print(f"downstream: {name} / {mos_set} is up to date")
            continue
        items, targets, utts, embs = {}, {}, {}, {}
        for split in SPLITS:
            items[split], targets[split] = set_items(data, mos_set, split)
            utts[split] = [u for u, _ in items[split]]
            embs[split] = cached_embeddings(encoder, folder, items[split], hp, f"{mos_set}_{split}")
        result = train_head(folder, mos_set, embs, targets, utts, hp)
        result.update(stamp=stamp, emb_dim=int(meta.get("emb_dim", result["emb_dim"])))
        atomic_write_text(out, json.dumps(result, indent=1) + "\n")
        print(f"downstream: {name} / {mos_set}: MSE {result['mse']:.3f} LCC {result['lcc']:.3f} "
              f"SRCC {result['srcc']:.3f} (best epoch {result['best_epoch']})", flush=True)


def all_systems(hp: dict) -> list[str]:
    names = []
    for group in ("pase", "masked", "plus"):
        names += system_names(hp, group)
    return names + list((hp["external_systems"] or {}).keys())


def main() -> None:
    argv = sys.argv[1:]
    job = int(argv[argv.index("--job") + 1]) if "--job" in argv else 1
    stage = start_stage(f"downstream.{job}", argv)
    hp = stage.hparams
    nj = int(hp["nj"])
    if not 1 <= job <= nj:
        raise InputError(f"--job {job} must be in 1..{nj} (--nj)")
    torch.set_num_threads(1)
    names = all_systems(hp)[job - 1::nj]
    for name in names:
        if name in (hp["external_systems"] or {}):
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
            encoder, meta = load_encoder(system_dir(stage.exp_dir, name))
        run_system(name, stage, hp, encoder, meta)
    print(f"downstream: job {job}/{nj}: {len(names)} system(s) done")


if __name__ == "__main__":
    exit_on_input_error("mos_pretrain.downstream", main)
