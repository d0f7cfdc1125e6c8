"""PSNR rounds reconstructions to 8 bits (half up), MS-SSIM behaves, bpp comes from the byte count."""

import math

import numpy as np
import pytest

from fastlic.evaluation.metrics import MS_SSIM_MIN_SIDE, bpp, ms_ssim, psnr, to_uint8


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return rng.integers(1, 255, size=(180, 170, 3), dtype=np.uint8)


def test_reconstruction_is_rounded_not_truncated(image):
    # 0.4 above or below each value rounds back to the reference: lossless
    assert psnr(image, image.astype(np.float32) + 0.4) == math.inf
    assert psnr(image, image.astype(np.float32) - 0.4) == math.inf
    # truncation would have turned every -0.4 into -1: PSNR 48.13 dB instead of inf
    assert psnr(image, image - 1) == pytest.approx(10 * math.log10(255**2), abs=1e-9)
    # 0.5 rounds up: every value off by one
    assert psnr(image, image.astype(np.float64) + 0.5) == pytest.approx(48.1308036, abs=1e-6)


def test_rounding_clips_to_8_bits():
    assert to_uint8(np.array([-3.0, 0.49, 0.5, 254.5, 300.0])).tolist() == [0, 0, 1, 255, 255]


def test_psnr_value(image):
    rec = image.astype(np.int16)
    rec[0, 0, 0] += 16  # one error of 16 over N values: MSE = 256 / N
    n = image.size
    assert psnr(image, rec.astype(np.uint8)) == pytest.approx(10 * math.log10(255**2 * n / 256), abs=1e-9)


def test_ms_ssim(image):
    assert ms_ssim(image, image) == pytest.approx(1.0, abs=1e-6)
    noisy = np.clip(image.astype(np.int16) + np.random.default_rng(1).integers(-20, 21, image.shape), 0, 255)
    worse = np.clip(image.astype(np.int16) + np.random.default_rng(1).integers(-60, 61, image.shape), 0, 255)
    assert 0 < ms_ssim(image, worse) < ms_ssim(image, noisy) < 1
    with pytest.raises(ValueError, match="at least"):
        ms_ssim(image[: MS_SSIM_MIN_SIDE - 1], image[: MS_SSIM_MIN_SIDE - 1])


def test_bpp():
    assert bpp(1000, 512 * 768) == 8000 / (512 * 768)
