"""PASE worker targets: log power spectrum, MFCC, log-mel filterbank and prosody.

Spectral targets are torch functions over a batch (computed on the fly during pre-training, so
no feature cache is needed); prosody needs a pitch tracker and is NumPy, computed per utterance in
the data pipeline. Frame rate everywhere: hop 160 samples (10 ms at 16 kHz), centred frames, so
frame t of every target lines up with frame t of the PASE encoder.
"""
from __future__ import annotations

import numpy as np
import torch
import torchaudio

HOP = 160
EPS = 1e-10


def power_spectrum(wav: torch.Tensor, n_fft: int, win_length: int, hop: int = HOP) -> torch.Tensor:
    """|STFT|^2, (batch, frames, n_fft // 2 + 1); periodic Hann window, zero-padded centring."""
    window = torch.hann_window(win_length, device=wav.device, dtype=wav.dtype)
    spec = torch.stft(wav, n_fft, hop, win_length, window=window, center=True, pad_mode="constant",
                      return_complex=True)
    return spec.abs().pow(2).transpose(1, 2)


def lps(wav: torch.Tensor, n_fft: int = 2048, win_length: int = 400, hop: int = HOP) -> torch.Tensor:
    """Log power spectrum 10*log10|X|^2 (PASE's LPS worker target, 1025 bins by default)."""
    return 10.0 * torch.log10(power_spectrum(wav, n_fft, win_length, hop).clamp_min(EPS))


def log_mel(wav: torch.Tensor, sample_rate: int = 16000, n_mels: int = 40, n_fft: int = 512,
            win_length: int = 400, hop: int = HOP) -> torch.Tensor:
    """10*log10 of an HTK-mel filterbank energy (no filter normalisation), (batch, frames, n_mels)."""
    fbank = torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, 0.0, sample_rate / 2, n_mels, sample_rate,
                                                  norm=None, mel_scale="htk").to(wav)
    return 10.0 * torch.log10((power_spectrum(wav, n_fft, win_length, hop) @ fbank).clamp_min(EPS))


def dct_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """Orthonormal DCT-II as a (n_in, n_out) matrix."""
    n = torch.arange(n_in, dtype=torch.float64)
    k = torch.arange(n_out, dtype=torch.float64)
    basis = torch.cos(torch.pi / n_in * (n[:, None] + 0.5) * k[None, :]) * (2.0 / n_in) ** 0.5
    basis[:, 0] /= 2.0 ** 0.5
    return basis.float()


def mfcc(wav: torch.Tensor, sample_rate: int = 16000, n_mfcc: int = 20, n_mels: int = 40, n_fft: int = 512,
         win_length: int = 400, hop: int = HOP) -> torch.Tensor:
    """MFCC = orthonormal DCT-II of the log-mel energies (dB), (batch, frames, n_mfcc)."""
    return log_mel(wav, sample_rate, n_mels, n_fft, win_length, hop) @ dct_matrix(n_mels, n_mfcc).to(wav)


