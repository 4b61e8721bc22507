"""Stage 5 of egs/mos_pretrain: the MOS head on each frozen encoder, for each MOS set.

    python -m speechlib.tasks.mos_pretrain.downstream conf/mini_mos_pretrain.yaml --output_folder exp/x --job 1

For every (system, pre-training seed) run (job j of nj takes runs j, j+nj, ...): embed the MOS sets
with the frozen encoder (no masking; frame embeddings mean-pooled over time, cached as .npy under a
key of encoder weights + file list), train one head per head seed (inputs standardised with the
training set's statistics; 64 hidden, LayerNorm, ReLU, dropout 0.2, output clipped to [1, 5]; Adam
lr 1.2e-4, weight decay 1e-3, batch 16, MSE; up to 1000 epochs, early stopping on validation MSE;
built and trained by the kit, exp/<tag>/encoders/<system>/seed<k>/head_<set>/), and write every
head's test predictions and MSE/LCC/SRCC to <run>/mos_<set>.json; then the linear probes (SNR class,
category, region) of the frozen encoder to <run>/probe.json.
External encoders (wav2vec 2.0, HuBERT, Dasheng) without a local checkpoint get a "not run" record.
"""
from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch

from speechlib.io.atomic import atomic_path, atomic_write_text
from speechlib.io.errors import exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.metrics.correlation import mos_metrics
from speechlib.nn.mos_head import MOSHeadEnsemble
from speechlib.tasks.mos_pretrain.external import NotRunnable, load_external
from speechlib.tasks.mos_pretrain.noisy import LABEL_KEYS
from speechlib.tasks.mos_pretrain.systems import (embed_files, encoder_identity, file_identity, fingerprint,
                                                  load_encoder, run_dir, save_head, system_dir, system_names,
                                                  system_seeds)
from speechlib.tasks.brain import RecipeBrain
from speechlib.tasks.stage import start_stage
from speechlib.tasks.training import build_brain, fit

log = logging.getLogger("mos_pretrain")

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


@dataclass
class HeadBatch:
    """One minibatch for all heads: x (count, batch, dim), y (count, batch), the utterance ids."""

    id: list[str]
    x: torch.Tensor
    y: torch.Tensor

    def to(self, device) -> "HeadBatch":
        return HeadBatch(self.id, self.x.to(device), self.y.to(device))


