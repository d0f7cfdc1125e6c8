"""The command line as a user meets it: round trips, and one-line errors for every kind of bad input."""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fastlic
from fastlic import numerics
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
    # both in the exact mode: under auto the converted (official) weights prefer fp32 and the source model would
    # run bf16 transforms on a CPU with native bf16
    with torch.no_grad(), numerics.precision("fp32"):
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
    assert run("compress", path, "-o", a, "--checkpoint", ck, "--ordo", "--native-quality", "1.5") == 0
    assert run("compress", path, "-o", b, "--checkpoint", ck, "--ordo", "--native-quality", "1.5",
               "--lmbda", "0.016") == 0
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



# ----- issue 42: outputs like cwebp/avifenc/gzip, stdin/stdout, quality 0-100, targets, progress, help -----


@pytest.fixture(scope="module")
def vr_ckpt(tmp_path_factory):
    """A random variable-rate tiny MLIC++ with 5 rate points (native [0, 4], like the bundled default)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vr") / "tiny-vr.pt"
    save_checkpoint(path, fastlic.create_model("mlicpp-tiny-vr", num_rates=5).eval())
    return path


def _quality_of(path):
    from fastlic import container

    return container.unpack(Path(path).read_bytes()).quality


def test_output_paths_are_checked_before_any_work(tmp_path, image, ckpt, capsys):
    path, _ = image
    cases = [
        (["compress", path, "-o", f"{tmp_path / 'nodir'}/"], "nodir/: output directory does not exist"),
        (["compress", path, "-o", tmp_path / "nodir" / "x.flic"], "output directory"),
        (["compress", path, "-o", tmp_path / "out.png"], "a compressed file must be named *.flic (not '.png')"),
        (["compress", path, "-o", tmp_path / "out"], "must be named *.flic (no extension)"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert run(*argv, "--checkpoint", ckpt) == 1, argv
        assert message in _one_error(capsys), argv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png"]  # no file named nodir, out.png or out
    flic = tmp_path / "a.flic"
    assert run("compress", path, "-o", flic, "--checkpoint", ckpt, "-q") == 0
    for name, message in (("k.xyz", "unknown image extension '.xyz' (use one of .png, .jpg"),
                          ("k.flic", "not as .flic"), ("k", "no image extension"),
                          (f"{tmp_path / 'nodir'}/", "nodir/: output directory does not exist")):
        capsys.readouterr()
        out = tmp_path / name if not name.endswith("/") else name
        assert run("decompress", flic, "-o", out, "--checkpoint", ckpt) == 1, name
        assert message in _one_error(capsys), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.flic", "img.png"]
    # a known extension picks the format
    for name, fmt in (("d.png", "PNG"), ("d.jpg", "JPEG"), ("d.webp", "WEBP"), ("d.tif", "TIFF"), ("d.bmp", "BMP"),
                      ("d.ppm", "PPM")):
        assert run("decompress", flic, "-o", tmp_path / name, "--checkpoint", ckpt, "-q") == 0
        with Image.open(tmp_path / name) as im:
            assert (im.format, im.size) == (fmt, (70, 45)), name


class _Stream(io.TextIOWrapper):
    """A standard stream over bytes: a pipe (``tty=False``) or a terminal."""

    def __init__(self, data: bytes = b"", tty: bool = False):
        super().__init__(io.BytesIO(data))
        self.tty = tty

    def isatty(self):
        return self.tty


def test_dash_is_stdin_and_stdout(tmp_path, image, ckpt, capsys, monkeypatch):
    path, arr = image
    ref = tmp_path / "ref.flic"
    assert run("compress", path, "-o", ref, "--checkpoint", ckpt, "-q") == 0
    # compress - -o x.flic: the image from standard input
    monkeypatch.setattr(sys, "stdin", _Stream(path.read_bytes()))
    assert run("compress", "-", "-o", tmp_path / "x.flic", "--checkpoint", ckpt) == 0
    assert (tmp_path / "x.flic").read_bytes() == ref.read_bytes()
    assert "<stdin> -> " in capsys.readouterr().out
    # compress photo.png -o -: the file on standard output, the messages on standard error
    out = _Stream()
    monkeypatch.setattr(sys, "stdout", out)
    assert run("compress", path, "-o", "-", "--checkpoint", ckpt) == 0
    assert out.buffer.getvalue() == ref.read_bytes()
    assert "-> <stdout>" in capsys.readouterr().err
    # decompress - -o -: a PNG from a pipe to a pipe; decompress - alone does the same
    for argv in (["decompress", "-", "-o", "-"], ["decompress", "-"]):
        monkeypatch.setattr(sys, "stdin", _Stream(ref.read_bytes()))
        out = _Stream()
        monkeypatch.setattr(sys, "stdout", out)
        assert run(*argv, "--checkpoint", ckpt, "-q") == 0
        png = out.buffer.getvalue()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))),
                              fastlic.codec.decode_image(ref.read_bytes(), fastlic.codec.load_model(checkpoint=ckpt)))
    # info - reads standard input
    monkeypatch.setattr(sys, "stdin", _Stream(ref.read_bytes()))
    out = _Stream()
    monkeypatch.setattr(sys, "stdout", out)
    assert run("info", "-") == 0
    out.flush()
    assert "file:        <stdin>" in out.buffer.getvalue().decode()


def test_binary_data_is_not_written_to_a_terminal(tmp_path, image, ckpt, capsys, monkeypatch):
    path, _ = image
    terminal = _Stream(tty=True)
    monkeypatch.setattr(sys, "stdout", terminal)
    assert run("compress", path, "-o", "-", "--checkpoint", ckpt) == 1
    assert "not written to a terminal" in _one_error(capsys) and terminal.buffer.getvalue() == b""
    assert run("compress", path, "-o", "-", "--checkpoint", ckpt, "--force", "-q") == 0  # as gzip -f
    assert terminal.buffer.getvalue()[:4] == b"FLIC"
    monkeypatch.setattr(sys, "stdin", _Stream(tty=True))
    assert run("compress", "-", "-o", tmp_path / "x.flic", "--checkpoint", ckpt) == 1
    assert "standard input is a terminal" in _one_error(capsys)
    monkeypatch.setattr(sys, "stdin", _Stream(path.read_bytes()))
    assert run("compress", "-", path, "-o", tmp_path, "--checkpoint", ckpt) == 1
    assert "can only be the one input" in _one_error(capsys)
    assert run("compress", path, path, "-o", "-", "--checkpoint", ckpt) == 1
    assert "several inputs need -o DIR" in _one_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png"]


def test_pipes_through_a_real_process(tmp_path, image, ckpt):
    """`compress photo.png -o - > x.flic` and `decompress - -o - < x.flic > x.png` in a shell."""
    path, _ = image
    cmd = [sys.executable, "-m", "fastlic.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd + ["compress", str(path), "-o", "-", "--checkpoint", str(ckpt)], capture_output=True,
                         timeout=120, env=env)
    assert res.returncode == 0 and res.stdout[:4] == b"FLIC" and b"-> <stdout>" in res.stderr
    res = subprocess.run(cmd + ["decompress", "-", "-o", "-", "--checkpoint", str(ckpt), "-q"], input=res.stdout,
                         capture_output=True, timeout=120, env=env)
    assert res.returncode == 0 and res.stderr == b""
    assert Image.open(io.BytesIO(res.stdout)).size == (70, 45)


def test_quality_0_to_100_and_native_quality(tmp_path, image, vr_ckpt, ckpt, capsys):
    path, _ = image
    for argv, native in ((["--quality", 75], 3.0), (["--quality", 90], 3.6), (["--native-quality", 3.5], 3.5),
                         ([], 2.0)):
        out = tmp_path / "q.flic"
        assert run("compress", path, "-o", out, "--checkpoint", vr_ckpt, "-f", *argv) == 0, argv
        assert _quality_of(out) == pytest.approx(native, abs=1 / 1024), argv
        assert "warning" not in capsys.readouterr().err, argv
    # a value that looks like the old native scale is coded on 0-100, with a warning that says so
    assert run("compress", path, "-o", tmp_path / "q.flic", "--checkpoint", vr_ckpt, "-f", "--quality", 3) == 0
    assert _quality_of(tmp_path / "q.flic") == pytest.approx(0.12, abs=1 / 1024)
    err = capsys.readouterr().err
    assert "--quality 3 is on the 0-100 scale (native quality 0.12 of [0, 4])" in err and "--native-quality 3" in err
    for argv, message in ((["--quality", 120, "--checkpoint", vr_ckpt], "quality 120 is outside the 0-100 scale"),
                          (["--native-quality", 4.5, "--checkpoint", vr_ckpt], "native quality 4.5 is outside [0, 4]"),
                          (["--quality", 50, "--checkpoint", ckpt], "has a fixed rate")):
        assert run("compress", path, "-o", tmp_path / "bad.flic", *argv) == 1
        assert message in _one_error(capsys)
    assert not (tmp_path / "bad.flic").exists()
    assert run("info", tmp_path / "q.flic") == 0
    assert "quality:     native 0.12" in capsys.readouterr().out  # K of a checkpoint is unknown to info


def test_unreachable_target_warns_with_the_reachable_range(tmp_path, image, vr_ckpt, capsys):
    path, _ = image
    low, high = tmp_path / "low.flic", tmp_path / "high.flic"
    assert run("compress", path, "-o", low, "--checkpoint", vr_ckpt, "--target-bpp", 0.001) == 0
    err = capsys.readouterr().err
    assert re.search(r"warning: .*img\.png: target 0\.001 bpp is out of reach: [\d.]+-[\d.]+ bpp over qualities "
                     r"0-100 of mlicpp-tiny-vr; wrote the nearest, quality 0 \(native 0\)", err), err
    assert low.is_file() and _quality_of(low) == 0
    assert run("compress", path, "-o", high, "--checkpoint", vr_ckpt, "--target-bpp", 1000) == 0
    assert "target 1000 bpp is out of reach" in capsys.readouterr().err and _quality_of(high) == 4
    # a reachable target (here the size of the lowest quality, met by the first probe): no warning, a line
    # naming the quality found
    exact = 8 * low.stat().st_size / (45 * 70)
    assert run("compress", path, "-o", tmp_path / "mid.flic", "--checkpoint", vr_ckpt, "--target-bpp", exact) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and f"(target {exact:g}, 2 encodings)" in err
    assert run("compress", path, "-o", tmp_path / "x.flic", "--checkpoint", vr_ckpt, "--target-bpp", -1) == 1
    assert "must be a positive number" in _one_error(capsys)


def test_progress_on_a_terminal_only_and_never_with_quiet(tmp_path, image, vr_ckpt, capsys, monkeypatch):
    from fastlic.cli import progress

    path, _ = image
    monkeypatch.setattr(progress, "DELAY", 0)  # the bar of a small image, drawn at once
    assert run("compress", path, "-o", tmp_path / "a.flic", "--checkpoint", vr_ckpt) == 0
    assert "step" not in capsys.readouterr().err  # not a terminal: no bar
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert run("compress", path, "-o", tmp_path / "b.flic", "--checkpoint", vr_ckpt) == 0
    err = capsys.readouterr().err
    assert "encoding " in err and "step" in err
    assert run("decompress", tmp_path / "b.flic", "-o", tmp_path / "b.png", "--checkpoint", vr_ckpt) == 0
    assert "decoding " in capsys.readouterr().err
    assert run("compress", path, "-o", tmp_path / "c.flic", "--checkpoint", vr_ckpt, "--target-bpp", 1.0) == 0
    assert "probe" in capsys.readouterr().err
    assert run("compress", path, "-o", tmp_path / "d.flic", "--checkpoint", vr_ckpt, "--quiet") == 0
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("name", ["mlicpp-tiny", "econtextformer-tiny"])
def test_progress_counts_every_step_of_a_tiled_image(name, monkeypatch):
    """The bar of :func:`coding_progress` ends at its total: transform + one step per slice (group) per tile."""
    from fastlic import codec, container
    from fastlic.cli import progress

    bars = []

    class Bar:
        def __init__(self, total=None, **kw):
            self.total, self.n = total, 0
            bars.append(self)

        def update(self, k):
            self.n += k

        def close(self):
            pass

    monkeypatch.setattr(progress, "bar", Bar)
    torch.manual_seed(0)
    model = fastlic.create_model(name).eval()
    model.update()
    img = (np.random.default_rng(0).random((60, 120, 3)) * 255).astype(np.uint8)
    grid = codec.plan_tiles(model, 60, 120, tile=64, overlap=0)
    tiles = len(container.tile_grid(60, 120, *grid))
    assert tiles == 2
    with progress.coding_progress(model, tiles, False, True):
        data = codec.encode_image(model, img, tile=64, overlap=0)
    with progress.coding_progress(model, tiles, True, True):
        codec.decode_image(data, model)
    assert [b.n for b in bars] == [b.total for b in bars] and bars[0].total > tiles
    with progress.coding_progress(model, tiles, False, True):
        pass
    codec.encode_image(model, img[:16, :16])  # after the block: no hook left behind
    assert bars[-1].n == 0


def test_batches_print_one_line_per_file(tmp_path, image, ckpt, capsys):
    path, _ = image
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.png", "b.png"):
        (src / name).write_bytes(path.read_bytes())
    capsys.readouterr()
    assert run("compress", src, "--checkpoint", ckpt) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split(" -> ")[0] for ln in lines[:2]] == [str(src / "a.png"), str(src / "b.png")]
    assert lines[2] == "2 compressed, 0 failed"
    assert run("compress", src, "--checkpoint", ckpt, "-f", "-q") == 0
    assert capsys.readouterr() == ("", "")


def test_every_command_has_a_description_and_help_names_only_commands_that_exist():
    from fastlic.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    names = set(sub.choices)
    for name, p in sub.choices.items():
        assert p.description and len(p.description) > 30, name
        text = p.format_help()
        for mentioned in re.findall(r"fastlic ([a-z][a-z-]+)", " ".join(text.split())):
            # a command, or the noun of "a fastlic checkpoint" / "a fastlic model"
            assert mentioned in names or mentioned in ("checkpoint", "model"), (name, mentioned)
    assert "info --models" not in sub.choices["train"].format_help()


def test_unknown_model_is_not_a_model_without_weights(tmp_path, image, capsys):
    path, _ = image
    for command in (["compress", path, "-o", tmp_path / "x.flic"], ["demo", path, "-o", tmp_path]):
        assert run(*command, "--model", "nope") == 1
        msg = _one_error(capsys)
        assert "unknown model 'nope' (known models: " in msg and "mlicpp-mini-vr" in msg
        assert "no trained weights" not in msg
    assert run("compress", path, "-o", tmp_path / "x.flic", "--model", "mlicpp-tiny") == 1
    assert "no trained weights are bundled for model 'mlicpp-tiny'" in _one_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png"]


def test_demo_and_convert_checkpoint_do_not_overwrite_without_force(tmp_path, image, ckpt, capsys):
    path, _ = image
    assert run("demo", path, "-o", tmp_path, "--checkpoint", ckpt) == 0
    first = (tmp_path / "demo.flic").read_bytes()
    assert run("demo", path, "-o", tmp_path, "--checkpoint", ckpt) == 1
    assert "demo.flic: already exists; use --force" in _one_error(capsys)
    (tmp_path / "demo.flic").unlink()
    (tmp_path / "demo.png").write_bytes(b"keep")
    assert run("demo", path, "-o", tmp_path, "--checkpoint", ckpt) == 1
    assert "demo.png: already exists; use --force" in _one_error(capsys)
    assert (tmp_path / "demo.png").read_bytes() == b"keep" and not (tmp_path / "demo.flic").exists()
    assert run("demo", path, "-o", tmp_path, "--checkpoint", ckpt, "--force") == 0
    assert (tmp_path / "demo.flic").read_bytes() == first and Image.open(tmp_path / "demo.png").size == (70, 45)
    target = tmp_path / "conv.pt"
    target.write_bytes(b"keep")
    assert run("convert-checkpoint", ckpt, "-o", target) == 1
    assert "already exists" in _one_error(capsys) and target.read_bytes() == b"keep"


def test_icc_and_exif_survive_compress_and_decompress(tmp_path, ckpt, capsys):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "fastlic camera"  # Make
    exif[0x0112] = 6  # displayed rotated by 90 degrees: fastlic rotates the pixels and resets the tag
    photo = tmp_path / "photo.jpg"
    Image.fromarray((np.random.default_rng(0).random((30, 50, 3)) * 255).astype(np.uint8)).save(
        photo, icc_profile=icc, exif=exif.tobytes(), quality=95)
    flic = tmp_path / "photo.flic"
    assert run("compress", photo, "-o", flic, "--checkpoint", ckpt, "-v") == 0
    assert "ICC profile and EXIF kept" in capsys.readouterr().out
    assert run("info", flic) == 0
    assert re.search(r"metadata: +ICC profile 588 bytes, EXIF \d+ bytes", capsys.readouterr().out)
    for name in ("back.png", "back.jpg", "back.webp", "back.tif"):
        assert run("decompress", flic, "-o", tmp_path / name, "--checkpoint", ckpt, "-q") == 0
        with Image.open(tmp_path / name) as im:
            assert im.size == (30, 50) and im.info.get("icc_profile") == icc, name
            assert im.getexif()[0x010F] == "fastlic camera" and im.getexif()[0x0112] == 1, name
    capsys.readouterr()
    assert run("decompress", flic, "-o", tmp_path / "back.bmp", "--checkpoint", ckpt) == 0
    assert "back.bmp: ICC profile and EXIF dropped (BMP cannot hold them" in capsys.readouterr().err
    assert run("decompress", flic, "-o", tmp_path / "bare.png", "--checkpoint", ckpt, "--strip", "-q") == 0
    with Image.open(tmp_path / "bare.png") as im:
        assert "icc_profile" not in im.info and not im.getexif()
    assert run("compress", photo, "-o", tmp_path / "stripped.flic", "--checkpoint", ckpt, "--strip", "-q") == 0
    assert run("info", tmp_path / "stripped.flic") == 0
    assert "metadata:" not in capsys.readouterr().out
    assert (tmp_path / "stripped.flic").stat().st_size < flic.stat().st_size - len(icc)