def long_context(features: torch.Tensor, frames: int = 21) -> torch.Tensor:
    """Moving average over `frames` frames (PASE+'s long-window targets, our approximation)."""
    x = features.transpose(1, 2)
    x = torch.nn.functional.avg_pool1d(torch.nn.functional.pad(x, (frames // 2, frames // 2), mode="replicate"),
                                       frames, stride=1)
    return x.transpose(1, 2)


def frame_signal(signal: np.ndarray, frame_length: int, hop: int = HOP) -> np.ndarray:
    """Centred frames (zero padding of frame_length // 2 each side): (1 + len // hop, frame_length)."""
    padded = np.pad(signal, (frame_length // 2, frame_length // 2))
    count = 1 + (padded.size - frame_length) // hop
    index = np.arange(frame_length)[None, :] + hop * np.arange(count)[:, None]
    return padded[index]


def rms_energy(signal: np.ndarray, frame_length: int = 320, hop: int = HOP) -> np.ndarray:
    return np.sqrt(np.mean(frame_signal(signal, frame_length, hop) ** 2, axis=1))


def zero_crossing_rate(signal: np.ndarray, frame_length: int = 320, hop: int = HOP) -> np.ndarray:
    """Sign changes between consecutive samples of a frame, divided by the frame length."""
    sign = np.signbit(frame_signal(signal, frame_length, hop))
    return np.sum(sign[:, 1:] != sign[:, :-1], axis=1) / frame_length


def yin_f0(signal: np.ndarray, sample_rate: int = 16000, fmin: float = 60.0, fmax: float = 400.0,
           frame_length: int = 1024, hop: int = HOP, threshold: float = 0.15,
           min_rms: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """YIN pitch (de Cheveigné & Kawahara 2002), vectorised over frames.

    Returns (f0 in Hz with 0 for unvoiced frames, voiced flag). A frame is voiced when the
    cumulative-mean-normalised difference dips below `threshold` and the frame is not silent.
    """
    frames = frame_signal(signal.astype(np.float64), frame_length, hop)
    window = frame_length // 2
    max_lag = min(int(sample_rate / fmin), window)
    min_lag = max(int(sample_rate / fmax), 2)
    # difference function d(tau) = sum_j (x_j - x_{j+tau})^2 over a window, via FFT correlation
    n_fft = 1 << int(np.ceil(np.log2(frame_length + window)))
    spec_full = np.fft.rfft(frames, n_fft)
    spec_win = np.fft.rfft(frames[:, :window], n_fft)
    corr = np.fft.irfft(spec_full * np.conj(spec_win), n_fft)[:, :max_lag + 1]
    energy = np.cumsum(np.pad(frames ** 2, ((0, 0), (1, 0))), axis=1)
    lags = np.arange(max_lag + 1)
    energy_shift = energy[:, lags + window] - energy[:, lags]
    diff = energy[:, window][:, None] + energy_shift - 2.0 * corr
    diff[:, 0] = 0.0
    cumulative = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, max_lag + 1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] / np.maximum(cumulative, EPS)
    search = cmnd[:, min_lag:max_lag]
    below = search < threshold
    # first dip below the threshold, then walk to its local minimum
    first = np.where(below.any(axis=1), below.argmax(axis=1), search.argmin(axis=1))
    best = first.copy()
    for _ in range(max_lag):
        step = (best + 1 < search.shape[1]) & (search[np.arange(len(best)), np.minimum(best + 1, search.shape[1] - 1)]
                                              < search[np.arange(len(best)), best])
        if not step.any():
            break
        best = best + step
    rows = np.arange(len(best))
    tau = (best + min_lag).astype(np.float64)
    # parabolic interpolation around the minimum
    left = cmnd[rows, np.maximum(best + min_lag - 1, 1)]
    mid = cmnd[rows, best + min_lag]
    right = cmnd[rows, np.minimum(best + min_lag + 1, max_lag)]
    denom = left - 2 * mid + right
    shift = np.where(np.abs(denom) > EPS, 0.5 * (left - right) / np.where(np.abs(denom) > EPS, denom, 1.0), 0.0)
    tau = tau + np.clip(shift, -1.0, 1.0)
    rms = np.sqrt(np.mean(frames[:, :window] ** 2, axis=1))
    voiced = (mid < threshold) & (rms > min_rms)
    f0 = np.where(voiced, sample_rate / tau, 0.0)
    return f0, voiced


def prosody(signal: np.ndarray, sample_rate: int = 16000, hop: int = HOP) -> np.ndarray:
    """PASE's 4 prosody targets per frame: interpolated log-F0, voiced flag, RMS energy, ZCR.

    Unvoiced frames take the log-F0 linearly interpolated between voiced neighbours (the edges
    hold the nearest voiced value); an utterance with no voiced frame has log-F0 0.
    """
    f0, voiced = yin_f0(signal, sample_rate, hop=hop)
    log_f0 = np.zeros_like(f0)
    if voiced.any():
        idx = np.flatnonzero(voiced)
        log_f0 = np.interp(np.arange(f0.size), idx, np.log(f0[idx]))
    energy = rms_energy(signal, 320, hop)
    zcr = zero_crossing_rate(signal, 320, hop)
    count = min(f0.size, energy.size)
    return np.stack([log_f0[:count], voiced[:count].astype(np.float64), energy[:count], zcr[:count]],
                    axis=1).astype(np.float32)
