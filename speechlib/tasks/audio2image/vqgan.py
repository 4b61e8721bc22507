"""Stage 5a of egs/audio2image: the VQGAN that generation decodes through.

    python -m speechlib.tasks.audio2image.vqgan conf/mini_audio2image.yaml --output_folder exp/x

Real: `vqgan_checkpoint` names a taming-transformers checkpoint, loaded with strict=True.
Mini: a small VQGAN (taming's layout) trained here on the training pictures: L1 reconstruction
+ codebook/commitment losses, and from `disc_start_epoch` on, the patch discriminator's hinge
loss (generator weight `disc_weight`). No LPIPS term: its VGG weights cannot be downloaded here.
Trains as exp/<tag>/vqgan/ (a killed training resumes) and exports exp/<tag>/vqgan/model; then
writes exp/<tag>/model, the model generate and retrieve load (tower, VQGAN, audio towers).
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from speechlib.io.errors import exit_on_input_error
from speechlib.nn.vqgan import hinge_d_loss, load_taming_vqgan
from speechlib.tasks.audio2image.common import (MANIFEST, SYSTEMS, audio_dir, build, export, load, load_module,
                                                pairs_dataset, tower_dir, user_dir, vqgan_dir)
from speechlib.tasks.brain import RecipeBrain
from speechlib.tasks.stage import start_stage
from speechlib.tasks.training import build_brain, fit, optimizer_from_config

log = logging.getLogger("audio2image.vqgan")


class VQGANBrain(RecipeBrain):
    """Two optimisers (autoencoder, discriminator), alternating each batch as taming does; the
    validation loss is the L1 reconstruction error (the best checkpoint is kept)."""

    keep_best = {"min_keys": ["loss"]}

    def init_optimizers(self):
        vq = self.modules.vq
        disc = list(vq.loss.discriminator.parameters())
        ids = {id(p) for p in disc}
        self.opt_g = torch.optim.Adam([p for p in vq.parameters() if id(p) not in ids], lr=self.hparams.lr,
                                      betas=(0.5, 0.9))
        self.opt_d = torch.optim.Adam(disc, lr=self.hparams.lr, betas=(0.5, 0.9))
        self.optimizers_dict = {"opt_g": self.opt_g, "opt_d": self.opt_d}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("opt_g", self.opt_g)
            self.checkpointer.add_recoverable("opt_d", self.opt_d)

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        if epoch is not None:
            self.epoch = epoch

    def fit_batch(self, batch):
        self._batch_ids = list(batch.id)
        images = batch.image.data.to(self.device)
        vq = self.modules.vq
        recon, codebook = vq(images)
        adversarial = getattr(self, "epoch", 0) > self.hparams.disc_start_epoch
        loss = F.l1_loss(recon, images) + codebook
        if adversarial:
            loss = loss - self.hparams.disc_weight * vq.loss.discriminator(recon).mean()
        self.check_loss_isfinite(loss)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        if adversarial:
            d_loss = hinge_d_loss(vq.loss.discriminator(images), vq.loss.discriminator(recon.detach()))
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
        self._utterances += len(self._batch_ids)   # RecipeBrain's bookkeeping (its fit_batch is bypassed)
        if self._progress is not None:
            self._progress.loss = float(loss)
            self._progress.update()
        return loss.detach()

    def evaluate_batch(self, batch, stage):
        images = batch.image.data.to(self.device)
        recon, _ = self.modules.vq(images)
        return F.l1_loss(recon, images).detach()


def export_user_model(stage, vq: torch.nn.Module) -> None:
    """exp/<tag>/model: the frozen tower, the VQGAN and each system's audio tower of the `seed`
    seed, the one directory generate and retrieve load."""
    seed = int(stage.hparams["seed"])
    modules = {"image_tower": ("image_tower", load_module(load(tower_dir(stage.exp_dir), "image_text"), "image_tower")),
               "vqgan": ("vqgan", vq)}
    for system in SYSTEMS:
        encoder = load(audio_dir(stage.exp_dir, system, seed), "audio_encoder")
        modules[f"audio_{system}"] = (system, load_module(encoder, "audio"))
    export(stage, user_dir(stage.exp_dir), "audio2image", "+".join(SYSTEMS), modules)


def main() -> None:
    stage = start_stage("vqgan", options=())
    hp = stage.hparams
    target = vqgan_dir(stage.exp_dir)
    if stage.is_done((target / MANIFEST, user_dir(stage.exp_dir) / MANIFEST)):
        log.info("%s is up to date", target)
        return
    vq = build("vqgan", hp["vqgan"])
    if hp["vqgan_checkpoint"]:
        load_taming_vqgan(vq, hp["vqgan_checkpoint"])
        log.info("loaded %s", hp["vqgan_checkpoint"])
    else:
        data = hp["data_folder"]
        train = pairs_dataset(f"{data}/train", hp, train=True, audio=False, unique_pictures=True)
        valid = pairs_dataset(f"{data}/valid", hp, train=False, audio=False, unique_pictures=True)
        brain = build_brain(VQGANBrain, stage, "vqgan", {"vq": vq}, epochs=hp["epochs_vqgan"],
                            optimizer=optimizer_from_config({"name": "Adam", "lr": hp["lr_vqgan"]}),
                            hparams={"lr": hp["lr_vqgan"], "disc_start_epoch": hp["disc_start_epoch"],
                                     "disc_weight": hp["disc_weight"]})
        fit(brain, train, valid, train_loader_kwargs={"batch_size": hp["batch_size"], "shuffle": True},
            valid_loader_kwargs={"batch_size": hp["batch_size"]})
        brain.checkpointer.recover_if_possible(min_key="loss")
    vq.eval()
    export(stage, target, "vqgan", "vqgan", {"vqgan": ("vqgan", vq)})
    export_user_model(stage, vq)
    stage.mark_done()
    log.info("VQGAN in %s; the model for generate/retrieve in %s", target, user_dir(stage.exp_dir))


if __name__ == "__main__":
    exit_on_input_error("audio2image.vqgan", main)
