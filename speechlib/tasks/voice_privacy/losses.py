"""The joint-training losses, eqs. (2)-(9) of Guo et al., per utterance then batch-averaged.

Norms are L2 norms (not squared, as written in the paper) over the valid samples of each
utterance, *normalised for length*: ||v|| * sqrt(N_ref / N) for an utterance of N valid samples,
i.e. the RMS of v times sqrt(N_ref). A plain norm grows with sqrt(N), so the same beta would weigh
the quality term 1.22x more on a 3 s crop than on a 2 s one and not at all the same on whole
utterances; with the normalisation beta means the same at every crop length, and N_ref = 48000
(the 3 s crops of the paper-scale config) keeps the paper's weights at their published scale.
`norm_samples=None` gives the plain norms. Padding beyond an utterance's length is masked out, so
batching does not change the values.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LossWeights:
    """The weights of eqs. (3), (4), (8), (9) (paper: 0.01, 0.007, 0.8, 0.06) and N_ref."""

    alpha: float          # mask-norm weight inside L_quality, eq. (3)
    beta: float           # quality weight inside L_SSED, eq. (4)
    gamma: float          # noise weight inside L_rpt, eq. (8)
    theta: float          # rpt weight in the total, eq. (9)
    norm_samples: float | None  # N_ref of the length normalisation (None: plain norms)


def masked_norm(values: torch.Tensor, valid: torch.Tensor | None = None,
                norm_samples: float | None = None) -> torch.Tensor:
    """L2 norm over time of (batch, time) values, counting only valid samples -> (batch,);
    with `norm_samples`, rescaled to that many samples: ||v|| sqrt(norm_samples / N_valid)."""
    if valid is not None:
        values = values * valid
    norm = torch.sqrt((values**2).sum(dim=-1) + 1e-12)
    if norm_samples is None:
        return norm
    count = valid.sum(dim=-1) if valid is not None else torch.full_like(norm, values.shape[-1])
    return norm * torch.sqrt(norm_samples / count.clamp(min=1))


def angular_loss(z: torch.Tensor, z_adv: torch.Tensor) -> torch.Tensor:
    """Eq. (2): cosine of the original and adversarial embeddings, (batch,)."""
    return (z * z_adv).sum(-1) / (z.norm(dim=-1) * z_adv.norm(dim=-1) + 1e-12)


def quality_loss(x: torch.Tensor, x_adv: torch.Tensor, mask: torch.Tensor, alpha: float,
                 valid: torch.Tensor | None = None, norm_samples: float | None = None) -> torch.Tensor:
    """Eq. (3): (1 - alpha) ||x' - x|| + alpha ||m||."""
    return ((1 - alpha) * masked_norm(x_adv - x, valid, norm_samples)
            + alpha * masked_norm(mask, valid, norm_samples))


def ssed_loss(angular: torch.Tensor, quality: torch.Tensor, beta: float) -> torch.Tensor:
    """Eq. (4)."""
    return (1 - beta) * angular + beta * quality


def noise_loss(noise: torch.Tensor, noise_rev: torch.Tensor, valid: torch.Tensor | None = None,
               norm_samples: float | None = None) -> torch.Tensor:
    """Eq. (6): ||n + n'|| (n' should be the reverse of n)."""
    return masked_norm(noise + noise_rev, valid, norm_samples)


def mask_loss(mask: torch.Tensor, mask_rev: torch.Tensor, valid: torch.Tensor | None = None,
              norm_samples: float | None = None) -> torch.Tensor:
    """Eq. (7): ||m - m'||."""
    return masked_norm(mask - mask_rev, valid, norm_samples)


def rpt_loss(mask_term: torch.Tensor, noise_term: torch.Tensor, gamma: float) -> torch.Tensor:
    """Eq. (8): (1 - gamma) L_mask + gamma L_noise."""
    return (1 - gamma) * mask_term + gamma * noise_term


def total_loss(ssed: torch.Tensor, rpt: torch.Tensor, theta: float) -> torch.Tensor:
    """Eq. (9): (1 - theta) L_SSED + theta L_rpt."""
    return (1 - theta) * ssed + theta * rpt


def weighted_terms(terms: dict[str, torch.Tensor], weights: LossWeights) -> dict[str, torch.Tensor]:
    """The three parts of eq. (9) with their weights, angular (1 - theta)(1 - beta) L_angular,
    quality (1 - theta) beta L_quality, rpt theta L_rpt: their sum is `terms["total"]`. What each
    part pulls on is what stage 2 logs (the size of each one's gradient on the generator)."""
    return {"angular": (1 - weights.theta) * (1 - weights.beta) * terms["angular"],
            "quality": (1 - weights.theta) * weights.beta * terms["quality"],
            "rpt": weights.theta * terms["rpt"]}


def _removal_terms(noise, mask, noise_rev, mask_rev, weights, valid) -> dict[str, torch.Tensor]:
    """Eqs. (6)-(8) per utterance."""
    noise_term = noise_loss(noise, noise_rev, valid, weights.norm_samples)
    mask_term = mask_loss(mask, mask_rev, valid, weights.norm_samples)
    return {"noise": noise_term, "mask": mask_term, "rpt": rpt_loss(mask_term, noise_term, weights.gamma)}


def removal_losses(noise: torch.Tensor, mask: torch.Tensor, noise_rev: torch.Tensor, mask_rev: torch.Tensor,
                   weights: LossWeights, valid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """L_rpt (eq. (8)) and its two terms, batch-averaged: what the remover alone is trained on
    when the generator is frozen (two-phase training)."""
    return {name: value.mean() for name, value in _removal_terms(noise, mask, noise_rev, mask_rev, weights,
                                                                  valid).items()}


def joint_losses(x: torch.Tensor, x_adv: torch.Tensor, z: torch.Tensor, z_adv: torch.Tensor,
                 noise: torch.Tensor, mask: torch.Tensor, noise_rev: torch.Tensor, mask_rev: torch.Tensor,
                 weights: LossWeights, valid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Every term, batch-averaged; `total` is what is minimised."""
    angular = angular_loss(z, z_adv)
    quality = quality_loss(x, x_adv, mask, weights.alpha, valid, weights.norm_samples)
    ssed = ssed_loss(angular, quality, weights.beta)
    removal = _removal_terms(noise, mask, noise_rev, mask_rev, weights, valid)
    total = total_loss(ssed, removal["rpt"], weights.theta)
    terms = {"angular": angular, "quality": quality, "ssed": ssed, **removal, "total": total}
    return {name: value.mean() for name, value in terms.items()}
