"""SSED: the symmetric saliency-based encoder-decoder that writes a speaker perturbation.

Waveform in, waveform out. A shared encoder E maps x to a latent y; the noise decoder G_N and
the mask decoder G_M, of identical shape, decode y into a noise vector n (tanh, in [-1, 1]) and
a saliency mask m (sigmoid: the "normalisation" of the mask representation). The perturbation
is delta = eps * (n * m), so |delta| <= eps per sample.

Optional spectral bound (`spectral_ratio` rho, not in the paper): delta is then limited, in
every time-frequency bin of a 32 ms STFT, to rho times the magnitude of the input there
(|D(t, f)| <= rho |X(t, f)|, phase kept), and clamped to +-eps again. The perturbation then sits
under the speech it perturbs (nothing in silences, nothing where the speech has no energy), where
the ear masks it: noise shaped this way at 20 dB SNR scores PESQ near 4 where white noise at the
same SNR scores below 1. The remover applies the same bound with its own input x'.

No waveform SSED code is public; this is the 1-D reading of the image-domain SSAE shape the
paper cites (a wide first convolution, strided down-sampling convolutions, residual blocks, and
a mirrored up-sampling path per decoder). The same class serves as the perturbation generator
F_P and, fed x', as the removal module F_R (the paper: "F_R and F_P share the same structure").
"""
from __future__ import annotations

import copy
import functools
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


class PolyphaseUp(nn.Module):
    """A ConvTranspose1d(kernel 2s, stride s, padding s/2) rewritten as a 3-tap Conv1d with s x
    c_out channels and an interleave: output sample s q + r takes taps q-1, q, q+1 of the input
    (two of them non-zero per phase r). The same numbers as the transposed convolution (tested),
    about 2.5x faster on CPU, where PyTorch's transposed convolution is slow; for inference.
    `interleave=False` returns the phases themselves, (batch, c_out x s, frames) with row c s + r
    holding samples s q + r of channel c (see PhaseDecoder)."""

    def __init__(self, up: nn.ConvTranspose1d, interleave: bool = True):
        super().__init__()
        if not polyphase_able(up):
            raise ValueError(f"PolyphaseUp: needs kernel 2s, padding s/2, even s; got {up.kernel_size[0]}, "
                             f"{up.padding[0]}, {up.stride[0]}")
        stride, kernel = up.stride[0], up.kernel_size[0]
        c_in, c_out = up.in_channels, up.out_channels
        weight = up.weight.new_zeros(c_out, stride, c_in, 3)
        for r in range(stride):
            for tap in range(3):  # input index q + tap - 1
                k = stride * (1 - tap) + r + stride // 2
                if 0 <= k < kernel:
                    weight[:, r, :, tap] = up.weight[:, :, k].t()
        self.conv = nn.Conv1d(c_in, c_out * stride, 3, padding=1)
        self.conv.weight.data.copy_(weight.reshape(c_out * stride, c_in, 3))
        self.conv.bias.data.copy_(up.bias.detach().repeat_interleave(stride))
        self.stride, self.c_out, self.interleave = stride, c_out, interleave

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return interleave_phases(y, self.stride) if self.interleave else y


def polyphase_able(up: nn.Module) -> bool:
    """Whether `up` is a transposed convolution PolyphaseUp can rewrite."""
    if not isinstance(up, nn.ConvTranspose1d):
        return False
    stride, kernel, pad = up.stride[0], up.kernel_size[0], up.padding[0]
    return (kernel == 2 * stride and pad == stride // 2 and stride % 2 == 0 and up.groups == 1
            and up.dilation[0] == 1 and up.output_padding[0] == 0)


