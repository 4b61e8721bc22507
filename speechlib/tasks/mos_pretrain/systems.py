"""The systems of the recipe: which encoder, which workers, which data; build, save, load, embed.

A system is a config entry `{encoder: pase|masked|logmel, data: noisy|clean, workers: [...],
plus: bool, train: bool, seeds: N}`; every row of the paper's tables is one system. It is
pre-trained once per seed of `pretrain_seeds` (the first N with `seeds: N`): its
runs live in exp/<tag>/encoders/<system>/seed<k>/ (encoder.pt + meta.json, all `predict` needs,
beside the kit's training files); `predict` loads the lowest seed's.
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
from speechlib.io.inference import equal_length_batches
from speechlib.nn.masked_encoder import LogMelEncoder, MaskedEncoder
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


def system_seeds(hp: dict, name: str) -> list[int]:
    seeds = [int(s) for s in hp["pretrain_seeds"]]
    return seeds[: int(hp["systems"][name].get("seeds", len(seeds)))]


def run_name(name: str, seed: int) -> str:
    """One (system, pre-training seed) run as the kit's system name: exp/<tag>/<run_name>/."""
    return f"encoders/{name}/seed{seed}"


def run_dir(exp_dir: str | Path, name: str, seed: int) -> Path:
    """Folder of one (system, pre-training seed) run."""
    return Path(exp_dir) / run_name(name, seed)


def model_dir(exp_dir: str | Path, name: str) -> Path:
    """What `predict` loads for a system: its first pre-training seed's run (lowest seed number
    present), else the system folder itself (external encoders; or a missing one, named)."""
    folder = system_dir(exp_dir, name)
    seeds = sorted((int(p.name[4:]), p) for p in folder.glob("seed*") if p.name[4:].isdigit())
    return seeds[0][1] if seeds else folder


def encoder_kwargs(hp: dict, spec: dict) -> dict:
    base = dict(hp[spec["encoder"]] or {})
    base.update(spec.get("arch", {}) or {})
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in base.items()}


def build_encoder(kind: str, kwargs: dict) -> torch.nn.Module:
    if kind == "pase":
        return PASEEncoder(**kwargs)
    if kind == "masked":
        return MaskedEncoder(**kwargs)
    if kind == "logmel":
        return LogMelEncoder(**kwargs)
    raise InputError(f"unknown encoder type '{kind}' (pase, masked or logmel)")


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


@torch.inference_mode()
def embed_signal(encoder: torch.nn.Module, signal: np.ndarray) -> torch.Tensor:
    """Mean-pooled frame embedding of one utterance (frozen encoder, no masking)."""
    return mean_pool(encoder(torch.from_numpy(np.ascontiguousarray(signal, dtype=np.float32))[None]))[0]


def file_identity(items: list[tuple[str, str]]) -> str:
    """Fingerprint of a file list: ids, paths, and each file's size and modification time, so a
    set re-drawn into the same file names (another seed, same counts) is a different list."""
    rows = []
    for utt, wav in items:
        stat = Path(wav).stat() if Path(wav).is_file() else None
        rows.append((utt, wav, stat.st_size if stat else None, stat.st_mtime_ns if stat else None))
    return fingerprint(rows)


def encoder_identity(folder: str | Path) -> str:
    """Fingerprint of a trained encoder: the bytes of its weights and its meta.json."""
    digest = hashlib.sha256()
    for name in ("encoder.pt", "meta.json"):
        path = Path(folder) / name
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@torch.inference_mode()
def embed_files(encoder, items: list[tuple[str, str]], sample_rate: int, max_seconds: float | None,
                desc: str = "embed", batch_size: int = 16) -> np.ndarray:
    """(files, dim) pooled embeddings; audio cut to max_seconds when set. Files of equal length are
    embedded together in batches (no padding, so batching changes nothing but speed)."""
    signals = []
    for utt, wav in items:
        signal = load_audio(wav, sample_rate, utt=utt, on_rate_mismatch="resample")[0]
        signals.append(signal[: int(max_seconds * sample_rate)] if max_seconds else signal)
    rows: list[np.ndarray | None] = [None] * len(signals)
    with tqdm(total=len(signals), desc=desc, leave=False, disable=None) as bar:
        for chunk in equal_length_batches([signal.size for signal in signals], batch_size):
            batch = torch.from_numpy(np.stack([signals[i] for i in chunk]).astype(np.float32))
            for i, row in zip(chunk, mean_pool(encoder(batch)).numpy()):
                rows[i] = row
            bar.update(len(chunk))
    return np.stack(rows).astype(np.float32)
