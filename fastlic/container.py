"""The ``.flic`` container: one compressed image per file, optionally as a grid of independently coded tiles.
The byte layout is specified in docs/format.md.

Every multi-byte integer is little-endian. A reader checks, in this order and before allocating anything that
depends on the content: the minimum size, the magic, the format version, the header length, the CRC-32 over the
whole file, the header's internal consistency (name, tile grid, stream table) and that the stream lengths add up
to the file size exactly; only then are the fields interpreted. Image dimensions are bounded (:data:`MAX_SIDE`,
:data:`MAX_PIXELS`), so a decoder never allocates more than those bounds imply.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field

from . import numerics
from .errors import FormatError

MAGIC = b"FLIC"
#: version 2: portable numeric mode (fastlic.numerics), guard flags at the head of each stream, checksum over the
#: coded integers. Version 1 files (machine-bound float32 mode, checksum over float latents) are refused.
VERSION = 2
MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 27  # 134 M pixels (e.g. 16000 x 8000)
MAX_STREAMS = 16
MAX_NAME = 64
MIN_TILE = 64
MAX_TILES = 1 << 16

#: numeric modes: how the decoder must compute entropy parameters to reproduce the encoder (fastlic.numerics)
NUMERIC_MODES = numerics.NUMERIC_MODES

_FIXED = struct.Struct("<4sBBI")  # magic, version, flags, header length
# fingerprint, H, W, channels, bit depth, pad multiple, quality, numeric mode, tile H, tile W, overlap,
# streams per tile, number of tiles
_BODY = struct.Struct("<16sIIBBHdBIIHBI")
_TILE_HEAD = struct.Struct("<8s")  # latent checksum of the tile
_CRC = struct.Struct("<I")
MIN_SIZE = _FIXED.size + 1 + 1 + _BODY.size + _TILE_HEAD.size + 4 + _CRC.size


@dataclass
class Tile:
    """One independently coded rectangle: its region in the image, its latent checksum and its streams."""

    y0: int
    x0: int
    height: int
    width: int
    checksum: bytes = b"\0" * 8
    streams: list = field(default_factory=list)


def tile_grid(h: int, w: int, tile_h: int, tile_w: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Regions ``(y0, x0, height, width)`` of the tiles, row-major. ``tile_h == 0`` means one tile.

    Tiles start every ``tile - overlap`` pixels; the last tile of a row or column is shortened to the image.
    """
    if tile_h == 0 or tile_w == 0:
        return [(0, 0, h, w)]

    def starts(n, t):
        step = t - overlap
        count = max(1, math.ceil((n - overlap) / step)) if n > t else 1
        return [min(i * step, max(n - 1, 0)) for i in range(count)]

    out = []
    for y0 in starts(h, tile_h):
        for x0 in starts(w, tile_w):
            out.append((y0, x0, min(tile_h, h - y0), min(tile_w, w - x0)))
    return out


@dataclass
class FlicFile:
    """Decoded header plus the entropy-coded streams of every tile."""

    model: str
    fingerprint: bytes
    height: int
    width: int
    tiles: list = field(default_factory=list)
    channels: int = 3
    bit_depth: int = 8
    pad_multiple: int = 64
    quality: float = math.nan
    numeric_mode: int = numerics.PORTABLE_MODE
    tile_h: int = 0
    tile_w: int = 0
    overlap: int = 0
    flags: int = 0

    @property
    def num_pixels(self) -> int:
        return self.height * self.width

    @property
    def streams(self) -> list:
        """Streams of a single-tile file (see :meth:`stream_bytes` for sizes of tiled files)."""
        if len(self.tiles) != 1:
            raise ValueError("a tiled file has streams per tile; use .tiles or stream_bytes()")
        return self.tiles[0].streams

    def stream_bytes(self) -> list[int]:
        """Bytes per stream index, summed over tiles."""
        n = len(self.tiles[0].streams)
        return [sum(len(t.streams[k]) for t in self.tiles) for k in range(n)]


def _check_dims(h: int, w: int, source: str) -> None:
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE) or h * w > MAX_PIXELS:
        raise FormatError(f"{source}: image size {w}x{h} is outside the supported range "
                          f"(sides 1..{MAX_SIDE}, at most {MAX_PIXELS} pixels)")


def _check_grid(h, w, tile_h, tile_w, overlap, source):
    if (tile_h == 0) != (tile_w == 0):
        raise FormatError(f"{source}: corrupted .flic header (tile size {tile_w}x{tile_h})")
    if tile_h:
        if not (MIN_TILE <= tile_h <= MAX_SIDE and MIN_TILE <= tile_w <= MAX_SIDE):
            raise FormatError(f"{source}: corrupted .flic header (tile size {tile_w}x{tile_h})")
        if 2 * overlap >= min(tile_h, tile_w):
            raise FormatError(f"{source}: corrupted .flic header (tile overlap {overlap})")
        ny = max(1, math.ceil((h - overlap) / (tile_h - overlap))) if h > tile_h else 1
        nx = max(1, math.ceil((w - overlap) / (tile_w - overlap))) if w > tile_w else 1
        if ny * nx > MAX_TILES:
            raise FormatError(f"{source}: too many tiles ({ny * nx})")
        return ny * nx
    if overlap:
        raise FormatError(f"{source}: corrupted .flic header (overlap without tiles)")
    return 1


