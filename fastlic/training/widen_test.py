"""Widening the transforms (fastlic.training.widen): the wider model computes what the trained one did, its new
weights learn, and the widened file carries the training behind the source into the cards."""

import numpy as np
import pytest
import torch
from PIL import Image

from fastlic.checkpoint import load_checkpoint, save_checkpoint
from fastlic.models.mlicpp import infer_config
from fastlic.registry import create_model
from fastlic.training import widen as widen_mod
from fastlic.training.config import make_config
from fastlic.training.trainer import Trainer


def _trained_like(name="mlicpp-tiny-vr", seed=0):
    """Random weights made less trivial: latents spanning several integers, GDNs that mix channels."""
    torch.manual_seed(seed)
    m = create_model(name)
    with torch.no_grad():
        m.g_a.analysis_transform[-1].weight.mul_(30)
        for mod in m.modules():
            if hasattr(mod, "gamma_reparam"):
                mod.gamma.add_(0.2 * torch.rand_like(mod.gamma))
    m.eval()
    m.update()
    return m


def _image(seed=0):
    return torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def test_the_widened_model_computes_what_the_source_did():
    m = _trained_like()
    wide = widen_mod.widen(m, 48)
    assert wide.config["transform_channels"] == 48 and "transform_channels" not in m.config
    assert wide.g_a.analysis_transform[0].conv1.weight.shape[0] == 48
    assert wide.g_s.synthesis_transform[-1][0].weight.shape[1] == 48
    assert infer_config(wide.state_dict())["transform_channels"] == 48 and infer_config(wide.state_dict())["N"] == 32
    assert "transform_channels" not in infer_config(m.state_dict())
    x = _image()
    with torch.no_grad():
        for q in (0.0, 1.5, m.num_rates - 1):
            m.set_quality(q)
            wide.set_quality(q)
            y = m.g_a(x)
            torch.testing.assert_close(wide.g_a(x), y, rtol=0, atol=1e-5)
            y_hat = torch.round(y)
            torch.testing.assert_close(wide.g_s(y_hat), m.g_s(y_hat), rtol=0, atol=1e-5)
    # everything else is the source's, tensor for tensor
    src = m.state_dict()
    for k, v in wide.state_dict().items():
        if not k.startswith(("g_a.", "g_s.")):
            assert torch.equal(v, src[k]), k


def test_the_new_weights_learn():
    m = _trained_like()
    wide = widen_mod.widen(m, 48).train()
    out = wide(_image(1))
    loss = sum(-torch.log2(v).sum() for v in out["likelihoods"].values()) * 1e-3 + \
        ((out["x_hat"] - _image(1)) ** 2).mean()
    loss.backward()
    last = wide.g_s.synthesis_transform[-1][0].weight  # reads the new channels through zero weights
    assert torch.all(last[:, 32:] == 0)
    assert last.grad[:, 32:].abs().sum() > 0


def test_widen_refuses_to_narrow():
    with pytest.raises(widen_mod.FastlicError, match="narrower"):
        widen_mod.widen(_trained_like(), 16)


def test_cli_writes_a_warm_start_that_keeps_the_budget(tmp_path, capsys):
    src = tmp_path / "src.pt"
    stages = [{"steps": 100, "wall_s": 60.0, "run": "a"}, {"steps": 50, "wall_s": 30.0, "run": "b"}]
    save_checkpoint(src, _trained_like(), {"stages": stages})
    out = tmp_path / "wide.pt"
    assert widen_mod.main([str(src), str(out), "--transform-channels", "40"]) == 0
    assert "150 steps of training behind it" in capsys.readouterr().out
    model = load_checkpoint(out)
    assert model.config["transform_channels"] == 40 and model.checkpoint_meta["stages"] == stages
    assert widen_mod.main([str(src), str(out), "--transform-channels", "40"]) == 1  # an existing file is kept
    assert "exists" in capsys.readouterr().err
    # a run warm-started from it counts the source's stages before its own
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(data / "a.png")
    cfg = make_config(model="mlicpp-tiny-vr", model_config={"transform_channels": 40},
                      lmbda=[0.002, 0.004, 0.008, 0.016, 0.032], data=[str(data)], init=str(out),
                      out=str(tmp_path / "run"), steps=1)
    trainer = Trainer(cfg, quiet=True)
    try:
        assert trainer.stages_before == stages
        assert trainer.raw.g_a.analysis_transform[0].conv1.weight.shape[0] == 40
    finally:
        trainer.close()
