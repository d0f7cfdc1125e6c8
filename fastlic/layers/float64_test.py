"""The float64 convolutions agree with PyTorch's to float64 rounding, and are PyTorch's elsewhere."""

import pytest
import torch
import torch.nn.functional as F

from fastlic.layers.float64 import Conv2d, DepthwiseConv2d


@pytest.mark.parametrize("cin,cout,k,pad,shape", [(128, 24, 3, 1, (2, 7, 9)), (100, 16, 5, 2, (1, 6, 11)),
                                                   (96, 8, 3, 0, (1, 5, 5)), (120, 12, 5, 1, (1, 8, 7))])
def test_dense_matches_torch_in_float64(cin, cout, k, pad, shape):
    torch.manual_seed(0)
    conv = Conv2d(cin, cout, k, padding=pad).double()
    b, h, w = shape
    x = torch.randn(b, cin, h, w, dtype=torch.float64)
    ref = F.conv2d(x, conv.weight, conv.bias, padding=pad)
    out = conv(x)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() <= 1e-13 * ref.abs().max()
    # a bias-free convolution too
    conv.bias = None
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight, None, padding=pad), rtol=0, atol=1e-12)


def test_depthwise_matches_torch_in_float64():
    torch.manual_seed(1)
    conv = DepthwiseConv2d(16, 32, 3, padding=1, groups=16).double()
    x = torch.randn(2, 16, 6, 7, dtype=torch.float64)
    ref = F.conv2d(x, conv.weight, conv.bias, padding=1, groups=16)
    assert (conv(x) - ref).abs().max() <= 1e-13 * ref.abs().max()


def test_float32_and_narrow_inputs_use_torch_kernels():
    torch.manual_seed(2)
    conv = Conv2d(128, 8, 3, padding=1)
    x = torch.randn(1, 128, 6, 6)
    assert torch.equal(conv(x), F.conv2d(x, conv.weight, conv.bias, padding=1))  # float32: PyTorch's own
    narrow = Conv2d(8, 8, 3, padding=1).double()
    xd = torch.randn(1, 8, 6, 6, dtype=torch.float64)
    assert torch.equal(narrow(xd), F.conv2d(xd, narrow.weight, narrow.bias, padding=1))
