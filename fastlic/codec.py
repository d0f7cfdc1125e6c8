"""Images to ``.flic`` bytes and back: model loading, container, integrity checks.

This is the layer the command line and the evaluation use::

    model = load_model(checkpoint="mlicpp.pt")         # or the bundled default
    data = encode_image(model, image)                  # uint8 [H, W, 3] -> bytes of a .flic file
    image = decode_image(data, model)                  # checks model, weights, CRC and latent checksum

Decoding refuses a file written by another model or other weights (the header carries the model name and a
fingerprint of the weights), validates every header field against the model before using it
(:func:`check_header`: quality range, tile geometry, streams, the pixel limit :data:`MAX_DECODE_PIXELS`), and
checks each stream's checksum (its coded integers bound to the header: :func:`fastlic.container.stream_checksum`)
as soon as the stream is decoded, z before y: a divergence (an altered header, a corrupted or crafted stream,
other weights, a bug) raises :class:`DecodeDivergenceError` or :class:`FormatError` instead of returning a wrong
image, and a stream that runs dry stops at that chunk. For any input bytes the decoder raises nothing but
:class:`FastlicError` subclasses. Files decode on any machine, thread count and device (:mod:`fastlic.numerics`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from . import container, numerics
from .checkpoint import FORMAT, model_from_checkpoint_dict, read_checkpoint
from .evaluation.metrics import psnr  # the evaluation's PSNR-RGB, for --target-psnr and `fastlic demo`
from .errors import CheckpointError, DecodeDivergenceError, FastlicError, FormatError, ImageError, ModelMismatchError
from .io import image_to_tensor, tensor_to_image

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: the model ``fastlic compress`` uses when none is named
DEFAULT_MODEL = "mlicpp-mini-vr"


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


class UnknownModelError(FastlicError):
    """A model name that is not in the registry (a typo), as opposed to a known model without weights."""


def check_model_name(name: str) -> None:
    """Raise :class:`UnknownModelError` naming the known models unless ``name`` is registered."""
    from .registry import list_models

    known = list_models()
    if name not in known:
        raise UnknownModelError(f"unknown model {name!r} (known models: {', '.join(known)}; see `fastlic models`)")


def load_model(model: str | None = None, checkpoint=None, device: str = "cpu"):
    """The model to code with: from ``checkpoint`` if given, else the bundled weights of ``model``
    (default :data:`DEFAULT_MODEL`). Returned in eval mode with its coding tables built."""
    if model is not None:
        check_model_name(model)
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
    """The model's weight fingerprint, its coding tables built first if they are missing."""
    if model.needs_update():
        model.update()
    return model.fingerprint()


#: default memory ceiling for coding one tile (bytes); images whose estimated peak exceeds it are tiled
DEFAULT_MAX_MEMORY = 6 << 30
#: a decoder refuses files whose largest tile would need more than this (a crafted header cannot make it
#: allocate more); raise it for files written with a larger --max-memory
DEFAULT_DECODE_MEMORY = 12 << 30


def default_quality(model) -> float:
    """Quality used when none is given: the middle of a variable-rate model's range."""
    return (model.num_rates - 1) / 2


#: the top of the quality scale users know from cwebp -q and avifenc -q; :func:`native_quality` maps it
QUALITY_SCALE = 100


def native_quality(model, quality: float) -> float:
    """A quality on the 0-100 scale -> the model's native quality in ``[0, K-1]`` (K trained rate points),
    linearly: ``q * (K-1) / 100``, so 0 is the lowest trained rate, 100 the highest, 50 the middle (the default).
    Linear because the native scale already steps evenly through the trained lambdas (each point doubles or so
    the rate), and PSNR rises about evenly along it (README's table); the decoder snaps it to the 1/1024 grid.
    """
    if not hasattr(model, "set_quality"):
        raise FastlicError(f"model {model.model_name!r} has a fixed rate; a quality does not apply to it")
    q = float(quality)
    if not math.isfinite(q) or not 0 <= q <= QUALITY_SCALE:
        raise FastlicError(f"quality {quality:g} is outside the 0-{QUALITY_SCALE} scale")
    return q * (model.num_rates - 1) / QUALITY_SCALE


