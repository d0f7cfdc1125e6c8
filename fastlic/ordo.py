"""Online rate-distortion optimization (oRDO) of the latents at the encoder.

eContextformer (Koyuncu et al., IEEE TCSVT 2024, arXiv 2306.14287, §III-E; ``shared/specs/econtextformer.md``):
initialize y and z with one encoder pass, freeze every weight, and optimize y and z directly for the training
loss ``R + λ·255²·MSE`` with straight-through rounding (so the loss sees exactly the values that will be coded).
Step size of iteration n = 1, 2, ...: ``α_n = α0·γ^n``; the loop stops when ``α_n <= min_step``
(α0 = 0.062, γ = 0.6, 1e-7 give the paper's 26 iterations). The decoder is unchanged.

Guarantee: the best iterate by the optimized objective is kept, and before coding it is compared with the
initial latents on the *actual* objective (coded bytes of both streams + λ·255²·MSE of the 8-bit image the
decoder will write); the initial latents are coded whenever they are not worse, so oRDO never makes a file
worse by its own objective.

A model supports oRDO by deriving from :class:`OnlineRDO` and implementing ``_from_latents(y, z, "ste")``
(likelihoods and reconstruction, differentiable in y and z through straight-through rounding) and
``_encode_latents(y, z) -> (streams, y_hat)``.

The method is not specific to eContextformer's entropy model: fastlic also offers it for MLIC++ (whose paper
does not use it), with its own measured step schedule (:attr:`OnlineRDO.ordo_schedule`).
"""

from __future__ import annotations

import math

import torch

from .errors import FastlicError
from .evaluation.metrics import mse
from .io import tensor_to_image

#: the eContextformer paper's step schedule: α0 = 0.062, γ = 0.6, stop below 1e-7 (26 iterations)
PAPER_SCHEDULE = {"alpha0": 0.062, "gamma": 0.6, "min_step": 1e-7}


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
                     min_step: float = 1e-7, optimizer: str = "adam", size=None):
    """-> (y, z, y0, z0, history): the best latents by the straight-through objective, the initial ones, and
    the objective per iterate (``history[0]`` is the initial latents'). ``size``: the ``(H, W)`` of the image
    inside the padded ``x``; the distortion is measured there only (default: all of ``x``)."""
    if optimizer not in ("adam", "sgd"):
        raise ValueError("optimizer must be 'adam' or 'sgd'")
    with torch.no_grad():
        y0 = model.analysis(x)
        z0 = model.h_a(y0)
    y = y0.clone().requires_grad_(True)
    z = z0.clone().requires_grad_(True)
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)([y, z], lr=alpha0)
    best = (math.inf, y0, z0)
    history = []
    with torch.enable_grad():
        for lr in step_sizes(alpha0, gamma, min_step) + [None]:
            loss = model.rd_loss(x, y, z, lmbda, size)
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


def coded_loss(model, x: torch.Tensor, streams, y_hat: torch.Tensor, lmbda: float, size=None) -> float:
    """Actual objective of a coded image: bits of the streams per pixel + λ·255²·MSE of the decoder's output,
    both over the image's own ``size`` inside the padded ``x``.

    The MSE is that of the 8-bit image the decoder writes (:func:`fastlic.io.tensor_to_image`, measured by the
    evaluation's :func:`fastlic.evaluation.metrics.mse`): on a near-tie between the initial and the optimized
    latents, the float reconstruction can rank them the other way round from the file the user gets (seen on
    kodim01 at quality 0: the float comparison picked latents worse by 1e-5 in the 8-bit RD cost)."""
    h, w = size or x.shape[-2:]
    bits = 8 * sum(len(s) for s in streams)
    rec = tensor_to_image(model.crop(model.synthesis(y_hat), h, w))
    return bits / (h * w) + lmbda * mse(tensor_to_image(model.crop(x, h, w)), rec)  # mse is in 0..255 units


