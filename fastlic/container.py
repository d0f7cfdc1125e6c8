"""The ``.flic`` container: one compressed image per file, optionally as a grid of independently coded tiles.
The byte layout is specified in docs/format.md.

Every multi-byte integer is little-endian. A reader checks, in this order and before allocating anything that
depends on the content: the minimum size, the magic, the format version, the header length, the CRC-32 over the
whole file, the **header check** (a BLAKE2b digest of every field that shapes the reconstruction:
:func:`header_digest`), the header's internal consistency (name, image and tile geometry, stream table, metadata
sizes) and that the lengths add up to the file size exactly; only then are the fields interpreted. Image
dimensions are bounded (:data:`MAX_SIDE`, :data:`MAX_PIXELS`), so a decoder never allocates more than those
bounds imply.

The header digest also enters the checksum of every stream (:func:`stream_checksum`), which the decoder
(:mod:`fastlic.codec`) verifies stream by stream in decode order: a header whose check was rewritten as well as
its CRC is still refused, right after the small z stream and before the costly y stream.
"""

from __future__ import annotations

import hashlib
import math
import struct
import zlib
from dataclasses import dataclass, field

from . import numerics
from .errors import FormatError

MAGIC = b"FLIC"
#: version 3: the header fields that shape the reconstruction under a BLAKE2b check that also enters each
#: stream's checksum; one checksum per stream (verified in decode order); ICC and EXIF metadata. Version 2
#: (checksum over the coded integers only, one per tile) and version 1 (machine-bound float32 mode) are refused
#: by version with a message.
VERSION = 3
MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 27  # 134 M pixels (e.g. 16000 x 8000)
MAX_STREAMS = 16
MAX_NAME = 64
MIN_TILE = 64
MAX_TILES = 1 << 16
#: most bytes of metadata (ICC profile and EXIF together) a file may carry
MAX_METADATA = 16 << 20

#: numeric modes: how the decoder must compute entropy parameters to reproduce the encoder (fastlic.numerics)
NUMERIC_MODES = numerics.NUMERIC_MODES

_FIXED = struct.Struct("<4sBBI")  # magic, version, flags, header length
# fingerprint, H, W, channels, bit depth, pad multiple, quality, numeric mode, tile H, tile W, overlap,
# streams per tile, number of tiles
_BODY = struct.Struct("<16sIIBBHdBIIHBI")
_CHECK = struct.Struct("<8s")  # header check
_META = struct.Struct("<II")  # ICC profile length, EXIF length (with FLAG_METADATA only)
_ENTRY = struct.Struct("<I8s")  # per stream of a tile: byte length, checksum
_CRC = struct.Struct("<I")
MIN_SIZE = _FIXED.size + 1 + 1 + _BODY.size + _CHECK.size + _ENTRY.size + _CRC.size
#: flags bit 0: the file carries the metadata section (ICC and EXIF lengths after the header check); no other
#: bit is defined
FLAG_METADATA = 0x01


@dataclass
class Tile:
    """One independently coded rectangle: its region in the image, its streams and the checksum of each
    (:func:`stream_checksum`, in the order of ``streams``)."""

    y0: int
    x0: int
    height: int
    width: int
    checksums: list = field(default_factory=list)
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
    #: an ICC colour profile (as found in the input image; not applied by the codec), validated by :func:`check_icc`
    icc: bytes = b""
    #: EXIF bytes (a TIFF structure, optionally after ``Exif\0\0``), validated by :func:`check_exif`
    exif: bytes = b""

    @property
    def num_pixels(self) -> int:
        return self.height * self.width

    def digest(self) -> bytes:
        """:func:`header_digest` of this file's header fields."""
        return header_digest(_bound_bytes(self.model.encode("ascii"), self._body(len(self.tiles[0].streams))))

    def _flags(self) -> int:
        # the metadata bit follows from the metadata; no other bit is defined
        if self.flags & ~FLAG_METADATA:
            raise ValueError(f"unsupported flags 0x{self.flags:02x}")
        return FLAG_METADATA if (self.icc or self.exif) else 0

    def _body(self, n_streams: int) -> bytes:
        return _BODY.pack(self.fingerprint, self.height, self.width, self.channels, self.bit_depth,
                          self.pad_multiple, float(self.quality), self.numeric_mode, self.tile_h, self.tile_w,
                          self.overlap, n_streams, len(self.tiles))

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


def _bound_bytes(name: bytes, body: bytes) -> bytes:
    # magic and version, then the name length, the name and the body: every header byte up to the header check
    # but the flags and the header length, which only say whether and how much metadata follows (so a tool can
    # add or remove metadata without decoding)
    return MAGIC + bytes([VERSION]) + bytes([len(name)]) + name + body


