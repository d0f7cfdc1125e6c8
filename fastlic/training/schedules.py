"""Learning-rate schedules as ``LambdaLR`` factors (their state is just the step, so resume is exact).

* ``multistep``: factor ``gamma^k`` after the k-th milestone (MLIC++: 1e-4, ×0.1 late in training).
* ``cosine``: linear warm-up over ``warmup`` steps, then cosine decay to ``min_factor`` at ``steps``.
* ``constant``.
"""

from __future__ import annotations

import bisect
import math

import torch


def lr_factor(kind: str, *, steps: int, milestones=(), gamma: float = 0.1, warmup: int = 0,
              min_factor: float = 0.0):
    milestones = sorted(int(m) for m in milestones)
    if kind == "constant":
        return lambda step: 1.0
    if kind == "multistep":
        def multistep(step):
            warm = min(1.0, (step + 1) / warmup) if warmup else 1.0
            return warm * gamma ** bisect.bisect_right(milestones, step)
        return multistep
    if kind == "cosine":
        def cosine(step):
            if warmup and step < warmup:
                return (step + 1) / warmup
            t = min(1.0, (step - warmup) / max(1, steps - warmup))
            return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * t))
        return cosine
    raise ValueError(f"unknown lr schedule {kind!r} (multistep, cosine, constant)")


def make_scheduler(optimizer, kind: str, **kwargs):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(kind, **kwargs))
