import math
import re
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastlic
from fastlic import codec, container
from fastlic.errors import DecodeDivergenceError, FastlicError, FormatError, ModelMismatchError


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:150, 0:230]
    base = np.stack([np.sin(x / 9.0), np.cos(y / 7.0), np.sin((x + y) / 13.0)], -1) * 100 + 128
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def test_round_trip_matches_forward(tiny, image):
    data = codec.encode_image(tiny, image)
    out = codec.decode_image(data, tiny)
    from fastlic.io import image_to_tensor, tensor_to_image

    with torch.no_grad():
        assert np.array_equal(out, tensor_to_image(tiny(image_to_tensor(image))["x_hat"]))


def test_tiled_round_trip(tiny, image):
    data = codec.encode_image(tiny, image, tile=64, overlap=16)
    f = container.unpack(data)
    assert len(f.tiles) > 4 and f.tile_h == 64 and f.overlap == 16
    out = codec.decode_image(data, tiny)
    assert out.shape == image.shape
    # every pixel comes from tiles that decoded exactly: decoding twice gives the same image
    assert np.array_equal(out, codec.decode_image(data, tiny))
    # tiles are planned from a memory ceiling when none is given
    assert codec.plan_tiles(tiny, 5000, 5000, max_memory=64 << 20)[0] > 0
    assert codec.plan_tiles(tiny, 64, 64) == (0, 0, 0)
    with pytest.raises(FastlicError):
        codec.encode_image(tiny, image, tile=100)


def _recrc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_checksum_mismatch_is_an_error(tiny, image):
    """A wrong checksum of either stream is refused naming the stream; a wrong z checksum before y is decoded."""
    calls = []
    real = tiny.gaussian_conditional.decode
    tiny.gaussian_conditional.decode = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        for k, name in enumerate(tiny.stream_names):
            f = container.unpack(codec.encode_image(tiny, image))
            f.tiles[0].checksums[k] = bytes(8)
            calls.clear()
            with pytest.raises(DecodeDivergenceError, match=f"the decoded {name} stream differs .*checksum"):
                codec.decode_image(container.pack(f), tiny)
            assert bool(calls) == (name == "y")  # z is checked before any y symbol is decoded
    finally:
        del tiny.gaussian_conditional.decode


def test_other_model_or_weights_are_refused(tiny, image):
    data = codec.encode_image(tiny, image)
    torch.manual_seed(5)
    other = fastlic.create_model("mlicpp-tiny").eval()
    with pytest.raises(ModelMismatchError, match="other weights"):
        codec.decode_image(data, other)
    f = container.unpack(data)
    f.model = "mlicpp-small"
    with pytest.raises(ModelMismatchError, match="mlicpp-small"):
        codec.decode_image(container.pack(f), tiny)


@given(st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
def test_mutated_streams_never_return_an_unchecked_image(tiny, image, data):
    """Stream bytes altered with a recomputed CRC (a crafted file): the decoder either raises the library's
    error within a time bound, or returns exactly the original decode (a mutation of unused bits)."""
    small = image[:64, :96]
    good = codec.encode_image(tiny, small)
    reference = codec.decode_image(good, tiny)
    f = container.unpack(good)
    k = data.draw(st.integers(0, len(f.tiles[0].streams) - 1))
    stream = bytearray(f.tiles[0].streams[k])
    if stream:
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(stream) - 1))
            stream[i] ^= data.draw(st.integers(1, 255))
    if data.draw(st.booleans()):
        stream = stream[: data.draw(st.integers(0, len(stream)))]
    f.tiles[0].streams[k] = bytes(stream)
    crafted = container.pack(f)
    t0 = time.perf_counter()
    try:
        out = codec.decode_image(crafted, tiny)
    except (FormatError, DecodeDivergenceError):
        pass
    else:
        assert np.array_equal(out, reference)
    assert time.perf_counter() - t0 < 20


