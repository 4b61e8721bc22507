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

    def padded(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(x, self.pad, mode="reflect" if x.shape[-1] > max(self.pad) else "constant")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(self.padded(x))))

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight, bias) of the convolution with the eval-mode BatchNorm folded in."""
        return fold_batchnorm(self.conv.weight, self.conv.bias, self.norm)


def fold_batchnorm(weight: torch.Tensor, bias: torch.Tensor | None, norm: torch.nn.BatchNorm1d
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Conv weights followed by an eval-mode BatchNorm as one conv: w * g / s, (b - mean) * g / s + beta."""
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.affine:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale + (norm.bias if norm.affine else 0.0)
    bias = shift if bias is None else bias * scale + shift
    return weight * scale.view(-1, *([1] * (weight.dim() - 1))), bias


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

        self._frozen: tuple | None = None  # inference weights (sinc filters, BatchNorm folded) and their key

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if not self.training and not torch.is_grad_enabled():
            return self._inference(wav)
        # SpeechBrain's SincConv takes (batch, time, channels) and returns the same layout
        x = self.sinc(wav.unsqueeze(-1)).transpose(1, 2)
        x = self.blocks(self.sinc_act(self.sinc_norm(x)))
        return self.out_norm(self.proj(x)).transpose(1, 2)

    def _weights_key(self) -> tuple:
        """Changes whenever a parameter or buffer is written in place (optimiser step,
        load_state_dict, BatchNorm statistics) or moved to another device."""
        return tuple((t.data_ptr(), t._version) for t in (*self.parameters(), *self.buffers()))

    def _inference_weights(self) -> tuple:
        key = self._weights_key()
        if self._frozen is None or self._frozen[0] != key:
            self.sinc.device = self.sinc.low_hz_.device  # SincConv's filter builder reads it (set in its forward)
            sinc_w, sinc_b = fold_batchnorm(self.sinc._get_sinc_filters(), None, self.sinc_norm)
            blocks = [block.folded() for block in self.blocks]
            proj = fold_batchnorm(self.proj.weight, self.proj.bias, self.out_norm)
            self._frozen = (key, sinc_w, sinc_b, blocks, proj)
        return self._frozen[1:]

    def _inference(self, wav: torch.Tensor) -> torch.Tensor:
        """The eval-mode forward without recomputing anything that depends only on the weights:
        the sinc filters are built once and every BatchNorm is folded into its convolution (one
        pass over each activation fewer). Equal to the layer-by-layer forward up to float
        rounding (tested). An FFT sinc layer was tried: no faster than mkldnn's direct one here."""
        sinc_w, sinc_b, blocks, (proj_w, proj_b) = self._inference_weights()
        x = self.sinc._manage_padding(wav.unsqueeze(1), self.sinc.kernel_size, self.sinc.dilation, self.sinc.stride)
        x = self.sinc_act(torch.nn.functional.conv1d(x, sinc_w, sinc_b))
        for block, (weight, bias) in zip(self.blocks, blocks):
            x = block.act(torch.nn.functional.conv1d(block.padded(x), weight, bias, stride=block.conv.stride))
        return torch.nn.functional.conv1d(x, proj_w, proj_b).transpose(1, 2)

    def num_frames(self, num_samples: int) -> int:
        return int(self.forward(torch.zeros(1, num_samples)).shape[1])
