"""The four contexts and the parameter networks of MEM++, the entropy model of MLIC++.

Jiang, Yang, Zhai, Gao, Wang, "MLIC++: Linear Complexity Multi-Reference Entropy Modeling for Learned Image
Compression", arXiv 2307.15421: channel-wise context (§3.2), local spatial context by checkerboard attention
(§3.3, Fig. 4), global intra-slice and inter-slice contexts by linear attention (§3.4, Fig. 5), and latent
residual prediction (Minnen & Singh 2020). Attribute names follow the reference implementation, so published
checkpoints load key for key; hidden widths default to the reference's and are parameters for small models.
"""

from __future__ import annotations

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers.float64 import Conv2d, DepthwiseConv2d
from . import checkerboard as ckbd


def _mlp_conv(dims, kernel: int, act=nn.GELU) -> nn.Sequential:
    layers = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        if i:
            layers.append(act())
        layers.append((nn.Conv2d if kernel == 1 else Conv2d)(a, b, kernel_size=kernel, padding=kernel // 2))
    return nn.Sequential(*layers)


class EntropyParameters(nn.Module):
    """Four 1x1 convolutions with GELU between (in -> 320 -> 256 -> 128 -> 2C by default).
    Output channels: scales first, then means.

    ``anchors=True/False`` computes them at that checkerboard half only (zeros at the other): the networks are
    position-wise, and a step of the coding order (MLIC++ §3.1) reads its parameters at its own half only, so
    the other half would be computed to be thrown away (the reference does)."""

    def __init__(self, in_dim: int, out_dim: int, hidden=(320, 256, 128)):
        super().__init__()
        self.fusion = _mlp_conv((in_dim, *hidden, out_dim), 1)

    def forward(self, x, anchors: bool | None = None):
        if anchors is None:
            return self.fusion(x)
        return ckbd.unhalf(self.fusion(ckbd.half(x, anchors)), x.shape[-2:], anchors)


class ChannelContext(nn.Module):
    """Channel-wise context (MLIC++ §3.2): three 3x3 convolutions over the decoded slices."""

    def __init__(self, in_dim: int, out_dim: int, hidden=(192, 128)):
        super().__init__()
        self.fushion = _mlp_conv((in_dim, *hidden, out_dim), 3)  # (sic) the reference's key name

    def forward(self, x):
        return self.fushion(x)


class LatentResidualPrediction(nn.Module):
    """Latent residual prediction (Minnen & Singh, ICIP 2020): 3x3 convolutions then 0.5 * tanh.

    ``variant="current"``: in -> 224 -> 128 -> out. ``variant="2023"``: four convolutions whose widths step down
    linearly, in, in - d/4, in - d/2, in - 3d/4, out with d = in - out (the 2023 checkpoints).
    """

    def __init__(self, in_dim: int, out_dim: int, variant: str = "current", hidden=(224, 128)):
        super().__init__()
        if variant == "2023":
            d = abs(out_dim - in_dim)
            dims = (in_dim, in_dim - d // 4, in_dim - d // 2, in_dim - d * 3 // 4, out_dim)
        else:
            dims = (in_dim, *hidden, out_dim)
        self.lrp_transform = _mlp_conv(dims, 3)

    def forward(self, x):
        return 0.5 * torch.tanh(self.lrp_transform(x))


def _qkv_branch(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(dim, dim, 1), DepthwiseConv2d(dim, dim, 3, padding=1, groups=dim))


def _linear_attention(queries, keys, values, num_heads: int):
    """Efficient attention (Shen et al., WACV 2021): per contiguous head, keys softmaxed over positions,
    queries over channels, out = (keys^T values)^T queries. Inputs ``[B, D, L]``; returns ``[B, D, L]``."""
    d = queries.shape[1] // num_heads
    outs = []
    for h in range(num_heads):
        s = slice(h * d, (h + 1) * d)
        key = F.softmax(keys[:, s], dim=2)
        query = F.softmax(queries[:, s], dim=1)
        context = key @ values[:, s].transpose(1, 2)
        outs.append(context.transpose(1, 2) @ query)
    return torch.cat(outs, dim=1)


class LinearGlobalInterContext(nn.Module):
    """Global inter-slice context (MLIC++ §3.4): linear attention over all decoded slices, ``i`` heads of
    width C, then conv5 (-> 3/2 out) and ``skip(a) + MLP(a)``."""

    def __init__(self, dim: int, out_dim: int, num_heads: int):
        super().__init__()
        self.dim, self.num_heads = dim, max(1, num_heads)
        self.keys = _qkv_branch(dim)
        self.queries = _qkv_branch(dim)
        self.values = _qkv_branch(dim)
        mid = out_dim * 3 // 2
        self.reprojection = Conv2d(dim, mid, 5, padding=2)
        self.mlp = nn.Sequential(nn.Conv2d(mid, out_dim * 2, 1), nn.GELU(),
                                 DepthwiseConv2d(out_dim * 2, out_dim * 2, 3, padding=1, groups=out_dim * 2), nn.GELU(),
                                 nn.Conv2d(out_dim * 2, out_dim, 1))
        self.skip = nn.Conv2d(mid, out_dim, 1)

    def forward(self, x):
        b, _, h, w = x.shape
        q = self.queries(x).reshape(b, self.dim, h * w)
        k = self.keys(x).reshape(b, self.dim, h * w)
        v = self.values(x).reshape(b, self.dim, h * w)
        a = self.reprojection(_linear_attention(q, k, v, self.num_heads).reshape(b, self.dim, h, w))
        return self.skip(a) + self.mlp(a)


class LinearGlobalIntraContext(nn.Module):
    """Global intra-slice context (MLIC++ §3.4, Fig. 5b): the attention map of the previous slice
    (non-anchor queries against anchor keys) applied to the current slice's anchors."""

    def __init__(self, dim: int, num_heads: int = 2):
        super().__init__()
        self.dim, self.num_heads = dim, num_heads
        self.keys = _qkv_branch(dim)
        self.queries = _qkv_branch(dim)
        self.values = _qkv_branch(dim)
        self.reprojection = Conv2d(dim, dim * 2, 5, padding=2)
        self.mlp = nn.Sequential(nn.Conv2d(dim * 2, dim * 4, 1), nn.GELU(),
                                 DepthwiseConv2d(dim * 4, dim * 4, 3, padding=1, groups=dim * 4), nn.GELU(),
                                 nn.Conv2d(dim * 4, dim * 2, 1))

    def forward(self, prev_slice, anchors_hat):
        b, c, h, w = prev_slice.shape
        n = h * w // 2
        q = ckbd.squeeze(self.queries(ckbd.nonanchor(prev_slice)), anchors=False).reshape(b, c, n)
        k = ckbd.squeeze(self.keys(ckbd.anchor(prev_slice)), anchors=True).reshape(b, c, n)
        v = ckbd.squeeze(self.values(anchors_hat), anchors=True).reshape(b, c, n)
        d = c // self.num_heads
        outs = []
        for hd in range(self.num_heads):
            s = slice(hd * d, (hd + 1) * d)
            # softmaxes in the squeezed layout; products on the full grid, as the reference does (the zeros
            # of the other half contribute nothing, but the summation order is kept)
            key = ckbd.unsqueeze(F.softmax(k[:, s], dim=2).reshape(b, d, h, w // 2), True).reshape(b, d, h * w)
            query = ckbd.unsqueeze(F.softmax(q[:, s], dim=1).reshape(b, d, h, w // 2), False).reshape(b, d, h * w)
            value = ckbd.unsqueeze(v[:, s].reshape(b, d, h, w // 2), True).reshape(b, d, h * w)
            context = key @ value.transpose(1, 2)
            outs.append((context.transpose(1, 2) @ query).reshape(b, d, h, w))
        a = self.reprojection(torch.cat(outs, dim=1))
        return a + self.mlp(a)


@functools.lru_cache(maxsize=16)
def _relative_position_index(k: int) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (k - 1)
    return rel[..., 0] * (2 * k - 1) + rel[..., 1]


@functools.lru_cache(maxsize=16)
def _local_mask(h: int, w: int, k: int) -> torch.Tensor:
    """[h*w, k*k, k*k]: 0 where query and key window positions are both anchors, -100 otherwise (padding
    counts as non-anchor). -100 rather than -inf keeps all-masked rows finite (the reference's choice)."""
    a = ckbd.anchor_mask(h, w).float().view(1, 1, h, w)
    win = F.unfold(a, k, padding=(k - 1) // 2)[0].t()  # [L, k*k]
    both = win[:, :, None] * win[:, None, :]
    return torch.where(both > 0, torch.tensor(0.0), torch.tensor(-100.0))


class LocalContext(nn.Module):
    """Local spatial context by checkerboard attention in a 5x5 window (MLIC++ §3.3, Fig. 4).

    For every position, the 25 tokens of its window (the anchor-only latent after LayerNorm and a qkv
    projection, zero-padded) attend to each other with a relative position bias and a mask that only lets
    anchor-anchor pairs through; the attended 25 x C patch is collapsed by a valid 5x5 convolution to 2C
    channels, then ``x = proj(x); x = x + MLP(LayerNorm(x))``.

    Head layout of the reference (kept so checkpoints load unchanged): the C channels of q, k and v are split
    into heads *interleaved* (channel c -> head c mod H), and merged back head-major (head h, index d ->
    channel h * C/H + d).
    """

    def __init__(self, dim: int = 32, window_size: int = 5, mlp_ratio: float = 2.0, num_heads: int = 2):
        super().__init__()
        self.dim, self.window_size, self.num_heads = dim, window_size, num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv_proj = nn.Linear(dim, dim * 3)
        self.relative_position_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_table, std=0.02)
        self.proj = nn.Linear(dim * 2, dim * 2)
        self.mlp = _Mlp(dim * 2, int(dim * 2 * mlp_ratio), dim * 2)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim * 2)
        self.fusion = nn.Conv2d(dim, dim * 2, kernel_size=window_size)

    def forward(self, x, anchors: bool | None = None):
        """The context at every position, or with ``anchors=False`` only where it is read: at the non-anchors
        (zeros at the anchors), half the windows."""
        b, c, h, w = x.shape
        k, nh, hd = self.window_size, self.num_heads, self.head_dim
        kk = k * k
        t = self.norm1(x.reshape(b, c, h * w).permute(0, 2, 1))
        qkv = self.qkv_proj(t).reshape(b, h, w, 3, c).permute(0, 3, 4, 1, 2).reshape(b, 3 * c, h, w)
        win = F.unfold(qkv, k, padding=(k - 1) // 2)  # [B, 3*C*kk, h*w]
        mask = _local_mask(h, w, k).to(x.device)
        if anchors is not None:
            at = ckbd.half_index(h, w, anchors, x.device)
            win, mask = win.index_select(2, at), mask.index_select(0, at)
        L = win.shape[-1]
        win = win.permute(0, 2, 1).reshape(b, L, 3, c, kk).permute(2, 0, 1, 3, 4)  # [3, B, L, C, kk]
        # interleaved head split: channel = d * nh + head
        q, kt, v = (t_.reshape(b, L, hd, nh, kk).permute(0, 1, 3, 4, 2) for t_ in win)  # [B, L, nh, kk, hd]
        attn = (q * self.scale) @ kt.transpose(-2, -1)
        bias = self.relative_position_table[_relative_position_index(k).view(-1)].view(kk, kk, nh)
        attn = attn + bias.permute(2, 0, 1).contiguous().unsqueeze(0).unsqueeze(1)
        attn = attn + mask.unsqueeze(0).unsqueeze(2)
        attn = attn.softmax(dim=-1)
        out = (attn @ v).reshape(b, L, nh, k, k, hd).permute(0, 1, 3, 4, 2, 5)  # head-major merge
        # the valid k x k convolution of one k x k patch is a linear map of its C*kk values
        out = F.linear(out.reshape(b, L, kk, c).transpose(2, 3).reshape(b, L, c * kk),
                       self.fusion.weight.reshape(c * 2, c * kk), self.fusion.bias)
        out = self.proj(out)
        out = out + self.mlp(self.norm2(out))
        out = out.permute(0, 2, 1)  # [B, 2C, L]
        if anchors is None:
            return out.reshape(b, c * 2, h, w)
        return ckbd.unhalf(out.unsqueeze(-1), (h, w), anchors)


class _Mlp(nn.Module):
    def __init__(self, in_dim, hidden, out_dim):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out_dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))