def test_header_records_the_portable_numeric_mode(image):
    """Every file records the portable mode; a decoder with its own thread count decodes it to the encoder's
    image (within the pixel bound of fastlic.testing)."""
    from fastlic import numerics
    from fastlic.io import image_to_tensor
    from fastlic.testing import assert_same_pixels

    torch.manual_seed(0)
    enc_model = fastlic.create_model("mlicpp-tiny").eval()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        data = codec.encode_image(enc_model, image)
        with torch.no_grad():
            expected = enc_model(image_to_tensor(image))["x_hat"]
        assert container.unpack(data).numeric_mode == numerics.PORTABLE_MODE
        dec_model = fastlic.create_model("mlicpp-tiny").eval()
        dec_model.load_state_dict(enc_model.state_dict())
        torch.set_num_threads(1)
        out = codec.decode_image(data, dec_model)
    finally:
        torch.set_num_threads(before)
    assert_same_pixels(out, expected)


# ------------------------------------------------------------------ crafted files (issue 44)
_BODY_OFF = {"height": 16, "width": 20, "quality": 28}


@pytest.fixture(scope="module")
def bundled():
    """The bundled default (variable rate), as users run it."""
    return codec.load_model()


@pytest.fixture(scope="module")
def crop():
    from fastlic.io import read_image

    return read_image(Path(codec.__file__).parent / "data" / "kodim23.png")[100:164, 200:296]


def _edit(data: bytes, recheck: bool, **fields) -> bytes:
    """``data`` with body fields rewritten and its CRC recomputed; ``recheck``: the header check too."""
    body = bytearray(data[:-4])
    base = 11 + body[10]
    for name, value in fields.items():
        struct.pack_into("<d" if name == "quality" else "<I", body, base + _BODY_OFF[name], value)
    if recheck:
        end = base + container._BODY.size
        body[end : end + 8] = container.header_digest(bytes(body[:5] + body[10:end]))[:8]
    return _recrc(bytes(body))


class _CountY:
    """Counts the y chunks a model decodes (its Gaussian conditional's decode calls)."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __enter__(self):
        real = self.model.gaussian_conditional.decode

        def counted(*a, **k):
            self.calls += 1
            return real(*a, **k)

        self.model.gaussian_conditional.decode = counted
        return self

    def __exit__(self, *exc):
        del self.model.gaussian_conditional.decode


@pytest.mark.parametrize("fields", [dict(quality=1.0), dict(quality=2.0 + 1 / 1024), dict(height=60),
                                    dict(width=90), dict(height=64, width=64)])
def test_an_edited_header_is_refused_by_name_never_decoded_to_another_image(bundled, crop, fields):
    """The issue's "different image with exit 0": a quality inside the range, or a size inside the padded size,
    rewritten with a valid CRC. Refused by the header check before decoding; and if the header check is forged
    too, by the z stream's checksum (the header digest enters it) before a single y symbol is decoded."""
    data = codec.encode_image(bundled, crop, quality=2.0)
    with pytest.raises(FormatError, match=r"photo\.flic: the \.flic header was altered after encoding"):
        codec.decode_image(_edit(data, False, **fields), bundled, "photo.flic")
    with _CountY(bundled) as y:
        # the z checksum; or, when the padded size changed too, z's coder finds fewer or more symbols
        with pytest.raises((DecodeDivergenceError, FormatError),
                           match=r"photo\.flic: the (decoded z stream differs .*checksum|z stream is corrupted)"):
            codec.decode_image(_edit(data, True, **fields), bundled, "photo.flic")
    assert y.calls == 0
    assert codec.decode_image(_edit(data, True), bundled).shape == crop.shape  # the editing itself is sound


@pytest.mark.parametrize("quality", [-1.0, 4.5, 5.0, math.inf, -math.inf, math.nan, 1e308, -0.0 - 1e-300,
                                     0.1234])
def test_a_quality_the_model_cannot_take_is_a_format_error(bundled, crop, quality):
    """Outside [0, K-1], not finite, NaN on a variable-rate model, off the 1/1024 grid: one-line fastlic errors
    (the issue's bare ValueError from models/gain.py), also when the header check was forged."""
    data = _edit(codec.encode_image(bundled, crop, quality=1.0), True, quality=quality)
    with pytest.raises(FormatError, match=r"x\.flic: corrupted \.flic header \(.*quality"):
        codec.decode_image(data, bundled, "x.flic")


