"""Online RDO (fastlic.ordo) on both model families: never worse than plain coding by the actual RD cost, a file
the ordinary decoder reads, the λ of a variable-rate model interpolated, and the differentiable objective equal
to the evaluation forward at the encoder's own latents."""

import pytest
import torch

from fastlic.errors import FastlicError
from fastlic.ordo import options_for, step_sizes
from fastlic.registry import create_model

MODELS = ["econtextformer-tiny", "mlicpp-tiny"]


def _model(name, seed=0, **config):
    """Random weights whose latents span several integers (g_a's output amplified), so that the streams and
    the optimization are not trivial."""
    torch.manual_seed(seed)
    m = create_model(name, **config)
    last = m.g_a.layers[6] if name.startswith("econtextformer") else m.g_a.analysis_transform[-1]
    with torch.no_grad():
        last.weight.mul_(30)  # the convolution that outputs y
    m.eval()
    m.update()
    return m


def _kodak_crop(h, w):
    from fastlic.io import read_image
    from fastlic.testing import PHOTO  # Kodak's kodim23, shipped in the package
    img = read_image(PHOTO)[200:200 + h, 300:300 + w]
    return torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255


def _image(h, w, seed=0):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("hw", [(64, 64), (50, 70)])  # (50, 70): the distortion excludes the padding
def test_never_worse_on_a_kodak_crop_and_decodes_with_the_ordinary_decoder(name, hw):
    m = _model(name)
    x = _kodak_crop(*hw)
    lmbda = 0.01
    coded = m.compress(x, ordo=True, lmbda=lmbda, gamma=0.3)  # 12 iterations keep the test short
    info = m.last_ordo_info
    assert len(info["history"]) == len(step_sizes(0.062, 0.3, m.ordo_schedule["min_step"])) + 1
    assert min(info["history"]) < info["history"][0]  # the optimization found better latents
    best = min(info["initial"], info.get("optimized", info["initial"]))
    used = info["initial"] if info["used"] == "initial" else info["optimized"]
    assert used == best <= info["initial"]

    def rd(c):  # actual RD cost of the decoded 8-bit image
        out = m.decompress(c["strings"], c["shape"])
        bits = 8 * sum(len(s[0]) for s in c["strings"])
        x_out = torch.round(out["x_hat"].clamp(0, 1) * 255) / 255
        return bits / x[0, 0].numel() + lmbda * 255 ** 2 * torch.mean((x_out - x) ** 2).item(), out

    loss_plain, _ = rd(m.compress(x))
    loss_ordo, out = rd(coded)
    assert loss_ordo <= loss_plain
    assert loss_ordo == pytest.approx(used, rel=1e-6)  # the encoder's bookkeeping is the decoder's result
    assert out["checksums"] == coded["checksums"]


@pytest.mark.parametrize("name", MODELS)
def test_the_encoders_choice_is_costed_on_the_file_the_user_gets(name):
    """The cost the encoder compares is that of the 8-bit image ``fastlic decompress`` writes, not of the float
    reconstruction (which can rank a near-tie the other way round)."""
    from fastlic import codec, container

    m = _model(name)
    x = _kodak_crop(48, 64)
    image = (x[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    lmbda = 0.01
    data = codec.encode_image(m, image, ordo=True, lmbda=lmbda, gamma=0.3)
    info = m.last_ordo_info
    decoded = codec.decode_image(data, m)
    bits = 8 * sum(len(s) for t in container.unpack(data).tiles for s in t.streams)
    mse = ((decoded.astype("float64") - image.astype("float64")) ** 2).mean() / 255 ** 2
    assert bits / (48 * 64) + lmbda * 255 ** 2 * mse == pytest.approx(info[info["used"]], rel=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_objective_at_the_encoders_latents_is_the_evaluation_forward(name):
    m = _model(name)
    x = _image(64, 64)
    lmbda = 0.02
    with torch.no_grad():
        out = m(x)
        y = m.analysis(x)  # the transforms on the same (machine-chosen) path as forward's
        loss = m.rd_loss(x, y, m.h_a(y), lmbda).item()
    expected = m.bpp(out["likelihoods"], x[0, 0].numel()) + lmbda * 255 ** 2 * torch.mean((out["x_hat"] - x) ** 2)
    assert loss == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_options_are_checked(name):
    m = _model(name)
    with pytest.raises(TypeError, match="needs lmbda"):
        m.compress(_image(64, 64), ordo=True)
    with pytest.raises(TypeError, match="need ordo=True"):
        m.compress(_image(64, 64), lmbda=0.01)


@pytest.mark.parametrize("name", [n + "-vr" for n in MODELS])
def test_variable_rate_interpolates_the_trained_lambdas(name):
    m = _model(name, num_rates=3)
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


def test_options_for_reads_the_checkpoint_lambda_or_says_what_is_missing():
    m = create_model("mlicpp-tiny-vr", num_rates=3)
    m.checkpoint_meta = {"lambda": [0.002, 0.008, 0.032]}
    assert options_for(m) == {"ordo": True, "lmbda": [0.002, 0.008, 0.032]}
    assert options_for(m, 0.01) == {"ordo": True, "lmbda": 0.01}
    m.checkpoint_meta = {"lambda": [0.002, 0.008]}  # not one per rate point
    with pytest.raises(FastlicError, match="pass --lmbda"):
        options_for(m)
    with pytest.raises(FastlicError, match="positive"):
        options_for(m, -1.0)
    with pytest.raises(FastlicError, match="does not support oRDO"):
        options_for(create_model("contextformer-tiny"))
