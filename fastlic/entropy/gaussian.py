"""Conditional entropy models: Gaussian and Gaussian mixture.

* :class:`GaussianConditional` — the mean-scale Gaussian of Minnen, Ballé, Toderici, "Joint autoregressive and
  hierarchical priors for learned image compression", NeurIPS 2018: the likelihood of a quantized value is the
  Gaussian mass of its unit bin. Scale lower bound 0.11 and likelihood lower bound 1e-9 as in MLIC++ (Jiang et
  al., arXiv 2307.15421, §4). Training: additive uniform noise; evaluation: rounding around the mean.
  Coding: the symbol ``round(y - mu)`` is coded with a zero-mean Gaussian whose scale is snapped to the nearest
  entry (in log scale) of a table of 256 scales log-spaced from 0.11 to 256 (:data:`SCALE_LEVELS`; the reference
  snaps *up* to 64 entries, available as ``snap="up"`` with ``levels=64``).
* :class:`GaussianMixtureConditional` — a mixture of ``k`` Gaussians (Cheng, Sun, Takeuchi, Katto, "Learned
  image compression with discretized Gaussian mixture likelihoods and attention modules", CVPR 2020), used by
  eContextformer with k = 3. It cannot be tabulated, so it is coded with one probability row per symbol.

Rate cost of the tables (snapping, integer quantization, escapes, ANS) against -sum(log2 likelihoods):
``results/mlicpp/rate_overhead_*.json`` (``benchmarks/rate_overhead.py``), summarized in docs/results.md.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from .coder import Decoder, Encoder, TableOwner, quantize_pmf
from .ops import LowerBound

_SQRT1_2 = 2 ** -0.5


def standardized_cumulative(x: torch.Tensor) -> torch.Tensor:
    """Standard normal CDF, written as 0.5 * erfc(-x / sqrt(2)) for accuracy in the lower tail."""
    return 0.5 * torch.erfc(-_SQRT1_2 * x)


#: scales per coding table set; the reference uses 64 (a 13 % step: the coded size then strayed up to 1.5 % from
#: the model's estimate on Kodak with the fixture weights); 256 steps of 3 %, snapped to the nearest
SCALE_LEVELS = 256


def default_scale_table(minimum: float = 0.11, maximum: float = 256.0, levels: int = SCALE_LEVELS) -> torch.Tensor:
    """Log-spaced scale table (float32); ``levels=64`` is the MLIC++ / CompressAI table."""
    return torch.exp(torch.linspace(math.log(minimum), math.log(maximum), levels))


def _gaussian_table_pmf(scales: np.ndarray, tail_mass: float):
    """Float64 pmfs of zero-mean Gaussians over [-c-1, c+1] (end bins = tails) for each scale."""
    mult = -float(torch.special.ndtri(torch.tensor(tail_mass / 2, dtype=torch.float64)))
    centers = np.ceil(scales.astype(np.float64) * mult).astype(np.int64)
    kmax = int(centers.max()) * 2 + 3
    s = torch.from_numpy(scales.astype(np.float64))[:, None]
    k = torch.arange(kmax, dtype=torch.float64)[None, :] - torch.from_numpy(centers + 1)[:, None].double()
    upper = standardized_cumulative((k + 0.5) / s)
    lower = standardized_cumulative((k - 0.5) / s)
    pmf = upper - lower
    lengths = 2 * centers + 3
    idx = torch.arange(kmax)[None, :]
    last = torch.from_numpy(lengths - 1)[:, None]
    pmf = torch.where(idx == 0, upper[:, :1].expand_as(pmf), pmf)  # mass below -c - 0.5
    pmf = torch.where(idx == last, upper[:, :1].expand_as(pmf), pmf)  # symmetric upper tail
    pmf = torch.where(idx > last, torch.zeros_like(pmf), pmf)
    return pmf.numpy(), lengths, -(centers + 1)


class GaussianConditional(TableOwner, nn.Module):
    """Mean-scale Gaussian conditional (see module docstring).

    Args:
        scale_bound: lower bound applied to predicted scales.
        likelihood_bound: lower bound of returned likelihoods.
        tail_mass: mass outside each table's regular range (it goes to the escape bins).
        scale_table: the coding scale table; defaults to :data:`SCALE_LEVELS` log-spaced scales in [0.11, 256].
    """

    _EXTRA_RESIZABLE = ("scale_table",)

    def __init__(self, scale_bound: float = 0.11, likelihood_bound: float = 1e-9, tail_mass: float = 1e-9,
                 scale_table: torch.Tensor | None = None, snap: str = "nearest"):
        super().__init__()
        if snap not in ("nearest", "up"):
            raise ValueError("snap must be 'nearest' or 'up'")
        self.snap = snap
        self.scale_bound = float(scale_bound)
        self.lower_bound_scale = LowerBound(scale_bound)
        self.likelihood_lower_bound = LowerBound(likelihood_bound)
        self.tail_mass = float(tail_mass)
        table = default_scale_table() if scale_table is None else torch.as_tensor(scale_table, dtype=torch.float32)
        self.register_buffer("scale_table", table.clone())
        self._init_tables()  # built by update()

    # ----------------------------------------------------------------------------------- likelihoods
    def likelihood(self, values: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None = None):
        """Gaussian mass of the unit bin around ``values`` (op order of the MLIC++ reference)."""
        if means is not None:
            values = values - means
        scales = self.lower_bound_scale(scales)
        values = torch.abs(values)
        upper = standardized_cumulative((0.5 - values) / scales)
        lower = standardized_cumulative((-0.5 - values) / scales)
        return upper - lower

    def forward(self, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None = None,
                training: bool | None = None):
        """-> (y_tilde, likelihoods): noise in training, rounding around ``means`` in evaluation."""
        if training is None:
            training = self.training
        if training:
            y_tilde = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        elif means is not None:
            y_tilde = torch.round(y - means) + means
        else:
            y_tilde = torch.round(y)
        lik = self.likelihood_lower_bound(self.likelihood(y_tilde, scales, means))
        return y_tilde, lik

    # ----------------------------------------------------------------------------------- coding
    @torch.no_grad()
    def update(self) -> None:
        """Build the integer tables, one per entry of the scale table."""
        pmf, lengths, offsets = _gaussian_table_pmf(self.scale_table.cpu().numpy(), self.tail_mass)
        counts = np.zeros(pmf.shape, np.int64)
        for t in range(len(lengths)):
            counts[t, : lengths[t]] = quantize_pmf(pmf[t, : lengths[t]])
        self._set_tables(counts, lengths, offsets)

    def build_indexes(self, scales: torch.Tensor) -> torch.Tensor:
        """Table index per scale (of max(scale, bound)).

        ``snap="nearest"`` (default): the entry nearest in log scale (boundaries at the geometric means of
        neighbours), unbiased, so the coded rate follows the model's estimate closely even when the model is
        over- or under-confident. ``snap="up"``: the smallest entry >= the scale, the MLIC++ reference's rule.
        Both are pure comparisons, hence exact and reproducible."""
        scales = torch.clamp(scales, min=self.scale_bound).contiguous()
        t = self.scale_table
        if self.snap == "up":
            return torch.searchsorted(t[:-1].contiguous(), scales, right=False)
        bounds = torch.sqrt(t[:-1].double() * t[1:].double()).float()
        return torch.searchsorted(bounds.contiguous(), scales, right=False)

    def encode(self, encoder: Encoder, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """Code ``round(y - means)`` as one chunk; -> the dequantized values ``symbol + mean``."""
        sym = torch.round(y - means)
        encoder.encode(sym.long().cpu().numpy(), self.build_indexes(scales).cpu().numpy(), self.tables)
        return sym + means

    def decode(self, decoder: Decoder, scales: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`encode` given the same scales and means."""
        sym = decoder.decode(self.build_indexes(scales).cpu().numpy(), self.tables)
        return torch.from_numpy(sym).to(device=means.device, dtype=means.dtype).reshape(means.shape) + means


