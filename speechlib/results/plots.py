"""The figures a recipe's users expect, as PNG files (matplotlib, Agg backend).

- `loss_curves`: every trained system's per-epoch losses (written by the training helper).
- `det_curves`: speaker verification, miss vs false-alarm probability on normal-deviate axes.
- `scatter_lcc`: MOS prediction, predicted vs true with the linear correlation in the title.
- `metric_vs_snr`: enhancement, one line per system of a metric against the input SNR.
- `spectrograms`: enhancement, noisy / enhanced / clean side by side.

Every function writes atomically and returns the path; none needs a display.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from speechlib.io.atomic import atomic_path  # noqa: E402


def _save(fig, path: str | Path, tight: bool = True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight:  # not with a colorbar spanning several axes (matplotlib warns and misplaces it)
        fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def loss_curves(curve: str | Path | Sequence[Mapping], path: str | Path, title: str = "") -> Path:
    """Per-epoch curves from loss_curve.json rows `{"epoch": 1, "train": {...}, "valid": {...}}`:
    every loss-like statistic (name containing "loss") of train and valid, against the epoch."""
    rows = json.loads(Path(curve).read_text()) if isinstance(curve, (str, Path)) else list(curve)
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [row["epoch"] for row in rows]
    for split, style in (("train", "-"), ("valid", "--")):
        names = sorted({key for row in rows for key in (row.get(split) or {}) if "loss" in key})
        for name in names:
            values = [(row.get(split) or {}).get(name, np.nan) for row in rows]
            ax.plot(epochs, values, style, marker="o", label=f"{split} {name}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title or "loss curves")
    if ax.lines:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def det_curves(systems: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | Path,
               title: str = "DET") -> Path:
    """DET curves: for each system (target scores, non-target scores), miss rate against
    false-alarm rate on normal-deviate (probit) axes, as in NIST's plots."""
    from scipy.stats import norm

    fig, ax = plt.subplots(figsize=(5, 5))
    ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95])
    for name, (target, nontarget) in systems.items():
        fa, miss = det_points(np.asarray(target, float), np.asarray(nontarget, float))
        clip = np.clip
        ax.plot(norm.ppf(clip(fa, 1e-4, 1 - 1e-4)), norm.ppf(clip(miss, 1e-4, 1 - 1e-4)), label=name)
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_xlabel("false-alarm rate (%)")
    ax.set_ylabel("miss rate (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def det_points(target: np.ndarray, nontarget: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False-alarm and miss rates at every threshold between sorted scores (ties together)."""
    scores = np.concatenate([target, nontarget])
    labels = np.concatenate([np.ones(len(target)), np.zeros(len(nontarget))])
    order = np.argsort(scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    # threshold just above each distinct score: accepted = scores > threshold
    last_of_tie = np.r_[scores[1:] != scores[:-1], True]
    misses = np.cumsum(labels)[last_of_tie]            # targets at or below the threshold
    false_alarms = len(nontarget) - np.cumsum(1 - labels)[last_of_tie]
    miss = np.r_[0.0, misses / max(len(target), 1)]
    fa = np.r_[1.0, false_alarms / max(len(nontarget), 1)]
    return fa, miss


def scatter_lcc(true: Sequence[float], predicted: Sequence[float], path: str | Path,
                title: str = "predicted vs true") -> Path:
    """Predicted against true scores, the identity line, and the Pearson LCC in the title."""
    true, predicted = np.asarray(true, float), np.asarray(predicted, float)
    lcc = float(np.corrcoef(true, predicted)[0, 1]) if len(true) > 1 else float("nan")
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(true, predicted, s=10, alpha=0.7)
    low = float(np.nanmin(np.r_[true, predicted])) if len(true) else 0.0
    high = float(np.nanmax(np.r_[true, predicted])) if len(true) else 1.0
    ax.plot([low, high], [low, high], "k--", linewidth=0.8)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title(f"{title} (LCC {lcc:.3f}, n={len(true)})")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def metric_vs_snr(curves: Mapping[str, Mapping[float, float]], path: str | Path, metric: str,
                  title: str = "") -> Path:
    """One line per system: `metric` against the input SNR (dB)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in curves.items():
        snrs = sorted(points)
        ax.plot(snrs, [points[snr] for snr in snrs], marker="o", label=name)
    ax.set_xlabel("input SNR (dB)")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} vs input SNR")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def spectrograms(signals: Mapping[str, np.ndarray], sample_rate: int, path: str | Path,
                 title: str = "", n_fft: int = 512) -> Path:
    """Log-magnitude spectrograms stacked vertically (e.g. noisy / enhanced / clean), on one
    colour scale so that what the enhancement removed is visible."""
    from scipy.signal import stft

    specs = {}
    for name, signal in signals.items():
        freqs, times, spec = stft(np.asarray(signal, float), fs=sample_rate, nperseg=n_fft,
                                  noverlap=n_fft * 3 // 4)
        specs[name] = (freqs, times, 20 * np.log10(np.abs(spec) + 1e-8))
    top = max(float(s[2].max()) for s in specs.values())
    fig, axes = plt.subplots(len(specs), 1, figsize=(7, 2.2 * len(specs)), squeeze=False)
    for ax, (name, (freqs, times, db)) in zip(axes[:, 0], specs.items()):
        mesh = ax.pcolormesh(times, freqs / 1000, db, vmin=top - 80, vmax=top, shading="auto", cmap="magma")
        ax.set_ylabel("kHz")
        ax.set_title(name, fontsize=9)
    axes[-1, 0].set_xlabel("time (s)")
    fig.colorbar(mesh, ax=axes[:, 0].tolist(), label="dB")
    if title:
        fig.suptitle(title)
    return _save(fig, path, tight=False)
