"""The Brains of egs/se_uda, one per training recipe of the paper, all RecipeBrain subclasses.

- SupervisedBrain: source model and oracle target model (-SI-SDR on speech and noise).
- ClassifierBrain: domain classifier on a frozen encoder's bottleneck (BCE, target = 1).
- DANNBrain: enhancement on source + gradient-reversed domain loss on source and target.
- RemixITBrain: teacher estimates, permuted noise, student learns the remix; the teacher is
  updated as configured (replace every N epochs, EMA per step, EMA per epoch, frozen).
- SRSTBrain: RemixIT with a frozen teacher + lambda_k * supervised loss on the chosen source
  samples (Algorithm 1).
Every Brain: a learning rate with linear warm-up and cosine decay over the planned steps, a
validation pass each epoch (the supervised loss and SI-SDR on a fixed labelled set); RecipeBrain
logs the epoch (train_log.txt, loss_curve.json) and saves the checkpoint, whose meta holds the
validation loss (so the best one can be kept and restored with `min_key`). Paired training draws the second
domain's batch from an endless loader each step; the epoch is defined by the first domain's set.
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import speechbrain as sb
import torch

from speechlib.io.atomic import atomic_write_text
from speechlib.nn.layers import reverse_gradient
from speechlib.nn.losses import si_sdr, speech_noise_loss
from speechlib.tasks.brain import RecipeBrain
from speechlib.tasks.se_uda.common import endless
from speechlib.tasks.se_uda.data import make_loader, unwrap
from speechlib.tasks.se_uda.selftrain import (ema_update, mixture_consistency, remix, select_subset,
                                              source_share, source_weight)

TEACHER_UPDATES = ("replace", "ema_step", "ema_epoch", "frozen")


def cosine_lr(step: int, total: int, base: float, warmup: int, final_ratio: float) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay from `base` to `base * final_ratio`."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


class SEBrain(RecipeBrain):
    """Shared: LR schedule, new mixtures each epoch, validation, teacher-update hook.

    Dependencies (build_brain): `epoch_datasets` (the on-the-fly sets told the epoch),
    `total_steps` and `base_lr` (the schedule). Logs, curves and checkpoints: RecipeBrain.
    """

    needs: tuple[str, ...] = ("epoch_datasets", "total_steps", "base_lr")

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        if stage == sb.Stage.TRAIN:
            for dataset in self.epoch_datasets:
                dataset.set_epoch(epoch)

    def on_fit_batch_start(self, batch, should_step):
        hp = self.hparams
        lr = cosine_lr(self.optimizer_step, self.total_steps, self.base_lr, int(hp.lr_warmup_steps),
                       float(hp.lr_final_ratio))
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def add_parts(self, **values: torch.Tensor) -> None:
        for key, value in values.items():
            self.add_stat(key, float(value.detach()) if isinstance(value, torch.Tensor) else float(value))

    def mixture(self, batch) -> torch.Tensor:
        return batch.sig[0].to(self.device)

    def supervised_loss(self, batch) -> torch.Tensor:
        """-SI-SDR(speech) - SI-SDR(noise) of the student on a labelled batch (mean over rows)."""
        speech_est, noise_est = self.modules.unet(self.mixture(batch))
        return self.labelled_loss(speech_est, noise_est, batch)

    def labelled_loss(self, speech_est, noise_est, batch) -> torch.Tensor:
        return speech_noise_loss(speech_est, noise_est, batch.speech_sig[0].to(self.device),
                                 batch.noise_sig[0].to(self.device), self.hparams.loss_clamp,
                                 self.hparams.noise_weight).mean()

    def evaluate_batch(self, batch, stage):
        """Validation: the supervised loss, and speech SI-SDR against the mixture's."""
        with torch.no_grad():
            mixture, speech = self.mixture(batch), batch.speech_sig[0].to(self.device)
            speech_est, noise_est = self.modules.unet(mixture)
            loss = self.labelled_loss(speech_est, noise_est, batch)
            gain = si_sdr(speech_est, speech) - si_sdr(mixture, speech)
            self.add_parts(si_sdr=si_sdr(speech_est, speech).mean(), si_sdri=gain.mean())
        return loss.detach().cpu()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.add_stat("lr", self.optimizer.param_groups[0]["lr"])
            self.end_of_epoch(epoch)
        super().on_stage_end(stage, stage_loss, epoch)

    def end_of_epoch(self, epoch: int) -> None:
        """Hook for teacher updates, called before validation and the epoch's checkpoint."""


class PairedMixin:
    """Adds an endless loader over a second dataset, (re)made at each training epoch."""

    other_dataset = None

    def make_other_loader(self, dataset) -> None:
        self.other = endless(make_loader(dataset, int(self.hparams.batch_size)))

    def other_batch(self):
        batch = next(self.other)
        self._batch_ids = list(getattr(self, "_batch_ids", [])) + list(batch.id)
        return batch


class SupervisedBrain(SEBrain):
    def compute_forward(self, batch, stage):
        return self.modules.unet(self.mixture(batch))

    def compute_objectives(self, predictions, batch, stage):
        return self.labelled_loss(*predictions, batch)


def _domain_labels(n_source: int, n_target: int, device) -> torch.Tensor:
    return torch.cat([torch.zeros(n_source), torch.ones(n_target)]).to(device)


