"""The Pillow plugin through real Pillow calls: Image.open / load / save on .flic files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image, UnidentifiedImageError

import fastlic
import fastlic.pillow as flic_pillow
from fastlic import codec
from fastlic.checkpoint import save_checkpoint
from fastlic.cli import main
from fastlic.errors import FormatError, ModelMismatchError


@pytest.fixture(autouse=True)
def default_registration():
    """Every test starts and ends with the plain registration (no model given)."""
    flic_pillow.register()
    yield
    flic_pillow.register()


def _tiny_checkpoint(path, seed):
    torch.manual_seed(seed)
    save_checkpoint(path, fastlic.create_model("mlicpp-tiny").eval())
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("pillow_ckpt")
    return _tiny_checkpoint(d / "tiny.pt", 0), _tiny_checkpoint(d / "other.pt", 1)


@pytest.fixture(scope="module")
def array():
    y, x = np.mgrid[0:48, 0:72]
    base = np.stack([np.sin(x / 7.0), np.cos(y / 5.0), np.sin((x + y) / 11.0)], -1) * 90 + 128
    return np.clip(base, 0, 255).astype(np.uint8)


def test_registered_with_pillow():
    assert Image.registered_extensions()[".flic"] == "FLIC"
    assert "FLIC" in Image.OPEN and "FLIC" in Image.SAVE
    assert flic_pillow.register_flic_opener is flic_pillow.register


def test_save_then_open_decodes_lazily_and_exactly(tmp_path, checkpoints, array, monkeypatch):
    ck, _ = checkpoints
    flic_pillow.register(checkpoint=ck)
    path = tmp_path / "x.flic"
    Image.fromarray(array).save(path)
    assert path.read_bytes()[:4] == b"FLIC"
    model = codec.load_model(checkpoint=ck)
    expected = codec.decode_image(path.read_bytes(), model)

    calls = []
    real = codec.decode_image
    monkeypatch.setattr(codec, "decode_image", lambda *a, **k: calls.append(1) or real(*a, **k))
    with Image.open(path) as im:
        assert (im.format, im.mode, im.size) == ("FLIC", "RGB", (72, 48))
        assert im.info["flic_model"] == "mlicpp-tiny"
        assert calls == []  # opening read the header only
        got = np.asarray(im)
        assert calls == [1]
    assert np.array_equal(got, expected)
    # the same file through the command line
    out = tmp_path / "cli.png"
    assert main(["decompress", str(path), "-o", str(out), "--checkpoint", str(ck), "-q"]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), got)


def test_model_given_per_save_or_as_an_object(tmp_path, checkpoints, array):
    ck, _ = checkpoints
    a, b = tmp_path / "a.flic", tmp_path / "b.flic"
    Image.fromarray(array).save(a, checkpoint=ck)  # nothing registered: the option of this save
    model = codec.load_model(checkpoint=ck)
    Image.fromarray(array).save(b, model=model)
    assert a.read_bytes() == b.read_bytes()
    flic_pillow.register(model=model)
    with Image.open(a) as im:
        assert np.array_equal(np.asarray(im), codec.decode_image(a.read_bytes(), model))


def test_other_weights_or_no_weights_give_pillows_error_with_fastlics_message(tmp_path, checkpoints, array):
    ck, other = checkpoints
    path = tmp_path / "x.flic"
    Image.fromarray(array).save(path, checkpoint=ck)
    flic_pillow.register(checkpoint=other)
    with Image.open(path) as im:  # the header is fine: the mismatch shows when the pixels are needed
        with pytest.raises(OSError, match="written with other weights of 'mlicpp-tiny'") as exc:
            im.load()
        assert isinstance(exc.value.__cause__, ModelMismatchError)
    flic_pillow.register()  # mlicpp-tiny has no bundled weights
    with pytest.raises(OSError, match="no trained weights are bundled for model 'mlicpp-tiny'.*register"):
        Image.open(path).convert("L")


def test_truncated_or_corrupted_file_is_unidentified_with_the_reason(tmp_path, checkpoints, array):
    ck, _ = checkpoints
    good = tmp_path / "good.flic"
    Image.fromarray(array).save(good, checkpoint=ck)
    data = good.read_bytes()
    cases = {"truncated.flic": data[: len(data) // 2], "short.flic": data[:6],
             "flipped.flic": data[:40] + bytes([data[40] ^ 1]) + data[41:]}
    for name, content in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(UnidentifiedImageError) as exc:
            Image.open(bad)
        assert isinstance(exc.value, OSError) and isinstance(exc.value.__cause__, FormatError)
        assert str(bad) in str(exc.value) and ("truncated" in str(exc.value) or "corrupted" in str(exc.value) or
                                               "too short" in str(exc.value)), str(exc.value)
    # other formats are not taken over: a PNG named .flic is still a PNG
    png = tmp_path / "really_png.flic"
    Image.fromarray(array).save(png, format="PNG")
    with Image.open(png) as im:
        assert im.format == "PNG"


def test_grayscale_and_alpha_are_converted_with_the_clis_warnings(tmp_path, checkpoints, array):
    ck, _ = checkpoints
    flic_pillow.register(checkpoint=ck)
    gray = Image.fromarray(array[..., 0])
    rgba = Image.fromarray(np.dstack([array, np.full(array.shape[:2], 7, np.uint8)]), "RGBA")
    for img, name, note in ((gray, "g.flic", "grayscale converted to RGB"),
                            (rgba, "a.flic", "alpha channel dropped (converted RGBA to RGB)")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            img.save(tmp_path / name)
        assert [str(w.message) for w in caught] == [f"{tmp_path / name}: {note}"]
        with Image.open(tmp_path / name) as im:
            assert im.mode == "RGB" and im.size == img.size
    # the RGBA file is the RGB image's file: alpha really was dropped, nothing else changed
    Image.fromarray(array).save(tmp_path / "rgb.flic")
    assert (tmp_path / "a.flic").read_bytes() == (tmp_path / "rgb.flic").read_bytes()


def test_save_errors_leave_no_file(tmp_path, checkpoints, array):
    ck, _ = checkpoints
    path = tmp_path / "x.flic"
    with pytest.raises(OSError, match="cannot write .*x.flic as FLIC: .*fixed rate"):
        Image.fromarray(array).save(path, checkpoint=ck, quality=2)
    assert not path.exists()
    with pytest.raises(OSError, match="no trained weights are bundled for model 'mlicpp-tiny'"):
        Image.fromarray(array).save(path, model="mlicpp-tiny")
    assert not path.exists()


@pytest.mark.skipif(codec.DEFAULT_MODEL not in codec.bundled_weights(), reason="no bundled default weights")
def test_bundled_default_with_the_command_line(tmp_path, array):
    """The issue's acceptance: a file of `fastlic compress` opens in Pillow; a file Pillow saves decompresses."""
    png = tmp_path / "img.png"
    Image.fromarray(array).save(png)
    assert main(["compress", str(png), "-q"]) == 0  # -> img.flic, bundled default
    with Image.open(tmp_path / "img.flic") as im:
        im.save(tmp_path / "y.png")
    assert np.asarray(Image.open(tmp_path / "y.png")).shape == array.shape

    with Image.open(png) as im:
        im.save(tmp_path / "z.flic")
        im.save(tmp_path / "z_q4.flic", quality=100)  # the top of 0-100: native 4
    assert main(["decompress", str(tmp_path / "z.flic"), "-q"]) == 0
    decoded = np.asarray(Image.open(tmp_path / "z.png"))
    assert decoded.shape == array.shape and np.abs(decoded.astype(int) - array).mean() < 30
    with Image.open(tmp_path / "z_q4.flic") as hi, Image.open(tmp_path / "z.flic") as mid:
        assert hi.info["flic_quality"] == 4 and mid.info["flic_quality"] == 2  # the middle of 0..4
    assert (tmp_path / "z_q4.flic").stat().st_size > (tmp_path / "z.flic").stat().st_size


