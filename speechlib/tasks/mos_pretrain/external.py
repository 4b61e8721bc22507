"""Encoders with public weights (wav2vec 2.0 Base, HuBERT Base, Dasheng Base), from a local directory.

Hubs cannot be reached from our machines, so these load only from the directory db.sh names
(WAV2VEC2_DIR, HUBERT_DIR: Hugging Face transformers layout; DASHENG_DIR: a checkpoint the
`dasheng` package loads). Without one, the system's table row says why it was not run.

Each model gets its input the way its checkpoint expects: wav2vec 2.0 / HuBERT through the
checkpoint's own feature extractor settings (preprocessor_config.json: zero-mean unit-variance
normalisation of every utterance when `do_normalize` is set, as the base checkpoints do), and
weights load with strict=True: a checkpoint whose keys do not match the model is refused with
one line naming the missing and unexpected keys (a partial load would leave random weights).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from speechlib.io.errors import InputError


class NotRunnable(Exception):
    """The system cannot run here; the message goes into the table cell."""


class _FrameWrapper(torch.nn.Module):
    """Waveform (batch, samples) -> last hidden states (batch, frames, dim), after the
    checkpoint's own input normalisation (`normalize`: per-utterance zero mean, unit variance)."""

    def __init__(self, model: torch.nn.Module, kind: str, normalize: bool = False):
        super().__init__()
        self.model, self.kind, self.normalize = model.eval(), kind, normalize

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if self.normalize:  # what transformers' Wav2Vec2FeatureExtractor does with do_normalize
            wav = (wav - wav.mean(-1, keepdim=True)) / torch.sqrt(wav.var(-1, keepdim=True, unbiased=False) + 1e-7)
        if self.kind == "dasheng":
            return self.model(wav)
        return self.model(wav).last_hidden_state


def load_strict(model: torch.nn.Module, state: dict, source: str) -> None:
    """load_state_dict(strict=True); a mismatch is one InputError naming the keys."""
    missing, unexpected = model.state_dict().keys() - state.keys(), state.keys() - model.state_dict().keys()
    if missing or unexpected:
        def show(keys):
            keys = sorted(keys)
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "") if keys else "none"
        raise InputError(f"checkpoint does not match the model: missing keys {show(missing)}; unexpected keys "
                         f"{show(unexpected)}", source)
    model.load_state_dict(state, strict=True)


def feature_extractor_normalizes(path: Path) -> bool:
    """`do_normalize` of the checkpoint's preprocessor_config.json (transformers' default: True)."""
    config = path / "preprocessor_config.json"
    if not config.is_file():
        raise InputError("no preprocessor_config.json: the checkpoint's input normalisation is unknown", str(path))
    return bool(json.loads(config.read_text()).get("do_normalize", True))


def load_external(name: str, directory: str | None) -> tuple[torch.nn.Module, dict]:
    if not directory or not str(directory).strip():
        raise NotRunnable("not run: no local weights")
    path = Path(str(directory).strip())
    if not path.is_dir():
        raise NotRunnable(f"not run: {path} is not a directory")
    if name in ("wav2vec2", "hubert"):
        try:
            from transformers import AutoModel
        except ImportError:
            raise NotRunnable("not run: the transformers package is not installed") from None
        normalize = feature_extractor_normalizes(path)
        model = AutoModel.from_pretrained(str(path))
        dim = int(model.config.hidden_size)
    elif name == "dasheng":
        try:
            import dasheng
        except ImportError:
            raise NotRunnable("not run: the dasheng package is not installed") from None
        model = dasheng.dasheng_base(pretrained=False)
        load_strict(model, torch.load(path / "model.pt", map_location="cpu", weights_only=True), str(path / "model.pt"))
        dim, normalize = 768, False
    else:
        raise NotRunnable(f"not run: unknown external encoder {name}")
    wrapper = _FrameWrapper(model, name, normalize)
    return wrapper, {"emb_dim": dim, "encoder_params": int(sum(p.numel() for p in model.parameters())),
                     "external": str(path)}
