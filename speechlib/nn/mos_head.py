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
        # per-dimension standardisation of the pooled embedding (training-set statistics, set
        # before training and saved with the head): see MOSHeadEnsemble.set_input_stats
        self.register_buffer("in_mean", torch.zeros(in_dim))
        self.register_buffer("in_std", torch.ones(in_dim))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """(batch, dim) -> (batch,) scores in [low, high]."""
        pooled = (pooled - self.in_mean) / self.in_std
        x = self.dropout(torch.relu(self.norm(self.hidden(pooled))))
        return self.out(x).squeeze(-1).clamp(self.low, self.high)


class MOSHeadEnsemble(torch.nn.Module):
    """`count` independent MOSHeads evaluated as one batched module (one per head seed).

    Head k's parameters are slice k of each stacked tensor and its loss depends only on them, and
    Adam (weight decay included) acts element by element, so training the stack on the sum of
    the heads' losses is exactly training each head alone, in a third of the Python overhead.
    `head(k)` returns head k as a plain MOSHead (same state-dict keys).
    """

    def __init__(self, count: int, in_dim: int, hidden: int = 64, dropout: float = 0.2, low: float = 1.0,
                 high: float = 5.0, seeds: list[int] | None = None):
        super().__init__()
        heads = []
        for k in range(count):
            if seeds is not None:
                torch.manual_seed(int(seeds[k]))
            heads.append(MOSHead(in_dim, hidden, dropout, low, high))
        self.count, self.low, self.high, self.dropout = count, low, high, dropout
        for name in ("hidden.weight", "hidden.bias", "norm.weight", "norm.bias", "out.weight", "out.bias"):
            stacked = torch.stack([h.state_dict()[name] for h in heads])
            self.register_parameter(name.replace(".", "_"), torch.nn.Parameter(stacked.clone()))
        self.template = (in_dim, hidden, dropout, low, high)
        self.register_buffer("in_mean", torch.zeros(in_dim))
        self.register_buffer("in_std", torch.ones(in_dim))

    def set_input_stats(self, train: torch.Tensor) -> None:
        """Standardise inputs with the training embeddings' mean and std per dimension.

        Why: a frozen encoder's pooled embeddings share a large common offset and differ between
        files by small amounts (mean-pooled log-mel: offset ~ -1.4, std 2.0 across bands, while a
        band varies across files by a fraction of that); the hidden layer's LayerNorm then sees
        mostly the offset and the head learns the label mean. Measured on the mini VCC-style set,
        log-mel control: test LCC 0.01 without, 0.15 with standardisation (README)."""
        self.in_mean.copy_(train.mean(0))
        self.in_std.copy_(train.std(0).clamp_min(1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (count, batch, dim) (a batch per head) or (batch, dim) (shared) -> (count, batch)."""
        x = (x - self.in_mean) / self.in_std
        if x.dim() == 2:
            x = x.expand(self.count, *x.shape)
        h = torch.baddbmm(self.hidden_bias[:, None], x, self.hidden_weight.transpose(1, 2))
        h = torch.nn.functional.layer_norm(h, h.shape[-1:]) * self.norm_weight[:, None] + self.norm_bias[:, None]
        h = torch.nn.functional.dropout(torch.relu(h), self.dropout, self.training)
        out = torch.baddbmm(self.out_bias[:, None], h, self.out_weight.transpose(1, 2)).squeeze(-1)
        return out.clamp(self.low, self.high)

    def head_state(self, k: int) -> dict[str, torch.Tensor]:
        state = {name: getattr(self, name.replace(".", "_"))[k].detach().clone()
                 for name in ("hidden.weight", "hidden.bias", "norm.weight", "norm.bias", "out.weight", "out.bias")}
        return {**state, "in_mean": self.in_mean.clone(), "in_std": self.in_std.clone()}

    def head(self, k: int) -> MOSHead:
        head = MOSHead(*self.template)
        head.load_state_dict(self.head_state(k))
        return head.eval()
