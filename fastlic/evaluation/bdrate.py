"""Bjøntegaard delta rate and delta PSNR (G. Bjøntegaard, "Calculation of average PSNR differences between
RD-curves", VCEG-M33, 2001), with the piecewise cubic Hermite (pchip) interpolation of the later
VCEG-AL22 / JVET-common-test-conditions spreadsheets instead of a cubic polynomial fit.

BD-rate: the log-rate of each curve is interpolated as a function of quality (PSNR or MS-SSIM) through its
points, both are integrated exactly over the overlapping quality range, and the average difference
``d = mean(log R_test - log R_anchor)`` is reported as ``(exp(d) - 1) * 100`` percent: negative means the test
codec needs fewer bits for the same quality. BD-PSNR swaps the roles (quality integrated over the overlapping
log-rate range).

The pchip (Fritsch-Carlson derivatives with the one-sided three-point end conditions of Moler's ``pchiptx``, as
``scipy.interpolate.PchipInterpolator`` computes them) and its exact integral are implemented here with numpy
alone, so ``fastlic bdrate`` runs with the runtime dependencies only; ``bdrate_test`` checks it against scipy.
"""

from __future__ import annotations

import math

import numpy as np

from .base import EvaluationError
from .results import curve


def _prepare(x, y, what: str):
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    order = np.argsort(x)
    x, y = x[order], y[order]
    if len(x) < 2:
        raise EvaluationError(f"{what}: BD needs at least 2 rate-distortion points, got {len(x)}")
    if np.any(np.diff(x) <= 0):
        raise EvaluationError(f"{what}: quality values must be strictly increasing with rate (repeated or "
                              "non-monotonic points)")
    return x, y


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Derivatives at the points of the monotone piecewise cubic Hermite interpolant through (x, y), x strictly
    increasing: weighted harmonic means of neighbouring secants inside (0 where they change sign or one is 0),
    shape-preserving three-point estimates at the ends; a straight line for two points."""
    h = np.diff(x)
    m = np.diff(y) / h
    if len(x) == 2:
        return np.array([m[0], m[0]])
    d = np.zeros_like(y)
    w1 = 2 * h[1:] + h[:-1]
    w2 = h[1:] + 2 * h[:-1]
    same = (np.sign(m[1:]) == np.sign(m[:-1])) & (m[1:] != 0) & (m[:-1] != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d[1:-1] = np.where(same, (w1 + w2) / (w1 / m[:-1] + w2 / m[1:]), 0.0)

    def edge(h0, h1, m0, m1):
        e = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        if np.sign(e) != np.sign(m0):
            return 0.0
        if np.sign(m0) != np.sign(m1) and abs(e) > 3 * abs(m0):
            return 3 * m0
        return e

    d[0] = edge(h[0], h[1], m[0], m[1])
    d[-1] = edge(h[-1], h[-2], m[-1], m[-2])
    return d


def _pchip_pieces(x, y):
    """``(x, y, d, c2, c3)``: each piece of the pchip as y_k + d_k t + c2_k t^2 + c3_k t^3, t = x - x_k."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    d = _pchip_slopes(x, y)
    h = np.diff(x)
    m = np.diff(y) / h
    c2 = (3 * m - 2 * d[:-1] - d[1:]) / h
    c3 = (d[:-1] + d[1:] - 2 * m) / h ** 2
    return x, y, d, c2, c3


def pchip_eval(x, y, xq) -> np.ndarray:
    """Values at ``xq`` (inside [x[0], x[-1]]) of the pchip through the points (x, y), x strictly increasing."""
    x, y, d, c2, c3 = _pchip_pieces(x, y)
    xq = np.asarray(xq, np.float64)
    k = np.clip(np.searchsorted(x, xq, side="right") - 1, 0, len(x) - 2)
    t = xq - x[k]
    return y[k] + d[k] * t + c2[k] * t ** 2 + c3[k] * t ** 3


def pchip_integral(x, y, lo: float, hi: float) -> float:
    """Exact integral over [lo, hi] (inside [x[0], x[-1]]) of the pchip through the points (x, y)."""
    x, y, d, c2, c3 = _pchip_pieces(x, y)
    h = np.diff(x)

    def antiderivative(k, t):
        return y[k] * t + d[k] * t ** 2 / 2 + c2[k] * t ** 3 / 3 + c3[k] * t ** 4 / 4

    total = 0.0
    for k in range(len(h)):
        a, b = max(lo, x[k]), min(hi, x[k + 1])
        if a < b:
            total += antiderivative(k, b - x[k]) - antiderivative(k, a - x[k])
    return float(total)