class GaussianMixtureConditional(nn.Module):
    """Discretized Gaussian mixture with ``k`` components (see module docstring).

    Parameters come as tensors whose dim ``component_dim`` indexes components: ``weights`` (logits, softmaxed
    here), ``means`` and ``scales``, each shaped like ``y`` with an extra component dimension.

    Coding: the symbol is ``round(y) - c`` where ``c = round(sum_k w_k mu_k)`` is an integer center computed
    from the parameters, coded with a row over ``[-W, W]`` (plus escape bins) built in float64 from the
    mixture's bin masses; ``W`` adapts to the chunk's largest mixture spread up to ``max_half_width``.
    A call is coded as consecutive chunks of at most ``chunk_size`` symbols (one coder chunk and one ``W``
    each), which bounds the float64 work arrays to ``chunk_size · (2W+3) · k`` values whatever the image size.
    """

    def __init__(self, k: int = 3, scale_bound: float = 0.11, likelihood_bound: float = 1e-9,
                 max_half_width: int = 64, spread: float = 6.0, chunk_size: int = 4096):
        super().__init__()
        self.k = int(k)
        self.chunk_size = int(chunk_size)
        self.scale_bound = float(scale_bound)
        self.lower_bound_scale = LowerBound(scale_bound)
        self.likelihood_lower_bound = LowerBound(likelihood_bound)
        self.max_half_width = int(max_half_width)
        self.spread = float(spread)

    def likelihood(self, values, weights, means, scales, component_dim: int = 1):
        values = values.unsqueeze(component_dim)
        scales = self.lower_bound_scale(scales)
        w = torch.softmax(weights, dim=component_dim)
        centered = values - means
        mass = standardized_cumulative((centered + 0.5) / scales) - standardized_cumulative((centered - 0.5) / scales)
        return (w * mass).sum(component_dim)

    def forward(self, y, weights, means, scales, component_dim: int = 1, training: bool | None = None):
        if training is None:
            training = self.training
        y_tilde = y + torch.empty_like(y).uniform_(-0.5, 0.5) if training else torch.round(y)
        lik = self.likelihood(y_tilde, weights, means, scales, component_dim)
        return y_tilde, self.likelihood_lower_bound(lik)

    # ----------------------------------------------------------------------------------- coding
    def _rows(self, weights, means, scales):
        """-> (integer centers [n], quantized pmf rows [n, 2W+3], offset) for flattened [n, k] params."""
        w = torch.softmax(weights.double(), dim=1)
        mu = means.double()
        s = torch.clamp(scales.double(), min=self.scale_bound)
        center = torch.round((w * mu).sum(1))
        reach = ((mu - center[:, None]).abs() + self.spread * s).max()
        half = int(min(max(math.ceil(float(reach)), 1), self.max_half_width)) if len(mu) else 1
        k = torch.arange(-half - 1, half + 2, dtype=torch.float64)
        x = center[:, None, None] + k[None, :, None] - mu[:, None, :]  # [n, K, k]
        upper = standardized_cumulative((x + 0.5) / s[:, None, :])
        lower = standardized_cumulative((x - 0.5) / s[:, None, :])
        mass = ((upper - lower) * w[:, None, :]).sum(-1)
        below = (standardized_cumulative((x[:, :1] + 0.5) / s[:, None, :]) * w[:, None, :]).sum(-1)
        above = (standardized_cumulative(-(x[:, -1:] - 0.5) / s[:, None, :]) * w[:, None, :]).sum(-1)
        mass[:, :1] = below
        mass[:, -1:] = above
        return center.long(), quantize_pmf(mass.numpy()), -half - 1

    @staticmethod
    def _flat(t: torch.Tensor, component_dim: int) -> torch.Tensor:
        return t.movedim(component_dim, -1).reshape(-1, t.shape[component_dim])

    def _chunks(self, weights, means, scales, component_dim: int):
        """Yield (start, stop, centers, rows, offset) over consecutive chunks of the flattened symbols."""
        w, mu, s = (self._flat(t, component_dim) for t in (weights, means, scales))
        n = w.shape[0]
        for start in range(0, n, self.chunk_size):
            stop = min(n, start + self.chunk_size)
            yield (start, stop, *self._rows(w[start:stop], mu[start:stop], s[start:stop]))

    def encode(self, encoder: Encoder, y, weights, means, scales, component_dim: int = 1) -> torch.Tensor:
        """Code ``round(y)``; -> the quantized values. Run inside :func:`fastlic.determinism.deterministic`."""
        q = torch.round(y) + 0.0  # + 0.0 turns -0.0 into 0.0, the value the decoder returns
        flat = q.reshape(-1).long()
        for start, stop, center, rows, offset in self._chunks(weights, means, scales, component_dim):
            encoder.encode_rows((flat[start:stop] - center).numpy(), rows, offset)
        return q

    def decode(self, decoder: Decoder, weights, means, scales, component_dim: int = 1) -> torch.Tensor:
        parts = [torch.from_numpy(decoder.decode_rows(rows, offset)) + center
                 for _, _, center, rows, offset in self._chunks(weights, means, scales, component_dim)]
        sym = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)
        shape = list(means.shape)
        del shape[component_dim]
        return sym.to(means.dtype).reshape(shape)
