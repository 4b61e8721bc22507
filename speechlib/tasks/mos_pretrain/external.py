"""Encoders with public weights (wav2vec 2.0 Base, HuBERT Base, Dasheng Base), from a local directory.

Hubs cannot be reached from our machines, so these load only from the directory db.sh names
(WAV2VEC2_DIR, HUBERT_DIR: Hugging Face transformers layout; DASHENG_DIR: a checkpoint the
`dasheng` package loads). Without one, the system's table row says why it was not run.
"""
from __future__ import annotations

from pathlib import Path

import torch


class NotRunnable(Exception):
    """The system cannot run here; the message goes into the table cell."""


class _FrameWrapper(torch.nn.Module):
    """Waveform (batch, samples) -> last hidden states (batch, frames, dim)."""

    def __init__(self, model: torch.nn.Module, kind: str):
        super().__init__()
        self.model, self.kind = model.eval(), kind

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if self.kind == "dasheng":
            return self.model(wav)
        return self.model(wav).last_hidden_state


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
        model = AutoModel.from_pretrained(str(path))
        dim = int(model.config.hidden_size)
    elif name == "dasheng":
        try:
            import dasheng
        except ImportError:
            raise NotRunnable("not run: the dasheng package is not installed") from None
        model = dasheng.dasheng_base(pretrained=False)
        model.load_state_dict(torch.load(path / "model.pt", map_location="cpu"), strict=False)
        dim = 768
    else:
        raise NotRunnable(f"not run: unknown external encoder {name}")
    wrapper = _FrameWrapper(model, name)
    return wrapper, {"emb_dim": dim, "encoder_params": int(sum(p.numel() for p in model.parameters())),
                     "external": str(path)}
