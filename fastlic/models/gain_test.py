import math

import pytest
import torch

from fastlic.checkpoint import load_checkpoint, save_checkpoint
from fastlic.models.gain import LatentGain, canonical_quality, interpolate_lambda, is_variable_rate
from fastlic.registry import create_model


def test_canonical_quality_grid_and_range():
    assert canonical_quality(1.2345, 5) == round(1.2345 * 1024) / 1024
    q = canonical_quality(2.7, 5)
    assert float(torch.tensor(q, dtype=torch.float32)) == q  # float32 storage round-trips exactly
    for bad in (-0.1, 4.01, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            canonical_quality(bad, 5)


def test_interpolation_is_geometric_and_exact_at_rate_points():
    g = LatentGain(6, 3)
    with torch.no_grad():
        g.log_gain.copy_(torch.randn(3, 6))
    table = g.log_gain.detach()
    for k in range(3):
        assert torch.equal(LatentGain.interpolate(table, float(k)), torch.exp(table[k].double()).float())
    mid = LatentGain.interpolate(table, 0.25)
    expect = torch.exp(table[0]) ** 0.75 * torch.exp(table[1]) ** 0.25
    assert torch.allclose(mid, expect, rtol=1e-5)
    lo, hi = torch.minimum(torch.exp(table[0]), torch.exp(table[1])), torch.maximum(torch.exp(table[0]), torch.exp(table[1]))
    assert bool(((mid >= lo * (1 - 1e-6)) & (mid <= hi * (1 + 1e-6))).all())
    # the same quality always gives the same bits
    assert torch.equal(LatentGain.interpolate(table, 1.5), LatentGain.interpolate(table.clone(), 1.5))


@pytest.fixture(scope="module")
def vr_model():
    torch.manual_seed(0)
    model = create_model("mlicpp-tiny-vr", num_rates=4, gain_spread=16.0)
    model.eval()
    model.update()
    return model


def _image():
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 80), indexing="ij")
    g = torch.Generator().manual_seed(3)
    img = torch.stack([torch.sin(9 * xx + 4 * yy), torch.cos(7 * yy), xx * yy]) * 0.4 + 0.5
    return (img + 0.05 * torch.randn(img.shape, generator=g)).clamp(0, 1)[None]


def test_rate_is_monotone_in_quality(vr_model):
    x = _image()
    qualities = [0, 0.5, 1.25, 2, 2.75, 3]
    est, real = [], []
    with torch.no_grad():
        for q in qualities:
            vr_model.set_quality(q)
            est.append(float(vr_model.bpp(vr_model(x)["likelihoods"], 64 * 80)))
            real.append(sum(len(s[0]) for s in vr_model.compress(x)["strings"]))
    assert all(b >= a for a, b in zip(est, est[1:])), est
    assert all(b >= a for a, b in zip(real, real[1:])), real
    assert est[-1] > 2 * est[0] and real[-1] > real[0]


def test_decoder_uses_the_quality_in_the_stream(vr_model):
    x = _image()
    enc = vr_model.compress(x, quality=1.7)
    assert enc["quality"] == canonical_quality(1.7, 4)
    vr_model.set_quality(0)  # a decoder at another quality must be told the encoder's
    dec = vr_model.decompress(enc["strings"], enc["shape"], quality=enc["quality"])
    assert dec["checksums"] == enc["checksums"]
    vr_model.set_quality(enc["quality"])
    with torch.no_grad():
        ref = vr_model(x)["x_hat"]
    assert torch.allclose(dec["x_hat"], ref, atol=1e-5)


def test_checkpoint_keeps_gains(tmp_path, vr_model):
    with torch.no_grad():
        vr_model.latent_gain.log_gain.add_(0.1)
    save_checkpoint(tmp_path / "m.pt", vr_model, {"step": 1})
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert is_variable_rate(loaded) and loaded.num_rates == 4
    assert loaded.fingerprint() == vr_model.fingerprint()
    assert loaded.model_name == "mlicpp-tiny-vr"


def test_gain_keys_leave_base_keys_unchanged():
    base = set(create_model("mlicpp-tiny").state_dict())
    vr = set(create_model("mlicpp-tiny-vr").state_dict())
    assert vr - base == {"latent_gain.log_gain", "latent_gain.log_inverse_gain"}


def test_training_indices_select_rows():
    g = LatentGain(4, 3)
    y = torch.ones(2, 4, 1, 1)
    g.set_indices(torch.tensor([0, 2]))
    out = g.gain(y)
    assert torch.allclose(out[0, :, 0, 0], torch.exp(g.log_gain[0]))
    assert torch.allclose(out[1, :, 0, 0], torch.exp(g.log_gain[2]))
    assert math.isclose(float(out[1, 0].detach()) / float(out[0, 0].detach()), 4.0, rel_tol=1e-5)  # default spread
    with pytest.raises(ValueError):
        g.set_indices(torch.tensor([3]))


def test_lambda_interpolation_is_geometric_between_rate_points():
    lambdas = [0.0035, 0.0067, 0.013]
    assert interpolate_lambda(lambdas, 0) == pytest.approx(0.0035)
    assert interpolate_lambda(lambdas, 2) == pytest.approx(0.013)
    assert interpolate_lambda(lambdas, 1.5) == pytest.approx(math.sqrt(0.0067 * 0.013))
    assert interpolate_lambda([0.01], 0) == 0.01
