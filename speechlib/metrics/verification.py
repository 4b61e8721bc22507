"""Speaker-verification scoring: cosine scores, EER, minDCF, DET points and bootstrap CIs.

The EER, the minDCF, the DET points and the bootstrap's threshold grid come from one sort of
the scores (O(n log n), `SortedTrials`); the definitions are spelled out in `eer` and `min_dcf`
and checked against brute-force sweeps in the tests.

Confidence intervals are bootstrap percentiles. Trials of one enrolment speaker are not
independent (they share the enrolment utterance and the speaker), so the resampling unit is a
*group* (the enrolment speaker): each replicate draws the groups with replacement and weights
each group's trials by how often it was drawn. Replicates are computed from per-group histograms
of the scores over a threshold grid (all distinct scores when there are at most `max_bins`,
otherwise that many score quantiles), so a replicate costs O(groups x bins) instead of a sort:
1,000 replicates over a million trials take well under a second. The same group weights serve
every condition scored on the same trials, which gives paired differences (e.g. rec-adv minus
rec-noise) their own CI.
"""
from __future__ import annotations

import numpy as np

CI_LEVEL = 0.95


def cosine_scores(enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (n, dim) embedding arrays."""
    enroll = enroll / np.maximum(np.linalg.norm(enroll, axis=1, keepdims=True), 1e-12)
    test = test / np.maximum(np.linalg.norm(test, axis=1, keepdims=True), 1e-12)
    return np.sum(enroll * test, axis=1)


def _check(labels: np.ndarray) -> tuple[int, int]:
    n_target, n_nontarget = int(labels.sum()), int((~labels).sum())
    if n_target == 0 or n_nontarget == 0:
        raise ValueError(f"verification metrics need target and non-target trials (got {n_target} and {n_nontarget})")
    return n_target, n_nontarget


class SortedTrials:
    """The trials sorted once by score: what the EER, the minDCF, the DET points and the
    bootstrap's threshold grid all read (one O(n log n) sort instead of one per measure)."""

    def __init__(self, scores: np.ndarray, labels: np.ndarray) -> None:
        scores = np.asarray(scores, np.float64)
        labels = np.asarray(labels, bool)
        self.n_target, self.n_nontarget = _check(labels)
        self.order = np.argsort(scores)  # ties need no order: a threshold takes a tie group whole
        self.scores, self.labels = scores[self.order], labels[self.order]
        starts = np.empty(len(scores), bool)
        starts[0] = True
        np.not_equal(self.scores[1:], self.scores[:-1], out=starts[1:])
        self.first = np.flatnonzero(starts)  # index of the first trial of each distinct score

    def error_rates(self) -> tuple[np.ndarray, np.ndarray]:
        targets_before = np.concatenate([[0], np.cumsum(self.labels)])[self.first]
        nontargets_before = self.first - targets_before
        frr = np.append(targets_before / self.n_target, 1.0)
        far = np.append((self.n_nontarget - nontargets_before) / self.n_nontarget, 0.0)
        return far, frr

    def threshold_grid(self, max_bins: int) -> np.ndarray:
        """Every distinct score, or `max_bins` quantiles (np.quantile's linear definition)."""
        if self.first.size <= max_bins:
            return self.scores[self.first]
        position = np.linspace(0, 1, max_bins) * (self.scores.size - 1)
        low = np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, self.scores.size - 1)
        fraction = position - low
        return np.unique(self.scores[low] + fraction * (self.scores[high] - self.scores[low]))


