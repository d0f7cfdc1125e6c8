"""Small differentiable operators shared by the entropy models."""

from __future__ import annotations

import torch
import torch.nn as nn


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer (half to even) with a straight-through gradient.

    The float value equals ``torch.round(x)`` exactly (``(r - x) + x`` is exact when ``r`` and ``x`` are
    within a factor of two, Sterbenz), so training-mode and coding-mode reconstructions agree.
    """
    return (torch.round(x) - x).detach() + x


class _LowerBoundFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx, grad):
        x, bound = ctx.saved_tensors
        # let gradients through where x is above the bound or where they push x up towards it
        pass_through = (x >= bound) | (grad < 0)
        return pass_through.type(grad.dtype) * grad, None


class LowerBound(nn.Module):
    """max(x, bound) whose gradient does not vanish below the bound (Ballé et al. 2018, CompressAI's
    ``LowerBound``)."""

    def __init__(self, bound: float):
        super().__init__()
        self.register_buffer("bound", torch.tensor([float(bound)]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting() or not x.requires_grad:
            return torch.max(x, self.bound.to(x.dtype))
        return _LowerBoundFn.apply(x, self.bound.to(x.dtype))
