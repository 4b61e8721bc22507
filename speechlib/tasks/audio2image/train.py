"""Stages 2 and 3 of egs/audio2image: an audio tower aligned to the frozen image tower.

    python -m speechlib.tasks.audio2image.train conf/mini_audio2image.yaml --output_folder exp/x \\
        --seed 2 --system wavbrivl|wav2clip

wavbrivl: WavLM + softmax layer weights + SA block + MLP, BriVL's cross-modal loss over two
queues with a momentum audio encoder (queue size and momentum from the config). With
`wavlm_dir` set, WavLM's pretrained weights are loaded (strict) before training.
wav2clip: ResNet-18 on log-mel with CLIP's symmetric in-batch loss. Both see the same pairs and
the same frozen tower (from exp/<tag>/brivl/model). Trains as exp/<tag>/<system>_seed<N>/ (a
killed training resumes) and exports exp/<tag>/<system>_seed<N>/model (audio, image_tower).
"""
from __future__ import annotations

import logging

from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.nn.audio_image import AudioImageCLIP, AudioImageMoCo, load_wavlm
from speechlib.tasks.audio2image.common import (MANIFEST, SYSTEMS, audio_dir, build, export, load, load_module,
                                                pairs_dataset, tower_dir, train_contrastive)
from speechlib.tasks.stage import Option, start_stage

log = logging.getLogger("audio2image.train")


def build_system(hp: dict, system: str, tower):
    """The training module of `system` around the frozen tower."""
    if system == "wavbrivl":
        encoder = build("wavbrivl", hp["wavbrivl"])
        if hp["wavlm_dir"]:
            load_wavlm(encoder, hp["wavlm_dir"])
        return AudioImageMoCo(encoder, tower, hp["embed_dim"], hp["queue_size_audio"], hp["momentum"],
                              hp["temperature"])
    if system == "wav2clip":
        return AudioImageCLIP(build("wav2clip", hp["wav2clip"]), tower, hp["temperature"])
    raise InputError(f"unknown system '{system}'; known: {', '.join(SYSTEMS)}")


def main() -> None:
    # one saved config and done marker per system and seed (the config's seed, --seed overrides it)
    stage = start_stage("train_{system}_seed{seed}",
                        options=(Option("system", "which audio tower to train", choices=SYSTEMS),))
    hp = stage.hparams
    system, seed = stage.options["system"], int(hp["seed"])
    target = audio_dir(stage.exp_dir, system, seed)
    if stage.is_done((target / MANIFEST,)):
        log.info("%s is up to date", target)
        return
    tower = load_module(load(tower_dir(stage.exp_dir), "image_text"), "image_tower")
    model = build_system(hp, system, tower)
    data = hp["data_folder"]
    train = pairs_dataset(f"{data}/train", hp, train=True)
    valid = pairs_dataset(f"{data}/valid", hp, train=False)
    train_contrastive(stage, f"{system}_seed{seed}", model, train, valid, hp["epochs_audio"], hp["lr_audio"])
    export(stage, target, "audio_encoder", system, {"audio": (system, model.audio), "image_tower": ("image_tower", tower)})
    if system == "wavbrivl":
        weights = model.audio.layer_weights().detach().numpy().round(3).tolist()
        log.info("learnt layer weights (embeddings, layer 1..): %s", weights)
    stage.mark_done()
    log.info("%s seed %d -> %s", system, seed, target)


if __name__ == "__main__":
    exit_on_input_error("audio2image.train", main)
