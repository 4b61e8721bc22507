"""Speaker-verification scoring: cosine scores and the equal error rate.

The EER is computed from one sort of the scores (O(n log n)), so a million trials take well under
a second; the definition is spelled out in `eer` and checked against a brute-force sweep.
"""
from __future__ import annotations

import numpy as np


def cosine_scores(enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (n, dim) embedding arrays."""
    enroll = enroll / np.maximum(np.linalg.norm(enroll, axis=1, keepdims=True), 1e-12)
    test = test / np.maximum(np.linalg.norm(test, axis=1, keepdims=True), 1e-12)
    return np.sum(enroll * test, axis=1)


def error_rates(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-acceptance, false-rejection) rates at every distinct score used as threshold
    (accept when score >= threshold), plus a threshold above every score."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, bool)
    n_target, n_nontarget = int(labels.sum()), int((~labels).sum())
    if n_target == 0 or n_nontarget == 0:
        raise ValueError(f"EER needs target and non-target trials (got {n_target} and {n_nontarget})")
    order = np.argsort(scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    thresholds = np.unique(sorted_scores)
    first = np.searchsorted(sorted_scores, thresholds, side="left")
    targets_below = np.concatenate([[0], np.cumsum(sorted_labels)])[first]
    nontargets_below = first - targets_below
    frr = np.append(targets_below / n_target, 1.0)
    far = np.append((n_nontarget - nontargets_below) / n_nontarget, 0.0)
    return far, frr


def eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """Equal error rate in [0, 1]: at the threshold where |FAR - FRR| is smallest,
    (FAR + FRR) / 2. Perfect separation gives 0, identical scores 0.5, inverted scores 1."""
    far, frr = error_rates(scores, labels)
    gap = np.abs(far - frr)
    candidates = np.flatnonzero(gap == gap.min())
    return float(np.min((far[candidates] + frr[candidates]) / 2))
