"""Portable decoding, measured: float noise between configurations at every guarded decision, and guard flags.

    python benchmarks/portability.py noise [--image kodim23.png] [-o results/portability/noise.json]
    python benchmarks/portability.py flags [--data ../shared/data/kodak] [-o results/portability/side_info.json]

``noise`` encodes one image per model natively, then decodes it in one process per configuration (the
configurations of tests/test_portability.py) and records, at every guarded decision, the guard's own coordinate
(the relative distance of the decision's float64 input to its nearest boundary: exactly the quantity the guard
margin ``GUARD_EPS`` is compared with), plus the hyper-synthesis output and the decoded latents. It reports,
per model and configuration, the largest difference of each from the native decode, and per coding step
(MLIC++: half-slice; eContextformer: group) how the difference grows along the coding order.

``flags`` codes every image of a folder with each model (every integer quality of variable-rate models) and
counts the flagged decisions and the bits the guard chunks take (exactly: uniform models), against file sizes.
Models: the bundled default, the eContextformer-small snapshot (tests/data), and the full MLIC++ with the fixture weights.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ECF_SNAPSHOT, REPO, machine  # noqa: E402

CONFIGS = {
    "native-2t": {"FASTLIC_TEST_THREADS": "2"},
    "threads-1": {"FASTLIC_TEST_THREADS": "1"},
    "threads-3": {"FASTLIC_TEST_THREADS": "3"},
    "simd-default": {"ATEN_CPU_CAPABILITY": "default", "FASTLIC_TEST_THREADS": "2"},
    "simd-avx2": {"ATEN_CPU_CAPABILITY": "avx2", "FASTLIC_TEST_THREADS": "2"},
    "no-onednn": {"FASTLIC_TEST_MKLDNN": "0", "FASTLIC_TEST_THREADS": "2"},
    "torch-kernels": {"FASTLIC_TEST_TORCH_KERNELS": "1", "FASTLIC_TEST_THREADS": "2"},
    "all-foreign": {"ATEN_CPU_CAPABILITY": "default", "FASTLIC_TEST_MKLDNN": "0", "FASTLIC_TEST_THREADS": "1"},
}
MODELS = {"bundled-default": ("mlicpp-mini-vr", 4.0), "econtextformer-snapshot": (str(ECF_SNAPSHOT), 4.0),
          "mlicpp-fixture": ("fixture", None)}


def _model(spec, workdir: Path):
    from fastlic import checkpoint, codec

    if spec.endswith(".pt"):
        return codec.load_model(checkpoint=spec)
    if spec != "fixture":
        return codec.load_model(spec)
    path = workdir / "mlicpp-fixture.pt"
    if not path.exists():
        from fastlic.models.mlicpp import MLICPlusPlus
        from fastlic.testing import reference_weights

        m = MLICPlusPlus.from_reference_state_dict(reference_weights("official_keys_new.tsv", 0))
        m.model_name = "mlicpp"
        checkpoint.save_checkpoint(path, m)
    return codec.load_model(checkpoint=path)


# ---------------------------------------------------------------------------------------------- child process
def child(args):
    """Decode (or encode with --encode) every model's file in args.work under this process's configuration."""
    import torch

    sys.path.insert(0, str(REPO / "tests"))
    from portability_worker import configure

    info = configure()
    from fastlic import codec
    from fastlic.entropy import guard as guard_mod
    from fastlic.io import read_image

    work = Path(args.work)
    records = {}
    original = guard_mod.Guard.decide

    def recording(self, d, j, dist):
        self._dists = getattr(self, "_dists", [])
        self._dists.append(np.asarray(dist, np.float64).ravel().copy())
        return original(self, d, j, dist)

    guard_mod.Guard.decide = recording
    from fastlic.entropy import coder as coder_mod

    decoders = []
    real_init = coder_mod.Decoder.__init__

    def tracking_init(self, data):
        real_init(self, data)
        decoders.append(self)

    coder_mod.Decoder.__init__ = tracking_init
    for name, (spec, quality) in MODELS.items():
        if args.models and name not in args.models:
            continue
        m = _model(spec, work)
        hooks = {}
        h = m.h_s.register_forward_hook(lambda mod, inp, out: hooks.__setitem__("hyper", out.detach().clone()))
        if args.encode:
            data = codec.encode_image(m, read_image(args.image), quality=quality)
            (work / f"{name}.flic").write_bytes(data)
        decoders.clear()
        image = codec.decode_image((work / f"{name}.flic").read_bytes(), m)
        h.remove()
        dists = [dd for dec in decoders for dd in getattr(dec.guard, "_dists", [])]
        records[name] = {"dists": dists, "hyper": hooks["hyper"].double().numpy(), "image": image}
    out = work / f"child-{args.label}.npz"
    flat = {}
    for name, r in records.items():
        flat[f"{name}/hyper"] = r["hyper"]
        flat[f"{name}/image"] = r["image"]
        for i, d in enumerate(r["dists"]):
            flat[f"{name}/dist{i:04d}"] = d
    np.savez(out, **flat)
    (work / f"child-{args.label}.json").write_text(json.dumps(info))
    return info, torch.__version__


def run_child(work: Path, label: str, env_extra: dict, image: str, encode: bool = False):
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS")}
    env.update(env_extra)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, __file__, "child", "--work", str(work), "--label", label, "--image", image]
    if encode:
        cmd.append("--encode")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"child {label} failed:\n{r.stderr[-3000:]}")
    return np.load(work / f"child-{label}.npz"), json.loads((work / f"child-{label}.json").read_text())


def noise(args):
    from fastlic.numerics import GUARD_EPS

    work = Path(tempfile.mkdtemp(prefix="fastlic-noise-"))
    ref, _ = run_child(work, "native-2t", CONFIGS["native-2t"], args.image, encode=True)
    report = {"command": "python benchmarks/portability.py noise " + " ".join(sys.argv[2:]),
              "machine": machine(), "image": str(args.image), "guard_eps": GUARD_EPS, "models": {}}
    for label, env in CONFIGS.items():
        if label == "native-2t":
            continue
        got, info = run_child(work, label, env, args.image)
        for name in MODELS:
            keys = sorted(k for k in ref.files if k.startswith(f"{name}/dist"))
            if not keys:
                continue
            steps = [float(np.max(np.abs(got[k] - ref[k]), initial=0.0)) for k in keys]
            hyper = np.abs(got[f"{name}/hyper"] - ref[f"{name}/hyper"]).max() / np.abs(ref[f"{name}/hyper"]).max()
            img = np.abs(got[f"{name}/image"].astype(int) - ref[f"{name}/image"].astype(int))
            entry = report["models"].setdefault(name, {"decisions": int(sum(ref[k].size for k in keys)),
                                                       "steps": len(keys), "configs": {}})
            entry["configs"][label] = {
                "kernels": info,
                "max_guard_coordinate_diff": max(steps),
                "margin_over_noise": GUARD_EPS / max(max(steps), 1e-300),
                "per_step_max_diff": steps,
                "hyper_max_rel_diff": float(hyper),
                "pixels_differing": int((img > 0).sum()), "pixels_max_diff": int(img.max()),
            }
            print(f"{name:24s} {label:14s} guard-coord diff {max(steps):.3e}  hyper rel {hyper:.3e}  "
                  f"pixels off {(img > 0).sum()} (max {img.max()})", flush=True)
    for entry in report["models"].values():
        entry["worst_guard_coordinate_diff"] = max(c["max_guard_coordinate_diff"] for c in entry["configs"].values())
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=1))


# ---------------------------------------------------------------------------------------------- flags
def guard_bits(positions: np.ndarray) -> int:
    """Exact bits of a guard chunk: Elias-gamma count and gaps (5-bit length + length bits), one bit per flag."""
    def gamma(v):
        v = np.asarray(v, np.int64) + 1
        return int((5 + np.floor(np.log2(v))).sum())

    gaps = np.diff(positions, prepend=-1) - 1
    return gamma([len(positions)]) + gamma(gaps) + len(positions)


def flags(args):
    import torch

    from fastlic import codec
    from fastlic.entropy import coder as coder_mod
    from fastlic.io import read_image

    torch.set_num_threads(args.threads)
    encoders = []
    real_init = coder_mod.Encoder.__init__

    def tracking_init(self):
        real_init(self)
        encoders.append(self)

    coder_mod.Encoder.__init__ = tracking_init
    work = Path(tempfile.mkdtemp(prefix="fastlic-flags-"))
    images = sorted(Path(args.data).glob("*.png"))[: args.limit]
    report = {"command": "python benchmarks/portability.py flags " + " ".join(sys.argv[2:]), "machine": machine(),
              "data": str(args.data), "images": len(images), "models": {}}
    for name, (spec, _) in MODELS.items():
        if args.models and name not in args.models:
            continue
        m = _model(spec, work)
        qualities = [float(q) for q in range(m.num_rates)] if hasattr(m, "num_rates") else [None]
        rows = []
        for q in qualities:
            for path in images:
                encoders.clear()
                data = codec.encode_image(m, read_image(path), quality=q)
                pos = [e.guard.flags()[0] for e in encoders]
                nflags = sum(len(p) for p in pos)
                bits = sum(guard_bits(p) for p in pos)
                decisions = sum(e.guard.count for e in encoders)
                rows.append({"image": path.name, "quality": q, "bytes": len(data), "flags": nflags,
                             "decisions": decisions, "guard_bits": bits})
                print(f"{name} q={q} {path.name}: {len(data)} B, {decisions} decisions, {nflags} flags, "
                      f"{bits} guard bits", flush=True)
        total_bytes = sum(r["bytes"] for r in rows)
        total_bits = sum(r["guard_bits"] for r in rows)
        report["models"][name] = {
            "files": len(rows), "bytes": total_bytes, "decisions": sum(r["decisions"] for r in rows),
            "flags": sum(r["flags"] for r in rows), "guard_bits": total_bits,
            "guard_share_of_files": total_bits / 8 / total_bytes,
            "largest_share_one_file": max(r["guard_bits"] / 8 / r["bytes"] for r in rows), "rows": rows}
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.models and out.exists():  # a partial re-run replaces only its models' entries
        old = json.loads(out.read_text())
        old["models"].update(report["models"])
        old.setdefault("reruns", []).append({"command": report["command"], "models": args.models})
        report = old
    out.write_text(json.dumps(report, indent=1))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    n = sub.add_parser("noise")
    n.add_argument("--image", default=str(REPO.parent / "shared" / "data" / "kodak" / "kodim23.png"))
    n.add_argument("-o", "--output", default=str(REPO / "results" / "portability" / "noise.json"))
    f = sub.add_parser("flags")
    f.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "kodak"))
    f.add_argument("--limit", type=int, default=24)
    f.add_argument("--threads", type=int, default=2)
    f.add_argument("--models", nargs="*")
    f.add_argument("-o", "--output", default=str(REPO / "results" / "portability" / "side_info.json"))
    c = sub.add_parser("child")
    c.add_argument("--work", required=True)
    c.add_argument("--label", required=True)
    c.add_argument("--image", required=True)
    c.add_argument("--encode", action="store_true")
    c.add_argument("--models", nargs="*")
    args = p.parse_args()
    {"noise": noise, "flags": flags, "child": child}[args.cmd](args)


if __name__ == "__main__":
    main()
