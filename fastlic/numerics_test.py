"""The transforms' fast path: inside a training run an evaluation forward (a validation) may change their
memory format, and training must get the weights back as the optimizer knew them; official MLIC++ weights run in
the exact mode unless asked otherwise."""

import pytest
import torch

import fastlic
from fastlic import numerics


def _is_channels_last(module) -> bool:
    w = next(p for p in module.parameters() if p.dim() == 4)
    return not w.is_contiguous() and w.is_contiguous(memory_format=torch.channels_last)


def test_validation_between_training_steps_leaves_training_layout_alone():
    torch.manual_seed(0)
    m = fastlic.create_model("mlicpp-tiny")
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    x = torch.rand(2, 3, 64, 64)

    def step():
        m.train()
        out = m(x)
        loss = m.bpp(out["likelihoods"], 64 * 64).mean() + torch.mean((out["x_hat"] - x) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    with numerics.precision("bf16"):  # channels_last on every CPU
        m.eval()
        with torch.no_grad():
            m(x[:1])
        assert _is_channels_last(m.g_a) and _is_channels_last(m.g_s)
        step()  # back in the format the Adam moments have
        assert not _is_channels_last(m.g_a) and not _is_channels_last(m.g_s)
        for p in m.parameters():
            if p.dim() == 4:
                assert p.is_contiguous() and opt.state[p]["exp_avg"].is_contiguous()
        m.eval()
        with torch.no_grad():
            m(x[:1])  # and the fast path again for the next validation
        assert _is_channels_last(m.g_s)


def test_training_layout_keeps_a_channels_last_model_channels_last():
    """A model trained in channels_last (the trainer's CUDA setting) stays so after an evaluation forward."""
    torch.manual_seed(0)
    m = fastlic.create_model("mlicpp-tiny").to(memory_format=torch.channels_last)
    with numerics.precision("fp32"):  # the exact mode: contiguous transforms
        m.eval()
        with torch.no_grad():
            m(torch.rand(1, 3, 64, 64))
        assert not _is_channels_last(m.g_s)
    m.train()
    m(torch.rand(1, 3, 64, 64))
    assert _is_channels_last(m.g_a) and _is_channels_last(m.g_s)


def _official_tiny():
    """A tiny MLIC++ loaded as official weights are (the reference's key names are fastlic's own)."""
    from fastlic.models.mlicpp import MLICPlusPlus

    torch.manual_seed(0)
    return MLICPlusPlus.from_reference_state_dict(fastlic.create_model("mlicpp-tiny").state_dict())


def test_official_weights_default_to_the_exact_transforms():
    """`auto` runs official MLIC++ weights in fp32 on every machine (the mode the reference conformance holds
    in); an explicit fp32/bf16 setting wins; models without a preference keep the machine's choice."""
    official = _official_tiny()
    torch.manual_seed(0)
    own = fastlic.create_model("mlicpp-tiny").eval()
    with numerics.precision("auto"):
        assert numerics.transform_plan("cpu", official).dtype is None
        assert "official MLIC++ weights" in numerics.describe("cpu", official)["transforms"]
        assert numerics.transform_plan("cpu", own) == numerics.transform_plan("cpu")
        x = torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            auto = official(x)["x_hat"]
        with numerics.precision("fp32"), torch.no_grad():
            assert torch.equal(official(x)["x_hat"], auto)  # the same computation, bit for bit
    with numerics.precision("bf16"):
        assert numerics.transform_plan("cpu", official).dtype == torch.bfloat16
        with torch.no_grad():
            assert not torch.equal(official(x)["x_hat"], auto)  # bf16 was really used when asked for
    numerics.prefer_precision(official, None)
    with numerics.precision("auto"):
        assert numerics.transform_plan("cpu", official) == numerics.transform_plan("cpu")


def test_converted_official_checkpoint_keeps_the_preference(tmp_path):
    from fastlic import checkpoint, codec

    src = tmp_path / "official.pth.tar"
    torch.save({"state_dict": _official_tiny().state_dict(), "epoch": 1}, src)
    checkpoint.convert_reference_checkpoint(src, tmp_path / "converted.pt")
    for m in (codec.load_model(checkpoint=src), codec.load_model(checkpoint=tmp_path / "converted.pt")):
        with numerics.precision("auto"):
            assert numerics.transform_plan("cpu", m).dtype is None
    with pytest.raises(ValueError):
        numerics.prefer_precision(m, "fp16")
