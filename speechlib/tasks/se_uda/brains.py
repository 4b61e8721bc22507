"""The Brains of egs/se_uda, one per training recipe of the paper, all RecipeBrain subclasses.

- SupervisedBrain: source model and oracle target model (-SI-SDR on speech and noise).
- ClassifierBrain: domain classifier on a frozen encoder's bottleneck (BCE, target = 1).
- DANNBrain: enhancement on source + gradient-reversed domain loss on source and target.
- RemixITBrain: teacher estimates, permuted noise, student learns the remix.
- SRSTBrain: RemixIT + lambda_k * supervised loss on the chosen source samples (Algorithm 1).
Paired training draws the second domain's batch from an endless loader each step; the epoch is
defined by the first domain's dataset.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch

from speechlib.io.atomic import atomic_write_text
from speechlib.nn.layers import reverse_gradient
from speechlib.nn.losses import speech_noise_loss
from speechlib.tasks.brain import RecipeBrain
from speechlib.tasks.se_uda.common import endless
from speechlib.tasks.se_uda.selftrain import (ema_update, remix, select_subset, source_share,
                                              source_weight)


class SEBrain(RecipeBrain):
    """Per-epoch logging (text + TensorBoard), loss parts, and an end-of-epoch checkpoint."""

    def on_stage_start(self, stage, epoch=None):
        self.parts: dict[str, float] = {}
        self.part_steps = 0

    def add_parts(self, **values: torch.Tensor) -> None:
        for key, value in values.items():
            self.parts[key] = self.parts.get(key, 0.0) + float(value.detach())
        self.part_steps += 1

    def stats(self, stage_loss: float) -> dict:
        steps = max(1, self.part_steps)
        return {"loss": stage_loss, **{k: v / steps for k, v in self.parts.items()}}

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage != sb.Stage.TRAIN:
            return
        stats = self.stats(stage_loss)
        meta = {"epoch": epoch, **self.epoch_meta()}
        self.hparams.train_logger.log_stats(meta, train_stats=stats)
        self.hparams.tensorboard_logger.log_stats(meta, train_stats=stats)
        self.end_of_epoch(epoch)
        self.checkpointer.save_and_keep_only(meta={"loss": stage_loss}, num_to_keep=1)

    def epoch_meta(self) -> dict:
        return {}

    def end_of_epoch(self, epoch: int) -> None:
        """Hook for teacher updates, called before the epoch's checkpoint."""

    def mixture(self, batch) -> torch.Tensor:
        return batch.sig[0].to(self.device)

    def other_batch(self):
        batch = next(self.other)
        self._batch_ids = list(getattr(self, "_batch_ids", [])) + list(batch.id)
        return batch


class PairedMixin:
    """Adds an endless loader over a second dataset, (re)made at each training epoch."""

    other_dataset = None

    def make_other_loader(self, dataset) -> None:
        opts = dict(self.hparams.train_dataloader_opts)
        loader = sb.dataio.dataloader.make_dataloader(dataset, **opts)
        self.other = endless(loader)


class SupervisedBrain(SEBrain):
    def compute_forward(self, batch, stage):
        return self.modules.unet(self.mixture(batch))

    def compute_objectives(self, predictions, batch, stage):
        speech_est, noise_est = predictions
        loss = speech_noise_loss(speech_est, noise_est, batch.speech_sig[0].to(self.device),
                                 batch.noise_sig[0].to(self.device), self.hparams.loss_clamp,
                                 self.hparams.noise_weight)
        return loss.mean()


def _domain_labels(n_source: int, n_target: int, device) -> torch.Tensor:
    return torch.cat([torch.zeros(n_source), torch.ones(n_target)]).to(device)


class ClassifierBrain(PairedMixin, SEBrain):
    """Primary: source mixtures (label 0); other: target mixtures (label 1). Encoder frozen."""

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        self.modules.unet.requires_grad_(False)
        if stage == sb.Stage.TRAIN:
            self.make_other_loader(self.other_dataset)

    def compute_forward(self, batch, stage):
        source, target = self.mixture(batch), self.mixture(self.other_batch())
        with torch.no_grad():
            features = self.modules.unet.encode(torch.cat([source, target]))
        return self.modules.classifier(features), _domain_labels(len(source), len(target), self.device)

    def compute_objectives(self, predictions, batch, stage):
        logits, labels = predictions
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        self.add_parts(accuracy=((logits > 0).float() == labels).float().mean())
        return loss


