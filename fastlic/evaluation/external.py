"""Codecs run as external programs found on ``PATH``: VTM (the VVC reference software, intra, 4:4:4) and BPG.

They are optional: when the programs are missing, :meth:`Codec.available` says which one and the codec is
skipped (``fastlic eval --codec vtm`` then stops with that one-line note). Nothing is downloaded or built.

* ``vtm``: ``EncoderAppStatic``/``DecoderAppStatic``; the RGB image is converted to 8-bit full-range YCbCr
  (ITU-R BT.709 weights, as in CompressAI's VTM anchor) and coded as 4:4:4 with the all-intra configuration
  ``encoder_intra_vtm.cfg``, found in ``$FASTLIC_VTM_CFG`` or in ``cfg/`` beside or above the encoder's folder.
  Quality = QP. The file is a 4-byte picture size (VTM's decoder writes headerless planes) + the bitstream.
* ``bpg``: ``bpgenc -f 444 -q QP`` / ``bpgdec`` (x265 back end, YCbCr 4:4:4). Quality = QP.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .base import Codec, EvaluationError

#: ITU-R BT.709 luma weights
_KR, _KG, _KB = 0.2126, 0.7152, 0.0722


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """Full-range 8-bit YCbCr (BT.709) of an 8-bit RGB image, rounded."""
    x = rgb.astype(np.float64) / 255.0
    y = _KR * x[..., 0] + _KG * x[..., 1] + _KB * x[..., 2]
    cb = 0.5 * (x[..., 2] - y) / (1 - _KB) + 0.5
    cr = 0.5 * (x[..., 0] - y) / (1 - _KR) + 0.5
    return np.clip(np.round(np.stack([y, cb, cr], -1) * 255.0), 0, 255).astype(np.uint8)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`, rounded to 8 bits."""
    x = ycc.astype(np.float64) / 255.0
    y, cb, cr = x[..., 0], x[..., 1] - 0.5, x[..., 2] - 0.5
    r = y + 2 * (1 - _KR) * cr
    b = y + 2 * (1 - _KB) * cb
    g = (y - _KR * r - _KB * b) / _KG
    return np.clip(np.round(np.stack([r, g, b], -1) * 255.0), 0, 255).astype(np.uint8)


def _run(cmd: list[str], what: str):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise EvaluationError(f"{what} failed (exit {proc.returncode}): {tail[0]}")


class VTM(Codec):
    name, extension = "vtm", "vvc"
    description = "VTM intra (VVC reference software), YCbCr 4:4:4"
    encoder, decoder = "EncoderAppStatic", "DecoderAppStatic"

    def default_qualities(self):
        return [17, 22, 27, 32, 37, 42, 47]

    def _config(self) -> Path | None:
        env = os.environ.get("FASTLIC_VTM_CFG")
        if env:
            return Path(env) if Path(env).is_file() else None
        exe = shutil.which(self.encoder)
        if not exe:
            return None
        here = Path(exe).resolve().parent
        for d in (here, *here.parents[:3]):
            cfg = d / "cfg" / "encoder_intra_vtm.cfg"
            if cfg.is_file():
                return cfg
        return None

    def available(self):
        missing = [p for p in (self.encoder, self.decoder) if shutil.which(p) is None]
        if missing:
            return f"{' and '.join(missing)} not found on PATH"
        if self._config() is None:
            return "encoder_intra_vtm.cfg not found (set FASTLIC_VTM_CFG)"
        return None

    def encode(self, image, quality):
        h, w = image.shape[:2]
        with tempfile.TemporaryDirectory(prefix="fastlic-vtm-") as tmp:
            yuv, out = Path(tmp) / "in.yuv", Path(tmp) / "out.bin"
            yuv.write_bytes(np.ascontiguousarray(rgb_to_ycbcr(image).transpose(2, 0, 1)).tobytes())
            _run([shutil.which(self.encoder), "-i", str(yuv), "-c", str(self._config()), "-q", str(int(quality)),
                  "-o", os.devnull, "-b", str(out), "-wdt", str(w), "-hgt", str(h), "-fr", "1", "-f", "1",
                  "--InputChromaFormat=444", "--InputBitDepth=8", "--ConformanceWindowMode=1"], "VTM encoder")
            # VTM's decoder writes headerless planes, so the file starts with the picture size (4 bytes,
            # 0.0001 bpp on Kodak, counted in the rate) to be decodable on its own
            return struct.pack(">HH", h, w) + out.read_bytes()

    def decode(self, data, quality):
        with tempfile.TemporaryDirectory(prefix="fastlic-vtm-") as tmp:
            src, yuv = Path(tmp) / "in.bin", Path(tmp) / "out.yuv"
            h, w = struct.unpack(">HH", data[:4])
            src.write_bytes(data[4:])
            _run([shutil.which(self.decoder), "-b", str(src), "-o", str(yuv), "-d", "8"], "VTM decoder")
            raw = np.frombuffer(yuv.read_bytes(), np.uint8)
            if raw.size != 3 * h * w:
                raise EvaluationError(f"VTM decoder wrote {raw.size} bytes, expected {3 * h * w} for {h}x{w} 4:4:4")
            return ycbcr_to_rgb(raw.reshape(3, h, w).transpose(1, 2, 0))

    def info(self):
        return {"encoder": shutil.which(self.encoder), "config": str(self._config()), "quality_parameter": "QP"}


class BPG(Codec):
    name, extension = "bpg", "bpg"
    description = "BPG (x265, YCbCr 4:4:4)"
    encoder, decoder = "bpgenc", "bpgdec"

    def default_qualities(self):
        return [22, 27, 32, 37, 42, 47]

    def available(self):
        missing = [p for p in (self.encoder, self.decoder) if shutil.which(p) is None]
        return f"{' and '.join(missing)} not found on PATH" if missing else None

    def encode(self, image, quality):
        from PIL import Image

        with tempfile.TemporaryDirectory(prefix="fastlic-bpg-") as tmp:
            png, out = Path(tmp) / "in.png", Path(tmp) / "out.bpg"
            Image.fromarray(image).save(png)
            _run([shutil.which(self.encoder), "-f", "444", "-q", str(int(quality)), "-o", str(out), str(png)],
                 "bpgenc")
            return out.read_bytes()

    def decode(self, data, quality):
        from PIL import Image

        with tempfile.TemporaryDirectory(prefix="fastlic-bpg-") as tmp:
            src, png = Path(tmp) / "in.bpg", Path(tmp) / "out.png"
            src.write_bytes(data)
            _run([shutil.which(self.decoder), "-o", str(png), str(src)], "bpgdec")
            with Image.open(png) as im:
                return np.asarray(im.convert("RGB"))

    def info(self):
        return {"encoder": shutil.which(self.encoder), "quality_parameter": "QP"}


EXTERNAL_CODECS = {c.name: c for c in (VTM, BPG)}