def ordo_encode(model, x: torch.Tensor, lmbda: float, size=None, **opts):
    """oRDO then coding of a padded single image (its own ``(H, W)`` = ``size``):
    -> (streams, y_hat, checksum, info)."""
    y, z, y0, z0, history = optimize_latents(model, x, lmbda, size=size, **opts)
    streams0, y_hat0, sum0 = model._encode_latents(y0, z0)
    info = {"history": history, "initial": coded_loss(model, x, streams0, y_hat0, lmbda, size), "used": "initial"}
    if y is not y0:
        streams, y_hat, checksum = model._encode_latents(y, z)
        info["optimized"] = coded_loss(model, x, streams, y_hat, lmbda, size)
        if info["optimized"] < info["initial"]:
            info["used"] = "optimized"
            return streams, y_hat, checksum, info
    return streams0, y_hat0, sum0, info


class OnlineRDO:
    """Mixin of a :class:`~fastlic.models.base.CompressionModel` whose encoder can refine its latents by oRDO:
    ``compress(x, ordo=True, lmbda=λ)``. The subclass provides ``g_a``, ``h_a``, ``_from_latents(y, z, "ste")``
    (likelihoods and reconstruction with straight-through rounding) and ``_encode_latents(y, z) -> (streams, y_hat, checksum)``; plain coding
    (``ordo=False``) is one encoder pass into ``_encode_latents``.

    ``ordo_schedule`` holds the model's default step schedule (``alpha0``, ``gamma``, ``min_step``); keyword
    options given to ``compress`` override it. ``last_ordo_info`` keeps the objective history and which
    latents were coded, of the last image coded with oRDO.
    """

    ordo_schedule = PAPER_SCHEDULE
    last_ordo_info: dict | None = None

    def compress(self, x: torch.Tensor, **opts) -> dict:
        if opts.get("ordo"):
            # the padding added to reach the model's size multiple is not part of the image's distortion
            opts["size"] = tuple(x.shape[-2:])
        return super().compress(x, **opts)

    def rd_loss(self, x, y, z, lmbda: float, size=None) -> torch.Tensor:
        """bpp + λ·255²·MSE of latents (y, z) with straight-through rounding, over the image's ``(H, W)`` =
        ``size`` inside the padded ``x`` (the training loss, as a function of the latents)."""
        out = self._from_latents(y, z, "ste")
        h, w = size or x.shape[-2:]
        mse = torch.mean((self.crop(out["x_hat"], h, w) - self.crop(x, h, w)) ** 2)
        return self.bpp(out["likelihoods"], x.shape[0] * h * w) + lmbda * 255 ** 2 * mse

    def _compress(self, x, ordo: bool = False, **ordo_opts):
        """``ordo=True`` (with ``lmbda=`` and optionally ``alpha0``, ``gamma``, ``min_step``, ``optimizer``)
        refines the latents by online RDO before coding."""
        if not ordo:
            if ordo_opts:
                raise TypeError(f"unknown compress options {sorted(ordo_opts)} (they need ordo=True)")
            y = self.analysis(x)
            streams, _, checksum = self._encode_latents(y, self.h_a(y))
            return streams, checksum
        if "lmbda" not in ordo_opts:
            raise TypeError("oRDO needs lmbda=")
        streams, _, checksum, self.last_ordo_info = ordo_encode(self, x, **{**self.ordo_schedule, **ordo_opts})
        return streams, checksum


def options_for(model, lmbda: float | None = None) -> dict:
    """The ``compress`` options of oRDO for a loaded model: ``lmbda`` if given, else the λ its checkpoint was
    trained with (one value, or one per rate point of a variable-rate model, which interpolates the λ of the
    quality it codes). Raises :class:`FastlicError` with a one-line reason when neither is available."""
    if not isinstance(model, OnlineRDO):
        raise FastlicError(f"model {model.model_name!r} does not support oRDO")
    if lmbda is not None:
        if not lmbda > 0:
            raise FastlicError(f"the oRDO lambda must be positive, not {lmbda}")
        return {"ordo": True, "lmbda": float(lmbda)}
    meta = getattr(model, "checkpoint_meta", {})
    value = meta.get("lambda", meta.get("lmbda"))  # fastlic train writes "lambda"
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, (int, float)):
        return {"ordo": True, "lmbda": float(value)}
    if isinstance(value, list) and len(value) == getattr(model, "num_rates", -1) \
            and all(isinstance(v, (int, float)) for v in value):
        return {"ordo": True, "lmbda": [float(v) for v in value]}
    raise FastlicError("oRDO needs the lambda the model was trained with, and its checkpoint does not record it: "
                       "pass --lmbda")
