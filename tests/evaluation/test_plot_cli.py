"""``fastlic eval / bdrate / plot`` end to end, and their one-line errors."""

import json

import pytest

import fastlic.cli as cli


@pytest.fixture
def run(monkeypatch, capsys):
    # only this branch's commands, whatever else COMMAND_MODULES lists
    monkeypatch.setattr(cli, "COMMAND_MODULES", [m for m in cli.COMMAND_MODULES if m == "eval_cmds"])

    def run(*argv):
        code = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_eval_bdrate_plot_end_to_end(run, crops_dir, anchors_dir, tmp_path):
    a, b = tmp_path / "jpeg.json", tmp_path / "webp.json"
    code, out, err = run("eval", "--codec", "jpeg", "--data", crops_dir, "-o", a, "--qualities", "20", "50", "80",
                         "--no-progress")
    assert code == 0, err
    assert "jpeg: 2 images x 3 points" in out
    assert json.loads(a.read_text())["meta"]["command"].startswith("fastlic ")
    assert run("eval", "--codec", "webp", "--data", crops_dir, "-o", b, "--qualities", "10", "40", "80",
               "--limit", "1", "--no-progress")[0] == 0
    assert len(json.loads(b.read_text())["per_image"]) == 3

    code, out, err = run("bdrate", anchors_dir / "vtm.json", anchors_dir / "mlicpp_paper_mse.json")
    assert code == 0 and "BD-rate -15.0" in out
    code, out, err = run("bdrate", anchors_dir / "vtm.json", anchors_dir / "mlicpp_paper_mse.json", "--per-point")
    points = [line for line in out.splitlines() if " bpp at " in line]
    assert code == 0 and len(points) == len(json.loads((anchors_dir / "mlicpp_paper_mse.json").read_text())
                                            ["results"]["bpp"])
    assert all("rate " in line or "outside the anchor's range" in line for line in points)
    code, out, err = run("bdrate", a, b, "--metric", "ms-ssim-rgb")
    assert code == 0 and "BD-rate" in out

    png = tmp_path / "rd.png"
    code, out, err = run("plot", a, b, "--anchor", anchors_dir, "-o", png, "--title", "test")
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(png) as im:
        assert im.size[0] > 1000 and im.size[1] > 500


