"""Saving and loading a trained generator/remover pair as `exp/<tag>/model/`.

The directory holds ssed.json (the SSED shape and eps) and generator.ckpt / remover.ckpt, so the
user-facing `protect` and `restore` commands need nothing but `--model exp/<tag>`.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from speechlib.io.atomic import atomic_path, atomic_write_text
from speechlib.io.errors import InputError
from speechlib.nn.ssed import SSED


def ssed_kwargs(hp: dict) -> dict:
    """The SSED constructor arguments from a config."""
    return {"channels": tuple(hp["ssed_channels"]), "strides": tuple(hp["ssed_strides"]),
            "residual_blocks": int(hp["ssed_residual_blocks"]), "kernel": int(hp["ssed_kernel"]),
            "eps": float(hp["eps"])}


def save_models(model_dir: str | Path, kwargs: dict, generator: SSED, remover: SSED) -> None:
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    for name, module in (("generator", generator), ("remover", remover)):
        with atomic_path(model_dir / f"{name}.ckpt") as tmp:
            torch.save(module.state_dict(), tmp)
    atomic_write_text(model_dir / "ssed.json", json.dumps(kwargs, indent=1) + "\n")


def load_model(exp_or_model_dir: str | Path, which: str) -> SSED:
    """`which`: generator (protect) or remover (restore). Accepts exp/<tag> or exp/<tag>/model."""
    base = Path(exp_or_model_dir)
    model_dir = base / "model" if (base / "model").is_dir() else base
    spec, ckpt = model_dir / "ssed.json", model_dir / f"{which}.ckpt"
    for path in (spec, ckpt):
        if not path.is_file():
            raise InputError(f"no trained model here ({path.name} missing): run stage 2 of "
                             "egs/voice_privacy first", str(path))
    kwargs = json.loads(spec.read_text())
    model = SSED(**kwargs)
    model.load_state_dict(torch.load(ckpt, map_location="cpu"))
    return model.eval()
