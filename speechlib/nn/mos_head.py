"""The downstream MOS network on a frozen encoder.

Paper: one hidden layer of 64, LayerNorm, ReLU, dropout 0.2 before the output, output
range-clipped to [1, 5]. The paper does not say how frames become one score: we average the
encoder's frame embeddings over time (mean pooling) and apply the MLP to the average. Range
clipping is a hard clamp of the output; the output bias starts at the middle of the range (3) so
that the clamp does not block gradients at the start of training.
"""
from __future__ import annotations

import torch


def mean_pool(emb: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """(batch, frames, dim) -> (batch, dim); `lengths` relative (0..1] as SpeechBrain gives them."""
    if lengths is None:
        return emb.mean(dim=1)
    frames = emb.shape[1]
    valid = (torch.arange(frames, device=emb.device)[None, :] < (lengths * frames).round().clamp_min(1)[:, None])
    valid = valid.to(emb.dtype).unsqueeze(-1)
    return (emb * valid).sum(1) / valid.sum(1)


class MOSHead(torch.nn.Module):
    def __init__(self, in_dim: int, hidden: int = 64, dropout: float = 0.2, low: float = 1.0, high: float = 5.0):
        super().__init__()
        self.low, self.high = low, high
        self.hidden = torch.nn.Linear(in_dim, hidden)
        self.norm = torch.nn.LayerNorm(hidden)
        self.dropout = torch.nn.Dropout(dropout)
        self.out = torch.nn.Linear(hidden, 1)
        torch.nn.init.constant_(self.out.bias, (low + high) / 2.0)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """(batch, dim) -> (batch,) scores in [low, high]."""
        x = self.dropout(torch.relu(self.norm(self.hidden(pooled))))
        return self.out(x).squeeze(-1).clamp(self.low, self.high)
