"""The pieces of RemixIT and SRST that are pure functions (and so are unit-tested alone)."""
from __future__ import annotations

import numpy as np
import torch


def remix(speech: torch.Tensor, noise: torch.Tensor, perm: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """RemixIT's bootstrapped mixtures (eq. 3): x~_i = s~_i + n~_perm[i].

    Returns (mixtures, speech targets, noise targets); row i of the targets is exactly what row
    i of the mixture was made of, so the student learns s~_i and n~_perm[i] from x~_i.
    """
    noise_targets = noise[perm]
    return speech + noise_targets, speech, noise_targets


def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, momentum: float) -> None:
    """teacher <- momentum * teacher + (1 - momentum) * student (RemixIT's EMA teacher)."""
    with torch.no_grad():
        for t, s in zip(teacher.parameters(), student.parameters()):
            t.mul_(momentum).add_(s.detach(), alpha=1.0 - momentum)


def rank_source_by_similarity(target_prob: np.ndarray) -> np.ndarray:
    """Source sample indices, most target-like first (highest P(target) by the domain classifier);
    ties are broken by index so the ranking is deterministic."""
    return np.lexsort((np.arange(len(target_prob)), -np.asarray(target_prob)))


def random_ranking(count: int, seed: int) -> np.ndarray:
    """The "random source" variant: a random order, so a prefix is a random subset."""
    return np.random.default_rng(seed).permutation(count)


def source_share(epoch: int, start: float = 0.30, step: float = 0.03) -> float:
    """Share of the source set used in epoch `epoch` (1-based): start, start - step, ... >= 0."""
    return max(0.0, round(start - step * (epoch - 1), 10))


def source_weight(epoch: int, lambda0: float, start: float = 0.30, step: float = 0.03) -> float:
    """lambda_k, decreasing with the share: lambda0 * share_k / share_1 (0 once no source is left)."""
    return lambda0 * source_share(epoch, start, step) / start if start > 0 else 0.0


def select_subset(ranking: np.ndarray, share: float) -> np.ndarray:
    """The first round(share * N) indices of a ranking."""
    return ranking[: int(round(share * len(ranking)))]


def mixture_consistency(speech: torch.Tensor, noise: torch.Tensor, mixture: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Project two estimates so that they sum to the mixture (Wisdom et al. 2019, equal weights):
    each gets half of the residual x - (s + n). RemixIT applies it to the teacher's estimates."""
    residual = (mixture - speech - noise) / 2
    return speech + residual, noise + residual
