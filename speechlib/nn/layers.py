"""Layers without a home in torch.nn: gradient reversal (Ganin et al., 2016) for DANN."""
from __future__ import annotations

import torch


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the backward pass multiplies the incoming gradient by -scale."""

    @staticmethod
    def forward(ctx, inputs: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return inputs.view_as(inputs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.scale * grad, None


def reverse_gradient(inputs: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    return _ReverseGradient.apply(inputs, scale)


class GradientReversal(torch.nn.Module):
    """Placed between a feature extractor and a domain classifier: the classifier minimises
    its loss while the extractor, receiving the negated gradient, maximises it."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return reverse_gradient(inputs, self.scale)
