"""Batch augmentations for spectrogram regressors trained on listener scores: CutMix, MixUp,
and the left/right swap of stereo signals.

Scores travel as a padded matrix `scores` (batch, listeners) with a boolean `mask` of the same
shape (the listeners who rated each item; slot k of two items of the same listening test is the
same person). Mixing item A with item B mixes their scores per listener (Jiang et al. 2023,
eq. 5): y = lam y_A + (1 - lam) y_B, listener k of A paired with listener k of B when B has
one, otherwise with a listener of B drawn at random. A one-column matrix (mean scores, the
"non-GML" systems) is mixed the same way, which is mixing the means.

The features are mixed on the batch's device; the few random draws come from one CPU torch
generator (an argument), so a run is reproducible on any device.
"""
from __future__ import annotations

import math

import torch


def swap_left_right(wave: torch.Tensor) -> torch.Tensor:
    """(..., 2, samples) stereo -> channels swapped: M = (L+R)/2 is kept, S = (L-R)/2 negated."""
    return wave.flip(-2)


def swap_left_right_features(features: torch.Tensor) -> torch.Tensor:
    """The L/R swap on GML input features (batch, 4 [L, R, M, S], ...): L and R planes exchange;
    M is unchanged and S, negated in the waveform, has the same magnitude spectrogram."""
    return features[:, [1, 0, 2, 3]]


def pair_listeners(mask_a: torch.Tensor, mask_b: torch.Tensor, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """Index (batch, listeners) into B's slots for every slot of A: the same slot where B has that
    listener, else a random listener of B (every item has at least one)."""
    drawn = torch.multinomial(mask_b.float().cpu(), mask_a.shape[1], replacement=True,
                              generator=generator).to(mask_a.device)
    same = torch.arange(mask_a.shape[1], device=mask_a.device).expand_as(mask_a)
    return torch.where(mask_b, same, drawn)


def mix_scores(scores: torch.Tensor, mask: torch.Tensor, permutation: torch.Tensor, lam: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Eq. 5 per listener: lam y_A + (1 - lam) y_B, B = the items `permutation` picks; `lam` is a
    scalar or one value per item. The mask stays A's."""
    partner = pair_listeners(mask, mask[permutation], generator)
    partner_scores = torch.gather(scores[permutation], 1, partner)
    lam = lam.reshape(-1, 1) if lam.dim() else lam
    return lam * scores + (1 - lam) * partner_scores


def _beta(alpha: float, generator: torch.Generator | None, device) -> torch.Tensor:
    """One Beta(alpha, alpha) draw from the torch generator (two Gamma draws)."""
    shape = torch.full((2,), float(alpha), dtype=torch.float64)
    gammas = torch._standard_gamma(shape, generator=generator)
    return (gammas[0] / gammas.sum()).to(device=device, dtype=torch.float32)


def cutmix(features: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor, alpha: float = 0.7,
           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CutMix (Yun et al. 2019) on the last two axes (frequency, time) of `features`, labels per eq. 5.

    One lam ~ Beta(alpha, alpha) and one box per batch: the box has sides sqrt(1 - lam) of the
    plane's, a uniformly drawn centre, and is clipped to the plane; the box of each item is
    replaced by the same box of its partner (a random permutation of the batch), over every
    leading channel at once (reference and coded planes stay paired). lam is then recomputed from
    the clipped box (1 - box area / plane area) and used for the labels.

    Returns (mixed features, mixed scores, lam).
    """
    height, width = features.shape[-2:]
    lam = _beta(alpha, generator, features.device)
    ratio = math.sqrt(1.0 - float(lam))
    centre = torch.rand(2, generator=generator)
    cy, cx = int(centre[0] * height), int(centre[1] * width)
    half_h, half_w = int(height * ratio) // 2, int(width * ratio) // 2
    y0, y1 = max(cy - half_h, 0), min(cy + half_h, height)
    x0, x1 = max(cx - half_w, 0), min(cx + half_w, width)
    permutation = torch.randperm(features.shape[0], generator=generator).to(features.device)
    mixed = features.clone()
    mixed[..., y0:y1, x0:x1] = features[permutation][..., y0:y1, x0:x1]
    lam = torch.tensor(1.0 - (y1 - y0) * (x1 - x0) / (height * width), device=features.device)
    return mixed, mix_scores(scores, mask, permutation, lam, generator), lam


def mixup(features: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor, alpha: float = 0.7,
          generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MixUp (Zhang et al. 2018): features lam x_A + (1 - lam) x_B, labels per eq. 5; one lam per batch."""
    lam = _beta(alpha, generator, features.device)
    permutation = torch.randperm(features.shape[0], generator=generator).to(features.device)
    mixed = lam * features + (1 - lam) * features[permutation]
    return mixed, mix_scores(scores, mask, permutation, lam, generator), lam
