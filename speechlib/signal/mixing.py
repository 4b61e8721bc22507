"""Mixing speech and noise at a chosen SNR, vectorised over a batch of pairs.

Shared by every recipe that builds noisy data (enhancement, MOS, privacy): the SNR definition
(power over the whole segment, in dB) lives here once. Everything is NumPy, float32, and works
on (batch, samples) arrays so that building 50,000 mixtures is a few array operations per batch.
"""
from __future__ import annotations

import numpy as np

EPS = 1e-10


def scale_to_snr(speech: np.ndarray, noise: np.ndarray, snr_db: np.ndarray | float) -> np.ndarray:
    """Noise rescaled so that 10*log10(P_speech / P_noise) equals `snr_db` along the last axis."""
    speech_power = np.mean(np.square(speech, dtype=np.float64), axis=-1, keepdims=True)
    noise_power = np.mean(np.square(noise, dtype=np.float64), axis=-1, keepdims=True)
    snr = np.asarray(snr_db, dtype=np.float64)
    if snr.ndim:
        snr = snr.reshape(snr.shape + (1,))
    gain = np.sqrt(speech_power / (np.maximum(noise_power, EPS) * 10.0 ** (snr / 10.0)))
    return (noise * gain).astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: np.ndarray | float,
               peak: float = 0.99) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (mixture, speech, noise) with noise at `snr_db`; all three are scaled together
    when the mixture would clip, so mixture = speech + noise holds exactly and the SNR is kept."""
    noise = scale_to_snr(speech, noise, snr_db)
    mixture = speech + noise
    top = np.max(np.abs(mixture), axis=-1, keepdims=True)
    factor = np.where(top > peak, peak / np.maximum(top, EPS), 1.0).astype(np.float32)
    return mixture * factor, speech * factor, noise * factor


def fit_length(signal: np.ndarray, length: int, rng: np.random.Generator, pad: str = "tile") -> np.ndarray:
    """A random `length`-sample crop of `signal`; shorter signals are tiled (noise) or
    zero-padded at a random offset (speech, pad="zeros")."""
    size = signal.shape[-1]
    if size >= length:
        start = int(rng.integers(size - length + 1))
        return signal[start:start + length]
    if pad == "tile":
        reps = int(np.ceil(length / size)) + 1
        tiled = np.tile(signal, reps)
        start = int(rng.integers(size))
        return tiled[start:start + length]
    out = np.zeros(length, dtype=signal.dtype)
    start = int(rng.integers(length - size + 1))
    out[start:start + size] = signal
    return out


def snr_db(speech: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The SNR (dB) of speech over noise along the last axis (for checks and reports)."""
    ps = np.mean(np.square(speech, dtype=np.float64), axis=-1)
    pn = np.mean(np.square(noise, dtype=np.float64), axis=-1)
    return 10.0 * np.log10(np.maximum(ps, EPS) / np.maximum(pn, EPS))