class ClassifierBrain(PairedMixin, SEBrain):
    """Primary: source mixtures (label 0); other: target mixtures (label 1). Encoder frozen.
    Validation is the classifier's BCE on the fixed source and target validation mixtures."""

    needs = SEBrain.needs + ("other_dataset", "valid_target")

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        if stage == sb.Stage.TRAIN:
            self.make_other_loader(self.other_dataset)
        else:
            self.valid_other = iter(endless(make_loader(self.valid_target, int(self.hparams.batch_size), False)))

    def logits(self, source_batch, target_batch):
        source, target = self.mixture(source_batch), self.mixture(target_batch)
        with torch.no_grad():
            features = unwrap(self.modules.unet).encode(torch.cat([source, target]))
        return self.modules.classifier(features), _domain_labels(len(source), len(target), self.device)

    def compute_forward(self, batch, stage):
        return self.logits(batch, self.other_batch())

    def compute_objectives(self, predictions, batch, stage):
        logits, labels = predictions
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        self.add_parts(accuracy=((logits > 0).float() == labels).float().mean())
        return loss

    def evaluate_batch(self, batch, stage):
        with torch.no_grad():
            return self.compute_objectives(self.logits(batch, next(self.valid_other)), batch, stage).cpu()


def dann_losses(unet, classifier, source: torch.Tensor, target: torch.Tensor, grl_scale: float):
    """One forward of source and target together (one DDP forward per step): the source
    estimates, and the domain logits computed through the gradient reversal layer."""
    speech_est, noise_est, bottleneck = unet(torch.cat([source, target]), return_bottleneck=True)
    logits = classifier(reverse_gradient(bottleneck, grl_scale))
    n = len(source)
    return speech_est[:n], noise_est[:n], logits, _domain_labels(n, len(target), source.device)


class DANNBrain(PairedMixin, SEBrain):
    """Eq. (6): -SI-SDR on source + beta * BCE on source and target, through gradient reversal.
    With `dann_classifier: frozen` the classifier keeps its pre-trained weights."""

    needs = SEBrain.needs + ("other_dataset",)

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        if stage == sb.Stage.TRAIN:
            self.make_other_loader(self.other_dataset)

    def compute_forward(self, batch, stage):
        return dann_losses(self.modules.unet, self.modules.classifier, self.mixture(batch),
                           self.mixture(self.other_batch()), float(self.hparams.grl_scale))

    def compute_objectives(self, predictions, batch, stage):
        speech_est, noise_est, logits, labels = predictions
        enhancement = self.labelled_loss(speech_est, noise_est, batch)
        domain = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        self.add_parts(enhancement=enhancement, domain_bce=domain,
                       domain_accuracy=((logits > 0).float() == labels).float().mean())
        return enhancement + self.hparams.dann_beta * domain


class RemixITBrain(SEBrain):
    """Student (self.modules.unet) learns the teacher's remixed estimates on target mixtures."""

    needs = SEBrain.needs + ("teacher", "teacher_update")

    def on_fit_start(self):
        super().on_fit_start()
        self.teacher.eval().requires_grad_(False)
        if self.teacher_update not in TEACHER_UPDATES:
            raise ValueError(f"teacher_update must be one of {', '.join(TEACHER_UPDATES)}, "
                             f"not '{self.teacher_update}'")

    def remixit_loss(self, batch) -> torch.Tensor:
        mixture = self.mixture(batch)
        with torch.no_grad():
            speech_t, noise_t = mixture_consistency(*self.teacher(mixture), mixture)
        perm = torch.randperm(len(mixture), device=self.device)
        remixed, speech_target, noise_target = remix(speech_t, noise_t, perm)
        speech_est, noise_est = self.modules.unet(remixed)
        return speech_noise_loss(speech_est, noise_est, speech_target, noise_target,
                                 self.hparams.loss_clamp, self.hparams.noise_weight).mean()

    def compute_forward(self, batch, stage):
        return None

    def compute_objectives(self, predictions, batch, stage):
        loss = self.remixit_loss(batch)
        self.add_parts(remixit=loss)
        return loss

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        if should_step and self.teacher_update == "ema_step":
            ema_update(self.teacher, unwrap(self.modules.unet), float(self.hparams.teacher_momentum))

    def end_of_epoch(self, epoch: int) -> None:
        every = int(self.hparams.teacher_update_every)
        if epoch % every:
            return
        if self.teacher_update == "ema_epoch":
            ema_update(self.teacher, unwrap(self.modules.unet), float(self.hparams.teacher_momentum))
        elif self.teacher_update == "replace":
            self.teacher.load_state_dict(copy.deepcopy(unwrap(self.modules.unet).state_dict()))


class SRSTBrain(PairedMixin, RemixITBrain):
    """L = L_RemixIT + lambda_k * L_source on the top share_k of a ranking of the source pool.
    Algorithm 1 keeps the teacher (the DANN model) fixed: teacher_update is "frozen"."""

    needs = SEBrain.needs + ("teacher", "other_dataset", "ranking")
    teacher_update = "frozen"

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        if stage != sb.Stage.TRAIN:
            return
        hp = self.hparams
        self.share = source_share(epoch, hp.srst_start_share, hp.srst_share_step)
        self.weight = source_weight(epoch, hp.srst_lambda, hp.srst_start_share, hp.srst_share_step)
        self.chosen = select_subset(self.ranking, self.share)
        if len(self.chosen):
            self.make_other_loader(torch.utils.data.Subset(self.other_dataset, [int(i) for i in self.chosen]))
        self.add_parts(source_share=self.share, source_lambda=self.weight, source_samples=len(self.chosen))

    def compute_objectives(self, predictions, batch, stage):
        loss = self.remixit_loss(batch)
        parts = {"remixit": loss}
        if len(self.chosen) and self.weight > 0:
            supervised = self.supervised_loss(self.other_batch())
            loss = loss + self.weight * supervised
            parts["source"] = supervised
        self.add_parts(**parts)
        return loss


def write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=1) + "\n")
