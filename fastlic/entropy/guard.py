"""Guarded decisions: the side information that makes a decoder take exactly the encoder's discrete decisions.

After Tian et al., "Towards real-time neural video codec for cross-platform application using calibration
information", ACM MM 2023: a decision ``d = Q(v)`` (a scale-table index, a snapped mixture parameter) taken on a
float64 value ``v`` is safe on another machine when ``v`` is far from every boundary of ``Q`` compared with the
float difference between the machines. The encoder flags each decision whose ``v`` lies within a relative
margin :data:`fastlic.numerics.GUARD_EPS` of its nearest boundary ``j`` and records on which side it took it
(``d - j``, 0 or 1). The list (position in the global order of decisions, bit) is coded at the head of the
stream; the decoder counts decisions in the same order, takes its own decision everywhere except at flagged
positions, where it takes ``j + bit`` with ``j`` its own nearest boundary (boundaries are ~3 % apart, so both
sides see the same nearest boundary when their values differ by far less than that).

Argument of correctness: if the decoder's ``v'`` satisfies ``|v' - v| < GUARD_EPS |v|``, an unflagged decision
has ``v`` at relative distance ``>= GUARD_EPS`` from every boundary, so ``v'`` lies on the same side of each and
``Q(v') = Q(v)``; a flagged decision is taken from the stream. The measured cross-configuration difference is
at most 1.0e-13 (docs/results.md#portable-decoding), ``GUARD_EPS`` ~9.3e-10.

Each decision site supplies ``(d, j, dist)``: its own decision, the index of the boundary nearest to ``v``
(boundary ``j`` separates decisions ``j`` and ``j + 1``) and the relative distance to it.
"""

from __future__ import annotations

import numpy as np

from ..numerics import GUARD_EPS

#: most flags one stream may carry (a crafted count cannot make the decoder allocate more)
MAX_FLAGS = 1 << 22


class Guard:
    """Encoder side (``flags is None``): records flags. Decoder side: replays ``(positions, bits)``."""

    def __init__(self, positions: np.ndarray | None = None, bits: np.ndarray | None = None):
        self.recording = positions is None
        self.count = 0  # decisions taken so far
        if self.recording:
            self._positions: list[np.ndarray] = []
            self._bits: list[np.ndarray] = []
        else:
            self.positions = np.asarray(positions, np.int64)
            self.bits = np.asarray(bits, np.int64)
            self._next = 0  # first unconsumed flag

    def decide(self, d: np.ndarray, j: np.ndarray, dist: np.ndarray) -> np.ndarray:
        """Guarded decisions of one site (flattened arrays of equal length) -> the shared decisions ``d``."""
        d = np.asarray(d, np.int64).ravel()
        n = d.size
        if self.recording:
            flagged = np.flatnonzero(np.asarray(dist).ravel() < GUARD_EPS)
            if flagged.size:
                j = np.asarray(j, np.int64).ravel()
                self._positions.append(self.count + flagged)
                self._bits.append(d[flagged] - j[flagged])
        else:
            stop = self._next + int(np.searchsorted(self.positions[self._next :], self.count + n))
            if stop > self._next:
                j = np.asarray(j, np.int64).ravel()
                at = self.positions[self._next : stop] - self.count
                d = d.copy()
                d[at] = j[at] + self.bits[self._next : stop]
                self._next = stop
        self.count += n
        return d

    def flags(self) -> tuple[np.ndarray, np.ndarray]:
        """(positions, bits) recorded so far (encoder side)."""
        if not self.recording:
            return self.positions, self.bits
        if not self._positions:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(self._positions), np.concatenate(self._bits)

    @property
    def num_flags(self) -> int:
        return len(self.flags()[0])


def nearest_boundary(values: np.ndarray, d: np.ndarray, bounds: np.ndarray):
    """For decisions ``d = searchsorted(bounds, values)`` (``values <= bounds[d]``, ``values > bounds[d - 1]``):
    -> (index of the nearest boundary, relative distance to it). ``bounds`` ascending, positive."""
    last = len(bounds) - 1
    hi = bounds[np.minimum(d, last)]
    lo = bounds[np.maximum(d - 1, 0)]
    dist_hi = np.where(d <= last, (hi - values) / hi, np.inf)
    dist_lo = np.where(d >= 1, (values - lo) / lo, np.inf)
    use_hi = dist_hi <= dist_lo
    return np.where(use_hi, d, d - 1), np.where(use_hi, dist_hi, dist_lo)


def rounding_decision(v: np.ndarray, steps: float):
    """Guard inputs of snapping ``v`` to multiples of ``1 / steps``, ``d = round(v * steps)`` (half to even):
    -> (d, nearest boundary index, relative distance). Boundary ``j`` is ``(j + 0.5) / steps``; the distance is
    measured in ``v``'s own units relative to ``max(1, |v|)``, the scale of ``v``'s float noise (an absolute
    error of ~1e-16 for |v| <= 1, a relative one above)."""
    v = np.asarray(v, np.float64)
    u = v * steps
    d = np.round(u)
    j = np.floor(u)  # the half-integer boundary nearest to u is floor(u) + 0.5
    dist = np.abs(u - (j + 0.5)) / (steps * np.maximum(1.0, np.abs(v)))
    return d.astype(np.int64), j.astype(np.int64), dist
