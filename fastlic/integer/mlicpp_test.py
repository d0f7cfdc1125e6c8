"""The integer MLIC++ entropy-parameter path: its float64 form is the float model, its integer form codes exactly."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch

import fastlic
from fastlic.integer import ops
from fastlic.integer.mlicpp import IntegerMLICPP, _FloatQuantizer, quantize_mlicpp
from fastlic.integer.nodes import QuantConfig
from fastlic.io import read_image


def _img(y0, x0, h, w):
    img = read_image(Path(fastlic.__file__).parent / "data" / "kodim23.png")
    return torch.from_numpy(np.ascontiguousarray(img[y0 : y0 + h, x0 : x0 + w])).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module")
def model(tiny):  # fastlic/conftest.py's random tiny MLIC++ (seed 0, tables built)
    return tiny


@pytest.fixture(scope="module")
def quantized(model):
    torch.set_num_threads(1)
    return quantize_mlicpp(model, [_img(100, 200, 128, 128), _img(300, 0, 64, 128)])


class _Capture:
    """A quantizer of the float driver that records the parameters it is given (rounding as in evaluation)."""

    def __init__(self, y, c):
        self.y, self.c, self.params = y, c, []

    def anchor(self, i, scales, means):
        from fastlic.contexts import checkerboard as ckbd

        self.params.append((scales, means))
        return torch.round(ckbd.anchor(self.y[:, i * self.c : (i + 1) * self.c]) - means) + means

    def nonanchor(self, i, scales, means):
        from fastlic.contexts import checkerboard as ckbd

        self.params.append((scales, means))
        return torch.round(ckbd.nonanchor(self.y[:, i * self.c : (i + 1) * self.c]) - means) + means


def test_float_form_reproduces_the_float_model(model):
    """The rewritten graph in float64 gives the float model's scales and means (so the integer graph quantizes
    the right network): every coding step within float64 noise."""
    im = IntegerMLICPP(model)
    x = _img(40, 60, 64, 128)
    with torch.no_grad():
        y, z = im._latents(model.pad(x))
        z_hat, _ = model.entropy_bottleneck(z, training=False)
        with model.parameter_path():
            ref = _Capture(y.double(), model.slice_ch)
            model._slices(model.h_s(z_hat.double()), ref)
        mine = _FloatQuantizer(y.double(), im.C)
        im.slices(z_hat, None, mine)
    assert len(ref.params) == len(mine.params) == 2 * model.slice_num
    for (s0, m0), (s1, m1) in zip(ref.params, mine.params):
        assert float((s0 - s1).abs().max()) < 1e-9 and float((m0 - m1).abs().max()) < 1e-9


def test_integer_close_to_float(model, quantized):
    x = _img(200, 500, 64, 64)  # not a calibration crop
    r = quantized.forward(x)
    with torch.no_grad():
        f = model(x)
    assert float((r["y_hat"] - f["y_hat"].double()).abs().max()) <= 1.01  # a symbol may round the other way
    assert float((r["y_hat"] - f["y_hat"].double()).abs().mean()) < 0.01
    bits = lambda lik: float(-torch.log2(lik.double()).sum())  # noqa: E731
    assert abs(bits(r["likelihoods"]["y"]) / bits(f["likelihoods"]["y"]) - 1) < 0.05


def test_indexes_are_the_float_rule_on_the_integer_scales(model, quantized):
    """searchsorted against floor(boundary * 2**f) is exactly the float model's rule applied to S / 2**f."""
    r = quantized.forward(_img(0, 0, 64, 64))
    s = torch.cat([t.reshape(-1) for t in r["scales"]])
    idx = torch.cat([t.reshape(-1) for t in r["indexes"]])
    want = model.gaussian_conditional.build_indexes(s.double() * 2.0 ** -quantized.cfg.scale_frac)
    assert torch.equal(idx, want.reshape(-1))
    # and on every integer near each threshold, where a float rule could tip
    t = quantized.meta["thresholds"]
    near = torch.cat([t - 1, t, t + 1]).clamp(min=0)
    from fastlic.integer.nodes import QT

    got = quantized.indexes(QT(near, 2.0 ** -quantized.cfg.scale_frac, 32))
    assert torch.equal(got, model.gaussian_conditional.build_indexes(near.double() * 2.0 ** -quantized.cfg.scale_frac))


def test_round_trip_exact_and_equal_to_forward(model, quantized):
    x = _img(333, 111, 77, 93)  # odd size
    enc = quantized.compress(x)
    dec = quantized.decompress(enc["strings"], enc["shape"])
    assert dec["checksum"] == enc["checksum"]
    assert torch.equal(dec["y_hat"], enc["y_hat"])
    assert torch.equal(quantized.forward(x)["y_hat"], enc["y_hat"])
    assert dec["x_hat"].shape[-2:] == (77, 93)


def test_saved_state_decodes_without_rebuilding(model, quantized):
    x = _img(10, 10, 64, 64)
    enc = quantized.compress(x)
    buf = io.BytesIO()
    torch.save(quantized.state_dict(), buf)
    buf.seek(0)
    fresh = IntegerMLICPP(model)  # never calibrated: every constant must come from the saved state
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    dec = fresh.decompress(enc["strings"], enc["shape"])
    assert dec["checksum"] == enc["checksum"] and torch.equal(dec["y_hat"], enc["y_hat"])
    with pytest.raises(KeyError, match="no constants"):
        IntegerMLICPP(model).load_state_dict({})


def test_gemm_kernels_agree_on_the_whole_path(model, quantized):
    x = _img(64, 320, 64, 64)
    outs = []
    try:
        for kernel in ("int_mm", "float64"):
            ops.set_kernel(kernel)
            r = quantized.forward(x)
            outs.append((r["y_hat"], torch.cat([t.reshape(-1) for t in r["indexes"]])))
    finally:
        ops.set_kernel("auto")
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


def test_int8_activations_config(model):
    """The 8-bit activation configuration builds and codes exactly too (its accuracy is measured, not assumed)."""
    im = quantize_mlicpp(model, [_img(100, 200, 64, 64)], cfg=QuantConfig(act_bits=8))
    assert im.nodes["hs.0"].params["w0"].dtype == torch.int8
    x = _img(200, 300, 64, 64)
    enc = im.compress(x)
    assert torch.equal(im.decompress(enc["strings"], enc["shape"])["y_hat"], enc["y_hat"])


def test_wrong_input_scale_is_refused(quantized):
    from fastlic.integer.nodes import QT

    node = quantized.nodes["hs.0"]
    x = QT(torch.zeros(1, node.w.shape[1], 2, 2, dtype=torch.int16), float(node.params["in_scales"][0]) * 2, 16)
    with pytest.raises(ValueError, match="built for"):
        node(x)
