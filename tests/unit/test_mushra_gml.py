"""Unit tests of the mushra_gml building blocks, each against an independent calculation."""
from __future__ import annotations

import numpy as np
import pytest

from speechlib.io.errors import InputError
from speechlib.signal.codecs import CODECS, encode_decode, lowpass_anchor

SR = 48000


def _band_noise(seconds: float, channels: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return lowpass_anchor(0.1 * rng.standard_normal((int(seconds * SR), channels)), SR, 4000)


# -- codecs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("codec", sorted(CODECS))
def test_codec_keeps_shape_and_alignment(codec):
    x = _band_noise(1.0)
    y = encode_decode(x, SR, codec, 96)
    assert y.shape == x.shape and y.dtype == np.float32
    inner = slice(2000, -2000)
    lags = range(-40, 41)
    best = max(lags, key=lambda k: float(np.sum(x[inner] * np.roll(y, k, axis=0)[inner])))
    assert best == 0  # time-aligned to the sample
    assert 10 * np.log10(np.sum(x ** 2) / np.sum((x - y) ** 2)) > 8  # a real decode, not noise


def test_codec_dual_mono_and_other_rate():
    x = _band_noise(1.0)
    y = encode_decode(x, SR, "aac", 48, mono=True)
    assert y.shape == x.shape and np.array_equal(y[:, 0], y[:, 1])
    z = encode_decode(x[:44100, 0], 44100, "opus", 24)  # Opus codes at 48 kHz internally
    assert z.shape == (44100,)


def test_codec_errors_are_one_line():
    with pytest.raises(InputError, match="unknown codec"):
        encode_decode(_band_noise(0.1), SR, "ac4", 64)


def test_lowpass_anchor_attenuates_above_cutoff():
    t = np.arange(SR) / SR
    low, high = np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 8000 * t)
    out_low, out_high = lowpass_anchor(low, SR, 3500), lowpass_anchor(high, SR, 3500)
    inner = slice(4800, -4800)
    assert abs(np.std(out_low[inner]) / np.std(low[inner]) - 1) < 0.01
    assert 20 * np.log10(np.std(out_high[inner]) / np.std(high[inner])) < -60
