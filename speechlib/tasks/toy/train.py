"""Stage 2 of egs/toy: train the linear noise-colour classifier with SpeechBrain's Brain.

    python -m speechlib.tasks.toy.train conf/mini_toy.yaml --output_folder exp/toy

Re-running the same command after a kill resumes from the last checkpoint (end of epoch, or
intra-epoch every `ckpt_interval_steps` batches); a finished training does nothing.
"""
from __future__ import annotations

import json

import speechbrain as sb
import torch

from speechlib.data.dataset import load_datadir_dataset
from speechlib.io.atomic import atomic_write_text
from speechlib.io.errors import exit_on_input_error
from speechlib.tasks.brain import RecipeBrain
from speechlib.tasks.stage import announce_resume, start_stage


class ToyBrain(RecipeBrain):
    """Mean log-mel -> LayerNorm -> Linear; per-sample normalisation keeps the model
    independent of the batch, so 2 processes x B and 1 process x 2B see the same gradients."""

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        feats = self.hparams.compute_features(wavs)
        pooled = sb.dataio.dataio.length_to_mask(lens * feats.shape[1], feats.shape[1]).unsqueeze(-1)
        mean = (feats * pooled).sum(dim=1) / pooled.sum(dim=1)
        return torch.log_softmax(self.modules.model(mean), dim=-1)

    def compute_objectives(self, predictions, batch, stage):
        labels = torch.tensor([self.hparams.label_index[label] for label in batch.label], device=self.device)
        loss = torch.nn.functional.nll_loss(predictions, labels)
        if stage != sb.Stage.TRAIN:
            self.correct += int((predictions.argmax(-1) == labels).sum())
            self.total += len(labels)
        return loss

    def on_stage_start(self, stage, epoch=None):
        self.correct, self.total = 0, 0

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        stats = {"loss": stage_loss, "accuracy": self.correct / max(1, self.total)}
        if stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats({"epoch": epoch}, train_stats={"loss": self.train_loss},
                                                valid_stats=stats)
            self.hparams.tensorboard_logger.log_stats({"epoch": epoch}, train_stats={"loss": self.train_loss},
                                                      valid_stats=stats)
            self.record_loss(epoch, self.train_loss, stage_loss)
            self.checkpointer.save_and_keep_only(meta={"accuracy": stats["accuracy"]},
                                                 max_keys=["accuracy"], num_to_keep=1)
        else:
            self.test_stats = stats

    def record_loss(self, epoch: int, train_loss: float, valid_loss: float) -> None:
        """Per-epoch losses as JSON (the DDP test compares these curves)."""
        if not sb.utils.distributed.if_main_process():
            return
        path = self.hparams.output_folder + "/loss_curve.json"
        try:
            with open(path, encoding="utf-8") as handle:
                curve = [row for row in json.load(handle) if row["epoch"] < epoch]
        except FileNotFoundError:
            curve = []
        curve.append({"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss})
        atomic_write_text(path, json.dumps(curve, indent=1) + "\n")


def build_brain(stage) -> ToyBrain:
    hp = stage.hparams
    hp["label_index"] = {label: index for index, label in enumerate(hp["colours"])}
    return ToyBrain(modules=hp["modules"], opt_class=hp["opt_class"], hparams=hp,
                    run_opts=stage.run_opts, checkpointer=hp["checkpointer"])


def main() -> None:
    stage = start_stage("train")
    hp = stage.hparams
    train = load_datadir_dataset(f"{hp['data_folder']}/train", hp["sample_rate"], ("utt2label",))
    valid = load_datadir_dataset(f"{hp['data_folder']}/test", hp["sample_rate"], ("utt2label",))
    brain = build_brain(stage)
    announce_resume(hp["checkpointer"])
    brain.fit(hp["epoch_counter"], train, valid,
              train_loader_kwargs=hp["train_dataloader_opts"],
              valid_loader_kwargs=hp["valid_dataloader_opts"])
    print(f"train: done, {hp['epoch_counter'].current} epochs, checkpoints in {hp['save_folder']}")


if __name__ == "__main__":
    exit_on_input_error("toy.train", main)
