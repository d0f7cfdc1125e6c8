"""Variable rate from one set of weights: gain units on the latent with continuous interpolation.

Cui, Wang, Gao, Bai, Zhang, "Asymmetric gained deep image compression with continuous rate adaptation",
CVPR 2021, §3.2–3.3. A gain matrix ``G`` (``K x M``) scales the latent channel-wise before the entropy model,
``ȳ = y ⊙ G[k]``, and an inverse gain matrix ``G'`` scales the decoded latent before the synthesis transform,
``g_s(ŷ ⊙ G'[k])``. The K rows are trained jointly at K rate points (one λ each, sample by sample). A continuous
rate between two adjacent trained points k and k+1 uses the geometric interpolation of §3.3,
``G_q = G[k]^(1-l) · G[k+1]^l`` with ``l = q - k`` (and the same for ``G'``).

Here ``quality`` ``q`` is a float in ``[0, K-1]``: integers are the trained rate points, ``0`` the lowest rate
(smallest λ). It is snapped to a grid of 1/1024 (:func:`canonical_quality`), which float32 and float64 both
hold exactly, so a quality written into a file and read back is the same number bit for bit.

Why encoder and decoder agree: the gains are stored as logarithms, so the interpolation is
``exp((1-l)·log G[k] + l·log G[k+1])``, evaluated in float64 and rounded to float32 by the same function on
both sides. The gain does not enter the entropy-parameter path at all: the entropy model codes the gained
latent ``ȳ`` and the decoder recovers the same quantized ``ȳ`` whatever the gain; only the synthesis input
``ŷ ⊙ G'_q`` depends on it. So even a last-bit difference of ``exp`` between two machines could only move
pixels by float noise, never desynchronize the entropy decoder.

:func:`variable_rate` turns any :class:`~fastlic.models.base.CompressionModel` subclass with ``g_a`` / ``g_s``
into a variable-rate one. The gains are applied by forward hooks on ``g_a`` and ``g_s``, so the state-dict keys
of the base model stay unchanged (a fixed-rate model can be fine-tuned into a variable-rate one) and the gain
parameters live under ``latent_gain.*``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

#: quality values are multiples of 1 / QUALITY_GRID
QUALITY_GRID = 1024


def canonical_quality(q: float, num_rates: int) -> float:
    """``q`` snapped to the 1/1024 grid; ValueError outside ``[0, num_rates - 1]`` or not finite."""
    q = float(q)
    if not math.isfinite(q) or q < 0 or q > num_rates - 1:
        raise ValueError(f"quality must be in [0, {num_rates - 1}], got {q}")
    return round(q * QUALITY_GRID) / QUALITY_GRID


class LatentGain(nn.Module):
    """Gain and inverse-gain matrices (stored as logarithms, ``K x channels``) and the current rate.

    Initialized as a geometric ladder spanning a factor ``spread`` from the lowest to the highest rate point
    (inverse gains the reciprocals), so the K rate points start apart and training only refines them.
    """

    def __init__(self, channels: int, num_rates: int, spread: float = 4.0):
        super().__init__()
        if num_rates < 1:
            raise ValueError("num_rates must be >= 1")
        self.channels, self.num_rates = int(channels), int(num_rates)
        steps = torch.linspace(-0.5, 0.5, num_rates) if num_rates > 1 else torch.zeros(1)
        ladder = (steps * math.log(spread))[:, None].expand(num_rates, channels).clone()
        self.log_gain = nn.Parameter(ladder)
        self.log_inverse_gain = nn.Parameter(-ladder.clone())
        self._indices: torch.Tensor | None = None  # per-sample rate points while training
        self.quality = float(num_rates - 1)

    # ------------------------------------------------------------------ selection
    def set_quality(self, q: float) -> float:
        self.quality = canonical_quality(q, self.num_rates)
        return self.quality

    def set_indices(self, indices: torch.Tensor | None) -> None:
        """Per-sample integer rate points for the next forward passes (training); None to use ``quality``."""
        if indices is not None:
            indices = torch.as_tensor(indices, dtype=torch.long)
            if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_rates):
                raise ValueError(f"rate indices must be in [0, {self.num_rates - 1}]")
        self._indices = indices

    # ------------------------------------------------------------------ vectors
    @staticmethod
    def interpolate(log_table: torch.Tensor, q: float) -> torch.Tensor:
        """Geometric interpolation between adjacent rows of ``exp(log_table)`` at quality ``q`` (float32)."""
        k = min(int(math.floor(q)), log_table.shape[0] - 1)
        frac = q - k
        row = log_table[k].double()
        if frac:
            row = (1.0 - frac) * row + frac * log_table[k + 1].double()
        return torch.exp(row).float()

    def _vector(self, log_table: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if self._indices is not None:
            if self._indices.numel() != like.shape[0]:
                raise ValueError(f"{self._indices.numel()} rate indices for a batch of {like.shape[0]}")
            g = torch.exp(log_table[self._indices.to(log_table.device)])
        else:
            g = self.interpolate(log_table.detach().cpu(), self.quality).to(log_table.device)[None]
        return g.to(like.dtype)[:, :, None, None]

    def gain(self, y: torch.Tensor) -> torch.Tensor:
        return y * self._vector(self.log_gain, y)

    def inverse_gain(self, y: torch.Tensor) -> torch.Tensor:
        return y * self._vector(self.log_inverse_gain, y)


def interpolate_lambda(lambdas, quality: float) -> float:
    """The λ a continuous ``quality`` stands for: geometric interpolation between the trained λ of the two
    neighbouring rate points, the same rule as the gains (§3.3), e.g. for oRDO of a variable-rate model."""
    lambdas = [float(v) for v in lambdas]
    if len(lambdas) == 1:
        return lambdas[0]
    # float64 on purpose: LatentGain.interpolate rounds to float32 for the gains, λ needs no such rounding
    k = min(int(math.floor(quality)), len(lambdas) - 2)
    t = quality - k
    return math.exp((1 - t) * math.log(lambdas[k]) + t * math.log(lambdas[k + 1]))


class VariableRateMixin:
    """Adds gain units (see module docstring) to a CompressionModel subclass; use :func:`variable_rate`."""

    def __init__(self, *args, num_rates: int = 5, gain_spread: float = 4.0, **kwargs):
        super().__init__(*args, **kwargs)
        channels = getattr(self, "M", None)
        if channels is None:  # models without an ``M`` attribute: measure the latent width
            with torch.no_grad():
                channels = self.g_a(torch.zeros(1, 3, self.pad_multiple, self.pad_multiple)).shape[1]
        self.latent_gain = LatentGain(channels, num_rates, gain_spread)
        self.config = {**self.config, "num_rates": int(num_rates), "gain_spread": float(gain_spread)}
        # bound methods, not closures: copy.deepcopy maps them onto the copy's own gain module
        self.g_a.register_forward_hook(self._gain_hook)
        self.g_s.register_forward_pre_hook(self._inverse_gain_hook)

    def _gain_hook(self, _module, _inputs, output):
        return self.latent_gain.gain(output)

    def _inverse_gain_hook(self, _module, inputs):
        return (self.latent_gain.inverse_gain(inputs[0]), *inputs[1:])

    @property
    def num_rates(self) -> int:
        return self.latent_gain.num_rates

    @property
    def quality(self) -> float:
        return self.latent_gain.quality

    def set_quality(self, q: float) -> float:
        """Select the rate (float in ``[0, num_rates - 1]``); returns the canonical value actually used."""
        return self.latent_gain.set_quality(q)

    def set_rate_indices(self, indices) -> None:
        self.latent_gain.set_indices(indices)

    def compress(self, x: torch.Tensor, quality: float | None = None, **opts) -> dict:
        """As :meth:`CompressionModel.compress`; the result also carries ``"quality"`` for the decoder.

        ``lmbda`` (an option of oRDO) may be the list of the trained λ, one per rate point: the λ of the current
        quality is then interpolated (:func:`interpolate_lambda`)."""
        if quality is not None:
            self.set_quality(quality)
        self.latent_gain.set_indices(None)
        if isinstance(opts.get("lmbda"), (list, tuple)):
            if len(opts["lmbda"]) != self.num_rates:
                raise ValueError(f"lmbda lists {len(opts['lmbda'])} values for {self.num_rates} rate points")
            opts["lmbda"] = interpolate_lambda(opts["lmbda"], self.quality)
        out = super().compress(x, **opts)
        out["quality"] = self.quality
        return out

    def decompress(self, strings, shape, quality: float | None = None, verify=None) -> dict:
        """As :meth:`CompressionModel.decompress` at the encoder's ``quality`` (default: the current one)."""
        if quality is not None:
            self.set_quality(quality)
        self.latent_gain.set_indices(None)
        return super().decompress(strings, shape, verify=verify)


_CLASSES: dict[type, type] = {}


def variable_rate(cls: type) -> type:
    """The variable-rate subclass of ``cls`` (cached, so that every call returns the same class)."""
    if cls not in _CLASSES:
        _CLASSES[cls] = type(f"VariableRate{cls.__name__}", (VariableRateMixin, cls),
                             {"__doc__": f"{cls.__name__} with gain units (fastlic.models.gain)."})
    return _CLASSES[cls]


def is_variable_rate(model) -> bool:
    model = getattr(model, "module", model)  # DistributedDataParallel
    return isinstance(model, VariableRateMixin)
