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
