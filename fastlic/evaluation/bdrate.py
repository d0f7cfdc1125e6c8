"""Bjøntegaard delta rate and delta PSNR (G. Bjøntegaard, "Calculation of average PSNR differences between
RD-curves", VCEG-M33, 2001), with the piecewise cubic Hermite (pchip) interpolation of the later
VCEG-AL22 / JVET-common-test-conditions spreadsheets instead of a cubic polynomial fit.

BD-rate: the log-rate of each curve is interpolated as a function of quality (PSNR or MS-SSIM) through its
points, both are integrated exactly over the overlapping quality range, and the average difference
``d = mean(log R_test - log R_anchor)`` is reported as ``(exp(d) - 1) * 100`` percent: negative means the test
codec needs fewer bits for the same quality. BD-PSNR swaps the roles (quality integrated over the overlapping
log-rate range).
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


def _avg_over_overlap(xa, ya, xb, yb, names) -> float:
    """Mean of (curve b - curve a) over the overlap of the x ranges, each curve a pchip through its points."""
    from scipy.interpolate import PchipInterpolator

    xa, ya = _prepare(xa, ya, names[0])
    xb, yb = _prepare(xb, yb, names[1])
    lo, hi = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    if not lo < hi:
        raise EvaluationError(f"{names[0]} and {names[1]} have no overlapping quality range")
    ia = PchipInterpolator(xa, ya).integrate(lo, hi)
    ib = PchipInterpolator(xb, yb).integrate(lo, hi)
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


def bd_rate_results(anchor: dict, test: dict, metric: str = "psnr-rgb") -> float:
    """BD-rate in percent of results dict ``test`` against ``anchor`` on ``metric`` (``psnr-rgb`` or
    ``ms-ssim-rgb``; MS-SSIM is taken in dB, which leaves the BD-rate unchanged as the map is monotonic but
    makes pchip's shape follow the usual plots)."""
    ra, da = curve(anchor, metric)
    rt, dt = curve(test, metric)
    if metric == "ms-ssim-rgb":
        da, dt = ms_ssim_db(da), ms_ssim_db(dt)
    return bd_rate(ra, da, rt, dt, names=(anchor.get("name", "anchor"), test.get("name", "test")))


def bd_psnr_results(anchor: dict, test: dict, metric: str = "psnr-rgb") -> float:
    ra, da = curve(anchor, metric)
    rt, dt = curve(test, metric)
    if metric == "ms-ssim-rgb":
        da, dt = ms_ssim_db(da), ms_ssim_db(dt)
    return bd_psnr(ra, da, rt, dt, names=(anchor.get("name", "anchor"), test.get("name", "test")))
