"""``fastlic bdrate`` and ``fastlic plot`` without the ``eval`` extra: run in a subprocess in which importing the
blocked packages fails, as in a venv that has only the runtime dependencies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[2] / "results" / "kodak"

BLOCKING_MAIN = """
import sys
blocked = set(sys.argv[1].split(","))

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, Blocker())
from fastlic.cli import main
code = main(sys.argv[2:])
loaded = sorted(m for m in blocked if m in sys.modules)
assert not loaded, loaded
sys.exit(code)
"""


def run_blocked(blocked, *argv):
    return subprocess.run([sys.executable, "-c", BLOCKING_MAIN, ",".join(blocked), *map(str, argv)],
                          capture_output=True, text=True, timeout=120)


EVAL_EXTRA = ("imagecodecs", "scipy", "matplotlib", "pytorch_msssim")


def test_blocker_really_blocks():
    res = subprocess.run([sys.executable, "-c", BLOCKING_MAIN.replace("from fastlic.cli import main", "import imagecodecs"),
                          "imagecodecs"], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "blocked by the test" in res.stderr


def test_bdrate_needs_no_eval_extra():
    res = run_blocked(EVAL_EXTRA, "bdrate", RESULTS / "webp.json", RESULTS / "fastlic-mlicpp-mini-vr.json",
                      RESULTS / "jpeg.json")
    assert res.returncode == 0, res.stderr
    # the committed number (results/kodak/bdrate_bundled.txt, made with scipy's pchip), without scipy here
    committed = next(ln for ln in (RESULTS / "bdrate_bundled.txt").read_text().splitlines()
                     if ln.startswith("fastlic-mlicpp-mini-vr vs webp (psnr-rgb):"))
    expected = committed.split(": ", 1)[1].split("  BD-quality")[0]  # "mlicpp-mini-vr: BD-rate -2.67 %"
    assert expected.startswith("mlicpp-mini-vr: BD-rate ") and expected in res.stdout, (expected, res.stdout)
    assert "jpeg: BD-rate" in res.stdout


def test_bdrate_errors_stay_one_line_without_eval_extra(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"results": {"bpp": [0.1]}}))
    res = run_blocked(EVAL_EXTRA, "bdrate", bad, bad)
    assert res.returncode == 1 and res.stderr.startswith("fastlic: error:") and res.stderr.count("\n") == 1


def test_plot_needs_only_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "rd.png"
    res = run_blocked(("imagecodecs", "scipy", "pytorch_msssim"), "plot", RESULTS / "webp.json",
                      RESULTS / "jpeg.json", "-o", out)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib_is_a_one_line_error(tmp_path):
    out = tmp_path / "rd.png"
    res = run_blocked(EVAL_EXTRA, "plot", RESULTS / "webp.json", "-o", out)
    assert res.returncode == 1 and res.stderr.count("\n") == 1, res.stderr
    assert "fastlic: error: fastlic plot needs the 'matplotlib' package" in res.stderr
    assert not out.exists()
