import pytest
import torch

from fastlic.training.losses import RateDistortionLoss, bpp_per_sample
from fastlic.training.metrics import ms_ssim, mse_per_sample, psnr_from_mse


def test_psnr():
    x = torch.zeros(2, 3, 8, 8)
    y = x.clone()
    y[1] += 0.1
    mse = mse_per_sample(x, y)
    assert psnr_from_mse(mse)[1].item() == pytest.approx(20.0, abs=1e-4)


def test_ms_ssim_identity_and_order():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 64, generator=g)
    assert torch.allclose(ms_ssim(x, x), torch.ones(2), atol=1e-5)
    small = (x + 0.02 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    large = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert bool((ms_ssim(x, small) > ms_ssim(x, large)).all())


def test_ms_ssim_matches_pytorch_msssim_on_large_images():
    pms = pytest.importorskip("pytorch_msssim")
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 192, 200, generator=g)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    ref = pms.ms_ssim(x, y, data_range=1.0, size_average=False)
    assert torch.allclose(ms_ssim(x, y), ref, atol=1e-4)


def test_loss_uses_each_samples_lambda():
    x = torch.zeros(2, 3, 4, 4)
    out = {"x_hat": x + 0.1, "likelihoods": {"y": torch.full((2, 1, 2, 2), 0.5)}}
    res = RateDistortionLoss("mse")(out, x, torch.tensor([0.01, 0.02]))
    bpp = 4 / 16  # four halves per sample over 16 pixels
    assert bpp_per_sample(out["likelihoods"], 16).tolist() == [bpp, bpp]
    d = 255 ** 2 * 0.01
    assert res["loss"].item() == pytest.approx(((0.01 * d + bpp) + (0.02 * d + bpp)) / 2, rel=1e-5)
