"""Checkerboard partition of a latent (He et al., "Checkerboard context model for efficient learned image
compression", CVPR 2021), with the MLIC++ parity: *anchors* are the positions whose row + column is odd.

The "squeezed" layout keeps one position of every horizontal pair, ``[B, C, H, W/2]``: for anchors, even rows
take the odd columns and odd rows the even columns; for non-anchors the opposite.
"""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=64)
def _anchor_mask(h: int, w: int) -> torch.Tensor:
    r = torch.arange(h).view(h, 1)
    c = torch.arange(w).view(1, w)
    return ((r + c) % 2 == 1).view(1, 1, h, w)


def anchor_mask(h: int, w: int, device=None) -> torch.Tensor:
    """Boolean ``[1, 1, h, w]``, True at anchors ((row + col) odd)."""
    m = _anchor_mask(int(h), int(w))
    return m if device is None else m.to(device)


def anchor(y: torch.Tensor) -> torch.Tensor:
    """y at anchor positions, zeros elsewhere."""
    return torch.where(anchor_mask(y.shape[-2], y.shape[-1], y.device), y, torch.zeros((), dtype=y.dtype))


def nonanchor(y: torch.Tensor) -> torch.Tensor:
    """y at non-anchor positions, zeros elsewhere."""
    return torch.where(anchor_mask(y.shape[-2], y.shape[-1], y.device), torch.zeros((), dtype=y.dtype), y)


def squeeze(y: torch.Tensor, anchors: bool) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, H, W/2]: the anchor (or non-anchor) half, row by row (W must be even)."""
    b, c, h, w = y.shape
    if w % 2:
        raise ValueError("checkerboard squeeze needs an even width")
    out = y.new_zeros(b, c, h, w // 2)
    first = 1 if anchors else 0  # column offset on even rows
    out[:, :, 0::2] = y[:, :, 0::2, first::2]
    out[:, :, 1::2] = y[:, :, 1::2, 1 - first::2]
    return out


def unsqueeze(half: torch.Tensor, anchors: bool) -> torch.Tensor:
    """Inverse of :func:`squeeze`, zeros at the other half."""
    b, c, h, w2 = half.shape
    out = half.new_zeros(b, c, h, w2 * 2)
    first = 1 if anchors else 0
    out[:, :, 0::2, first::2] = half[:, :, 0::2]
    out[:, :, 1::2, 1 - first::2] = half[:, :, 1::2]
    return out


@functools.lru_cache(maxsize=128)
def _half_index(h: int, w: int, anchors: bool) -> torch.Tensor:
    pos = torch.arange(h * w)
    other = (pos // w + pos % w + int(anchors)) % 2  # 0 at the wanted half (anchors: row + col odd)
    n = h * w // 2 if anchors else (h * w + 1) // 2  # (0, 0) is a non-anchor
    return torch.argsort(other, stable=True)[:n]  # stable: row-major order within the half


def half_index(h: int, w: int, anchors: bool, device=None) -> torch.Tensor:
    """Flat positions of the anchors (or non-anchors) of an ``[h, w]`` map, in row-major order, as an index whose
    size follows from ``h, w`` alone. Boolean-mask indexing has a data-dependent
    output shape (``nonzero``), which splits a ``torch.compile`` graph at every use; an index does not."""
    idx = _half_index(int(h), int(w), bool(anchors))
    return idx if device is None else idx.to(device)


def gather(y: torch.Tensor, anchors: bool) -> torch.Tensor:
    """Values of one half of a ``[1, C, H, W]`` tensor as ``[C, n]`` in (channel, row, column) order."""
    return half(y, anchors)[0, :, :, 0]


def scatter(values: torch.Tensor, shape, anchors: bool) -> torch.Tensor:
    """Inverse of :func:`gather`: a ``[1, C, H, W]`` tensor with zeros at the other half."""
    return unhalf(values[None, :, :, None], shape[-2:], anchors)


def half(y: torch.Tensor, anchors: bool) -> torch.Tensor:
    """One half of a ``[B, C, H, W]`` tensor as ``[B, C, n, 1]`` (the order of :func:`gather`), for networks that
    are position-wise (1x1 convolutions) and only read at that half: half the work of the full map."""
    idx = half_index(y.shape[-2], y.shape[-1], anchors, y.device)
    return y.flatten(-2).index_select(-1, idx).unsqueeze(-1)


def unhalf(values: torch.Tensor, hw, anchors: bool) -> torch.Tensor:
    """Inverse of :func:`half`: ``[B, C, H, W]`` with zeros at the other half."""
    b, c = values.shape[:2]
    out = values.new_zeros(b, c, hw[0] * hw[1])
    out = out.index_copy(-1, half_index(hw[0], hw[1], anchors, values.device), values[..., 0])
    return out.view(b, c, hw[0], hw[1])
