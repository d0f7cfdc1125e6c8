"""Convolutional blocks of the analysis and synthesis transforms.

Residual blocks with GELU as in MLIC++ (Jiang et al., arXiv 2307.15421, Fig. 2), built on the ELIC / Cheng
2020 blocks (He et al., "ELIC", CVPR 2022; Cheng et al., CVPR 2020 §3.3 for the simplified attention module).
Attribute names follow the MLIC++ reference so that its checkpoints map onto these modules key for key.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .gdn import GDN


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride)


def subpel_conv3x3(in_ch: int, out_ch: int, r: int = 2) -> nn.Sequential:
    """3x3 convolution to ``out_ch * r**2`` channels followed by a pixel shuffle (Shi et al., CVPR 2016)."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch * r ** 2, kernel_size=3, padding=1), nn.PixelShuffle(r))


class ResidualBlockWithStride(nn.Module):
    """conv3 stride 2 -> GELU -> conv3 -> GDN, plus a 1x1 stride-2 skip."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 2, act=nn.GELU):
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch, stride=stride)
        self.act = act()
        self.conv2 = conv3x3(out_ch, out_ch)
        self.gdn = GDN(out_ch)
        self.skip = conv1x1(in_ch, out_ch, stride=stride) if stride != 1 or in_ch != out_ch else None

    def forward(self, x):
        out = self.gdn(self.conv2(self.act(self.conv1(x))))
        identity = self.skip(x) if self.skip is not None else x
        return out + identity


class ResidualBlockUpsample(nn.Module):
    """sub-pixel conv3 (x2) -> GELU -> conv3 -> inverse GDN, plus a sub-pixel conv3 skip."""

    def __init__(self, in_ch: int, out_ch: int, upsample: int = 2, act=nn.GELU):
        super().__init__()
        self.subpel_conv = subpel_conv3x3(in_ch, out_ch, upsample)
        self.act = act()
        self.conv = conv3x3(out_ch, out_ch)
        self.igdn = GDN(out_ch, inverse=True)
        self.upsample = subpel_conv3x3(in_ch, out_ch, upsample)

    def forward(self, x):
        out = self.igdn(self.conv(self.act(self.subpel_conv(x))))
        return out + self.upsample(x)


class ResidualBlock(nn.Module):
    """conv3 -> GELU -> conv3 -> GELU, plus identity (or a 1x1 conv when the width changes)."""

    def __init__(self, in_ch: int, out_ch: int, act=nn.GELU):
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch)
        self.act = act()
        self.conv2 = conv3x3(out_ch, out_ch)
        self.skip = conv1x1(in_ch, out_ch) if in_ch != out_ch else None

    def forward(self, x):
        out = self.act(self.conv2(self.act(self.conv1(x))))
        identity = self.skip(x) if self.skip is not None else x
        return out + identity


class AttentionBlock(nn.Module):
    """Simplified attention module of Cheng et al., CVPR 2020 §3.3 (no non-local block):
    ``x + a(x) * sigmoid(b(x))`` with three residual units in each branch."""

    def __init__(self, n: int, act=nn.GELU):
        super().__init__()

        class ResidualUnit(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Sequential(conv1x1(n, n // 2), act(), conv3x3(n // 2, n // 2), act(),
                                          conv1x1(n // 2, n))
                self.act = act()

            def forward(self, x):
                return self.act(self.conv(x) + x)

        self.conv_a = nn.Sequential(ResidualUnit(), ResidualUnit(), ResidualUnit())
        self.conv_b = nn.Sequential(ResidualUnit(), ResidualUnit(), ResidualUnit(), conv1x1(n, n))

    def forward(self, x):
        return x + self.conv_a(x) * torch.sigmoid(self.conv_b(x))
