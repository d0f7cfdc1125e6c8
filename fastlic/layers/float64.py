"""Convolutions that are fast in float64 too: the entropy-parameter path runs in float64 (:mod:`fastlic.numerics`),
where PyTorch's CPU convolution has no oneDNN kernel. Both classes are ``nn.Conv2d`` (same state-dict keys, and
PyTorch's own kernel in any other dtype or configuration), so a float32 model and its checkpoint are unchanged.

On a float64 CPU tensor:

- :class:`DepthwiseConv2d`: PyTorch runs a depthwise convolution group by group (thousands of calls per image in
  MLIC++'s global contexts, 80 % of the parameter path's time before this class); here it is k*k shifted
  multiply-adds of whole tensors.
- :class:`Conv2d`: PyTorch's float64 path builds the im2col matrix (k*k copies of the input) and runs one GEMM;
  for the wide 3x3 and 5x5 convolutions of the context models (hundreds of input channels on the latent grid)
  that copy costs as much as the GEMM. Here each of the k*k taps is one GEMM straight on a strided view of the
  padded input (the output is computed on the padded width and cropped), accumulated in place.

The results differ from PyTorch's in the order of the sums only (float64 rounding, ~1e-16 relative), which the
guarded decisions are designed to absorb; ``tests/test_portability.py`` decodes files across both kernels.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _plain(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    return (x.dtype != torch.float64 or x.device.type != "cpu" or conv.stride != (1, 1) or conv.dilation != (1, 1)
            or conv.padding_mode != "zeros" or isinstance(conv.padding, str))


class DepthwiseConv2d(nn.Conv2d):
    """A depthwise (``groups == in_channels``) convolution, fast in float64 (see the module docstring)."""

    def forward(self, x):
        if _plain(self, x) or self.groups != self.in_channels:
            return super().forward(x)
        kh, kw = self.kernel_size
        ph, pw = self.padding
        mult = self.out_channels // self.in_channels
        if mult != 1:
            x = x.repeat_interleave(mult, dim=1)
        xp = F.pad(x, (pw, pw, ph, ph))
        h, w = xp.shape[-2] - kh + 1, xp.shape[-1] - kw + 1
        out = None
        for dy in range(kh):
            for dx in range(kw):
                term = xp[..., dy : dy + h, dx : dx + w] * self.weight[:, 0, dy, dx].view(1, -1, 1, 1)
                out = term if out is None else out + term
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out


class Conv2d(nn.Conv2d):
    """A dense convolution (stride 1), fast in float64 on the CPU with many input channels (module docstring)."""

    #: below this many input channels per tap PyTorch's im2col is cheap and its single GEMM wins
    min_in_channels = 96

    def forward(self, x):
        kh, kw = self.kernel_size
        if _plain(self, x) or self.groups != 1 or (kh, kw) == (1, 1) or self.in_channels < self.min_in_channels:
            return super().forward(x)
        ph, pw = self.padding
        b, cin, h, w = x.shape
        wp = w + 2 * pw
        oh = h + 2 * ph - kh + 1
        n = oh * wp
        # one spare row at the bottom keeps the last taps' views inside the buffer
        xp = F.pad(x, (pw, pw, ph, ph + 1)).reshape(b, cin, -1)
        taps = self.weight.permute(2, 3, 0, 1)  # [kh, kw, Cout, Cin]
        outs = []
        for i in range(b):
            if self.bias is not None:
                out = self.bias.view(-1, 1).expand(self.out_channels, n).clone()
            else:
                out = x.new_zeros(self.out_channels, n)
            for dy in range(kh):
                for dx in range(kw):
                    off = dy * wp + dx
                    out.addmm_(taps[dy, dx], xp[i, :, off : off + n])
            outs.append(out.view(self.out_channels, oh, wp)[:, :, : wp - kw + 1])
        return torch.stack(outs)
