"""Stage 1 of egs/voice_privacy: the speaker models (white box and black box).

    python -m speechlib.tasks.voice_privacy.train_speaker conf/x.yaml --output_folder exp/x --role white
    python -m speechlib.tasks.voice_privacy.train_speaker conf/x.yaml --output_folder exp/x --role black

white: ECAPA-TDNN, or the local SpeechBrain model in `ecapa_pretrained_dir` when given (then no
training). black: a model of another architecture (x-vector), trained separately with its own
seed; the generator never sees it. Both are written to exp/<tag>/speaker_<role>/ in SpeechBrain's
pretrained layout (hyperparams.yaml + embedding_model.ckpt).
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch

from speechlib.data.dataset import load_datadir_dataset
from speechlib.io.audio import load_audio
from speechlib.io.errors import exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.nn.speaker import AAMSoftmaxHead, Augmenter, build_encoder, load_pretrained, random_crops, save_pretrained
from speechlib.tasks.brain import RecipeBrain
from speechlib.tasks.stage import Option, announce_resume, start_stage

logger = logging.getLogger("voice_privacy.train_speaker")


class SpeakerBrain(RecipeBrain):
    """Random crops -> augmentation -> encoder -> AAM-softmax over the training speakers."""

    def compute_forward(self, batch, stage):
        wavs, lens = batch.sig
        wavs = random_crops(wavs, lens, self.hparams.crop_samples, self.crop_generator)
        if stage == sb.Stage.TRAIN and self.augmenter is not None:
            wavs = self.augmenter(wavs)
        return self.modules.encoder(wavs.to(self.device))

    def compute_objectives(self, embeddings, batch, stage):
        targets = torch.tensor([self.speaker_index[s] for s in batch.spk], device=self.device)
        loss, cosines = self.modules.head(embeddings, targets)
        self.correct += int((cosines.argmax(-1) == targets).sum())
        self.total += len(targets)
        return loss

    def on_stage_start(self, stage, epoch=None):
        self.correct, self.total = 0, 0

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage != sb.Stage.TRAIN:
            return
        stats = {"loss": stage_loss, "accuracy": self.correct / max(1, self.total)}
        self.hparams.train_logger.log_stats({"epoch": epoch}, train_stats=stats)
        self.tensorboard.log_stats({"epoch": epoch}, train_stats=stats)
        logger.info(f"epoch {epoch}: loss {stage_loss:.3f}, train accuracy {stats['accuracy']:.3f}")
        self.checkpointer.save_and_keep_only(num_to_keep=1)


def load_noises(noise_dir: Path, max_clips: int, sample_rate: int) -> list[np.ndarray]:
    if not (noise_dir / "wav.scp").is_file():
        return []
    noises = []
    for utt, spec in sorted(read_dict(noise_dir / "wav.scp").items())[:max_clips]:
        signal, _ = load_audio(spec, sample_rate, utt=utt, on_rate_mismatch="resample")
        noises.append(signal[: 10 * sample_rate])
    return noises


def main() -> None:
    stage = start_stage("train_speaker_{role}", options=(Option("role", "which speaker model", ("white", "black")),))
    role = stage.options["role"]
    hp = stage.hparams
    out_dir = stage.exp_dir / f"speaker_{role}"
    outputs = (out_dir / "embedding_model.ckpt",)
    if stage.is_done(outputs):
        logger.info(f"train_speaker: {out_dir} is up to date")
        return
    pretrained = hp["ecapa_pretrained_dir"]
    if role == "white" and pretrained:
        load_pretrained(pretrained)  # fail early on a broken directory
        shutil.rmtree(out_dir, ignore_errors=True)
        shutil.copytree(pretrained, out_dir)
        logger.info(f"train_speaker: white-box model copied from ECAPA_PRETRAINED_DIR={pretrained}")
        stage.mark_done()
        return
    spec = hp[f"{role}_model"]
    torch.manual_seed(int(spec["seed"]))
    data_dir = Path(hp["data_folder"]) / "speaker_train"
    train = load_datadir_dataset(data_dir, hp["sample_rate"], ("utt2spk",))
    speakers = sorted(set(read_dict(data_dir / "utt2spk").values()))
    encoder = build_encoder(spec["architecture"], hp["n_mels"], spec["channels"], spec["embedding_dim"])
    head = AAMSoftmaxHead(spec["embedding_dim"], len(speakers), hp["aam_margin"], hp["aam_scale"])
    save_folder = stage.exp_dir / "save" / f"speaker_{role}"
    epoch_counter = sb.utils.epoch_loop.EpochCounter(spec["epochs"])
    checkpointer = sb.utils.checkpoints.Checkpointer(
        save_folder, recoverables={"encoder": encoder, "head": head, "counter": epoch_counter})
    hp["crop_samples"] = int(hp["speaker_crop_seconds"] * hp["sample_rate"])
    hp["train_logger"] = sb.utils.train_logger.FileTrainLogger(str(stage.exp_dir / f"train_speaker_{role}_log.txt"))
    brain = SpeakerBrain(modules={"encoder": encoder, "head": head},
                         opt_class=lambda params: torch.optim.Adam(params, lr=spec["lr"], weight_decay=2e-5),
                         hparams=hp, run_opts=stage.run_opts, checkpointer=checkpointer)
    brain.speaker_index = {s: i for i, s in enumerate(speakers)}
    brain.crop_generator = torch.Generator().manual_seed(int(spec["seed"]))
    brain.tensorboard = sb.utils.train_logger.TensorboardLogger(str(stage.exp_dir / "tensorboard" / f"speaker_{role}"))
    noises = load_noises(Path(hp["data_folder"]) / "noise", hp["augment_max_noise_clips"], hp["sample_rate"])
    brain.augmenter = (Augmenter(noises, tuple(hp["augment_snr_range"]), hp["augment_noise_prob"],
                                 hp["augment_reverb_prob"], seed=int(spec["seed"]))
                       if hp["augment"] else None)
    announce_resume(checkpointer)
    logger.info(f"train_speaker: {role} = {spec['architecture']} on {len(speakers)} speakers, "
                f"{len(train)} utterances, {len(noises)} noise clips for augmentation")
    brain.fit(epoch_counter, train, None, train_loader_kwargs={"batch_size": hp["speaker_batch_size"], "shuffle": True})
    save_pretrained(encoder.cpu(), out_dir, spec["architecture"], spec["channels"], spec["embedding_dim"])
    stage.mark_done()
    logger.info(f"train_speaker: wrote {out_dir}")


if __name__ == "__main__":
    exit_on_input_error("voice_privacy.train_speaker", main)
