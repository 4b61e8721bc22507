"""PASE's self-supervised workers and the three supervised noise workers, as one configurable set.

A worker takes the encoder's frame embeddings (batch, frames, dim) and returns its loss. The set
of workers is a list of names in the config, so every ablation of the paper's Table I is one
config. Targets come from `targets` (a dict the trainer fills: lps, mfcc, prosody, ...);
the self-supervised discriminators (LIM, GIM, SPC) draw their negatives from the other
utterances of the batch (rolled by one).

Noise workers: an MLP (one 256-unit hidden layer, PReLU) on the time-averaged embedding,
cross-entropy. Eq. (1) of the paper prints L = L_ssl - alpha L_eng - beta L_noise - gamma L_snr;
the text says the workers *learn* the noise and embed it in the representation. We read the
minus signs as the text does: `noise_mode: learn` adds alpha L_eng + beta L_noise + gamma L_snr,
and encoder and workers both minimise it. The adversarial reading (a noise-blind embedding) is
`noise_mode: adversarial`: a gradient-reversal layer sits between the embedding and the noise
workers, so each classifier still minimises its cross-entropy while the encoder, receiving the
negated gradient, maximises it (Ganin et al. 2016). A plain sign flip would instead make the
classifiers climb their own loss, an unbounded objective; it is not offered.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from speechlib.nn.layers import reverse_gradient
from speechlib.signal.noise_labels import CATEGORY_CLASSES, REGION_CLASSES, SNR_CLASSES

SSL_WORKERS = ("waveform", "lps", "mfcc", "prosody", "lim", "gim", "spc")
NOISE_WORKERS = {"snr": SNR_CLASSES, "category": CATEGORY_CLASSES, "region": REGION_CLASSES}
PLUS_WORKERS = ("fbank", "lps_long", "mfcc_long", "fbank_long")
HIDDEN = 256
NOISE_MODES = ("learn", "adversarial")


class FrameMLP(torch.nn.Module):
    """One hidden layer of 256 (1x1 conv + PReLU) and a 1x1 output conv, applied per frame."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = HIDDEN):
        super().__init__()
        self.hidden = torch.nn.Linear(in_dim, hidden)
        self.act = torch.nn.PReLU(hidden)
        self.out = torch.nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, [frames,] in_dim) -> (batch, [frames,] out_dim); PReLU is per hidden unit."""
        h = self.hidden(x)
        h = self.act(h.transpose(1, 2)).transpose(1, 2) if h.dim() == 3 else self.act(h)
        return self.out(h)


class WaveformDecoder(torch.nn.Module):
    """Transposed convs back to samples (strides multiply to the encoder hop), then 64 units, 1 out."""

    def __init__(self, in_dim: int, channels: Sequence[int] = (512, 256, 128), strides: Sequence[int] = (4, 4, 10),
                 kernel: int = 30):
        super().__init__()
        layers, prev = [], in_dim
        for ch, stride in zip(channels, strides):
            pad = (kernel - stride) // 2
            layers += [torch.nn.ConvTranspose1d(prev, ch, kernel, stride=stride, padding=pad), torch.nn.PReLU(ch)]
            prev = ch
        layers += [torch.nn.Conv1d(prev, 64, 1), torch.nn.PReLU(64), torch.nn.Conv1d(64, 1, 1)]
        self.net = torch.nn.Sequential(*layers)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.net(emb.transpose(1, 2)).squeeze(1)


def _fit(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut two frame sequences (or waveforms) to their common length."""
    n = min(a.shape[1], b.shape[1])
    return a[:, :n], b[:, :n]


