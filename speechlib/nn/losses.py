"""Training losses on waveforms."""
from __future__ import annotations

import torch

EPS = 1e-8


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor, zero_mean: bool = True) -> torch.Tensor:
    """Scale-invariant SDR in dB along the last axis (Le Roux et al., 2019), one value per row.

    alpha = <s_hat, s> / ||s||^2 projects the estimate on the reference;
    SI-SDR = 10 log10(||alpha s||^2 / ||alpha s - s_hat||^2).
    """
    if zero_mean:
        estimate = estimate - estimate.mean(dim=-1, keepdim=True)
        reference = reference - reference.mean(dim=-1, keepdim=True)
    alpha = (estimate * reference).sum(-1, keepdim=True) / (reference.pow(2).sum(-1, keepdim=True) + EPS)
    target = alpha * reference
    residual = target - estimate
    return 10 * torch.log10((target.pow(2).sum(-1) + EPS) / (residual.pow(2).sum(-1) + EPS))


def neg_si_sdr(estimate: torch.Tensor, reference: torch.Tensor, clamp: float | None = None) -> torch.Tensor:
    """Per-row negative SI-SDR; `clamp` bounds it to [-clamp, clamp] as RemixIT does, so that
    near-perfect rows cannot dominate the batch."""
    loss = -si_sdr(estimate, reference)
    return loss.clamp(-clamp, clamp) if clamp else loss


def speech_noise_loss(speech_est: torch.Tensor, noise_est: torch.Tensor, speech: torch.Tensor,
                      noise: torch.Tensor, clamp: float | None = None,
                      noise_weight: float = 1.0) -> torch.Tensor:
    """Per-row -SI-SDR(speech) + noise_weight * -SI-SDR(noise) (the paper's loss, weight 1)."""
    return neg_si_sdr(speech_est, speech, clamp) + noise_weight * neg_si_sdr(noise_est, noise, clamp)