def scale_quality(model, native: float) -> float:
    """Inverse of :func:`native_quality`: a native quality in ``[0, K-1]`` -> the 0-100 scale."""
    return float(native) * QUALITY_SCALE / max(1, model.num_rates - 1)


class TargetResult(tuple):
    """``(file bytes, native quality, measured value)`` of :func:`encode_to_target`, with the search:
    ``reachable`` (the values at the lowest and the highest quality) and ``reached`` (whether the target lies
    within them; if not, the file is the nearest end of the range)."""

    def __new__(cls, data: bytes, quality: float, value: float, reachable: tuple, reached: bool, probes: int):
        self = super().__new__(cls, (data, quality, value))
        self.reachable, self.reached, self.probes = reachable, reached, probes
        return self


#: relative tolerance of a target search: within it a value counts as the target
TARGET_RTOL = 0.01


def encode_to_target(model, image: np.ndarray, target: float, metric: str = "bpp", progress=None,
                     **opts) -> TargetResult:
    """Encode at the quality whose real file meets ``target`` (bits per pixel of the file, or PSNR of its
    decoded image), by bisection on real encodings (:func:`fastlic.rate_control.find_quality`); the closest
    point found wins, so an unreachable target gives the file at the nearest end of the quality range
    (``reached`` is then false). ``progress(quality, value)`` is called after each probe.
    -> :class:`TargetResult` (unpacks as ``data, quality, value``)."""
    from .rate_control import find_quality

    if not hasattr(model, "set_quality"):
        raise FastlicError(f"model {model.model_name!r} has a fixed rate; a target needs a variable-rate model")
    if not math.isfinite(target) or target <= 0:
        raise FastlicError(f"target {target:g} {'bpp' if metric == 'bpp' else 'dB'} must be a positive number")
    px = image.shape[0] * image.shape[1]

    def measure(q):
        data = encode_image(model, image, quality=q, **opts)
        if metric == "bpp":
            return 8 * len(data) / px, data
        return psnr(image, decode_image(data, model)), data

    res = find_quality(measure, target, 0.0, float(model.num_rates - 1), mode="closest", rtol=TARGET_RTOL,
                       on_evaluation=progress)
    return TargetResult(res.payload, res.quality, res.value, res.reachable, res.reached(target, TARGET_RTOL),
                        len(res.evaluations))


def plan_tiles(model, h: int, w: int, tile: int | None = None, overlap: int = 32,
               max_memory: int = DEFAULT_MAX_MEMORY) -> tuple[int, int, int]:
    """-> (tile_h, tile_w, overlap); (0, 0, 0) when the whole image fits under ``max_memory``.

    ``tile`` forces a square tile side (a multiple of the model's padding multiple). Otherwise the side is the
    largest multiple of it whose estimated peak memory (:meth:`CompressionModel.estimated_peak_bytes`) fits.
    """
    m = model.pad_multiple
    if tile is None:
        if model.estimated_peak_bytes(h, w) <= max_memory:
            return 0, 0, 0
        side = m * 4
        while model.estimated_peak_bytes(side + m, side + m) <= max_memory and side < container.MAX_SIDE:
            side += m
        tile = side
    if tile <= 0 or tile % m or tile < container.MIN_TILE:
        raise FastlicError(f"tile size must be a positive multiple of {m} (at least {container.MIN_TILE})")
    if not 0 <= overlap < tile // 2:
        raise FastlicError(f"tile overlap must be in [0, {tile // 2})")
    if tile >= h and tile >= w:
        return 0, 0, 0
    return tile, tile, overlap


