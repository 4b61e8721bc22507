"""The trained generator and removal module as two model directories (speechlib.tasks.model_dir):

    exp/<tag>/model/protect/   kind "protect": the generator (what `protect` needs)
    exp/<tag>/model/restore/   kind "restore": the removal module (what `restore` needs)

Two directories, so that the protection model can be given away without the means to undo it
(the paper's "only an authorised party removes it"). Each holds ssed.pt and model.json (the SSED
shape and eps, the sample rate, provenance).
"""
from __future__ import annotations

from pathlib import Path

from speechlib.nn.ssed import SSED
from speechlib.tasks.model_dir import ModelDir, find_model_dir, load_model_dir, save_model_dir

RECIPE = "voice_privacy"
KINDS = {"generator": "protect", "remover": "restore"}


def ssed_kwargs(hp: dict) -> dict:
    """The SSED constructor arguments from a config."""
    return {"channels": tuple(hp["ssed_channels"]), "strides": tuple(hp["ssed_strides"]),
            "residual_blocks": int(hp["ssed_residual_blocks"]), "kernel": int(hp["ssed_kernel"]),
            "eps": float(hp["eps"])}


def save_models(model_dir: str | Path, kwargs: dict, generator: SSED, remover: SSED,
                sample_rate: int = 16000, corpus: str = "not recorded") -> None:
    """model_dir/protect and model_dir/restore."""
    model_dir = Path(model_dir)
    for which, module in (("generator", generator), ("remover", remover)):
        save_model_dir(model_dir / KINDS[which], recipe=RECIPE, kind=KINDS[which], system=model_dir.parent.name,
                       sample_rate=sample_rate, modules={"ssed": module}, configs={"ssed": kwargs}, corpus=corpus)


def load_ssed(path: str | Path, which: str) -> tuple[SSED, ModelDir]:
    """`which`: generator (protect) or remover (restore). `path`: the model directory itself, or
    exp/<tag>/model, or exp/<tag>."""
    kind = KINDS[which]
    model = load_model_dir(find_model_dir(path, kind, Path("model") / kind), RECIPE, kind)
    return model.build("ssed", SSED), model


def load_model(path: str | Path, which: str) -> SSED:
    return load_ssed(path, which)[0]
