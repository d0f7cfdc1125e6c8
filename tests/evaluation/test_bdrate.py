"""BD-rate against published values (shared anchors) and against curves whose answer is known exactly."""

import math

import numpy as np
import pytest

from fastlic.evaluation.base import EvaluationError
from fastlic.evaluation.bdrate import bd_psnr, bd_rate, bd_rate_results
from fastlic.evaluation.results import load_results


@pytest.mark.parametrize("test_file, expected, tol", [
    ("mlicpp_paper_mse.json", -15.0, 0.3),
    ("paper-elic2022_mse.json", -7.0, 0.3),
    ("bpg_444_x265_ycbcr.json", 22.0, 0.3),
    ("webp.json", 78.8, 0.3),
    ("jpeg.json", 208.0, 1.0),
])
def test_anchor_bd_rates_against_vtm(anchors_dir, test_file, expected, tol):
    vtm = load_results(anchors_dir / "vtm.json")
    assert bd_rate_results(vtm, load_results(anchors_dir / test_file)) == pytest.approx(expected, abs=tol)


def test_scaled_rates_give_exact_bd_rate():
    psnr = np.array([28.0, 31.0, 34.5, 37.0])
    rate = np.array([0.15, 0.4, 0.9, 1.7])
    assert bd_rate(rate, psnr, rate * 0.8, psnr) == pytest.approx(-20.0, abs=1e-9)
    assert bd_rate(rate, psnr, rate, psnr) == pytest.approx(0.0, abs=1e-12)
    # swapping anchor and test inverts the rate ratio
    assert bd_rate(rate * 0.8, psnr, rate, psnr) == pytest.approx(25.0, abs=1e-9)


def test_shifted_psnr_gives_exact_bd_psnr_and_order_is_irrelevant():
    psnr = np.array([28.0, 31.0, 34.5, 37.0])
    rate = np.array([0.15, 0.4, 0.9, 1.7])
    assert bd_psnr(rate, psnr, rate, psnr + 0.7) == pytest.approx(0.7, abs=1e-9)
    perm = [2, 0, 3, 1]
    assert bd_rate(rate, psnr, rate[perm] * 1.1, psnr[perm]) == pytest.approx(10.0, abs=1e-9)


def test_only_the_overlapping_range_counts():
    psnr = np.array([28.0, 31.0, 34.0, 37.0])
    rate = 0.1 * np.exp(0.23 * (psnr - 28.0))  # log-rate linear in PSNR: pchip is exact on any sub-range
    # the test curve stops at 34 dB; where it overlaps it is 10 % cheaper
    r = bd_rate(rate, psnr, rate[:3] * 0.9, psnr[:3])
    assert r == pytest.approx(-10.0, abs=1e-9)


def test_errors_are_one_line_evaluation_errors():
    with pytest.raises(EvaluationError, match="no overlapping"):
        bd_rate([0.1, 0.2], [20.0, 22.0], [1.0, 2.0], [30.0, 32.0])
    with pytest.raises(EvaluationError, match="at least 2"):
        bd_rate([0.1, 0.2], [20.0, 22.0], [0.1], [21.0])
    with pytest.raises(EvaluationError, match="positive"):
        bd_rate([0.0, 0.2], [20.0, 22.0], [0.1, 0.3], [21.0, 23.0])
    assert math.isfinite(bd_rate([0.1, 0.2], [20.0, 22.0], [0.1, 0.3], [21.0, 23.0]))


def test_numpy_pchip_integral_matches_scipy():
    """bdrate's own pchip (numpy only, so `fastlic bdrate` needs no scipy) equals scipy's PchipInterpolator."""
    interpolate = pytest.importorskip("scipy.interpolate")
    from fastlic.evaluation.bdrate import pchip_integral

    rng = np.random.default_rng(0)
    cases = [([0.0, 1.0], [1.0, 3.0]), ([0.0, 1.0, 3.0], [0.0, 2.0, 2.0]),
             ([0.0, 1.0, 2.0, 3.0], [0.0, 5.0, -1.0, 0.5])]  # two points, a flat piece, sign changes
    for _ in range(200):
        n = int(rng.integers(3, 9))
        x = np.cumsum(rng.uniform(0.05, 2.0, n))
        y = rng.normal(size=n) if rng.random() < 0.5 else np.cumsum(rng.uniform(0, 1, n))
        cases.append((x, y))
    for x, y in cases:
        x, y = np.asarray(x), np.asarray(y)
        lo = x[0] + (x[-1] - x[0]) * rng.uniform(0, 0.4)
        hi = x[-1] - (x[-1] - x[0]) * rng.uniform(0, 0.4)
        for a, b in ((x[0], x[-1]), (lo, hi)):
            expected = interpolate.PchipInterpolator(x, y).integrate(a, b)
            assert pchip_integral(x, y, a, b) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_numpy_pchip_eval_matches_scipy_and_passes_through_the_points():
    interpolate = pytest.importorskip("scipy.interpolate")
    from fastlic.evaluation.bdrate import pchip_eval

    rng = np.random.default_rng(1)
    for _ in range(100):
        n = int(rng.integers(2, 9))
        x = np.cumsum(rng.uniform(0.05, 2.0, n))
        y = rng.normal(size=n)
        xq = np.concatenate([x, rng.uniform(x[0], x[-1], 20)])
        np.testing.assert_allclose(pchip_eval(x, y, xq), interpolate.PchipInterpolator(x, y)(xq),
                                   rtol=1e-10, atol=1e-12)


def test_rate_gaps_locate_the_difference_along_the_curve():
    from fastlic.evaluation.bdrate import rate_gaps

    psnr = np.array([28.0, 31.0, 34.0, 37.0])
    rate = 0.1 * np.exp(0.23 * (psnr - 28.0))
    anchor = {"name": "a", "results": {"bpp": list(rate), "psnr-rgb": list(psnr)}}
    # 20 % cheaper at the bottom, 30 % dearer at the top, one point beyond the anchor's range
    tpsnr = [28.0, 34.0, 38.0]
    trate = [rate[0] * 0.8, rate[2] * 1.3, 2.0]
    test = {"name": "t", "results": {"bpp": trate, "psnr-rgb": tpsnr}}
    gaps = rate_gaps(anchor, test)
    assert [g["rate_pct"] for g in gaps[:2]] == [pytest.approx(-20.0, abs=1e-9), pytest.approx(30.0, abs=1e-9)]
    assert gaps[1]["anchor_bpp"] == pytest.approx(rate[2], rel=1e-12)
    assert gaps[2]["rate_pct"] is None and gaps[2]["anchor_bpp"] is None
