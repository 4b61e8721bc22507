"""Uncertainty of results trained with several seeds: t intervals over seeds and a two-level
bootstrap of the difference between two systems evaluated on the same test items.

Why two levels: a difference between two rows of a table has two sources of noise, the test
items (shared by both rows: resampled *paired*) and the training seeds (each row has its own:
resampled independently). Resampling only the items would ignore the seed-to-seed spread that
made the old single-run ablation undecidable; resampling only the seeds would ignore the finite
test set.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.stats


def t_interval(values, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, std, low, high): Student-t interval of the mean of independent `values`.
    With one value the std and interval are nan."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if values.size < 2:
        return mean, float("nan"), float("nan"), float("nan")
    std = float(values.std(ddof=1))
    half = float(scipy.stats.t.ppf(0.5 + confidence / 2, values.size - 1)) * std / np.sqrt(values.size)
    return mean, std, mean - half, mean + half


def batch_lcc(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of pred (..., n) with the matching row of target (..., n)."""
    p = pred - pred.mean(-1, keepdims=True)
    t = target - target.mean(-1, keepdims=True)
    denom = np.sqrt((p * p).sum(-1) * (t * t).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (p * t).sum(-1) / np.where(denom > 0, denom, 1.0), np.nan)


def batch_srcc(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Spearman correlation row by row (average ranks for ties, as scipy)."""
    return batch_lcc(scipy.stats.rankdata(pred, axis=-1), scipy.stats.rankdata(target, axis=-1))


def batch_mse(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    return ((pred - target) ** 2).mean(-1)


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mse": batch_mse, "lcc": batch_lcc, "srcc": batch_srcc}


def seeded_difference(system: np.ndarray, baseline: np.ndarray, target: np.ndarray, metric: str,
                      samples: int = 2000, seed: int = 0, confidence: float = 0.95, chunk: int = 200
                      ) -> tuple[float, float, float]:
    """Difference (system - baseline) of the seed-averaged metric, with a two-level bootstrap CI.

    system: (seeds_a, heads, items) predictions, baseline: (seeds_b, heads, items), target:
    (items,). Each resample draws the items with replacement (the same for both systems) and
    each system's pre-training seeds with replacement (independently); the metric is averaged
    over the drawn seeds and all heads. Returns (observed difference, low, high).
    """
    fn = METRICS[metric]
    target = np.asarray(target, dtype=np.float64)

    observed = float(np.nanmean(fn(system, np.broadcast_to(target, system.shape))) -
                     np.nanmean(fn(baseline, np.broadcast_to(target, baseline.shape))))
    rng = np.random.default_rng(seed)
    n = target.size
    diffs = []
    for start in range(0, samples, chunk):  # resamples in vectorised chunks
        count = min(chunk, samples - start)
        items = rng.integers(n, size=(count, n))
        t = target[items][:, None, None, :]
        values = []
        for pred in (system, baseline):
            seeds = rng.integers(pred.shape[0], size=(count, pred.shape[0]))
            picked = np.take_along_axis(pred[seeds], items[:, None, None, :], axis=-1)  # (count, s, heads, n)
            values.append(np.nanmean(fn(picked, np.broadcast_to(t, picked.shape)).reshape(count, -1), axis=1))
        diffs.append(values[0] - values[1])
    diffs = np.concatenate(diffs)
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(diffs, [alpha, 1 - alpha])
    return observed, float(low), float(high)


def seeded_accuracy_difference(system: np.ndarray, baseline: np.ndarray, samples: int = 2000, seed: int = 0,
                               confidence: float = 0.95) -> tuple[float, float, float]:
    """Difference of mean accuracy, system (seeds_a, items) vs baseline (seeds_b, items) of 0/1
    correctness on the same items, with the same two-level bootstrap as `seeded_difference`."""
    system, baseline = np.asarray(system, float), np.asarray(baseline, float)
    observed = float(system.mean() - baseline.mean())
    rng = np.random.default_rng(seed)
    n = system.shape[1]
    diffs = np.empty(samples)
    for b in range(samples):
        items = rng.integers(n, size=n)
        sa = system[rng.integers(system.shape[0], size=system.shape[0])][:, items]
        sb = baseline[rng.integers(baseline.shape[0], size=baseline.shape[0])][:, items]
        diffs[b] = sa.mean() - sb.mean()
    alpha = (1 - confidence) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    return observed, float(low), float(high)
