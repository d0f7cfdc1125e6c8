import struct
import time
import zlib

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
