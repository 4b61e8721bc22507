"""MUSHRA statistics: score-distribution NLLs, t-based confidence intervals, and the criteria of
Jiang et al. (GML): R_p, R_s and outlier ratio of mean scores, R_p, R_s and RMSE of CIs, plus CI
coverage and the NLL of held-out individual scores.

The NLLs (per score s, model outputs mu and a log scale):
  logistic, scale a:   log(4 a) + 2 log cosh((s - mu) / (2 a))     [pdf sech^2(x/2a) / 4a]
  gaussian, std sigma: log(sqrt(2 pi) sigma) + (s - mu)^2 / (2 sigma^2)
The paper prints eq. 3 with "+ 2 log sech" and eq. 2 with "log sqrt(2 pi sigma)"; both are typos
(the first is not bounded below, the second not a density's NLL): the correct forms are used here.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

from speechlib.metrics.correlation import lcc, srcc


def log_cosh(x: torch.Tensor) -> torch.Tensor:
    """log cosh x without overflow: |x| + log(1 + exp(-2|x|)) - log 2."""
    x = x.abs()
    return x + torch.nn.functional.softplus(-2 * x) - math.log(2.0)


def logistic_nll(scores: torch.Tensor, mu: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Elementwise NLL of `scores` under Logistic(mu, a = exp(log_scale)) (eq. 3, corrected sign)."""
    return math.log(4.0) + log_scale + 2 * log_cosh((scores - mu) / (2 * torch.exp(log_scale)))


def gaussian_nll(scores: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """Elementwise NLL of `scores` under N(mu, sigma = exp(log_sigma)) (eq. 2, corrected)."""
    z = (scores - mu) * torch.exp(-log_sigma)
    return 0.5 * math.log(2 * math.pi) + log_sigma + 0.5 * z * z


NLLS = {"logistic": logistic_nll, "gaussian": gaussian_nll}


def distribution_std(log_scale, distribution: str):
    """Standard deviation of the predicted score distribution: pi a / sqrt 3 (logistic), sigma."""
    scale = np.exp(np.asarray(log_scale, dtype=np.float64))
    return scale * math.pi / math.sqrt(3) if distribution == "logistic" else scale


def sample_scores(mu, log_scale, distribution: str, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` simulated listener scores per item (items, count): the generative use of the model."""
    mu = np.asarray(mu, dtype=np.float64)[..., None]
    scale = np.exp(np.asarray(log_scale, dtype=np.float64))[..., None]
    draw = rng.logistic if distribution == "logistic" else rng.normal
    return draw(mu, scale, size=mu.shape[:-1] + (count,))


def t_ci_halfwidth(std, listeners, level: float = 0.95):
    """Half-width of the t-based CI of a mean of `listeners` scores with standard deviation `std`."""
    n = np.asarray(listeners, dtype=np.float64)
    return stats.t.ppf(0.5 + level / 2, n - 1) * np.asarray(std, dtype=np.float64) / np.sqrt(n)


def panel_statistics(scores: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: (mean, sample std (ddof 1), listeners) of the masked scores (items, listeners)."""
    n = mask.sum(axis=1)
    mean = np.where(mask, scores, 0).sum(axis=1) / n
    var = np.where(mask, (scores - mean[:, None]) ** 2, 0).sum(axis=1) / np.maximum(n - 1, 1)
    return mean, np.sqrt(var), n


def outlier_ratio(predicted_mean, subjective_mean, subjective_ci) -> float:
    """Share of items whose prediction lies outside the subjective mean's 95 % CI."""
    error = np.abs(np.asarray(predicted_mean, float) - np.asarray(subjective_mean, float))
    return float(np.mean(error > np.asarray(subjective_ci, float)))


def ci_coverage(predicted_mean, predicted_ci, subjective_mean) -> float:
    """Share of items whose subjective mean lies inside the predicted CI (ours, beyond the paper)."""
    error = np.abs(np.asarray(predicted_mean, float) - np.asarray(subjective_mean, float))
    return float(np.mean(error <= np.asarray(predicted_ci, float)))


def rmse(pred, target) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, float) - np.asarray(target, float)) ** 2)))


def test_set_metrics(predicted_mean, subjective_mean, subjective_ci, predicted_ci=None) -> dict[str, float]:
    """Table I(a) (R_p, R_s, OR of means) and, with `predicted_ci`, Table I(b) (R_p, R_s, RMSE of CIs)
    and the CI coverage."""
    out = {"rp": lcc(predicted_mean, subjective_mean), "rs": srcc(predicted_mean, subjective_mean),
           "or": outlier_ratio(predicted_mean, subjective_mean, subjective_ci)}
    if predicted_ci is not None:
        out.update(ci_rp=lcc(predicted_ci, subjective_ci), ci_rs=srcc(predicted_ci, subjective_ci),
                   ci_rmse=rmse(predicted_ci, subjective_ci),
                   coverage=ci_coverage(predicted_mean, predicted_ci, subjective_mean))
    return out


def mean_and_ci(values, level: float = 0.95) -> tuple[float, float]:
    """Mean over seeds (or runs) and the half-width of its t-based CI (NaN for one value)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    if values.size == 1:
        return float(values[0]), float("nan")
    return float(values.mean()), float(t_ci_halfwidth(values.std(ddof=1), values.size, level))
