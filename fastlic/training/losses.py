"""Rate-distortion loss (Ballé et al. 2017; MLIC++ §4 and eContextformer §4 use the same form).

MSE:      L = λ · 255² · MSE + bpp
MS-SSIM:  L = λ · (1 − MS-SSIM) + bpp

computed per sample and averaged, so that each sample can carry its own λ (variable-rate training with gain
units, Cui et al. 2021) and a batch split across ``torchrun`` processes averages to the same value.
"""

from __future__ import annotations

import math

import torch

from .metrics import ms_ssim, mse_per_sample, psnr_from_mse


def bpp_per_sample(likelihoods: dict, num_pixels: int) -> torch.Tensor:
    """Estimated bits per pixel of each sample: −Σ log2 likelihoods / pixels."""
    total = sum(torch.log(lk.float()).flatten(1).sum(1) for lk in likelihoods.values())
    return total / (-math.log(2) * num_pixels)


class RateDistortionLoss:
    def __init__(self, metric: str = "mse"):
        if metric not in ("mse", "ms-ssim"):
            raise ValueError(f"metric must be 'mse' or 'ms-ssim', not {metric!r}")
        self.metric = metric

    def __call__(self, out: dict, x: torch.Tensor, lmbda: torch.Tensor) -> dict:
        """``lmbda``: one λ per sample. -> dict of per-batch means: loss, bpp, mse, psnr (and ms_ssim)."""
        n, _, h, w = x.shape
        bpp = bpp_per_sample(out["likelihoods"], h * w)
        x_hat = out["x_hat"].float()
        mse = mse_per_sample(x_hat, x)
        res = {"bpp": bpp.mean(), "mse": mse.mean(), "psnr": psnr_from_mse(mse.detach()).mean()}
        if self.metric == "mse":
            dist = 255.0 ** 2 * mse
        else:
            msssim = ms_ssim(x_hat, x)
            res["ms_ssim"] = msssim.detach().mean()
            dist = 1.0 - msssim
        res["loss"] = (lmbda.to(dist.dtype) * dist + bpp).mean()
        return res
