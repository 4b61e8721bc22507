"""The Brain every recipe's trainer derives from: SpeechBrain's, plus a strict NaN policy.

SpeechBrain skips non-finite losses until a patience runs out and then raises without saying
which data caused it. Here the first NaN/Inf loss stops training with the epoch, the step and
the utterance ids of the batch, so the user can look at exactly those files.
"""
from __future__ import annotations

import speechbrain as sb
import torch

from speechlib.io.errors import TrainingDiverged


class RecipeBrain(sb.Brain):
    """sb.Brain whose training batches carry an `id` field (our datasets always do)."""

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
