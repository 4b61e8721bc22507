"""Stage 1 of egs/audio2image: the frozen image tower.

    python -m speechlib.tasks.audio2image.pretrain conf/mini_audio2image.yaml --output_folder exp/x

Real: `brivl_checkpoint` names a local BriVL checkpoint; its image tower is loaded (strict) and
nothing is trained. Mini: a small BriVL-like image-text model is pre-trained here with BriVL's
algorithm (momentum encoders, two negative queues, T = 0.07) on the training pictures and their
texts (the stamp's English name and every transcript of its spoken descriptions, several
languages), tokenised by a sentencepiece unigram model trained on those texts. Writes
model/image_tower.pt, model/text_tower.pt, model/tokenizer.model.
"""
from __future__ import annotations

from speechlib.io.errors import exit_on_input_error
from speechlib.nn.brivl import BriVL, load_brivl_image_tower
from speechlib.tasks.audio2image.common import (Tokenizer, fit, install_config, model_dir, pairs_dataset,
                                                read_pairs, save_weights, train_tokenizer)
from speechlib.tasks.stage import start_stage


def main() -> None:
    stage = start_stage("pretrain", options=())
    hp = stage.hparams
    out = model_dir(stage.exp_dir)
    tower_path = out / "image_tower.pt"
    if stage.is_done((tower_path,)):
        print(f"pretrain: {tower_path} is up to date")
        return
    install_config(stage)
    if hp["brivl_checkpoint"]:
        tower = load_brivl_image_tower(hp["image_tower"], hp["brivl_checkpoint"])
        save_weights(tower, tower_path)
        print(f"pretrain: loaded BriVL's image tower from {hp['brivl_checkpoint']}")
        stage.mark_done()
        return
    data = hp["data_folder"]
    texts = sorted({row["text"] for row in read_pairs(f"{data}/train").values()})
    tokenizer = Tokenizer(train_tokenizer(texts, out / "tokenizer", hp["vocab_size"]), hp["max_text_len"])
    print(f"pretrain: sentencepiece unigram model on {len(texts)} texts, {tokenizer.sp.get_piece_size()} pieces")
    train = pairs_dataset(f"{data}/train", hp, train=True, tokenizer=tokenizer, audio=False, unique_pictures=True)
    valid = pairs_dataset(f"{data}/valid", hp, train=False, tokenizer=tokenizer, audio=False, unique_pictures=True)
    model = BriVL(hp["image_tower"], hp["text_tower"], hp["embed_dim"], hp["queue_size_brivl"], hp["momentum"],
                  hp["temperature"])
    fit(stage, model, train, valid, stage.exp_dir / "save" / f"brivl-{stage.fingerprint}", hp["epochs_brivl"], hp["lr_brivl"],
        hp["batch_size"])
    save_weights(model.learnable["textencoder"], out / "text_tower.pt")
    save_weights(model.learnable["imgencoder"], tower_path)
    stage.mark_done()
    print(f"pretrain: image tower in {tower_path}")


if __name__ == "__main__":
    exit_on_input_error("audio2image.pretrain", main)
