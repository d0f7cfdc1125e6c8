"""Online rate-distortion optimization (oRDO) of the latents at the encoder.

eContextformer (Koyuncu et al., IEEE TCSVT 2024, arXiv 2306.14287, §III-E; ``shared/specs/econtextformer.md``):
initialize y and z with one encoder pass, freeze every weight, and optimize y and z directly for the training
loss ``R + λ·255²·MSE`` with straight-through rounding (so the loss sees exactly the values that will be coded).
Step size of iteration n = 1, 2, ...: ``α_n = α0·γ^n``; the loop stops when ``α_n <= min_step``
(α0 = 0.062, γ = 0.6, 1e-7 give the paper's 26 iterations). The decoder is unchanged.

Guarantee: the best iterate by the optimized objective is kept, and before coding it is compared with the
initial latents on the *actual* objective (coded bytes of both streams + λ·255²·MSE of the reconstruction the
decoder will produce); the initial latents are coded whenever they are not worse, so oRDO never makes a file
worse by its own objective.

A model supports oRDO by implementing ``rd_loss(x, y, z, lmbda) -> scalar`` (differentiable in y and z, with
straight-through rounding) and ``_encode_latents(y, z) -> (streams, y_hat)``.
"""

from __future__ import annotations

import math

import torch


def step_sizes(alpha0: float = 0.062, gamma: float = 0.6, min_step: float = 1e-7) -> list[float]:
    """α_n = α0·γ^n for n = 1, 2, ... while α_n > min_step."""
    if not (0 < gamma < 1) or alpha0 <= 0:
        raise ValueError("oRDO needs alpha0 > 0 and 0 < gamma < 1")
    out, n = [], 1
    while alpha0 * gamma ** n > min_step:
        out.append(alpha0 * gamma ** n)
        n += 1
    return out


def optimize_latents(model, x: torch.Tensor, lmbda: float, alpha0: float = 0.062, gamma: float = 0.6,
                     min_step: float = 1e-7, optimizer: str = "adam"):
    """-> (y, z, y0, z0, history): the best latents by the straight-through objective, the initial ones, and
    the objective per iterate (``history[0]`` is the initial latents')."""
    if optimizer not in ("adam", "sgd"):
        raise ValueError("optimizer must be 'adam' or 'sgd'")
    with torch.no_grad():
        y0 = model.g_a(x)
        z0 = model.h_a(y0)
    y = y0.clone().requires_grad_(True)
    z = z0.clone().requires_grad_(True)
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)([y, z], lr=alpha0)
    best = (math.inf, y0, z0)
    history = []
    with torch.enable_grad():
        for lr in step_sizes(alpha0, gamma, min_step) + [None]:
            loss = model.rd_loss(x, y, z, lmbda)
            value = loss.item()
            history.append(value)
            if value < best[0]:
                best = (value, y.detach().clone(), z.detach().clone())
            if lr is None:  # the final iterate is evaluated, not stepped
                break
            y.grad, z.grad = torch.autograd.grad(loss, [y, z])  # weights stay frozen and untouched
            for group in opt.param_groups:
                group["lr"] = lr
            opt.step()
    return best[1], best[2], y0, z0, history


def coded_loss(model, x: torch.Tensor, streams, y_hat: torch.Tensor, lmbda: float) -> float:
    """Actual objective of a coded image: bits of the streams per pixel + λ·255²·MSE of the decoder's output."""
    bits = 8 * sum(len(s) for s in streams)
    mse = torch.mean((model.g_s(y_hat).clamp(0, 1) - x) ** 2).item()
    return bits / (x.shape[-2] * x.shape[-1]) + lmbda * 255 ** 2 * mse


def ordo_encode(model, x: torch.Tensor, lmbda: float, **opts):
    """oRDO then coding of a padded single image: -> (streams, y_hat, info)."""
    y, z, y0, z0, history = optimize_latents(model, x, lmbda, **opts)
    streams0, y_hat0 = model._encode_latents(y0, z0)
    info = {"history": history, "initial": coded_loss(model, x, streams0, y_hat0, lmbda), "used": "initial"}
    if y is not y0:
        streams, y_hat = model._encode_latents(y, z)
        info["optimized"] = coded_loss(model, x, streams, y_hat, lmbda)
        if info["optimized"] < info["initial"]:
            info["used"] = "optimized"
            return streams, y_hat, info
    return streams0, y_hat0, info
