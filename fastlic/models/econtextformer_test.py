"""eContextformer and the serial Contextformer: exact coding round trips, caching, thread independence,
oRDO, and the registered configurations."""

import pytest
import torch

from fastlic.ordo import step_sizes
from fastlic.registry import create_model


def _model(name="econtextformer-tiny", seed=0, **config):
    """A random-weight model whose latents span several integers (g_a's last convolution amplified), so the
    coded streams are not trivial."""
    torch.manual_seed(seed)
    m = create_model(name, **config)
    with torch.no_grad():
        m.g_a.layers[6].weight.mul_(30)
    m.eval()
    m.update()
    return m


def _image(h, w, seed=0):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _roundtrip(m, x):
    with torch.no_grad():
        ref = m(x)
    coded = m.compress(x)
    out = m.decompress(coded["strings"], coded["shape"])
    return ref, coded, out


@pytest.mark.parametrize("hw", [(200, 328), (64, 1000)])
def test_exact_roundtrip_odd_sizes(hw):
    m = _model()
    ref, coded, out = _roundtrip(m, _image(*hw))
    assert len(coded["strings"][0][0]) > 64  # the latent really is coded
    assert out["x_hat"].shape == (1, 3, *hw)
    assert (out["x_hat"] - ref["x_hat"]).abs().max().item() == 0
    assert out["checksums"] == coded["checksums"]


def test_cached_and_uncached_coding_are_bit_identical():
    m = _model()
    x = _image(128, 192)
    coded = m.compress(x)
    m.cache = False
    coded_nc = m.compress(x)
    assert coded_nc["strings"] == coded["strings"]
    out_nc = m.decompress(coded["strings"], coded["shape"])
    m.cache = True
    out = m.decompress(coded["strings"], coded["shape"])
    assert torch.equal(out["x_hat"], out_nc["x_hat"]) and out["checksums"] == out_nc["checksums"]


def test_streams_do_not_depend_on_thread_count():
    m = _model()
    x = _image(128, 128)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        coded = m.compress(x)
        with torch.no_grad():
            ref = m(x)
        torch.set_num_threads(1)
        coded_1 = m.compress(x)
        out = m.decompress(coded["strings"], coded["shape"])
    finally:
        torch.set_num_threads(before)
    assert coded_1["strings"] == coded["strings"]
    assert out["checksums"] == coded["checksums"]
    assert torch.equal(out["x_hat"], ref["x_hat"])  # 2-thread encoder side, 1-thread decoder


def test_training_pass_matches_coding_path():
    m = _model()
    x = _image(64, 128)
    with torch.no_grad():
        y = m.g_a(x)
        z = m.h_a(y)
        ev = m._from_latents(y, z, "eval")
        ste = m._from_latents(y, z, "ste")  # the one-pass (training) context path with rounding
    assert torch.equal(ev["y_hat"], ste["y_hat"])
    assert torch.allclose(ev["likelihoods"]["y"], ste["likelihoods"]["y"], rtol=1e-4, atol=1e-6)
    m.train()
    out = m(_image(64, 64))
    loss = m.bpp(out["likelihoods"], 64 * 64) + torch.mean((out["x_hat"] - _image(64, 64)) ** 2)
    loss.backward()
    assert m.context_model.layers[0].block.qkv_proj.weight.grad.abs().sum() > 0
    assert m.entropy_parameters_first.layers[0].weight.grad.abs().sum() > 0


def test_without_sfg_uses_start_token_and_roundtrips():
    m = _model(sfg=False)
    assert m.entropy_parameters_first is None and m.context_model.groups == 8
    ref, coded, out = _roundtrip(m, _image(64, 128))
    assert (out["x_hat"] - ref["x_hat"]).abs().max().item() == 0


