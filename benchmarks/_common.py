"""Shared helpers of the benchmark scripts: machine description, test images, models, output files."""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: trained eContextformer-small weights (no longer bundled; fastlic.testing.ECF_SNAPSHOT names the same file)
ECF_SNAPSHOT = REPO / "tests" / "data" / "econtextformer-small-vr-6074.pt"
RESULTS = REPO / "results" / "benchmarks"
# run as `python benchmarks/x.py` from a checkout: that checkout's fastlic, unless a before/after benchmark names
# another tree for its child (FASTLIC_BENCH_TREE), which must then win over this one and the installed one
_TREE = os.environ.get("FASTLIC_BENCH_TREE", str(REPO))
if _TREE not in sys.path[:1]:
    sys.path.insert(0, _TREE)


def parse_size(text: str) -> tuple[int, int]:
    """``"512"`` -> (512, 512); ``"3840x2160"`` -> (2160, 3840) as (H, W) (sizes are written W x H)."""
    m = re.fullmatch(r"(\d+)(?:[x×](\d+))?", text.strip())
    if not m:
        raise SystemExit(f"bad size {text!r}; write 512 or 3840x2160 (width x height)")
    w = int(m.group(1))
    h = int(m.group(2) or w)
    return h, w


def size_label(h: int, w: int) -> str:
    return f"{w}x{h}"


def machine(device: str = "cpu", threads: int | None = None) -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = re.findall(r"^model name\s*:\s*(.+)$", f.read(), re.M)
        cpu = names[0] if names else cpu
    except OSError:
        pass
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "arch": platform.machine(), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "device": device, "threads": threads}
    try:
        import constriction

        info["constriction"] = getattr(constriction, "__version__", "?")
    except ImportError:
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    # the CPU is shared with other jobs: the load average tells how much of it a measurement had
    info["load_average_1_5_15"] = list(os.getloadavg())
    info["summary"] = (f"{os.cpu_count()}-core CPU ({cpu}), {platform.machine()}, torch {torch.__version__}"
                       + (f", {info['gpu']}" if "gpu" in info else "")
                       + (f", {threads} torch threads" if threads else ""))
    return info


def test_image(h: int, w: int, source: str | None = None) -> np.ndarray:
    """A natural ``h x w`` RGB image: a Kodak image (``source`` or ``$FASTLIC_SHARED/data/kodak/kodim23.png``)
    mirrored and tiled to size, so the coder sees photographic statistics at every size; seeded noise over a
    smooth gradient when no image is available."""
    path = Path(source) if source else Path(os.environ.get("FASTLIC_SHARED", REPO.parent / "shared")) / "data" / \
        "kodak" / "kodim23.png"
    if path.is_file():
        from PIL import Image

        with Image.open(path) as im:
            a = np.asarray(im.convert("RGB"))
        tile = np.concatenate([a, a[:, ::-1]], 1)
        tile = np.concatenate([tile, tile[::-1]], 0)
        reps = (-(-h // tile.shape[0]), -(-w // tile.shape[1]), 1)
        return np.ascontiguousarray(np.tile(tile, reps)[:h, :w])
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], -1) * 200
    return np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)


def make_model(name: str, checkpoint: str | None = None, device: str = "cpu"):
    """A model in eval mode with coding tables: from ``checkpoint`` if given, else random weights (timing and
    complexity do not depend on the weights' values; rates do, a little, through the symbol statistics)."""
    if checkpoint:
        from fastlic.codec import load_model

        return load_model(name, checkpoint, device=device)
    from fastlic.registry import create_model

    m = create_model(name)
    m.update()
    return m.to(device).eval()


def write_outputs(stem: str, data: dict, markdown: str, out_dir: Path | None = None) -> tuple[Path, Path]:
    """``<out_dir>/<stem>.json`` and ``<stem>.md`` (default ``results/benchmarks``), each written atomically."""
    out_dir = Path(out_dir or RESULTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    for path, text in zip(paths, (json.dumps(data, indent=2) + "\n", markdown)):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return paths


def md_table(header: list[str], rows: list[list]) -> str:
    def cell(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def sync(device: str):
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def command_line() -> str:
    import shlex

    return "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])
