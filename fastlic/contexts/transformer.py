"""Pre-norm transformer block split into its attention inputs and outputs, so that a caller can run the
attention over any set of keys (windows, a growing key-value cache, a sliding window).

Used by the spatio-channel attention of eContextformer (:mod:`fastlic.contexts.spatio_channel`) and by the
serial Contextformer baseline (:mod:`fastlic.models.contextformer`): Koyuncu et al., "Contextformer: a
transformer with spatio-channel attention for context modeling in learned image compression", ECCV 2022, §3.2
(pre-norm multi-head attention + MLP of width ``mlp_ratio * dim`` with GELU, as in ViT/Swin).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class TransformerBlock(nn.Module):
    """LayerNorm -> multi-head attention -> residual -> LayerNorm -> MLP -> residual.

    ``qkv(x)`` gives per-head queries (already scaled), keys and values of tokens ``x [..., T, dim]`` as
    ``[..., heads, T, head_dim]``; ``attend`` runs softmax attention with an additive bias/mask; ``finish``
    applies the output projection, residual and MLP. Every token's result depends only on its own row and on
    the keys it was given, so computing a subset of rows gives the same numbers as computing them all.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"embedding size {dim} is not a multiple of heads={heads}")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.scale = self.head_dim ** -0.5
        self.norm1 = nn.LayerNorm(dim)
        self.qkv_proj = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def qkv(self, x: torch.Tensor):
        *lead, t, _ = x.shape
        qkv = self.qkv_proj(self.norm1(x)).reshape(*lead, t, 3, self.heads, self.head_dim)
        q, k, v = qkv.movedim(-3, 0).unbind(0)  # each [..., T, heads, hd]
        return (q * self.scale).transpose(-3, -2), k.transpose(-3, -2), v.transpose(-3, -2)

    @staticmethod
    def attend(q, k, v, bias: torch.Tensor | None) -> torch.Tensor:
        """softmax(q k^T + bias) v; ``bias`` broadcasts to ``[..., heads, Tq, Tk]`` (-inf = masked)."""
        scores = q @ k.transpose(-2, -1)
        if bias is not None:
            scores = scores + bias
        return torch.softmax(scores, dim=-1) @ v

    def finish(self, x: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        """x + proj(attn) then the MLP; ``attn`` is ``[..., heads, T, hd]``."""
        attn = attn.transpose(-3, -2).reshape(*x.shape)
        x = x + self.proj(attn)
        return x + self.mlp(self.norm2(x))