def test_registered_configurations():
    paper = create_model("econtextformer")
    assert (paper.M, paper.p, paper.d_e, paper.num_groups) == (192, 48, 384, 8)
    assert paper.context_model.layers[0].block.heads == 12 and len(paper.context_model.layers) == 8
    assert paper.context_model.window == 8 and paper.context_model.groups == 7
    assert paper.entropy_parameters.layers[0].in_channels == 2 * 192 + 384
    assert paper.entropy_parameters.layers[-1].out_channels == 3 * 3 * 48
    hr = create_model("econtextformer-hr")
    assert hr.M == 312 and hr.context_model.layers[0].block.heads == 6
    cf = create_model("contextformer")
    assert cf.context_model.window == 16


@pytest.mark.slow
def test_paper_configuration_exact_at_256():
    m = _model("econtextformer")
    ref, coded, out = _roundtrip(m, _image(256, 256))
    assert len(coded["strings"][0][0]) > 1000
    assert (out["x_hat"] - ref["x_hat"]).abs().max().item() == 0


def test_serial_contextformer_roundtrip():
    m = _model("contextformer-tiny")
    ref, coded, out = _roundtrip(m, _image(64, 128))
    assert len(coded["strings"][0][0]) > 64
    assert (out["x_hat"] - ref["x_hat"]).abs().max().item() == 0
    assert out["checksums"] == coded["checksums"]


# ---------------------------------------------------------------------------------------------- oRDO
def test_ordo_schedule_is_the_papers():
    steps = step_sizes(0.062, 0.6, 1e-7)
    assert len(steps) == 26 and steps[-1] > 1e-7 and steps[-1] * 0.6 <= 1e-7


def _kodak_crop(h, w):
    from fastlic.io import read_image
    from fastlic.testing import require_shared
    img = read_image(require_shared("data", "kodak", "kodim23.png"))[200:200 + h, 300:300 + w]
    return torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255


def test_ordo_never_worse_on_a_kodak_crop_and_decodes_with_the_ordinary_decoder():
    m = _model()
    x = _kodak_crop(64, 64)
    lmbda = 0.01
    coded = m.compress(x, ordo=True, lmbda=lmbda, gamma=0.3)  # 12 iterations keep the test short
    info = m.last_ordo_info
    assert info["history"][-1] <= info["history"][0]  # the objective went down
    best = min(info["initial"], info.get("optimized", info["initial"]))
    used = info["initial"] if info["used"] == "initial" else info["optimized"]
    assert used == best <= info["initial"]
    # actual RD loss of the decoded file vs plain coding
    def rd(c):
        out = m.decompress(c["strings"], c["shape"])
        bits = 8 * sum(len(s[0]) for s in c["strings"])
        return bits / x[0, 0].numel() + lmbda * 255 ** 2 * torch.mean((out["x_hat"].clamp(0, 1) - x) ** 2).item(), out
    loss_plain, _ = rd(m.compress(x))
    loss_ordo, out = rd(coded)
    assert loss_ordo <= loss_plain
    assert out["checksums"] == coded["checksums"]


def test_ordo_options_are_checked():
    m = _model()
    with pytest.raises(TypeError):
        m.compress(_image(64, 64), ordo=True)
    with pytest.raises(TypeError):
        m.compress(_image(64, 64), lmbda=0.01)


def test_variable_rate_ordo_interpolates_the_trained_lambdas():
    torch.manual_seed(0)
    m = create_model("econtextformer-tiny-vr", num_rates=3).eval()
    m.update()
    x = _image(64, 64)
    lambdas = [0.002, 0.008, 0.032]
    by_list = m.compress(x, quality=1.5, ordo=True, lmbda=lambdas, gamma=0.5)
    assert m.last_ordo_info is not None
    by_value = m.compress(x, quality=1.5, ordo=True, lmbda=0.016, gamma=0.5)  # sqrt(0.008 * 0.032)
    assert by_list["strings"] == by_value["strings"]
    out = m.decompress(by_list["strings"], by_list["shape"], quality=by_list["quality"])
    assert out["checksums"] == by_list["checksums"]
    with pytest.raises(ValueError, match="3 rate points"):
        m.compress(x, ordo=True, lmbda=lambdas[:2])
