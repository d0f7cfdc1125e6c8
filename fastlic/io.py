"""Reading and writing images.

Input policy (every conversion is reported as a warning that names what was changed):

* Formats: whatever Pillow reads (PNG, JPEG, WebP, TIFF, BMP, GIF, ...). The EXIF orientation of a photo is
  applied, so the decoded image looks as the camera meant it.
* The codecs code 8-bit RGB. Grayscale and palette images are converted to RGB; an alpha channel is dropped
  (lossless alpha is not supported yet); 16-bit images are reduced to 8 bits per channel (grayscale by rounding;
  RGB and RGBA, which Pillow opens as 8-bit modes keeping the high byte, are detected from the file's raw mode);
  CMYK is converted to RGB; an animated image is coded from its first frame.
* Images larger than the container's limit (:data:`fastlic.container.MAX_PIXELS`) are refused before decoding.
* Metadata (:func:`read_image_and_metadata`): the ICC profile and the EXIF block are returned as bytes, to be
  stored in the ``.flic`` file and written back on decoding. When the EXIF orientation was applied to the pixels,
  the stored EXIF has its orientation tag reset to 1 (normal), so that no viewer rotates the image twice.
* ``-`` as a path reads the image from standard input.

Outputs are written atomically: to a temporary file in the target directory, then renamed, so an interrupted or
failed write never leaves a partial file at the target path. With ``overwrite=False`` the complete file is
hard-linked to the target name instead, which fails if that name exists (no check-then-write race), so an existing
file is never replaced.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .container import MAX_PIXELS, check_exif, check_icc
from .errors import FastlicError, ImageError

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


#: how standard input and output are named in messages
STDIO = "-"
STDIN_NAME = "<stdin>"
STDOUT_NAME = "<stdout>"
#: the EXIF orientation tag (TIFF/EXIF tag 274)
ORIENTATION = 0x0112
#: the prefix of an EXIF block in a JPEG APP1 segment (Pillow's ``info["exif"]``); stored EXIF omits it
EXIF_PREFIX = b"Exif\x00\x00"


@dataclass
class ImageMetadata:
    """What an image carries besides its pixels that fastlic keeps: the ICC colour profile and the EXIF block
    (TIFF structure, without the JPEG ``Exif\\0\\0`` prefix), each ``b""`` when absent."""

    icc: bytes = b""
    exif: bytes = b""

    def __bool__(self) -> bool:
        return bool(self.icc or self.exif)

    def describe(self) -> str:
        """``"ICC profile and EXIF"``, ``"ICC profile"``, ``"EXIF"`` or ``""``."""
        return " and ".join(n for n, v in (("ICC profile", self.icc), ("EXIF", self.exif)) if v)


def read_image(path, warnings: list | None = None) -> np.ndarray:
    """-> uint8 array ``[H, W, 3]`` (RGB). Conversions are appended to ``warnings`` as sentences; ``-`` reads
    standard input."""
    return read_image_and_metadata(path, warnings)[0]


def read_image_and_metadata(path, warnings: list | None = None) -> tuple[np.ndarray, ImageMetadata]:
    """-> (uint8 ``[H, W, 3]`` RGB, :class:`ImageMetadata`) with the conversions of :func:`read_image`."""
    notes = warnings if warnings is not None else []
    if str(path) == STDIO:
        source, name, label = _stdin_bytes(), STDIN_NAME, STDIN_NAME
    else:
        path = Path(path)
        if not path.exists():
            raise ImageError(f"{path}: no such file")
        if path.is_dir():
            raise ImageError(f"{path}: is a directory, not an image")
        source, name, label = path, path.name, str(path)
    try:
        with Image.open(source) as im:
            if getattr(im, "n_frames", 1) > 1:
                notes.append(f"{name}: animated image, only the first frame is coded")
                im.seek(0)
            deep = _sixteen_bit(im)  # read before load(), which replaces the tile list
            im.load()
            exif = im.getexif()
            oriented = ImageOps.exif_transpose(im)
            rotated = oriented is not im and exif.get(ORIENTATION, 1) != 1
            if rotated:
                notes.append(f"{name}: EXIF orientation applied")
            meta = valid_metadata(ImageMetadata(icc=bytes(im.info.get("icc_profile") or b""),
                                        exif=_exif_bytes(im, exif, rotated)), name, notes)
            return _to_rgb8(oriented, name, notes, deep), meta
    except Image.DecompressionBombError:
        raise ImageError(f"{label}: image is larger than {MAX_PIXELS} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = "not a readable image" if isinstance(exc, UnidentifiedImageError) else f"cannot decode image ({exc})"
        raise ImageError(f"{label}: {reason}") from None


def valid_metadata(meta: ImageMetadata, name: str, notes: list) -> ImageMetadata:
    """``meta`` without what the container would refuse (:func:`fastlic.container.check_icc`/``check_exif``): a
    malformed profile in a photo is dropped with a note, not a reason to refuse the photo."""
    for field, check in (("icc", check_icc), ("exif", check_exif)):
        try:
            check(getattr(meta, field), name, ImageError)
        except ImageError as exc:
            notes.append(f"{exc}; dropped")
            meta = ImageMetadata(**{**meta.__dict__, field: b""})
    return meta


def _stdin_bytes() -> io.BytesIO:
    stdin = sys.stdin
    if stdin is None or stdin.isatty():
        raise ImageError(f"{STDIN_NAME}: standard input is a terminal; pipe an image into it (or name a file)")
    return io.BytesIO(stdin.buffer.read())


def _sixteen_bit(im: Image.Image) -> bool:
    """Whether the file stores more than 8 bits per channel although Pillow opens it in an 8-bit mode (a 16-bit
    RGB(A) PNG or TIFF opens as RGB/RGBA, its raw mode ``RGB;16B`` and the like: Pillow keeps the high bytes)."""
    for t in getattr(im, "tile", None) or []:
        args = t[3] if len(t) > 3 else None
        raw = args[0] if isinstance(args, tuple) and args else args
        if isinstance(raw, str) and ";16" in raw and im.mode in ("RGB", "RGBA"):
            return True
    return False


def _exif_bytes(im: Image.Image, exif: Image.Exif, rotated: bool) -> bytes:
    """The EXIF block to store: the file's own bytes when nothing changed (Pillow's re-serialization may lose
    maker notes), else Pillow's serialization with the orientation reset to 1."""
    if not len(exif):
        return b""
    if rotated or ORIENTATION in exif and exif[ORIENTATION] != 1:
        exif[ORIENTATION] = 1
        data = exif.tobytes()
    else:
        data = im.info.get("exif")
        if not isinstance(data, (bytes, bytearray)):
            data = exif.tobytes()
    data = bytes(data)
    return data[len(EXIF_PREFIX):] if data.startswith(EXIF_PREFIX) else data