def _bce_pair(disc: torch.nn.Module, anchor: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    logits = torch.cat([disc(torch.cat([anchor, pos], -1)), disc(torch.cat([anchor, neg], -1))]).squeeze(-1)
    labels = torch.cat([torch.ones(len(anchor)), torch.zeros(len(anchor))]).to(logits)
    return F.binary_cross_entropy_with_logits(logits, labels)


class WorkerSet(torch.nn.Module):
    """The workers named in `names`; `forward` returns {name: loss} and the weighted total."""

    def __init__(self, names: Sequence[str], emb_dim: int, target_dims: dict[str, int],
                 noise_weights: dict[str, float] | None = None, noise_mode: str = "learn", spc_offset: int = 5,
                 waveform_decoder: dict | None = None):
        super().__init__()
        known = set(SSL_WORKERS) | set(NOISE_WORKERS) | set(PLUS_WORKERS)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown worker(s) {unknown}; known: {sorted(known)}")
        self.names = list(names)
        self.noise_weights = {k: float(v) for k, v in (noise_weights or {}).items()}
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode '{noise_mode}' is not one of {NOISE_MODES}")
        self.noise_mode = noise_mode
        self.spc_offset = spc_offset
        self.workers = torch.nn.ModuleDict()
        for name in self.names:
            if name == "waveform":
                self.workers[name] = WaveformDecoder(emb_dim, **(waveform_decoder or {}))
            elif name in ("lim", "gim"):
                self.workers[name] = FrameMLP(2 * emb_dim, 1)
            elif name == "spc":
                self.workers[name] = FrameMLP((1 + spc_offset) * emb_dim, 1)
            elif name in NOISE_WORKERS:
                self.workers[name] = FrameMLP(emb_dim, NOISE_WORKERS[name])
            else:
                self.workers[name] = FrameMLP(emb_dim, target_dims[name])

    def regression_targets(self) -> list[str]:
        return [n for n in self.names if n not in NOISE_WORKERS and n not in ("waveform", "lim", "gim", "spc")]

    def forward(self, emb: torch.Tensor, targets: dict[str, torch.Tensor], generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        losses: dict[str, torch.Tensor] = {}
        batch, frames, _ = emb.shape
        other = torch.roll(torch.arange(batch), 1)
        for name in self.names:
            worker = self.workers[name]
            if name == "waveform":
                pred, ref = _fit(worker(emb), targets["waveform"])
                losses[name] = F.l1_loss(pred, ref)
            elif name == "lim":
                t = torch.randint(frames, (batch,), generator=generator)
                t2 = torch.randint(frames, (batch,), generator=generator)
                rows = torch.arange(batch)
                losses[name] = _bce_pair(worker, emb[rows, t], emb[rows, t2], emb[other, t2])
            elif name == "gim":
                half = max(frames // 2, 1)
                first, second = emb[:, :half].mean(1), emb[:, half:].mean(1) if frames > 1 else emb[:, :1].mean(1)
                losses[name] = _bce_pair(worker, first, second, second[other])
            elif name == "spc":
                k = self.spc_offset
                if frames <= 2 * k:
                    raise ValueError(f"SPC needs more than {2 * k} frames, got {frames}")
                t = torch.randint(k, frames - k, (batch,), generator=generator)
                rows = torch.arange(batch)
                future = torch.stack([emb[rows, t + j] for j in range(1, k + 1)], 1).flatten(1)
                past = torch.stack([emb[rows, t - j] for j in range(1, k + 1)], 1).flatten(1)
                losses[name] = _bce_pair(worker, emb[rows, t], future, past)
            elif name in NOISE_WORKERS:
                pooled = emb.mean(1)
                logits = worker(reverse_gradient(pooled) if self.noise_mode == "adversarial" else pooled)
                losses[name] = F.cross_entropy(logits, targets[name])
            else:
                pred, ref = _fit(worker(emb), targets[name])
                losses[name] = F.mse_loss(pred, ref)
        total = emb.new_zeros(())
        for name, loss in losses.items():
            if name in NOISE_WORKERS:
                total = total + self.noise_weights.get(name, 0.1) * loss
            else:
                total = total + loss
        return total, losses
