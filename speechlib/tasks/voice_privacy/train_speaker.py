"""Stage 1 of egs/voice_privacy: the speaker models (white box and black box).

    python -m speechlib.tasks.voice_privacy.train_speaker conf/x.yaml --output_folder exp/x --role white
    python -m speechlib.tasks.voice_privacy.train_speaker conf/x.yaml --output_folder exp/x --role black

white: ECAPA-TDNN, or the local SpeechBrain model in `ecapa_pretrained_dir` when given (then no
training). black: a model of another architecture (x-vector), trained separately with its own
seed; the generator never sees it. Each role is a system of the training kit
(speechlib.tasks.training): exp/<tag>/speaker_<role>/ holds its checkpoints (save/),
train_log.txt, tensorboard/, loss_curve.json/png, throughput.json, and the trained encoder in
SpeechBrain's pretrained layout (hyperparams.yaml + embedding_model.ckpt), which the later stages
load. Re-running after a kill resumes from the last checkpoint (crops and augmentation draws
included); a changed config retrains from scratch. `--ngpu N` in run.sh trains with DDP.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch
from speechbrain.utils.checkpoints import mark_as_loader, mark_as_saver, register_checkpoint_hooks
from speechbrain.utils.distributed import if_main_process

from speechlib.data.dataset import load_datadir_dataset
from speechlib.io.audio import load_audio
from speechlib.io.errors import exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.nn.speaker import AAMSoftmaxHead, Augmenter, build_encoder, load_pretrained, random_crops, save_pretrained
from speechlib.tasks.brain import RecipeBrain
from speechlib.tasks.stage import Option, start_stage
from speechlib.tasks.training import build_brain, fit, system_dir

logger = logging.getLogger("voice_privacy.train_speaker")


class SpeakerBrain(RecipeBrain):
    """Random crops -> augmentation -> encoder -> AAM-softmax over the training speakers.

    Dependencies: `speaker_index` (speaker id -> class), `crop_samples`, `augmenter` (None: no
    augmentation), `schedule` (a function optimizer -> its LR scheduler, stepped every
    optimiser step and checkpointed with it). Crops are drawn from torch's global random
    state, which the kit checkpoints.
    """

    needs = ("speaker_index", "crop_samples", "augmenter", "schedule")

    def init_optimizers(self):
        super().init_optimizers()
        self.scheduler = self.schedule(self.optimizer)
        if self.checkpointer is not None:  # before SpeechBrain recovers: a resumed run continues the schedule
            self.checkpointer.add_recoverable("lr_scheduler", self.scheduler)

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        if should_step and self.scheduler.last_epoch < self.scheduler.total_steps:
            self.scheduler.step()

    def compute_forward(self, batch, stage):
        wavs, lens = batch.sig
        wavs = random_crops(wavs, lens, self.crop_samples, torch.default_generator)
        if stage == sb.Stage.TRAIN and self.augmenter is not None:
            wavs = self.augmenter(wavs)
        return self.modules.encoder(wavs.to(self.device))

    def compute_objectives(self, embeddings, batch, stage):
        targets = torch.tensor([self.speaker_index[s] for s in batch.spk], device=self.device)
        loss, cosines = self.modules.head(embeddings, targets)
        self.add_stat("accuracy", float((cosines.argmax(-1) == targets).float().mean()), len(targets))
        if stage == sb.Stage.TRAIN:
            self.add_stat("lr", self.optimizer.param_groups[0]["lr"])
        return loss


@register_checkpoint_hooks
class NumpyGeneratorState:
    """A NumPy Generator's state as a checkpoint recoverable: the augmenter draws from its own
    generator, which the kit's RandomStates (global states only) does not cover."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    @mark_as_saver
    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.rng.bit_generator.state))

    @mark_as_loader
    def load(self, path, end_of_epoch) -> None:
        del end_of_epoch  # the same state either way
        self.rng.bit_generator.state = json.loads(Path(path).read_text())


def load_noises(noise_dir: Path, max_clips: int, sample_rate: int) -> list[np.ndarray]:
    if not (noise_dir / "wav.scp").is_file():
        return []
    noises = []
    for utt, spec in sorted(read_dict(noise_dir / "wav.scp").items())[:max_clips]:
        signal, _ = load_audio(spec, sample_rate, utt=utt, on_rate_mismatch="resample")
        noises.append(signal[: 10 * sample_rate])
    return noises


