"""A U-Net on complex STFT maps that estimates speech (and noise = mixture - speech), plus a
domain classifier on its bottleneck.

The paper says U-Net (Ronneberger et al.) on real/imaginary STFT maps (512-point Hamming window,
hop 256) with speech and noise estimates; the layer sizes are not public. Our choices (see
egs/se_uda/README.md, "Choices where the paper is silent"), each made so that training starts
at pass-through and every step is spent improving on it:
- input: the waveform divided by its standard deviation (one level whatever the recording gain),
  then the STFT with its magnitude compressed (|X|^0.3, phase kept), so that the network's inputs
  span a few units instead of the 1e-3..1e3 of raw linear magnitudes;
- encoder: `channels` 2-D conv blocks (3x3, PReLU), each halving frequency (stride 2 along
  frequency only, so any number of frames works); decoder: transposed convs mirroring it, with
  skip connections (concatenation);
- bottleneck: a GRU over frames (`rnn_hidden` units, 0 for none) added to the bottleneck as a
  residual, so that the masks see seconds of context (the 3x3 convolutions alone see 2 frames
  per level) at the cost of one small recurrent layer;
- output: one bounded complex mask for speech, magnitude 2*sigmoid(a) in (0, 2) times a unit
  phase rotation (1 + b, c)/|(1 + b, c)|, applied to the (uncompressed) mixture spectrum;
- noise estimate: mixture - speech estimate, so every estimate pair is mixture-consistent
  (s + n = x exactly), as RemixIT's mixture-consistency projection would make it;
- initialisation: the head's weights are zero and its bias makes the mask exactly 1/2, so the
  untrained model returns s = n = x/2: the mixture itself, at half level, which every
  scale-invariant measure (SI-SDR, STOI, PESQ) scores exactly as the mixture. A mask of 1 (s = x)
  would make n = x - s vanish: its -SI-SDR term, blind to the vanishing scale, then has gradients
  ~1/|n| that swamp Adam's normaliser, and training never leaves the identity (README: measured).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from speechlib.signal.stft import ComplexSTFT

EPS = 1e-8
COMPRESSION = 0.3
MASK_BOUND = 2.0
INITIAL_MASK = 0.5


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


class TemporalContext(nn.Module):
    """Bottleneck (B, C, F', T) + GRU over T of the flattened (C * F') frames, projected back."""

    def __init__(self, channels: int, bins: int, hidden: int):
        super().__init__()
        self.rnn = nn.GRU(channels * bins, hidden, batch_first=True)
        self.out = nn.Linear(hidden, channels * bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, t = x.shape
        frames = x.reshape(b, c * f, t).transpose(1, 2)
        context = self.out(self.rnn(frames)[0]).transpose(1, 2).reshape(b, c, f, t)
        return x + context


class UNetDecoder(nn.Module):
    """Bottleneck + skips -> 3 maps: the speech mask's log-magnitude and phase-rotation terms."""

    def __init__(self, channels: Sequence[int]):
        super().__init__()
        sizes = list(channels)[::-1]
        blocks = []
        for index, size in enumerate(sizes):
            out = sizes[index + 1] if index + 1 < len(sizes) else sizes[-1]
            in_ch = size if index == 0 else size * 2
            blocks.append(_up(in_ch, out))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(sizes[-1] + 2, 3, 1)
        nn.init.zeros_(self.head.weight)  # pass-through start: mask exactly INITIAL_MASK
        nn.init.zeros_(self.head.bias)
        with torch.no_grad():
            self.head.bias[0] = -math.log(MASK_BOUND / INITIAL_MASK - 1.0)

    def forward(self, bottleneck: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        x = bottleneck
        for index, block in enumerate(self.blocks):
            if index > 0:
                x = torch.cat([x, skips[-index]], dim=1)
            x = block(x)
        return self.head(torch.cat([x, skips[0]], dim=1))


def bounded_mask(head: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, F, T) head output -> complex mask (real, imag), |mask| < MASK_BOUND; (a, 0, 0) -> 2 sigmoid(a)."""
    magnitude = MASK_BOUND * torch.sigmoid(head[:, 0])
    rot_re, rot_im = 1.0 + head[:, 1], head[:, 2]
    norm = torch.sqrt(rot_re ** 2 + rot_im ** 2 + EPS)
    return magnitude * rot_re / norm, magnitude * rot_im / norm


def _valid_bins(n_fft: int, depth: int) -> None:
    bins = n_fft // 2 + 1
    for _ in range(depth):
        if bins % 2 == 0:
            raise ValueError(f"n_fft={n_fft} with {depth} levels: a level sees an even number of bins")
        bins = (bins + 1) // 2


class SpeechNoiseUNet(nn.Module):
    """Waveform mixture (B, T) -> (speech estimate, noise estimate), both (B, T), s + n = x."""

    def __init__(self, channels: Sequence[int] = (16, 32, 64, 64), n_fft: int = 512, hop_length: int = 256,
                 window: str = "hamming", rnn_hidden: int = 0):
        super().__init__()
        _valid_bins(n_fft, len(channels))
        self.config = dict(channels=list(channels), n_fft=n_fft, hop_length=hop_length, window=window,
                           rnn_hidden=rnn_hidden)
        self.stft = ComplexSTFT(n_fft, hop_length, window)
        self.encoder = UNetEncoder(channels)
        self.context = TemporalContext(*self.bottleneck_shape, rnn_hidden) if rnn_hidden else nn.Identity()
        self.decoder = UNetDecoder(channels)

    @property
    def bottleneck_shape(self) -> tuple[int, int]:
        """(channels, frequency bins) of the bottleneck, for the domain classifier."""
        bins = self.stft.num_bins
        for _ in self.encoder.blocks:
            bins = (bins + 1) // 2
        return self.config["channels"][-1], bins

    def analyse(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(level-normalised spectrum, its magnitude-compressed copy for the network, the level)."""
        scale = wav.std(dim=-1, keepdim=True) + EPS
        maps = self.stft.stft(wav / scale)
        magnitude = torch.sqrt(maps.pow(2).sum(dim=1, keepdim=True) + EPS)
        return maps, maps * magnitude.pow(COMPRESSION - 1.0), scale

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """The bottleneck features only (what the domain classifier sees)."""
        return self.context(self.encoder(self.analyse(wav)[1])[0])

    def forward(self, wav: torch.Tensor, return_bottleneck: bool = False):
        maps, features, scale = self.analyse(wav)
        bottleneck, skips = self.encoder(features)
        bottleneck = self.context(bottleneck)
        mask_re, mask_im = bounded_mask(self.decoder(bottleneck, skips))
        mix_re, mix_im = maps[:, 0], maps[:, 1]
        est = torch.stack([mask_re * mix_re - mask_im * mix_im, mask_re * mix_im + mask_im * mix_re], dim=1)
        speech = self.stft.istft(est, wav.shape[-1]) * scale
        noise = wav - speech
        if return_bottleneck:
            return speech, noise, bottleneck
        return speech, noise


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
