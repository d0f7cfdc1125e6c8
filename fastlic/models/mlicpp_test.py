import pytest
import torch

import fastlic
from fastlic.models.mlicpp import MLICPlusPlus


def test_registry():
    names = fastlic.list_models()
    assert {"mlicpp", "mlicpp-2023", "mlicpp-small", "mlicpp-tiny"} <= set(names)
    with pytest.raises(KeyError, match="known models"):
        fastlic.create_model("nope")
    m = fastlic.create_model("mlicpp-tiny", slice_num=4, M=64)
    assert m.slice_num == 4 and m.model_name == "mlicpp-tiny"


@pytest.mark.parametrize("hw", [(1, 1), (17, 1031), (1031, 17), (200, 328), (64, 64)])
def test_round_trip_equals_eval_forward(tiny, hw):
    torch.manual_seed(1)
    x = torch.rand(1, 3, *hw)
    with torch.no_grad():
        ref = tiny(x)["x_hat"]
    enc = tiny.compress(x)
    dec = tiny.decompress(enc["strings"], enc["shape"])
    assert dec["x_hat"].shape == x.shape
    assert torch.equal(dec["x_hat"], ref)
    assert dec["checksums"] == enc["checksums"]


def test_batch_compress_codes_each_image(tiny):
    x = torch.rand(2, 3, 40, 70)
    enc = tiny.compress(x)
    assert len(enc["strings"][0]) == 2
    dec = tiny.decompress(enc["strings"], enc["shape"])
    for i in range(2):
        with torch.no_grad():
            assert torch.equal(dec["x_hat"][i : i + 1], tiny(x[i : i + 1])["x_hat"])


def test_training_forward_has_noise_likelihoods_and_gradients():
    torch.manual_seed(0)
    m = fastlic.create_model("mlicpp-tiny").train()
    x = torch.rand(2, 3, 64, 96)
    out = m(x)
    assert out["likelihoods"]["y"].shape == (2, 32, 4, 8)  # padded to 64 x 128
    assert out["likelihoods"]["z"].shape == (2, 32, 1, 2)
    bpp = m.bpp(out["likelihoods"], 64 * 96)
    loss = bpp + 0.01 * 255 ** 2 * torch.mean((out["x_hat"] - x) ** 2)
    loss.backward()
    grads = {n: p.grad for n, p in m.named_parameters() if "quantiles" not in n}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert m.g_a.analysis_transform[0].conv1.weight.grad.abs().sum() > 0
    assert m.aux_loss().item() > 0


def test_variants_differ_where_the_spec_says():
    new = MLICPlusPlus(N=32, M=64, slice_num=2, ep_hidden=(32, 32, 32), cc_hidden=(32, 32))
    old = MLICPlusPlus(N=32, M=64, slice_num=2, variant="2023", ep_hidden=(32, 32, 32), cc_hidden=(32, 32))
    assert len(new.lrp_anchor[0].lrp_transform) == 5 and len(old.lrp_anchor[0].lrp_transform) == 7
    assert old.g_s.synthesis_transform[0].skip is not None and new.g_s.synthesis_transform[0].skip is None
    with pytest.raises(ValueError):
        MLICPlusPlus(M=100, slice_num=3)


def test_full_size_parameter_counts():
    assert MLICPlusPlus().num_parameters() == 83_501_408
    assert MLICPlusPlus(variant="2023").num_parameters() == 116_716_928
