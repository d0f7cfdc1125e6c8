"""Pillow plugin: open and save ``.flic`` files in any program built on Pillow.

::

    import fastlic.pillow                      # registers the "FLIC" format and the .flic extension
    from PIL import Image

    Image.open("photo.flic").save("photo.png")            # decodes on load(), bundled weights
    Image.open("photo.png").save("photo.flic", quality=90)  # 0-100, as for JPEG and WebP

    fastlic.pillow.register(checkpoint="mlicpp.pt")       # or weights of your own, for opening and saving

Like ``pillow_heif.register_heif_opener()``, :func:`register_flic_opener` (an alias of :func:`register`) does
the registration explicitly; importing the module already does it with the defaults.

Opening reads and checks the header only (size, model, CRC over the whole file); the image is decoded when
Pillow loads it (``load()``, ``convert()``, ``save()``, ``np.asarray(im)``...), with, in this order: the model
given to :func:`register` (a registry name or a model object), the weights of its ``checkpoint``, or the
bundled weights of the model named in the file's header. A file that is not a complete ``.flic`` file raises
:class:`PIL.UnidentifiedImageError` (an :class:`OSError`) from ``Image.open``; a file of other weights, or of a
model whose weights are not at hand, raises :class:`OSError` from ``load()``. Both carry fastlic's one-line
message and chain the :class:`fastlic.errors.FastlicError` as ``__cause__``.

Saving takes the options ``quality`` (0-100 as for Pillow's JPEG and WebP, mapped linearly onto the model's
range: :func:`fastlic.codec.native_quality`; default 50, the middle), ``native_quality`` (the model's own scale,
``[0, K-1]``; exclusive with ``quality``), ``model`` (a registry name or a model object), ``checkpoint``,
``device``, and ``icc_profile`` / ``exif`` (bytes, or a :class:`PIL.Image.Exif` for ``exif``; by default the
image's own ``info["icc_profile"]`` and ``info["exif"]``, as Pillow's JPEG and WebP writers take them; ``b""``
stores none). Any other option triggers a :class:`UserWarning` naming it (Pillow's own writers ignore unknown
options silently; a misspelt ``qualty=`` should not). Images are converted as ``fastlic compress`` converts them
(:mod:`fastlic.io`): grayscale and palette to RGB, alpha dropped, 16-bit reduced, each with a
:class:`UserWarning` naming the change. An opened file's ``info`` holds its ``icc_profile`` and ``exif`` when it
carries them, so ``Image.open("photo.flic").save("photo.png")`` keeps both.
"""

from __future__ import annotations

import warnings

from PIL import Image, ImageFile, UnidentifiedImageError

from . import codec
from .container import MAGIC
from .errors import FastlicError
from .io import EXIF_PREFIX, ImageMetadata, pil_to_rgb8, valid_metadata

FORMAT = "FLIC"
EXTENSION = ".flic"
MIME = "image/x-flic"

#: what :func:`register` was given; used by every open and save that does not name its own model
_defaults: dict = {"model": None, "checkpoint": None, "device": "cpu"}
#: models loaded so far, by (registry name, checkpoint, device)
_cache: dict = {}


def register(model=None, checkpoint=None, device: str = "cpu") -> None:
    """Register the FLIC format with Pillow (again: idempotent), and set the model used to open and save
    files: ``model`` is a registry name (its bundled weights, or those of ``checkpoint``) or a model object
    (e.g. from :func:`fastlic.codec.load_model`); with neither, opening uses the bundled weights of the model
    named in each file and saving the bundled default model."""
    _defaults.update(model=model, checkpoint=None if checkpoint is None else str(checkpoint), device=device)
    Image.register_open(FORMAT, FlicImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)
    Image.register_decoder("flic", FlicDecoder)


register_flic_opener = register


def _model(name: str | None, model=None, checkpoint=None, device=None):
    """The model object to code with: ``model`` (object or name) or the registered one, else ``name``."""
    model = _defaults["model"] if model is None else model
    checkpoint = _defaults["checkpoint"] if checkpoint is None else str(checkpoint)
    device = device or _defaults["device"]
    if model is not None and not isinstance(model, str):
        return model
    key = (model or name, checkpoint, device)
    if key not in _cache:
        _cache[key] = codec.load_model(model or name, checkpoint, device)
    return _cache[key]