def test_a_quality_on_a_fixed_rate_model_is_refused(tiny, image):
    data = _edit(codec.encode_image(tiny, image[:64, :64]), True, quality=1.0)
    with pytest.raises(ModelMismatchError, match="fixed rate"):
        codec.decode_image(data, tiny)


_FIVE_MP = r'''
import json, resource, struct, time, zlib
import torch
torch.set_num_threads(1)
from fastlic import codec, container
from fastlic.errors import FastlicError
from fastlic.io import read_image


def edit(data, recheck):  # height and width 2240, CRC (and header check) recomputed, as _edit in codec_test
    body = bytearray(data[:-4])
    base = 11 + body[10]
    struct.pack_into("<II", body, base + 16, 2240, 2240)
    if recheck:
        end = base + container._BODY.size
        body[end : end + 8] = container.header_digest(bytes(body[:5] + body[10:end]))[:8]
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


model = codec.load_model()
image = read_image(codec.__file__.rsplit("/", 1)[0] + "/data/kodim23.png")[100:164, 200:264]
data = codec.encode_image(model, image, quality=0.0)
codec.decode_image(data, model)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {"bytes": len(data), "rss_before_mb": before / 1024}
for name, recheck in (("crc", False), ("check", True)):
    bad = edit(data, recheck)
    t0 = time.perf_counter()
    try:
        codec.decode_image(bad, model, "big.flic")
        out[name] = "decoded"
    except FastlicError as exc:
        out[name] = type(exc).__name__ + ": " + str(exc)
    out[name + "_s"] = time.perf_counter() - t0
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
'''


def test_a_small_file_that_claims_five_megapixels_is_refused_fast():
    """A bundled-default file under 1 kB whose height and width were set to 2240 x 2240 (5.0 M pixels): refused
    in under 5 s and without growing the peak RSS (well under 500 MB) (the issue measured 47 s and 3.6 GB), with the CRC only rewritten
    (header check) and with the header check forged too (the z stream runs dry or fails its checksum)."""
    import json
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", _FIVE_MP], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["bytes"] < 1000
    assert out["crc"].startswith("FormatError: big.flic: the .flic header was altered")
    assert re.match(r"(FormatError|DecodeDivergenceError): big\.flic: the (decoded )?z stream", out["check"]), out
    assert out["crc_s"] < 5 and out["check_s"] < 5, out
    # what the crafted file costs: the process's peak may not grow while refusing it (the baseline, torch with the
    # model loaded, is 300-550 MB depending on the installation and is not the file's doing)
    assert out["peak_rss_mb"] - out["rss_before_mb"] < 64, out


