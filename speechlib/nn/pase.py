"""The PASE encoder: SincNet first layer, seven conv blocks, a 100-d embedding every 10 ms.

Layer sizes follow the public PASE front-end config (see shared/notes/reference_facts.md): the
paper only says "SincNet + 7 conv blocks, 100-d". SpeechBrain's SincConv is the first layer so the
sinc filters (mel-spaced initialisation, 50 Hz minimum band) are not re-implemented here.
"""
from __future__ import annotations

from typing import Sequence

import torch
from speechbrain.nnet.CNN import SincConv


class ConvBlock(torch.nn.Module):
    """Conv1d -> BatchNorm1d -> PReLU; 'same'-style left/right padding keeps frames aligned."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int):
        super().__init__()
        self.pad = ((kernel - stride) // 2, kernel - stride - (kernel - stride) // 2)
        self.conv = torch.nn.Conv1d(in_ch, out_ch, kernel, stride=stride)
        self.norm = torch.nn.BatchNorm1d(out_ch)
        self.act = torch.nn.PReLU(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.pad(x, self.pad, mode="reflect" if x.shape[-1] > max(self.pad) else "constant")
        return self.act(self.norm(self.conv(x)))


class PASEEncoder(torch.nn.Module):
    """Waveform (batch, samples) at 16 kHz -> embeddings (batch, frames, emb_dim), hop = prod(strides).

    The final BatchNorm has no affine parameters, as in PASE: the workers see standardised features.
    """

    def __init__(self, emb_dim: int = 100, sinc_filters: int = 64, sinc_kernel: int = 251,
                 kernels: Sequence[int] = (20, 11, 11, 11, 11, 11, 11),
                 strides: Sequence[int] = (10, 2, 1, 2, 1, 2, 2),
                 channels: Sequence[int] = (64, 128, 128, 256, 256, 512, 512),
                 sample_rate: int = 16000):
        super().__init__()
        if not len(kernels) == len(strides) == len(channels):
            raise ValueError("kernels, strides and channels must have the same length")
        self.emb_dim = emb_dim
        self.hop = 1
        for stride in strides:
            self.hop *= stride
        self.sinc = SincConv(out_channels=sinc_filters, kernel_size=sinc_kernel, in_channels=1,
                             sample_rate=sample_rate, padding="same", padding_mode="reflect")
        self.sinc_norm = torch.nn.BatchNorm1d(sinc_filters)
        self.sinc_act = torch.nn.PReLU(sinc_filters)
        blocks, in_ch = [], sinc_filters
        for kernel, stride, out_ch in zip(kernels, strides, channels):
            blocks.append(ConvBlock(in_ch, out_ch, kernel, stride))
            in_ch = out_ch
        self.blocks = torch.nn.Sequential(*blocks)
        self.proj = torch.nn.Conv1d(in_ch, emb_dim, 1)
        self.out_norm = torch.nn.BatchNorm1d(emb_dim, affine=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        # SpeechBrain's SincConv takes (batch, time, channels) and returns the same layout
        x = self.sinc(wav.unsqueeze(-1)).transpose(1, 2)
        x = self.blocks(self.sinc_act(self.sinc_norm(x)))
        return self.out_norm(self.proj(x)).transpose(1, 2)

    def num_frames(self, num_samples: int) -> int:
        return int(self.forward(torch.zeros(1, num_samples)).shape[1])
