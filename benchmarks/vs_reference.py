"""Speed, peak memory and PSNR of fastlic against the official MLIC++ code: same weights, same images, alternating.

    python benchmarks/vs_reference.py --reference /tmp/mlic-ref/MLIC++ --reference-python /tmp/refenv/bin/python \
        [--threads 2] [--repeat 3] [--images kodim23,photo1024] [--label after] \
        [-o results/benchmarks/vs_reference_cpu.json]
    python benchmarks/vs_reference.py                     # fastlic alone: the same table, no ratios
    python benchmarks/vs_reference.py --reference ... --crop 256 --repeat 1 -o /tmp/vs_ref_smoke.json  # smoke test

Each (program, image) runs in a fresh child process with ``torch.set_num_threads(--threads)``; per image the
reference child runs first, then the fastlic child, so that a change of machine load hits both. A child builds
the model (``build_s``: loading the weights file, constructing, coding tables), then measures the first compress
and first decompress of the process (a fresh ``fastlic`` command's cost, warm-up included) and the best of
``--repeat`` further calls (a library user's). Times are wall-clock (``time.perf_counter``) around:

- fastlic: ``codec.encode_image`` / ``codec.decode_image`` (uint8 image in, .flic bytes out and back: padding and
  the container included);
- reference: uint8 -> float tensor, zero padding to a multiple of 64 (as its ``utils/testing.py``),
  ``update_resolutions(16, 16)`` then ``compress`` / ``decompress``, crop back and rounding to uint8.
  Its own ``cost_time`` is not used. ``bytes``: the size of its ``utils/testing.py`` file (28 bytes + strings).

Imports are not timed. Peak memory of each phase: the kernel's peak-RSS counter (VmHWM) is reset before the
phase (``/proc/self/clear_refs``) and read after it; ``rss_before_mib`` is the RSS the phase started from (for
``best_*``: the largest peak over the repeats, the RSS before the first). Both are null where clear_refs cannot
be written. PSNR: the decoded uint8 image (``round(clamp(x_hat, 0, 1) * 255)`` for the reference) against the
input.

Weights: the MLIC++ conformance fixture weights (synthetic, deterministic; ``$FASTLIC_SHARED/fixtures/mlicpp``):
the official-format state dict from ``make_weights.py --seed 0`` for the reference (loaded with
``nn.Module.load_state_dict(strict=False)``: the official ``load_state_dict`` override requires the CDF buffers,
which the fixture leaves to ``update(force=True)``), and the same weights converted to a fastlic checkpoint
(``speed_before_after.fixture_checkpoint``). Both files are made once in the temp folder and read through once
before the children run, so that ``build_s`` loads from the page cache for both. PSNR is low with these
weights; the two programs should agree to a fraction of a dB.

Images: ``kodim23`` (768 x 512) and ``photo1024``, the top-left 1024 x 1024 of the held-out photo
``data/train/wikipedia/049.png``. ``--crop N`` center-crops every image to N x N (smoke tests only).

Reference environment (docs/results.md, "Benchmarking against the MLIC++ reference"): a venv with torch 2.13.0,
numpy 1.26.4, scipy 1.15.3 and ``pip install --no-deps compressai==1.2.8``, the official snapshot extracted with
``git archive``. The reference child installs this shim before importing the official code, and only there:

- stub modules for the packages that compressai 1.2.8 and the official code import but never call while coding
  (:data:`STUBBED`; installed without dependencies they are absent; a package that is installed is used as is);
- ``compressai.ops.ste_round = compressai.ops.quantize_ste`` (the official code targets compressai 1.2.0b3);
- ``torch.cuda.synchronize`` a no-op when CUDA is not available (the official compress/decompress call it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, command_line, md_table  # noqa: E402

SHARED = Path(os.environ.get("FASTLIC_SHARED", REPO.parent / "shared"))
FIXTURE = SHARED / "fixtures" / "mlicpp"
#: name -> (source image relative to shared/, top-left crop (H, W) or None)
IMAGES = {"kodim23": ("data/kodak/kodim23.png", None), "photo1024": ("data/train/wikipedia/049.png", (1024, 1024))}
PROGRAMS = ("reference", "fastlic")
PHASES = ("build", "first_compress", "first_decompress", "best_compress", "best_decompress")
#: packages that compressai 1.2.8 (its datasets and zoo modules) and the official MLIC++ files (unused helpers,
#: losses, metrics) import but never call while building, compressing or decompressing; stubbed in the reference
#: child when they are not installed. Not scipy: GaussianConditional.update() calls scipy.stats.norm.ppf.
STUBBED = ("torchvision", "tqdm", "requests", "torch_geometric", "pandas", "PIL", "einops", "pytorch_msssim",
           "timm")


# ---------------------------------------------------------------------------------------------- the child processes
def _mib(key: str) -> float | None:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return None


def _measure(fn, *args):
    """-> (fn's result, seconds, rss_before_mib, peak_rss_mib); the two memory values None without clear_refs."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        before = _mib("VmRSS")
    except OSError:
        before = None
    t0 = time.perf_counter()
    r = fn(*args)
    dt = time.perf_counter() - t0
    return r, dt, before, (_mib("VmHWM") if before is not None else None)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def _reference_shims() -> dict:
    """Make compressai 1.2.8 (installed without dependencies) and the official code importable on a CPU."""
    import importlib.abc
    import importlib.machinery
    import types

    class Anything(type):  # a stub attribute: any further attribute, call or subclassing works
        def __getattr__(cls, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return cls

        def __call__(cls, *a, **k):
            return cls

    stub = Anything("Stub", (), {})

    class StubModule(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return stub

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        used: set = set()

        def find_spec(self, fullname, path=None, target=None):
            if fullname.partition(".")[0] in STUBBED:
                return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
            return None

        def create_module(self, spec):
            m = StubModule(spec.name)
            m.__path__ = []
            return m

        def exec_module(self, module):
            self.used.add(module.__name__.partition(".")[0])

    finder = Finder()
    sys.meta_path.append(finder)  # last: only packages no other finder has are stubbed
    import torch
    import compressai
    import compressai.ops

    shims = {"compressai": compressai.__version__}
    if not hasattr(compressai.ops, "ste_round"):
        compressai.ops.ste_round = compressai.ops.quantize_ste
        shims["ste_round"] = "aliased to quantize_ste"
    if not torch.cuda.is_available():
        torch.cuda.synchronize = lambda *a, **k: None
        shims["cuda_synchronize"] = "no-op"
    shims["stubbed"] = finder.used  # filled further while the official code is imported
    return shims


def reference_program(args, img: np.ndarray):
    import torch
    import torch.nn.functional as F

    shims = _reference_shims()
    sys.path.insert(0, str(Path(args.reference).resolve()))
    from config.config import model_config
    from models import MLICPlusPlus

    h, w = img.shape[:2]

    def build():
        sd = torch.load(args.reference_weights, weights_only=True)
        net = MLICPlusPlus(config=model_config())
        res = torch.nn.Module.load_state_dict(net, sd, strict=False)
        if res.unexpected_keys:
            raise SystemExit(f"unexpected keys in {args.reference_weights}: {res.unexpected_keys[:5]}")
        net.update(force=True)
        return net.eval()

    def compress(net):
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255.0)
        x = F.pad(x, (0, -w % 64, 0, -h % 64), mode="constant", value=0)
        net.update_resolutions(16, 16)
        with torch.no_grad():
            out = net.compress(x)
        return out["strings"], out["shape"]

    def decompress(net, enc):
        net.update_resolutions(16, 16)
        with torch.no_grad():
            x_hat = net.decompress(*enc)["x_hat"][:, :, :h, :w]
        return x_hat[0].clamp(0, 1).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()

    def size(enc):
        return 28 + sum(len(s[0]) for s in enc[0])  # H, W, zh, zw, 2, len(y), len(z) as uint32 + the strings

    info = {"shims": {**shims, "stubbed": sorted(shims["stubbed"])}}
    return build, compress, decompress, size, info


def fastlic_program(args, img: np.ndarray):
    from fastlic import codec, numerics

    def build():
        return codec.load_model(checkpoint=args.checkpoint)

    def info_after_build():  # the mode fastlic reports it chose (None where this version exposes none)
        mode = {"numeric_mode": numerics.NUMERIC_MODES.get(numerics.PORTABLE_MODE),
                "precision_env": os.environ.get("FASTLIC_PRECISION"), "describe": None}
        for name in ("fastlic.numerics", "fastlic.speed"):
            try:
                mod = __import__(name, fromlist=["describe"])
            except ImportError:
                continue
            if callable(getattr(mod, "describe", None)):
                mode["describe"] = {"from": f"{name}.describe()", "value": mod.describe()}
                break
        return {"mode": mode}

    return (build, lambda m: codec.encode_image(m, img), lambda m, data: codec.decode_image(data, m), len,
            info_after_build)


def child(args):
    import torch

    torch.set_num_threads(args.threads)
    if args.program == "reference":
        img = np.load(args.image)
    else:
        from fastlic.io import read_image

        img = read_image(args.image)  # as a fastlic command reads it
    build, compress, decompress, size, info = (reference_program if args.program == "reference"
                                               else fastlic_program)(args, img)
    out = {"program": args.program, "torch": torch.__version__, "threads": torch.get_num_threads()}
    before, peak = {}, {}
    model, out["build_s"], before["build"], peak["build"] = _measure(build)
    if callable(info):
        info = info()
    enc, out["first_compress_s"], before["first_compress"], peak["first_compress"] = _measure(compress, model)
    dec, out["first_decompress_s"], before["first_decompress"], peak["first_decompress"] = _measure(
        decompress, model, enc)
    out.update(psnr=_psnr(img, dec), bytes=size(enc), bpp=8 * size(enc) / (img.shape[0] * img.shape[1]))
    for _ in range(args.repeat):
        for phase, fn, a in (("compress", compress, (model,)), ("decompress", decompress, (model, enc))):
            _, dt, b, p = _measure(fn, *a)
            key = f"best_{phase}"
            if dt < out.get(key + "_s", float("inf")):
                out[key + "_s"] = dt
            before.setdefault(key, b)
            peak[key] = p if peak.get(key) is None else max(peak[key], p)  # the largest over the repeats
    out.update(rss_before_mib=before, peak_rss_mib=peak, **info)
    print(json.dumps(out))


# ---------------------------------------------------------------------------------------------- the parent
def prepare_images(names: list[str], crop: int | None, folder: Path) -> dict:
    """Each image as a PNG (the input a ``fastlic`` command would read) and the .npy the children load."""
    from PIL import Image

    from fastlic.io import read_image

    images = {}
    for name in names:
        if name not in IMAGES:
            raise SystemExit(f"unknown image {name!r}; known: {', '.join(IMAGES)}")
        rel, top_left = IMAGES[name]
        a = read_image(SHARED / rel)
        if top_left:
            a = a[: top_left[0], : top_left[1]]
        if crop:
            y0, x0 = max(0, (a.shape[0] - crop) // 2), max(0, (a.shape[1] - crop) // 2)
            a = a[y0 : y0 + crop, x0 : x0 + crop]
        a = np.ascontiguousarray(a)
        png, npy = folder / f"{name}.png", folder / f"{name}.npy"
        Image.fromarray(a).save(png)
        np.save(npy, a)
        images[name] = {"source": rel, "size": f"{a.shape[1]}x{a.shape[0]}", "png": str(png), "npy": str(npy),
                        "top_left_crop": top_left and f"{top_left[1]}x{top_left[0]}", "center_crop": crop}
    return images


def reference_weights(path: Path) -> Path:
    if not path.exists():
        subprocess.run([sys.executable, str(FIXTURE / "make_weights.py"), "--keys",
                        str(FIXTURE / "official_keys_new.tsv"), "--seed", "0", "--out", str(path)], check=True)
    return path


def read_through(path: str) -> None:
    """Read a weights file once so that every child's ``build_s`` starts from the page cache, not the disk."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def run_child(program: str, image: dict, args) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "PYTHONPATH")}
    if program == "fastlic":
        python, source = sys.executable, image["png"]
        env["PYTHONPATH"] = str(REPO)
    else:  # the reference environment has no image library: it reads the same pixels from the .npy
        python, source = args.reference_python or sys.executable, image["npy"]
    cmd = [python, __file__, "--child", "--program", program, "--image", source, "--threads", str(args.threads),
           "--repeat", str(args.repeat), "--checkpoint", args.checkpoint, "--reference-weights",
           args.reference_weights, *(["--reference", args.reference] if args.reference else [])]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(REPO))
    if r.returncode:
        raise SystemExit(f"{program} on {image['size']} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def ratios(fast: dict, ref: dict) -> dict:
    def q(a, b):
        return None if a is None or not b else a / b

    out = {k: q(fast[k], ref[k]) for k in ("build_s", "first_compress_s", "best_compress_s", "first_decompress_s",
                                            "best_decompress_s")}
    out["peak_rss_mib"] = {p: q(fast["peak_rss_mib"].get(p), ref["peak_rss_mib"].get(p)) for p in PHASES}
    return out


def table(report: dict) -> str:
    header = ["image", "program", "build s", "first enc s", "best enc s", "first dec s", "best dec s",
              "peak enc MiB", "peak dec MiB", "PSNR dB", "bytes"]
    rows = []
    for name, im in report["images"].items():
        for prog in PROGRAMS:
            if prog in im:
                r, pk = im[prog], im[prog]["peak_rss_mib"]
                rows.append([f"{name} {im['size']}", prog, r["build_s"], r["first_compress_s"], r["best_compress_s"],
                             r["first_decompress_s"], r["best_decompress_s"], pk["first_compress"],
                             pk["first_decompress"], r["psnr"], r["bytes"]])
        if "ratio_fastlic_over_reference" in im:
            q = im["ratio_fastlic_over_reference"]
            rows.append([f"{name} {im['size']}", "fastlic / reference", q["build_s"], q["first_compress_s"],
                         q["best_compress_s"], q["first_decompress_s"], q["best_decompress_s"],
                         q["peak_rss_mib"]["first_compress"], q["peak_rss_mib"]["first_decompress"], None, None])
    return md_table(header, rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reference", help="the official MLIC++/ folder (git archive of the snapshot)")
    p.add_argument("--reference-python", help="python of the reference environment (default: this one)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--images", default=",".join(IMAGES), help=f"comma-separated, of: {', '.join(IMAGES)}")
    p.add_argument("--crop", type=int, help="center-crop every image to N x N (smoke tests only)")
    p.add_argument("--label", help="a name for this measurement (e.g. before / after a change), kept in the JSON")
    p.add_argument("--checkpoint", default=str(Path(tempfile.gettempdir()) / "fastlic-fixture-mlicpp.pt"),
                   help="fastlic checkpoint of the fixture weights (made if missing)")
    p.add_argument("--reference-weights",
                   default=str(Path(tempfile.gettempdir()) / "mlicpp-fixture-official-new-seed0.pt"),
                   help="official-format state dict of the same weights (made if missing)")
    p.add_argument("-o", "--output", default=str(REPO / "results" / "benchmarks" / "vs_reference_cpu.json"))
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--program", choices=PROGRAMS, help=argparse.SUPPRESS)
    p.add_argument("--image", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)

    import torch

    from _common import machine
    from speed_before_after import fixture_checkpoint

    load_start = list(os.getloadavg())
    fixture_checkpoint(Path(args.checkpoint))
    programs = PROGRAMS if args.reference else ("fastlic",)
    if args.reference:
        reference_weights(Path(args.reference_weights))
        read_through(args.reference_weights)
    read_through(args.checkpoint)
    report = {"label": args.label, "command": command_line(), "machine": machine(threads=args.threads),
              "torch": torch.__version__, "threads": args.threads, "repeat": args.repeat,
              "reference": args.reference and {"path": str(Path(args.reference).resolve()),
                                               "python": args.reference_python or sys.executable,
                                               "weights": args.reference_weights},
              "fastlic_checkpoint": args.checkpoint, "load_average_start": load_start, "images": {}}
    with tempfile.TemporaryDirectory(prefix="vs_reference-") as tmp:
        images = prepare_images([n for n in args.images.split(",") if n], args.crop, Path(tmp))
        for name, image in images.items():
            entry = report["images"][name] = {k: v for k, v in image.items() if k not in ("png", "npy")}
            for prog in programs:
                entry[prog] = run_child(prog, image, args)
                print(f"{name} {prog}: " + json.dumps({k: v for k, v in entry[prog].items() if k.endswith("_s")
                                                       or k in ("psnr", "bytes")}), flush=True)
            if args.reference:
                entry["ratio_fastlic_over_reference"] = ratios(entry["fastlic"], entry["reference"])
    report["fastlic_mode"] = next(iter(report["images"].values()), {}).get("fastlic", {}).get("mode")
    report["load_average_end"] = list(os.getloadavg())
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(table(report), end="")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
