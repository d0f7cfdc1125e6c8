"""Evaluate a codec over a folder of images: every image is coded at every quality point into a real file, the
file is read back and decoded, and rate, distortion, times and peak memory are recorded per image and averaged
per quality point (the mean of per-image values, as CompressAI's ``compressai.utils.eval_model`` does).

Times are wall-clock (``time.perf_counter``) of ``Codec.encode`` and ``Codec.decode`` alone (reading the source
image, writing the file and the metrics are excluded); with ``workers > 1`` the processes share the CPU, so use
one worker for timings. Peak memory: :mod:`fastlic.evaluation.memory`.
"""

from __future__ import annotations

import math
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ..io import read_image
from . import memory
from .base import Codec, EvaluationError
from .metrics import MS_SSIM_MIN_SIDE, bpp, ms_ssim, psnr

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")

#: per-point quantities averaged over the images, in the order they appear in ``results``
AVERAGED = ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time",
            "encoding_peak_memory_mib", "decoding_peak_memory_mib")


def find_images(data_dir, limit: int | None = None) -> list[Path]:
    """Image files directly inside ``data_dir`` (sorted by name), at most ``limit`` of them."""
    d = Path(data_dir)
    if not d.exists():
        raise EvaluationError(f"data folder {d} does not exist")
    if not d.is_dir():
        raise EvaluationError(f"{d} is not a folder")
    images = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise EvaluationError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {d}")
    if limit is not None:
        if limit < 1:
            raise EvaluationError(f"--limit must be at least 1, got {limit}")
        images = images[:limit]
    return images


def _finite(x):
    return x if x is None or math.isfinite(x) else None


def evaluate_one(codec: Codec, path: Path, quality, file_dir: Path) -> dict:
    """Code one image at one quality point through a file in ``file_dir``; return its record."""
    path = Path(path)
    image = read_image(path)
    h, w = image.shape[:2]
    with memory.PeakMemory() as enc_mem:
        t0 = time.perf_counter()
        data = codec.encode(image, quality)
        enc_time = time.perf_counter() - t0
    out = Path(file_dir) / f"{path.stem}.q{quality}.{codec.extension}"
    out.write_bytes(data)
    num_bytes = os.path.getsize(out)
    data = out.read_bytes()
    with memory.PeakMemory() as dec_mem:
        t0 = time.perf_counter()
        rec = codec.decode(data, quality)
        dec_time = time.perf_counter() - t0
    rec = np.asarray(rec)
    if rec.shape != image.shape:
        raise EvaluationError(f"{codec.name} decoded {path.name} at quality {quality} to shape {rec.shape}, "
                              f"expected {image.shape}")
    return {
        "image": path.name, "quality": quality, "height": h, "width": w, "num_bytes": num_bytes,
        "bpp": bpp(num_bytes, h * w),
        "psnr-rgb": _finite(psnr(image, rec)),
        "ms-ssim-rgb": ms_ssim(image, rec) if min(h, w) >= MS_SSIM_MIN_SIDE else None,
        "encoding_time": enc_time, "decoding_time": dec_time,
        "encoding_peak_memory_mib": enc_mem.mib, "decoding_peak_memory_mib": dec_mem.mib,
    }


# ---------------------------------------------------------------- worker processes
_WORKER: dict = {}


def _set_threads(threads):
    if threads:
        import torch

        torch.set_num_threads(threads)


def _init_worker(codec: Codec, threads, file_dir):
    _set_threads(threads)
    codec.prepare()
    _WORKER.update(codec=codec, file_dir=file_dir)


def _work(path, quality):
    return evaluate_one(_WORKER["codec"], path, quality, _WORKER["file_dir"])


def _progress(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="file", dynamic_ncols=True)


def _mean(values):
    if not values or any(v is None for v in values):
        return None
    return float(np.mean(values))


def aggregate(codec: Codec, records: list[dict]) -> dict:
    """``results`` lists (one entry per quality point, in the codec's order) from per-image records."""
    out = {"quality": list(codec.qualities), **{k: [] for k in AVERAGED}}
    for q in codec.qualities:
        rows = [r for r in records if r["quality"] == q]
        for k in AVERAGED:
            out[k].append(_mean([r[k] for r in rows]))
    # the worst image at each point: what a user must provision for
    out["max_peak_memory_mib"] = [max(max(r["encoding_peak_memory_mib"], r["decoding_peak_memory_mib"])
                                      for r in records if r["quality"] == q) for q in codec.qualities]
    return out


def evaluate(codec: Codec, images: list[Path], *, workers: int = 1, threads: int | None = None,
             progress: bool = True, keep_files=None) -> dict:
    """Run ``codec`` on every image at every quality point; return a results dict (module docstring).

    ``keep_files``: folder to keep the coded files in (else a temporary folder, removed afterwards).
    """
    codec.check_available()
    if workers < 1:
        raise EvaluationError(f"--workers must be at least 1, got {workers}")
    tasks = [(Path(p), q) for q in codec.qualities for p in images]
    records = []
    with tempfile.TemporaryDirectory(prefix="fastlic-eval-") as tmp:
        file_dir = Path(keep_files) if keep_files else Path(tmp)
        file_dir.mkdir(parents=True, exist_ok=True)
        # set up (load weights) before the progress bar, so a bad model or checkpoint fails at once with its
        # own message; worker processes set up again (models are never pickled)
        _init_worker(codec, threads, file_dir)
        t_start = time.perf_counter()
        with _progress(len(tasks), progress, codec.name) as bar:
            if workers == 1:
                for p, q in tasks:
                    records.append(_work(p, q))
                    bar.update()
            else:
                with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                         initargs=(codec, threads, file_dir)) as pool:
                    for fut in as_completed([pool.submit(_work, p, q) for p, q in tasks]):
                        records.append(fut.result())
                        bar.update()
        wall = time.perf_counter() - t_start
    order = {q: i for i, q in enumerate(codec.qualities)}
    records.sort(key=lambda r: (order[r["quality"]], r["image"]))
    return {
        "name": codec.name,
        "description": codec.description,
        "results": aggregate(codec, records),
        "per_image": records,
        "meta": {
            "num_images": len(images), "images": [Path(p).name for p in images],
            "codec": codec.info(), "workers": workers, "threads": threads,
            "memory_method": memory.METHOD, "timing": "wall-clock of encode()/decode() alone, per image",
            "total_wall_time_s": wall, "machine": machine_description(),
        },
    }


def machine_description() -> str:
    import sys

    parts = [f"{os.cpu_count()}-core CPU", platform.machine(), f"Python {sys.version.split()[0]}"]
    if "torch" in sys.modules:
        parts.append(f"torch {sys.modules['torch'].__version__}")
    return ", ".join(parts)
