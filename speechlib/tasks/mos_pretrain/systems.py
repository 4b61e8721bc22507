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

from speechlib.io.atomic import atomic_path, atomic_write_text
from speechlib.io.audio import load_audio
from speechlib.io.errors import InputError
from speechlib.nn.masked_encoder import MaskedEncoder
from speechlib.nn.mos_head import mean_pool
from speechlib.nn.pase import PASEEncoder

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


def save_encoder(folder: Path, encoder: torch.nn.Module, kind: str, kwargs: dict, meta: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "encoder.pt", suffix=".pt") as tmp:
        torch.save(encoder.state_dict(), tmp)
    atomic_write_text(folder / "meta.json", json.dumps({"encoder": kind, "kwargs": kwargs, **meta}, indent=1) + "\n")


def load_encoder(folder: str | Path) -> tuple[torch.nn.Module, dict]:
    folder = Path(folder)
    if not (folder / "meta.json").is_file() or not (folder / "encoder.pt").is_file():
        raise InputError("not a trained encoder (encoder.pt and meta.json missing): run stages 2-4", str(folder))
    meta = json.loads((folder / "meta.json").read_text())
    encoder = build_encoder(meta["encoder"], meta["kwargs"])
    encoder.load_state_dict(torch.load(folder / "encoder.pt", map_location="cpu", weights_only=True))
    return encoder.eval(), meta


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
