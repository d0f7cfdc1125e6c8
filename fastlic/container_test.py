import math
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastlic import container
from fastlic.container import FlicFile, Tile, pack, tile_grid, unpack
from fastlic.errors import FormatError


def _file(tiled=False, **kw):
    h, w = kw.pop("height", 17), kw.pop("width", 1031)
    th, tw, ov = (256, 256, 16) if tiled else (0, 0, 0)
    tiles = [Tile(*r, checksum=bytes([i]) * 8, streams=[bytes([i, 1, 2, 3]) * 5, b"\x09" * (i + 1)])
             for i, r in enumerate(tile_grid(h, w, th, tw, ov))]
    base = dict(model="mlicpp-tiny", fingerprint=bytes(range(16)), height=h, width=w, tiles=tiles, quality=0.5,
                tile_h=th, tile_w=tw, overlap=ov)
    base.update(kw)
    return FlicFile(**base)


@pytest.mark.parametrize("tiled", [False, True])
def test_round_trip(tiled):
    f = _file(tiled)
    g = unpack(pack(f))
    assert (g.model, g.fingerprint, g.height, g.width, g.quality, g.tile_h, g.overlap) == \
           (f.model, f.fingerprint, f.height, f.width, f.quality, f.tile_h, f.overlap)
    assert [(t.y0, t.x0, t.height, t.width, t.checksum, t.streams) for t in g.tiles] == \
           [(t.y0, t.x0, t.height, t.width, t.checksum, t.streams) for t in f.tiles]
    assert math.isnan(unpack(pack(_file(quality=math.nan))).quality)
    data = pack(f)
    assert container.header_size(f) == len(data) - sum(len(s) for t in f.tiles for s in t.streams)


@pytest.mark.parametrize("h,w,t,o", [(1000, 1000, 512, 0), (1000, 1000, 512, 32), (100, 5000, 256, 64),
                                     (64, 64, 64, 0), (513, 1, 128, 8)])
def test_tile_grid_covers_the_image(h, w, t, o):
    seen = [[0] * w for _ in range(h)] if h * w <= 10 ** 5 else None
    regions = tile_grid(h, w, t, t, o)
    for y0, x0, th, tw in regions:
        assert th >= 1 and tw >= 1 and y0 + th <= h and x0 + tw <= w and th <= t and tw <= t
        if seen is not None:
            for y in range(y0, y0 + th):
                for x in range(x0, x0 + tw):
                    seen[y][x] = 1
    if seen is not None:
        assert all(all(r) for r in seen)
    ys = sorted({r[0] for r in regions})
    assert ys[-1] + [r[2] for r in regions if r[0] == ys[-1]][0] == h


def test_every_truncation_is_refused():
    for tiled in (False, True):
        data = pack(_file(tiled))
        for n in range(len(data)):
            with pytest.raises(FormatError):
                unpack(data[:n])


def test_every_single_bit_flip_is_refused():
    data = bytearray(pack(_file()))
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            bad = bytearray(data)
            bad[i] ^= bit
            with pytest.raises(FormatError):
                unpack(bytes(bad))


def _recrc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


_NAME_END = 4 + 1 + 1 + 4 + 1 + len("mlicpp-tiny")  # magic, version, flags, header length, name length, name
#: offsets of the body fields after the model name
_FIELDS = {"height": (16, "<I"), "width": (20, "<I"), "channels": (24, "<B"), "bit_depth": (25, "<B"),
           "pad": (26, "<H"), "mode": (36, "<B"), "tile_h": (37, "<I"), "tile_w": (41, "<I"), "overlap": (45, "<H"),
           "n_streams": (47, "<B"), "n_tiles": (48, "<I")}


def _set(data: bytes, name: str, value: int) -> bytes:
    off, fmt = _FIELDS[name]
    body = bytearray(data[:-4])
    struct.pack_into(fmt, body, _NAME_END + off, value)
    return _recrc(bytes(body))


@given(field=st.sampled_from(sorted(_FIELDS)), value=st.integers(min_value=0, max_value=2 ** 32 - 1),
       tiled=st.booleans())
@settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
def test_crafted_fields_with_valid_crc_are_refused_or_consistent(field, value, tiled):
    """Fields rewritten (CRC recomputed) either give a FormatError or a file that still describes itself
    consistently (bounded dimensions, streams that add up); never another exception."""
    data = pack(_file(tiled))
    off, fmt = _FIELDS[field]
    value &= (1 << (8 * struct.calcsize(fmt))) - 1
    try:
        f = unpack(_set(data, field, value))
    except FormatError:
        return
    assert 1 <= f.height <= container.MAX_SIDE and f.height * f.width <= container.MAX_PIXELS
    assert sum(len(s) for t in f.tiles for s in t.streams) == len(data) - container.header_size(f)


def test_specific_bad_fields():
    data = pack(_file())
    body = bytearray(data[:-4])
    body[4] = 9
    with pytest.raises(FormatError, match="version 9"):
        unpack(_recrc(bytes(body)))
    for h, w in [(0, 5), (5, 0), (1 << 20, 5), (40000, 40000)]:
        with pytest.raises(FormatError, match="outside the supported range"):
            unpack(_set(_set(data, "height", h), "width", w))
    with pytest.raises(FormatError, match="magic"):
        unpack(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(FormatError):
        unpack(b"")
    with pytest.raises(FormatError, match="tile"):
        unpack(_set(data, "n_tiles", 2))


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=1000)
def test_random_bytes_never_crash(blob):
    try:
        unpack(blob)
    except FormatError:
        pass
    try:
        unpack(b"FLIC\x01\x00" + blob)
    except FormatError:
        pass


def test_version_1_files_are_refused_by_name():
    """Files of fastlic 0.1 (format 1: a numeric mode bound to the encoder's CPU kernels) are refused with a
    message that names the version and says what to do; the CLI prints it as one line."""
    data = bytearray(pack(_file())[:-4])
    data[4] = 1
    with pytest.raises(FormatError, match=r"photo\.flic: \.flic format version 1 .* re-encode"):
        unpack(_recrc(bytes(data)), "photo.flic")


def test_unknown_numeric_modes_are_refused():
    from fastlic import numerics

    assert set(numerics.NUMERIC_MODES) == {numerics.PORTABLE_MODE, numerics.INTEGER_MODE}
    for mode in (0, 1, 4, 255):
        with pytest.raises(FormatError, match=f"unknown numeric mode {mode}"):
            unpack(_set(pack(_file()), "mode", mode))
    # the integer mode is a known mode: it reads, and the decoder's model decides whether it can decode it
    assert unpack(_set(pack(_file()), "mode", numerics.INTEGER_MODE)).numeric_mode == numerics.INTEGER_MODE