def header_digest(bound: bytes) -> bytes:
    """BLAKE2b-256 of the header bytes that shape the reconstruction (docs/format.md, "Header check"): magic,
    version, model name (with its length), fingerprint, image size, channels, bit depth, padding
    multiple, quality, numeric mode, tile geometry, streams per tile and number of tiles. Its first 8 bytes are
    stored as the header check; all 32 enter every :func:`stream_checksum`."""
    return hashlib.blake2b(bound, digest_size=32).digest()


def stream_checksum(digest: bytes, tile: int, stream: int, length: int, coded: bytes) -> bytes:
    """Checksum of stream ``stream`` of tile ``tile`` (8 bytes): BLAKE2b-64 over the :func:`header_digest`,
    the tile index (u32), the stream index (u8), the stream's byte length (u32) and the digest of every integer
    coded in the stream (``coded``: :meth:`fastlic.entropy.coder.Encoder.digest`). A decoder recomputes it from
    what it decoded, so it fails when the stream, its length, its place or any bound header field differs from
    what the encoder wrote."""
    h = hashlib.blake2b(digest_size=8)
    h.update(bytes(digest) + struct.pack("<IBI", tile, stream, length) + bytes(coded))
    return h.digest()


def check_icc(data: bytes, source: str, error=FormatError) -> None:
    """An ICC profile: at least its 128-byte header, the ``acsp`` signature at offset 36 and a declared size
    (big-endian, offset 0) of at least 128 and at most its length (ICC.1:2022, 7.2)."""
    if not data:
        return
    size = int.from_bytes(data[:4], "big") if len(data) >= 4 else 0
    if len(data) < 128 or data[36:40] != b"acsp" or not 128 <= size <= len(data):
        raise error(f"{source}: the ICC profile is not valid ({len(data)} bytes, no ICC header)")


def check_exif(data: bytes, source: str, error=FormatError) -> None:
    """EXIF bytes: a TIFF header (``II*\\0`` or ``MM\\0*``), optionally after the ``Exif\\0\\0`` marker of
    JPEG's APP1 segment, as Pillow reads and writes them."""
    if not data:
        return
    tiff = data[6:] if data[:6] == b"Exif\0\0" else data
    if len(tiff) < 8 or tiff[:4] not in (b"II*\0", b"MM\0*"):
        raise error(f"{source}: the EXIF data is not valid ({len(data)} bytes, no TIFF header)")


def check_metadata(icc: bytes, exif: bytes, source: str, error=FormatError) -> None:
    """Bounds (at most :data:`MAX_METADATA` bytes together) and validity of the metadata."""
    if len(icc) + len(exif) > MAX_METADATA:
        raise error(f"{source}: {len(icc) + len(exif)} bytes of ICC and EXIF metadata, above the limit of "
                    f"{MAX_METADATA >> 20} MiB")
    check_icc(icc, source, error)
    check_exif(exif, source, error)


def pack(f: FlicFile) -> bytes:
    """Serialize ``f`` (validating it) to the bytes of a ``.flic`` file; the stream checksums are taken as
    given (:func:`stream_checksum` computes them)."""
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
    if any(len(t.checksums) != n_streams or any(len(c) != 8 for c in t.checksums) for t in f.tiles):
        raise ValueError("every stream needs an 8-byte checksum")
    icc, exif = bytes(f.icc), bytes(f.exif)
    check_metadata(icc, exif, "image", ValueError)
    flags = f._flags()
    bound = _bound_bytes(name, f._body(n_streams))
    meta = _CHECK.pack(header_digest(bound)[:8]) + (_META.pack(len(icc), len(exif)) if flags else b"")
    table = b"".join(_ENTRY.pack(len(s), bytes(c)) for t in f.tiles for s, c in zip(t.streams, t.checksums))
    header_len = _FIXED.size + len(bound) - 5 + len(meta) + len(table) + len(icc) + len(exif)
    out = (_FIXED.pack(MAGIC, VERSION, flags, header_len) + bound[5:] + meta + table + icc + exif
           + b"".join(bytes(s) for t in f.tiles for s in t.streams))
    return out + _CRC.pack(zlib.crc32(out))


