"""Generalized divisive normalization.

Ballé, Laparra, Simoncelli, "Density modeling of images using a generalized normalization transformation",
ICLR 2016 (GDN), and "End-to-end optimized image compression", ICLR 2017 (its inverse in the decoder):
``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)`` (GDN) or ``x_i * sqrt(...)`` (inverse GDN).

beta and gamma are stored reparameterized as in CompressAI (``stored = sqrt(value + 2**-36)``, lower-bounded
before squaring) so MLIC++ checkpoints load unchanged; row ``i`` of gamma belongs to output channel ``i``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..entropy.ops import LowerBound

_PEDESTAL = 2.0 ** -36


class NonNegativeParametrizer(nn.Module):
    """value = max(stored, sqrt(minimum + pedestal))**2 - pedestal."""

    def __init__(self, minimum: float = 0.0):
        super().__init__()
        self.pedestal = _PEDESTAL
        self.lower_bound = LowerBound((minimum + _PEDESTAL) ** 0.5)

    def init(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(torch.max(x + self.pedestal, torch.tensor(self.pedestal)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lower_bound(x)
        return out ** 2 - self.pedestal


class GDN(nn.Module):
    """GDN, or inverse GDN with ``inverse=True`` (see module docstring)."""

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = bool(inverse)
        self.beta_reparam = NonNegativeParametrizer(minimum=beta_min)
        self.gamma_reparam = NonNegativeParametrizer()
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.size(1)
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(c, c, 1, 1)
        norm = F.conv2d(x ** 2, gamma, beta)
        norm = torch.sqrt(norm) if self.inverse else torch.rsqrt(norm)
        return x * norm
