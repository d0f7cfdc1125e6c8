"""Every registered codec: a stream encoded with 2 threads decodes with 1 thread to the same integers and, within\nthe pixel bound of fastlic.testing, the same pixels (other machines: tests/test_portability.py)."""

from __future__ import annotations

import pytest
import torch

import fastlic
from fastlic.testing import assert_same_pixels

SMALL = ["mlicpp-tiny", "mlicpp-tiny-vr", "econtextformer-tiny", "contextformer-tiny"]


def test_every_registered_family_is_covered():
    families = {n.split("-")[0] for n in fastlic.list_models()}
    assert families <= {n.split("-")[0] for n in SMALL}, families


@pytest.mark.parametrize("name", SMALL)
def test_encode_two_threads_decode_one_thread(name):
    torch.manual_seed(0)
    m = fastlic.create_model(name).eval()
    m.update()
    x = torch.rand(1, 3, 70, 90)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        enc = m.compress(x)
        with torch.no_grad():
            expected = m(x)["x_hat"]
        torch.set_num_threads(1)
        dec = m.decompress(enc["strings"], enc["shape"])
    finally:
        torch.set_num_threads(before)
    assert dec["checksums"] == enc["checksums"]
    assert_same_pixels(dec["x_hat"], expected, name)
    assert (dec["x_hat"] - expected).abs().max().item() < 1e-5  # float noise of the synthesis only
