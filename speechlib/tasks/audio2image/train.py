"""Stages 2 and 3 of egs/audio2image: an audio tower aligned to the frozen image tower.

    python -m speechlib.tasks.audio2image.train conf/mini_audio2image.yaml --output_folder exp/x \
        --seed 2 --system wavbrivl|wav2clip

wavbrivl: WavLM + softmax layer weights + SA block + MLP, BriVL's cross-modal loss over two
queues with a momentum audio encoder (queue size and momentum from the config). With
`wavlm_dir` set, WavLM's pretrained weights are loaded (strict) before training.
wav2clip: ResNet-18 on log-mel with CLIP's symmetric in-batch loss. Both see the same pairs and
the same frozen tower. Writes model/audio_<system>_seed<N>.pt; a killed training resumes.
"""
from __future__ import annotations

import argparse
import sys

from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.nn.audio_image import AudioImageCLIP, AudioImageMoCo, load_wavlm
from speechlib.tasks.audio2image.common import (SYSTEMS, fit, install_config, load_weights, model_dir, pairs_dataset,
                                                save_weights)
from speechlib.tasks.stage import Option, start_stage


def build_system(hp: dict, system: str, tower_path):
    """The training module of `system` around the frozen tower loaded from stage 1."""
    tower = load_weights(hp["image_tower"], tower_path)
    if system == "wavbrivl":
        encoder = hp["wavbrivl"]
        if hp["wavlm_dir"]:
            load_wavlm(encoder, hp["wavlm_dir"])
        return AudioImageMoCo(encoder, tower, hp["embed_dim"], hp["queue_size_audio"], hp["momentum"],
                              hp["temperature"])
    if system == "wav2clip":
        return AudioImageCLIP(hp["wav2clip"], tower, hp["temperature"])
    raise InputError(f"unknown system '{system}'; known: {', '.join(SYSTEMS)}")


def audio_weights_path(exp_dir, system: str, seed: int):
    return model_dir(exp_dir) / f"audio_{system}_seed{seed}.pt"


def main() -> None:
    # the seed is a config key (it seeds the models' initialisation); one done marker per seed
    seeds = [sys.argv[i + 1] for i, arg in enumerate(sys.argv[:-1]) if arg == "--seed"]
    stage = start_stage(f"train_{{system}}_seed{seeds[-1] if seeds else 'default'}",
                        options=(Option("system", "which audio tower to train", choices=SYSTEMS),))
    hp = stage.hparams
    args = argparse.Namespace(system=stage.options["system"], seed=int(hp["seed"]))
    target = audio_weights_path(stage.exp_dir, args.system, args.seed)
    if stage.is_done((target,)):
        print(f"train: {target} is up to date")
        return
    tower_path = model_dir(stage.exp_dir) / "image_tower.pt"
    model = build_system(hp, args.system, tower_path)
    data = hp["data_folder"]
    train = pairs_dataset(f"{data}/train", hp, train=True)
    valid = pairs_dataset(f"{data}/valid", hp, train=False)
    fit(stage, model, train, valid, stage.exp_dir / "save" / f"{args.system}_seed{args.seed}-{stage.fingerprint}", hp["epochs_audio"],
        hp["lr_audio"], hp["batch_size"])
    save_weights(model.audio, target)
    install_config(stage)
    if args.system == "wavbrivl":
        weights = model.audio.layer_weights().detach().numpy().round(3).tolist()
        print(f"train: learnt layer weights (embeddings, layer 1..): {weights}")
    stage.mark_done()
    print(f"train: {args.system} seed {args.seed} -> {target}")


if __name__ == "__main__":
    exit_on_input_error("audio2image.train", main)
