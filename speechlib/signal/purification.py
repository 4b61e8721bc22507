"""Adversarial purification baselines (Chen et al., as in the SpeakerGuard toolkit's time-domain
defences): Gaussian noise at a fixed SNR, amplitude quantisation, and median smoothing.

They know nothing of how the perturbation was made; the recipe compares them with the learned
removal module. All work on float waveforms in [-1, 1] (NumPy, one utterance or a batch along
the last axis).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter

from speechlib.signal.mixing import scale_to_snr


def add_noise(signal: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Signal plus Gaussian noise whose power is P_signal / 10^(snr/10)."""
    noise = rng.standard_normal(signal.shape).astype(np.float32)
    return (signal + scale_to_snr(signal, noise, snr_db)).astype(np.float32)


def quantise(signal: np.ndarray, factor: int = 2**8, full_scale: int = 32768) -> np.ndarray:
    """Round 16-bit sample values to the nearest multiple of `factor` (2^8 keeps 8 of 16 bits)."""
    levels = np.round(np.asarray(signal, np.float64) * full_scale / factor) * factor
    return (levels / full_scale).astype(np.float32)


def median_smooth(signal: np.ndarray, kernel: int = 3) -> np.ndarray:
    """Sliding median over `kernel` samples, zero-padded (kernel-1)/2 at each end."""
    if kernel % 2 != 1:
        raise ValueError(f"median smoothing needs an odd kernel, got {kernel}")
    size = [1] * (np.ndim(signal) - 1) + [kernel]
    return median_filter(np.asarray(signal, np.float32), size=size, mode="constant", cval=0.0)


PURIFIERS = ("an", "qt", "ms")


def purify(name: str, signal: np.ndarray, rng: np.random.Generator, snr_db: float = 25.0,
           factor: int = 2**8, kernel: int = 3) -> np.ndarray:
    """Dispatch by the paper's abbreviations: an (adding noise), qt (quantisation), ms (median)."""
    if name == "an":
        return add_noise(signal, snr_db, rng)
    if name == "qt":
        return quantise(signal, factor)
    if name == "ms":
        return median_smooth(signal, kernel)
    raise ValueError(f"unknown purification '{name}' (known: {', '.join(PURIFIERS)})")