def error_rates(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-acceptance, false-rejection) rates at every distinct score used as threshold
    (accept when score >= threshold), plus a threshold above every score. These are also the
    points of the DET curve."""
    return SortedTrials(scores, labels).error_rates()


def _eer_from_rates(far: np.ndarray, frr: np.ndarray) -> np.ndarray:
    """EER along the last axis: at the threshold(s) where |FAR - FRR| is smallest, the smallest
    (FAR + FRR) / 2."""
    gap = np.abs(far - frr)
    tied = gap <= gap.min(axis=-1, keepdims=True)
    return np.where(tied, (far + frr) / 2, np.inf).min(axis=-1)


def _dcf_from_rates(far: np.ndarray, frr: np.ndarray, p_target: float, c_miss: float = 1.0,
                    c_fa: float = 1.0) -> np.ndarray:
    """Normalised minimum detection cost along the last axis (NIST SRE definition)."""
    cost = c_miss * p_target * frr + c_fa * (1 - p_target) * far
    return cost.min(axis=-1) / min(c_miss * p_target, c_fa * (1 - p_target))


def eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """Equal error rate in [0, 1]: at the threshold where |FAR - FRR| is smallest,
    (FAR + FRR) / 2. Perfect separation gives 0, identical scores 0.5, inverted scores 1."""
    return float(_eer_from_rates(*error_rates(scores, labels)))


def min_dcf(scores: np.ndarray, labels: np.ndarray, p_target: float, c_miss: float = 1.0,
            c_fa: float = 1.0) -> float:
    """min over thresholds of C_miss P_target FRR + C_fa (1 - P_target) FAR, divided by the cost
    of the better trivial system, min(C_miss P_target, C_fa (1 - P_target)). 1 = no better than
    always accepting or always rejecting."""
    return float(_dcf_from_rates(*error_rates(scores, labels), p_target, c_miss, c_fa))


def group_weights(n_groups: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """(n_boot, n_groups) counts: how often each group is drawn in each bootstrap replicate."""
    rng = np.random.default_rng(seed)
    # n_groups uniform draws per replicate, counted: the multinomial, 10x faster than rng.multinomial
    draws = rng.integers(0, n_groups, (n_boot, n_groups)) + n_groups * np.arange(n_boot)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n_groups).reshape(n_boot, n_groups).astype(np.float64)


def bootstrap_replicates(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, weights: np.ndarray,
                         p_targets: tuple[float, ...] = (0.01, 0.05), max_bins: int = 2000,
                         trials: SortedTrials | None = None) -> dict[str, np.ndarray]:
    """EER and minDCF of every replicate, (n_boot,) each. `groups`: a group index in
    [0, weights.shape[1]) per trial; `weights`: from `group_weights`; `trials`: the same
    scores and labels already sorted (verification_summary shares its sort)."""
    trials = trials if trials is not None else SortedTrials(scores, labels)
    grid = trials.threshold_grid(max_bins)
    n_groups, bins = weights.shape[1], grid.size
    # bin k holds the sorted scores in [grid[k], grid[k + 1]): it starts where grid[k] would be inserted
    starts = np.searchsorted(trials.scores, grid[1:], side="left")
    sorted_bins = np.cumsum(np.bincount(starts, minlength=trials.scores.size)[: trials.scores.size])
    index = np.asarray(groups, np.int64)[trials.order] * (2 * bins) + sorted_bins + bins * (~trials.labels)
    hist = np.bincount(index, minlength=n_groups * 2 * bins).reshape(n_groups, 2 * bins)
    # integer counts: float32 products and sums are exact below 2**24, and twice as fast
    exact32 = float(weights.max(initial=0)) * float(hist.sum(axis=0).max(initial=0)) < 2**24
    dtype = np.float32 if exact32 else np.float64
    boot = (weights.astype(dtype) @ hist.astype(dtype)).astype(np.float64)  # (n_boot, 2 bins)
    cum_t, cum_n = np.cumsum(boot[:, :bins], axis=1), np.cumsum(boot[:, bins:], axis=1)
    total_t, total_n = cum_t[:, -1:], cum_n[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        # threshold grid[k] accepts bins >= k: misses are the targets in bins < k
        below_t = np.concatenate([np.zeros_like(total_t), cum_t], axis=1)
        below_n = np.concatenate([np.zeros_like(total_n), cum_n], axis=1)
        frr, far = below_t / total_t, (total_n - below_n) / total_n
    out = {"eer": _eer_from_rates(far, frr)}
    for p in p_targets:
        out[f"min_dcf_{p:g}"] = _dcf_from_rates(far, frr, p)
    degenerate = (total_t[:, 0] == 0) | (total_n[:, 0] == 0)  # a replicate without targets or non-targets
    return {name: np.where(degenerate, np.nan, values) for name, values in out.items()}


def percentile_ci(replicates: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile interval of the finite replicates."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def verification_summary(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, weights: np.ndarray,
                         p_targets: tuple[float, ...] = (0.01, 0.05),
                         max_bins: int = 2000) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Point values (exact, from all trials) with their CIs, and the replicates for paired
    comparisons: ({"eer": .., "eer_lo": .., "eer_hi": .., "min_dcf_0.01": .., ...}, replicates)."""
    trials = SortedTrials(scores, labels)
    far, frr = trials.error_rates()
    point = {"eer": float(_eer_from_rates(far, frr))}
    for p in p_targets:
        point[f"min_dcf_{p:g}"] = float(_dcf_from_rates(far, frr, p))
    replicates = bootstrap_replicates(scores, labels, groups, weights, p_targets, max_bins, trials)
    summary = {}
    for name, value in point.items():
        low, high = percentile_ci(replicates[name])
        summary.update({name: value, f"{name}_lo": low, f"{name}_hi": high})
    summary.update({"targets": trials.n_target, "nontargets": trials.n_nontarget})
    return summary, replicates
