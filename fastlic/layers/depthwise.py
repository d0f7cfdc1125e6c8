"""A depthwise convolution that is fast in float64 too (the entropy-parameter path, :mod:`fastlic.numerics`)."""

from __future__ import annotations

import torch
import torch.nn as nn


class DepthwiseConv2d(nn.Conv2d):
    """A depthwise (``groups == in_channels``) convolution; identical to ``nn.Conv2d`` in float32 and state-dict
    compatible. In float64 PyTorch's CPU convolution runs it group by group (thousands of calls per image in
    MLIC++'s global contexts, 80 % of the float64 parameter path's time); here it is k*k shifted
    multiply-adds of whole tensors instead."""

    def forward(self, x):
        if x.dtype != torch.float64 or self.groups != self.in_channels or self.stride != (1, 1) \
                or self.dilation != (1, 1) or self.padding_mode != "zeros" or isinstance(self.padding, str):
            return super().forward(x)
        kh, kw = self.kernel_size
        ph, pw = self.padding
        mult = self.out_channels // self.in_channels
        if mult != 1:
            x = x.repeat_interleave(mult, dim=1)
        xp = torch.nn.functional.pad(x, (pw, pw, ph, ph))
        h, w = xp.shape[-2] - kh + 1, xp.shape[-1] - kw + 1
        out = None
        for dy in range(kh):
            for dx in range(kw):
                term = xp[..., dy : dy + h, dx : dx + w] * self.weight[:, 0, dy, dx].view(1, -1, 1, 1)
                out = term if out is None else out + term
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out
