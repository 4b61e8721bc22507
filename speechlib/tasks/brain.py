"""The Brain every recipe's trainer derives from: SpeechBrain's, plus two guarantees.

1. A strict NaN policy. SpeechBrain skips non-finite losses until a patience runs out and then
   raises without saying which data caused it. Here the first NaN/Inf loss stops training with
   the step and the utterance ids of the batch, so the user can look at exactly those files.
2. Kill-safe checkpoints. SpeechBrain writes a checkpoint's meta file first and its tensors
   after, so a job killed while saving leaves a directory that looks complete and fails to load
   on the re-run. AtomicCheckpointer writes the meta file last and ignores incomplete ones.
"""
from __future__ import annotations

import os
from pathlib import Path

import speechbrain as sb
import torch
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.distributed import ddp_barrier, if_main_process

from speechlib.io.errors import TrainingDiverged

PENDING_SUFFIX = ".pending"


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


class RecipeBrain(sb.Brain):
    """sb.Brain whose training batches carry an `id` field (our datasets always do).

    A plain SpeechBrain Checkpointer given in a config is upgraded to AtomicCheckpointer (same
    state, same files), so every recipe gets kill-safe checkpoints without naming the class.
    """

    def __init__(self, *args, checkpointer=None, **kwargs):
        if type(checkpointer) is Checkpointer:
            checkpointer.__class__ = AtomicCheckpointer
        super().__init__(*args, checkpointer=checkpointer, **kwargs)

    def fit_batch(self, batch):
        self._batch_ids = list(getattr(batch, "id", []) or [])
        return super().fit_batch(batch)

    def check_loss_isfinite(self, loss: torch.Tensor) -> None:
        if torch.isfinite(loss).all():
            return
        ids = getattr(self, "_batch_ids", [])
        shown = ", ".join(ids[:20]) + (f" ... ({len(ids)} in all)" if len(ids) > 20 else "")
        raise TrainingDiverged(f"non-finite training loss ({loss.detach().float().item()}) at step "
                               f"{self.step} of the epoch; batch utterances: {shown or 'unknown'}")
