"""The one way a recipe trains a system: build its Brain, fit it, record it.

    from speechlib.tasks.training import build_brain, fit, optimizer_from_config

    brain = build_brain(MyBrain, stage, "source", modules={"model": model},
                        optimizer=optimizer_from_config(hp["optimizer"]), epochs=hp["epochs"],
                        teacher=teacher)                     # a dependency MyBrain.needs
    fit(brain, train_set, valid_set, train_loader_kwargs=hp["train_loader"])

Python builds the objects; the YAML holds values only (README, "Recipe kit": one config key per
number, no `!new:` objects), so a config always describes the run and the same builder serves
every system a recipe trains. Every trained system gets the same layout:

    exp/<tag>/<system>/save/              AtomicCheckpointer (resume after a kill; the random
                                          states are saved too, so a resumed run repeats)
    exp/<tag>/<system>/train_log.txt      one line per epoch (SpeechBrain's FileTrainLogger)
    exp/<tag>/<system>/tensorboard/       TensorBoard event files
    exp/<tag>/<system>/loss_curve.json    per-epoch train/valid statistics
    exp/<tag>/<system>/loss_curve.png     the same as a figure (drawn when training ends)
    exp/<tag>/<system>/throughput.json    training time and utterances per second
    exp/<tag>/<system>/config.fingerprint the config the system was trained with

The one invalidation rule: a system directory whose config.fingerprint differs from the current
stage's (any change of the resolved config or of the stage options) is deleted before training,
so a changed config retrains from scratch and an unchanged one resumes from its checkpoint.
"""
from __future__ import annotations

import functools
import json
import logging
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from speechbrain.utils.checkpoints import mark_as_loader, mark_as_saver, register_checkpoint_hooks
from speechbrain.utils.distributed import ddp_barrier, if_main_process
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain.utils.train_logger import FileTrainLogger, TensorboardLogger

from speechlib.io.atomic import atomic_write_text
from speechlib.io.errors import InputError
from speechlib.results.plots import loss_curves
from speechlib.tasks.brain import AtomicCheckpointer, RecipeBrain
from speechlib.tasks.stage import Stage, announce_resume

logger = logging.getLogger("training")


@dataclass(frozen=True)
class SystemDir:
    """exp/<tag>/<system>/ and the files the training helper writes there."""

    path: Path

    @property
    def save(self) -> Path:
        return self.path / "save"

    @property
    def train_log(self) -> Path:
        return self.path / "train_log.txt"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def loss_curve(self) -> Path:
        return self.path / "loss_curve.json"

    @property
    def loss_png(self) -> Path:
        return self.path / "loss_curve.png"

    @property
    def throughput(self) -> Path:
        return self.path / "throughput.json"

    @property
    def fingerprint(self) -> Path:
        return self.path / "config.fingerprint"


def system_dir(exp_dir: str | Path, system: str) -> SystemDir:
    return SystemDir(Path(exp_dir) / system)


def invalidate_if_changed(folder: SystemDir, fingerprint: str) -> bool:
    """The rule: a system trained under another config is removed; returns True if it was.

    Rank 0 decides and deletes; every process waits for it before the checkpointer looks.
    """
    removed = False
    if if_main_process():
        stamp = folder.fingerprint
        if folder.path.exists() and (not stamp.is_file() or stamp.read_text().strip() != fingerprint):
            logger.info("config changed since %s was trained: removing it, training from scratch", folder.path)
            shutil.rmtree(folder.path)
            removed = True
        folder.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(stamp, fingerprint + "\n")
    ddp_barrier()
    return removed


