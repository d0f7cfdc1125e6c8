"""The command line as a user meets it: round trips, and one-line errors for every kind of bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fastlic
from fastlic.checkpoint import save_checkpoint
from fastlic.cli import main


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    m = fastlic.create_model("mlicpp-tiny").eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, m, {"note": "random weights for tests"})
    return path


@pytest.fixture
def image(tmp_path):
    rng = np.random.default_rng(0)
    arr = (rng.random((45, 70, 3)) * 255).astype(np.uint8)
    path = tmp_path / "img.png"
    Image.fromarray(arr).save(path)
    return path, arr


def run(*args):
    return main([str(a) for a in args])


def _err_lines(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    return [e for e in err if not e.startswith("fastlic: warning")]


def test_compress_decompress_info(tmp_path, image, ckpt, capsys):
    path, arr = image
    flic, out = tmp_path / "a.flic", tmp_path / "a.png"
    assert run("compress", path, "-o", flic, "--checkpoint", ckpt, "--threads", 2) == 0
    assert run("decompress", flic, "-o", out, "--checkpoint", ckpt) == 0
    dec = np.asarray(Image.open(out))
    assert dec.shape == arr.shape
    assert run("info", flic) == 0
    text = capsys.readouterr().out
    assert "mlicpp-tiny" in text and "70x45" in text and "bpp" in text


def test_decompress_without_weights_or_with_other_weights(tmp_path, image, ckpt, capsys):
    path, _ = image
    flic = tmp_path / "a.flic"
    assert run("compress", path, "-o", flic, "--checkpoint", ckpt) == 0
    capsys.readouterr()
    assert run("decompress", flic, "-o", tmp_path / "x.png") == 1  # nothing bundled for mlicpp-tiny
    torch.manual_seed(1)
    other = tmp_path / "other.pt"
    save_checkpoint(other, fastlic.create_model("mlicpp-tiny").eval())
    assert run("decompress", flic, "-o", tmp_path / "x.png", "--checkpoint", other) == 1
    err = _err_lines(capsys)
    assert len(err) == 2 and "other weights" in err[1]
    assert not (tmp_path / "x.png").exists()


def _bad_inputs(tmp_path, good_flic: bytes, png: Path):
    cases = {}
    cases["truncated.flic"] = good_flic[: len(good_flic) // 2]
    flipped = bytearray(good_flic)
    flipped[len(flipped) // 2] ^= 0x10
    cases["flipped.flic"] = bytes(flipped)
    cases["renamed_png.flic"] = png.read_bytes()
    cases["empty.flic"] = b""
    paths = {}
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        paths[name] = p
    return paths


def test_bad_flic_files_give_one_line_errors(tmp_path, image, ckpt, capsys):
    path, _ = image
    good = tmp_path / "good.flic"
    assert run("compress", path, "-o", good, "--checkpoint", ckpt) == 0
    for name, bad in _bad_inputs(tmp_path, good.read_bytes(), path).items():
        capsys.readouterr()
        out = tmp_path / f"{name}.png"
        assert run("decompress", bad, "-o", out, "--checkpoint", ckpt) == 1, name
        err = _err_lines(capsys)
        assert len(err) == 1 and err[0].startswith("fastlic: error:") and str(bad) in err[0], (name, err)
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    assert run("decompress", tmp_path / "missing.flic", "-o", tmp_path / "m.png", "--checkpoint", ckpt) == 1


def test_bad_images_give_one_line_errors(tmp_path, ckpt, capsys):
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    cases = [(text, "not a readable image"), (tmp_path / "missing.png", "no such file")]
    for src, msg in cases:
        capsys.readouterr()
        out = tmp_path / "o.flic"
        assert run("compress", src, "-o", out, "--checkpoint", ckpt) == 1
        err = _err_lines(capsys)
        assert len(err) == 1 and msg in err[0] and str(src) in err[0]
        assert not out.exists()
    assert run("compress", text, "-o", tmp_path / "nodir" / "o.flic", "--checkpoint", ckpt) == 1


def test_directory_with_mixed_content(tmp_path, image, ckpt, capsys):
    path, _ = image
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.png").write_bytes(path.read_bytes())
    (src / "b.txt").write_text("hello")
    (src / "c.png").write_bytes(b"\x89PNG broken")
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(src / "d.png")  # grayscale: converted with a warning
    out = tmp_path / "out"
    out.mkdir()
    capsys.readouterr()
    assert run("compress", src, "-o", out, "--checkpoint", ckpt) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "fastlic: 2 compressed, 2 failed"
    errors = [e for e in err if e.startswith("fastlic: error:")]
    assert len(errors) == 2 and "b.txt" in errors[0] and "c.png" in errors[1]
    assert any("grayscale" in e for e in err if e.startswith("fastlic: warning:"))
    assert sorted(p.name for p in out.iterdir()) == ["a.flic", "d.flic"]
    assert run("compress", src, "-o", tmp_path / "missing_dir", "--checkpoint", ckpt) == 1


def test_compress_without_bundled_weights_says_so(image, tmp_path, capsys):
    path, _ = image
    assert run("compress", path, "-o", tmp_path / "x.flic", "--model", "mlicpp-tiny") == 1
    err = _err_lines(capsys)
    assert len(err) == 1 and "no trained weights are bundled" in err[0]


def test_console_script_and_demo(tmp_path):
    """The installed entry point runs the README's main job end to end (no traceback, exit 0)."""
    exe = Path(sys.executable).with_name("fastlic")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fastlic.cli"]
    res = subprocess.run(cmd + ["demo", "-o", str(tmp_path)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert res.returncode == 0, res.stderr
    assert "PSNR" in res.stdout and "bpp" in res.stdout
    assert (tmp_path / "demo.flic").exists() and (tmp_path / "demo.png").exists()
    res = subprocess.run(cmd + ["decompress", str(tmp_path / "nope.flic"), "-o", str(tmp_path / "n.png")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr and res.stderr.count("\n") == 1


def test_convert_checkpoint(tmp_path, capsys):
    from fastlic.codec import load_model
    from fastlic.models.mlicpp import MLICPlusPlus

    torch.manual_seed(0)
    src_model = MLICPlusPlus(N=32, M=64, slice_num=2, ep_hidden=(32, 32, 32), cc_hidden=(32, 32),
                             lrp_hidden=(32, 32))
    # an official-style checkpoint: module. prefix, legacy names, training extras
    sd = {}
    for k, v in src_model.state_dict().items():
        if "_table_" in k:
            continue
        k = k.replace("entropy_bottleneck.matrices.", "entropy_bottleneck._matrix")
        sd["module." + k] = v
    ref = tmp_path / "ref.pth.tar"
    torch.save({"epoch": 7, "state_dict": sd, "optimizer": {}, "loss": torch.tensor(1.5)}, ref)
    out = tmp_path / "conv.pt"
    assert run("convert-checkpoint", ref, "-o", out) == 0
    model = load_model(checkpoint=out)
    assert model.model_name == "mlicpp" and model.checkpoint_meta["epoch"] == 7
    assert model.config["ep_hidden"] == (32, 32, 32) or list(model.config["ep_hidden"]) == [32, 32, 32]
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = src_model.eval()(x)["x_hat"]
        assert torch.equal(model(x)["x_hat"], expected)
    # the raw reference file also works directly as --checkpoint
    direct = load_model(checkpoint=ref)
    assert direct.fingerprint() == model.fingerprint()
    bad = tmp_path / "bad.pth.tar"
    torch.save({"state_dict": {"module.g_a.analysis_transform.0.conv1.weight": torch.zeros(3)}}, bad)
    capsys.readouterr()
    assert run("convert-checkpoint", bad, "-o", tmp_path / "b.pt") == 1
    assert len(_err_lines(capsys)) == 1 and not (tmp_path / "b.pt").exists()


def test_full_disk_leaves_no_partial_file(tmp_path, image, ckpt, capsys, monkeypatch):
    import errno

    import fastlic.io as fio

    path, _ = image

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fio.os, "fsync", full)
    out = tmp_path / "o.flic"
    capsys.readouterr()
    assert run("compress", path, "-o", out, "--checkpoint", ckpt) == 1
    err = _err_lines(capsys)
    assert len(err) == 1 and "No space left" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png"]


def test_sigint_never_leaves_a_partial_file(tmp_path, ckpt):
    import signal
    import time

    big = tmp_path / "big.png"
    Image.fromarray((np.random.default_rng(0).random((1500, 1500, 3)) * 255).astype(np.uint8)).save(big)
    out = tmp_path / "big.flic"
    exe = Path(sys.executable).with_name("fastlic")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fastlic.cli"]
    proc = subprocess.Popen(cmd + ["compress", str(big), "-o", str(out), "--checkpoint", str(ckpt)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)  # mid-encode on the machines we know (torch imports in ~1 s, the encode takes longer)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    if proc.returncode == 130:
        assert not out.exists()
    else:  # finished before the signal, or got it while the interpreter shut down (Python has restored the
        # default handler then, so the signal kills it: -2): either way the file is complete
        assert proc.returncode in (0, -signal.SIGINT) and run("info", out) == 0


def test_ordo_flag(tmp_path, image, capsys):
    torch.manual_seed(0)
    m = fastlic.create_model("econtextformer-tiny").eval()
    ck = tmp_path / "ecf.pt"
    save_checkpoint(ck, m, {"lmbda": 0.0067})
    path, _ = image
    out = tmp_path / "o.flic"
    assert run("compress", path, "-o", out, "--checkpoint", ck, "--ordo") == 0
    assert run("decompress", out, "-o", tmp_path / "o.png", "--checkpoint", ck) == 0
    capsys.readouterr()
    serial = tmp_path / "serial.pt"
    save_checkpoint(serial, fastlic.create_model("contextformer-tiny").eval())
    assert run("compress", path, "-o", tmp_path / "p.flic", "--checkpoint", serial, "--ordo") == 1
    assert "does not support --ordo" in capsys.readouterr().err
    tiny = tmp_path / "tiny.pt"
    save_checkpoint(tiny, fastlic.create_model("mlicpp-tiny").eval())  # no lambda in its metadata
    assert run("compress", path, "-o", tmp_path / "p.flic", "--checkpoint", tiny, "--ordo") == 1
    assert "pass --lmbda" in capsys.readouterr().err
    assert not (tmp_path / "p.flic").exists()
    assert run("compress", path, "-o", tmp_path / "p.flic", "--checkpoint", tiny, "--ordo", "--lmbda", "0.01") == 0
    assert run("decompress", tmp_path / "p.flic", "-o", tmp_path / "p.png", "--checkpoint", tiny) == 0


def test_ordo_flag_on_a_variable_rate_model_uses_the_lambda_of_the_quality(tmp_path, image, capsys):
    torch.manual_seed(0)
    ck = tmp_path / "ecf-vr.pt"
    save_checkpoint(ck, fastlic.create_model("econtextformer-tiny-vr", num_rates=3).eval(),
                    {"lambda": [0.002, 0.008, 0.032]})  # as fastlic train writes it
    path, _ = image
    a, b = tmp_path / "a.flic", tmp_path / "b.flic"
    assert run("compress", path, "-o", a, "--checkpoint", ck, "--ordo", "--quality", "1.5") == 0
    assert run("compress", path, "-o", b, "--checkpoint", ck, "--ordo", "--quality", "1.5", "--lmbda", "0.016") == 0
    assert a.read_bytes() == b.read_bytes()
    assert run("decompress", a, "-o", tmp_path / "a.png", "--checkpoint", ck) == 0
    save_checkpoint(ck, fastlic.create_model("econtextformer-tiny-vr", num_rates=3).eval(), {"lmbda": [0.002, 0.008]})
    capsys.readouterr()
    assert run("compress", path, "-o", tmp_path / "c.flic", "--checkpoint", ck, "--ordo") == 1
    assert "pass --lmbda" in capsys.readouterr().err


# ----- conventional defaults: output names, no overwriting without --force, --quiet/--verbose, exit codes -----


def _one_error(capsys):
    err = _err_lines(capsys)
    assert len(err) == 1 and err[0].startswith("fastlic: error:"), err
    return err[0]


def test_default_output_names_and_no_overwrite_without_force(tmp_path, image, ckpt, capsys):
    path, _ = image  # tmp_path/img.png
    flic = tmp_path / "img.flic"
    assert run("compress", path, "--checkpoint", ckpt) == 0
    assert flic.is_file() and f"-> {flic}" in capsys.readouterr().out
    first = flic.read_bytes()
    flic.write_bytes(b"keep me")  # a file that must survive
    assert run("compress", path, "--checkpoint", ckpt) == 1
    msg = _one_error(capsys)
    assert str(flic) in msg and "already exists" in msg and "--force" in msg
    assert flic.read_bytes() == b"keep me"
    assert run("compress", path, "--checkpoint", ckpt, "--force") == 0
    assert flic.read_bytes() == first

    # the case: decompressing next to the lossless original must not replace it
    original = path.read_bytes()
    assert run("decompress", flic, "--checkpoint", ckpt) == 1
    msg = _one_error(capsys)
    assert str(path) in msg and "already exists" in msg
    assert path.read_bytes() == original
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    outdir = tmp_path / "decoded"
    outdir.mkdir()
    assert run("decompress", flic, "-o", outdir, "--checkpoint", ckpt) == 0
    assert np.asarray(Image.open(outdir / "img.png")).shape == (45, 70, 3)
    assert run("decompress", flic, "-o", outdir, "--checkpoint", ckpt) == 1
    assert "already exists" in _one_error(capsys)
    assert run("decompress", flic, "--checkpoint", ckpt, "-f") == 0
    assert path.read_bytes() != original and Image.open(path).size == (70, 45)


def test_output_directory_for_compress(tmp_path, image, ckpt, capsys):
    path, _ = image
    out = tmp_path / "out"
    out.mkdir()
    assert run("compress", path, "-o", out, "--checkpoint", ckpt) == 0
    assert (out / "img.flic").is_file() and not (tmp_path / "img.flic").exists()
    assert run("compress", path, "-o", tmp_path / "a.flic", "--checkpoint", ckpt) == 0  # -o FILE still works
    assert run("info", tmp_path / "a.flic") == 0


def test_quiet_and_verbose(tmp_path, image, ckpt, capsys):
    path, _ = image
    rgba = tmp_path / "alpha.png"
    Image.fromarray(np.full((20, 30, 4), 99, np.uint8), "RGBA").save(rgba)
    capsys.readouterr()
    assert run("compress", rgba, "--checkpoint", ckpt, "--quiet") == 0
    out, err = capsys.readouterr()
    assert out == "" and err == "" and (tmp_path / "alpha.flic").is_file()
    assert run("compress", path, "--checkpoint", ckpt, "--verbose") == 0
    out = capsys.readouterr().out
    assert "model mlicpp-tiny, weights" in out and "1 tile(s)" in out and "bpp" in out
    assert run("decompress", tmp_path / "img.flic", "-o", tmp_path / "d.png", "--checkpoint", ckpt, "-q") == 0
    assert capsys.readouterr() == ("", "")
    # errors are printed even with --quiet
    assert run("decompress", tmp_path / "img.flic", "-o", tmp_path / "d.png", "--checkpoint", ckpt, "-q") == 1
    assert "already exists" in _one_error(capsys)


@pytest.mark.parametrize("argv", [["compress"], ["decompress"], ["compress", "x.png", "--quiet", "--verbose"],
                                  ["compress", "x.png", "--quality", "nan?"], ["nope"]])
def test_usage_errors_exit_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        run(*argv)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_batch_beside_inputs_keeps_going_and_summarizes(tmp_path, image, ckpt, capsys):
    path, _ = image
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.png", "b.png"):
        (src / name).write_bytes(path.read_bytes())
    (src / "b.bmp").write_bytes(path.read_bytes())  # same stem as b.png: would overwrite b.flic
    (src / "c.png").write_text("not an image")
    capsys.readouterr()
    assert run("compress", src, "--checkpoint", ckpt) == 1
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert lines[-1] == "fastlic: 2 compressed, 2 failed"
    assert any("b.bmp" in e and "would overwrite" in e for e in lines)
    assert any("c.png" in e and "not a readable image" in e for e in lines)
    assert sorted(p.name for p in src.glob("*.flic")) == ["a.flic", "b.flic"]
    b_bytes = (src / "b.flic").read_bytes()
    (src / "b.bmp").unlink()
    (src / "c.png").unlink()
    # again: the .flic files beside the images are not inputs, the existing outputs are refused one by one
    assert run("compress", src, "--checkpoint", ckpt) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == "fastlic: 0 compressed, 2 failed" and sum("already exists" in e for e in lines) == 2
    assert (src / "b.flic").read_bytes() == b_bytes
    # decompress a directory into another one: only the .flic files are inputs
    dec = tmp_path / "dec"
    dec.mkdir()
    assert run("decompress", src, "-o", dec, "--checkpoint", ckpt) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "2 decompressed, 0 failed"
    assert sorted(p.name for p in dec.iterdir()) == ["a.png", "b.png"]
    assert run("compress", src, "-o", tmp_path / "img.png", "--checkpoint", ckpt) == 1
    assert "is not a directory" in _one_error(capsys)


def test_write_without_overwrite_is_atomic_and_leaves_the_old_file(tmp_path):
    from fastlic.io import OutputExistsError, write_bytes, write_image

    target = tmp_path / "t.bin"
    write_bytes(target, b"one", overwrite=False)
    with pytest.raises(OutputExistsError, match="already exists"):
        write_bytes(target, b"two", overwrite=False)
    with pytest.raises(OutputExistsError):
        write_image(target, np.zeros((4, 4, 3), np.uint8), overwrite=False)
    assert target.read_bytes() == b"one" and sorted(p.name for p in tmp_path.iterdir()) == ["t.bin"]
    write_bytes(target, b"two")  # overwrite=True (the default) replaces it
    assert target.read_bytes() == b"two"
