"""The systems of the recipe: which encoder, which workers, which data; build, save, load, embed.

A system is a config entry `{encoder: pase|masked|external, data: noisy|clean, workers: [...],
plus: bool}`; every row of the paper's tables is one system. Trained encoders live in
exp/<tag>/encoders/<system>/ (encoder.pt + meta.json), which is all `predict` needs.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from speechlib.io.atomic import atomic_write_text
from speechlib.io.audio import load_audio
from speechlib.io.errors import InputError
from speechlib.nn.masked_encoder import MaskedEncoder
from speechlib.nn.mos_head import MOSHead, mean_pool
from speechlib.nn.pase import PASEEncoder
from speechlib.tasks.model_dir import load_model_dir, save_model_dir

TARGET_DIMS = {"lps": 1025, "mfcc": 20, "prosody": 4, "fbank": 40, "lps_long": 1025, "mfcc_long": 20,
               "fbank_long": 40}


def system_names(hp: dict, group: str) -> list[str]:
    names = list(hp[f"{group}_systems"] or [])
    unknown = [n for n in names if n not in hp["systems"]]
    if unknown:
        raise InputError(f"{group}_systems names unknown system(s) {unknown} (not under 'systems')")
    return names


def encoder_kwargs(hp: dict, spec: dict) -> dict:
    base = dict(hp["pase"] if spec["encoder"] == "pase" else hp["masked"])
    base.update(spec.get("arch", {}) or {})
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in base.items()}


def build_encoder(kind: str, kwargs: dict) -> torch.nn.Module:
    if kind == "pase":
        return PASEEncoder(**kwargs)
    if kind == "masked":
        return MaskedEncoder(**kwargs)
    raise InputError(f"unknown encoder type '{kind}' (pase or masked)")


def count_params(module: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def system_dir(exp_dir: str | Path, name: str) -> Path:
    return Path(exp_dir) / "encoders" / name


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_encoder(folder: Path, encoder: torch.nn.Module, kind: str, kwargs: dict, meta: dict,
                 sample_rate: int = 16000, corpus: str = "not recorded") -> None:
    """The encoder's model directory (kind "encoder"), plus meta.json: the run's own notes
    (parameter counts, training data) that the result tables read."""
    save_model_dir(folder, recipe="mos_pretrain", kind="encoder", system=Path(folder).name, sample_rate=sample_rate,
                   modules={"encoder": encoder}, configs={"encoder": kwargs}, corpus=corpus, extra={"encoder": kind})
    atomic_write_text(folder / "meta.json", json.dumps({"encoder": kind, "kwargs": kwargs, **meta}, indent=1) + "\n")


def load_encoder(folder: str | Path) -> tuple[torch.nn.Module, dict]:
    """(encoder in eval mode, meta.json) of an encoder's model directory."""
    model = load_model_dir(folder, "mos_pretrain", "encoder")
    encoder = model.build("encoder", lambda **kwargs: build_encoder(model.extra["encoder"], kwargs))
    return encoder, json.loads((Path(folder) / "meta.json").read_text())


def save_head(folder: Path, state: dict[str, torch.Tensor], sample_rate: int = 16000,
              corpus: str = "not recorded") -> None:
    """A trained MOS head (a MOSHead state dict) as a model directory of kind "mos-head"."""
    hidden, in_dim = state["hidden.weight"].shape
    save_model_dir(folder, recipe="mos_pretrain", kind="mos-head", system=Path(folder).parent.name,
                   sample_rate=sample_rate, modules={"head": state},
                   configs={"head": {"in_dim": int(in_dim), "hidden": int(hidden)}}, corpus=corpus)


def load_head(folder: str | Path) -> MOSHead:
    return load_model_dir(folder, "mos_pretrain", "mos-head").build("head", MOSHead)


@torch.no_grad()
def embed_signal(encoder: torch.nn.Module, signal: np.ndarray) -> torch.Tensor:
    """Mean-pooled frame embedding of one utterance (frozen encoder, no masking)."""
    return mean_pool(encoder(torch.from_numpy(np.ascontiguousarray(signal, dtype=np.float32))[None]))[0]


def embed_files(encoder, items: list[tuple[str, str]], sample_rate: int, max_seconds: float | None,
                desc: str = "embed") -> np.ndarray:
    """(files, dim) pooled embeddings; audio cut to max_seconds when set (speed on CPU)."""
    rows = []
    for utt, wav in tqdm(items, desc=desc, leave=False):
        signal = load_audio(wav, sample_rate, utt=utt, on_rate_mismatch="resample")[0]
        if max_seconds:
            signal = signal[: int(max_seconds * sample_rate)]
        rows.append(embed_signal(encoder, signal).numpy())
    return np.stack(rows).astype(np.float32)