@register_checkpoint_hooks
class RandomStates:
    """Python's, NumPy's and torch's global random states, saved with every checkpoint: a
    training killed and resumed then draws the crops, masks and noises an uninterrupted one
    would, and ends with the same weights (README, "Same command, same table")."""

    @mark_as_saver
    def save(self, path) -> None:
        kind, keys, position, has_gauss, gauss = np.random.get_state()
        state = {"python": random.getstate(), "torch": torch.get_rng_state(),
                 "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss)}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(state, path)

    @mark_as_loader
    def load(self, path, end_of_epoch) -> None:
        del end_of_epoch  # the same states either way
        state = torch.load(path, weights_only=True)
        random.setstate(state["python"])
        kind, keys, position, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class TrainingRun:
    """A system's epoch counter and loggers; RecipeBrain calls `log_epoch` after each epoch."""

    def __init__(self, folder: SystemDir, system: str, epochs: int) -> None:
        self.folder, self.system = folder, system
        self.epoch_counter = EpochCounter(epochs)
        self.file_logger = FileTrainLogger(str(folder.train_log))
        self.tensorboard = TensorboardLogger(str(folder.tensorboard))

    def log_epoch(self, epoch: int, train: Mapping[str, float], valid: Mapping[str, float] | None) -> None:
        # SpeechBrain's loggers write on rank 0 and broadcast: every rank must call them
        meta = {"epoch": epoch}
        self.file_logger.log_stats(meta, train_stats=dict(train), valid_stats=dict(valid) if valid else None)
        self.tensorboard.log_stats(meta, train_stats=dict(train), valid_stats=dict(valid) if valid else None)
        if not if_main_process():
            return
        curve = self.curve()
        curve = [row for row in curve if row["epoch"] < epoch]  # a resumed epoch replaces its row
        curve.append({"epoch": epoch, "train": dict(train), "valid": dict(valid) if valid else None})
        atomic_write_text(self.folder.loss_curve, json.dumps(curve, indent=1) + "\n")
        shown = ", ".join(f"train {k} {v:.4g}" for k, v in train.items() if k != "epoch_seconds")
        if valid:
            shown += ", " + ", ".join(f"valid {k} {v:.4g}" for k, v in valid.items())
        logging.getLogger("progress").info("train %s epoch %d/%d done in %.1f s: %s", self.system, epoch,
                                           self.epoch_counter.limit, train.get("epoch_seconds", 0.0), shown)

    def flush(self) -> None:
        """Write the TensorBoard events still queued (its writer thread would die with the process)."""
        if self.tensorboard.writer is not None:
            self.tensorboard.writer.flush()

    def curve(self) -> list[dict]:
        path = self.folder.loss_curve
        return json.loads(path.read_text()) if path.is_file() else []


def optimizer_from_config(spec: Mapping[str, Any]) -> Callable:
    """`{name: Adam, lr: 0.001, weight_decay: 0}` -> a function params -> torch.optim.Adam(...)."""
    spec = dict(spec)
    name = spec.pop("name", None)
    optimizer = getattr(torch.optim, str(name), None)
    if not isinstance(optimizer, type) or not issubclass(optimizer, torch.optim.Optimizer):
        raise InputError(f"optimizer name '{name}' is not a torch.optim optimizer (e.g. Adam, SGD)")
    return functools.partial(optimizer, **spec)


def build_brain(brain_class: type[RecipeBrain], stage: Stage, system: str, modules: Mapping[str, torch.nn.Module],
                *, optimizer: Callable, epochs: int, recoverables: Mapping[str, Any] | None = None,
                hparams: Mapping[str, Any] | None = None, fingerprint: str | None = None,
                **dependencies) -> RecipeBrain:
    """A Brain for `system`, ready to `fit`: modules, optimiser, atomic checkpointer under
    exp/<tag>/<system>/save (modules, epoch counter and `recoverables`, e.g. a teacher that
    changes during training), loggers, and the dependencies its class `needs`.

    `fingerprint` (default: the stage's) is what invalidates a finished system (see above).
    """
    folder = system_dir(stage.exp_dir, system)
    invalidate_if_changed(folder, fingerprint or stage.fingerprint)
    run = TrainingRun(folder, system, epochs)
    checkpointer = AtomicCheckpointer(folder.save, recoverables={
        **modules, "counter": run.epoch_counter, "random_states": RandomStates(), **(recoverables or {})})
    return brain_class(modules=dict(modules), opt_class=optimizer, hparams=dict(hparams or stage.hparams),
                       run_opts=stage.run_opts, checkpointer=checkpointer, run=run, **dependencies)


def fit(brain: RecipeBrain, train_set, valid_set=None, *, train_loader_kwargs: Mapping | None = None,
        valid_loader_kwargs: Mapping | None = None) -> dict[str, float]:
    """Train (or resume) to the last epoch; write and return the system's throughput."""
    if brain.run is None:
        raise ValueError("fit() needs a Brain made by build_brain (it has no TrainingRun)")
    run = brain.run
    announce_resume(brain.checkpointer)
    started = time.monotonic()
    brain.fit(run.epoch_counter, train_set, valid_set, train_loader_kwargs=dict(train_loader_kwargs or {}),
              valid_loader_kwargs=dict(valid_loader_kwargs or {}))
    run.flush()
    rows = run.curve()
    epoch_seconds = [row["train"].get("epoch_seconds", 0.0) for row in rows]
    rates = [row["train"]["utterances_per_second"] for row in rows if "utterances_per_second" in row["train"]]
    throughput = {"epochs": len(rows), "train_seconds": round(sum(epoch_seconds), 3),
                  "utterances_per_second": round(sum(rates) / len(rates), 3) if rates else None,
                  "wall_seconds_this_run": round(time.monotonic() - started, 3)}
    if if_main_process():
        atomic_write_text(run.folder.throughput, json.dumps(throughput, indent=1) + "\n")
        if rows:  # drawn once at the end: matplotlib costs about a second a figure
            loss_curves(rows, run.folder.loss_png, title=f"{run.system}: loss per epoch")
    logger.info("%s: trained %d epochs in %.1f s of training (%s utterances/s); %s", run.system,
                throughput["epochs"], throughput["train_seconds"], throughput["utterances_per_second"],
                run.folder.path)
    return throughput


def load_trained(stage: Stage, system: str, modules: Mapping[str, torch.nn.Module],
                 max_key: str | None = None, min_key: str | None = None) -> None:
    """Load a trained system's checkpoint (the best by `max_key`/`min_key`, else the newest)
    into `modules`, for a scoring stage; a missing training is one clear error."""
    folder = system_dir(stage.exp_dir, system)
    checkpointer = AtomicCheckpointer(folder.save, recoverables=dict(modules))
    if checkpointer.recover_if_possible(max_key=max_key, min_key=min_key) is None:
        raise InputError(f"no trained '{system}' checkpoint: run its training stage first", str(folder.save))
