"""Factorized prior ("entropy bottleneck") for the hyper-latent z.

Ballé, Minnen, Singh, Hwang, Johnston, "Variational image compression with a scale hyperprior", ICLR 2018,
Appendix 6.1: a per-channel cumulative density built from a small monotone network (``filters = (3, 3, 3, 3)``:
matrices passed through softplus, biases, and tanh "factors" between layers). The parameterization and the
learned quantiles (lower tail, median, upper tail per channel, fitted by :meth:`EntropyBottleneck.loss`) follow
CompressAI >= 1.2, so MLIC++ checkpoints load unchanged.

Coding: symbols are ``round(z - median)`` per channel, coded with one integer table per channel spanning the
learned quantiles plus escape bins (:mod:`fastlic.entropy.coder`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .coder import Decoder, Encoder, TableOwner, quantize_pmf
from .ops import LowerBound, ste_round


class EntropyBottleneck(TableOwner, nn.Module):
    """Factorized density model with per-channel learned CDFs.

    Args:
        channels: number of channels of z.
        tail_mass: probability mass outside the learned quantile range.
        init_scale: initial spread of the quantiles.
        filters: widths of the hidden layers of the density network.
        likelihood_bound: lower bound of the returned likelihoods.
    """

    def __init__(self, channels: int, tail_mass: float = 1e-9, init_scale: float = 10.0,
                 filters: tuple[int, ...] = (3, 3, 3, 3), likelihood_bound: float = 1e-9):
        super().__init__()
        self.channels = int(channels)
        self.filters = tuple(int(f) for f in filters)
        self.init_scale = float(init_scale)
        self.tail_mass = float(tail_mass)
        self.likelihood_lower_bound = LowerBound(likelihood_bound)

        dims = (1,) + self.filters + (1,)
        scale = self.init_scale ** (1 / (len(self.filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(self.filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.empty(channels, dims[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < len(self.filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

        self.quantiles = nn.Parameter(torch.tensor([-self.init_scale, 0.0, self.init_scale]).repeat(channels, 1, 1))
        target = math.log(2 / self.tail_mass - 1)
        self.register_buffer("target", torch.tensor([-target, 0.0, target]), persistent=False)
        self._init_tables()  # built by update()

    # ----------------------------------------------------------------------------------- density
    def _logits_cumulative(self, inputs: torch.Tensor, stop_gradient: bool) -> torch.Tensor:
        logits = inputs
        for i in range(len(self.filters) + 1):
            matrix = self.matrices[i]
            bias = self.biases[i]
            if stop_gradient:
                matrix, bias = matrix.detach(), bias.detach()
            logits = torch.matmul(F.softplus(matrix.to(inputs.dtype)), logits)
            logits = logits + bias.to(inputs.dtype)
            if i < len(self.factors):
                factor = self.factors[i]
                if stop_gradient:
                    factor = factor.detach()
                logits = logits + torch.tanh(factor.to(inputs.dtype)) * torch.tanh(logits)
        return logits

    def _likelihood(self, inputs: torch.Tensor, stop_gradient: bool = False):
        lower = self._logits_cumulative(inputs - 0.5, stop_gradient)
        upper = self._logits_cumulative(inputs + 0.5, stop_gradient)
        return torch.sigmoid(upper) - torch.sigmoid(lower), lower, upper

    def medians(self) -> torch.Tensor:
        """Per-channel medians, shape ``[1, C, 1, 1]``."""
        return self.quantiles[:, 0, 1].detach().view(1, -1, 1, 1)

    def loss(self) -> torch.Tensor:
        """Auxiliary loss that fits the quantiles to the learned CDF (optimize it with its own optimizer)."""
        logits = self._logits_cumulative(self.quantiles, stop_gradient=True)
        return torch.abs(logits - self.target).sum()

    def forward(self, z: torch.Tensor, training: bool | None = None):
        """-> (z_hat, likelihoods). Training: z + U(-0.5, 0.5) noise; eval: round(z - median) + median."""
        if training is None:
            training = self.training
        medians = self.quantiles[:, 0, 1].detach().view(1, -1, 1, 1)
        if training:
            z_tilde = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        else:
            z_tilde = torch.round(z - medians) + medians
        # [B, C, H, W] -> [C, 1, B*H*W]: one density network per channel
        values = z_tilde.transpose(0, 1).reshape(self.channels, 1, -1)
        lik, _, _ = self._likelihood(values)
        lik = self.likelihood_lower_bound(lik)
        lik = lik.reshape(z.size(1), z.size(0), *z.shape[2:]).transpose(0, 1)
        return z_tilde, lik

    def quantize_ste(self, z: torch.Tensor) -> torch.Tensor:
        """round(z - median) + median with a straight-through gradient (the hyper decoder's input)."""
        medians = self.medians()
        return ste_round(z - medians) + medians

    def forward_ste(self, z: torch.Tensor):
        """-> (z_hat, likelihoods) of the coded values round(z - median) + median, with straight-through
        gradients to ``z`` through both (the differentiable objective of encoder-side latent optimization)."""
        z_hat = self.quantize_ste(z)
        values = z_hat.transpose(0, 1).reshape(self.channels, 1, -1)
        lik = self.likelihood_lower_bound(self._likelihood(values)[0])
        return z_hat, lik.reshape(z.size(1), z.size(0), *z.shape[2:]).transpose(0, 1)

    # ----------------------------------------------------------------------------------- coding
    @torch.no_grad()
    def update(self) -> None:
        """Build the integer coding tables from the current density (call after training/loading)."""
        q = self.quantiles.detach().double()
        medians = q[:, 0, 1]
        minima = torch.ceil(medians - q[:, 0, 0]).clamp(min=0).long()
        maxima = torch.ceil(q[:, 0, 2] - medians).clamp(min=0).long()
        # cap the range so that a diverged model cannot allocate huge tables
        minima, maxima = minima.clamp(max=4096), maxima.clamp(max=4096)
        length = minima + maxima + 1
        kmax = int(length.max()) + 2
        # evaluate at median + k for k in [-minima - 1, maxima + 1]; the end bins are the tails
        k = torch.arange(kmax, dtype=torch.float64, device=q.device)[None, :] - (minima[:, None] + 1).double()
        samples = (medians[:, None] + k)[:, None, :]
        lower = self._logits_cumulative(samples - 0.5, stop_gradient=True).double()[:, 0, :]
        upper = self._logits_cumulative(samples + 0.5, stop_gradient=True).double()[:, 0, :]
        pmf = torch.sigmoid(upper) - torch.sigmoid(lower)
        idx = torch.arange(kmax, device=q.device)[None, :]
        last = (length + 1)[:, None]
        left_tail = torch.sigmoid(upper[:, :1])  # mass below the first regular bin
        right_tail = torch.sigmoid(-torch.gather(lower, 1, last))
        pmf = torch.where(idx == 0, left_tail, pmf)
        pmf = torch.where(idx == last, right_tail, pmf)
        pmf = torch.where(idx > last, torch.zeros_like(pmf), pmf).clamp(min=0)
        counts = np.zeros((self.channels, kmax), np.int64)
        pmf_np = pmf.cpu().numpy()
        lengths = length.cpu()
        for c in range(self.channels):  # per channel: rows differ in length
            n = int(lengths[c]) + 2
            counts[c, :n] = quantize_pmf(pmf_np[c, :n])
        self._set_tables(counts, (length + 2).cpu().numpy(), (-minima - 1).cpu().numpy())

    def symbols(self, z: torch.Tensor) -> torch.Tensor:
        """Integer symbols round(z - median) (int64), shape of z."""
        return torch.round(z - self.medians()).long()

    def dequantize(self, symbols: torch.Tensor) -> torch.Tensor:
        return symbols.to(torch.float32) + self.medians()

    def compress(self, z: torch.Tensor, encoder: Encoder) -> torch.Tensor:
        """Append z's symbols (channel-major per image) to ``encoder``; -> z_hat."""
        sym = self.symbols(z)
        index = torch.arange(self.channels, device=sym.device).view(1, -1, 1, 1).expand_as(sym)
        encoder.encode(sym.cpu().numpy(), index.cpu().numpy(), self.tables)
        return self.dequantize(sym)

    def decompress(self, decoder: Decoder, shape: tuple[int, int, int, int]) -> torch.Tensor:
        """Read symbols of a ``[B, C, h, w]`` z from ``decoder``; -> z_hat (on the module's device)."""
        return self.dequantize(self.decompress_symbols(decoder, shape))

    def decompress_symbols(self, decoder: Decoder, shape: tuple[int, int, int, int]) -> torch.Tensor:
        """The integer symbols (int64) that :meth:`decompress` dequantizes (the integer numeric mode's input)."""
        b, c, h, w = shape
        index = np.broadcast_to(np.arange(c).reshape(1, c, 1, 1), (b, c, h, w))
        sym = decoder.decode(index, self.tables).reshape(b, c, h, w)
        return torch.from_numpy(sym).to(self.quantiles.device)
