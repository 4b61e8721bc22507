"""Stage 2 of egs/voice_privacy: joint training of the perturbation generator and the removal
module against the frozen white-box speaker model (Fig. 3 and eqs. (1)-(9) of the paper).

    python -m speechlib.tasks.voice_privacy.train conf/x.yaml --output_folder exp/x

x' = x + eps * n * m (generator F_P on x); x_hat = x' + eps * n' * m' (remover F_R on x').
Loss: (1 - theta) L_SSED + theta L_rpt, Adam. With `generator_epochs` N set (two-phase training,
not in the paper; README, "Two-phase training"), the first N of the `number_of_epochs` train the
generator alone on L_SSED (eq. (4); the remover is run without gradient, for the statistics),
the rest the remover alone on L_rpt (eq. (8)) with the generator frozen, its n and m the targets.
One Adam serves both phases: a module the phase's loss does not reach has no gradient, so Adam
leaves it (and its state) alone. The system "joint" of the training kit
(speechlib.tasks.training): exp/<tag>/joint/ holds its checkpoints, train_log.txt, tensorboard/,
loss_curve.json/png (every loss term per epoch) and throughput.json. Re-running after a kill
resumes from the last checkpoint; a changed config retrains. The trained pair is exported to
exp/<tag>/model/{protect,restore}/ (speechlib.tasks.voice_privacy.model_io). `--ngpu N` in
run.sh trains with DDP.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch
from speechbrain.utils.distributed import if_main_process

from speechlib.data.dataset import load_datadir_dataset
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.nn.speaker import freeze, load_pretrained, random_crops
from speechlib.nn.ssed import SSED
from speechlib.signal.mixing import snr_db
from speechlib.tasks.brain import RecipeBrain
from speechlib.tasks.stage import start_stage
from speechlib.tasks.training import build_brain, fit, system_dir
from speechlib.tasks.voice_privacy.losses import LossWeights, joint_losses, weighted_terms
from speechlib.tasks.voice_privacy.model_io import save_models, ssed_kwargs

SYSTEM = "joint"
LOG_EVERY = 8  # steps between the within-epoch log lines (train.log)
logger = logging.getLogger("voice_privacy.train")


def gradient_norms(parts: dict[str, torch.Tensor], parameters: list[torch.Tensor]) -> dict[str, float]:
    """The L2 norm of each loss part's gradient on `parameters` (all of them as one vector);
    the graph is kept for the training step's own backward pass."""
    norms = {}
    for name, value in parts.items():
        grads = torch.autograd.grad(value, parameters, retain_graph=True, allow_unused=True)
        norms[name] = float(torch.sqrt(sum((g.detach() ** 2).sum() for g in grads if g is not None)))
    return norms


