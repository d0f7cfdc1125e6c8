"""Image-quality metrics used in training and validation: PSNR and (differentiable) MS-SSIM.

MS-SSIM follows Wang, Simoncelli, Bovik, "Multi-scale structural similarity for image quality assessment",
Asilomar 2003: 5 scales, weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), an 11x11 Gaussian window with
sigma 1.5, K1 = 0.01, K2 = 0.03, 2x2 average pooling between scales (odd sides zero-padded by one, like the widely used ``pytorch_msssim``). For inputs too small for an 11-pixel
window at the coarsest scale (training crops below 176 px), the window is shrunk to the image size at that
scale instead of failing; values then differ slightly from the standard definition (only used as a training
signal and validation estimate, never as a reported benchmark number).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def mse_per_sample(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((x.float() - y.float()) ** 2).flatten(1).mean(1)


def psnr_from_mse(mse: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    return 10 * torch.log10(data_range ** 2 / mse.clamp(min=1e-10))


def _gaussian(size: int, sigma: float, device, dtype) -> torch.Tensor:
    r = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(r ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _ssim_terms(x, y, data_range: float, win: int):
    c = x.shape[1]
    g = _gaussian(win, 1.5, x.device, x.dtype)
    gh, gv = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, gh, groups=c), gv, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    ssim = (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs
    return ssim.flatten(1).mean(1), cs.flatten(1).mean(1)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-sample MS-SSIM of two ``[B, C, H, W]`` batches (differentiable)."""
    x, y = x.float(), y.float()
    values = []
    for i, w in enumerate(_WEIGHTS):
        win = min(11, x.shape[-1], x.shape[-2])
        ssim, cs = _ssim_terms(x, y, data_range, win)
        last = i == len(_WEIGHTS) - 1
        values.append((ssim if last else cs).clamp(min=1e-6) ** w)  # relu-like clamp keeps the power defined
        if not last:
            pad = (x.shape[-2] % 2, x.shape[-1] % 2)  # odd sides: as pytorch_msssim / the reference code
            x, y = F.avg_pool2d(x, 2, padding=pad), F.avg_pool2d(y, 2, padding=pad)
    return math.prod(values)
