"""Classic image codecs through Python packages only: JPEG and WebP through Pillow, AVIF, JPEG XL and JPEG 2000
through ``imagecodecs`` (which ships libavif/aom, libjxl and OpenJPEG). Nothing to compile.

Settings (each a quality sweep; the defaults span roughly 0.1 to 2-4 bpp on Kodak):

* ``jpeg``: Pillow/libjpeg-turbo baseline JPEG, ``quality`` 5..95, Pillow's default 4:2:0 chroma subsampling and
  standard tables (the settings of CompressAI's JPEG anchor).
* ``webp``: Pillow/libwebp lossy, ``quality`` 0..100, ``method=6`` (slowest, best).
* ``avif``: libavif with the AOM encoder, ``level`` (quality 0..100), ``speed=6``, 4:4:4 (libavif's default for RGB).
* ``avif-best``: the strongest AVIF for PSNR: Pillow's libavif with the AOM encoder, ``quality`` 0..100,
  ``speed=0``, 4:4:4, ``tune=psnr`` (an AOM option imagecodecs does not expose); ~20 s per Kodak image.
* ``jxl``: libjxl VarDCT, ``level`` (quality 0..100, mapped by libjxl to a Butteraugli distance), ``effort=7``.
* ``jpeg2000``: OpenJPEG, irreversible 9/7 wavelet with the colour transform, ``level`` = the target PSNR in dB
  of OpenJPEG's rate allocation (``tcp_distoratio``), one quality layer, JP2 container.
"""

from __future__ import annotations

import io

import numpy as np

from .base import Codec


class PillowCodec(Codec):
    """Codecs of Pillow: ``encode`` saves with ``format`` and ``quality``; ``decode`` opens the bytes."""

    format = ""
    options: dict = {}

    def encode(self, image, quality):
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image)).save(buf, format=self.format, quality=int(quality),
                                                          **self.options)
        return buf.getvalue()

    def decode(self, data, quality):
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))

    def info(self):
        from PIL import __version__

        return {"library": f"Pillow {__version__}", "format": self.format, "options": dict(self.options),
                "quality_parameter": "quality"}


class JPEG(PillowCodec):
    name, extension, format = "jpeg", "jpg", "JPEG"
    description = "JPEG (Pillow / libjpeg-turbo, 4:2:0)"
    options = {}

    def default_qualities(self):
        return [5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95]


class WebP(PillowCodec):
    name, extension, format = "webp", "webp", "WEBP"
    description = "WebP lossy (Pillow / libwebp, method 6)"
    options = {"method": 6}

    def default_qualities(self):
        return [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100]


class ImagecodecsCodec(Codec):
    """Codecs of ``imagecodecs``: ``<codec>_encode(image, level=quality, **options)`` / ``<codec>_decode``."""

    codec = ""
    options: dict = {}

    def available(self):
        try:
            import imagecodecs
        except ImportError:
            return "the 'imagecodecs' package is not installed (pip install 'fastlic[eval]')"
        if not getattr(imagecodecs, self.codec.upper()).available:
            return f"this imagecodecs build has no {self.codec} codec"
        return None

    def encode(self, image, quality):
        import imagecodecs

        return bytes(getattr(imagecodecs, f"{self.codec}_encode")(np.ascontiguousarray(image), level=quality,
                                                                 **self.options))

    def decode(self, data, quality):
        import imagecodecs

        return np.asarray(getattr(imagecodecs, f"{self.codec}_decode")(data))

    def info(self):
        import imagecodecs

        lib = [v for v in imagecodecs.version().split(", ") if v.startswith(self.library)]
        return {"library": f"imagecodecs {imagecodecs.__version__}" + (f" ({lib[0]})" if lib else ""),
                "codec": self.codec, "options": dict(self.options), "quality_parameter": "level"}


class AVIF(ImagecodecsCodec):
    name, extension, codec, library = "avif", "avif", "avif", "libavif"
    description = "AVIF (libavif / AOM, 4:4:4, speed 6)"
    options = {"speed": 6}

    def default_qualities(self):
        return [10, 20, 30, 40, 50, 60, 70, 80, 90]


class AVIFBest(PillowCodec):
    name, extension, format = "avif-best", "avif", "AVIF"
    description = "AVIF (Pillow / libavif / AOM, 4:4:4, speed 0, tune=psnr)"
    options = {"speed": 0, "subsampling": "4:4:4", "codec": "aom", "advanced": {"tune": "psnr"}, "max_threads": 1}

    def default_qualities(self):
        return [10, 20, 30, 40, 50, 60, 70, 80, 90]

    def info(self):
        from PIL import features

        return {**super().info(), "library": f"{super().info()['library']} (libavif {features.version('avif')})"}


class JPEGXL(ImagecodecsCodec):
    name, extension, codec, library = "jxl", "jxl", "jpegxl", "libjxl"
    description = "JPEG XL (libjxl VarDCT, effort 7)"
    options = {"effort": 7}

    def default_qualities(self):
        return [10, 20, 30, 40, 50, 60, 70, 80, 90, 95]


class JPEG2000(ImagecodecsCodec):
    name, extension, codec, library = "jpeg2000", "jp2", "jpeg2k", "openjpeg"
    description = "JPEG 2000 (OpenJPEG, 9/7 wavelet, target-PSNR rate allocation)"
    options = {"codecformat": "jp2"}

    def default_qualities(self):
        return [24, 26, 28, 30, 32, 34, 36, 38, 40, 42]

    def info(self):
        return {**super().info(), "quality_parameter": "level = target PSNR in dB"}


CLASSIC_CODECS = {c.name: c for c in (JPEG, WebP, AVIF, AVIFBest, JPEGXL, JPEG2000)}
