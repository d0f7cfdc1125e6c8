"""Awkward inputs: each is converted with a warning naming what changed, or refused with a clear message."""

import numpy as np
import pytest
import torch
from PIL import Image

import fastlic
from fastlic import codec
from fastlic.errors import FastlicError, ImageError
from fastlic.io import (ImageMetadata, image_format, read_image, read_image_and_metadata, write_bytes, write_image,
                        write_stdout)


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



def _png16(rgb16: np.ndarray) -> bytes:
    """A 16-bit RGB (3 channels) or RGBA (4) PNG written by hand: Pillow cannot write one from an array."""
    import struct
    import zlib

    h, w, c = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, {3: 2, 4: 6}[c], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_rgb_is_reduced_with_a_warning(tmp_path, channels):
    """Pillow opens a 16-bit RGB(A) PNG as 8-bit RGB(A) without a word; fastlic says so."""
    rgb = _rgb(6, 9)
    deep = np.dstack([rgb] + ([np.full(rgb.shape[:2], 255, np.uint8)] if channels == 4 else [])).astype(np.uint16)
    path = tmp_path / "deep.png"
    path.write_bytes(_png16(deep * 257))  # v * 257: exactly v on 8 bits
    notes = []
    out = read_image(path, notes)
    assert np.array_equal(out, rgb)
    assert "deep.png: 16-bit image reduced to 8 bits per channel" in notes
    notes = []
    Image.fromarray(rgb).save(tmp_path / "plain.png")
    read_image(tmp_path / "plain.png", notes)
    assert notes == []  # an 8-bit RGB file is not reported


def _srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_icc_and_exif_are_read_and_the_applied_orientation_is_reset(tmp_path):
    rgb = _rgb(10, 40)
    icc = _srgb_profile()
    exif = Image.Exif()
    exif[0x010F] = "fastlic camera"  # Make
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    path = tmp_path / "photo.jpg"
    Image.fromarray(rgb).save(path, exif=exif.tobytes(), icc_profile=icc, quality=95)
    notes = []
    pixels, meta = read_image_and_metadata(path, notes)
    assert pixels.shape == (40, 10, 3) and meta.icc == icc
    stored = Image.Exif()
    stored.load(meta.exif)
    assert not meta.exif.startswith(b"Exif") and stored[0x010F] == "fastlic camera"
    assert stored[0x0112] == 1  # the pixels are upright now: a viewer must not rotate them again
    # without an orientation to apply, the file's own EXIF bytes are kept as they are
    exif[0x0112] = 1
    Image.fromarray(rgb).save(path, exif=exif.tobytes())
    with Image.open(path) as im:
        raw = im.info["exif"]
    assert read_image_and_metadata(path)[1] == ImageMetadata(icc=b"", exif=raw[6:])
    Image.fromarray(rgb).save(tmp_path / "bare.png")
    assert not read_image_and_metadata(tmp_path / "bare.png")[1]
    # a profile the container would refuse is dropped with a note; the photo is still read
    Image.fromarray(rgb).save(tmp_path / "badicc.png", icc_profile=b"not an ICC profile")
    notes = []
    pixels, meta = read_image_and_metadata(tmp_path / "badicc.png", notes)
    assert np.array_equal(pixels, rgb) and not meta
    assert notes == ["badicc.png: the ICC profile is not valid (18 bytes, no ICC header); dropped"]


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_metadata_is_written_where_the_format_holds_it(tmp_path, suffix):
    exif = Image.Exif()
    exif[0x010F] = "fastlic camera"
    meta = ImageMetadata(icc=_srgb_profile(), exif=exif.tobytes()[6:])
    notes = []
    write_image(tmp_path / f"o{suffix}", _rgb(), metadata=meta, warnings=notes)
    assert notes == []
    with Image.open(tmp_path / f"o{suffix}") as im:
        assert im.info.get("icc_profile") == meta.icc
        assert im.getexif()[0x010F] == "fastlic camera"


def test_metadata_dropped_by_a_format_that_cannot_hold_it_is_reported(tmp_path):
    notes = []
    write_image(tmp_path / "o.bmp", _rgb(), metadata=ImageMetadata(icc=b"x" * 200), warnings=notes)
    assert notes == ["o.bmp: ICC profile dropped (BMP cannot hold them; PNG, JPEG, WebP and TIFF can)"]


def test_output_formats_follow_known_extensions_only(tmp_path):
    assert [image_format(f"a{s}") for s in (".png", ".JPG", ".jpeg", ".webp", ".tiff", ".bmp", ".ppm")] == \
        ["PNG", "JPEG", "JPEG", "WEBP", "TIFF", "BMP", "PPM"]
    for name, message in (("k.xyz", "unknown image extension '.xyz'"), ("k.flic", "not as .flic"),
                          ("k", "no image extension")):
        with pytest.raises(FastlicError, match=message):
            write_image(tmp_path / name, _rgb())
    assert list(tmp_path.iterdir()) == []


def test_binary_output_refuses_a_terminal(monkeypatch):
    import io
    import sys

    class Terminal(io.TextIOWrapper):
        def isatty(self):
            return True

    term = Terminal(io.BytesIO())
    monkeypatch.setattr(sys, "stdout", term)
    with pytest.raises(FastlicError, match="not written to a terminal"):
        write_stdout(b"FLIC")
    write_stdout(b"FLIC", force=True)
    assert term.buffer.getvalue() == b"FLIC"
