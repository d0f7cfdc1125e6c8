"""Complexity accounting: attribution per component and exact MAC counts of the context transformer."""

import torch

from fastlic.cli import main
from fastlic.complexity import measure
from fastlic.registry import create_model


def _tiny(**config):
    torch.manual_seed(0)
    m = create_model("econtextformer-tiny", **config).eval()
    m.update()
    return m


def _context_macs(m, h, w, cache=True):
    """Closed-form MACs of the transformer while coding an h x w image: the embedding of the group's values,
    then in every layer qkv + projection + MLP on the new group's (padded) tokens and QK^T, AV against the
    tokens of groups <= s."""
    cm = m.context_model
    k, d = cm.window, cm.dim
    hh, ww = h // 16, w // 32
    tokens = (-(-hh // k) * k) * (-(-ww // k) * k)
    embed = hh * ww * m.p * d  # once per group: the uncached path re-runs the layers, not the embedding
    layers = lambda s: len(cm.layers) * tokens * (12 * d * d + 2 * (s + 1) * k * k * d)  # noqa: E731
    steps = range(cm.groups)
    if cache:
        return sum(embed + layers(s) for s in steps)
    return sum(embed + sum(layers(j) for j in range(s + 1)) for s in steps)


def test_context_model_macs_match_closed_form_with_and_without_cache():
    m = _tiny()
    h, w = 128, 320  # squeezed grid 8 x 10 -> padded to 8 x 12 with K = 4
    for cache in (True, False):
        m.cache = cache
        r = measure(m, h, w)
        expected = _context_macs(m, h, w, cache) / (h * w) / 1e3
        assert abs(r["decoder_kmac_per_px"]["context_model"] - expected) < 1e-9
        assert abs(r["encoder_kmac_per_px"]["context_model"] - expected) < 1e-9


def test_serial_contextformer_macs_match_its_closed_form():
    torch.manual_seed(0)
    m = create_model("contextformer-tiny").eval()
    m.update()
    r = measure(m, 64, 128)
    assert r["decoder_kmac_per_px"]["context_model"] == m.context_macs(64, 128) / (64 * 128) / 1e3
    assert "other" not in r["decoder_kmac_per_px"]


def test_components_are_attributed_to_encoder_and_decoder():
    m = _tiny()
    r = measure(m, 64, 128)
    enc, dec = r["encoder_kmac_per_px"], r["decoder_kmac_per_px"]
    assert enc["g_a"] > 0 and enc["h_a"] > 0 and enc["g_s"] == 0
    assert dec["g_s"] > 0 and dec["g_a"] == 0 and dec["h_a"] == 0
    for side in (enc, dec):
        assert side["h_s"] > 0 and side["context_model"] > 0 and side["entropy_parameters"] > 0
        assert "other" not in side
    assert sum(r["parameters"].values()) == r["total_parameters"] == sum(p.numel() for p in m.parameters())
    # g_s of the tiny model, counted by hand from its convolutions at their output resolutions
    assert dec["g_s"] > dec["h_s"]


def test_egr_and_sfg_reduce_context_macs():
    base = measure(_tiny(), 128, 256)["decoder_kmac_per_px"]["context_model"]
    m = _tiny()
    m.egr = False
    no_egr = measure(m, 128, 256)["decoder_kmac_per_px"]["context_model"]
    no_sfg = measure(_tiny(sfg=False), 128, 256)["decoder_kmac_per_px"]["context_model"]
    assert no_egr > base and no_sfg > base


def test_cli(capsys):
    assert main(["complexity", "--model", "econtextformer-tiny", "--size", "64x128"]) == 0
    assert "context_model" in capsys.readouterr().out
    assert main(["complexity", "--model", "econtextformer-tiny", "--size", "64by128"]) == 1
    assert "HxW" in capsys.readouterr().err
    assert main(["complexity", "--model", "no-such-model"]) == 1


def test_float64_convolutions_are_counted_like_torch_ones():
    """fastlic.layers.float64.Conv2d (one addmm_ per tap) counts the MACs of the convolution it computes."""
    import torch.nn as nn

    from fastlic.complexity import MacCounter
    from fastlic.layers.float64 import Conv2d

    class Net(nn.Module):
        def __init__(self, conv):
            super().__init__()
            self.lrp = conv

    conv = Conv2d(128, 16, 3, padding=1).double()
    x = torch.randn(1, 128, 6, 10, dtype=torch.float64)
    counts = []
    for net in (Net(conv), Net(nn.Conv2d(128, 16, 3, padding=1).double())):
        with MacCounter(net) as counter:
            net.lrp(x)
        counts.append(counter.macs["context_model"])
    # the taps run on the padded width (10 + 2) and are cropped: at most that much more than the conv's MACs
    assert counts[1] == 128 * 16 * 9 * 60
    assert counts[1] <= counts[0] <= counts[1] * 12 / 10
