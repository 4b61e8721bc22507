"""Stage 2 of egs/toy: train the linear noise-colour classifier (system "classifier").

    python -m speechlib.tasks.toy.train conf/mini_toy.yaml --output_folder exp/toy

Writes exp/<tag>/classifier/ (checkpoints, train_log.txt, TensorBoard, loss curve json + png,
throughput). Re-running the same command after a kill resumes from the last checkpoint (end of
epoch, or mid-epoch every `ckpt_interval_steps` batches); a finished training does nothing; a
changed config retrains from scratch.
"""
from __future__ import annotations

import logging

import speechbrain as sb
import torch

from speechlib.data.dataset import load_datadir_dataset
from speechlib.io.errors import exit_on_input_error
from speechlib.tasks.brain import RecipeBrain
from speechlib.tasks.stage import start_stage
from speechlib.tasks.training import build_brain, fit, optimizer_from_config, system_dir

SYSTEM = "classifier"
logger = logging.getLogger("toy.train")


def build_modules(hp: dict) -> dict[str, torch.nn.Module]:
    """Features and model from the config's values (the YAML declares no objects)."""
    n_mels = int(hp["n_mels"])
    return {"features": sb.lobes.features.Fbank(sample_rate=hp["sample_rate"], n_mels=n_mels),
            "model": torch.nn.Sequential(torch.nn.LayerNorm(n_mels), torch.nn.Linear(n_mels, len(hp["colours"])))}


class ToyBrain(RecipeBrain):
    """Mean log-mel -> LayerNorm -> Linear; per-sample normalisation keeps the model
    independent of the batch, so 2 processes x B and 1 process x 2B see the same gradients.
    `label_index` (colour -> class) is its one dependency."""

    needs = ("label_index",)
    keep_best = {"max_keys": ["accuracy"]}

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        feats = self.modules.features(wavs)
        pooled = sb.dataio.dataio.length_to_mask(lens * feats.shape[1], feats.shape[1]).unsqueeze(-1)
        mean = (feats * pooled).sum(dim=1) / pooled.sum(dim=1)
        return torch.log_softmax(self.modules.model(mean), dim=-1)

    def compute_objectives(self, predictions, batch, stage):
        labels = torch.tensor([self.label_index[label] for label in batch.label], device=self.device)
        if stage != sb.Stage.TRAIN:
            self.add_stat("accuracy", float((predictions.argmax(-1) == labels).float().mean()), len(labels))
        return torch.nn.functional.nll_loss(predictions, labels)


def label_index(hp: dict) -> dict[str, int]:
    return {label: index for index, label in enumerate(hp["colours"])}


def datasets(hp: dict):
    return tuple(load_datadir_dataset(f"{hp['data_folder']}/{name}", hp["sample_rate"], ("utt2label",))
                 for name in ("train", "test"))


def main() -> None:
    stage = start_stage("train", options=())
    hp = stage.hparams
    folder = system_dir(stage.exp_dir, SYSTEM)
    if stage.is_done((folder.loss_curve,)):
        logger.info("%s is up to date", folder.path)
        return
    train, valid = datasets(hp)
    brain = build_brain(ToyBrain, stage, SYSTEM, build_modules(hp), optimizer=optimizer_from_config(hp["optimizer"]),
                        epochs=hp["number_of_epochs"], label_index=label_index(hp))
    fit(brain, train, valid, train_loader_kwargs=hp["train_dataloader_opts"],
        valid_loader_kwargs=hp["valid_dataloader_opts"])
    stage.mark_done()


if __name__ == "__main__":
    exit_on_input_error("toy.train", main)
