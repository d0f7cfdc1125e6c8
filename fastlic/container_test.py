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
    tiles = [Tile(*r, checksums=[bytes([i]) * 8, bytes([i, 7]) * 4], streams=[bytes([i, 1, 2, 3]) * 5, b"\x09" * (i + 1)])
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
    assert [(t.y0, t.x0, t.height, t.width, t.checksums, t.streams) for t in g.tiles] == \
           [(t.y0, t.x0, t.height, t.width, t.checksums, t.streams) for t in f.tiles]
    assert math.isnan(unpack(pack(_file(quality=math.nan))).quality)
    data = pack(f)
    assert container.header_size(f) == len(data) - sum(len(s) for t in f.tiles for s in t.streams)
    assert (g.icc, g.exif, g.flags) == (b"", b"", 0) and g.digest() == f.digest()


#: a minimal valid ICC header (128 bytes: size, the 'acsp' signature at 36) plus a tag count, and EXIF as TIFF
_ICC = (132).to_bytes(4, "big") + bytes(32) + b"acsp" + bytes(88) + bytes(4)
_EXIF = b"II*\0\x08\0\0\0" + bytes(6)


@pytest.mark.parametrize("icc,exif", [(_ICC, b""), (b"", _EXIF), (_ICC, b"Exif\0\0" + _EXIF)])
def test_metadata_round_trip(icc, exif):
    """ICC and EXIF bytes come back exactly; they are under the CRC (any flipped byte is refused) but not
    part of the header digest (they do not change the reconstruction)."""
    plain, f = pack(_file()), _file(icc=icc, exif=exif)
    data = pack(f)
    g = unpack(data)
    assert (g.icc, g.exif, g.flags) == (icc, exif, container.FLAG_METADATA)
    assert g.digest() == unpack(plain).digest()
    assert [t.streams for t in g.tiles] == [t.streams for t in f.tiles]
    assert len(data) == len(plain) + 8 + len(icc) + len(exif)
    assert container.header_size(g) == len(plain) - sum(len(s) for t in f.tiles for s in t.streams) + 8
    at = data.index(icc or exif) + 3
    bad = bytearray(data)
    bad[at] ^= 0x10
    with pytest.raises(FormatError, match="CRC"):
        unpack(bytes(bad))


def test_metadata_is_validated_and_bounded():
    bad_icc = [bytes(len(_ICC)), (4096).to_bytes(4, "big") + _ICC[4:], _ICC[:36] + b"ACSP" + _ICC[40:]]
    bad_exif = [b"JFIF" + bytes(len(_EXIF) - 4), b"Exif\0\0MM" + bytes(len(_EXIF) - 8)]
    for icc, exif, what in [(b, b"", "ICC") for b in bad_icc] + [(b"", b, "EXIF") for b in bad_exif]:
        with pytest.raises(ValueError, match=what):
            pack(_file(icc=icc, exif=exif))
        # written anyway (a crafted file, CRC valid): the reader refuses it by name
        good = pack(_file(icc=_ICC if icc else b"", exif=_EXIF if exif else b""))
        crafted = good.replace(_ICC, icc) if icc else good.replace(_EXIF, exif)
        with pytest.raises(FormatError, match=rf"x\.flic: the {what} "):
            unpack(_recrc(crafted[:-4]), "x.flic")
    for short in (dict(icc=_ICC[:100]), dict(exif=_EXIF[:5])):
        with pytest.raises(ValueError, match="ICC" if "icc" in short else "EXIF"):
            pack(_file(**short))
    big = (container.MAX_METADATA + 8).to_bytes(4, "big") + _ICC[4:] + bytes(container.MAX_METADATA - 120)
    with pytest.raises(ValueError, match="16 MiB"):
        pack(_file(icc=big))
    # a metadata length in the header that claims more than the limit, CRC valid: refused before any allocation
    data = bytearray(pack(_file(icc=_ICC))[:-4])
    struct.pack_into("<I", data, _NAME_END + container._BODY.size + 8, container.MAX_METADATA + 1)
    with pytest.raises(FormatError, match="metadata"):
        unpack(_recrc(bytes(data)))


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


def _recheck(body: bytes) -> bytes:
    """``body`` (a file without its CRC) with its header check recomputed, as a tool that knows the format would."""
    end = 11 + body[10] + container._BODY.size
    return body[:end] + container.header_digest(body[:5] + body[10:end])[:8] + body[end + 8 :]


def _set(data: bytes, name: str, value: int, recheck: bool = True) -> bytes:
    """Field ``name`` rewritten, the CRC recomputed and (``recheck``) the header check too."""
    off, fmt = _FIELDS[name]
    body = bytearray(data[:-4])
    struct.pack_into(fmt, body, _NAME_END + off, value)
    return _recrc(_recheck(bytes(body)) if recheck else bytes(body))


@pytest.mark.parametrize("field", sorted(_FIELDS) + ["quality", "fingerprint", "name"])
def test_an_edited_header_field_is_refused_by_name(field):
    """Any field that shapes the reconstruction, edited with the CRC rewritten (what any tool that edits a
    file does): refused before anything is decoded, saying that the header was altered."""
    for tiled in (False, True):
        data = pack(_file(tiled))
        body = bytearray(data[:-4])
        if field == "quality":
            struct.pack_into("<d", body, _NAME_END + 28, 0.75)
        elif field == "fingerprint":
            body[_NAME_END + 3] ^= 1
        elif field == "name":
            body[_NAME_END - 1] = ord("s")  # mlicpp-tinY -> mlicpp-tins
        else:
            off, fmt = _FIELDS[field]
            (old,) = struct.unpack_from(fmt, body, _NAME_END + off)
            struct.pack_into(fmt, body, _NAME_END + off, old ^ 1)
        with pytest.raises(FormatError, match=r"photo\.flic: the \.flic header was altered after encoding"):
            unpack(_recrc(bytes(body)), "photo.flic")


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
    body[4], body[5] = container.VERSION, 0x02
    with pytest.raises(FormatError, match="flags 0x02"):
        unpack(_recrc(bytes(body)))
    body[5] = container.FLAG_METADATA  # the metadata bit without a metadata section
    with pytest.raises(FormatError):
        unpack(_recrc(_recheck(bytes(body))))
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


def _version_2_file() -> bytes:
    """A format-2 file as fastlic 0.1 wrote it (docs/format.md of that version: one 8-byte checksum per tile
    before its stream lengths, no header check)."""
    name = b"mlicpp-tiny"
    body = container._BODY.pack(bytes(16), 17, 31, 3, 8, 64, 2.0, 2, 0, 0, 0, 2, 1)
    table = bytes(8) + struct.pack("<2I", 12, 4)
    head = struct.pack("<4sBBI", b"FLIC", 2, 0, 10 + 1 + len(name) + len(body) + len(table))
    return _recrc(head + bytes([len(name)]) + name + body + table + bytes(16))


def test_version_2_files_are_refused_by_name():
    """Format 2 (fastlic 0.1: the checksum covered the coded integers but not the header) is refused with a
    message naming the version and what to do, before any other field is read."""
    with pytest.raises(FormatError, match=r"old\.flic: \.flic format version 2 .* covered by the checksum.*"
                                          r"re-encode"):
        unpack(_version_2_file(), "old.flic")


def test_unknown_numeric_modes_are_refused():
    from fastlic import numerics

    assert set(numerics.NUMERIC_MODES) == {numerics.PORTABLE_MODE, numerics.INTEGER_MODE}
    for mode in (0, 1, 4, 255):
        with pytest.raises(FormatError, match=f"unknown numeric mode {mode}"):
            unpack(_set(pack(_file()), "mode", mode))
    # the integer mode is a known mode: it reads, and the decoder's model decides whether it can decode it
    assert unpack(_set(pack(_file()), "mode", numerics.INTEGER_MODE)).numeric_mode == numerics.INTEGER_MODE