def _avg_over_overlap(xa, ya, xb, yb, names) -> float:
    """Mean of (curve b - curve a) over the overlap of the x ranges, each curve a pchip through its points."""
    xa, ya = _prepare(xa, ya, names[0])
    xb, yb = _prepare(xb, yb, names[1])
    lo, hi = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    if not lo < hi:
        raise EvaluationError(f"{names[0]} and {names[1]} have no overlapping quality range")
    ia = pchip_integral(xa, ya, lo, hi)
    ib = pchip_integral(xb, yb, lo, hi)
    return float((ib - ia) / (hi - lo))


def bd_rate(rate_anchor, dist_anchor, rate_test, dist_test, names=("anchor", "test")) -> float:
    """BD-rate in percent of the test curve against the anchor (rates in any unit, e.g. bpp)."""
    if min(min(rate_anchor), min(rate_test)) <= 0:
        raise EvaluationError("rates must be positive for a BD-rate")
    d = _avg_over_overlap(dist_anchor, np.log(rate_anchor), dist_test, np.log(rate_test), names)
    return (math.exp(d) - 1.0) * 100.0


def bd_psnr(rate_anchor, dist_anchor, rate_test, dist_test, names=("anchor", "test")) -> float:
    """BD-PSNR (or BD-quality): mean quality gain of the test curve at equal rate, in the quality's unit."""
    if min(min(rate_anchor), min(rate_test)) <= 0:
        raise EvaluationError("rates must be positive for a BD-PSNR")
    return _avg_over_overlap(np.log(rate_anchor), dist_anchor, np.log(rate_test), dist_test, names)


def ms_ssim_db(values) -> np.ndarray:
    """MS-SSIM in decibels, ``-10 log10(1 - MS-SSIM)``: the usual scale for plots and BD on MS-SSIM."""
    v = np.asarray(values, np.float64)
    return -10.0 * np.log10(np.clip(1.0 - v, 1e-12, None))


def _curves(anchor: dict, test: dict, metric: str):
    """``(rate_anchor, quality_anchor, rate_test, quality_test)`` of two results dicts; MS-SSIM in dB."""
    ra, da = curve(anchor, metric)
    rt, dt = curve(test, metric)
    if metric == "ms-ssim-rgb":
        da, dt = ms_ssim_db(da), ms_ssim_db(dt)
    return ra, da, rt, dt


def bd_rate_results(anchor: dict, test: dict, metric: str = "psnr-rgb") -> float:
    """BD-rate in percent of results dict ``test`` against ``anchor`` on ``metric`` (``psnr-rgb`` or
    ``ms-ssim-rgb``; MS-SSIM is taken in dB, which leaves the BD-rate unchanged as the map is monotonic but
    makes pchip's shape follow the usual plots)."""
    return bd_rate(*_curves(anchor, test, metric), names=(anchor.get("name", "anchor"), test.get("name", "test")))


def bd_psnr_results(anchor: dict, test: dict, metric: str = "psnr-rgb") -> float:
    return bd_psnr(*_curves(anchor, test, metric), names=(anchor.get("name", "anchor"), test.get("name", "test")))


def rate_gaps(anchor: dict, test: dict, metric: str = "psnr-rgb") -> list[dict]:
    """Where along the curve a BD-rate comes from: for every point of ``test``, the anchor's rate at the same
    quality (the pchip of log-rate against quality that :func:`bd_rate` integrates) and the test's rate
    difference in percent. Points outside the anchor's quality range get ``None`` (no extrapolation)."""
    ra, da, rt, dt = _curves(anchor, test, metric)
    if min(ra) <= 0 or min(rt) <= 0:
        raise EvaluationError("rates must be positive for a rate comparison")
    qa, la = _prepare(da, np.log(ra), anchor.get("name", "anchor"))
    points = sorted(zip(rt, dt))
    refs = np.exp(pchip_eval(qa, la, np.clip([q for _, q in points], qa[0], qa[-1])))
    out = []
    for (r, q), ref in zip(points, refs):
        inside = qa[0] <= q <= qa[-1]
        out.append({"bpp": float(r), "quality": float(q), "anchor_bpp": float(ref) if inside else None,
                    "rate_pct": (r / ref - 1.0) * 100.0 if inside else None})
    return out
