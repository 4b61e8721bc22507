"""PASE+'s input distortions, for the PASE+ baseline trained here (its weights cannot be fetched).

PASE+ (Ravanelli et al. 2020) contaminates clean speech with reverberation, additive noise,
overlapping speech, clipping, band dropping (frequency masking) and temporal masking, each with
its own probability, and asks its workers for features of the *clean* signal. Real RIRs are not
in the mini corpus: reverberation uses synthetic exponentially decaying noise RIRs (RT60
0.2-0.8 s). Probabilities are ours (the PASE+ paper lists the distortions, not all settings).
"""
from __future__ import annotations

import numpy as np
from scipy.signal import butter, fftconvolve, sosfilt

from speechlib.signal.mixing import fit_length, mix_at_snr
from speechlib.signal.noise_labels import is_silent

PROBS = {"reverb": 0.5, "noise": 0.4, "overlap": 0.1, "clip": 0.1, "bandrop": 0.4, "timemask": 0.2}


def synthetic_rir(rng: np.random.Generator, sample_rate: int,
                  rt60_range: tuple[float, float] = (0.2, 0.8)) -> np.ndarray:
    """Exponentially decaying Gaussian noise (-60 dB after RT60) after a direct-path impulse."""
    rt60 = rng.uniform(*rt60_range)
    t = np.arange(int(rt60 * sample_rate)) / sample_rate
    rir = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)
    rir[0] = 1.0
    return (rir / np.sqrt(np.sum(rir ** 2))).astype(np.float32)


def distort(clean: np.ndarray, rng: np.random.Generator, sample_rate: int, noises: list[np.ndarray],
            others: list[np.ndarray]) -> np.ndarray:
    """One randomly distorted copy of `clean` (same length, float32)."""
    x = clean.astype(np.float32)
    if is_silent(x):
        return x
    if rng.random() < PROBS["reverb"]:
        x = fftconvolve(x, synthetic_rir(rng, sample_rate))[: x.size].astype(np.float32)
    if noises and rng.random() < PROBS["noise"]:
        noise = noises[int(rng.integers(len(noises)))]
        if not is_silent(noise):
            x = mix_at_snr(x, fit_length(noise, x.size, rng), float(rng.uniform(0, 15)))[0]
    if others and rng.random() < PROBS["overlap"]:
        other = others[int(rng.integers(len(others)))]
        if not is_silent(other):
            x = mix_at_snr(x, fit_length(other, x.size, rng), float(rng.uniform(5, 15)))[0]
    if rng.random() < PROBS["clip"]:
        level = float(rng.uniform(0.1, 0.5)) * float(np.max(np.abs(x)))
        x = np.clip(x, -level, level)
    if rng.random() < PROBS["bandrop"]:
        low = float(rng.uniform(100, sample_rate / 2 - 1200))
        sos = butter(4, [low, low + float(rng.uniform(200, 1000))], btype="bandstop", fs=sample_rate, output="sos")
        x = sosfilt(sos, x).astype(np.float32)
    if rng.random() < PROBS["timemask"]:
        for _ in range(int(rng.integers(1, 4))):
            width = int(rng.uniform(0.02, 0.08) * sample_rate)
            start = int(rng.integers(max(1, x.size - width)))
            x[start:start + width] = 0.0
    return x.astype(np.float32)