def _accept(prefix: bytes) -> bool:
    return prefix[: len(MAGIC)] == MAGIC


class FlicImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "fastlic learned image compression"

    def _open(self):
        data = self.fp.read()
        source = str(self.filename) if self.filename else "input"
        try:
            header = codec.read_header(data, source)
        except FastlicError as exc:
            raise UnidentifiedImageError(str(exc)) from exc
        self._size = (header.width, header.height)
        self._mode = "RGB"
        self.info["flic_model"] = header.model
        self.info["flic_quality"] = header.quality
        self.info["flic_tiles"] = len(header.tiles)
        if header.icc:
            self.info["icc_profile"] = bytes(header.icc)
        if header.exif:  # in the form Pillow's JPEG reader gives, which its writers all take
            exif = bytes(header.exif)
            self.info["exif"] = exif if exif.startswith(EXIF_PREFIX) else EXIF_PREFIX + exif
        self.tile = [ImageFile._Tile("flic", (0, 0) + self.size, 0, (source,))]


class FlicDecoder(ImageFile.PyDecoder):
    _pulls_fd = True

    def decode(self, buffer):
        assert self.fd is not None
        source = self.args[0]
        data = self.fd.read()
        try:
            header = codec.read_header(data, source)
            image = codec.decode_image(header, _model(header.model), source)
        except FastlicError as exc:
            msg = str(exc)
            if "no trained weights are bundled" in msg:
                msg += " (or fastlic.pillow.register(checkpoint=FILE))"
            raise OSError(msg) from exc
        self.set_as_raw(image.tobytes(), "RGB")
        return -1, 0


#: the options :func:`_save` takes (module docstring)
SAVE_OPTIONS = ("quality", "native_quality", "model", "checkpoint", "device", "icc_profile", "exif")


def _metadata(im: Image.Image, info: dict, name: str, notes: list) -> dict:
    """The ``icc``/``exif`` keywords of :func:`fastlic.codec.encode_image`: the save options, else the image's
    (one the container would refuse is dropped with a note, as ``fastlic compress`` does)."""
    icc = info.get("icc_profile", im.info.get("icc_profile")) or b""
    exif = info.get("exif", im.info.get("exif")) or b""
    if isinstance(exif, Image.Exif):
        exif = exif.tobytes()
    if not isinstance(icc, (bytes, bytearray)) or not isinstance(exif, (bytes, bytearray)):
        raise FastlicError("icc_profile and exif must be bytes (exif may be a PIL.Image.Exif)")
    exif = bytes(exif)
    exif = exif[len(EXIF_PREFIX):] if exif.startswith(EXIF_PREFIX) else exif
    meta = valid_metadata(ImageMetadata(icc=bytes(icc), exif=exif), name, notes)
    return {k: v for k, v in (("icc", meta.icc), ("exif", meta.exif)) if v}


def _save(im: Image.Image, fp, filename):
    info = im.encoderinfo
    name = str(filename) if filename else "image"
    unknown = sorted(k for k in info if k not in SAVE_OPTIONS)
    if unknown:
        warnings.warn(f"{name}: FLIC ignores the save option(s) {', '.join(map(repr, unknown))} (it takes "
                      f"{', '.join(SAVE_OPTIONS)})", UserWarning, stacklevel=3)
    notes: list = []
    try:
        if info.get("quality") is not None and info.get("native_quality") is not None:
            raise FastlicError("give quality (0-100) or native_quality, not both")
        array = pil_to_rgb8(im, name, notes)
        checkpoint = info.get("checkpoint") or _defaults["checkpoint"]
        # without a model or checkpoint: the bundled default model
        model = _model(None if checkpoint else codec.DEFAULT_MODEL, info.get("model"), info.get("checkpoint"),
                       info.get("device"))
        quality = info.get("native_quality")
        if info.get("quality") is not None:
            quality = codec.native_quality(model, info["quality"])
        data = codec.encode_image(model, array, quality=quality, **_metadata(im, info, name, notes))
    except FastlicError as exc:
        raise OSError(f"cannot write {name} as FLIC: {exc}") from exc
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=3)
    fp.write(data)


register()

__all__ = ["register", "register_flic_opener", "FlicImageFile", "FORMAT", "EXTENSION"]
