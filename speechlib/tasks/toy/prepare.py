"""Stage 1 of egs/toy: generate the noise clips and write data/{train,test} Kaldi data dirs.

    python -m speechlib.tasks.toy.prepare conf/mini_toy.yaml --output_folder exp/toy
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from speechlib.data.writer import write_data_dir
from speechlib.io.audio import write_audio
from speechlib.io.errors import exit_on_input_error
from speechlib.signal.noise import coloured_noise
from speechlib.tasks.stage import start_stage

logger = logging.getLogger("toy.prepare")


def write_split(data_dir: Path, wav_dir: Path, speakers: list[str], hp: dict,
                rng: np.random.Generator) -> None:
    """One data dir; each pseudo-speaker has its own level, so speakers differ like voices do."""
    colours = list(hp["colours"])
    num_samples = int(hp["duration"] * hp["sample_rate"])
    wav_scp, utt2spk, utt2label, utt2dur = {}, {}, {}, {}
    for spk in speakers:
        gain = rng.uniform(0.01, 0.1)
        for colour in colours:
            for index in range(hp["utts_per_colour"]):
                utt = f"{spk}-{colour}-{index:03d}"
                path = (wav_dir / f"{utt}.wav").resolve()
                write_audio(path, gain * coloured_noise(num_samples, colour, rng), hp["sample_rate"])
                wav_scp[utt], utt2spk[utt] = str(path), spk
                utt2label[utt], utt2dur[utt] = colour, f"{num_samples / hp['sample_rate']:.3f}"
    write_data_dir(data_dir, utt2spk, {"wav.scp": wav_scp, "utt2label": utt2label, "utt2dur": utt2dur})


def main() -> None:
    stage = start_stage("prepare", options=())
    hp = stage.hparams
    data_folder = Path(hp["data_folder"])
    outputs = (data_folder / "train" / "wav.scp", data_folder / "test" / "wav.scp")
    if stage.is_done(outputs):
        logger.info("%s is up to date", data_folder)
        return
    rng = np.random.default_rng(hp["seed"])
    n_train, n_test = hp["num_train_speakers"], hp["num_test_speakers"]
    speakers = [f"spk{index:02d}" for index in range(1, n_train + n_test + 1)]
    wav_dir = data_folder / "wav"
    write_split(data_folder / "train", wav_dir, speakers[:n_train], hp, rng)
    write_split(data_folder / "test", wav_dir, speakers[n_train:], hp, rng)
    stage.mark_done()
    logger.info("wrote %s/train (%d speakers) and %s/test (%d speakers)", data_folder, n_train, data_folder, n_test)


if __name__ == "__main__":
    exit_on_input_error("toy.prepare", main)
