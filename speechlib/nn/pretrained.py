"""Strict loading of pretrained checkpoints, with a one-line error on any mismatch.

A pretrained model (BriVL, WavLM, a taming-transformers VQGAN) is loaded into our module with
`strict=True` after selecting the checkpoint's sub-tree for that module. Missing, unexpected
or mis-shaped keys are summarised in one line (a few examples of each) so a user who points the
config at the wrong file learns which file and what differs, not a 300-line traceback.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import torch

from speechlib.io.errors import InputError


def read_checkpoint(path: str | os.PathLike) -> Mapping[str, object]:
    """torch.load a checkpoint on CPU (safetensors by extension); InputError when unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint file does not exist", str(path))
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 (any unpickling failure means "not a checkpoint")
        raise InputError(f"not a readable checkpoint: {type(err).__name__}: {err}", str(path)) from None


def sub_state(state: Mapping[str, torch.Tensor], prefix: str, drop: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Keys under `prefix` (stripped), minus those starting with any of `drop`."""
    return {key[len(prefix):]: value for key, value in state.items()
            if key.startswith(prefix) and not key[len(prefix):].startswith(drop)}


def _examples(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" ... ({len(keys)} in all)" if len(keys) > 3 else "")


def load_strict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str, what: str) -> None:
    """module.load_state_dict(state, strict=True), or one InputError line saying what differs."""
    own = module.state_dict()
    missing = sorted(own.keys() - state.keys())
    unexpected = sorted(state.keys() - own.keys())
    shapes = sorted(key for key in own.keys() & state.keys()
                    if tuple(own[key].shape) != tuple(getattr(state[key], "shape", ())))
    problems = []
    if missing:
        problems.append(f"missing {_examples(missing)}")
    if unexpected:
        problems.append(f"unexpected {_examples(unexpected)}")
    if shapes:
        key = shapes[0]
        problems.append(f"shape mismatch {_examples(shapes)} (e.g. {key}: checkpoint "
                        f"{tuple(state[key].shape)}, model {tuple(own[key].shape)})")
    if problems:
        raise InputError(f"does not match the {what} of this config: " + "; ".join(problems), source)
    module.load_state_dict(state, strict=True)
