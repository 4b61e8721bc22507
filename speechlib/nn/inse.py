"""An InSE-Net-style stereo quality network (Jiang et al. 2021; Biswas & Jiang 2022):
Inception blocks with squeeze-and-excitation over gammatone spectrograms of reference/coded pairs.

No InSE-Net code is public; this follows the papers' description (see egs/mushra_gml/README.md
for the choices): one pair encoder, shared by the four channel pairs L, R, M, S (the Stereo
InSE-Net idea: a mono model applied to each pair, then combined), whose input planes are the
reference, the coded signal and their difference (log gammatone magnitudes); Inception blocks
(1x1, 3x3, double-3x3 and pool branches) each followed by a squeeze-and-excitation gate and 2x2
max pooling (an optional strided stem cuts the cost of small configs); global average pooling over frequency and time (any excerpt length); the four pair
embeddings are gated by another SE and mapped by an MLP to `outputs` values: 2 for the GML
(mu, log scale) and 1 for the mean-score regressor ("non-GML").
"""
from __future__ import annotations

import torch
from torch import nn


class SqueezeExcitation(nn.Module):
    """Channel gate (Hu et al. 2018): global average -> FC -> ReLU -> FC -> sigmoid -> scale."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = x.mean(dim=tuple(range(2, x.dim()))) if x.dim() > 2 else x
        weights = self.gate(squeezed)
        return x * weights.reshape(weights.shape + (1,) * (x.dim() - 2))


def _conv(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class InceptionSE(nn.Module):
    """Inception block (4 branches of `branch` channels each) + SE gate + 2x2 max pooling."""

    def __init__(self, c_in: int, branch: int, reduction: int = 4):
        super().__init__()
        self.branches = nn.ModuleList([
            _conv(c_in, branch, 1),
            nn.Sequential(_conv(c_in, branch, 1), _conv(branch, branch, 3)),
            nn.Sequential(_conv(c_in, branch, 1), _conv(branch, branch, 3), _conv(branch, branch, 3)),
            nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), _conv(c_in, branch, 1)),
        ])
        self.se = SqueezeExcitation(4 * branch, reduction)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.se(torch.cat([branch(x) for branch in self.branches], dim=1)))


class StereoInSENet(nn.Module):
    """features (batch, 4 pairs, 2 [ref, coded], bands, frames) -> (batch, outputs)."""

    def __init__(self, outputs: int = 2, stem: int = 16, branches: tuple[int, ...] = (8, 16),
                 hidden: int = 64, reduction: int = 4, dropout: float = 0.0,
                 stem_stride: tuple[int, int] = (1, 1)):
        super().__init__()
        self.outputs = outputs
        self.input_norm = nn.BatchNorm2d(3)
        blocks, c_in = [], stem
        for branch in branches:
            blocks.append(InceptionSE(c_in, branch, reduction))
            c_in = 4 * branch
        stem_conv = nn.Sequential(nn.Conv2d(3, stem, 3, stride=tuple(stem_stride), padding=1, bias=False),
                                  nn.BatchNorm2d(stem), nn.ReLU(inplace=True))
        self.encoder = nn.Sequential(stem_conv, *blocks)
        self.pair_gate = SqueezeExcitation(4 * c_in, reduction)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * c_in, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, outputs))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, pairs = features.shape[:2]
        ref, coded = features[:, :, 0], features[:, :, 1]
        planes = torch.stack([ref, coded, coded - ref], dim=2).flatten(0, 1)  # (B*4, 3, F, T)
        embedded = self.encoder(self.input_norm(planes)).mean(dim=(2, 3))     # (B*4, C)
        return self.head(self.pair_gate(embedded.reshape(batch, -1)))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
