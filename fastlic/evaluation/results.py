"""Reading and writing results files in CompressAI's JSON shape::

    {"name": str, "description": str,
     "results": {"bpp": [...], "psnr-rgb": [...], "ms-ssim-rgb": [...], "encoding_time": [...],
                 "decoding_time": [...], ...}, ...}

One entry per quality point in every list of ``results`` (means over the images). Files written here add
``per_image`` and ``meta``; readers need only ``name`` and ``results``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

from .base import EvaluationError

METRICS = ("psnr-rgb", "ms-ssim-rgb")


def load_results(path) -> dict:
    """Read and check a results file; every problem is an :class:`EvaluationError` with a one-line message."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise EvaluationError(f"{path}: no such results file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvaluationError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise EvaluationError(f"{path}: not a results file (expected an object with a 'results' object)")
    res = data["results"]
    bpp = res.get("bpp")
    if not isinstance(bpp, list) or not bpp:
        raise EvaluationError(f"{path}: 'results.bpp' must be a non-empty list")
    for key, values in res.items():
        if isinstance(values, list) and len(values) != len(bpp) and key in ("bpp", *METRICS):
            raise EvaluationError(f"{path}: 'results.{key}' has {len(values)} values but 'bpp' has {len(bpp)}")
    data.setdefault("name", path.stem)
    return data


def curve(data: dict, metric: str, source: str = "results") -> tuple[list[float], list[float]]:
    """``(bpp, metric)`` points of a results dict, skipping points where either is missing or not finite."""
    if metric not in METRICS:
        raise EvaluationError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    res = data["results"]
    if metric not in res:
        raise EvaluationError(f"{data.get('name', source)}: no '{metric}' values")
    pts = [(float(r), float(d)) for r, d in zip(res["bpp"], res[metric])
           if r is not None and d is not None and math.isfinite(float(r)) and math.isfinite(float(d))]
    return [p[0] for p in pts], [p[1] for p in pts]


def write_json_atomic(path, data: dict):
    """Write ``data`` as JSON to a temporary file beside ``path`` and rename it (never a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
