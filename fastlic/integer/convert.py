"""``fastlic convert-checkpoint IN -o OUT --integer``: a float MLIC++ checkpoint into the integer numeric mode.

The input is an official MLIC++ ``.pth.tar`` (variant detected from its keys, as ``--checkpoint`` does) or a
fastlic checkpoint of any float MLIC++ (a registry model, bundled or trained). The conversion is the
post-training quantization of :meth:`fastlic.models.mlicpp.MLICPlusPlus.to_integer`, calibrated on the images
the package ships (the left half of ``fastlic/data/kodim23.png`` and its mirror image:
:func:`fastlic.integer.mlicpp.package_calibration_images`). Its cost is then measured on held-out crops of the
same photo (its right half, never seen in calibration) from real files: each crop is encoded and decoded by the
float model (numeric mode 2) and by the converted one (mode 3), and the bytes and the PSNR of the decoded
pixels are compared, at the low, middle and high rate points of a variable-rate model.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np

from .. import numerics
from ..checkpoint import FORMAT, model_from_checkpoint_dict, read_checkpoint, save_checkpoint
from ..errors import CheckpointError


def held_out_crops() -> list:
    """The right half of the package's photo as two 256x384 crops (uint8 HxWx3): calibration never sees it."""
    from ..io import read_image  # noqa: PLC0415

    img = read_image(Path(__file__).resolve().parents[1] / "data" / "kodim23.png")
    return [np.ascontiguousarray(img[:256, 384:768]), np.ascontiguousarray(img[256:512, 384:768])]


def load_float_mlicpp(src):
    """(model, meta) of a float MLIC++ checkpoint: official or fastlic; anything else is refused by name."""
    from ..codec import _looks_like_reference_mlicpp, load_checkpoint_any  # noqa: PLC0415
    from ..models.mlicpp import MLICPlusPlus  # noqa: PLC0415

    raw = read_checkpoint(src)
    if raw.get("format") == FORMAT:
        model = model_from_checkpoint_dict(raw, str(src))
        meta = dict(raw.get("meta", {}))
    elif _looks_like_reference_mlicpp(raw):
        model = load_checkpoint_any(src)
        meta = {"source": os.path.basename(str(src)), "variant": model.config.get("variant", "current")}
    else:
        raise CheckpointError(f"{src}: neither a fastlic checkpoint nor an MLIC++ reference checkpoint")
    if not isinstance(model, MLICPlusPlus):
        raise CheckpointError(f"{src}: holds model {model.model_name!r}; the integer mode is implemented for "
                              f"MLIC++ models only")
    if numerics.numeric_mode(model) == numerics.INTEGER_MODE:
        raise CheckpointError(f"{src}: is already in the integer numeric mode")
    return model, meta


def _rd(model, crops, quality) -> tuple[int, float]:
    """Bytes of the files and mean PSNR of their decoded pixels over ``crops`` at ``quality``."""
    from .. import codec  # noqa: PLC0415

    size, psnr = 0, 0.0
    for img in crops:
        data = codec.encode_image(model, img, quality=quality)
        size += len(data)
        psnr += codec.psnr(img, codec.decode_image(data, model)) / len(crops)
    return size, psnr


def measure(float_model, int_model, crops=None) -> list[dict]:
    """Rate and PSNR of ``int_model`` against ``float_model`` on ``crops`` (default :func:`held_out_crops`),
    per measured quality (None for a fixed-rate model)."""
    crops = held_out_crops() if crops is None else crops
    k = getattr(float_model, "num_rates", None)
    qualities = [None] if k is None else sorted({0.0, (k - 1) / 2, float(k - 1)})
    rows = []
    for q in qualities:
        fb, fp = _rd(float_model, crops, q)
        ib, ip = _rd(int_model, crops, q)
        rows.append({"quality": q, "float_bytes": fb, "integer_bytes": ib, "rate_pct": 100.0 * (ib - fb) / fb,
                     "float_psnr": fp, "integer_psnr": ip, "psnr_delta_db": ip - fp})
    return rows


def convert_to_integer(src, dst) -> list[dict]:
    """Convert ``src`` (see :func:`load_float_mlicpp`) into the integer mode, write it to ``dst`` (atomically)
    and return :func:`measure`'s rows, which the checkpoint's ``meta["integer_ptq"]`` records too."""
    float_model, meta = load_float_mlicpp(src)
    int_model = copy.deepcopy(float_model).to_integer()
    rows = measure(float_model, int_model)
    meta["integer_ptq"] = {"calibration": "fastlic/data/kodim23.png left half and its mirror image (4 crops)",
                           "measured_on": "fastlic/data/kodim23.png right half (2 crops of 256x384)",
                           "config": dict(int_model.config["integer"]), "rd": rows}
    save_checkpoint(dst, int_model, meta)
    return rows