class JointBrain(RecipeBrain):
    """modules: generator, remover (trained). Dependencies: `speaker` (the frozen white-box
    encoder), `weights` (the loss weights), `crop_samples`, `generator_epochs` (None: joint
    training; N: two-phase, see the module's docstring). Crops are drawn from torch's global
    random state, which the kit checkpoints; every loss term is an epoch statistic, in both
    phases (the objective of the epoch's phase is its loss)."""

    needs = ("speaker", "weights", "crop_samples", "generator_epochs")
    phase = "joint"  # or "generator", "remover" (two-phase training), set at each epoch's start

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        if self.generator_epochs is not None and epoch is not None:
            self.phase = "generator" if epoch <= self.generator_epochs else "remover"
        for parameter in self.modules.generator.parameters():
            parameter.requires_grad_(self.phase != "remover")
        for parameter in self.modules.remover.parameters():
            parameter.requires_grad_(self.phase != "generator")

    def compute_forward(self, batch, stage):
        wavs, lens = batch.sig
        x = random_crops(wavs, lens, self.crop_samples, torch.default_generator).to(self.device)
        generator_learns = torch.is_grad_enabled() and self.phase != "remover"
        # The order of the calls is the joint training's of before two-phase training existed:
        # it fixes the order in which backward sums the gradients reaching adv, and with it the
        # committed runs' numbers to the last bit.
        with torch.set_grad_enabled(generator_learns):
            adv = self.modules.generator(x)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.phase != "generator"):
            rst = self.modules.remover(adv.wav)
        with torch.no_grad():
            z = self.speaker(x)
        with torch.set_grad_enabled(generator_learns):
            z_adv = self.speaker(adv.wav)
        return x, adv, rst, z, z_adv

    def compute_objectives(self, predictions, batch, stage):
        x, adv, rst, z, z_adv = predictions
        terms = joint_losses(x, adv.wav, z, z_adv, adv.noise, adv.mask, rst.noise, rst.mask, self.weights)
        for name, value in terms.items():
            if name != "total":  # the total is the epoch's loss
                self.add_stat(name, float(value.detach()), len(x))
        if self.phase != "joint":
            objective = terms["ssed"] if self.phase == "generator" else terms["rpt"]
            if self.step % LOG_EVERY == 1:
                snr = float(snr_db(x.detach().cpu().numpy(), (adv.wav - x).detach().cpu().numpy()).mean())
                rst_snr = float(snr_db(x.detach().cpu().numpy(), (rst.wav - x).detach().cpu().numpy()).mean())
                logger.info("train (%s phase): step %d: angular %.4f, quality %.3f, rpt %.3f, perturbation SNR "
                            "%.1f dB, restored SNR %.1f dB", self.phase, self.step, float(terms["angular"].detach()),
                            float(terms["quality"].detach()), float(terms["rpt"].detach()), snr, rst_snr)
            return objective
        if self.step % LOG_EVERY == 1 and terms["total"].requires_grad:
            # the within-epoch learning curve, and how hard each weighted part of eq. (9) pulls on
            # the generator (README, "What the mini run shows")
            pull = gradient_norms(weighted_terms(terms, self.weights), list(self.modules.generator.parameters()))
            snr = float(snr_db(x.detach().cpu().numpy(), (adv.wav - x).detach().cpu().numpy()).mean())
            logger.info("train: step %d: angular %.4f, quality %.3f, rpt %.3f, perturbation SNR %.1f dB; "
                        "|gradient| on the generator: angular %.3g, quality %.3g, rpt %.3g", self.step,
                        float(terms["angular"]), float(terms["quality"]), float(terms["rpt"]), snr,
                        pull["angular"], pull["quality"], pull["rpt"])
        return terms["total"]


def main() -> None:
    stage = start_stage("train", options=())
    hp = stage.hparams
    model_dir = stage.exp_dir / "model"
    if stage.is_done((model_dir / "protect" / "model.json", model_dir / "restore" / "model.json")):
        logger.info("train: %s is up to date", model_dir)
        return
    kwargs = ssed_kwargs(hp)
    generator, remover = SSED(**kwargs), SSED(**kwargs)
    speaker_dir = system_dir(stage.exp_dir, "speaker_white").path
    generator_epochs = hp["generator_epochs"]
    if generator_epochs is not None and not 1 <= int(generator_epochs) < int(hp["number_of_epochs"]):
        raise InputError(f"generator_epochs must be null (joint training) or 1 .. number_of_epochs - 1 "
                         f"({int(hp['number_of_epochs']) - 1}): got {generator_epochs}", "generator_epochs")
    train = load_datadir_dataset(Path(hp["data_folder"]) / "train", hp["sample_rate"])
    brain = build_brain(JointBrain, stage, SYSTEM, {"generator": generator, "remover": remover},
                        optimizer=functools.partial(torch.optim.Adam, lr=hp["lr"]), epochs=hp["number_of_epochs"],
                        speaker=freeze(load_pretrained(speaker_dir)),
                        weights=LossWeights(hp["alpha"], hp["beta"], hp["gamma"], hp["theta"],
                                            hp["loss_norm_samples"]),
                        crop_samples=int(hp["crop_seconds"] * hp["sample_rate"]),
                        generator_epochs=None if generator_epochs is None else int(generator_epochs))
    logger.info("train: generator+remover, %d parameters each, %d utterances, %d epochs%s",
                sum(p.numel() for p in generator.parameters()), len(train), hp["number_of_epochs"],
                "" if generator_epochs is None else f" (two-phase: the generator alone for {generator_epochs}, "
                "then the remover alone)")
    fit(brain, train, None, train_loader_kwargs={"batch_size": hp["batch_size"], "shuffle": True,
                                                 "num_workers": hp["num_workers"]})
    if if_main_process():
        save_models(model_dir, kwargs, generator.cpu(), remover.cpu(), speaker_dir, hp["sample_rate"], hp["corpus"])
    stage.mark_done()
    logger.info("train: wrote %s", model_dir)


if __name__ == "__main__":
    exit_on_input_error("voice_privacy.train", main)
