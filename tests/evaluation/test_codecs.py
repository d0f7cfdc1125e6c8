"""Every classic codec through the runner on two small crops: the rate is the real file's size."""

import os

import pytest

from fastlic.evaluation import codec_names, get_codec
from fastlic.evaluation.base import CodecUnavailableError, EvaluationError
from fastlic.evaluation.classic import CLASSIC_CODECS
from fastlic.evaluation.external import EXTERNAL_CODECS, rgb_to_ycbcr, ycbcr_to_rgb
from fastlic.evaluation.runner import evaluate, find_images, read_image


@pytest.mark.parametrize("name", sorted(CLASSIC_CODECS))
def test_bpp_is_8_times_file_size_over_pixels(name, crops_dir, tmp_path):
    codec = get_codec(name)
    qualities = [codec.qualities[1], codec.qualities[-2]]  # a low and a high rate of the default sweep
    codec = get_codec(name, qualities)
    res = evaluate(codec, find_images(crops_dir), progress=False, keep_files=tmp_path)
    assert len(res["per_image"]) == 2 * len(qualities)
    for r in res["per_image"]:
        f = tmp_path / f"{os.path.splitext(r['image'])[0]}.q{r['quality']}.{codec.extension}"
        assert r["num_bytes"] == f.stat().st_size > 0
        assert r["bpp"] == 8 * f.stat().st_size / (r["height"] * r["width"])
        assert (r["height"], r["width"]) == (176, 200)
        # the file decodes to what was measured: the quality grows with the rate
        assert codec.decode(f.read_bytes(), r["quality"]).shape == (176, 200, 3)
    lo, hi = res["results"]["bpp"]
    assert lo < hi
    assert res["results"]["psnr-rgb"][0] < res["results"]["psnr-rgb"][1]
    assert 20 < res["results"]["psnr-rgb"][0] and res["results"]["psnr-rgb"][1] < 60


def test_default_sweeps_are_increasing_in_rate(crops_dir):
    image = read_image(find_images(crops_dir)[0])
    for name in CLASSIC_CODECS:
        codec = get_codec(name)
        sizes = [len(codec.encode(image, q)) for q in codec.qualities[::3]]
        assert sizes == sorted(sizes), (name, sizes)


def test_external_codecs_absent_are_reported(monkeypatch):
    monkeypatch.setenv("PATH", "")
    for name in EXTERNAL_CODECS:
        codec = get_codec(name)
        with pytest.raises(CodecUnavailableError, match="not found on PATH"):
            codec.check_available()
    assert set(codec_names()) == set(CLASSIC_CODECS) | set(EXTERNAL_CODECS)
    with pytest.raises(EvaluationError, match="unknown codec"):
        get_codec("png")


def test_ycbcr_round_trip_is_within_one_level(crops_dir):
    image = read_image(find_images(crops_dir)[0])
    back = ycbcr_to_rgb(rgb_to_ycbcr(image))
    assert abs(back.astype(int) - image.astype(int)).max() <= 1
