"""Stage 2 of egs/voice_privacy: joint training of the perturbation generator and the removal
module against the frozen white-box speaker model (Fig. 3 and eqs. (1)-(9) of the paper).

    python -m speechlib.tasks.voice_privacy.train conf/x.yaml --output_folder exp/x

x' = x + eps * n * m (generator F_P on x); x_hat = x' + eps * n' * m' (remover F_R on x').
Loss: (1 - theta) L_SSED + theta L_rpt, Adam. Re-running after a kill resumes from the last
checkpoint; the trained pair is written to exp/<tag>/model/.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import speechbrain as sb
import torch

from speechlib.data.dataset import load_datadir_dataset
from speechlib.io.atomic import atomic_write_text
from speechlib.io.errors import exit_on_input_error
from speechlib.nn.speaker import freeze, load_pretrained, random_crops
from speechlib.nn.ssed import SSED
from speechlib.tasks.brain import RecipeBrain
from speechlib.tasks.stage import announce_resume, start_stage
from speechlib.tasks.voice_privacy.losses import LossWeights, joint_losses
from speechlib.tasks.voice_privacy.model_io import save_models, ssed_kwargs

logger = logging.getLogger("voice_privacy.train")


class JointBrain(RecipeBrain):
    """modules: generator, remover (trained); self.speaker: the frozen white-box encoder."""

    def compute_forward(self, batch, stage):
        wavs, lens = batch.sig
        x = random_crops(wavs, lens, self.hparams.crop_samples, self.crop_generator).to(self.device)
        adv = self.modules.generator(x)
        rst = self.modules.remover(adv.wav)
        with torch.no_grad():
            z = self.speaker(x)
        z_adv = self.speaker(adv.wav)
        return x, adv, rst, z, z_adv

    def compute_objectives(self, predictions, batch, stage):
        x, adv, rst, z, z_adv = predictions
        terms = joint_losses(x, adv.wav, z, z_adv, adv.noise, adv.mask, rst.noise, rst.mask, self.weights)
        for name, value in terms.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value.detach())
        self.count += 1
        self.samples += x.numel()
        return terms["total"]

    def on_stage_start(self, stage, epoch=None):
        self.sums, self.count, self.samples, self.started = {}, 0, 0, time.time()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage != sb.Stage.TRAIN:
            return
        stats = {name: total / max(1, self.count) for name, total in self.sums.items()}
        elapsed = time.time() - self.started
        stats["audio_seconds_per_second"] = self.samples / self.hparams.sample_rate / max(elapsed, 1e-9)
        self.hparams.train_logger.log_stats({"epoch": epoch}, train_stats=stats)
        self.tensorboard.log_stats({"epoch": epoch}, train_stats=stats)
        logger.info(f"epoch {epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in stats.items()))
        self.record(epoch, stats)
        self.checkpointer.save_and_keep_only(num_to_keep=1)

    def record(self, epoch: int, stats: dict) -> None:
        path = Path(self.hparams.output_folder) / "joint_loss_curve.json"
        curve = [row for row in json.loads(path.read_text()) if row["epoch"] < epoch] if path.is_file() else []
        curve.append({"epoch": epoch, **stats})
        atomic_write_text(path, json.dumps(curve, indent=1) + "\n")


def main() -> None:
    stage = start_stage("train", options=())
    hp = stage.hparams
    model_dir = stage.exp_dir / "model"
    if stage.is_done((model_dir / "protect" / "model.json", model_dir / "restore" / "model.json")):
        logger.info(f"train: {model_dir} is up to date")
        return
    kwargs = ssed_kwargs(hp)
    generator, remover = SSED(**kwargs), SSED(**kwargs)
    speaker = freeze(load_pretrained(stage.exp_dir / "speaker_white"))
    train = load_datadir_dataset(Path(hp["data_folder"]) / "train", hp["sample_rate"])
    epoch_counter = sb.utils.epoch_loop.EpochCounter(hp["number_of_epochs"])
    checkpointer = sb.utils.checkpoints.Checkpointer(
        stage.exp_dir / "save" / "joint",
        recoverables={"generator": generator, "remover": remover, "counter": epoch_counter})
    hp["crop_samples"] = int(hp["crop_seconds"] * hp["sample_rate"])
    hp["train_logger"] = sb.utils.train_logger.FileTrainLogger(str(stage.exp_dir / "train_log.txt"))
    brain = JointBrain(modules={"generator": generator, "remover": remover},
                       opt_class=lambda params: torch.optim.Adam(params, lr=hp["lr"]),
                       hparams=hp, run_opts=stage.run_opts, checkpointer=checkpointer)
    brain.speaker = speaker.to(brain.device)
    brain.weights = LossWeights(hp["alpha"], hp["beta"], hp["gamma"], hp["theta"], hp["loss_norm_samples"])
    brain.crop_generator = torch.Generator().manual_seed(int(hp["seed"]))
    brain.tensorboard = sb.utils.train_logger.TensorboardLogger(str(stage.exp_dir / "tensorboard" / "joint"))
    announce_resume(checkpointer)
    logger.info(f"train: generator+remover, {sum(p.numel() for p in generator.parameters())} parameters each, "
                f"{len(train)} utterances, {hp['number_of_epochs']} epochs")
    loader = {"batch_size": hp["batch_size"], "shuffle": True, "num_workers": hp["num_workers"]}
    brain.fit(epoch_counter, train, None, train_loader_kwargs=loader)
    save_models(model_dir, kwargs, generator.cpu(), remover.cpu(), stage.exp_dir / "speaker_white",
                hp["sample_rate"], hp["corpus"])
    stage.mark_done()
    logger.info(f"train: wrote {model_dir}")


if __name__ == "__main__":
    exit_on_input_error("voice_privacy.train", main)