@pytest.fixture(scope="module")
def vr_checkpoint(tmp_path_factory):
    """A random variable-rate tiny MLIC++ with 5 rate points, like the bundled default's [0, 4]."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("pillow_vr") / "tiny-vr.pt"
    save_checkpoint(path, fastlic.create_model("mlicpp-tiny-vr", num_rates=5).eval())
    return path


def test_quality_is_on_the_0_to_100_scale_and_native_quality_on_the_models(tmp_path, vr_checkpoint, array):
    flic_pillow.register(checkpoint=vr_checkpoint)
    img = Image.fromarray(array)
    for options, native in (({"quality": 90}, 3.6), ({"quality": 0}, 0.0), ({"quality": 100}, 4.0),
                            ({"native_quality": 3.5}, 3.5), ({}, 2.0)):
        path = tmp_path / "q.flic"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a known option warns about nothing
            img.save(path, **options)
        with Image.open(path) as im:
            assert im.info["flic_quality"] == pytest.approx(native, abs=1 / 1024), options
    for options, message in (({"quality": 120}, "quality 120 is outside the 0-100 scale"),
                             ({"native_quality": 4.5}, r"native quality 4.5 is outside \[0, 4\]"),
                             ({"quality": 50, "native_quality": 2}, "not both")):
        path = tmp_path / "bad.flic"
        with pytest.raises(OSError, match=message):
            img.save(path, **options)
        assert not path.exists()


def test_unknown_save_options_are_named_in_a_warning(tmp_path, vr_checkpoint, array):
    flic_pillow.register(checkpoint=vr_checkpoint)
    with pytest.warns(UserWarning, match=r"FLIC ignores the save option\(s\) 'optimize', 'qualty' \(it takes "
                                         r"quality, native_quality"):
        Image.fromarray(array).save(tmp_path / "x.flic", qualty=90, optimize=True)
    with Image.open(tmp_path / "x.flic") as im:
        assert im.info["flic_quality"] == 2  # the misspelt option did not apply: the default


def test_icc_and_exif_are_saved_and_opened_as_pillow_does_for_jpeg(tmp_path, checkpoints, array):
    from PIL import ImageCms

    ck, _ = checkpoints
    flic_pillow.register(checkpoint=ck)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "fastlic camera"
    img = Image.fromarray(array)
    img.info["icc_profile"] = icc  # as an opened photo carries it: taken by default
    img.save(tmp_path / "x.flic", exif=exif)
    with Image.open(tmp_path / "x.flic") as im:
        assert im.info["icc_profile"] == icc and im.getexif()[0x010F] == "fastlic camera"
        im.save(tmp_path / "x.png")  # Pillow's PNG writer takes them from info as it would from a JPEG
    with Image.open(tmp_path / "x.png") as png:
        assert png.info["icc_profile"] == icc
    img.save(tmp_path / "bare.flic", icc_profile=b"")  # b"": store none
    with Image.open(tmp_path / "bare.flic") as im:
        assert "icc_profile" not in im.info and "exif" not in im.info
    with pytest.warns(UserWarning, match="the ICC profile is not valid .*; dropped"):
        img.save(tmp_path / "badicc.flic", icc_profile=b"not a profile")
    with Image.open(tmp_path / "badicc.flic") as im:
        assert "icc_profile" not in im.info and im.size == img.size
