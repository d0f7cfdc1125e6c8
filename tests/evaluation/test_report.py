"""``fastlic report`` from small results files and a tiny model: the page, its embedded images, and (when
Debian's chromium is installed) a headless screenshot that shows them."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

import fastlic
import fastlic.cli as cli
from fastlic.checkpoint import save_checkpoint
from fastlic.evaluation.report import crop_box, match_size

pytest.importorskip("matplotlib")


def _results(name, bpp, psnr, ms, codec=None):
    return {"name": name, "description": f"{name} test curve",
            "results": {"bpp": bpp, "psnr-rgb": psnr, "ms-ssim-rgb": ms},
            "meta": {"dataset": "tiny", **({"codec": codec} if codec else {})}}


@pytest.fixture
def inputs(tmp_path):
    files = {
        "jpeg.json": _results("jpeg", [0.3, 0.6, 1.2], [26.0, 29.0, 32.0], [0.90, 0.94, 0.97]),
        "webp.json": _results("webp", [0.2, 0.5, 1.0], [26.5, 30.0, 33.0], [0.91, 0.95, 0.975]),
        "vtm.json": _results("VTM", [0.1, 0.4, 0.9], [27.0, 31.0, 34.0], [0.92, 0.96, 0.98]),
        "tiny.json": _results("mlicpp-tiny", [0.25, 0.55], [27.0, 30.5], [0.92, 0.955],
                              codec={"model": "mlicpp-tiny"}),
    }
    for name, data in files.items():
        (tmp_path / name).write_text(json.dumps(data))
    images = tmp_path / "images"
    images.mkdir()
    y, x = np.mgrid[0:80, 0:112]
    for k in range(3):
        a = np.stack([np.sin(x / (4.0 + k)), np.cos(y / 5.0), np.sin((x + y) / 9.0)], -1) * 100 + 128
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(images / f"im{k}.png")
    torch.manual_seed(0)
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, fastlic.create_model("mlicpp-tiny").eval())
    return tmp_path, ckpt


def run(*argv):
    return cli.main([str(a) for a in argv])


def test_report_page(inputs, capsys):
    d, ckpt = inputs
    out = d / "report.html"
    assert run("report", d / "jpeg.json", d / "webp.json", d / "vtm.json", d / "tiny.json", "--anchor", "webp",
               "--images", d / "images", "--checkpoint", ckpt, "--crop", 48, "-o", out) == 0
    page = out.read_text()
    assert "http://" not in page and "https://" not in page  # nothing fetched from the network
    # the BD table is against webp: jpeg is worse (positive), VTM better (negative)
    row = re.search(r"<tr><td>jpeg</td><td class='pos'>\+[\d.]+ %</td>", page)
    assert row, page[:2000]
    assert re.search(r"<tr><td>VTM</td><td class='neg'>-[\d.]+ %</td>", page)
    # RD plot (SVG) and the crops (PNG) are embedded and decodable
    svgs = re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", page)
    assert len(svgs) == 1 and b"<svg" in base64.b64decode(svgs[0])
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    # 2 images (the default) x (original, fastlic, jpeg, webp); VTM has no codec here
    assert len(pngs) == 8
    for p in pngs:
        assert base64.b64decode(p)[:4] == b"\x89PNG"
    assert page.count("im0.png: crop 48×48") == 1 and "im1.png" in page and "im2.png" not in page
    assert "VTM: no codec to re-encode here" in page
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    assert captions[0] == "original" and captions[1].startswith("fastlic mlicpp-tiny<br>")
    sizes = [float(m) for m in re.findall(r"([\d.]+) bpp", " ".join(captions[1:4]))]
    assert len(sizes) == 3  # fastlic, jpeg and webp of im0, each with its bpp
    # an existing report is not overwritten without --force
    capsys.readouterr()
    assert run("report", d / "jpeg.json", "-o", out) == 1
    assert "already exists" in capsys.readouterr().err and out.read_text() == page
    assert run("report", d / "jpeg.json", d / "webp.json", "-o", out, "--force") == 0
    assert "data:image/png" not in out.read_text()  # no --images: curves and table only

    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed: no browser rendering check")
    assert run("report", d / "jpeg.json", d / "webp.json", d / "tiny.json", "--images", d / "images",
               "--checkpoint", ckpt, "--crop", 64, "--zoom", 3, "--num-images", 1, "-o", out, "--force") == 0
    shot = d / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1000,1400", f"--screenshot={shot}", out.as_uri()],
                   capture_output=True, timeout=120, check=True)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(np.int64)
    assert img.shape[:2] == (1400, 1000)
    # the page drew pictures, not just text on white: plenty of saturated (coloured) pixels
    saturation = img.max(axis=2) - img.min(axis=2)
    assert (saturation > 60).mean() > 0.02


def test_report_names_data_sets_without_paths_that_do_not_exist_here(inputs):
    """A results file records the folder it was measured on (../shared/data/kodak): the page names the set."""
    d, _ = inputs
    moved = _results("far", [0.3, 0.6], [27.0, 30.0], [0.9, 0.95])
    moved["meta"]["dataset"] = "../shared/data/kodak-nowhere"
    (d / "far.json").write_text(json.dumps(moved))
    assert run("report", d / "jpeg.json", d / "far.json", "-o", d / "r.html") == 0
    page = (d / "r.html").read_text()
    assert "2 curves on kodak-nowhere, tiny;" in page and "../shared" not in page


def test_report_errors_are_one_line(inputs, capsys):
    d, _ = inputs
    for argv, msg in ((["report", d / "jpeg.json", "--anchor", "nope", "-o", d / "r.html"], "--anchor 'nope'"),
                      (["report", d / "missing.json", "-o", d / "r.html"], "no such results file"),
                      (["report", d / "jpeg.json", "--images", d / "nodir", "-o", d / "r.html"], "does not exist"),
                      (["report", d / "jpeg.json", "--images", d / "images", "--image", "x.png", "-o",
                        d / "r.html"], "no image named x.png"),
                      (["report", d / "jpeg.json", "-o", d / "nodir" / "r.html"], "output directory"),
                      (["report", d / "jpeg.json", "-o", d / "r.png"], "must be named *.html")):
        capsys.readouterr()
        assert run(*argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("fastlic: error:") and msg in err and err.count("\n") == 1, err
        assert not (d / "r.html").exists()


def test_size_match_and_crop_choice():
    sizes = {q: 100 + 7 * q for q in range(0, 101)}
    q, data = match_size(lambda q: b"x" * sizes[q], 400, 0, 100, True)
    assert q == 43 and len(data) == 401  # 7 * 43 + 100 = 401 is the closest to 400
    q, data = match_size(lambda q: b"x" * int(10 * q), 255, 0.0, 60.0, False)
    assert abs(len(data) - 255) <= 1
    image = np.zeros((100, 120, 3), np.uint8)
    image[50:90, 60:100] = np.random.default_rng(0).integers(0, 255, (40, 40, 3))
    top, left, h, w = crop_box(image, 40)
    assert (h, w) == (40, 40) and 40 <= top <= 60 and 40 <= left <= 80