@pytest.mark.parametrize("make_args, message", [
    (lambda d: ["eval", "--codec", "jpeg", "--data", d / "missing", "-o", d / "o.json"], "does not exist"),
    (lambda d: ["eval", "--codec", "jpeg", "--data", d / "empty", "-o", d / "o.json"], "no images"),
    (lambda d: ["eval", "--codec", "gif", "--data", d / "imgs", "-o", d / "o.json"], "unknown codec"),
    (lambda d: ["eval", "--codec", "jpeg", "--data", d / "imgs", "-o", d / "o.json", "--workers", "0"],
     "--workers"),
    (lambda d: ["eval", "--codec", "jpeg", "--checkpoint", d / "x.pt", "--data", d / "imgs", "-o", d / "o.json"],
     "apply to --model"),
    (lambda d: ["eval", "--model", "nope", "--random-init", "--data", d / "imgs", "-o", d / "o.json"],
     "unknown model"),
    (lambda d: ["eval", "--model", "mlicpp-tiny", "--checkpoint", d / "x.pt", "--data", d / "imgs", "-o",
                d / "o.json"], "does not exist"),
    (lambda d: ["bdrate", d / "bad.json", d / "bad.json"], "not valid JSON"),
    (lambda d: ["bdrate", d / "nothere.json", d / "bad.json"], "no such results file"),
    (lambda d: ["plot", d / "bad.json", "-o", d / "rd.png"], "not valid JSON"),
])
def test_cli_errors_are_one_line(run, tmp_path, crops_dir, make_args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "imgs").symlink_to(crops_dir)
    (tmp_path / "bad.json").write_text("{ not json")
    code, out, err = run(*make_args(tmp_path))
    assert code == 1
    assert err.startswith("fastlic: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "o.json").exists() and not (tmp_path / "rd.png").exists()


def test_unavailable_external_codec_is_a_clear_note(run, tmp_path, crops_dir, monkeypatch):
    monkeypatch.setenv("PATH", "")
    code, out, err = run("eval", "--codec", "vtm", "--data", crops_dir, "-o", tmp_path / "v.json")
    assert code == 1 and "vtm is not available: EncoderAppStatic and DecoderAppStatic not found on PATH" in err


def _curve(path, name, bpp, psnr):
    path.write_text(json.dumps({"name": name, "results": {"bpp": bpp, "psnr-rgb": psnr,
                                                          "ms-ssim-rgb": [0.9 + 0.01 * k for k in range(len(bpp))]}}))
    return path


def test_plot_output_is_checked_and_never_replaced_without_force(run, tmp_path):
    """`plot -o nodir/rd.png` is one line, not a traceback; an existing plot needs --force (issue 42)."""
    pytest.importorskip("matplotlib")
    a = _curve(tmp_path / "a.json", "a", [0.2, 0.5, 1.0], [28.0, 31.0, 34.0])
    for out, message in ((tmp_path / "nodir" / "rd.png", "output directory"),
                         (tmp_path / "rd.xyz", "unknown plot extension '.xyz' (use .png, .pdf, .svg)"),
                         (tmp_path / "rd", "no plot extension")):
        code, _, err = run("plot", a, "-o", out)
        assert code == 1 and err.startswith("fastlic: error: ") and message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    svg = tmp_path / "rd.svg"
    assert run("plot", a, "-o", svg)[0] == 0 and b"<svg" in svg.read_bytes()
    svg.write_text("keep")
    code, _, err = run("plot", a, "-o", svg)
    assert code == 1 and "already exists; use --force" in err and svg.read_text() == "keep"
    assert run("plot", a, "-o", svg, "--force")[0] == 0 and b"<svg" in svg.read_bytes()


@pytest.fixture
def small_images(tmp_path):
    from PIL import Image
    import numpy as np

    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):
        Image.fromarray((rng.random((40, 56, 3)) * 255).astype(np.uint8)).save(d / f"i{k}.png")
    return d


def test_eval_output_is_checked_before_the_evaluation(run, tmp_path, small_images, monkeypatch):
    import fastlic.evaluation.runner as runner

    calls = []
    monkeypatch.setattr(runner, "evaluate_one", lambda *a: calls.append(a))
    existing = tmp_path / "old.json"
    existing.write_text("{}")
    for out, message in ((existing, "already exists; use --force"), (tmp_path / "nodir" / "o.json", "directory"),
                         (tmp_path / "o.txt", "must be named *.json")):
        code, _, err = run("eval", "--codec", "jpeg", "--data", small_images, "-o", out, "--quality", 50)
        assert code == 1 and message in err and err.count("\n") == 1, err
    assert calls == [] and existing.read_text() == "{}"  # refused before any image was coded


def test_eval_quality_of_a_learned_model_is_0_to_100(run, tmp_path, small_images):
    out = tmp_path / "vr.json"
    code, stdout, err = run("eval", "--model", "mlicpp-tiny-vr", "--random-init", "--data", small_images,
                            "--limit", 1, "--quality", 25, 100, "-o", out)
    assert code == 0, err
    data = json.loads(out.read_text())
    top = data["meta"]["quality_scale"]["native"][-1]
    assert data["results"]["quality"] == [top / 4, top] and data["meta"]["quality_scale"]["from 0-100"] == [25, 100]
    code, stdout, err = run("eval", "--model", "mlicpp-tiny-vr", "--random-init", "--data", small_images,
                            "--limit", 1, "--native-quality", 1, "-o", out, "--force")
    assert code == 0 and json.loads(out.read_text())["results"]["quality"] == [1]
    # values that look like the native scale of old are taken on 0-100, with a warning
    code, stdout, err = run("eval", "--model", "mlicpp-tiny-vr", "--random-init", "--data", small_images,
                            "--limit", 1, "--quality", 0, 1, "-o", out, "--force")
    assert code == 0 and "--quality 0 1 is on the 0-100 scale" in err and "--native-quality" in err
    assert "q=1 (native " in stdout
