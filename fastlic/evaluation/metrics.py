"""Distortion and rate metrics of the evaluation, as CompressAI and the learned-compression papers compute them.

* PSNR on 8-bit RGB: the reconstruction is first brought to the uint8 image a decoder would write, by *rounding*
  (``floor(x + 0.5)``) and clipping to [0, 255]; truncation would bias every learned codec by about -0.5 levels
  and cost ~0.1 dB. The MSE is taken over all pixels and the three channels together (``psnr-rgb``).
* MS-SSIM: Wang, Simoncelli & Bovik, "Multi-scale structural similarity for image quality assessment" (Asilomar
  2003), five scales with the standard exponents (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 11x11 Gaussian window
  with sigma 1.5, on 0..255 values of each RGB channel, averaged over channels; computed by the
  ``pytorch-msssim`` package (the implementation CompressAI's evaluation uses). Five scales need the shorter
  image side to exceed 160 pixels.
* bpp: ``8 * file_size / (H * W)`` from the bytes of the real file.
"""

from __future__ import annotations

import contextlib

import math

import numpy as np

#: smallest image side that five MS-SSIM scales with an 11-pixel window accept ((11 - 1) * 2**4 = 160)
MS_SSIM_MIN_SIDE = 161


def to_uint8(x) -> np.ndarray:
    """The uint8 image of a reconstruction given in 0..255 (floats are rounded half up, then clipped)."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    return np.clip(np.floor(x.astype(np.float64) + 0.5), 0, 255).astype(np.uint8)


def _check_pair(ref: np.ndarray, rec: np.ndarray):
    if ref.shape != rec.shape:
        raise ValueError(f"image shapes differ: {ref.shape} vs {rec.shape}")
    if ref.ndim != 3 or ref.shape[2] != 3:
        raise ValueError(f"expected H x W x 3 RGB images, got shape {ref.shape}")


def mse(ref: np.ndarray, rec) -> float:
    ref = np.asarray(ref)
    rec = to_uint8(rec)
    _check_pair(ref, rec)
    d = ref.astype(np.float64) - rec.astype(np.float64)
    return float(np.mean(d * d))


def psnr(ref: np.ndarray, rec) -> float:
    """PSNR in dB between a uint8 reference and a reconstruction (rounded to uint8 first); inf if identical."""
    m = mse(ref, rec)
    return math.inf if m == 0 else 10.0 * math.log10(255.0**2 / m)


@contextlib.contextmanager
def _threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def ms_ssim(ref: np.ndarray, rec) -> float:
    """MS-SSIM (Wang 2003, see module docstring) of two H x W x 3 images, on the rounded uint8 reconstruction."""
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    ref = np.asarray(ref)
    rec = to_uint8(rec)
    _check_pair(ref, rec)
    if min(ref.shape[:2]) < MS_SSIM_MIN_SIDE:
        raise ValueError(f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE} pixels a side, got {ref.shape[:2]}")

    def t(a):  # float32 as in CompressAI's evaluation (float64 differs by ~1e-7 and is 4x slower)
        return torch.tensor(a, dtype=torch.float32).permute(2, 0, 1)[None]

    # one thread: the value does not depend on it, and on a shared 2-core CPU one thread was 3x faster than two
    # (2.1 s vs 6.9 s per Kodak image under load) while leaving a core to the codec workers and other jobs
    with torch.no_grad(), _threads(1):
        return float(_ms_ssim(t(ref), t(rec), data_range=255.0))


def bpp(num_bytes: int, num_pixels: int) -> float:
    """Bits per pixel of a file of ``num_bytes`` bytes holding an image of ``num_pixels`` pixels."""
    return 8.0 * num_bytes / num_pixels
