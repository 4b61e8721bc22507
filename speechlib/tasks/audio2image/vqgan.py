"""Stage 5a of egs/audio2image: the VQGAN that generation decodes through.

    python -m speechlib.tasks.audio2image.vqgan conf/mini_audio2image.yaml --output_folder exp/x

Real: `vqgan_checkpoint` names a taming-transformers checkpoint, loaded with strict=True.
Mini: a small VQGAN (taming's layout) trained here on the training pictures: L1 reconstruction
+ codebook/commitment losses, and from `disc_start_epoch` on, the patch discriminator's hinge
loss (generator weight `disc_weight`). No LPIPS term: its VGG weights cannot be downloaded here.
Writes model/vqgan.pt; a killed training resumes.
"""
from __future__ import annotations

import speechbrain as sb
import torch
import torch.nn.functional as F

from speechlib.io.errors import exit_on_input_error
from speechlib.nn.vqgan import hinge_d_loss, load_taming_vqgan
from speechlib.tasks.audio2image.common import install_config, model_dir, pairs_dataset, save_weights
from speechlib.tasks.brain import RecipeBrain
from speechlib.tasks.stage import announce_resume, start_stage


class VQGANBrain(RecipeBrain):
    """Two optimisers (autoencoder, discriminator), alternating each batch as taming does."""

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
        return loss.detach()

    def evaluate_batch(self, batch, stage):
        images = batch.image.data.to(self.device)
        recon, _ = self.modules.vq(images)
        return F.l1_loss(recon, images).detach()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
        elif stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats({"epoch": epoch}, train_stats={"loss": self.train_loss},
                                                valid_stats={"l1": stage_loss})
            self.checkpointer.save_and_keep_only(meta={"l1": stage_loss}, min_keys=["l1"], num_to_keep=1)


def main() -> None:
    from speechbrain.utils.checkpoints import Checkpointer
    from speechbrain.utils.epoch_loop import EpochCounter
    from speechbrain.utils.train_logger import FileTrainLogger

    stage = start_stage("vqgan", options=())
    hp = stage.hparams
    target = model_dir(stage.exp_dir) / "vqgan.pt"
    if stage.is_done((target,)):
        print(f"vqgan: {target} is up to date")
        return
    vq = hp["vqgan"]
    if hp["vqgan_checkpoint"]:
        load_taming_vqgan(vq, hp["vqgan_checkpoint"])
        print(f"vqgan: loaded {hp['vqgan_checkpoint']}")
    else:
        data, save = hp["data_folder"], stage.exp_dir / "save" / f"vqgan-{stage.fingerprint}"
        train = pairs_dataset(f"{data}/train", hp, train=True, audio=False, unique_pictures=True)
        valid = pairs_dataset(f"{data}/valid", hp, train=False, audio=False, unique_pictures=True)
        counter = EpochCounter(hp["epochs_vqgan"])
        checkpointer = Checkpointer(save, recoverables={"vq": vq, "counter": counter})
        hparams = {"lr": hp["lr_vqgan"], "disc_start_epoch": hp["disc_start_epoch"],
                   "disc_weight": hp["disc_weight"], "train_logger": FileTrainLogger(str(save / "train_log.txt"))}
        brain = VQGANBrain(modules={"vq": vq}, hparams=hparams, run_opts=stage.run_opts, checkpointer=checkpointer)
        announce_resume(checkpointer)
        brain.fit(counter, train, valid, train_loader_kwargs={"batch_size": hp["batch_size"], "shuffle": True},
                  valid_loader_kwargs={"batch_size": hp["batch_size"]})
        checkpointer.recover_if_possible(min_key="l1")
    save_weights(vq, target)
    install_config(stage)
    stage.mark_done()
    print(f"vqgan: {target}")


if __name__ == "__main__":
    exit_on_input_error("audio2image.vqgan", main)