def pack(f: FlicFile) -> bytes:
    """Serialize ``f`` (validating it) to the bytes of a ``.flic`` file."""
    name = f.model.encode("ascii")
    if not 1 <= len(name) <= MAX_NAME:
        raise ValueError(f"model name must be 1..{MAX_NAME} ASCII characters")
    if len(f.fingerprint) != 16:
        raise ValueError("fingerprint must be 16 bytes")
    _check_dims(f.height, f.width, "image")
    n_tiles = _check_grid(f.height, f.width, f.tile_h, f.tile_w, f.overlap, "image")
    if len(f.tiles) != n_tiles:
        raise ValueError(f"expected {n_tiles} tiles, got {len(f.tiles)}")
    n_streams = len(f.tiles[0].streams)
    if not 1 <= n_streams <= MAX_STREAMS or any(len(t.streams) != n_streams for t in f.tiles):
        raise ValueError(f"every tile must hold the same number (1..{MAX_STREAMS}) of streams")
    body = _BODY.pack(f.fingerprint, f.height, f.width, f.channels, f.bit_depth, f.pad_multiple, float(f.quality),
                      f.numeric_mode, f.tile_h, f.tile_w, f.overlap, n_streams, n_tiles)
    table = b"".join(_TILE_HEAD.pack(t.checksum) + struct.pack(f"<{n_streams}I", *map(len, t.streams))
                     for t in f.tiles)
    header_len = _FIXED.size + 1 + len(name) + len(body) + len(table)
    out = _FIXED.pack(MAGIC, VERSION, f.flags, header_len) + bytes([len(name)]) + name + body + table
    out += b"".join(bytes(s) for t in f.tiles for s in t.streams)
    return out + _CRC.pack(zlib.crc32(out))


def unpack(data: bytes, source: str = "input") -> FlicFile:
    """Parse and verify a ``.flic`` file; raises :class:`FormatError` with a one-line reason."""
    data = bytes(data)
    if len(data) < _FIXED.size:
        raise FormatError(f"{source}: not a .flic file ({len(data)} bytes, too short)")
    magic, version, flags, header_len = _FIXED.unpack_from(data, 0)
    if magic != MAGIC:
        raise FormatError(f"{source}: not a .flic file (wrong magic bytes)")
    if version == 1:
        raise FormatError(f"{source}: .flic format version 1 (written by fastlic before 0.2, whose files decode "
                          f"only on the encoder's kind of CPU) is no longer read; re-encode the original image")
    if version != VERSION:
        raise FormatError(f"{source}: unsupported .flic format version {version} (this fastlic reads version "
                          f"{VERSION})")
    if flags != 0:
        raise FormatError(f"{source}: unsupported .flic flags 0x{flags:02x}")
    if len(data) < MIN_SIZE:
        raise FormatError(f"{source}: truncated .flic file ({len(data)} bytes)")
    if not MIN_SIZE - _CRC.size <= header_len <= len(data) - _CRC.size:
        raise FormatError(f"{source}: corrupted or truncated .flic file (header length {header_len})")
    # the CRC covers everything, so check it before trusting any other field
    (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(memoryview(data)[: -_CRC.size]) != crc:
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
    (fingerprint, h, w, channels, bit_depth, pad_multiple, quality, mode, tile_h, tile_w, overlap, n_streams,
     n_tiles) = _BODY.unpack_from(data, pos)
    pos += _BODY.size
    _check_dims(h, w, source)
    if channels != 3 or bit_depth != 8:
        raise FormatError(f"{source}: unsupported image layout ({channels} channels, {bit_depth} bits)")
    if mode not in NUMERIC_MODES:
        raise FormatError(f"{source}: unknown numeric mode {mode}")
    if pad_multiple not in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        raise FormatError(f"{source}: corrupted .flic header (padding multiple {pad_multiple})")
    expected_tiles = _check_grid(h, w, tile_h, tile_w, overlap, source)
    if n_tiles != expected_tiles or not 1 <= n_streams <= MAX_STREAMS:
        raise FormatError(f"{source}: corrupted .flic header (tile table)")
    entry = _TILE_HEAD.size + 4 * n_streams
    if pos + n_tiles * entry != header_len:
        raise FormatError(f"{source}: corrupted .flic header (tile table size)")
    lengths = []
    for _ in range(n_tiles):
        (checksum,) = _TILE_HEAD.unpack_from(data, pos)
        lens = struct.unpack_from(f"<{n_streams}I", data, pos + _TILE_HEAD.size)
        lengths.append((checksum, lens))
        pos += entry
    if sum(sum(lens) for _, lens in lengths) != len(data) - header_len - _CRC.size:
        raise FormatError(f"{source}: corrupted or truncated .flic file (stream lengths do not match the size)")
    tiles, pos = [], header_len
    for (y0, x0, th, tw), (checksum, lens) in zip(tile_grid(h, w, tile_h, tile_w, overlap), lengths):
        streams = []
        for n in lens:
            streams.append(data[pos : pos + n])
            pos += n
        tiles.append(Tile(y0, x0, th, tw, checksum, streams))
    return FlicFile(model=model, fingerprint=fingerprint, height=h, width=w, tiles=tiles, channels=channels,
                    bit_depth=bit_depth, pad_multiple=pad_multiple, quality=quality, numeric_mode=mode,
                    tile_h=tile_h, tile_w=tile_w, overlap=overlap, flags=flags)


def header_size(f: FlicFile) -> int:
    """Bytes of the file that are not entropy-coded streams (header, tile table and CRC)."""
    n_streams = len(f.tiles[0].streams)
    return (_FIXED.size + 1 + len(f.model.encode("ascii")) + _BODY.size
            + len(f.tiles) * (_TILE_HEAD.size + 4 * n_streams) + _CRC.size)
