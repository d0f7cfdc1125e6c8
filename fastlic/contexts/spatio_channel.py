"""Spatio-channel window attention over the EGR layout, the context model of eContextformer.

Koyuncu, Jia, Boev, Alshina, Steinbach, "Efficient Contextformer: Spatio-Channel Window Attention for Fast
Context Modeling in Learned Image Compression", IEEE TCSVT 2024 (arXiv 2306.14287), §III-B/C (see
``shared/specs/econtextformer.md``):

* **Layout (EGR).** The latent's ``2·Ncs`` coding groups (channel segment × checkerboard half, sfo order:
  seg1-anchor, seg1-non-anchor, seg2-anchor, ...) are stored as ``[B, S, H, W/2, d]``: each half squeezed
  horizontally (:func:`fastlic.contexts.checkerboard.squeeze`), so a step never spends attention on the
  positions it does not code. The *sequence* index ``s`` of this module is the transformer's group axis.
* **Windows.** ``K × K`` windows of the squeezed grid (``K × 2K`` latent positions) hold every group at those
  positions (``S·K²`` tokens). Even layers use plain windows, odd layers windows shifted by ``K/2`` (Swin's
  cyclic shift: tokens that wrapped around attend only to tokens of their own region). Grids that ``K`` does not
  divide are zero-padded on the right/bottom; padded tokens are never keys of real tokens.
* **Relative position bias** per layer and head over (group offset, row offset, column offset).
* **Causality.** A token of sequence group ``s`` attends to every token of groups ``<= s`` in its window; the
  caller reads the output of group ``s`` as the context of the next coding group (one-group shift).
* **Decoding with a key-value cache.** :meth:`SpatioChannelTransformer.step` computes only group ``s``'s rows
  in every layer and attends them to the cached keys/values of groups ``<= s`` (the "expanding span"). With
  ``cache=False`` every step recomputes groups ``0..s`` from scratch with the same operations on the same
  shapes, so both give bit-identical outputs; only the cost differs.
* ``egr=False`` (measurement mode) imitates the full-resolution layout without rearrangement (Contextformer's
  ``(Ncs, H, W, p)``), where a step cannot select the checkerboard half it needs and computes whole channel
  segments. With the cache, every step computes both halves of its segment (the other half as extra query
  rows whose output is discarded); without it, a step recomputes all segments up to its own, so it wastes
  the other half only when its input group is an anchor half. The coded group's output is mathematically
  unchanged (not bit-identical: the matrix shapes differ), so encoder and decoder must use the same setting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .transformer import TransformerBlock


@dataclass
class _Geometry:
    """Window bookkeeping of one latent size: padded grid, window count and per-shift spatial masks."""

    h: int
    w: int
    hp: int
    wp: int
    k: int
    masks: dict  # shift -> additive [nW, K², K²] (0 allowed, -inf masked)

    @property
    def windows(self) -> int:
        return (self.hp // self.k) * (self.wp // self.k)


def _build_geometry(h: int, w: int, k: int, shifts) -> _Geometry:
    hp, wp = math.ceil(h / k) * k, math.ceil(w / k) * k
    masks = {}
    for shift in shifts:
        rows = (torch.arange(hp) + shift) % hp  # original row of each position of the rolled grid
        cols = (torch.arange(wp) + shift) % wp
        valid = (rows[:, None] < h) & (cols[None, :] < w)
        # Swin's regions: positions that wrapped around in the cyclic shift form their own regions
        region = (torch.arange(hp)[:, None] >= hp - shift).long() * 2 + (torch.arange(wp)[None, :] >= wp - shift).long()
        region = region if shift else torch.zeros_like(region)
        part = lambda t: t.reshape(hp // k, k, wp // k, k).permute(0, 2, 1, 3).reshape(-1, k * k)  # noqa: E731
        valid_w, region_w = part(valid), part(region)
        allowed = (region_w[:, :, None] == region_w[:, None, :]) & (valid_w[:, None, :] | ~valid_w[:, :, None])
        masks[shift] = torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))
    return _Geometry(h, w, hp, wp, k, masks)


def partition(x: torch.Tensor, k: int, shift: int) -> torch.Tensor:
    """[B, G, Hp, Wp, d] -> [B, nW, G·K², d] (group-major inside a window), after the cyclic shift."""
    if shift:
        x = torch.roll(x, (-shift, -shift), dims=(2, 3))
    b, g, hp, wp, d = x.shape
    x = x.reshape(b, g, hp // k, k, wp // k, k, d).permute(0, 2, 4, 1, 3, 5, 6)
    return x.reshape(b, (hp // k) * (wp // k), g * k * k, d)


def unpartition(x: torch.Tensor, g: int, hp: int, wp: int, k: int, shift: int) -> torch.Tensor:
    b, _, _, d = x.shape
    x = x.reshape(b, hp // k, wp // k, g, k, k, d).permute(0, 3, 1, 4, 2, 5, 6).reshape(b, g, hp, wp, d)
    return torch.roll(x, (shift, shift), dims=(2, 3)) if shift else x


class SpatioChannelLayer(nn.Module):
    """One (shifted-)window spatio-channel attention layer with relative position bias."""

    def __init__(self, dim: int, heads: int, window: int, shift: int, groups: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.block = TransformerBlock(dim, heads, mlp_ratio)
        self.k, self.shift, self.groups, self.heads = window, shift, groups, heads
        k = window
        self.rel_bias = nn.Parameter(torch.zeros(groups, 2 * k - 1, 2 * k - 1, heads))
        nn.init.trunc_normal_(self.rel_bias, std=0.02)
        r = torch.arange(k).repeat_interleave(k)
        c = torch.arange(k).repeat(k)
        index = (r[:, None] - r[None, :] + k - 1) * (2 * k - 1) + (c[:, None] - c[None, :] + k - 1)
        self.register_buffer("rel_index", index, persistent=False)

    def _bias(self, q_group: int, n_keys: int) -> torch.Tensor:
        """[heads, K², n_keys·K²]: bias of query group ``q_group`` against key groups ``0..n_keys-1``."""
        table = self.rel_bias.reshape(self.groups, -1, self.heads)[:, self.rel_index]  # [G, T, T, h]
        offsets = (q_group - torch.arange(n_keys)).clamp(min=0)
        b = table[offsets]  # [n_keys, T, T, h]
        return b.permute(3, 1, 0, 2).reshape(self.heads, self.k ** 2, n_keys * self.k ** 2)

    def forward(self, x: torch.Tensor, geo: _Geometry, group: int | None = None, cache: dict | None = None):
        """``group=None``: all groups of x ``[B, S, Hp, Wp, d]`` in one pass with the causal group mask;
        otherwise one decoding step (:meth:`step`). Both go through ``forward`` so that module hooks (e.g.
        ``torch.utils.flop_counter``) attribute the attention products to this layer."""
        if group is not None:
            return self.step(x, group, cache, geo)
        s, T = x.shape[1], self.k ** 2
        xw = partition(x, self.k, self.shift)
        q, k, v = self.block.qkv(xw)  # [B, nW, h, S·T, hd]
        rows = [self._bias(g, s) for g in range(s)]
        bias = torch.cat(rows, dim=1)  # [h, S·T, S·T]
        causal = torch.arange(s).repeat_interleave(T)
        causal = torch.zeros(s * T, s * T).masked_fill(causal[None, :] > causal[:, None], float("-inf"))
        spatial = geo.masks[self.shift].repeat(1, s, s)  # [nW, S·T, S·T]
        attn = self.block.attend(q, k, v, bias + (causal + spatial)[:, None])
        return unpartition(self.block.finish(xw, attn), s, geo.hp, geo.wp, self.k, self.shift)

    def step(self, x: torch.Tensor, g: int, cache: dict, geo: _Geometry) -> torch.Tensor:
        """Rows of sequence group ``g`` (x ``[B, Gq, Hp, Wp, d]``: the group, plus a discarded partner row
        block when ``Gq == 2``) against the cached keys/values of groups ``< g`` and its own."""
        gq, T = x.shape[1], self.k ** 2
        xw = partition(x, self.k, self.shift)
        q, k, v = self.block.qkv(xw)
        if "k" not in cache:
            shape = (*k.shape[:-2], cache["groups"] * T, k.shape[-1])
            cache["k"], cache["v"] = k.new_zeros(shape), v.new_zeros(shape)
        cache["k"][..., g * T:(g + 1) * T, :] = k[..., :T, :]
        cache["v"][..., g * T:(g + 1) * T, :] = v[..., :T, :]
        keys, values = cache["k"][..., :(g + 1) * T, :], cache["v"][..., :(g + 1) * T, :]
        bias = self._bias(g, g + 1) + geo.masks[self.shift].repeat(1, 1, g + 1)[:, None]  # [nW, h, T, (g+1)T]
        if gq > 1:
            bias = bias.repeat(1, 1, gq, 1)
        attn = self.block.attend(q, keys, values, bias)
        return unpartition(self.block.finish(xw, attn), gq, geo.hp, geo.wp, self.k, self.shift)


class SpatioChannelTransformer(nn.Module):
    """L layers of alternating window / shifted-window spatio-channel attention (see module docstring).

    Args:
        in_ch: channels of a coding group (p = M / Ncs).
        groups: length S of the transformer's group axis (2·Ncs − 1 with SFG, 2·Ncs with a start token).
        dim: embedding size d_e.
        depth: number of layers L.
        heads: attention heads.
        window: window size K (on the squeezed grid).
        mlp_ratio: d_mlp / d_e.
        start_token: prepend a learned start group (models without SFG).
    """

    def __init__(self, in_ch: int, groups: int, dim: int, depth: int, heads: int, window: int,
                 mlp_ratio: float = 4.0, start_token: bool = False):
        super().__init__()
        self.in_ch, self.groups, self.dim, self.window = in_ch, groups, dim, window
        self.embed = nn.Linear(in_ch, dim)
        self.start = nn.Parameter(torch.zeros(dim)) if start_token else None
        if start_token:
            nn.init.trunc_normal_(self.start, std=0.02)
        self.layers = nn.ModuleList(
            SpatioChannelLayer(dim, heads, window, (i % 2) * (window // 2), groups, mlp_ratio) for i in range(depth))
        self.norm = nn.LayerNorm(dim)
        self._geometries: dict = {}

    def geometry(self, h: int, w: int) -> _Geometry:
        key = (h, w)
        if key not in self._geometries:
            self._geometries[key] = _build_geometry(h, w, self.window, sorted({l.shift for l in self.layers}))
        return self._geometries[key]

    def _tokens(self, values: torch.Tensor | None, geo: _Geometry, batch: int) -> torch.Tensor:
        """Embedded group ``[B, 1, Hp, Wp, d]`` from values ``[B, p, H, W2]`` (None: the start token)."""
        if values is None:
            return self.start.view(1, 1, 1, 1, -1).expand(batch, 1, geo.hp, geo.wp, -1)
        x = self.embed(values.permute(0, 2, 3, 1))
        x = F.pad(x, (0, 0, 0, geo.wp - geo.w, 0, geo.hp - geo.h))
        return x.unsqueeze(1)

    def _out(self, x: torch.Tensor, geo: _Geometry) -> torch.Tensor:
        """[B, G, Hp, Wp, d] -> [B, G, d, H, W2]."""
        return self.norm(x[:, :, : geo.h, : geo.w]).permute(0, 1, 4, 2, 3)

    def forward(self, groups: torch.Tensor | None = None, state: dict | None = None,
                values: torch.Tensor | None = None, anchor: bool = False) -> torch.Tensor:
        """Training / one-pass path: ``groups [B, G_in, p, H, W2]`` (the coded groups that serve as inputs)
        -> outputs ``[B, S, d_e, H, W2]``; output ``s`` sees only inputs of sequence groups ``<= s``.
        With ``state``: one decoding step, :meth:`step` (called through ``forward`` so that module hooks
        such as ``torch.utils.flop_counter``'s see the context model)."""
        if state is not None:
            return self.step(state, values, anchor)
        b, g_in, _, h, w = groups.shape
        geo = self.geometry(h, w)
        x = torch.cat([self._tokens(groups[:, i], geo, b) for i in range(g_in)], dim=1)
        if self.start is not None:
            x = torch.cat([self._tokens(None, geo, b), x], dim=1)
        for layer in self.layers:
            x = layer(x, geo)
        return self._out(x, geo)

    # ---------------------------------------------------------------------------------------- decoding
    def new_state(self, batch: int, h: int, w: int, cache: bool = True, egr: bool = True) -> dict:
        """Decoding state for a ``[B, ·, h, w]`` squeezed grid (``cache``/``egr``: see module docstring)."""
        return {"geo": self.geometry(h, w), "batch": batch, "cache": cache, "egr": egr, "inputs": [],
                "caches": None}

    def step(self, state: dict, values: torch.Tensor | None, anchor: bool = False) -> torch.Tensor:
        """Feed the next sequence group (``values [B, p, H, W2]``, or None for the start token; ``anchor``: the
        values are a segment's anchor half) and return its output ``[B, d_e, H, W2]``, the context of the next
        coding group."""
        geo, b = state["geo"], state["batch"]
        tokens = self._tokens(values, geo, b)
        state["inputs"].append(tokens)
        g = len(state["inputs"]) - 1
        if g >= self.groups:
            raise RuntimeError("more decoding steps than transformer groups")
        # egr=False: the rows of the other half of the segment are computed too (see module docstring)
        partner = not state["egr"] and values is not None and (state["cache"] or anchor)
        if state["cache"]:
            if state["caches"] is None:
                state["caches"] = [{"groups": self.groups} for _ in self.layers]
            return self._step_rows(tokens, g, state["caches"], partner, geo)
        # no cache: recompute groups 0..g from scratch, each exactly as the cached path computes it
        caches = [{"groups": self.groups} for _ in self.layers]
        for i, t in enumerate(state["inputs"]):
            out = self._step_rows(t, i, caches, partner and i == g, geo)
        return out

    def _step_rows(self, tokens, g, caches, partner, geo):
        x = torch.cat([tokens, torch.zeros_like(tokens)], dim=1) if partner else tokens
        for layer, cache in zip(self.layers, caches):
            x = layer(x, geo, g, cache)
        return self._out(x[:, :1], geo)[:, 0]
