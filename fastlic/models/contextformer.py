"""Contextformer, the serial baseline of eContextformer.

Koyuncu, Gao, Boev, Gaikov, Alshina, Steinbach, "Contextformer: a transformer with spatio-channel attention for
context modeling in learned image compression", ECCV 2022 (``shared/specs/econtextformer.md``, last section):
the same framework as eContextformer with a 3x3 hyperprior; the latent's Ncs channel segments at every position
are tokens, coded one per autoregressive step in spatial-first order (sfo: all positions of segment 1 in raster
order, then segment 2, ...). Step t runs the transformer over the already-coded tokens inside a K x K spatial
window centered on t's position (all segments; K = 16), with causal masking in sfo order and a relative
position bias over (segment, row, column); the input of a token is the value of its sfo predecessor (a learned
start token for the first), and the output at token t gives its Gaussian-mixture parameters.

This implementation exists to measure speed and MAC ratios on one code base: every pass (training included)
runs the serial driver :meth:`Contextformer._drive`, one token per step, so it is meant for small images.
Evaluation forward, compress and decompress share that driver inside
the float64 parameter path of :mod:`fastlic.numerics`, so they agree exactly.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .. import numerics
from ..contexts.transformer import TransformerBlock
from ..entropy.ops import ste_round
from ..registry import register_model
from .econtextformer import EntropyParameters, MixtureHyperpriorCodec


class SlidingWindowContext(nn.Module):
    """The Contextformer transformer: L blocks over the coded tokens of a sliding K x K spatio-channel window."""

    def __init__(self, in_ch: int, segments: int, dim: int, depth: int, heads: int, window: int,
                 mlp_ratio: float = 4.0):
        super().__init__()
        self.segments, self.window, self.heads = segments, window, heads
        self.embed = nn.Linear(in_ch, dim)
        self.start = nn.Parameter(torch.zeros(dim))
        nn.init.trunc_normal_(self.start, std=0.02)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.rel_bias = nn.ParameterList(
            nn.Parameter(torch.zeros(2 * segments - 1, 2 * window - 1, 2 * window - 1, heads)) for _ in range(depth))
        for p in self.rel_bias:
            nn.init.trunc_normal_(p, std=0.02)
        self.norm = nn.LayerNorm(dim)

    def window_tokens(self, t: int, coords: torch.Tensor) -> torch.Tensor:
        """Indices (ascending sfo order) of the tokens <= t inside the window centered on token t."""
        s, r, c = coords[t]
        half = self.window // 2
        rr, cc = coords[: t + 1, 1], coords[: t + 1, 2]
        inside = (rr >= r - half) & (rr < r + half) & (cc >= c - half) & (cc < c + half)
        return torch.nonzero(inside).flatten()

    def forward(self, inputs: torch.Tensor, idx: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Output ``[d]`` of the last token of ``idx`` given token inputs ``[T, d]``."""
        x = inputs[idx]
        cd = coords[idx]
        d = cd[:, None, :] - cd[None, :, :] + torch.tensor([self.segments - 1, self.window - 1, self.window - 1])
        n = len(idx)
        causal = torch.zeros(n, n).masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
        for block, table in zip(self.blocks, self.rel_bias):
            bias = table[d[..., 0], d[..., 1], d[..., 2]].permute(2, 0, 1) + causal
            q, k, v = block.qkv(x)
            x = block.finish(x, block.attend(q, k, v, bias))
        return self.norm(x[-1])


