"""SSED: the symmetric saliency-based encoder-decoder that writes a speaker perturbation.

Waveform in, waveform out. A shared encoder E maps x to a latent y; the noise decoder G_N and
the mask decoder G_M, of identical shape, decode y into a noise vector n (tanh, in [-1, 1]) and
a saliency mask m (sigmoid: the "normalisation" of the mask representation). The perturbation
is delta = eps * (n * m), so |delta| <= eps per sample.

No waveform SSED code is public; this is the 1-D reading of the image-domain SSAE shape the
paper cites (a wide first convolution, strided down-sampling convolutions, residual blocks, and
a mirrored up-sampling path per decoder). The same class serves as the perturbation generator
F_P and, fed x', as the removal module F_R (the paper: "F_R and F_P share the same structure").
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """Two 3-tap convolutions with a skip: depth without losing the input's detail."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(channels, channels, 3, padding=1), nn.GroupNorm(1, channels), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, padding=1), nn.GroupNorm(1, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


def _down(c_in: int, c_out: int, stride: int) -> nn.Module:
    return nn.Sequential(nn.Conv1d(c_in, c_out, 2 * stride, stride=stride, padding=stride // 2),
                         nn.GroupNorm(1, c_out), nn.ReLU())


def _up(c_in: int, c_out: int, stride: int) -> nn.Module:
    return nn.Sequential(nn.ConvTranspose1d(c_in, c_out, 2 * stride, stride=stride, padding=stride // 2),
                         nn.GroupNorm(1, c_out), nn.ReLU())


class Decoder(nn.Module):
    """Mirror of the encoder's down-sampling path, ending in one output channel."""

    def __init__(self, channels: list[int], strides: list[int], kernel: int, activation: nn.Module):
        super().__init__()
        layers: list[nn.Module] = []
        for index in range(len(strides) - 1, -1, -1):
            layers.append(_up(channels[index + 1], channels[index], strides[index]))
        self.up = nn.Sequential(*layers)
        self.out = nn.Conv1d(channels[0], 1, kernel, padding=kernel // 2)
        self.activation = activation

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.activation(self.out(self.up(y)))


@dataclass
class SSEDOutput:
    """What one SSED pass gives: the output waveform and the two vectors that made it."""

    wav: torch.Tensor   # x + eps * n * m, shape (batch, time)
    noise: torch.Tensor  # n in [-1, 1]
    mask: torch.Tensor   # m in [0, 1]


class SSED(nn.Module):
    """Noise&mask generator plus the additive step x + eps * (n * m).

    channels: [c0, c1, ..., cK]: c0 after the 7-tap input convolution, one down-sampling stage
    per stride. Inputs of any length are padded to a multiple of the total stride and the
    outputs cropped back, so the model is length-agnostic.
    """

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128), strides: tuple[int, ...] = (2, 2),
                 residual_blocks: int = 6, kernel: int = 7, eps: float = 0.05):
        super().__init__()
        channels, strides = list(channels), list(strides)
        if len(channels) != len(strides) + 1:
            raise ValueError(f"SSED: {len(channels)} channel sizes need {len(channels) - 1} strides, got {len(strides)}")
        self.eps = eps
        self.hop = 1
        for stride in strides:
            self.hop *= stride
        self.encoder = nn.Sequential(
            nn.Conv1d(1, channels[0], kernel, padding=kernel // 2), nn.GroupNorm(1, channels[0]), nn.ReLU(),
            *[_down(channels[i], channels[i + 1], strides[i]) for i in range(len(strides))],
            *[ResidualBlock(channels[-1]) for _ in range(residual_blocks)])
        self.noise_decoder = Decoder(channels, strides, kernel, nn.Tanh())
        self.mask_decoder = Decoder(channels, strides, kernel, nn.Sigmoid())
        self.receptive_field = self._receptive_field(kernel, strides, residual_blocks)

    @staticmethod
    def _receptive_field(kernel: int, strides: list[int], residual_blocks: int) -> int:
        """Input samples one encoder output frame sees (the shortest input worth processing)."""
        field, jump = kernel, 1
        for stride in strides:
            field += (2 * stride - 1) * jump
            jump *= stride
        field += residual_blocks * 2 * 2 * jump
        return field

    def noise_and_mask(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, time) -> n, m of the same shape."""
        length = wav.shape[-1]
        padded = -(-length // self.hop) * self.hop
        x = nn.functional.pad(wav, (0, padded - length)).unsqueeze(1)
        latent = self.encoder(x)
        noise = self.noise_decoder(latent)[:, 0, :length]
        mask = self.mask_decoder(latent)[:, 0, :length]
        return noise, mask

    def forward(self, wav: torch.Tensor) -> SSEDOutput:
        noise, mask = self.noise_and_mask(wav)
        return SSEDOutput(wav + perturbation(noise, mask, self.eps), noise, mask)


def perturbation(noise: torch.Tensor, mask: torch.Tensor, eps: float) -> torch.Tensor:
    """delta = eps * (n * m), eqs. (1) and (5)."""
    return eps * (noise * mask)
