"""``fastlic convert-checkpoint --integer`` and the converted checkpoint through compress/decompress/info."""

from pathlib import Path

import numpy as np
import pytest
import torch

import fastlic
from fastlic import checkpoint, numerics
from fastlic.cli import main
from fastlic.io import read_image, write_image


def _run(*args) -> int:
    return main([str(a) for a in args])


def _err(capsys) -> list:
    return capsys.readouterr().err.strip().splitlines()


@pytest.fixture(scope="module")
def tiny_float(tmp_path_factory):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    m = fastlic.create_model("mlicpp-tiny").eval()
    m.update()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    checkpoint.save_checkpoint(path, m)
    return path


def test_fastlic_float_checkpoint_to_integer_and_the_cli_codes_with_it(tiny_float, tmp_path, capsys):
    out = tmp_path / "tiny-int.pt"
    assert _run("convert-checkpoint", tiny_float, "-o", out, "--integer") == 0
    printed = capsys.readouterr().out
    assert "integer numeric mode" in printed and "rate" in printed and "PSNR" in printed
    m = checkpoint.load_checkpoint(out)
    assert numerics.numeric_mode(m) == numerics.INTEGER_MODE
    rd = m.checkpoint_meta["integer_ptq"]["rd"]
    assert len(rd) == 1 and rd[0]["float_bytes"] > 0 and rd[0]["integer_bytes"] > 0
    assert f"{rd[0]['rate_pct']:+.3f} %" in printed  # what it printed is what it measured and stored
    # the float model's weights are kept as they were: only the integer constants are added
    src = checkpoint.load_checkpoint(tiny_float)
    same = src.state_dict()
    assert all(torch.equal(v, same[k]) for k, v in m.state_dict().items() if not k.startswith("integer_"))

    img = np.ascontiguousarray(read_image(Path(fastlic.__file__).parent / "data" / "kodim23.png")[:70, :130])
    png, flic, dec = tmp_path / "c.png", tmp_path / "c.flic", tmp_path / "d.png"
    write_image(png, img)
    assert _run("compress", png, "--checkpoint", out, "-o", flic) == 0
    assert _run("decompress", flic, "--checkpoint", out, "-o", dec) == 0
    assert read_image(dec).shape == img.shape
    capsys.readouterr()
    assert _run("info", flic) == 0
    info = capsys.readouterr().out
    assert "numeric:     integer" in info and "entropy parameters integer" in info
    # the float checkpoint refuses the integer file by name, and writes nothing
    assert _run("decompress", flic, "--checkpoint", tiny_float, "-o", tmp_path / "e.png") == 1
    err = _err(capsys)
    assert len(err) == 1 and "numeric mode 3 (integer)" in err[0] and not (tmp_path / "e.png").exists()


def test_official_checkpoint_to_integer(tmp_path, capsys):
    from fastlic.models.mlicpp import MLICPlusPlus

    torch.manual_seed(1)
    src = MLICPlusPlus(N=32, M=64, slice_num=2, ep_hidden=(32, 32, 32), cc_hidden=(32, 32), lrp_hidden=(32, 32))
    sd = {"module." + k: v for k, v in src.state_dict().items() if "_table_" not in k}
    ref = tmp_path / "ref.pth.tar"
    torch.save({"epoch": 3, "state_dict": sd}, ref)
    out = tmp_path / "int.pt"
    assert _run("convert-checkpoint", ref, "-o", out, "--integer") == 0
    m = checkpoint.load_checkpoint(out)
    assert m.model_name == "mlicpp" and numerics.numeric_mode(m) == numerics.INTEGER_MODE
    # official weights keep their exact transforms once converted (fastlic.numerics.prefer_precision)
    assert numerics.preferred_precision(m)[0] == "fp32"
    assert m.checkpoint_meta["source"] == "ref.pth.tar"


def test_refusals_write_nothing(tiny_float, tmp_path, capsys):
    out = tmp_path / "a.pt"
    assert _run("convert-checkpoint", tiny_float, "-o", out, "--integer") == 0
    stamp = out.stat().st_mtime_ns
    capsys.readouterr()
    cases = [(["convert-checkpoint", tiny_float, "-o", out, "--integer"], "already exists"),
             (["convert-checkpoint", out, "-o", tmp_path / "b.pt", "--integer"], "already in the integer"),
             (["convert-checkpoint", tiny_float, "-o", tmp_path / "no" / "c.pt", "--integer"], "does not exist")]
    torch.manual_seed(0)
    ecf = fastlic.create_model("econtextformer-tiny").eval()
    ecf.update()
    checkpoint.save_checkpoint(tmp_path / "ecf.pt", ecf)
    cases.append((["convert-checkpoint", tmp_path / "ecf.pt", "-o", tmp_path / "d.pt", "--integer"],
                  "MLIC\\+\\+ models only"))
    import re

    for args, msg in cases:
        assert _run(*args) == 1
        err = _err(capsys)
        assert len(err) == 1 and err[0].startswith("fastlic: error: ") and re.search(msg, err[0]), err
    assert out.stat().st_mtime_ns == stamp
    assert not any((tmp_path / n).exists() for n in ("b.pt", "d.pt"))