class Contextformer(MixtureHyperpriorCodec):
    """Serial Contextformer (see module docstring).

    Args:
        N, M: transform width and latent channels (192, 192).
        num_segments: channel segments Ncs (4); p = M / Ncs channels per token.
        window: spatial window K (16).
        depth, heads, embed_dim, mlp_ratio: transformer (8 layers, 12 heads, d_e = 2M by default, 4).
        mixtures: Gaussian-mixture components (3).
        hyper_kernel: kernel of the hyperprior convolutions (3 in Contextformer).
        gs_res_blocks: residual blocks in the first layer of g_s (2).
    """

    def __init__(self, N: int = 192, M: int = 192, num_segments: int = 4, window: int = 16, depth: int = 8,
                 embed_dim: int | None = None, heads: int = 12, mlp_ratio: float = 4.0, mixtures: int = 3,
                 hyper_kernel: int = 3, gs_res_blocks: int = 2):
        super().__init__()
        if M % num_segments:
            raise ValueError(f"M={M} is not a multiple of num_segments={num_segments}")
        d_e = 2 * M if embed_dim is None else int(embed_dim)
        self.N, self.M, self.p, self.k_m, self.segments = N, M, M // num_segments, mixtures, num_segments
        self.config = dict(N=N, M=M, num_segments=num_segments, window=window, depth=depth, embed_dim=d_e,
                           heads=heads, mlp_ratio=mlp_ratio, mixtures=mixtures, hyper_kernel=hyper_kernel,
                           gs_res_blocks=gs_res_blocks)
        self._build_framework(N, M, hyper_kernel, gs_res_blocks, mixtures)
        self.context_model = SlidingWindowContext(self.p, num_segments, d_e, depth, heads, window, mlp_ratio)
        self.entropy_parameters = EntropyParameters(2 * M + d_e, 3 * mixtures * self.p)

    # ------------------------------------------------------------------------------ the serial driver
    def _drive(self, hyper: torch.Tensor, q) -> torch.Tensor:
        """Code the Ncs·H·W tokens in sfo order; ``q((s, r, c), logits, means, scales)`` -> values ``[p]``."""
        _, _, h, w = hyper.shape
        S, p, cm = self.segments, self.p, self.context_model
        coords = torch.stack(torch.meshgrid(torch.arange(S), torch.arange(h), torch.arange(w), indexing="ij"),
                             -1).reshape(-1, 3)
        n = len(coords)
        inputs = [cm.start]  # inputs[t]: embedding of token t-1's value
        values = []
        for t in range(n):
            s, r, c = (int(v) for v in coords[t])
            ctx = cm(torch.stack(inputs), cm.window_tokens(t, coords), coords)
            params = self.entropy_parameters(torch.cat([hyper[0, :, r, c], ctx]).view(1, -1, 1, 1))
            logits, means, scales = params.reshape(1, 3, self.k_m, p, 1, 1).unbind(1)
            v = q((s, r, c), logits, means, scales).reshape(p).to(means.dtype)
            values.append(v)
            if t + 1 < n:
                inputs.append(cm.embed(v))
        return torch.stack(values).reshape(S, h, w, p).permute(0, 3, 1, 2).reshape(1, S * p, h, w)

    def _forward(self, x):
        if x.shape[0] != 1:  # the serial driver codes one image at a time
            outs = [self._forward(x[i:i + 1]) for i in range(x.shape[0])]
            return {"x_hat": torch.cat([o["x_hat"] for o in outs]),
                    "likelihoods": {k: torch.cat([o["likelihoods"][k].reshape(-1) for o in outs]) for k in ("y", "z")}}
        y = self.analysis(x)
        z = self.h_a(y)
        eb = self.entropy_bottleneck
        _, z_likelihoods = eb(z)
        medians = eb.medians()
        z_hat = eb.quantize_ste(z) if self.training else torch.round(z - medians) + medians
        likelihoods = []

        def q(key, logits, means, scales):
            yv = self._token_values(y, key)
            if self.training:
                lik = self.gmm.likelihood(yv + torch.empty_like(yv).uniform_(-0.5, 0.5), logits, means, scales)
                out = ste_round(yv)
            else:
                out = torch.round(yv)
                lik = self.gmm.likelihood(out, logits, means, scales)
            likelihoods.append(self.gmm.likelihood_lower_bound(lik))
            return out

        with self.parameter_path(not self.training):
            y_hat = self._drive(self.h_s(numerics.to_param(z_hat) if not self.training else z_hat), q)
        return {"x_hat": self.synthesis(y_hat),
                "likelihoods": {"y": torch.cat(likelihoods, 1).to(z_likelihoods.dtype), "z": z_likelihoods}, "y_hat": y_hat}

    def context_macs(self, height: int, width: int) -> int:
        """Closed-form MACs of the transformer when decoding a ``height x width`` image (what
        :mod:`fastlic.complexity` counts, for sizes too slow to run): per token, L layers over the n coded
        tokens of its window (qkv, projection and MLP: 12·d² per token; QK^T and AV: 2·n²·d), plus the
        embedding of every token's value but the last."""
        cm = self.context_model
        d, layers = cm.embed.out_features, len(cm.blocks)
        h, w = height // 16, width // 16
        coords = torch.stack(torch.meshgrid(torch.arange(self.segments), torch.arange(h), torch.arange(w),
                                            indexing="ij"), -1).reshape(-1, 3)
        total = (len(coords) - 1) * self.p * d
        for t in range(len(coords)):
            n = len(cm.window_tokens(t, coords))
            total += layers * n * (12 * d * d + 2 * n * d)
        return total

    def _token_values(self, y, key):
        s, r, c = key
        return y[:, s * self.p:(s + 1) * self.p, r, c].reshape(1, self.p, 1, 1)

    def _encode_quantizer(self, y, encoder):
        return lambda key, *params: self.gmm.encode(encoder, self._token_values(y, key), *params)


@register_model("contextformer", "Serial Contextformer (ECCV 2022) baseline: N=M=192, Ncs=4, K=16, L=8; small images")
def contextformer(**config):
    return Contextformer(**config)


@register_model("contextformer-tiny", "Tiny serial Contextformer for tests: N=M=16, d_e=16, K=4, 2 layers")
def contextformer_tiny(**config):
    return Contextformer(**{"N": 16, "M": 16, "embed_dim": 16, "depth": 2, "heads": 2, "window": 4,
                            "gs_res_blocks": 1, **config})
