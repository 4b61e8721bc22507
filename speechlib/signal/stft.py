"""Complex STFT <-> real/imaginary maps, the representation the spectral models work in.

Models see a 4-D tensor (batch, 2, freq, frames): channel 0 the real part, channel 1 the
imaginary part. `istft` inverts exactly (torch.istft divides by the summed squared window),
so a model that outputs the input maps gives back the input waveform.
"""
from __future__ import annotations

import torch


class ComplexSTFT(torch.nn.Module):
    """STFT with a fixed window; no learnable parameters (saved with models only as config)."""

    def __init__(self, n_fft: int = 512, hop_length: int = 256, window: str = "hamming"):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        makers = {"hamming": torch.hamming_window, "hann": torch.hann_window}
        if window not in makers:
            raise ValueError(f"unknown window '{window}' (known: {', '.join(makers)})")
        self.register_buffer("window", makers[window](n_fft), persistent=False)

    @property
    def num_bins(self) -> int:
        return self.n_fft // 2 + 1

    def stft(self, wav: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, 2, freq, frames)."""
        spec = torch.stft(wav, self.n_fft, self.hop_length, window=self.window, center=True,
                          return_complex=True)
        return torch.stack([spec.real, spec.imag], dim=1)

    def istft(self, maps: torch.Tensor, length: int) -> torch.Tensor:
        """(batch, 2, freq, frames) -> (batch, length)."""
        spec = torch.complex(maps[:, 0], maps[:, 1])
        return torch.istft(spec, self.n_fft, self.hop_length, window=self.window, center=True,
                           length=length)
