"""Stage 1 of egs/audio2image: the frozen image tower.

    python -m speechlib.tasks.audio2image.pretrain conf/mini_audio2image.yaml --output_folder exp/x

Real: `brivl_checkpoint` names a local BriVL checkpoint; its image tower is loaded (strict) and
nothing is trained. Mini: a small BriVL-like image-text model is pre-trained here with BriVL's
algorithm (momentum encoders, two negative queues, T = 0.07) on the training pictures and their
texts (the stamp's English name and every transcript of its spoken descriptions, several
languages), tokenised by a sentencepiece unigram model trained on those texts. Trains as
exp/<tag>/brivl/ and exports the model directory exp/<tag>/brivl/model (image_tower, text_tower,
tokenizer.model).
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from speechbrain.utils.distributed import run_on_main

from speechlib.io.errors import exit_on_input_error
from speechlib.nn.brivl import BriVL, load_brivl_image_tower
from speechlib.tasks.audio2image.common import (MANIFEST, Tokenizer, build, export, pairs_dataset,
                                                pretraining_pairs, tower_dir, train_contrastive,
                                                train_tokenizer)
from speechlib.tasks.stage import start_stage

log = logging.getLogger("audio2image.pretrain")


def shared_tokenizer(texts: list[str], directory: Path, vocab_size: int, max_len: int) -> Tokenizer:
    """Under DDP rank 0 trains the tokenizer while the others wait at a barrier, then every rank
    loads the one model (ranks training their own would race on the same files)."""
    run_on_main(train_tokenizer, args=(texts, directory / "tokenizer", vocab_size))
    return Tokenizer(directory / "tokenizer.model", max_len)


def copy_into(source: Path, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, directory / source.name)


def main() -> None:
    stage = start_stage("pretrain", options=())
    hp = stage.hparams
    out = tower_dir(stage.exp_dir)
    if stage.is_done((out / MANIFEST,)):
        log.info("%s is up to date", out)
        return
    if hp["brivl_checkpoint"]:
        tower = load_brivl_image_tower(build("image_tower", hp["image_tower"]), hp["brivl_checkpoint"])
        export(stage, out, "image_text", "brivl", {"image_tower": ("image_tower", tower)})
        log.info("loaded BriVL's image tower from %s", hp["brivl_checkpoint"])
        stage.mark_done()
        return
    data = hp["data_folder"]
    train_pairs, valid_pairs = (pretraining_pairs(f"{data}/{split}", hp) for split in ("train", "valid"))
    texts = sorted({row["text"] for row in train_pairs.values()})
    spm_dir = stage.exp_dir / "tokenizer"
    tokenizer = shared_tokenizer(texts, spm_dir, hp["vocab_size"], hp["max_text_len"])
    log.info("sentencepiece unigram model on %d texts, %d pieces", len(texts), tokenizer.sp.get_piece_size())
    # one item per (picture, caption) pair, as BriVL's data: with one item per picture an epoch of
    # ~60 pictures is 3 updates, and 80 epochs left the towers near their initialisation, which
    # embeds every picture alike (README, "The frozen tower")
    train = pairs_dataset(f"{data}/train", hp, train=True, tokenizer=tokenizer, audio=False, pairs=train_pairs)
    valid = pairs_dataset(f"{data}/valid", hp, train=False, tokenizer=tokenizer, audio=False, unique_pictures=True,
                          pairs=valid_pairs)
    model = BriVL(build("image_tower", hp["image_tower"]), build("text_tower", hp["text_tower"]), hp["embed_dim"],
                  hp["queue_size_brivl"], hp["momentum"], hp["temperature"])
    train_contrastive(stage, "brivl", model, train, valid, hp["epochs_brivl"], hp["lr_brivl"])
    # the tokenizer first (one process): model.json, written last by export, completes the dir
    run_on_main(copy_into, args=(spm_dir / "tokenizer.model", out))
    export(stage, out, "image_text", "brivl", {"image_tower": ("image_tower", model.learnable["imgencoder"]),
                                               "text_tower": ("text_tower", model.learnable["textencoder"])})
    stage.mark_done()
    log.info("image tower in %s", out)


if __name__ == "__main__":
    exit_on_input_error("audio2image.pretrain", main)
