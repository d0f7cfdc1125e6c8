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


def test_training_forward_traces_as_one_graph():
    # boolean-mask indexing (nonzero) has a data-dependent shape and split the MLIC++ training forward into ~34
    # compiled frames; with the static index it is one. (A toy function of half/unhalf alone traced as one graph
    # even with the mask, so the whole model is what is checked.)
    import fastlic
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    model = fastlic.create_model("mlicpp-tiny-vr", num_rates=2).train()
    model.set_rate_indices(torch.tensor([0, 1]))
    counter = CompileCounter()
    out = torch.compile(model, backend=counter)(torch.rand(2, 3, 64, 64))
    out["x_hat"].sum().backward()
    assert counter.frame_count == 1
