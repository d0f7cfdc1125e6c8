"""The transforms' fast path inside a training run: an evaluation forward (a validation) may change their
memory format; training must get the weights back as the optimizer knew them."""

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