class DANNBrain(PairedMixin, SEBrain):
    """Eq. (6): -SI-SDR on source + beta * BCE on source and target, through gradient reversal."""

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        if stage == sb.Stage.TRAIN:
            self.make_other_loader(self.other_dataset)

    def compute_forward(self, batch, stage):
        source, target = self.mixture(batch), self.mixture(self.other_batch())
        speech_est, noise_est, bottleneck = self.modules.unet(source, return_bottleneck=True)
        features = torch.cat([bottleneck, self.modules.unet.encode(target)])
        logits = self.modules.classifier(reverse_gradient(features, self.hparams.grl_scale))
        return speech_est, noise_est, logits, _domain_labels(len(source), len(target), self.device)

    def compute_objectives(self, predictions, batch, stage):
        speech_est, noise_est, logits, labels = predictions
        enhancement = speech_noise_loss(speech_est, noise_est, batch.speech_sig[0].to(self.device),
                                        batch.noise_sig[0].to(self.device), self.hparams.loss_clamp,
                                        self.hparams.noise_weight).mean()
        domain = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        self.add_parts(enhancement=enhancement, domain_bce=domain,
                       domain_accuracy=((logits > 0).float() == labels).float().mean())
        return enhancement + self.hparams.dann_beta * domain


class RemixITBrain(SEBrain):
    """Student (self.modules.unet) learns the teacher's remixed estimates on target mixtures."""

    teacher: torch.nn.Module

    def on_fit_start(self):
        super().on_fit_start()
        self.teacher.to(self.device).eval().requires_grad_(False)

    def remixit_loss(self, batch) -> torch.Tensor:
        mixture = self.mixture(batch)
        with torch.no_grad():
            speech_t, noise_t = self.teacher(mixture)
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

    def end_of_epoch(self, epoch: int) -> None:
        mode, every = self.hparams.teacher_update, int(self.hparams.teacher_update_every)
        if mode == "none" or epoch % every:
            return
        if mode == "ema":
            ema_update(self.teacher, self.modules.unet, float(self.hparams.teacher_momentum))
        elif mode == "replace":
            self.teacher.load_state_dict(copy.deepcopy(self.modules.unet.state_dict()))
        else:
            raise ValueError(f"teacher_update must be none, ema or replace, not '{mode}'")


class SRSTBrain(PairedMixin, RemixITBrain):
    """L = L_RemixIT + lambda_k * L_source on the top share_k of a ranking of the source set."""

    ranking: np.ndarray
    source_ids: list[str]

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        if stage != sb.Stage.TRAIN:
            return
        hp = self.hparams
        self.share = source_share(epoch, hp.srst_start_share, hp.srst_share_step)
        self.weight = source_weight(epoch, hp.srst_lambda, hp.srst_start_share, hp.srst_share_step)
        chosen = {self.source_ids[i] for i in select_subset(self.ranking, self.share)}
        self.chosen = chosen
        if chosen:
            subset = self.other_dataset.filtered_sorted(key_test={"id": lambda utt: utt in chosen})
            self.make_other_loader(subset)

    def epoch_meta(self) -> dict:
        return {"source_share": self.share, "lambda": self.weight, "source_samples": len(self.chosen)}

    def compute_objectives(self, predictions, batch, stage):
        loss = self.remixit_loss(batch)
        parts = {"remixit": loss}
        if self.chosen and self.weight > 0:
            source = self.other_batch()
            speech_est, noise_est = self.modules.unet(self.mixture(source))
            supervised = speech_noise_loss(speech_est, noise_est, source.speech_sig[0].to(self.device),
                                           source.noise_sig[0].to(self.device), self.hparams.loss_clamp,
                                           self.hparams.noise_weight).mean()
            loss = loss + self.weight * supervised
            parts["source"] = supervised
        self.add_parts(**parts)
        return loss


def write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=1) + "\n")