class HeadBatches(torch.utils.data.Dataset):
    """The epoch's minibatches for `count` heads at once (item j: batch j; the loader does no
    batching): head k's batch j is rows order_k[j*B:(j+1)*B].

    Training (`seeds` given): each head has its own shuffle, drawn from (head seed, epoch), so a
    resumed run draws the epoch an uninterrupted one would. Validation: every head sees the rows
    in order. Whole batches, because per-item loading and collation cost more than a head's step.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, utts: list[str], count: int, batch_size: int,
                 seeds: list[int] | None = None):
        self.x, self.y, self.utts = torch.from_numpy(x), torch.from_numpy(y), utts
        self.seeds, self.batch = seeds, batch_size
        self.orders = torch.arange(len(x)).expand(count, len(x))

    def set_epoch(self, epoch: int) -> None:
        self.orders = torch.stack([torch.randperm(len(self.x), generator=torch.Generator().manual_seed(
            int(seed) * 100_003 + int(epoch))) for seed in self.seeds])

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch)

    def __getitem__(self, j: int) -> HeadBatch:
        rows = self.orders[:, j * self.batch:(j + 1) * self.batch]
        return HeadBatch(list(dict.fromkeys(self.utts[r] for r in rows.flatten().tolist())), self.x[rows], self.y[rows])


class BestHeads(torch.nn.Module):
    """Each head's best validation MSE, its epoch and its weights at that epoch (a checkpoint
    recoverable: a resumed run keeps the best it had)."""

    def __init__(self, heads: MOSHeadEnsemble):
        super().__init__()
        self.register_buffer("mse", torch.full((heads.count,), float("inf")))
        self.register_buffer("epoch", torch.zeros(heads.count, dtype=torch.long))
        self.register_buffer("last", torch.zeros((), dtype=torch.long))  # the last epoch trained
        self.state = {k: v.detach().clone() for k, v in heads.state_dict().items()}
        for name, value in self.state.items():
            self.register_buffer("w_" + name, value)

    def update(self, valid: torch.Tensor, epoch: int, heads: MOSHeadEnsemble) -> None:
        self.last.fill_(epoch)
        better = valid < self.mse
        if better.any():
            self.mse.copy_(torch.where(better, valid, self.mse))
            self.epoch[better] = epoch
            for name, value in heads.state_dict().items():
                if value.dim() and value.shape[0] == heads.count and name not in ("in_mean", "in_std"):
                    getattr(self, "w_" + name)[better] = value[better].detach()

    def weights(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, "w_" + name) for name in self.state}


class HeadBrain(RecipeBrain):
    """All head seeds' MOS heads (MOSHeadEnsemble) trained as one Brain on cached embeddings.

    The loss is the sum of the heads' MSEs: each head's gradient is its own (the ensemble is
    exactly the heads trained alone; gradient clipping is off so no head's norm limits another's).
    After each epoch the per-head validation MSE updates `best`; training stops when no head
    improved for `patience` epochs. The kit's bookkeeping (train_log, TensorBoard, loss curve,
    checkpoint) runs every `log_every` epochs and at the end: a head epoch is ~15 steps, and
    per-epoch checkpoints would cost more than the training.
    """

    needs = ("train_set", "best", "patience", "log_every")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_grad_norm = float("inf")

    def compute_forward(self, batch, stage):
        return self.modules.heads(batch.to(self.device).x)

    def compute_objectives(self, predictions, batch, stage):
        per_head = ((predictions - batch.y.to(self.device)) ** 2).mean(1)
        if stage == sb.Stage.VALID:
            self._valid_sum += per_head.detach() * predictions.shape[1]
            self._valid_count += predictions.shape[1]
        self.add_stat("mse", float(per_head.detach().mean()), predictions.shape[1])
        return per_head.sum()

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        if stage == sb.Stage.TRAIN:
            self.train_set.set_epoch(int(epoch))
        self._valid_sum, self._valid_count = 0.0, 0

    def end_epoch(self, epoch, train_stats, valid_stats):
        valid = self._valid_sum / max(self._valid_count, 1)
        self.best.update(valid.cpu(), epoch, self.modules.heads)
        counter = self.run.epoch_counter
        stop = int((epoch - self.best.epoch).min()) >= self.patience
        if stop:
            logging.getLogger("mos_pretrain").info("%s: early stop at epoch %d: no head improved for %d epochs",
                                                   self.run.system, epoch, self.patience)
            counter.current = counter.limit
        if stop or epoch % self.log_every == 0 or epoch >= counter.limit:
            super().end_epoch(epoch, train_stats, {**valid_stats, "best_mse": float(self.best.mse.mean())})


def train_heads(stage, run: str, mos_set: str, embs: dict, targets: dict, utts: dict, hp: dict,
                head_seeds: list[int], stamp: str) -> dict[str, object]:
    """One MOS head per head seed, trained together (MOSHeadEnsemble, HeadBrain) with the kit
    under exp/<tag>/<run>/head_<set>/ (run: the encoder's folder under exp/<tag>): minibatch Adam on
    the cached pooled embeddings (standardised with the training set's statistics) until `epochs`
    or early stopping; each head keeps its best-validation epoch. A non-finite loss stops with the batch's utterance ids.
    The first head is saved as the model directory head_<set>/ (what `predict` loads)."""
    opts = hp["downstream"]
    count = len(head_seeds)
    heads = MOSHeadEnsemble(count, embs["train"].shape[1], opts["hidden"], opts["dropout"], seeds=head_seeds)
    heads.set_input_stats(torch.from_numpy(embs["train"]))
    best = BestHeads(heads)
    train = HeadBatches(embs["train"], targets["train"], utts["train"], count, int(opts["batch_size"]), head_seeds)
    valid = HeadBatches(embs["valid"], targets["valid"], utts["valid"], count, len(embs["valid"]))
    name = f"{run}/head_{mos_set}"
    brain = build_brain(HeadBrain, stage, name, {"heads": heads},
                        optimizer=functools.partial(torch.optim.Adam, lr=opts["lr"], weight_decay=opts["weight_decay"]),
                        epochs=opts["epochs"], recoverables={"best": best}, fingerprint=stamp,
                        train_set=train, best=best, patience=int(opts["patience"]),
                        log_every=max(1, int(opts["log_every"])))
    whole = {"batch_size": None, "collate_fn": lambda batch: batch}  # the items are batches
    fit(brain, train, valid, train_loader_kwargs=whole, valid_loader_kwargs=whole)
    heads = brain.modules.heads.cpu()
    heads.load_state_dict({**heads.state_dict(), **best.weights()})
    heads.eval()
    with torch.no_grad():
        preds = heads(torch.from_numpy(embs["test"])).numpy()
    folder = Path(stage.exp_dir) / name
    save_head(folder, heads.head_state(0), sample_rate=int(hp["sample_rate"]), corpus=str(hp["corpus"]))
    per_head = [{"head_seed": int(seed), **mos_metrics(pred, targets["test"]), "best_epoch": int(best.epoch[k]),
                 "best_valid_mse": float(best.mse[k]), "predictions": [float(p) for p in pred]}
                for k, (seed, pred) in enumerate(zip(head_seeds, preds))]
    means = {m: float(np.mean([h[m] for h in per_head])) for m in ("mse", "lcc", "srcc")}
    return {"mos_set": mos_set, **means, "n_test": int(preds.shape[1]),
            "epochs_run": int(best.last), "emb_dim": int(embs["train"].shape[1]),
            "test_utts": list(utts["test"]), "targets": [float(t) for t in targets["test"]], "heads": per_head}


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
            log.info("downstream: %s seed %s / %s is up to date", name, seed, mos_set)
            continue
        for split in SPLITS:
            embs[split] = cached_embeddings(encoder, folder, items[split], hp, f"{mos_set}_{split}", encoder_id)
        result = train_heads(stage, folder.relative_to(stage.exp_dir).as_posix(), mos_set, embs, targets, utts, hp,
                             [int(s) for s in hp["head_seeds"]], stamp)
        result.update(system=name, stamp=stamp, pretrain_seed=seed,
                      emb_dim=int(meta.get("emb_dim", result["emb_dim"])))
        atomic_write_text(out, json.dumps(result) + "\n")
        log.info("downstream: %s seed %s / %s: MSE %.3f LCC %.3f SRCC %.3f (mean of %d heads, %d epochs)", name, seed,
                 mos_set, result["mse"], result["lcc"], result["srcc"], len(result["heads"]), result["epochs_run"])
    if seed is not None:
        run_probes(folder, encoder, hp, encoder_id)


def all_units(hp: dict) -> list[tuple[str, int | None]]:
    """(system, pre-training seed) for every trained system, then (external, None)."""
    units: list[tuple[str, int | None]] = []
    for group in ("pase", "masked", "plus", "control"):
        units += [(name, seed) for name in system_names(hp, group) for seed in system_seeds(hp, name)]
    return units + [(name, None) for name in (hp["external_systems"] or {})]


def main() -> None:
    stage = start_stage("downstream.{job}", options=(), jobs=True)
    hp, job, nj = stage.hparams, stage.job, stage.nj
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
                log.info("downstream: %s: not run: %s", name, why)
                continue
        else:
            folder = run_dir(stage.exp_dir, name, seed)
            encoder, meta = load_encoder(folder)
        run_system(name, seed, stage, hp, encoder, meta, folder)
    log.info("downstream: job %d/%d: %d run(s) done", job, nj, len(units))


if __name__ == "__main__":
    exit_on_input_error("mos_pretrain.downstream", main)
