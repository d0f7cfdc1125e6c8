"""The ``.flic`` container: one compressed image per file. The byte layout is specified in docs/format.md.

Every multi-byte integer is little-endian. A reader checks, in this order and before allocating anything that
depends on the content: the minimum size, the magic, the format version, the header's own bounds, that the
stream lengths add up to the file size exactly, and the CRC-32 over the whole file; only then are the fields
interpreted. Image dimensions are bounded (:data:`MAX_SIDE`, :data:`MAX_PIXELS`), so a decoder never allocates
more than those bounds imply.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field

from .errors import FormatError

MAGIC = b"FLIC"
VERSION = 1
MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 27  # 134 M pixels (e.g. 16000 x 8000)
MAX_STREAMS = 16
MAX_NAME = 64

#: numeric modes: how the decoder must compute entropy parameters to reproduce the encoder
NUMERIC_MODES = {0: "cpu-fp32-single-thread"}

_FIXED = struct.Struct("<4sBBH")  # magic, version, flags, header length
_BODY = struct.Struct("<16sIIBBHHdB8sB")  # fingerprint, H, W, channels, bit depth, pad bottom, pad right,
#                                           quality, numeric mode, latent checksum, number of streams
_CRC = struct.Struct("<I")
MIN_SIZE = _FIXED.size + 1 + _BODY.size + _CRC.size


@dataclass
class FlicFile:
    """Decoded header plus the entropy-coded streams."""

    model: str
    fingerprint: bytes
    height: int
    width: int
    streams: list = field(default_factory=list)
    channels: int = 3
    bit_depth: int = 8
    pad_bottom: int = 0
    pad_right: int = 0
    quality: float = math.nan
    numeric_mode: int = 0
    checksum: bytes = b"\0" * 8
    flags: int = 0

    @property
    def num_pixels(self) -> int:
        return self.height * self.width


def _check_dims(h: int, w: int, source: str) -> None:
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE) or h * w > MAX_PIXELS:
        raise FormatError(f"{source}: image size {w}x{h} is outside the supported range "
                          f"(sides 1..{MAX_SIDE}, at most {MAX_PIXELS} pixels)")


def pack(f: FlicFile) -> bytes:
    """Serialize ``f`` (validating it) to the bytes of a ``.flic`` file."""
    name = f.model.encode("ascii")
    if not 1 <= len(name) <= MAX_NAME:
        raise ValueError(f"model name must be 1..{MAX_NAME} ASCII characters")
    if len(f.fingerprint) != 16 or len(f.checksum) != 8:
        raise ValueError("fingerprint must be 16 bytes and checksum 8 bytes")
    if not 1 <= len(f.streams) <= MAX_STREAMS:
        raise ValueError(f"a file holds 1..{MAX_STREAMS} streams")
    _check_dims(f.height, f.width, "image")
    body = _BODY.pack(f.fingerprint, f.height, f.width, f.channels, f.bit_depth, f.pad_bottom, f.pad_right,
                      float(f.quality), f.numeric_mode, f.checksum, len(f.streams))
    lengths = b"".join(struct.pack("<I", len(s)) for s in f.streams)
    header_len = _FIXED.size + 1 + len(name) + len(body) + len(lengths)
    out = _FIXED.pack(MAGIC, VERSION, f.flags, header_len) + bytes([len(name)]) + name + body + lengths
    out += b"".join(bytes(s) for s in f.streams)
    return out + _CRC.pack(zlib.crc32(out))


def unpack(data: bytes, source: str = "input") -> FlicFile:
    """Parse and verify a ``.flic`` file; raises :class:`FormatError` with a one-line reason."""
    data = bytes(data)
    if len(data) < _FIXED.size:
        raise FormatError(f"{source}: not a .flic file ({len(data)} bytes, too short)")
    magic, version, flags, header_len = _FIXED.unpack_from(data, 0)
    if magic != MAGIC:
        raise FormatError(f"{source}: not a .flic file (wrong magic bytes)")
    if version != VERSION:
        raise FormatError(f"{source}: unsupported .flic format version {version} (this fastlic reads version "
                          f"{VERSION})")
    if flags != 0:
        raise FormatError(f"{source}: unsupported .flic flags 0x{flags:02x}")
    if len(data) < MIN_SIZE:
        raise FormatError(f"{source}: truncated .flic file ({len(data)} bytes)")
    if not MIN_SIZE - _CRC.size <= header_len <= len(data) - _CRC.size:
        raise FormatError(f"{source}: corrupted .flic header (header length {header_len})")
    # the CRC covers everything, so check it before trusting any other field
    (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(data[: -_CRC.size]) != crc:
        raise FormatError(f"{source}: corrupted or truncated .flic file (CRC mismatch)")
    pos = _FIXED.size
    name_len = data[pos]
    pos += 1
    if not 1 <= name_len <= MAX_NAME or pos + name_len + _BODY.size > header_len:
        raise FormatError(f"{source}: corrupted .flic header (model name)")
    try:
        model = data[pos : pos + name_len].decode("ascii")
    except UnicodeDecodeError:
        raise FormatError(f"{source}: corrupted .flic header (model name)") from None
    pos += name_len
    (fingerprint, h, w, channels, bit_depth, pad_b, pad_r, quality, mode, checksum,
     n_streams) = _BODY.unpack_from(data, pos)
    pos += _BODY.size
    if not 1 <= n_streams <= MAX_STREAMS or pos + 4 * n_streams != header_len:
        raise FormatError(f"{source}: corrupted .flic header (stream count {n_streams})")
    lengths = struct.unpack_from(f"<{n_streams}I", data, pos)
    if sum(lengths) != len(data) - header_len - _CRC.size:
        raise FormatError(f"{source}: corrupted or truncated .flic file (stream lengths do not match the size)")
    _check_dims(h, w, source)
    if channels != 3 or bit_depth != 8:
        raise FormatError(f"{source}: unsupported image layout ({channels} channels, {bit_depth} bits)")
    if mode not in NUMERIC_MODES:
        raise FormatError(f"{source}: unknown numeric mode {mode}")
    streams, pos = [], header_len
    for n in lengths:
        streams.append(data[pos : pos + n])
        pos += n
    return FlicFile(model=model, fingerprint=fingerprint, height=h, width=w, streams=streams, channels=channels,
                    bit_depth=bit_depth, pad_bottom=pad_b, pad_right=pad_r, quality=quality, numeric_mode=mode,
                    checksum=checksum, flags=flags)


def header_size(f: FlicFile) -> int:
    """Bytes of the file that are not entropy-coded streams (header + CRC)."""
    return _FIXED.size + 1 + len(f.model.encode("ascii")) + _BODY.size + 4 * len(f.streams) + _CRC.size
