"""Spatio-channel window attention: one-pass vs step-by-step, caching, causality and window masks."""

import pytest
import torch

from fastlic.contexts.spatio_channel import SpatioChannelTransformer


def _model(depth=2, start=False, groups=5, seed=0):
    torch.manual_seed(seed)
    return SpatioChannelTransformer(in_ch=3, groups=groups, dim=16, depth=depth, heads=2, window=4,
                                    start_token=start).eval()


def _inputs(n, h=6, w=5, seed=1):
    return torch.randn(1, n, 3, h, w, generator=torch.Generator().manual_seed(seed)).round()


def _steps(m, x, cache=True, egr=True, start=False):
    st = m.new_state(1, x.shape[-2], x.shape[-1], cache=cache, egr=egr)
    outs = [m.step(st, None)] if start else []
    outs += [m.step(st, x[:, i], anchor=i % 2 == 0) for i in range(x.shape[1])]
    return torch.stack(outs, 1)


@pytest.mark.parametrize("start", [False, True])
@torch.no_grad()
def test_one_pass_equals_steps_and_cache_is_bit_exact(start):
    # 6 x 5 grid with K = 4: padding in both directions, plain and shifted windows
    m = _model(start=start)
    x = _inputs(4 if start else 5)
    par = m(x)
    cached = _steps(m, x, start=start)
    uncached = _steps(m, x, cache=False, start=start)
    assert par.shape == (1, 5, 16, 6, 5)
    assert torch.allclose(par, cached, atol=1e-5)
    assert torch.equal(cached, uncached)
    assert torch.allclose(_steps(m, x, egr=False, start=start), cached, atol=1e-5)


@torch.no_grad()
def test_group_causality():
    m = _model()
    x = _inputs(5)
    ref = m(x)
    for g in range(4):
        x2 = x.clone()
        x2[:, g + 1:] += torch.randn_like(x2[:, g + 1:]) * 3
        out = m(x2)
        assert torch.equal(out[:, :g + 1], ref[:, :g + 1])  # groups <= g ignore later groups
        assert not torch.allclose(out[:, g + 1:], ref[:, g + 1:])


@torch.no_grad()
def test_window_masks_confine_attention():
    x = _inputs(2, h=8, w=8)
    # one plain-window layer: a change at (0, 0) stays inside the first 4 x 4 window
    m1 = _model(depth=1, groups=2)
    x2 = x.clone()
    x2[:, :, :, 0, 0] += 5
    d = (m1(x2) - m1(x)).abs().amax(dim=(0, 1, 2))
    assert d[:4, :4].max() > 0 and d[4:].max() == 0 and d[:, 4:].max() == 0
    # plain then shifted layer: the shifted windows must not wrap around, (7, 7) shares a rolled window with
    # (0, 0) but is masked
    m2 = _model(depth=2, groups=2)
    d = (m2(x2) - m2(x)).abs().amax(dim=(0, 1, 2))
    assert d[:6, :6].max() > 0
    assert d[6:].max() == 0 and d[:, 6:].max() == 0
