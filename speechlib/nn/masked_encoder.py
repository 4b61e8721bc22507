"""A Mockingjay-style masked encoder on log-mel spectrograms.

Transformer encoder (3 layers, 8 heads, feed-forward 1024, hidden 256, dropout 0.1, sinusoidal
positional encoding) over an input projection of the log-mel frames; pre-training reconstructs
the masked frames with an L1 loss on the masked positions only. Masking (`mask_frames`): 15% of
each utterance's frames; per utterance one choice, drawn once, of zeroing them (80%), replacing
them by random frames of the batch (10%), or leaving them unchanged (10%), as in Mockingjay.
"""
from __future__ import annotations

import math

import torch

from speechlib.signal.features import log_mel


class SinusoidalPositions(torch.nn.Module):
    def __init__(self, dim: int, max_len: int = 20000):
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        table = torch.zeros(max_len, dim)
        table[:, 0::2] = torch.sin(pos * div)
        table[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("table", table, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table[: x.shape[1]]


class MaskedEncoder(torch.nn.Module):
    """Waveform (batch, samples) -> embeddings (batch, frames, hidden); 10 ms frames."""

    def __init__(self, n_mels: int = 80, hidden: int = 256, layers: int = 3, heads: int = 8, ff: int = 1024,
                 dropout: float = 0.1, sample_rate: int = 16000):
        super().__init__()
        self.n_mels, self.emb_dim, self.sample_rate, self.hop = n_mels, hidden, sample_rate, 160
        self.input_proj = torch.nn.Linear(n_mels, hidden)
        self.positions = SinusoidalPositions(hidden)
        self.input_norm = torch.nn.LayerNorm(hidden)
        layer = torch.nn.TransformerEncoderLayer(hidden, heads, ff, dropout, batch_first=True, activation="gelu")
        self.transformer = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.dropout = torch.nn.Dropout(dropout)

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """Per-utterance mean-normalised log-mel (dB / 10), (batch, frames, n_mels)."""
        mel = log_mel(wav, self.sample_rate, self.n_mels) / 10.0
        return mel - mel.mean(dim=1, keepdim=True)

    def encode(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.input_norm(self.positions(self.input_proj(feats))))
        return self.transformer(x)

    def forward(self, wav: torch.Tensor | None = None, feats: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings of a waveform, or of ready (e.g. masked) features: pre-training passes
        `feats=` so that the encoder still runs through DDP's wrapper."""
        return self.encode(self.features(wav) if feats is None else feats)


def mask_frames(feats: torch.Tensor, proportion: float = 0.15, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (masked copy, mask (batch, frames) bool, mode per utterance: 0 zero, 1 random, 2 unchanged)."""
    batch, frames, _ = feats.shape
    count = max(1, int(round(proportion * frames)))
    scores = torch.rand(batch, frames, generator=generator)
    chosen = scores.argsort(dim=1)[:, :count]
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    mask.scatter_(1, chosen, True)
    draw = torch.rand(batch, generator=generator)
    mode = torch.where(draw < 0.8, 0, torch.where(draw < 0.9, 1, 2))
    masked = feats.clone()
    mask_dev = mask.to(feats.device)
    zero = (mode == 0).to(feats.device)[:, None] & mask_dev
    masked[zero] = 0.0
    rand_rows = (mode == 1).to(feats.device)[:, None] & mask_dev
    if rand_rows.any():
        flat = feats.reshape(-1, feats.shape[-1])
        pick = torch.randint(flat.shape[0], (int(rand_rows.sum()),), generator=generator).to(feats.device)
        masked[rand_rows] = flat[pick]
    return masked, mask_dev, mode


class LogMelEncoder(torch.nn.Module):
    """A parameter-free control "encoder": log-mel frames (dB / 10), (batch, frames, n_mels).

    Mean-pooled, it is the simplest spectral baseline a learned encoder has to beat; no
    per-utterance normalisation, so level and noise floor stay visible to the MOS head.
    """

    def __init__(self, n_mels: int = 40, sample_rate: int = 16000):
        super().__init__()
        self.n_mels, self.emb_dim, self.sample_rate, self.hop = n_mels, n_mels, sample_rate, 160

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return log_mel(wav, self.sample_rate, self.n_mels) / 10.0