def copy_pretrained(source: str | Path, out_dir: Path) -> None:
    """The white box from a local SpeechBrain directory instead of training one."""
    load_pretrained(source)  # fail early on a broken directory
    if if_main_process():
        shutil.rmtree(out_dir, ignore_errors=True)
        shutil.copytree(source, out_dir)
    logger.info("train_speaker: white-box model copied from ECAPA_PRETRAINED_DIR=%s", source)


def processes() -> int:
    """DDP processes sharing each epoch (start_stage joined the group under torchrun/srun)."""
    return int(torch.distributed.get_world_size()) if torch.distributed.is_initialized() else 1


def one_cycle(hp: dict, spec: dict, steps: int):
    """Warm-up from lr x speaker_lr_final_ratio to lr over the first speaker_lr_warmup of the
    steps, then cosine decay back to lr x speaker_lr_final_ratio (torch's OneCycleLR, Adam's
    betas left alone): the last epochs refine instead of jumping around at the peak rate."""
    ratio = float(hp["speaker_lr_final_ratio"])
    return functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=float(spec["lr"]), total_steps=max(1, steps),
                             pct_start=float(hp["speaker_lr_warmup"]), anneal_strategy="cos", cycle_momentum=False,
                             div_factor=1 / ratio, final_div_factor=1.0)


def main() -> None:
    stage = start_stage("train_speaker_{role}", options=(Option("role", "which speaker model", ("white", "black")),))
    role = stage.options["role"]
    hp = stage.hparams
    system = f"speaker_{role}"
    out_dir = system_dir(stage.exp_dir, system).path
    if stage.is_done((out_dir / "embedding_model.ckpt",)):
        logger.info("train_speaker: %s is up to date", out_dir)
        return
    if role == "white" and hp["ecapa_pretrained_dir"]:
        copy_pretrained(hp["ecapa_pretrained_dir"], out_dir)
        stage.mark_done()
        return
    spec, batch = hp[f"{role}_model"], int(hp["speaker_batch_size"])
    torch.manual_seed(int(spec["seed"]))  # the two roles start from different weights and crops
    data_dir = Path(hp["data_folder"]) / "speaker_train"
    train = load_datadir_dataset(data_dir, hp["sample_rate"], ("utt2spk",))
    speakers = sorted(set(read_dict(data_dir / "utt2spk").values()))
    encoder = build_encoder(spec["architecture"], hp["n_mels"], spec["channels"], spec["embedding_dim"])
    head = AAMSoftmaxHead(spec["embedding_dim"], len(speakers), hp["aam_margin"], hp["aam_scale"])
    noises = load_noises(Path(hp["data_folder"]) / "noise", hp["augment_max_noise_clips"], hp["sample_rate"])
    augmenter = (Augmenter(noises, tuple(hp["augment_snr_range"]), hp["augment_noise_prob"],
                           hp["augment_reverb_prob"], seed=int(spec["seed"])) if hp["augment"] else None)
    brain = build_brain(SpeakerBrain, stage, system, {"encoder": encoder, "head": head},
                        optimizer=functools.partial(torch.optim.Adam, lr=spec["lr"],
                                                    weight_decay=hp["speaker_weight_decay"]),
                        epochs=spec["epochs"],
                        recoverables={"augmenter_rng": NumpyGeneratorState(augmenter.rng)} if augmenter else None,
                        speaker_index={s: i for i, s in enumerate(speakers)},
                        crop_samples=int(hp["speaker_crop_seconds"] * hp["sample_rate"]), augmenter=augmenter,
                        schedule=one_cycle(hp, spec, spec["epochs"] * math.ceil(len(train) / (batch * processes()))))
    logger.info("train_speaker: %s = %s on %d speakers, %d utterances, %d noise clips for augmentation", role,
                spec["architecture"], len(speakers), len(train), len(noises))
    fit(brain, train, None, train_loader_kwargs={"batch_size": batch, "shuffle": True,
                                                 "num_workers": hp["num_workers"]})
    if if_main_process():
        save_pretrained(encoder.cpu(), out_dir, spec["architecture"], spec["channels"], spec["embedding_dim"])
    stage.mark_done()
    logger.info("train_speaker: wrote %s", out_dir)


if __name__ == "__main__":
    exit_on_input_error("voice_privacy.train_speaker", main)
