"""Learned models go through the same runner as JPEG: .flic files, one rate point per checkpoint."""

import pytest
import torch

from fastlic.checkpoint import save_checkpoint
from fastlic.errors import FastlicError
from fastlic.evaluation.base import EvaluationError
from fastlic.evaluation.learned import LearnedCodec
from fastlic.evaluation.runner import evaluate, find_images
from fastlic.registry import create_model


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        m = create_model("mlicpp-tiny")
        m.update()
        paths.append(d / f"tiny{seed}.pt")
        save_checkpoint(paths[-1], m, {"seed": seed})
    return paths


def test_one_point_per_checkpoint_with_real_flic_files(checkpoints, crops_dir, tmp_path):
    codec = LearnedCodec("mlicpp-tiny", checkpoints)
    res = evaluate(codec, find_images(crops_dir, limit=1), progress=False, keep_files=tmp_path)
    assert res["results"]["quality"] == [0, 1] and res["name"] == "mlicpp-tiny"
    files = sorted(tmp_path.glob("*.flic"))
    assert len(files) == 2
    for r, f in zip(res["per_image"], files):
        assert r["bpp"] == 8 * f.stat().st_size / (r["height"] * r["width"])
    # the two checkpoints are different weights: different files
    assert files[0].read_bytes() != files[1].read_bytes()


def test_random_init_and_bad_arguments(crops_dir, checkpoints):
    res = evaluate(LearnedCodec("mlicpp-tiny", random_init=True), find_images(crops_dir, limit=1), progress=False)
    assert res["results"]["bpp"][0] > 0 and res["description"].endswith("(random weights)")
    with pytest.raises(EvaluationError, match="does not exist"):
        LearnedCodec("mlicpp-tiny", [checkpoints[0].with_name("missing.pt")])
    with pytest.raises(EvaluationError, match="not both"):
        LearnedCodec("mlicpp-tiny", checkpoints, qualities=[1, 2])
    with pytest.raises(EvaluationError, match="unknown model"):
        LearnedCodec("nope", random_init=True).prepare()


def test_qualities_of_one_variable_rate_checkpoint(crops_dir, tmp_path):
    """A run's weights file of a variable-rate model (not bundled) evaluated at several qualities."""
    torch.manual_seed(0)
    m = create_model("mlicpp-tiny-vr", num_rates=3, gain_spread=16.0)
    m.update()
    ckpt = tmp_path / "vr.pt"
    save_checkpoint(ckpt, m)
    res = evaluate(LearnedCodec("mlicpp-tiny-vr", [ckpt], qualities=[0, 2]), find_images(crops_dir, limit=1),
                   progress=False)
    assert res["results"]["quality"] == [0, 2]
    lo, hi = res["results"]["bpp"]
    assert lo < hi


def test_ordo_points_cost_no_more_than_plain_coding(crops_dir, tmp_path):
    """``fastlic eval --ordo``: the λ of each quality comes from the checkpoint, and every point's RD cost
    (bpp + λ·255²·MSE, measured on the real files) is at most plain coding's."""
    torch.manual_seed(0)
    m = create_model("mlicpp-tiny-vr", num_rates=3, gain_spread=16.0)
    m.update()
    lambdas = [0.002, 0.008, 0.032]
    ckpt = tmp_path / "vr.pt"
    save_checkpoint(ckpt, m, {"lambda": lambdas})
    images = find_images(crops_dir, limit=1)
    plain = evaluate(LearnedCodec("mlicpp-tiny-vr", [ckpt], qualities=[0, 2]), images, progress=False)
    ordo = evaluate(LearnedCodec("mlicpp-tiny-vr", [ckpt], qualities=[0, 2], ordo=True), images, progress=False)
    assert ordo["name"] == "mlicpp-tiny-vr+ordo" and ordo["meta"]["codec"]["ordo"] is True
    for k, lmbda in enumerate((lambdas[0], lambdas[2])):
        cost = [r["bpp"][k] + lmbda * 255 ** 2 * 10 ** (-r["psnr-rgb"][k] / 10) for r in
                (plain["results"], ordo["results"])]
        assert cost[1] <= cost[0] * (1 + 1e-6)
    with pytest.raises(EvaluationError, match="only used with --ordo"):
        LearnedCodec("mlicpp-tiny-vr", [ckpt], qualities=[0], lmbda=0.01)
    bare = tmp_path / "bare.pt"
    save_checkpoint(bare, m)
    with pytest.raises(FastlicError, match="pass --lmbda"):
        LearnedCodec("mlicpp-tiny-vr", [bare], qualities=[0], ordo=True).prepare()
