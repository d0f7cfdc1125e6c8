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

from .. import numerics
from .coder import Decoder, Encoder, TableOwner, quantize_pmf, quantize_pmf_exact
from .guard import nearest_boundary, rounding_decision
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

    def _bounds(self) -> torch.Tensor:
        """Float64 decision boundaries between table entries (``snap="nearest"``: geometric means of
        neighbours, ``"up"``: the entries themselves); exact functions of the stored float32 table."""
        t = self.scale_table.detach().to("cpu", torch.float64)
        return t[:-1].contiguous() if self.snap == "up" else torch.sqrt(t[:-1] * t[1:])

    def build_indexes(self, scales: torch.Tensor) -> torch.Tensor:
        """Table index per scale (of max(scale, bound)).

        ``snap="nearest"`` (default): the entry nearest in log scale (boundaries at the geometric means of
        neighbours), unbiased, so the coded rate follows the model's estimate closely even when the model is
        over- or under-confident. ``snap="up"``: the smallest entry >= the scale, the MLIC++ reference's rule.
        Both are comparisons in float64 against float64 boundaries (float32 scales compare exactly as before).
        The coding paths take this decision through a guard (:meth:`guarded_indexes`)."""
        _, d, _ = self._indexes(scales)
        return torch.from_numpy(d).reshape(scales.shape)

    def _indexes(self, scales: torch.Tensor):
        """-> (flattened float64 scales clamped at the bound, their indexes, the boundaries)."""
        # the bound as float32 holds it (the likelihoods' LowerBound and the table's first entry)
        s = np.maximum(scales.detach().to("cpu", torch.float64).numpy().ravel(), float(np.float32(self.scale_bound)))
        bounds = self._bounds().numpy()
        return s, np.searchsorted(bounds, s, side="left"), bounds

    def guarded_indexes(self, scales: torch.Tensor, guard) -> np.ndarray:
        """:meth:`build_indexes` as a guarded decision (:mod:`fastlic.entropy.guard`), flattened."""
        s, d, bounds = self._indexes(scales)
        return guard.decide(d, *nearest_boundary(s, d, bounds))

    def encode(self, encoder: Encoder, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """Code ``round(y - means)`` with the tables chosen by ``scales``; -> reconstructed values ``symbol + mean``."""
        sym = torch.round(y - means)
        encoder.encode(sym.long().cpu().numpy(), self.guarded_indexes(scales, encoder.guard), self.tables)
        return sym + means

    def decode(self, decoder: Decoder, scales: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`encode` given the same scales and means (to float noise: see fastlic.numerics)."""
        sym = decoder.decode(self.guarded_indexes(scales, decoder.guard), self.tables)
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

    #: snapping grids of the coded mixture parameters (see :meth:`_rows`)
    WEIGHT_STEPS = 1 << 8
    MEAN_STEPS = 1 << 8
    SCALE_STEPS = 32

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
    def _rows(self, weights, means, scales, guard):
        """-> (integer centers [n], quantized pmf rows [n, 2W+3], offset) for flattened [n, k] params.

        The three parameters of every component are first snapped, as guarded decisions
        (:mod:`fastlic.entropy.guard`), to grids fine enough not to cost rate (weights to 1/WEIGHT_STEPS,
        means to 1/MEAN_STEPS, scales to SCALE_STEPS per octave); everything after that is an exact function of
        integers: the center, the half-width, the CDF at the bin edges (:func:`fastlic.numerics.ndtr`, IEEE basic
        operations only) and the integer quantization (:func:`fastlic.entropy.coder.quantize_pmf_exact`), so
        encoder and decoder build bit-identical rows on any machine (docs/format.md, "Portable decoding").
        """
        n, k = weights.shape
        w = torch.softmax(weights.detach().to("cpu", torch.float64), dim=1).numpy()
        wq = np.maximum(guard.decide(*rounding_decision(w, self.WEIGHT_STEPS)), 1).reshape(n, k)
        mq = guard.decide(*rounding_decision(means.detach().to("cpu", torch.float64).numpy(), self.MEAN_STEPS))
        s = np.maximum(scales.detach().to("cpu", torch.float64).numpy(), self.scale_bound)
        ks = guard.decide(*rounding_decision(np.log2(s), self.SCALE_STEPS))
        wq = torch.from_numpy(wq).double()
        mu = torch.from_numpy(mq.reshape(n, k)).double() / self.MEAN_STEPS
        s = numerics.exp(torch.from_numpy(ks.reshape(n, k)).double() * (math.log(2) / self.SCALE_STEPS))
        # integer weights times means on the 1/MEAN_STEPS grid: every product and partial sum is exact in float64,
        # so these reductions give the same bits in any summation order
        wsum = wq.sum(1)
        center = torch.round((wq * mu).sum(1) / wsum)
        reach = ((mu - center[:, None]).abs() + self.spread * s).max()
        half = int(min(max(math.ceil(float(reach)), 1), self.max_half_width))
        # edges between the 2W+3 bins (the outer two are the tails): c + m + 0.5 for m in [-W-1, W]
        edges = torch.arange(-half - 1, half + 1, dtype=torch.float64) + 0.5
        cdf = None
        for j in range(k):
            t = (center[:, None] + edges[None, :] - mu[:, j : j + 1]) / s[:, j : j + 1]
            term = wq[:, j : j + 1] * numerics.ndtr(t)
            cdf = term if cdf is None else cdf + term
        mass = torch.cat([cdf[:, :1], cdf[:, 1:] - cdf[:, :-1], wsum[:, None] - cdf[:, -1:]], dim=1)
        mass = (mass / wsum[:, None]).clamp(min=0.0)
        return center.long(), quantize_pmf_exact(mass.numpy()), -half - 1

    @staticmethod
    def _flat(t: torch.Tensor, component_dim: int) -> torch.Tensor:
        return t.movedim(component_dim, -1).reshape(-1, t.shape[component_dim])

    def _chunks(self, weights, means, scales, component_dim: int, guard):
        """Yield (start, stop, centers, rows, offset) over consecutive chunks of the flattened symbols."""
        w, mu, s = (self._flat(t, component_dim) for t in (weights, means, scales))
        n = w.shape[0]
        for start in range(0, n, self.chunk_size):
            stop = min(n, start + self.chunk_size)
            yield (start, stop, *self._rows(w[start:stop], mu[start:stop], s[start:stop], guard))

    def encode(self, encoder: Encoder, y, weights, means, scales, component_dim: int = 1) -> torch.Tensor:
        """Code ``round(y)``; -> the quantized values (in the parameters' dtype)."""
        q = torch.round(y) + 0.0  # + 0.0 turns -0.0 into 0.0, the value the decoder returns
        flat = q.reshape(-1).long().cpu()
        for start, stop, center, rows, offset in self._chunks(weights, means, scales, component_dim, encoder.guard):
            encoder.encode_rows((flat[start:stop] - center).numpy(), rows, offset)
        return q.to(means.dtype)

    def decode(self, decoder: Decoder, weights, means, scales, component_dim: int = 1) -> torch.Tensor:
        parts = [torch.from_numpy(decoder.decode_rows(rows, offset)) + center
                 for _, _, center, rows, offset in self._chunks(weights, means, scales, component_dim, decoder.guard)]
        sym = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)
        shape = list(means.shape)
        del shape[component_dim]
        return sym.to(device=means.device, dtype=means.dtype).reshape(shape)
