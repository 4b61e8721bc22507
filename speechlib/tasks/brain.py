"""The Brain every recipe's trainer derives from: SpeechBrain's, plus what every recipe needs.

1. A strict NaN policy. SpeechBrain skips non-finite losses until a patience runs out and then
   raises without saying which data caused it. Here the first NaN/Inf loss stops training with
   the step and the utterance ids of the batch, so the user can look at exactly those files.
2. Kill-safe checkpoints. SpeechBrain writes a checkpoint's meta file first and its tensors
   after, so a job killed while saving leaves a directory that looks complete and fails to load
   on the re-run. AtomicCheckpointer writes the meta file last and ignores incomplete ones.
3. Dependencies as constructor arguments. What a Brain uses besides its trained `modules` (a
   frozen speaker model, a teacher, a second dataset) is declared in `needs` and given to the
   constructor by name; a missing or unexpected one fails at construction, not mid-epoch.
4. One epoch bookkeeping. Per-epoch statistics are the loss plus whatever the Brain adds with
   `add_stat`; at the end of each epoch they go to the loggers of the system's `TrainingRun`
   (train_log.txt, TensorBoard, loss_curve.json/.png; see speechlib.tasks.training) and the
   checkpoint is saved. While an epoch runs, a progress line (epoch x/y, batches, loss, ETA)
   is logged every 20 s instead of a tqdm bar full of carriage returns (tqdm on a terminal).
"""
from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import speechbrain as sb
import torch
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.distributed import ddp_barrier, if_main_process

from speechlib.io.errors import TrainingDiverged
from speechlib.io.progress import Progress

PENDING_SUFFIX = ".pending"
PROGRESS_INTERVAL_S = 20.0  # a line at least this often while training (the README promises <= 30 s)
logger = logging.getLogger("progress")


class _LogStream:
    """A text stream whose lines become INFO records of the "progress" logger (timestamped; the
    recipes' shell shows them on the terminal while the stage runs)."""

    def write(self, text: str) -> int:
        if text.strip():
            logger.info(text.strip())
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class EpochProgress(Progress):
    """Batches done of the epoch, with the running training loss."""

    def __init__(self, desc: str, total: int | None, done: int) -> None:
        super().__init__(total or 0, desc, unit="batch", interval=PROGRESS_INTERVAL_S, stream=_LogStream(),
                         enabled=if_main_process())
        self.done = done
        self.loss = float("nan")

    def line(self, now: float | None = None) -> str:
        return f"{super().line(now)}, loss {self.loss:.4g}"


class AtomicCheckpointer(Checkpointer):
    """A Checkpointer whose checkpoints become visible only once every file is written.

    A checkpoint directory counts as one when its meta file (CKPT.yaml) exists; writing that file
    last, by rename, makes saving atomic. Checkpoints lacking a recoverable's file (an old save
    cut short, or one half deleted) are skipped rather than loaded.
    """

    def _save_checkpoint_metafile(self, fpath, meta_to_include={}, end_of_epoch=True):  # noqa: B006 (SB's signature)
        pending = Path(str(fpath) + PENDING_SUFFIX)
        self._pending_metafile = (pending, Path(fpath))
        return super()._save_checkpoint_metafile(pending, meta_to_include, end_of_epoch)

    def save_checkpoint(self, *args, **kwargs):
        checkpoint = super().save_checkpoint(*args, **kwargs)
        if if_main_process():
            pending, final = self._pending_metafile
            os.replace(pending, final)
        # Every rank must see the finished checkpoint before any of them lists checkpoints:
        # SpeechBrain's deletions are collective calls, one per checkpoint listed.
        ddp_barrier()
        return checkpoint

    def list_checkpoints(self):
        return [ckpt for ckpt in super().list_checkpoints()
                if all(name in ckpt.paramfiles for name in self.recoverables)]


def _overridden(run_opts) -> set[str]:
    if run_opts is None:
        return set()
    if isinstance(run_opts, dict):
        return set(run_opts)
    return set(getattr(run_opts, "overridden_args", set()))