def pil_to_rgb8(im: Image.Image, name: str = "image", warnings: list | None = None) -> np.ndarray:
    """A Pillow image -> uint8 ``[H, W, 3]`` RGB with the conversions of :func:`read_image` (grayscale, palette,
    alpha, 16 bits, CMYK), each appended to ``warnings`` as a sentence beginning with ``name``."""
    return _to_rgb8(im, name, warnings if warnings is not None else [], _sixteen_bit(im))


def _to_rgb8(im: Image.Image, name: str, notes: list, sixteen_bit: bool = False) -> np.ndarray:
    mode = im.mode
    if sixteen_bit:
        notes.append(f"{name}: 16-bit image reduced to 8 bits per channel")
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8).copy()
    if mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
        arr = np.asarray(im).astype(np.float64)
        scale = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(np.round(arr / scale * 255.0), 0, 255).astype(np.uint8)
        notes.append(f"{name}: 16-bit grayscale reduced to 8-bit RGB")
        return np.repeat(gray[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        notes.append(f"{name}: alpha channel dropped (converted {mode} to RGB)")
    elif mode in ("L", "1"):
        notes.append(f"{name}: grayscale converted to RGB")
    elif mode == "P":
        notes.append(f"{name}: palette image converted to RGB")
    elif mode == "CMYK":
        notes.append(f"{name}: CMYK converted to RGB")
    elif mode in ("RGBA;16", "RGB;16") or mode.startswith("I;16"):
        notes.append(f"{name}: 16-bit image reduced to 8 bits")
    else:
        notes.append(f"{name}: {mode} image converted to RGB")
    if mode in ("RGBA", "LA", "PA"):
        im = im.convert("RGBA")
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


class OutputExistsError(FastlicError):
    """The output file exists and overwriting was not allowed."""

    def __init__(self, path):
        super().__init__(f"{path}: already exists; use --force to overwrite it")


def _publish_new(tmp: str, path: Path) -> None:
    """Give the complete file ``tmp`` the name ``path`` unless that name exists (atomically, by a hard link)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(path) from None
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(path):
            raise OutputExistsError(path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_output(path, overwrite: bool = True):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds. With
    ``overwrite=False`` an existing ``path`` is left untouched and :class:`OutputExistsError` is raised."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FastlicError(f"{path}: output directory {parent} does not exist")
    if not overwrite and os.path.lexists(path):
        raise OutputExistsError(path)
    if path.is_dir():
        raise FastlicError(f"{path}: is a directory")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # the permissions of an ordinary new file, not mkstemp's 0600
    try:
        yield Path(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(path, data: bytes, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (never replacing an existing file if ``overwrite`` is false)."""
    with atomic_output(path, overwrite) as tmp:
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise FastlicError(f"{path}: cannot write ({exc.strerror or exc})") from None


#: the formats a decoded image is written in, by extension (what dwebp and avifdec write, and WebP/JPEG)
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
                 ".tiff": "TIFF", ".bmp": "BMP", ".ppm": "PPM", ".pnm": "PPM"}
#: formats that hold an ICC profile and an EXIF block (Pillow's icc_profile= and exif= options)
METADATA_FORMATS = {"PNG", "JPEG", "WEBP", "TIFF"}
#: quality of the lossy output formats: avifdec's default for JPEG, so decoding does not add visible loss
LOSSY_OUTPUT_QUALITY = 90


def image_format(path) -> str:
    """The Pillow format a decoded image is written in for ``path``'s extension; :class:`FastlicError` (naming
    the extensions known) for any other, ``.flic`` included."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in IMAGE_FORMATS:
        return IMAGE_FORMATS[suffix]
    known = ", ".join(IMAGE_FORMATS)
    if suffix == ".flic":
        raise FastlicError(f"{path}: a decoded image is written as an image ({known}), not as .flic")
    what = f"unknown image extension {path.suffix!r}" if suffix else "no image extension"
    raise FastlicError(f"{path}: {what} (use one of {known})")


def encode_image_file(image: np.ndarray, fmt: str, metadata: ImageMetadata | None = None,
                      warnings: list | None = None, name: str = "image") -> bytes:
    """A uint8 ``[H, W, 3]`` array -> the bytes of an image file in Pillow format ``fmt``, with ``metadata``
    where the format holds it (else a note in ``warnings`` that it was dropped)."""
    opts = {}
    meta = metadata or ImageMetadata()
    if meta:
        if fmt in METADATA_FORMATS:
            if meta.icc:
                opts["icc_profile"] = meta.icc
            if meta.exif:
                opts["exif"] = EXIF_PREFIX + meta.exif  # JPEG needs the prefix; PNG, WebP and TIFF strip it
        elif warnings is not None:
            warnings.append(f"{name}: {meta.describe()} dropped ({fmt} cannot hold them; PNG, JPEG, WebP and TIFF "
                            f"can)")
    if fmt in ("JPEG", "WEBP"):
        opts["quality"] = LOSSY_OUTPUT_QUALITY
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGB").save(buf, format=fmt, **opts)
    return buf.getvalue()


def write_image(path, image: np.ndarray, overwrite: bool = True, metadata: ImageMetadata | None = None,
                warnings: list | None = None) -> None:
    """Write a uint8 ``[H, W, 3]`` array atomically in the format of the extension (:func:`image_format`: an
    unknown extension is an error), with ``metadata`` where the format holds it (:func:`encode_image_file`)."""
    path = Path(path)
    if not overwrite and os.path.lexists(path):
        raise OutputExistsError(path)  # before encoding
    fmt = image_format(path)
    try:
        data = encode_image_file(image, fmt, metadata, warnings, path.name)
    except (OSError, ValueError) as exc:
        raise FastlicError(f"{path}: cannot write ({getattr(exc, 'strerror', None) or exc})") from None
    write_bytes(path, data, overwrite)


def refuse_terminal(stream=None, force: bool = False) -> None:
    """Refuse to write binary data to a terminal, as gzip does, unless ``force``."""
    stream = sys.stdout if stream is None else stream
    if not force and stream.isatty():
        raise FastlicError(f"{STDOUT_NAME}: binary data is not written to a terminal; redirect standard output "
                           f"or use -o FILE (--force writes it anyway)")


def write_stdout(data: bytes, force: bool = False) -> None:
    """Write ``data`` to standard output in binary, unless it is a terminal (:func:`refuse_terminal`)."""
    refuse_terminal(sys.stdout, force)
    out = getattr(sys.stdout, "buffer", sys.stdout)
    try:
        out.write(data)
        out.flush()
    except BrokenPipeError:  # the reader went away (e.g. `| head -c 10`): as cat does, say nothing
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (no second error at interpreter exit)
        raise FastlicError(f"{STDOUT_NAME}: broken pipe") from None
    except OSError as exc:
        raise FastlicError(f"{STDOUT_NAME}: cannot write ({exc.strerror or exc})") from None


def image_to_tensor(image: np.ndarray):
    """uint8 ``[H, W, 3]`` -> float32 ``[1, 3, H, W]`` in [0, 1] (the same arithmetic as ToTensor)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0).float().div(255.0)


def tensor_to_image(x) -> np.ndarray:
    """float ``[1, 3, H, W]`` -> uint8 ``[H, W, 3]``, clamped and rounded to the nearest level."""
    import torch

    return x[0].clamp(0, 1).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).numpy().copy()
