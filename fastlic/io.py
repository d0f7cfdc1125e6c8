"""Reading and writing images.

Input policy (every conversion is reported as a warning that names what was changed):

* Formats: whatever Pillow reads (PNG, JPEG, WebP, TIFF, BMP, GIF, ...). The EXIF orientation of a photo is
  applied, so the decoded image looks as the camera meant it.
* The codecs code 8-bit RGB. Grayscale and palette images are converted to RGB; an alpha channel is dropped
  (lossless alpha is not supported yet); 16-bit images are reduced to 8 bits per channel by rounding; CMYK is
  converted to RGB; an animated image is coded from its first frame.
* Images larger than the container's limit (:data:`fastlic.container.MAX_PIXELS`) are refused before decoding.

Outputs are written atomically: to a temporary file in the target directory, then renamed, so an interrupted or
failed write never leaves a partial file at the target path. With ``overwrite=False`` the complete file is
hard-linked to the target name instead, which fails if that name exists (no check-then-write race), so an existing
file is never replaced.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .container import MAX_PIXELS
from .errors import FastlicError, ImageError

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def read_image(path, warnings: list | None = None) -> np.ndarray:
    """-> uint8 array ``[H, W, 3]`` (RGB). Conversions are appended to ``warnings`` as sentences."""
    path = Path(path)
    notes = warnings if warnings is not None else []
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image")
    try:
        with Image.open(path) as im:
            if getattr(im, "n_frames", 1) > 1:
                notes.append(f"{path.name}: animated image, only the first frame is coded")
                im.seek(0)
            im.load()
            oriented = ImageOps.exif_transpose(im)
            if oriented is not im and im.getexif().get(0x0112, 1) != 1:
                notes.append(f"{path.name}: EXIF orientation applied")
            return _to_rgb8(oriented, path.name, notes)
    except Image.DecompressionBombError:
        raise ImageError(f"{path}: image is larger than {MAX_PIXELS} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = "not a readable image" if isinstance(exc, UnidentifiedImageError) else f"cannot decode image ({exc})"
        raise ImageError(f"{path}: {reason}") from None


def pil_to_rgb8(im: Image.Image, name: str = "image", warnings: list | None = None) -> np.ndarray:
    """A Pillow image -> uint8 ``[H, W, 3]`` RGB with the conversions of :func:`read_image` (grayscale, palette,
    alpha, 16 bits, CMYK), each appended to ``warnings`` as a sentence beginning with ``name``."""
    return _to_rgb8(im, name, warnings if warnings is not None else [])


def _to_rgb8(im: Image.Image, name: str, notes: list) -> np.ndarray:
    mode = im.mode
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


def write_image(path, image: np.ndarray, overwrite: bool = True) -> None:
    """Write a uint8 ``[H, W, 3]`` array atomically; the format follows the extension (PNG if none is known)."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    if fmt == "FLIC":  # fastlic.pillow registered .flic: a decoded image is never written as a .flic file here
        raise FastlicError(f"{path}: decoded images are written as PNG, JPEG, ...; not as .flic")
    with atomic_output(path, overwrite) as tmp:
        try:
            Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGB").save(tmp, format=fmt)
        except OSError as exc:
            raise FastlicError(f"{path}: cannot write ({exc.strerror or exc})") from None


def image_to_tensor(image: np.ndarray):
    """uint8 ``[H, W, 3]`` -> float32 ``[1, 3, H, W]`` in [0, 1] (the same arithmetic as ToTensor)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0).float().div(255.0)


def tensor_to_image(x) -> np.ndarray:
    """float ``[1, 3, H, W]`` -> uint8 ``[H, W, 3]``, clamped and rounded to the nearest level."""
    import torch

    return x[0].clamp(0, 1).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).numpy().copy()
