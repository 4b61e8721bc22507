"""One directory format for every model a user command loads (enhance, predict, protect, ...).

    <dir>/model.json   {"format": "speechlib-model", "version": 1,
                        "recipe": "se_uda", "kind": "enhancer", "system": "srst_similar",
                        "sample_rate": 16000,
                        "config": {"unet": {...constructor arguments...}},
                        "weights": {"unet": "unet.pt"}, "sha256": {"unet": "..."},
                        "provenance": {"recipe", "system", "git", "corpus", "date", "command"},
                        "extra": {...anything the recipe adds...}}
    <dir>/<module>.pt  state dicts only, read with torch.load(weights_only=True): loading a
                       model never runs code from the file.

Saving:   save_model_dir(path, recipe="se_uda", kind="enhancer", system="dann", sample_rate=16000,
                         modules={"unet": unet}, configs={"unet": unet.config}, corpus=hp["corpus"])
Loading:  md = load_model_dir(path, recipe="se_uda", kind="enhancer")
          unet = md.build("unet", SpeechNoiseUNet)

A directory of another recipe or kind is refused with one line naming both. model.json is written
last (atomic rename) and records each weight file's SHA-256, checked on loading: a save killed
between the weights and model.json is refused as incomplete, never loaded as a mismatched model.
Other files in the directory (a recipe's own notes, sub-models) are left alone.
It lives in speechlib/tasks because provenance (recipe, system, git revision, corpus) is what a
stage knows; it needs nothing above speechlib/nn to load.
"""
from __future__ import annotations

import datetime
import hashlib
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from speechlib.io.atomic import atomic_path, atomic_write_text
from speechlib.io.errors import InputError
from speechlib.results.environment import git_revision

FORMAT = "speechlib-model"
VERSION = 1
MANIFEST = "model.json"


@dataclass
class ModelDir:
    """A loaded model.json; weights are read on demand."""

    path: Path
    meta: dict

    @property
    def config(self) -> dict:
        return self.meta["config"]

    @property
    def sample_rate(self) -> int:
        return int(self.meta["sample_rate"])

    @property
    def provenance(self) -> dict:
        return self.meta["provenance"]

    @property
    def extra(self) -> dict:
        return self.meta.get("extra", {})

    def describe(self) -> str:
        return f"a {self.meta['recipe']} {self.meta['kind']} model (system {self.meta.get('system')})"

    def has(self, name: str) -> bool:
        return name in self.meta["weights"]

    def state_dict(self, name: str) -> dict[str, torch.Tensor]:
        if name not in self.meta["weights"]:
            raise InputError(f"{self.describe()} has no '{name}' weights", str(self.path))
        file = self.path / self.meta["weights"][name]
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            raise InputError("weights file missing (the model directory is incomplete)", str(file)) from None
        if hashlib.sha256(raw).hexdigest() != self.meta.get("sha256", {}).get(name):
            raise InputError(f"weights do not match {MANIFEST} (a save was interrupted, or the file was "
                             "replaced): re-run the stage that trains it", str(file))
        try:
            return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
        except Exception as err:  # an unpickling error means a damaged or foreign file
            raise InputError(f"cannot load weights: {err}".splitlines()[0], str(file)) from None

    def build(self, name: str, factory: Callable[..., torch.nn.Module]) -> torch.nn.Module:
        """factory(**config[name]) with its weights loaded (strict), in eval mode."""
        module = factory(**self.config.get(name, {}))
        try:
            module.load_state_dict(self.state_dict(name))
        except RuntimeError as err:
            raise InputError(f"weights '{name}' do not fit the architecture in {MANIFEST}: "
                             f"{str(err).splitlines()[0]}", str(self.path)) from None
        return module.eval()


def provenance(recipe: str, system: str, corpus: str) -> dict[str, str]:
    return {"recipe": recipe, "system": system, "git": git_revision(), "corpus": corpus,
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def save_model_dir(path: str | Path, *, recipe: str, kind: str, system: str, sample_rate: int,
                   modules: dict[str, torch.nn.Module | dict], configs: dict[str, dict], corpus: str,
                   extra: dict | None = None) -> Path:
    """Write (or replace) the model in `path`: modules (or bare state dicts), then model.json."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    weights, digests = {}, {}
    for name, module in modules.items():
        state = module.state_dict() if isinstance(module, torch.nn.Module) else module
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in state.items()}, buffer)
        weights[name], digests[name] = f"{name}.pt", hashlib.sha256(buffer.getvalue()).hexdigest()
        with atomic_path(path / weights[name], suffix=".pt") as tmp:
            tmp.write_bytes(buffer.getvalue())
    meta = {"format": FORMAT, "version": VERSION, "recipe": recipe, "kind": kind, "system": system,
            "sample_rate": int(sample_rate), "config": _jsonable(configs), "weights": weights,
            "sha256": digests, "provenance": provenance(recipe, system, str(corpus)),
            "extra": _jsonable(extra or {})}
    atomic_write_text(path / MANIFEST, json.dumps(meta, indent=1) + "\n")
    return path


def find_model_dir(path: str | Path, *below: str | Path) -> Path:
    """`path` when it holds a model.json, else the first `path/<below>` that does (an experiment
    dir given where a model dir is meant); when none does, the first `path/<below>`, so that the
    loader's complaint names the directory that was looked for (e.g. the --system's)."""
    path = Path(path)
    candidates = [path, *(path / b for b in below)]
    for candidate in candidates:
        if (candidate / MANIFEST).is_file():
            return candidate
    return candidates[1] if below and path.is_dir() else path


def load_model_dir(path: str | Path, recipe: str, kind: str | tuple[str, ...]) -> ModelDir:
    """Read model.json, refusing (one line) anything but a `recipe` model of `kind`."""
    path = Path(path)
    kinds = (kind,) if isinstance(kind, str) else kind
    want = f"a {recipe} {' or '.join(kinds)} model"
    manifest = path / MANIFEST
    if not manifest.is_file():
        reason = "does not exist" if not path.exists() else f"has no {MANIFEST}"
        raise InputError(f"not a model directory ({reason}); expected {want}", str(path))
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"damaged {MANIFEST}: {err}", str(manifest)) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"not a speechlib model directory; expected {want}", str(path))
    if int(meta.get("version", 0)) > VERSION:
        raise InputError(f"written by a newer speechlib (format version {meta['version']} > {VERSION})", str(path))
    found = ModelDir(path, meta)
    if meta.get("recipe") != recipe or meta.get("kind") not in kinds:
        raise InputError(f"this is {found.describe()}, not {want}", str(path))
    missing = [k for k in ("config", "weights", "sha256", "sample_rate", "provenance") if k not in meta]
    if missing:
        raise InputError(f"{MANIFEST} lacks {', '.join(missing)}", str(manifest))
    return found
