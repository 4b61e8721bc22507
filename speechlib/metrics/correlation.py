"""MOS prediction metrics: MSE, linear (Pearson, LCC) and rank (Spearman, SRCC) correlation."""
from __future__ import annotations

import numpy as np


def _pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64).ravel()
    t = np.asarray(target, dtype=np.float64).ravel()
    if p.shape != t.shape or p.size == 0:
        raise ValueError(f"predictions ({p.size}) and targets ({t.size}) must be equally many and non-empty")
    return p, t


def mse(pred, target) -> float:
    p, t = _pair(pred, target)
    return float(np.mean((p - t) ** 2))


def lcc(pred, target) -> float:
    """Pearson correlation; NaN when either side is constant (no linear relation defined)."""
    p, t = _pair(pred, target)
    p, t = p - p.mean(), t - t.mean()
    denom = np.sqrt(np.sum(p * p) * np.sum(t * t))
    return float(np.sum(p * t) / denom) if denom > 0 else float("nan")


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    boundaries = np.flatnonzero(np.diff(sorted_vals) != 0) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [values.size]])
    avg = (starts + ends + 1) / 2.0
    ranks = np.empty(values.size)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def srcc(pred, target) -> float:
    p, t = _pair(pred, target)
    return lcc(rank(p), rank(t))


def mos_metrics(pred, target) -> dict[str, float]:
    return {"mse": mse(pred, target), "lcc": lcc(pred, target), "srcc": srcc(pred, target)}