def encode_image(model, image: np.ndarray, quality: float | None = None, tile: int | None = None,
                 overlap: int = 32, max_memory: int = DEFAULT_MAX_MEMORY, icc: bytes = b"", exif: bytes = b"",
                 **opts) -> bytes:
    """uint8 ``[H, W, 3]`` RGB -> the bytes of a ``.flic`` file.

    Large images are split into tiles coded independently (see :func:`plan_tiles` and docs/format.md); tiles
    overlap by ``overlap`` pixels, which the decoder cross-fades so that no seam shows. ``icc`` (an ICC profile)
    and ``exif`` (EXIF bytes) are stored as they are, validated (:func:`fastlic.container.check_metadata`: at most
    16 MiB together), and come back in :func:`fastlic.container.unpack`'s ``icc`` and ``exif``.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise FastlicError(f"expected a uint8 [H, W, 3] image, got {image.dtype} {list(image.shape)}")
    h, w = image.shape[:2]
    container._check_dims(h, w, "image")
    icc, exif = bytes(icc or b""), bytes(exif or b"")
    container.check_metadata(icc, exif, "image", ImageError)
    fp = fingerprint(model)
    used_quality = math.nan
    if hasattr(model, "set_quality"):
        # always explicit (and snapped to the model's grid), so the decoder never depends on a default
        if quality is None:
            quality = default_quality(model)
        if not (math.isfinite(quality) and 0 <= quality <= model.num_rates - 1):
            # no CLI flag in the message: the Python API and the Pillow plugin raise it too
            raise FastlicError(f"native quality {quality:g} is outside [0, {model.num_rates - 1}], the range of "
                               f"model {model.model_name!r}")
        used_quality = model.set_quality(quality)
    elif quality is not None:
        raise FastlicError(f"model {model.model_name!r} has a fixed rate; a quality does not apply to it")
    th, tw, ov = plan_tiles(model, h, w, tile, overlap, max_memory)
    device = next(model.parameters()).device
    tiles = []
    for y0, x0, ht, wt in container.tile_grid(h, w, th, tw, ov):
        x = image_to_tensor(image[y0 : y0 + ht, x0 : x0 + wt]).to(device)
        out = model.compress(x, **opts)
        # for now the digests of the coded integers: they become checksums once the header is complete
        tiles.append(container.Tile(y0, x0, ht, wt, list(out["checksums"][0].streams), [s[0] for s in out["strings"]]))
    f = container.FlicFile(model=model.model_name, fingerprint=fp, height=h, width=w, tiles=tiles,
                           pad_multiple=model.pad_multiple, quality=used_quality,
                           tile_h=th, tile_w=tw, overlap=ov, numeric_mode=numerics.numeric_mode(model),
                           icc=icc, exif=exif)
    digest = f.digest()
    for i, t in enumerate(tiles):
        t.checksums = [container.stream_checksum(digest, i, k, len(s), coded)
                       for k, (s, coded) in enumerate(zip(t.streams, t.checksums))]
    return container.pack(f)


#: the most pixels a decoder accepts unless told otherwise (``max_pixels=``, ``--max-pixels``): Pillow's
#: ``Image.MAX_IMAGE_PIXELS`` (1024**3 // 4 // 3, about 89 M pixels, e.g. 11,000 x 8,000). A header whose
#: image is larger is refused before anything is decoded; ``None`` lifts the limit to the format's own
#: (:data:`fastlic.container.MAX_PIXELS`).
MAX_DECODE_PIXELS = 1024 * 1024 * 1024 // 4 // 3


def _check_pixels(f: container.FlicFile, max_pixels, source: str) -> None:
    if max_pixels is not None and f.num_pixels > max_pixels:
        raise FastlicError(f"{source}: the image is {f.width}x{f.height} = {f.num_pixels} pixels, above the limit "
                           f"of {int(max_pixels)} pixels (raise it with --max-pixels, or max_pixels= in Python)")


def read_header(data: bytes, source: str = "input", max_pixels: int | None = MAX_DECODE_PIXELS) -> container.FlicFile:
    """The verified header and streams of a ``.flic`` file (:func:`fastlic.container.unpack`), refused if its
    image has more than ``max_pixels`` pixels."""
    f = container.unpack(data, source)
    _check_pixels(f, max_pixels, source)
    return f


def check_model(f: container.FlicFile, model, source: str = "input") -> None:
    """The file's model name, weights fingerprint and padding multiple are the decoder model's."""
    if f.model != model.model_name:
        raise ModelMismatchError(f"{source}: was written by model {f.model!r}, but the decoder holds "
                                 f"{model.model_name!r}")
    mode = numerics.numeric_mode(model)
    if f.numeric_mode != mode:
        # said by name before the fingerprint (which differs too): the remedy is the other checkpoint
        raise ModelMismatchError(f"{source}: was written in numeric mode {f.numeric_mode} "
                                 f"({numerics.NUMERIC_MODES[f.numeric_mode].split(':')[0]}), but the decoder's "
                                 f"weights code in mode {mode} ({numerics.NUMERIC_MODES[mode].split(':')[0]}); "
                                 f"decode it with the checkpoint it was written with")
    if f.fingerprint != fingerprint(model):
        raise ModelMismatchError(f"{source}: was written with other weights of {f.model!r} "
                                 f"(fingerprint {f.fingerprint.hex()[:12]}, decoder has "
                                 f"{fingerprint(model).hex()[:12]})")
    if f.pad_multiple != model.pad_multiple:
        raise ModelMismatchError(f"{source}: padding multiple {f.pad_multiple} in the header, but model "
                                 f"{model.model_name!r} pads to {model.pad_multiple}")


def check_header(f: container.FlicFile, model, source: str = "input") -> None:
    """Every header field the decoder uses, against the model (after :func:`check_model`), so that decoding
    never meets a value it cannot take: the quality (a variable-rate model needs a finite value in
    ``[0, K-1]`` on its 1/1024 grid; a fixed-rate model needs none, NaN), the streams per tile (the model's),
    tile sides that are multiples of its padding multiple, and streams of whole 32-bit words (what the ANS
    coder writes)."""
    from .models.gain import QUALITY_GRID

    if hasattr(model, "set_quality"):
        top = model.num_rates - 1
        if math.isnan(f.quality):
            raise FormatError(f"{source}: corrupted .flic header (no quality, but model {model.model_name!r} "
                              f"has variable rate)")
        if not (math.isfinite(f.quality) and 0 <= f.quality <= top):
            raise FormatError(f"{source}: corrupted .flic header (quality {f.quality!r} is outside [0, {top}], "
                              f"the range of model {model.model_name!r})")
        if f.quality * QUALITY_GRID != round(f.quality * QUALITY_GRID):
            raise FormatError(f"{source}: corrupted .flic header (quality {f.quality!r} is not a multiple of "
                              f"1/{QUALITY_GRID})")
    elif not math.isnan(f.quality):
        raise ModelMismatchError(f"{source}: has quality {f.quality!r} but model {model.model_name!r} has a fixed "
                                 f"rate")
    names = model.stream_names
    if len(f.tiles[0].streams) != len(names):
        raise FormatError(f"{source}: corrupted .flic header ({len(f.tiles[0].streams)} streams per tile; model "
                          f"{model.model_name!r} codes {len(names)}: {', '.join(names)})")
    m = model.pad_multiple
    if f.tile_h % m or f.tile_w % m:
        raise FormatError(f"{source}: corrupted .flic header (tile size {f.tile_w}x{f.tile_h} is not a multiple "
                          f"of {m})")
    for i, t in enumerate(f.tiles):  # the ANS streams are 32-bit words, at least one: before any tile is decoded
        for k, s in enumerate(t.streams):
            if not s or len(s) % 4:
                where = f" of tile {i + 1} of {len(f.tiles)}" if len(f.tiles) > 1 else ""
                raise FormatError(f"{source}: the {names[k]} stream{where} is corrupted ({len(s)} bytes, not a "
                                  f"whole number of 32-bit words)")


def _blend_weights(t: container.Tile, h: int, w: int, overlap: int) -> np.ndarray:
    """Cross-fade weights of a tile: linear ramps over ``overlap`` pixels at every edge shared with a
    neighbour, so that overlapping tiles sum to one."""

    def ramp(n, start, full):
        r = np.ones(n, np.float64)
        k = np.arange(n, dtype=np.float64)
        if overlap and start > 0:
            r = np.minimum(r, (k + 0.5) / overlap)
        if overlap and start + n < full:
            r = np.minimum(r, (n - k - 0.5) / overlap)
        return r

    return ramp(t.height, t.y0, h)[:, None] * ramp(t.width, t.x0, w)[None, :]


#: what decoding streams that passed every check before can still raise from the networks and numpy when their
#: values are garbage (a crafted file whose checksums were forged, so that only the decode reveals it): turned
#: into DecodeDivergenceError, since they say nothing about the code but that these streams do not fit it
_GARBAGE_ERRORS = (ValueError, RuntimeError, IndexError, OverflowError, ZeroDivisionError, FloatingPointError)


def _decode_tile(model, f: container.FlicFile, index: int, digest: bytes, source: str) -> torch.Tensor:
    """Decode tile ``index``, checking each stream's checksum as soon as the model has decoded it."""
    t, names = f.tiles[index], model.stream_names
    where = f" of tile {index + 1} of {len(f.tiles)}" if len(f.tiles) > 1 else ""
    verified = []

    def verify(k, coded):
        if container.stream_checksum(digest, index, k, len(t.streams[k]), coded) != t.checksums[k]:
            raise DecodeDivergenceError(f"{source}: the decoded {names[k]} stream{where} differs from the "
                                        f"encoder's (checksum mismatch): the file was damaged or altered after "
                                        f"encoding")
        verified.append(k)

    def pending():  # the stream being decoded: the models decode the last of `strings` (z) first
        return names[next(k for k in reversed(range(len(names))) if k not in verified)]

    try:
        out = model.decompress([[s] for s in t.streams], (t.height, t.width), verify=verify)
    except DecodeDivergenceError:
        raise
    except FormatError as exc:  # the coder's own checks (ran dry, does not end, invalid words) name no file
        raise FormatError(f"{source}: the {pending()} stream{where} is corrupted: {exc}") from None
    except _GARBAGE_ERRORS as exc:
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        raise DecodeDivergenceError(f"{source}: the {pending()} stream{where} does not decode with this model "
                                    f"({type(exc).__name__}: {detail})") from None
    if sorted(verified) != list(range(len(names))):  # a model that skipped a check: never return its image
        raise DecodeDivergenceError(f"{source}: not every stream{where} could be checked")
    return out["x_hat"]


def decode_image(data, model, source: str = "input", max_memory: int = DEFAULT_DECODE_MEMORY,
                 max_pixels: int | None = MAX_DECODE_PIXELS) -> np.ndarray:
    """Bytes of a ``.flic`` file (or its :func:`read_header`) -> uint8 ``[H, W, 3]``; every check of the module
    docstring applies, in the order of docs/format.md ("Reading order and checks")."""
    f = data if isinstance(data, container.FlicFile) else container.unpack(data, source)
    _check_pixels(f, max_pixels, source)
    check_model(f, model, source)
    check_header(f, model, source)
    need = max(model.estimated_peak_bytes(t.height, t.width) for t in f.tiles[:1] + f.tiles[-1:])
    if need > max_memory:
        raise FastlicError(f"{source}: decoding needs about {need / 2 ** 30:.1f} GiB per tile, above the "
                           f"{max_memory / 2 ** 30:.1f} GiB limit (raise it with --max-memory)")
    if hasattr(model, "set_quality"):
        model.set_quality(f.quality)
    digest = f.digest()
    if len(f.tiles) == 1:
        return tensor_to_image(_decode_tile(model, f, 0, digest, source))
    acc = np.zeros((f.height, f.width, 3), np.float64)
    weight = np.zeros((f.height, f.width, 1), np.float64)
    for i, t in enumerate(f.tiles):
        x_hat = _decode_tile(model, f, i, digest, source)[0].clamp(0, 1).permute(1, 2, 0).double().numpy()
        wt = _blend_weights(t, f.height, f.width, f.overlap)[..., None]
        acc[t.y0 : t.y0 + t.height, t.x0 : t.x0 + t.width] += wt * x_hat
        weight[t.y0 : t.y0 + t.height, t.x0 : t.x0 + t.width] += wt
    return np.clip(np.round(acc / weight * 255.0), 0, 255).astype(np.uint8)


@torch.no_grad()
def estimate_bits(model, image: np.ndarray) -> float:
    """-sum(log2 likelihoods) of the eval-mode forward pass (the rate the coder aims at)."""
    out = model(image_to_tensor(image).to(next(model.parameters()).device))
    return float(sum(-torch.log2(v).sum() for v in out["likelihoods"].values()))