def interleave_phases(y: torch.Tensor, stride: int) -> torch.Tensor:
    """(batch, c x s, frames), row c s + r = samples s q + r of channel c -> (batch, c, s x frames)."""
    batch, rows, frames = y.shape
    return y.view(batch, rows // stride, stride, frames).transpose(2, 3).reshape(batch, rows // stride, -1)


class PhaseDecoder(nn.Module):
    """A Decoder for inference whose last up-sampling stage never interleaves its c0 channels.

    That stage's polyphase convolution gives c0 x s phase rows; GroupNorm(1, .) and ReLU do not
    depend on the order of the samples within a channel, so they run on the phase rows (the norm's
    per-channel weight repeated per phase); the output convolution (kernel K, padding K // 2) is
    rewritten to read the phase rows and write its s output phases (tap j of output phase r reads
    phase (r + j - K // 2) mod s at frame offset floor((r + j - K // 2) / s)), and only the one
    output channel is interleaved. The same numbers as the Decoder (tested), with no interleave
    of the c0 full-rate channels and a convolution with s output channels instead of one, which
    PyTorch's CPU convolution runs several times faster per sample."""

    def __init__(self, decoder: "Decoder"):
        super().__init__()
        if not PhaseDecoder.applies(decoder):
            raise ValueError("PhaseDecoder: the last stage needs a polyphase-able up-sampling, GroupNorm(1, .) "
                             "and an odd-kernel, stride-1 output convolution")
        *first, (up, norm, relu) = decoder.up
        stride, out = up.stride[0], decoder.out
        self.up = nn.Sequential(*[nn.Sequential(PolyphaseUp(block[0]) if polyphase_able(block[0]) else block[0],
                                                *block[1:]) for block in first])
        self.last = PolyphaseUp(up, interleave=False)
        self.norm = nn.GroupNorm(1, norm.num_channels * stride, eps=norm.eps)
        self.norm.weight.data.copy_(norm.weight.detach().repeat_interleave(stride))
        self.norm.bias.data.copy_(norm.bias.detach().repeat_interleave(stride))
        self.relu = nn.ReLU(inplace=True)
        kernel, pad = out.kernel_size[0], out.padding[0]
        reach = -(-pad // stride)  # frames either side a phase output reads
        weight = out.weight.new_zeros(out.out_channels, stride, out.in_channels, stride, 2 * reach + 1)
        for r in range(stride):
            for j in range(kernel):
                frame, phase = divmod(r + j - pad, stride)
                weight[:, r, :, phase, frame + reach] = out.weight[:, :, j]
        self.out = nn.Conv1d(out.in_channels * stride, out.out_channels * stride, 2 * reach + 1, padding=reach)
        self.out.weight.data.copy_(weight.reshape(self.out.weight.shape))
        self.out.bias.data.copy_(out.bias.detach().repeat_interleave(stride))
        self.activation, self.stride = decoder.activation, stride

    @staticmethod
    def applies(decoder: "Decoder") -> bool:
        up, norm = decoder.up[-1][0], decoder.up[-1][1]
        out = decoder.out
        return (polyphase_able(up) and isinstance(norm, nn.GroupNorm) and norm.num_groups == 1 and norm.affine
                and out.kernel_size[0] % 2 == 1 and out.padding[0] == out.kernel_size[0] // 2
                and out.stride[0] == 1 and out.dilation[0] == 1 and out.groups == 1 and out.bias is not None)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        phases = self.relu(self.norm(self.last(self.up(y))))
        return interleave_phases(self.activation(self.out(phases)), self.stride)


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
                 residual_blocks: int = 6, kernel: int = 7, eps: float = 0.05,
                 spectral_ratio: float | None = None, stft_size: int = 512):
        super().__init__()
        channels, strides = list(channels), list(strides)
        if len(channels) != len(strides) + 1:
            raise ValueError(f"SSED: {len(channels)} channel sizes need {len(channels) - 1} strides, got {len(strides)}")
        self.eps = eps
        self.spectral_ratio, self.stft_size = spectral_ratio, stft_size
        self.register_buffer("window", torch.hann_window(stft_size), persistent=False)
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

    def for_inference(self, copy_first: bool = True) -> "SSED":
        """A copy for inference: every transposed convolution in its polyphase form, each decoder's
        last stage in phase layout (PhaseDecoder), ReLUs in place (same outputs, faster on CPU);
        eval mode, no gradients. `copy_first=False` converts this model itself (one just loaded
        for a command: the copy would cost more than a second of audio)."""
        fast = (copy.deepcopy(self) if copy_first else self).eval().requires_grad_(False)
        for name in ("noise_decoder", "mask_decoder"):
            decoder = getattr(fast, name)
            if PhaseDecoder.applies(decoder):
                setattr(fast, name, PhaseDecoder(decoder))
                continue
            for block in decoder.up:
                if polyphase_able(block[0]):
                    block[0] = PolyphaseUp(block[0])
        for module in fast.modules():
            if isinstance(module, nn.ReLU):
                module.inplace = True  # each follows a GroupNorm, whose output nothing else reads
        return fast

    def forward(self, wav: torch.Tensor) -> SSEDOutput:
        noise, mask = self.noise_and_mask(wav)
        delta = perturbation(noise, mask, self.eps)
        if self.spectral_ratio is not None:
            delta = under_spectrum(delta, wav, self.spectral_ratio, self.window, self.eps)
        return SSEDOutput(wav + delta, noise, mask)


def perturbation(noise: torch.Tensor, mask: torch.Tensor, eps: float) -> torch.Tensor:
    """delta = eps * (n * m), eqs. (1) and (5)."""
    return eps * (noise * mask)


def under_spectrum(delta: torch.Tensor, reference: torch.Tensor, ratio: float, window: torch.Tensor,
                   eps: float) -> torch.Tensor:
    """delta with each STFT bin's magnitude limited to `ratio` times the reference's (phase kept),
    then clamped to +-eps (so the headroom rule |delta| <= eps still holds). (batch, time) in and out."""
    n_fft = window.shape[0]
    spec = functools.partial(torch.stft, n_fft=n_fft, hop_length=n_fft // 4, window=window,
                             pad_mode="constant", return_complex=True)
    perturbation_spec, reference_spec = spec(delta), spec(reference)
    limit = ratio * reference_spec.abs()
    magnitude = perturbation_spec.abs()
    scale = torch.where(magnitude > limit, limit / magnitude.clamp(min=1e-12), torch.ones_like(magnitude))
    shaped = torch.istft(perturbation_spec * scale, n_fft=n_fft, hop_length=n_fft // 4, window=window,
                         length=delta.shape[-1])
    return shaped.clamp(-eps, eps)
