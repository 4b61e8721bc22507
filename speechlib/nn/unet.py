"""A U-Net on complex STFT maps that estimates speech and noise, plus a domain classifier.

The paper says U-Net (Ronneberger et al.) on real/imaginary STFT maps with real/imaginary
outputs for speech and noise, and a classifier of "two convolutions with PReLU, then the mean
over time" on the bottleneck; the layer sizes are not public. Our choices (see egs/se_uda/README.md):
- encoder: `channels` 2-D conv blocks (3x3, PReLU), each halving frequency (stride 2 along
  frequency only, so any number of frames works, including streaming lengths);
- decoder: transposed convs mirroring the encoder with skip connections (concatenation);
- output: a complex mask per source (speech, noise) applied to the mixture's spectrum, i.e.
  the output real/imaginary maps are mask * mixture, then the iSTFT gives the waveforms.
The waveform is normalised by its standard deviation before the STFT and the estimates are
scaled back, so the network sees inputs of one level whatever the recording gain.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from speechlib.signal.stft import ComplexSTFT

EPS = 1e-8


def _down(in_ch: int, out_ch: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride=(2, 1), padding=1), nn.PReLU(out_ch))


def _up(in_ch: int, out_ch: int) -> nn.Module:
    return nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, 3, stride=(2, 1), padding=1), nn.PReLU(out_ch))


class UNetEncoder(nn.Module):
    """Mixture maps (B, 2, F, T) -> bottleneck (B, C, F', T) and the skip tensors."""

    def __init__(self, channels: Sequence[int]):
        super().__init__()
        sizes = [2, *channels]
        self.blocks = nn.ModuleList(_down(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, maps: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        x = maps
        for block in self.blocks:
            skips.append(x)
            x = block(x)
        return x, skips


class UNetDecoder(nn.Module):
    """Bottleneck + skips -> 4 maps: complex masks for speech and noise."""

    def __init__(self, channels: Sequence[int]):
        super().__init__()
        sizes = list(channels)[::-1]
        blocks = []
        for index, size in enumerate(sizes):
            out = sizes[index + 1] if index + 1 < len(sizes) else sizes[-1]
            in_ch = size if index == 0 else size * 2
            blocks.append(_up(in_ch, out))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(sizes[-1] + 2, 4, 1)

    def forward(self, bottleneck: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        x = bottleneck
        for index, block in enumerate(self.blocks):
            if index > 0:
                x = torch.cat([x, skips[-index]], dim=1)
            x = block(x)
        return self.head(torch.cat([x, skips[0]], dim=1))


def _valid_bins(n_fft: int, depth: int) -> None:
    bins = n_fft // 2 + 1
    for _ in range(depth):
        if bins % 2 == 0:
            raise ValueError(f"n_fft={n_fft} with {depth} levels: a level sees an even number of bins")
        bins = (bins + 1) // 2


class SpeechNoiseUNet(nn.Module):
    """Waveform mixture (B, T) -> (speech estimate, noise estimate), both (B, T)."""

    def __init__(self, channels: Sequence[int] = (16, 32, 64, 64), n_fft: int = 512, hop_length: int = 256,
                 window: str = "hamming"):
        super().__init__()
        _valid_bins(n_fft, len(channels))
        self.config = dict(channels=list(channels), n_fft=n_fft, hop_length=hop_length, window=window)
        self.stft = ComplexSTFT(n_fft, hop_length, window)
        self.encoder = UNetEncoder(channels)
        self.decoder = UNetDecoder(channels)

    @property
    def bottleneck_shape(self) -> tuple[int, int]:
        """(channels, frequency bins) of the bottleneck, for the domain classifier."""
        bins = self.stft.num_bins
        for _ in self.encoder.blocks:
            bins = (bins + 1) // 2
        return self.config["channels"][-1], bins

    def analyse(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale = wav.std(dim=-1, keepdim=True) + EPS
        return self.stft.stft(wav / scale), scale

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """The bottleneck features only (what the domain classifier sees)."""
        return self.encoder(self.analyse(wav)[0])[0]

    def forward(self, wav: torch.Tensor, return_bottleneck: bool = False):
        maps, scale = self.analyse(wav)
        bottleneck, skips = self.encoder(maps)
        masks = self.decoder(bottleneck, skips)
        mix_re, mix_im = maps[:, 0], maps[:, 1]
        outputs = []
        for k in (0, 2):
            m_re, m_im = masks[:, k], masks[:, k + 1]
            est = torch.stack([m_re * mix_re - m_im * mix_im, m_re * mix_im + m_im * mix_re], dim=1)
            outputs.append(self.stft.istft(est, wav.shape[-1]) * scale)
        if return_bottleneck:
            return outputs[0], outputs[1], bottleneck
        return outputs[0], outputs[1]


class DomainClassifier(nn.Module):
    """Bottleneck (B, C, F', T) -> one logit per utterance (target = 1).

    The paper's description: two convolutions with PReLU, then the mean over time. Frequency
    is folded into channels so the convolutions run along time; the second convolution has a
    single output channel whose time average is the logit.
    """

    def __init__(self, in_channels: int, in_bins: int, hidden: int = 64, kernel: int = 3):
        super().__init__()
        self.config = dict(in_channels=in_channels, in_bins=in_bins, hidden=hidden, kernel=kernel)
        self.conv1 = nn.Conv1d(in_channels * in_bins, hidden, kernel, padding=kernel // 2)
        self.act = nn.PReLU(hidden)
        self.conv2 = nn.Conv1d(hidden, 1, kernel, padding=kernel // 2)

    def forward(self, bottleneck: torch.Tensor) -> torch.Tensor:
        b, c, f, t = bottleneck.shape
        x = self.act(self.conv1(bottleneck.reshape(b, c * f, t)))
        return self.conv2(x).mean(dim=(1, 2))
