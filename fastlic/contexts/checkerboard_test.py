import pytest
import torch

from fastlic.contexts import checkerboard as ckbd


@pytest.mark.parametrize("h,w", [(1, 1), (1, 2), (2, 1), (3, 3), (4, 6), (5, 7), (6, 5)])
@pytest.mark.parametrize("anchors", [True, False])
def test_half_index_selects_the_half_in_row_major_order(h, w, anchors):
    mask = ckbd.anchor_mask(h, w)[0, 0]
    mask = mask if anchors else ~mask
    expected = torch.arange(h * w)[mask.reshape(-1)]
    assert torch.equal(ckbd.half_index(h, w, anchors), expected)


@pytest.mark.parametrize("h,w", [(3, 5), (4, 4), (7, 2)])
def test_half_and_unhalf_are_exact_inverses_at_each_half(h, w):
    y = torch.randn(2, 3, h, w, dtype=torch.float64)
    a, n = ckbd.half(y, True), ckbd.half(y, False)
    assert a.shape == (2, 3, h * w // 2, 1) and n.shape == (2, 3, (h * w + 1) // 2, 1)
    assert torch.equal(ckbd.unhalf(a, (h, w), True), ckbd.anchor(y))
    assert torch.equal(ckbd.unhalf(n, (h, w), False), ckbd.nonanchor(y))
    assert torch.equal(ckbd.unhalf(a, (h, w), True) + ckbd.unhalf(n, (h, w), False), y)
    assert torch.equal(ckbd.scatter(ckbd.gather(y[:1], True), y[:1].shape, True), ckbd.anchor(y[:1]))


def test_halves_trace_without_graph_breaks():
    # boolean-mask indexing has a data-dependent shape and split every compiled graph of the training forward
    from torch._dynamo.testing import CompileCounter

    counter = CompileCounter()

    def f(y):
        return ckbd.unhalf(ckbd.half(y, True) * 2, y.shape[-2:], True)

    y = torch.randn(1, 2, 4, 6)
    out = torch.compile(f, backend=counter, fullgraph=True)(y)
    assert torch.equal(out, 2 * ckbd.anchor(y)) and counter.frame_count == 1
