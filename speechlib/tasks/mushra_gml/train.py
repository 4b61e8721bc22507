"""Stage 3 of egs/mushra_gml: train one system over its seeds.

    python -m speechlib.tasks.mushra_gml.train conf/mini_mushra_gml.yaml --output_folder exp/x \
        --system gml_cutmix [--device cpu]

Systems (Table I(a) of the paper, ViSQOL aside, and Figure 1's Gaussian GML):
  gml            individual scores, logistic NLL (eq. 3), outputs (mu, log a)
  gml_cutmix     the same with CutMix, scores mixed per listener (eq. 5)
  nongml         mean scores, smooth-L1, one output
  nongml_cutmix  the same with CutMix, mean scores mixed
  gml_gaussian   individual scores, Gaussian NLL (eq. 2), for Figure 1
(`mixup: true` uses MixUp in place of CutMix.) Each seed of `seeds` trains into
exp/<tag>/<system>_seed<N>/ (the kit's layout: save/, train_log.txt, loss_curve.json, ...) and
is exported as a model directory exp/<tag>/<system>_seed<N>/model/ that `predict` loads.

Data: the training tests' items (reference/coded features and the padded per-listener score
matrix). 80/20 split with `number_of_folds`-fold cross-validation as in the paper: the trials
are dealt into folds; fold k is the validation set for `epochs_per_fold` epochs while the model
goes on training on the rest, then fold k + 1 (paper: 5 folds x 10 epochs). L/R swap with
probability `swap_probability` per item and batch (labels kept).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.metrics.mushra import NLLS
from speechlib.nn.inse import StereoInSENet
from speechlib.signal.augment import cutmix, mixup, swap_left_right_features
from speechlib.tasks.brain import RecipeBrain
from speechlib.tasks.model_dir import save_model_dir
from speechlib.tasks.stage import Option, set_seed, start_stage
from speechlib.tasks.training import build_brain, fit, optimizer_from_config

log = logging.getLogger("mushra_gml.train")
SYSTEMS = ("gml", "gml_cutmix", "nongml", "nongml_cutmix", "gml_gaussian")


@dataclass(frozen=True)
class SystemSpec:
    """What a system name means: its output distribution (None: mean-score regression) and mixing."""

    distribution: str | None
    mixing: bool

    @staticmethod
    def of(system: str) -> "SystemSpec":
        if system not in SYSTEMS:
            raise InputError(f"unknown system '{system}' (have: {', '.join(SYSTEMS)})")
        distribution = None if system.startswith("nongml") else "gaussian" if system == "gml_gaussian" else "logistic"
        return SystemSpec(distribution, system.endswith("_cutmix"))

    @property
    def outputs(self) -> int:
        return 1 if self.distribution is None else 2


class ScoreSet(Dataset):
    """Items of listening tests: float features, padded scores (0 where masked), mask, item id."""

    def __init__(self, features: torch.Tensor, scores: torch.Tensor, items: list[str]):
        self.features, self.items = features, items
        self.mask = torch.isfinite(scores)
        self.scores = torch.nan_to_num(scores, nan=0.0)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return index


@dataclass
class Batch:
    id: list[str]
    features: torch.Tensor
    scores: torch.Tensor
    mask: torch.Tensor


def collate(dataset: ScoreSet, indices: list[int]) -> Batch:
    index = torch.tensor(indices)
    return Batch([dataset.items[i] for i in indices], dataset.features[index].float(),
                 dataset.scores[index], dataset.mask[index])


def load_tests(data_folder: str | Path, role: str | None = None, names: list[str] | None = None) -> list[dict]:
    """Feature files of stage 2, selected by role ("train") or by test name."""
    folder = Path(data_folder) / "features"
    files = sorted(folder.glob("*.pt"))
    if not files:
        raise InputError("no feature files: run stage 2 (features) first", str(folder))
    tests = [torch.load(f, weights_only=True) | {"name": f.stem} for f in files]
    return [t for t in tests if (role is None or t["role"] == role) and (names is None or t["name"] in names)]


def merge_tests(tests: list[dict]) -> tuple[torch.Tensor, torch.Tensor, list[str], int]:
    """Stack several tests' items; score columns padded with NaN to the largest panel.
    Returns (features, scores, items, excerpt length in samples)."""
    width = max(t["scores"].shape[1] for t in tests)
    scores = torch.cat([torch.nn.functional.pad(t["scores"], (0, width - t["scores"].shape[1]), value=math.nan)
                        for t in tests])
    return (torch.cat([t["features"] for t in tests]), scores, [i for t in tests for i in t["items"]],
            int(tests[0]["num_samples"]))


def fold_of_items(items: list[str], folds: int, seed: int) -> np.ndarray:
    """Deal the trials (item id without its condition) into `folds` folds, at random by `seed`."""
    trials = sorted({item.rsplit("-", 1)[0] for item in items})
    order = np.random.default_rng(seed).permutation(len(trials))
    fold = {trials[i]: rank % folds for rank, i in enumerate(order)}
    return np.array([fold[item.rsplit("-", 1)[0]] for item in items])


class GMLBrain(RecipeBrain):
    """The GML (distribution head, NLL on individual scores) and the non-GML regressor."""

    needs = ("spec", "generator")

    def normalise(self, scores: torch.Tensor) -> torch.Tensor:
        return (scores - self.hparams.score_centre) / self.hparams.score_scale

    def compute_forward(self, batch: Batch, stage):
        features = batch.features.to(self.device)
        scores, mask = batch.scores.to(self.device), batch.mask.to(self.device)
        if stage == sb.Stage.TRAIN:
            swap = torch.rand(features.shape[0], generator=self.generator) < self.hparams.swap_probability
            swap = swap.to(self.device).reshape(-1, 1, 1, 1, 1)
            features = torch.where(swap, swap_left_right_features(features), features)
            if self.spec.distribution is None:  # non-GML mixes mean scores: one column per item
                scores = ((scores * mask).sum(1) / mask.sum(1)).unsqueeze(1)
                mask = torch.ones_like(scores, dtype=torch.bool)
            if self.spec.mixing:
                mix = mixup if self.hparams.mixup else cutmix
                features, scores, _ = mix(features, scores, mask, self.hparams.mix_alpha, self.generator)
        return self.modules.model(features), scores, mask

    def compute_objectives(self, predictions, batch: Batch, stage):
        outputs, scores, mask = predictions
        z = self.normalise(scores)
        if self.spec.distribution is None:
            target = (z * mask).sum(1) / mask.sum(1)
            loss = torch.nn.functional.smooth_l1_loss(outputs[:, 0], target, beta=self.hparams.smooth_l1_beta)
        else:
            nll = NLLS[self.spec.distribution](z, outputs[:, :1], outputs[:, 1:2])
            loss = (nll * mask).sum() / mask.sum()
            # NLL per score in score points (z -> s adds log(scale)): comparable across distributions
            self.add_stat("nll_points", float(loss) + math.log(self.hparams.score_scale), float(mask.sum()))
        return loss


def model_config(hp: dict, spec: SystemSpec) -> dict:
    return {"outputs": spec.outputs, **{k: (list(v) if isinstance(v, (list, tuple)) else v)
                                        for k, v in hp["model"].items()}}


def train_seed(stage, system: str, spec: SystemSpec, seed: int, data: tuple) -> Path:
    """Train one seed of `system` (resuming if interrupted) and export its model directory."""
    hp = stage.hparams
    set_seed(seed)
    features, scores, items, num_samples = data
    config = model_config(hp, spec)
    model = StereoInSENet(**config)
    generator = torch.Generator().manual_seed(seed)
    name = f"{system}_seed{seed}"
    folds = fold_of_items(items, hp["number_of_folds"], seed)
    epochs = hp["number_of_folds"] * hp["epochs_per_fold"]
    brain = build_brain(GMLBrain, stage, name, {"model": model},
                        optimizer=optimizer_from_config({"name": "Adam", "lr": hp["lr"]}), epochs=epochs,
                        recoverables={"generator": _GeneratorState(generator)},
                        fingerprint=f"{stage.fingerprint}-{system}-{seed}", spec=spec, generator=generator)
    counter = brain.run.epoch_counter
    for fold in range(hp["number_of_folds"]):
        counter.limit = (fold + 1) * hp["epochs_per_fold"]
        train_index = np.flatnonzero(folds != fold)
        valid_index = np.flatnonzero(folds == fold)
        train_set = ScoreSet(features[train_index], scores[train_index], [items[i] for i in train_index])
        valid_set = ScoreSet(features[valid_index], scores[valid_index], [items[i] for i in valid_index])
        fit(brain, _loader(train_set, hp["batch_size"], True, seed + fold),
            _loader(valid_set, hp["batch_size"], False, seed))
    folder = Path(stage.exp_dir) / name / "model"
    if sb.utils.distributed.if_main_process():
        save_listener(folder, getattr(brain.modules.model, "module", brain.modules.model),  # DDP unwrapped
                      hp, system, num_samples, seed)
    return folder


def save_listener(folder: Path, model: StereoInSENet, hp: dict, system: str, num_samples: int, seed: int) -> Path:
    """Export a trained network as the model directory `predict` loads (with its gammatone
    settings, score normalisation and the training excerpt length)."""
    spec = SystemSpec.of(system)
    return save_model_dir(folder, recipe="mushra_gml", kind="listener", system=system, sample_rate=hp["sample_rate"],
                          modules={"model": model}, configs={"model": model_config(hp, spec)}, corpus=str(hp["corpus"]),
                          extra={"distribution": spec.distribution, "score_centre": hp["score_centre"],
                                 "score_scale": hp["score_scale"], "gammatone": dict(hp["gammatone"]),
                                 "num_samples": num_samples, "seed": seed})


@sb.utils.checkpoints.register_checkpoint_hooks
class _GeneratorState:
    """Checkpoint the augmentation generator, so a resumed training draws what it would have."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    @sb.utils.checkpoints.mark_as_saver
    def save(self, path):
        torch.save(self.generator.get_state(), path)

    @sb.utils.checkpoints.mark_as_loader
    def load(self, path, end_of_epoch=True):
        self.generator.set_state(torch.load(path, weights_only=True))


def _loader(dataset: ScoreSet, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    """A plain DataLoader (the fold changes the data, so no saveable loader is registered);
    under DDP each process gets its share through a DistributedSampler."""
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed)
        shuffle = False
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, generator=generator,
                      collate_fn=lambda indices: collate(dataset, indices))


def main() -> None:
    stage = start_stage("train_{system}", options=(Option("system", "the system to train", SYSTEMS),))
    hp = stage.hparams
    system = stage.options["system"]
    spec = SystemSpec.of(system)
    tests = load_tests(hp["data_folder"], role="train")
    if not tests:
        raise InputError("no training tests (role 'train') among the feature files", hp["data_folder"])
    data = merge_tests(tests)
    seeds = hp["figure1_seeds"] if system == "gml_gaussian" else hp["seeds"]
    for seed in seeds:
        folder = train_seed(stage, system, spec, int(seed), data)
        log.info("%s seed %s: model directory %s", system, seed, folder)


if __name__ == "__main__":
    exit_on_input_error("mushra_gml.train", main)
