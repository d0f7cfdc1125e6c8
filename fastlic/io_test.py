"""Awkward inputs: each is converted with a warning naming what changed, or refused with a clear message."""

import numpy as np
import pytest
import torch
from PIL import Image

import fastlic
from fastlic import codec
from fastlic.errors import ImageError
from fastlic.io import read_image, write_bytes, write_image


def _rgb(h=20, w=30, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def _save(path, im, **kw):
    im.save(path, **kw)
    return path


def test_conversions(tmp_path):
    rgb = _rgb()
    cases = {
        "gray.png": (Image.fromarray(rgb[..., 0]), "grayscale"),
        "palette.png": (Image.fromarray(rgb).convert("P"), "palette"),
        "rgba.png": (Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)]), "RGBA"), "alpha"),
        "cmyk.jpg": (Image.fromarray(rgb).convert("CMYK"), "CMYK"),
        "gray16.png": (Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)), "16-bit"),
    }
    for name, (im, word) in cases.items():
        notes = []
        out = read_image(_save(tmp_path / name, im), notes)
        assert out.dtype == np.uint8 and out.shape == (20, 30, 3), name
        assert any(word in n for n in notes), (name, notes)
    # 16-bit values are rounded to the nearest 8-bit level
    notes = []
    out = read_image(tmp_path / "gray16.png", notes)
    assert np.array_equal(out[..., 0], rgb[..., 0])
    # RGBA keeps the colour channels exactly
    assert np.array_equal(read_image(tmp_path / "rgba.png"), rgb)


def test_exif_orientation_is_applied(tmp_path):
    rgb = _rgb(10, 40)
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    path = tmp_path / "rot.jpg"
    im.save(path, exif=exif.tobytes(), quality=95)
    notes = []
    out = read_image(path, notes)
    assert out.shape == (40, 10, 3) and any("EXIF" in n for n in notes)


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_animated_images_use_the_first_frame(tmp_path, fmt):
    frames = [Image.fromarray(np.full((16, 16, 3), v, np.uint8)) for v in (10, 200, 90)]
    path = tmp_path / f"anim.{fmt}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0, lossless=True)
    notes = []
    out = read_image(path, notes)
    assert abs(int(out.mean()) - 10) <= 2 and any("first frame" in n for n in notes)


def test_unreadable_inputs(tmp_path):
    (tmp_path / "t.png").write_text("hello")
    (tmp_path / "trunc.png").write_bytes(_png_bytes(tmp_path)[:60])
    for name, msg in [("t.png", "not a readable image"), ("missing.png", "no such file"),
                      ("trunc.png", "image")]:
        with pytest.raises(ImageError, match=msg):
            read_image(tmp_path / name)
    with pytest.raises(ImageError, match="directory"):
        read_image(tmp_path)


def _png_bytes(tmp_path):
    p = tmp_path / "ok.png"
    Image.fromarray(_rgb(50, 50)).save(p)
    return p.read_bytes()


@pytest.mark.parametrize("hw", [(1, 1), (1, 5000), (5000, 1), (65, 127)])
def test_extreme_shapes_round_trip(hw):
    torch.manual_seed(0)
    m = fastlic.create_model("mlicpp-tiny").eval()
    img = _rgb(*hw)
    out = codec.decode_image(codec.encode_image(m, img), m)
    assert out.shape == img.shape and out.dtype == np.uint8


def test_atomic_writes_leave_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out.png"

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        write_image(target, _rgb())
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    write_bytes(tmp_path / "a.flic", b"123")
    assert (tmp_path / "a.flic").read_bytes() == b"123"
    assert [p.name for p in tmp_path.iterdir()] == ["a.flic"]
