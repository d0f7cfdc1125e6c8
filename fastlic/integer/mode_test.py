"""The integer numeric mode through the ordinary API: files, checkpoints, refusals, the model's own methods."""

from pathlib import Path

import numpy as np
import pytest
import torch

import fastlic
from fastlic import checkpoint, codec, numerics
from fastlic.errors import ModelMismatchError
from fastlic.io import read_image

IMG = read_image(Path(fastlic.__file__).parent / "data" / "kodim23.png")


def _tiny(name="mlicpp-tiny"):
    torch.manual_seed(0)
    m = fastlic.create_model(name).eval()
    m.update()
    return m


@pytest.fixture(scope="module")
def pair():
    """(float model, the same weights converted to the integer mode)."""
    torch.set_num_threads(1)
    return _tiny(), _tiny().to_integer()


def test_mode_is_decided_by_numerics(pair):
    f, i = pair
    assert numerics.numeric_mode(f) == numerics.PORTABLE_MODE
    assert numerics.numeric_mode(i) == numerics.INTEGER_MODE
    assert f.fingerprint() != i.fingerprint()  # the integer constants are part of the weights


def test_file_round_trip_in_integer_mode(pair, tmp_path):
    _, m = pair
    img = np.ascontiguousarray(IMG[300:377, 400:493])
    data = codec.encode_image(m, img)
    assert codec.read_header(data).numeric_mode == numerics.INTEGER_MODE
    out = codec.decode_image(data, m)  # the checksum over the coded integers is checked inside
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    enc = m.compress(x)
    dec = m.decompress(enc["strings"], enc["shape"])
    assert dec["checksums"] == enc["checksums"]
    with torch.no_grad():
        fwd = m(x)
    assert torch.equal(dec["x_hat"], fwd["x_hat"])  # one integer driver serves forward and decompress
    assert np.array_equal(out, np.clip(np.round(dec["x_hat"][0].clamp(0, 1).permute(1, 2, 0).numpy() * 255), 0,
                                       255).astype(np.uint8))
    # the checkpoint carries the constants: a fresh load decodes the same file without calibrating
    checkpoint.save_checkpoint(tmp_path / "int.pt", m)
    m2 = checkpoint.load_checkpoint(tmp_path / "int.pt")
    assert numerics.numeric_mode(m2) == numerics.INTEGER_MODE and m2.fingerprint() == m.fingerprint()
    assert np.array_equal(codec.decode_image(data, m2), out)


def test_modes_refuse_each_other_by_name(pair):
    f, i = pair
    img = np.ascontiguousarray(IMG[0:64, 0:64])
    with pytest.raises(ModelMismatchError, match=r"numeric mode 3 \(integer\).*mode 2 \(portable\)"):
        codec.decode_image(codec.encode_image(i, img), f)
    with pytest.raises(ModelMismatchError, match=r"numeric mode 2 \(portable\).*mode 3 \(integer\)"):
        codec.decode_image(codec.encode_image(f, img), i)


def test_variable_rate_model_converts_at_every_rate():
    m = _tiny("mlicpp-tiny-vr")
    m.set_quality(1.5)
    m.to_integer([torch.from_numpy(np.ascontiguousarray(IMG[:128, :128])).permute(2, 0, 1)[None].float() / 255])
    assert m.quality == 1.5  # calibration visits every rate point and puts the quality back
    img = np.ascontiguousarray(IMG[200:264, 300:364])
    for q in (0.0, 2.75, 4.0):
        data = codec.encode_image(m, img, quality=q)
        assert codec.decode_image(data, m).shape == img.shape


def test_integer_files_are_checked_as_format_3(pair):
    """The integer decoder follows format 3 as the float one does: z's stream checksum is verified (with its
    sentinel) before any of y is decoded, and a y stream cut short stops as a coder that ran dry."""
    from fastlic import container
    from fastlic.errors import DecodeDivergenceError, FormatError

    _, m = pair
    img = np.ascontiguousarray(IMG[100:164, 200:264])
    f = container.unpack(codec.encode_image(m, img))
    calls = []
    real = m._slices  # the one driver, which only y's decoding runs
    m._slices = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        assert codec.decode_image(container.pack(f), m).shape == img.shape and calls
        calls.clear()
        bad = container.unpack(container.pack(f))
        bad.tiles[0].checksums[1] = bytes(8)
        with pytest.raises(DecodeDivergenceError, match="z stream"):
            codec.decode_image(container.pack(bad), m)
        assert not calls
    finally:
        del m._slices
    y = f.tiles[0].streams[0]
    with pytest.raises(FormatError, match="ran dry|does not end"):
        m.decompress([[y[: len(y) // 2 // 4 * 4]], [f.tiles[0].streams[1]]], img.shape[:2])
