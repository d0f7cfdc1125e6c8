"""The padding rule of every codec (CompressionModel.pad / pad_offsets / crop): centred, edge-replicated, and the
same for forward, compress and decompress."""

import pytest
import torch

import fastlic


@pytest.mark.parametrize("name", ["mlicpp-tiny", "econtextformer-tiny"])
@pytest.mark.parametrize("hw", [(1, 1), (3, 200), (63, 65), (64, 128)])
def test_pad_centres_the_image_and_repeats_its_edges(name, hw):
    m = fastlic.create_model(name)
    h, w = hw
    x = torch.rand(2, 3, h, w)
    p = m.pad(x)
    ph, pw = m.padded_size(h, w)
    top, left = m.pad_offsets(h, w)
    assert p.shape == (2, 3, ph, pw) and ph % m.pad_multiple == 0 and pw % m.pad_multiple == 0
    assert (top, left) == ((ph - h) // 2, (pw - w) // 2)
    assert torch.equal(m.crop(p, h, w), x)
    # every padded pixel repeats the image pixel nearest to it (edge replication, no zeros)
    rows = torch.arange(ph).sub(top).clamp(0, h - 1)
    cols = torch.arange(pw).sub(left).clamp(0, w - 1)
    assert torch.equal(p, x[..., rows, :][..., cols])


def test_a_one_pixel_image_keeps_its_colour(tiny):
    """Zero padding made a 1x1 image a pixel in a black 64x64 picture; now the picture is its colour."""
    x = torch.tensor([0.8, 0.3, 0.55]).view(1, 3, 1, 1)
    assert torch.equal(tiny.pad(x), x.expand(1, 3, 64, 64))
    enc = tiny.compress(x)
    dec = tiny.decompress(enc["strings"], enc["shape"])
    with torch.no_grad():
        assert torch.equal(dec["x_hat"], tiny(x)["x_hat"])