def unpack(data: bytes, source: str = "input") -> FlicFile:
    """Parse and verify a ``.flic`` file; raises :class:`FormatError` with a one-line reason. The checks and
    their order are those of docs/format.md ("Reading order and checks", steps 1-6)."""
    data = bytes(data)
    if len(data) < _FIXED.size:
        raise FormatError(f"{source}: not a .flic file ({len(data)} bytes, too short)")
    magic, version, flags, header_len = _FIXED.unpack_from(data, 0)
    if magic != MAGIC:
        raise FormatError(f"{source}: not a .flic file (wrong magic bytes)")
    if version == 1:
        raise FormatError(f"{source}: .flic format version 1 (written by fastlic before 0.2, whose files decode "
                          f"only on the encoder's kind of CPU) is no longer read; re-encode the original image")
    if version == 2:
        raise FormatError(f"{source}: .flic format version 2 (written by fastlic 0.1 before its header was "
                          f"covered by the checksum) is no longer read; decode it with that fastlic, or "
                          f"re-encode the original image")
    if version != VERSION:
        raise FormatError(f"{source}: unsupported .flic format version {version} (this fastlic reads version "
                          f"{VERSION})")
    if flags & ~FLAG_METADATA:
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
    meta_size = _CHECK.size + (_META.size if flags else 0)
    if not 1 <= name_len <= MAX_NAME or pos + 1 + name_len + _BODY.size + meta_size > header_len:
        raise FormatError(f"{source}: corrupted .flic header (model name)")
    body_end = pos + 1 + name_len + _BODY.size
    # an edit of any field that shapes the reconstruction, its CRC rewritten, stops here, before it is used
    (check,) = _CHECK.unpack_from(data, body_end)
    icc_len, exif_len = _META.unpack_from(data, body_end + _CHECK.size) if flags else (0, 0)
    if header_digest(data[:5] + data[pos:body_end])[:8] != check:
        raise FormatError(f"{source}: the .flic header was altered after encoding (its fields do not match "
                          f"the header check)")
    try:
        model = data[pos + 1 : pos + 1 + name_len].decode("ascii")
    except UnicodeDecodeError:
        raise FormatError(f"{source}: corrupted .flic header (model name)") from None
    if not model.isprintable():
        raise FormatError(f"{source}: corrupted .flic header (model name)")
    (fingerprint, h, w, channels, bit_depth, pad_multiple, quality, mode, tile_h, tile_w, overlap, n_streams,
     n_tiles) = _BODY.unpack_from(data, pos + 1 + name_len)
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
    if icc_len + exif_len > MAX_METADATA:
        raise FormatError(f"{source}: corrupted .flic header ({icc_len + exif_len} bytes of metadata, above the "
                          f"limit of {MAX_METADATA >> 20} MiB)")
    if flags and not icc_len + exif_len:
        raise FormatError(f"{source}: corrupted .flic header (an empty metadata section)")
    pos = body_end + meta_size
    if pos + n_tiles * n_streams * _ENTRY.size + icc_len + exif_len != header_len:
        raise FormatError(f"{source}: corrupted .flic header (tile table size)")
    entries = [_ENTRY.unpack_from(data, pos + i * _ENTRY.size) for i in range(n_tiles * n_streams)]
    pos += len(entries) * _ENTRY.size
    if sum(n for n, _ in entries) != len(data) - header_len - _CRC.size:
        raise FormatError(f"{source}: corrupted or truncated .flic file (stream lengths do not match the size)")
    icc, exif = data[pos : pos + icc_len], data[pos + icc_len : header_len]
    check_metadata(icc, exif, source)
    tiles, pos = [], header_len
    for i, (y0, x0, th, tw) in enumerate(tile_grid(h, w, tile_h, tile_w, overlap)):
        streams, checksums = [], []
        for n, checksum in entries[i * n_streams : (i + 1) * n_streams]:
            streams.append(data[pos : pos + n])
            checksums.append(checksum)
            pos += n
        tiles.append(Tile(y0, x0, th, tw, checksums, streams))
    return FlicFile(model=model, fingerprint=fingerprint, height=h, width=w, tiles=tiles, channels=channels,
                    bit_depth=bit_depth, pad_multiple=pad_multiple, quality=quality, numeric_mode=mode,
                    tile_h=tile_h, tile_w=tile_w, overlap=overlap, flags=flags, icc=icc, exif=exif)


def header_size(f: FlicFile) -> int:
    """Bytes of the file that are not entropy-coded streams or metadata (header, tile table and CRC)."""
    n_streams = len(f.tiles[0].streams)
    return (_FIXED.size + 1 + len(f.model.encode("ascii")) + _BODY.size + _CHECK.size
            + (_META.size if f._flags() else 0) + len(f.tiles) * n_streams * _ENTRY.size + _CRC.size)
