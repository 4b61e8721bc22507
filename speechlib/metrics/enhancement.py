"""Speech-enhancement metrics: SI-SDR, wide-band PESQ, STOI and DNSMOS.

Bad estimates must not stop a scoring run: PESQ raises "no utterance detected" on a silent or
garbage signal; here that utterance gets NaN (the caller counts NaNs and says how many).
"""
from __future__ import annotations

import math
import warnings
from typing import Callable

import numpy as np

EPS = 1e-10


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant SDR (dB) of one utterance, both signals made zero-mean first."""
    estimate = np.asarray(estimate, np.float64) - np.mean(estimate)
    reference = np.asarray(reference, np.float64) - np.mean(reference)
    alpha = np.dot(estimate, reference) / (np.dot(reference, reference) + EPS)
    target = alpha * reference
    noise = target - estimate
    return float(10 * np.log10((np.dot(target, target) + EPS) / (np.dot(noise, noise) + EPS)))


def pesq_wb(estimate: np.ndarray, reference: np.ndarray, sample_rate: int = 16000) -> float:
    """ITU-T P.862.2 wide-band PESQ; NaN when PESQ finds no utterance (silent/garbage signals)."""
    from pesq import NoUtterancesError, PesqError, pesq

    if sample_rate not in (8000, 16000):
        raise ValueError(f"PESQ needs 8 or 16 kHz audio, got {sample_rate} Hz")
    mode = "wb" if sample_rate == 16000 else "nb"
    estimate = np.asarray(estimate, np.float32)
    if not np.all(np.isfinite(estimate)) or float(np.max(np.abs(estimate), initial=0.0)) < 1e-7:
        return math.nan  # silent or non-finite: the C code would fail on it (NaN -> int)
    try:
        return float(pesq(sample_rate, np.asarray(reference, np.float32), estimate, mode))
    except (NoUtterancesError, PesqError, ValueError):  # ValueError: the C code's NaN level
        return math.nan


def stoi(estimate: np.ndarray, reference: np.ndarray, sample_rate: int = 16000) -> float:
    from pystoi import stoi as _stoi

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not enough frames" warnings for very short clips
        return float(_stoi(np.asarray(reference, np.float64), np.asarray(estimate, np.float64), sample_rate))


def intrusive_scores(estimate: np.ndarray, reference: np.ndarray, sample_rate: int = 16000) -> dict[str, float]:
    """PESQ, STOI and SI-SDR of one utterance, in the paper's column order."""
    n = min(len(estimate), len(reference))
    estimate, reference = estimate[:n], reference[:n]
    return {"pesq": pesq_wb(estimate, reference, sample_rate), "stoi": stoi(estimate, reference, sample_rate),
            "si_sdr": si_sdr(estimate, reference)}


class DNSMOS:
    """Reference-free DNSMOS P.835 (SIG, BAK, OVRL) from the `speechmos` package (ONNX, offline).

    Loading the ONNX sessions takes seconds, so one instance is made per scoring job.
    """

    def __init__(self) -> None:
        from speechmos import dnsmos

        self._run: Callable = dnsmos.run

    def __call__(self, signal: np.ndarray, sample_rate: int = 16000) -> dict[str, float]:
        peak = float(np.max(np.abs(signal))) if signal.size else 0.0
        if peak < 1e-6:
            return {"dnsmos_sig": math.nan, "dnsmos_bak": math.nan, "dnsmos_ovrl": math.nan}
        # speechmos insists on [-1, 1]; scaling does not change DNSMOS's input features much
        signal = (signal / peak * 0.9 if peak > 1 else signal).astype(np.float32)
        result = self._run(signal, sr=sample_rate)
        return {"dnsmos_sig": float(result["sig_mos"]), "dnsmos_bak": float(result["bak_mos"]),
                "dnsmos_ovrl": float(result["ovrl_mos"])}
