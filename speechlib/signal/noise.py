"""Synthetic coloured noise: power spectral density proportional to 1/f^exponent."""
from __future__ import annotations

import numpy as np

COLOUR_EXPONENTS = {"violet": -2.0, "blue": -1.0, "white": 0.0, "pink": 1.0, "brown": 2.0}


def coloured_noise(num_samples: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise shaped in the frequency domain, scaled to unit RMS (float32).

    Shaping the spectrum of white noise by f^(-exponent/2) gives PSD ~ 1/f^exponent; the DC bin
    is zeroed so that brown noise does not drift.
    """
    if colour not in COLOUR_EXPONENTS:
        raise ValueError(f"unknown noise colour '{colour}' (known: {', '.join(COLOUR_EXPONENTS)})")
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0
    spectrum *= freqs ** (-COLOUR_EXPONENTS[colour] / 2.0)
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n=num_samples)
    return (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)