class RecipeBrain(sb.Brain):
    """sb.Brain whose training batches carry an `id` field (our datasets always do).

    Subclasses write compute_forward/compute_objectives, call `self.add_stat(name, value, n)`
    for statistics beyond the loss, and list their dependencies in `needs`. `keep_best` picks
    the checkpoint kept besides the newest (e.g. `{"max_keys": ["accuracy"]}`). A plain
    SpeechBrain Checkpointer is upgraded to AtomicCheckpointer (same state, same files).
    """

    needs: tuple[str, ...] = ()
    keep_best: dict = {}

    def __init__(self, modules=None, opt_class=None, hparams=None, run_opts=None, checkpointer=None,
                 *, run=None, **dependencies):
        missing = sorted(set(self.needs) - set(dependencies))
        unexpected = sorted(set(dependencies) - set(self.needs))
        if missing or unexpected:
            raise TypeError(f"{type(self).__name__}: missing dependencies {missing}, unexpected {unexpected} "
                            f"(declared: {list(self.needs)})")
        if type(checkpointer) is Checkpointer:
            checkpointer.__class__ = AtomicCheckpointer
        super().__init__(modules=modules, opt_class=opt_class, hparams=hparams, run_opts=run_opts,
                         checkpointer=checkpointer)
        for name, value in dependencies.items():
            setattr(self, name, value.to(self.device) if isinstance(value, torch.nn.Module) else value)
        self.run = run
        if "noprogressbar" not in _overridden(run_opts):
            # tqdm only where a person watches a terminal; log files get Progress lines
            self.noprogressbar = not sys.stderr.isatty()
        self._has_valid, self._epochs, self._train_batches = False, None, None
        self._stat_sums: dict[str, list[float]] = {}
        self._progress: EpochProgress | None = None
        self._utterances, self._stage_started = 0, time.monotonic()
        self.train_stats: dict[str, float] = {}
        self.test_stats: dict[str, float] = {}

    # statistics -------------------------------------------------------------------------------
    def add_stat(self, name: str, value: float, count: float = 1.0) -> None:
        """Accumulate a per-epoch statistic; the epoch reports its `count`-weighted mean."""
        total = self._stat_sums.setdefault(name, [0.0, 0.0])
        total[0] += float(value) * count
        total[1] += count

    def stage_stats(self, stage_loss: float) -> dict[str, float]:
        stats = {"loss": float(stage_loss)}
        stats.update({name: total / max(count, 1e-12) for name, (total, count) in self._stat_sums.items()})
        return stats

    # SpeechBrain hooks --------------------------------------------------------------------------
    def fit(self, epoch_counter, train_set, valid_set=None, progressbar=None, train_loader_kwargs={},  # noqa: B006
            valid_loader_kwargs={}):  # noqa: B006 (SB's signature)
        self._has_valid = valid_set is not None
        self._epochs = getattr(epoch_counter, "limit", None)
        return super().fit(epoch_counter, train_set, valid_set, progressbar, train_loader_kwargs,
                           valid_loader_kwargs)

    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-", **loader_kwargs):
        loader = super().make_dataloader(dataset, stage, ckpt_prefix, **loader_kwargs)
        if stage == sb.Stage.TRAIN:
            try:
                self._train_batches = len(loader)
            except TypeError:  # an iterable dataset has no length
                self._train_batches = None
        return loader

    def on_stage_start(self, stage, epoch=None):
        self._stat_sums = {}
        self._stage_started = time.monotonic()
        self._utterances = 0
        if stage == sb.Stage.TRAIN and self.noprogressbar:  # else SpeechBrain's tqdm bar shows it
            label = self.run.system if self.run is not None else type(self).__name__
            epochs = f"/{self._epochs}" if self._epochs else ""
            self._progress = EpochProgress(f"train {label} epoch {epoch}{epochs}", self._train_batches, self.step)

    def fit_batch(self, batch):
        self._batch_ids = list(getattr(batch, "id", []) or [])
        loss = super().fit_batch(batch)
        self._utterances += len(self._batch_ids)
        if self._progress is not None:
            steps = max(self.step, 1)
            self._progress.loss = (self.avg_train_loss * (steps - 1) + float(loss)) / steps
            self._progress.update()
        return loss

    def on_stage_end(self, stage, stage_loss, epoch=None):
        stats = self.stage_stats(stage_loss)
        if stage == sb.Stage.TRAIN:
            seconds = time.monotonic() - self._stage_started
            stats["epoch_seconds"] = seconds
            if self._utterances:
                stats["utterances_per_second"] = self._utterances / max(seconds, 1e-9)
            self.train_stats = stats
            self._progress = None
            if not self._has_valid:
                # The epoch's running loss is spent: SpeechBrain zeroes it only after this hook,
                # so the end-of-epoch checkpoint would carry it into a resumed next epoch's mean.
                self.step, self.avg_train_loss = 0, 0.0
                self.end_epoch(epoch, stats, None)
        elif stage == sb.Stage.VALID:
            self.end_epoch(epoch, self.train_stats, stats)
        else:
            self.test_stats = stats

    def end_epoch(self, epoch: int, train_stats: dict, valid_stats: dict | None) -> None:
        """Log the epoch (train_log.txt, TensorBoard, loss curve) and save the checkpoint."""
        if self.run is not None:
            self.run.log_epoch(epoch, train_stats, valid_stats)
        if self.checkpointer is not None:
            meta = {key: value for key, value in (valid_stats or train_stats).items()}
            self.checkpointer.save_and_keep_only(meta=meta, num_to_keep=1, **self.keep_best)

    def check_loss_isfinite(self, loss: torch.Tensor) -> None:
        if torch.isfinite(loss).all():
            return
        ids = getattr(self, "_batch_ids", [])
        shown = ", ".join(ids[:20]) + (f" ... ({len(ids)} in all)" if len(ids) > 20 else "")
        raise TrainingDiverged(f"non-finite training loss ({loss.detach().float().item()}) at step "
                               f"{self.step} of the epoch; batch utterances: {shown or 'unknown'}")
