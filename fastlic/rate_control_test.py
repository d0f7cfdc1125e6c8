import pytest
import torch

from fastlic.rate_control import find_quality
from fastlic.registry import create_model


def test_bisection_on_a_monotone_function():
    calls = []

    def f(q):
        calls.append(q)
        return 0.1 * 2 ** q  # bpp doubling per rate point

    res = find_quality(f, 0.5, 0, 4, rtol=0.001)
    assert res.value == pytest.approx(0.5, rel=0.005)
    assert len(calls) <= 16 and len(set(calls)) == len(calls)  # nothing encoded twice
    assert res.quality * 1024 == int(res.quality * 1024)


def test_modes_and_out_of_range_targets():
    f = lambda q: float(q)  # noqa: E731
    assert find_quality(f, 10, 0, 4).quality == 4  # unreachable: the highest quality
    assert find_quality(f, -1, 0, 4).quality == 0
    assert find_quality(f, 2.3, 0, 4, mode="at_most", rtol=0).value <= 2.3
    assert find_quality(f, 2.3, 0, 4, mode="at_least", rtol=0).value >= 2.3
    with pytest.raises(ValueError):
        find_quality(f, 1, 0, 4, mode="nearest")


def test_finds_a_target_size_on_real_streams():
    torch.manual_seed(0)
    model = create_model("mlicpp-tiny-vr", num_rates=4, gain_spread=16.0).eval()
    model.update()
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(1, 3, 8, 8, generator=g).repeat_interleave(8, 2).repeat_interleave(8, 3)
         + 0.05 * torch.rand(1, 3, 64, 64, generator=g)).clamp(0, 1)

    def size(q):
        enc = model.compress(x, quality=q)
        return sum(len(s[0]) for s in enc["strings"]), enc

    lo, hi = size(0)[0], size(3)[0]
    target = (lo + hi) / 2
    res = find_quality(size, target, 0, 3, mode="at_most", rtol=0)
    assert res.value <= target and res.payload["quality"] == res.quality
    assert res.value >= lo


def test_every_encoding_is_reported_and_the_reachable_range_is_known():
    seen = []
    f = lambda q: 0.1 * 2 ** q  # noqa: E731
    res = find_quality(f, 0.5, 0, 4, rtol=0.001, on_evaluation=lambda q, v: seen.append((q, v)))
    assert seen == res.evaluations and len(seen) >= 3  # one call per real encoding, in order
    assert res.reachable == (0.1, 1.6) and res.reached(0.5)
    low = find_quality(f, 0.01, 0, 4)
    assert low.quality == 0 and not low.reached(0.01) and len(low.evaluations) == 2  # the two ends, no bisection
    assert find_quality(f, 1.61, 0, 4).reached(1.61, rtol=0.01)  # within the tolerance of the top
