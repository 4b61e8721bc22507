"""The three noise labels of the noise-aware pre-training (SNR, noise category, spectral region).

Every noisy pre-training signal carries: its SNR class (5 SNRs + clean = 6), its noise category
(AudioSet's 7 top-level categories + clean = 8) and the third of the spectrum (low / mid / high)
holding most of the added noise's energy (+ clean = 4). Clean signals get the "clean" class of all
three, and only clean signals do: a silent noise clip is refused rather than labelled clean, and
never reaches the SNR computation.

Regions are thirds of the *mel* scale (0 .. mel(fs/2)), not of the Hz axis: the paper says "uniformly
divide the spectrum" without a scale, and with Hz thirds (0-2.7, 2.7-5.3, 5.3-8 kHz) nearly every
natural noise (energy falling with frequency) lands in "low", so the label carries almost no
information. Mel thirds put the edges at about 0.92 and 3.05 kHz at 16 kHz: car and rumble stay
low, babble and most music fall in mid, white noise, hiss and birds in high.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from speechlib.data.mini import CATEGORIES
from speechlib.io.errors import InputError
from speechlib.signal.mixing import fit_length, mix_at_snr

SNRS_DB: tuple[int, ...] = (-5, 0, 5, 10, 15)
REGIONS: tuple[str, ...] = ("low", "mid", "high")
CLEAN = "clean"
SNR_CLASSES = len(SNRS_DB) + 1
CATEGORY_CLASSES = len(CATEGORIES) + 1
REGION_CLASSES = len(REGIONS) + 1
SILENCE_PEAK = 1e-4


def snr_class(snr_db: float | None) -> int:
    """Index of the SNR in SNRS_DB; None (no noise added) is the last class."""
    if snr_db is None:
        return len(SNRS_DB)
    matches = [i for i, value in enumerate(SNRS_DB) if abs(value - float(snr_db)) < 1e-6]
    if not matches:
        raise ValueError(f"SNR {snr_db} dB is not one of the pre-training SNRs {SNRS_DB}")
    return matches[0]


def category_class(category: str | None) -> int:
    """Index of the AudioSet top-level category; None or "clean" is the last class."""
    if category is None or category == CLEAN:
        return len(CATEGORIES)
    if category not in CATEGORIES:
        raise ValueError(f"unknown noise category '{category}' (known: {', '.join(CATEGORIES)})")
    return CATEGORIES.index(category)


def is_silent(noise: np.ndarray) -> bool:
    return noise.size == 0 or float(np.max(np.abs(noise))) < SILENCE_PEAK


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale, 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def region_edges(sample_rate: int) -> np.ndarray:
    """The two inner edges (Hz) of the low / mid / high regions: thirds of 0 .. mel(fs/2)."""
    top = hz_to_mel(sample_rate / 2.0)
    return mel_to_hz(np.array([top / 3.0, 2.0 * top / 3.0]))


def band_energies(noise: np.ndarray, sample_rate: int) -> np.ndarray:
    """Energy of the noise in the low, mid and high mel thirds (region_edges)."""
    power = np.abs(np.fft.rfft(noise.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(noise.size, 1.0 / sample_rate)
    band = np.searchsorted(region_edges(sample_rate), freqs, side="right")
    return np.bincount(band, weights=power, minlength=3)[:3]


def spectral_region(noise: np.ndarray | None, sample_rate: int) -> int:
    """0/1/2 = the low/mid/high mel third holding most noise energy; None (clean) is class 3."""
    if noise is None:
        return len(REGIONS)
    if is_silent(noise):
        raise ValueError("silent noise has no spectral region (only clean signals get the clean class)")
    return int(np.argmax(band_energies(noise, sample_rate)))


def balanced_conditions(count: int, rng: np.random.Generator,
                        categories: Sequence[str] = CATEGORIES) -> list[tuple[float | None, str | None]]:
    """`count` (SNR, category) pairs: the 6 SNR classes (clean included) equally often, and
    the noise categories equally often among the noisy ones; clean pairs are (None, None)."""
    snrs: list[float | None] = [*SNRS_DB, None]
    snr_list = [snrs[i % len(snrs)] for i in range(count)]
    rng.shuffle(snr_list)
    noisy = sum(snr is not None for snr in snr_list)
    cats = [categories[i % len(categories)] for i in range(noisy)]
    rng.shuffle(cats)
    it = iter(cats)
    return [(snr, None if snr is None else next(it)) for snr in snr_list]


def noisy_example(speech: np.ndarray, noise: np.ndarray | None, snr_db: float | None,
                  rng: np.random.Generator, sample_rate: int, noise_name: str = "noise"
                  ) -> tuple[np.ndarray, dict[str, int]]:
    """Mix (noise looped to the speech's length when shorter, random offset) and label.

    Returns the signal and its labels {snr, region} (category comes from the noise's corpus).
    A silent noise clip raises an InputError naming it: labelling it clean would be a lie,
    and its SNR would be a division by zero.
    """
    if noise is None or snr_db is None:
        return speech.astype(np.float32), {"snr": snr_class(None), "region": spectral_region(None, sample_rate)}
    if is_silent(noise):
        raise InputError(f"noise clip '{noise_name}' is silent: it cannot be mixed at an SNR")
    if is_silent(speech):
        raise InputError(f"speech for '{noise_name}' mixing is silent: the SNR is undefined")
    segment = fit_length(noise.astype(np.float32), speech.size, rng, pad="tile")
    if is_silent(segment):
        raise InputError(f"noise clip '{noise_name}' is silent over the chosen segment")
    mixture, _, scaled = mix_at_snr(speech.astype(np.float32), segment, float(snr_db))
    return mixture, {"snr": snr_class(snr_db), "region": spectral_region(scaled, sample_rate)}