def test_the_pixel_limit_refuses_before_decoding(bundled, crop, tmp_path, capsys):
    """codec.MAX_DECODE_PIXELS (Pillow's limit) by default; max_pixels= and --max-pixels change it; a file over
    the limit is refused by read_header, decode_image and the CLI (decompress and info) with one line."""
    from fastlic.cli import main

    assert codec.MAX_DECODE_PIXELS == 89_478_485
    data = codec.encode_image(bundled, crop)
    px = crop.shape[0] * crop.shape[1]
    with pytest.raises(FastlicError, match=rf"above the limit of {px - 1} pixels.*--max-pixels"):
        codec.decode_image(data, bundled, max_pixels=px - 1)
    with pytest.raises(FastlicError, match="above the limit"):
        codec.read_header(data, max_pixels=px - 1)
    assert codec.decode_image(data, bundled, max_pixels=px).shape == crop.shape
    path = tmp_path / "c.flic"
    path.write_bytes(data)
    capsys.readouterr()
    for cmd in (["decompress", str(path), "-o", str(tmp_path / "c.png")], ["info", str(path)]):
        assert main(cmd + ["--max-pixels", str(px - 1)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("fastlic: error: ") and "above the limit" in err[0]
    assert not (tmp_path / "c.png").exists()
    assert main(["decompress", str(path), "-o", str(tmp_path / "c.png"), "--max-pixels", "0"]) == 0


def test_a_bad_quality_file_gives_one_line_on_the_command_line(bundled, crop, tmp_path, capsys):
    from fastlic.cli import main

    path = tmp_path / "q.flic"
    path.write_bytes(_edit(codec.encode_image(bundled, crop), True, quality=7.0))
    capsys.readouterr()
    assert main(["decompress", str(path), "-o", str(tmp_path / "q.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fastlic: error: {path}: corrupted .flic header (quality 7.0 is outside [0, 4], the range of "
                   f"model 'mlicpp-mini-vr')"]


def test_metadata_round_trip_through_the_codec(bundled, crop):
    """ICC and EXIF given to encode_image come back from container.unpack byte for byte; the image and the
    stream checksums are those of the same file without metadata; invalid metadata is refused before coding."""
    icc = (132).to_bytes(4, "big") + bytes(32) + b"acsp" + bytes(92)
    exif = b"Exif\0\0MM\0*\0\0\0\x08" + bytes(6)
    plain = codec.encode_image(bundled, crop)
    data = codec.encode_image(bundled, crop, icc=icc, exif=exif)
    f, g = container.unpack(data), container.unpack(plain)
    assert (f.icc, f.exif, g.icc, g.exif) == (icc, exif, b"", b"")
    assert [t.checksums for t in f.tiles] == [t.checksums for t in g.tiles]
    assert np.array_equal(codec.decode_image(data, bundled), codec.decode_image(plain, bundled))
    from fastlic.errors import ImageError

    with pytest.raises(ImageError, match="ICC"):
        codec.encode_image(bundled, crop, icc=b"not a profile")
    with pytest.raises(ImageError, match="EXIF"):
        codec.encode_image(bundled, crop, exif=b"\xff\xd8 not exif")


def test_econtextformer_checks_z_before_decoding_y():
    torch.manual_seed(0)
    m = fastlic.create_model("econtextformer-tiny").eval()
    m.update()
    img = (np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)
    f = container.unpack(codec.encode_image(m, img))
    calls = []
    real = m.gmm.decode
    m.gmm.decode = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        assert codec.decode_image(container.pack(f), m).shape == img.shape and calls
        calls.clear()
        f.tiles[0].checksums[1] = bytes(8)
        with pytest.raises(DecodeDivergenceError, match="z stream"):
            codec.decode_image(container.pack(f), m)
        assert not calls
    finally:
        del m.gmm.decode


def _mutation_harness():
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "fuzz" / "mutate_flic.py"
    spec = importlib.util.spec_from_file_location("mutate_flic", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_crc_valid_mutations_of_bundled_default_files_give_only_fastlic_errors_or_the_seed(bundled):
    """A short run of fuzz/mutate_flic.py (the long runs are in results/fuzz/): 300 mutations of bundled-default
    files (header fields, table entries, stream bytes and lengths, swaps, cuts), each with a valid CRC, three in
    four with only the CRC fixed and one in four with the header check forged too. No exception other than
    fastlic's, no image that differs from the seed's, no decode over its size-proportional bound."""
    fz = _mutation_harness()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: threads only cost (7 s on one, over a minute on two busy cores)
    try:
        seeds = fz.make_seeds(bundled, fz.SMALL_SEEDS)
        res = fz.run(bundled, seeds, runs=300, seed=44, modes={"crc": 3, "check": 1})
    finally:
        torch.set_num_threads(threads)
    assert res["inputs"] == 300 and res["crc_valid_inputs"] >= 295
    assert res["findings"] == []
    # the run reached every stage: the header check, the field checks behind it, and both streams' checks
    keys = " | ".join(k for o in res["outcomes"].values() for k in o)
    for stage in ("header was altered", "z stream", "y stream", "corrupted .flic header"):
        assert stage in keys, stage
