"""Images to ``.flic`` bytes and back: model loading, container, integrity checks.

This is the layer the command line and the evaluation use::

    model = load_model(checkpoint="mlicpp.pt")         # or the bundled default
    data = encode_image(model, image)                  # uint8 [H, W, 3] -> bytes of a .flic file
    image = decode_image(data, model)                  # checks model, weights, CRC and latent checksum

Decoding refuses a file written by another model or other weights (the header carries the model name and a
fingerprint of the weights), and after decoding compares the checksum of its latents with the encoder's: a
divergence (other machine, other numeric mode, other weights) raises :class:`DecodeDivergenceError` instead of
returning a wrong image.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from . import container
from .checkpoint import FORMAT, model_from_checkpoint_dict, read_checkpoint
from .errors import CheckpointError, DecodeDivergenceError, FastlicError, ModelMismatchError
from .io import image_to_tensor, tensor_to_image

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: the model ``fastlic compress`` uses when none is named
DEFAULT_MODEL = "mlicpp-small"


def bundled_weights() -> dict:
    """{model name: {"file": path, ...}} of the weights shipped in ``fastlic/weights/index.json``."""
    index = WEIGHTS_DIR / "index.json"
    if not index.is_file():
        return {}
    entries = json.loads(index.read_text()).get("models", {})
    return {name: {**e, "file": WEIGHTS_DIR / e["file"]} for name, e in entries.items()
            if (WEIGHTS_DIR / e["file"]).is_file()}


def _looks_like_reference_mlicpp(ckpt: dict) -> bool:
    sd = ckpt.get("state_dict", ckpt)
    return isinstance(sd, dict) and any(str(k).endswith("g_a.analysis_transform.0.conv1.weight") for k in sd)


def load_checkpoint_any(path, model: str | None = None):
    """A fastlic checkpoint, or an official MLIC++ checkpoint (variant detected from its keys)."""
    ckpt = read_checkpoint(path)
    if ckpt.get("format") == FORMAT:
        m = model_from_checkpoint_dict(ckpt, str(path))
        if model and model != m.model_name:
            raise CheckpointError(f"{path}: holds model {m.model_name!r}, not {model!r}")
        return m
    if _looks_like_reference_mlicpp(ckpt):
        from .models.mlicpp import MLICPlusPlus

        sd = ckpt.get("state_dict", ckpt)
        old = any(str(k).endswith("g_s.synthesis_transform.0.skip.weight") for k in sd)
        variant = "2023" if old or model == "mlicpp-2023" else "current"
        m = MLICPlusPlus.from_reference_state_dict(sd, variant=variant)
        m.model_name = "mlicpp-2023" if variant == "2023" else "mlicpp"
        return m
    raise CheckpointError(f"{path}: neither a fastlic checkpoint nor an MLIC++ reference checkpoint")


def load_model(model: str | None = None, checkpoint=None, device: str = "cpu"):
    """The model to code with: from ``checkpoint`` if given, else the bundled weights of ``model``
    (default :data:`DEFAULT_MODEL`). Returned in eval mode with its coding tables built."""
    if checkpoint is not None:
        m = load_checkpoint_any(checkpoint, model)
    else:
        name = model or DEFAULT_MODEL
        bundled = bundled_weights()
        if name not in bundled:
            have = ", ".join(sorted(bundled)) or "none"
            raise FastlicError(f"no trained weights are bundled for model {name!r} (bundled: {have}); "
                               f"pass --checkpoint FILE (a fastlic checkpoint or an official MLIC++ .pth.tar)")
        m = load_checkpoint_any(bundled[name]["file"], name)
    return m.to(device).eval()


def fingerprint(model) -> bytes:
    """The model's weight fingerprint, cached on the model (call ``model.update()`` after changing weights)."""
    fp = getattr(model, "_flic_fingerprint", None)
    if fp is None:
        if model.needs_update():
            model.update()
        fp = model.fingerprint()
        model._flic_fingerprint = fp
    return fp


def encode_image(model, image: np.ndarray, quality: float | None = None, **opts) -> bytes:
    """uint8 ``[H, W, 3]`` RGB -> the bytes of a ``.flic`` file."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise FastlicError(f"expected a uint8 [H, W, 3] image, got {image.dtype} {list(image.shape)}")
    h, w = image.shape[:2]
    container._check_dims(h, w, "image")
    fp = fingerprint(model)
    if quality is not None:
        if not hasattr(model, "set_quality"):
            raise FastlicError(f"model {model.model_name!r} has a fixed rate; --quality is not supported")
        model.set_quality(quality)
    device = next(model.parameters()).device
    x = image_to_tensor(image).to(device)
    out = model.compress(x, **opts)
    ph, pw = model.padded_size(h, w)
    f = container.FlicFile(model=model.model_name, fingerprint=fp, height=h, width=w,
                           streams=[s[0] for s in out["strings"]], pad_bottom=ph - h, pad_right=pw - w,
                           quality=math.nan if quality is None else float(quality), checksum=out["checksums"][0])
    return container.pack(f)


def read_header(data: bytes, source: str = "input") -> container.FlicFile:
    return container.unpack(data, source)


def check_model(f: container.FlicFile, model, source: str = "input") -> None:
    if f.model != model.model_name:
        raise ModelMismatchError(f"{source}: was written by model {f.model!r}, but the decoder holds "
                                 f"{model.model_name!r}")
    if f.fingerprint != fingerprint(model):
        raise ModelMismatchError(f"{source}: was written with other weights of {f.model!r} "
                                 f"(fingerprint {f.fingerprint.hex()[:12]}, decoder has "
                                 f"{fingerprint(model).hex()[:12]})")


def decode_image(data, model, source: str = "input") -> np.ndarray:
    """Bytes of a ``.flic`` file -> uint8 ``[H, W, 3]``; every check of the module docstring applies."""
    f = data if isinstance(data, container.FlicFile) else container.unpack(data, source)
    check_model(f, model, source)
    ph, pw = model.padded_size(f.height, f.width)
    if (ph - f.height, pw - f.width) != (f.pad_bottom, f.pad_right):
        raise FastlicError(f"{source}: padding in the header does not match the model's")
    if not math.isnan(f.quality):
        if not hasattr(model, "set_quality"):
            raise FastlicError(f"{source}: has a quality value but model {model.model_name!r} has a fixed rate")
        model.set_quality(f.quality)
    try:
        out = model.decompress([[s] for s in f.streams], (f.height, f.width))
    except FastlicError:
        raise
    except (ValueError, RuntimeError, IndexError) as exc:
        # a stream that passed the CRC but does not fit the model (other encoder build, crafted file)
        raise DecodeDivergenceError(f"{source}: the streams do not decode with this model ({exc})") from None
    if out["checksums"][0] != f.checksum:
        raise DecodeDivergenceError(f"{source}: decoded latents differ from the encoder's (checksum mismatch): "
                                    f"encoder and decoder disagree (other machine, numeric mode or weights)")
    return tensor_to_image(out["x_hat"])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


@torch.no_grad()
def estimate_bits(model, image: np.ndarray) -> float:
    """-sum(log2 likelihoods) of the eval-mode forward pass (the rate the coder aims at)."""
    out = model(image_to_tensor(image).to(next(model.parameters()).device))
    return float(sum(-torch.log2(v).sum() for v in out["likelihoods"].values()))
