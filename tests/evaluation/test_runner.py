"""Results files: CompressAI's JSON shape, per-image details, averages, workers, atomic writes."""

import json

import numpy as np
import pytest

from fastlic.evaluation import get_codec
from fastlic.evaluation.base import EvaluationError
from fastlic.evaluation.results import load_results, write_json_atomic
from fastlic.evaluation.runner import find_images


@pytest.fixture(scope="module")
def webp_results(crops_dir):
    from fastlic.evaluation.runner import evaluate

    return evaluate(get_codec("webp", [20, 80]), find_images(crops_dir), progress=False)


def test_results_have_compressai_shape_and_per_image_details(webp_results, tmp_path):
    path = tmp_path / "webp.json"
    write_json_atomic(path, webp_results)
    data = json.loads(path.read_text())
    assert data["name"] == "webp" and isinstance(data["description"], str)
    res = data["results"]
    for key in ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"):
        assert len(res[key]) == 2 and all(isinstance(v, float) for v in res[key])
    assert res["quality"] == [20, 80]
    per = data["per_image"]
    assert len(per) == 4 and {r["image"] for r in per} == {"kodim23-a.png", "kodim23-b.png"}
    for i, q in enumerate((20, 80)):
        rows = [r for r in per if r["quality"] == q]
        for key in ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time"):
            assert res[key][i] == pytest.approx(np.mean([r[key] for r in rows]))
    assert data["meta"]["memory_method"] in ("rss-hwm", "tracemalloc")
    assert load_results(path)["name"] == "webp"


def test_parallel_workers_give_the_same_files(webp_results, crops_dir):
    from fastlic.evaluation.runner import evaluate

    par = evaluate(get_codec("webp", [20, 80]), find_images(crops_dir), workers=2, progress=False)
    key = lambda r: (r["quality"], r["image"], r["num_bytes"], r["psnr-rgb"])  # noqa: E731
    assert [key(r) for r in par["per_image"]] == [key(r) for r in webp_results["per_image"]]


def test_find_images_errors(tmp_path):
    with pytest.raises(EvaluationError, match="does not exist"):
        find_images(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(EvaluationError, match="no images"):
        find_images(tmp_path)


def test_bad_results_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{\"results\": ")
    with pytest.raises(EvaluationError, match="not valid JSON"):
        load_results(bad)
    bad.write_text(json.dumps({"results": {"bpp": [0.1, 0.2], "psnr-rgb": [30.0]}}))
    with pytest.raises(EvaluationError, match="has 1 values"):
        load_results(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(EvaluationError, match="not a results file"):
        load_results(bad)
