import math
import struct

import pytest

from fastlic import container
from fastlic.container import FlicFile, pack, unpack
from fastlic.errors import FormatError


def _file(**kw):
    base = dict(model="mlicpp-tiny", fingerprint=bytes(range(16)), height=17, width=1031,
                streams=[b"\x01\x02\x03\x04" * 5, b"\x09" * 8], pad_bottom=47, pad_right=57, quality=0.5,
                checksum=b"abcdefgh")
    base.update(kw)
    return FlicFile(**base)


def test_round_trip():
    f = _file()
    g = unpack(pack(f))
    assert (g.model, g.fingerprint, g.height, g.width, g.streams, g.pad_bottom, g.pad_right, g.quality,
            g.checksum) == (f.model, f.fingerprint, f.height, f.width, f.streams, f.pad_bottom, f.pad_right,
                            f.quality, f.checksum)
    assert math.isnan(unpack(pack(_file(quality=math.nan))).quality)
    assert container.header_size(f) == len(pack(f)) - sum(len(s) for s in f.streams)


def test_every_truncation_is_refused():
    data = pack(_file())
    for n in range(len(data)):
        with pytest.raises(FormatError):
            unpack(data[:n])


def test_every_single_byte_flip_is_refused():
    data = bytearray(pack(_file()))
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            bad = bytearray(data)
            bad[i] ^= bit
            with pytest.raises(FormatError):
                unpack(bytes(bad))


def _recrc(body: bytes) -> bytes:
    import zlib

    return body + struct.pack("<I", zlib.crc32(body))


def test_fields_are_validated_even_with_a_valid_crc():
    data = pack(_file())
    body = bytearray(data[:-4])
    bad_version = bytearray(body)
    bad_version[4] = 9
    with pytest.raises(FormatError, match="version 9"):
        unpack(_recrc(bytes(bad_version)))
    name_len = body[8]
    hw = 8 + 1 + name_len + 16
    for h, w in [(0, 5), (5, 0), (1 << 20, 5), (40000, 40000)]:
        bad = bytearray(body)
        bad[hw : hw + 8] = struct.pack("<II", h, w)
        with pytest.raises(FormatError, match="outside the supported range"):
            unpack(_recrc(bytes(bad)))
    bad = bytearray(body)
    bad[-len(b"".join(_file().streams)) - 8 : -len(b"".join(_file().streams)) - 4] = struct.pack("<I", 2 ** 31)
    with pytest.raises(FormatError):
        unpack(_recrc(bytes(bad)))
    with pytest.raises(FormatError, match="magic"):
        unpack(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(FormatError):
        unpack(b"")
