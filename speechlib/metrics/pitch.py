"""Pitch correlation (VoicePrivacy Challenge style): YAAPT F0 tracks of the recording and of the
processed utterance, Pearson correlation over the frames voiced in both.

An utterance with fewer than 3 jointly voiced frames (unvoiced, silent) or a constant track gives
NaN: it is counted by the caller, never averaged in as 0 or 1.
"""
from __future__ import annotations

import math
import warnings

import numpy as np


def f0_track(signal: np.ndarray, sample_rate: int = 16000, frame_length_ms: float = 35.0,
             frame_space_ms: float = 10.0, f0_min: float = 60.0, f0_max: float = 400.0) -> np.ndarray:
    """YAAPT (amfm_decompy.pYAAPT) F0 per 10 ms frame, 0 where unvoiced; empty when it fails."""
    import amfm_decompy.basic_tools as basic
    import amfm_decompy.pYAAPT as pYAAPT

    signal = np.asarray(signal, np.float64)
    if signal.size < int(0.1 * sample_rate) or float(np.max(np.abs(signal))) < 1e-5:
        return np.zeros(0)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            pitch = pYAAPT.yaapt(basic.SignalObj(data=signal, fs=sample_rate), frame_length=frame_length_ms,
                                 frame_space=frame_space_ms, f0_min=f0_min, f0_max=f0_max)
    except (ValueError, IndexError, ZeroDivisionError, FloatingPointError):
        return np.zeros(0)
    return np.asarray(pitch.samp_values, np.float64)


def track_correlation(reference: np.ndarray, test: np.ndarray, min_frames: int = 3) -> float:
    """Pearson correlation of two F0 tracks over frames voiced (> 0) in both; NaN if undefined."""
    n = min(len(reference), len(test))
    reference, test = reference[:n], test[:n]
    voiced = (reference > 0) & (test > 0)
    if voiced.sum() < min_frames:
        return math.nan
    a, b = reference[voiced], test[voiced]
    if np.std(a) == 0 or np.std(b) == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def pitch_correlation(reference: np.ndarray, test: np.ndarray, sample_rate: int = 16000) -> float:
    return track_correlation(f0_track(reference, sample_rate), f0_track(test, sample_rate))
