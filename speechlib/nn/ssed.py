"""SSED: the symmetric saliency-based encoder-decoder that writes a speaker perturbation.

Waveform in, waveform out. A shared encoder E maps x to a latent y; the noise decoder G_N and
the mask decoder G_M, of identical shape, decode y into a noise vector n (tanh, in [-1, 1]) and
a saliency mask m (sigmoid: the "normalisation" of the mask representation). The perturbation
is delta = eps * (n * m), so |delta| <= eps per sample.

No waveform SSED code is public; this is the 1-D reading of the image-domain SSAE shape the
paper cites (a wide first convolution, strided down-sampling convolutions, residual blocks, and
a mirrored up-sampling path per decoder). The same class serves as the perturbation generator
F_P and, fed x', as the removal module F_R (the paper: "F_R and F_P share the same structure").

Inference (no autograd: protect, restore, the recipe's evaluation sets) takes a faster, equal
path, `fused_noise_and_mask`: the two decoders run as one network of grouped convolutions (one
call per layer for both), and every transposed convolution runs as its polyphase ("sub-pixel")
equivalent, an ordinary 2-tap convolution to stride x channels followed by interleaving, because
PyTorch's CPU transposed convolution is several times slower than its plain one. The weights are
rearranged from the trained modules at each call (microseconds), so the path can never go stale.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional


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
        """(batch, time) -> n, m of the same shape (the fused path when no gradient is needed)."""
        length = wav.shape[-1]
        padded = -(-length // self.hop) * self.hop
        x = nn.functional.pad(wav, (0, padded - length)).unsqueeze(1)
        latent = self.encoder(x)
        if not torch.is_grad_enabled() and self.fusable:
            both = self.fused_decoders(latent)
            return both[:, 0, :length], both[:, 1, :length]
        noise = self.noise_decoder(latent)[:, 0, :length]
        mask = self.mask_decoder(latent)[:, 0, :length]
        return noise, mask

    @property
    def fusable(self) -> bool:
        """The polyphase form below needs kernel 2s and padding s/2 with s even (_up's shape)."""
        return all(conv.stride[0] % 2 == 0 and conv.kernel_size[0] == 2 * conv.stride[0]
                   and conv.padding[0] == conv.stride[0] // 2 for conv in (up[0] for up in self.noise_decoder.up))

    def fused_decoders(self, latent: torch.Tensor) -> torch.Tensor:
        """Both decoders at once: (batch, channels, frames) -> (batch, 2, time), channel 0 the
        noise n, channel 1 the mask m; equal to running noise_decoder and mask_decoder."""
        hidden, groups = latent, 1  # the latent is shared; after the first layer, one group per decoder
        for noise_up, mask_up in zip(self.noise_decoder.up, self.mask_decoder.up):
            (n_conv, n_norm, _), (m_conv, m_norm, _) = noise_up, mask_up
            (n_weight, shifts), (m_weight, _) = polyphase_weight(n_conv), polyphase_weight(m_conv)
            stride = n_conv.stride[0]
            bias = torch.cat([n_conv.bias.repeat(stride), m_conv.bias.repeat(stride)])
            phases = functional.conv1d(hidden, torch.cat([n_weight, m_weight]), bias, padding=1, groups=groups)
            hidden = interleave(phases, 2, n_conv.out_channels, shifts)
            hidden = functional.relu(functional.group_norm(
                hidden, 2, torch.cat([n_norm.weight, m_norm.weight]), torch.cat([n_norm.bias, m_norm.bias]),
                n_norm.eps))
            groups = 2
        n_out, m_out = self.noise_decoder.out, self.mask_decoder.out
        both = functional.conv1d(hidden, torch.cat([n_out.weight, m_out.weight]), torch.cat([n_out.bias, m_out.bias]),
                                 padding=n_out.padding[0], groups=2)
        return torch.cat([torch.tanh(both[:, :1]), torch.sigmoid(both[:, 1:])], dim=1)

    def forward(self, wav: torch.Tensor) -> SSEDOutput:
        noise, mask = self.noise_and_mask(wav)
        return SSEDOutput(wav + perturbation(noise, mask, self.eps), noise, mask)


def polyphase_weight(conv: nn.ConvTranspose1d) -> tuple[torch.Tensor, list[int]]:
    """A stride-s transposed convolution (kernel 2s, padding s/2) as a 2-tap convolution with
    s x C_out output channels. Output phase r (sample s q + r) is
        y[s q + r] = W[:, :, k0 + s]^T x[q + a - 1] + W[:, :, k0]^T x[q + a],
    with k0 = (r + s/2) mod s and a = (r + s/2) div s in {0, 1}: frame q + a of a 2-tap
    convolution padded by one on each side. Returns the weight (channel r * C_out + c is phase
    r of output channel c) and the shift a of each phase."""
    weight, stride, pad = conv.weight, conv.stride[0], conv.padding[0]  # weight: (C_in, C_out, 2s)
    c_in, c_out, _ = weight.shape
    out = weight.new_empty(stride, c_out, c_in, 2)
    shifts = []
    for phase in range(stride):
        k0, shift = (phase + pad) % stride, (phase + pad) // stride
        out[phase, :, :, 0] = weight[:, :, k0 + stride].T
        out[phase, :, :, 1] = weight[:, :, k0].T
        shifts.append(shift)
    return out.reshape(stride * c_out, c_in, 2), shifts


def interleave(phases: torch.Tensor, groups: int, channels: int, shifts: list[int]) -> torch.Tensor:
    """(batch, groups x stride x channels, frames + 1) -> (batch, groups x channels, frames x stride):
    frame q + shifts[r] of phase r becomes sample stride q + r."""
    batch, _, frames = phases.shape[0], phases.shape[1], phases.shape[2] - 1
    stride = len(shifts)
    view = phases.view(batch, groups, stride, channels, frames + 1)
    out = phases.new_empty(batch, groups, channels, frames, stride)
    for phase, shift in enumerate(shifts):
        out[..., phase] = view[:, :, phase, :, shift:shift + frames]
    return out.view(batch, groups * channels, frames * stride)


def perturbation(noise: torch.Tensor, mask: torch.Tensor, eps: float) -> torch.Tensor:
    """delta = eps * (n * m), eqs. (1) and (5)."""
    return eps * (noise * mask)
