"""The trained generator and removal module as two model directories (speechlib.tasks.model_dir):

    exp/<tag>/model/protect/   kind "protect": the generator (what `protect` needs)
    exp/<tag>/model/restore/   kind "restore": the removal module (what `restore` needs)

Two directories, so that the protection model can be given away without the means to undo it
(the paper's "only an authorised party removes it"). Each holds ssed.pt and model.json (the SSED
shape and eps, the sample rate, provenance) and a copy of the white-box speaker model in
speaker_white/ (SpeechBrain layout; for `--report`, the cosine drop per file). The restoration
model records which generator it undoes (`extra.generator_sha256`, the SHA-256 of the protection
model's weights): a protected file carries that id in its metadata and restore refuses a file
made by another generator, or one without it (speechlib.tasks.voice_privacy.apply).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from speechlib.nn.speaker import SpeakerEncoder, load_pretrained
from speechlib.nn.ssed import SSED
from speechlib.tasks.model_dir import ModelDir, find_model_dir, load_model_dir, save_model_dir

RECIPE = "voice_privacy"
KINDS = {"generator": "protect", "remover": "restore"}
SPEAKER = "speaker_white"


def ssed_kwargs(hp: dict) -> dict:
    """The SSED constructor arguments from a config."""
    return {"channels": tuple(hp["ssed_channels"]), "strides": tuple(hp["ssed_strides"]),
            "residual_blocks": int(hp["ssed_residual_blocks"]), "kernel": int(hp["ssed_kernel"]),
            "eps": float(hp["eps"]),
            "spectral_ratio": None if hp["spectral_ratio"] is None else float(hp["spectral_ratio"])}


def save_models(model_dir: str | Path, kwargs: dict, generator: SSED, remover: SSED, speaker_dir: str | Path,
                sample_rate: int, corpus: str) -> None:
    """model_dir/protect and model_dir/restore, each with a copy of `speaker_dir` (the white box)."""
    model_dir = Path(model_dir)
    system = model_dir.parent.name
    protect = save_model_dir(model_dir / KINDS["generator"], recipe=RECIPE, kind=KINDS["generator"], system=system,
                             sample_rate=sample_rate, modules={"ssed": generator}, configs={"ssed": kwargs},
                             corpus=corpus)
    generator_id = load_model_dir(protect, RECIPE, KINDS["generator"]).meta["sha256"]["ssed"]
    restore = save_model_dir(model_dir / KINDS["remover"], recipe=RECIPE, kind=KINDS["remover"], system=system,
                             sample_rate=sample_rate, modules={"ssed": remover}, configs={"ssed": kwargs},
                             corpus=corpus, extra={"generator_sha256": generator_id})
    for directory in (protect, restore):
        shutil.rmtree(directory / SPEAKER, ignore_errors=True)
        shutil.copytree(speaker_dir, directory / SPEAKER)


def generator_id(model: ModelDir) -> str:
    """The id a protected file carries: the protection model's weight digest (for a restoration
    model, that of the generator it was trained with)."""
    return model.meta["sha256"]["ssed"] if model.meta["kind"] == KINDS["generator"] else model.extra["generator_sha256"]


def load_speaker(model: ModelDir) -> SpeakerEncoder:
    """The white-box speaker model saved beside the SSED."""
    return load_pretrained(model.path / SPEAKER)


def load_ssed(path: str | Path, which: str) -> tuple[SSED, ModelDir]:
    """`which`: generator (protect) or remover (restore). `path`: the model directory itself, or
    exp/<tag>/model, or exp/<tag>."""
    kind = KINDS[which]
    model = load_model_dir(find_model_dir(path, kind, Path("model") / kind), RECIPE, kind)
    return model.build("ssed", SSED), model


def load_model(path: str | Path, which: str) -> SSED:
    return load_ssed(path, which)[0]
