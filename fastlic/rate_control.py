"""Rate control for variable-rate models: find the quality that meets a target bpp or PSNR.

The quality of a variable-rate model (:mod:`fastlic.models.gain`) is a float on a 1/1024 grid. The real file
size and the PSNR of the decoded image are (nearly) monotone non-decreasing in it, so a bisection on real
encodings finds the quality for a target: ``encode_fn(q)`` encodes at quality ``q`` and returns the measured
value (bits per pixel of the real file, or PSNR), optionally with a payload (the encoded bytes) as
``(value, payload)``. Every evaluated point is kept; the answer is the best one for the requested ``mode``:

* ``"closest"``: the smallest ``|value - target|`` (stops early once within ``rtol`` of the target);
* ``"at_most"``: the largest value not above the target (e.g. a size budget);
* ``"at_least"``: the smallest value not below the target (e.g. a quality floor).

Cost: about ``log2((hi - lo) * 1024)`` encodings at most (≤ 12 for 5 rate points), typically 5–8.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .models.gain import QUALITY_GRID


@dataclass
class QualitySearch:
    quality: float
    value: float
    payload: Any = None
    evaluations: list = field(default_factory=list)  # (quality, value) in the order evaluated

    @property
    def reachable(self) -> tuple[float, float]:
        """(value at the lowest, value at the highest quality of the range): the first two evaluations."""
        values = [v for _, v in self.evaluations[:2]]
        return values[0], values[-1]

    def reached(self, target: float, rtol: float = 0.0) -> bool:
        """Whether ``target`` lies within :attr:`reachable`, widened by ``rtol`` of the target (else the answer
        is the nearest end of the range)."""
        a, b = self.reachable
        slack = rtol * abs(target)
        return min(a, b) - slack <= target <= max(a, b) + slack


def _grid(q: float) -> float:
    return round(q * QUALITY_GRID) / QUALITY_GRID


def find_quality(encode_fn: Callable[[float], Any], target: float, lo: float, hi: float, *,
                 mode: str = "closest", rtol: float = 0.01, max_evaluations: int = 16,
                 on_evaluation: Callable[[float, float], None] | None = None) -> QualitySearch:
    """Bisection for the quality in ``[lo, hi]`` whose measured value meets ``target`` (see module docstring).
    ``on_evaluation(quality, value)`` is called after each encoding (a progress bar's hook)."""
    if mode not in ("closest", "at_most", "at_least"):
        raise ValueError(f"mode must be closest, at_most or at_least, not {mode!r}")
    if not lo <= hi:
        raise ValueError(f"empty quality range [{lo}, {hi}]")
    seen: dict[float, tuple[float, Any]] = {}
    order: list[tuple[float, float]] = []

    def evaluate(q: float) -> float:
        q = _grid(q)
        if q not in seen:
            res = encode_fn(q)
            value, payload = res if isinstance(res, tuple) else (res, None)
            seen[q] = (float(value), payload)
            order.append((q, float(value)))
            if on_evaluation is not None:
                on_evaluation(q, float(value))
        return seen[q][0]

    def good_enough(v: float) -> bool:
        return mode == "closest" and abs(v - target) <= rtol * abs(target)

    a, b = _grid(lo), _grid(hi)
    va, vb = evaluate(a), evaluate(b)
    if target > va and target < vb and not (good_enough(va) or good_enough(vb)):
        while b - a > 1 / QUALITY_GRID and len(order) < max_evaluations:
            m = _grid((a + b) / 2)
            if m in (a, b):
                break
            vm = evaluate(m)
            if good_enough(vm):
                break
            if vm < target:
                a = m
            else:
                b = m
    return _pick(seen, order, target, mode)


def _pick(seen: dict, order: list, target: float, mode: str) -> QualitySearch:
    points = sorted(seen.items())  # by quality
    if mode == "closest":
        q, (v, p) = min(points, key=lambda kv: (abs(kv[1][0] - target), kv[0]))
    elif mode == "at_most":
        below = [kv for kv in points if kv[1][0] <= target]
        q, (v, p) = max(below, key=lambda kv: kv[0]) if below else points[0]
    else:
        above = [kv for kv in points if kv[1][0] >= target]
        q, (v, p) = min(above, key=lambda kv: kv[0]) if above else points[-1]
    return QualitySearch(q, v, p, list(order))
