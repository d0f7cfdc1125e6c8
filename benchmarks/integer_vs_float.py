"""Decode (and encode) time of the float64 mode against the integer mode, alternating in one process.

    python benchmarks/integer_vs_float.py [--threads 1] [--rounds 5] [--checkpoint INT.pt] [-o out.json]

The bundled default (float64 portable mode) and the same weights in the integer mode (``--checkpoint``, e.g. made
by ``fastlic convert-checkpoint fastlic/weights/mlicpp-mini-vr.pt -o INT.pt --integer``; default: converted here)
code the whole of ``fastlic/data/kodim23.png`` at quality 2. Each round times float then integer, so both see
the same machine load; reported: per mode the best and the median of the rounds, and the median of the
per-round ratios (robust to load drifting between rounds). The entropy-parameter path's share is the decode
minus the synthesis of the same latents, timed in the same round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch

import fastlic
from fastlic import checkpoint, codec
from fastlic.io import read_image


def _t(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    img = read_image(Path(fastlic.__file__).parent / "data" / "kodim23.png")
    fm = codec.load_model()
    im = checkpoint.load_checkpoint(args.checkpoint) if args.checkpoint else codec.load_model().to_integer()
    files = {name: codec.encode_image(m, img, quality=2.0) for name, m in (("float64", fm), ("integer", im))}
    x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y_hat = {"float64": fm(x)["y_hat"], "integer": im(x)["y_hat"]}
    rows = {n: {"decode": [], "encode": [], "synthesis": []} for n in files}
    for m, name in ((fm, "float64"), (im, "integer")):  # warm-up
        codec.decode_image(files[name], m)
    for _ in range(args.rounds):
        for m, name in ((fm, "float64"), (im, "integer")):
            _, td = _t(lambda: codec.decode_image(files[name], m))
            _, te = _t(lambda: codec.encode_image(m, img, quality=2.0))
            with torch.no_grad():
                _, ts = _t(lambda: m.synthesis(y_hat[name]))
            rows[name]["decode"].append(td)
            rows[name]["encode"].append(te)
            rows[name]["synthesis"].append(ts)
    out = {"image": "kodim23 768x512", "quality": 2.0, "threads": args.threads, "rounds": args.rounds,
           "bytes": {n: len(d) for n, d in files.items()}, "modes": {}}
    for name, r in rows.items():
        par = [d - s for d, s in zip(r["decode"], r["synthesis"])]
        out["modes"][name] = {k: {"best_s": min(v), "median_s": statistics.median(v)}
                              for k, v in (("decode", r["decode"]), ("encode", r["encode"]),
                                           ("synthesis", r["synthesis"]), ("decode_parameter_path", par))}
    f, i = rows["float64"], rows["integer"]
    ratio = lambda a, b: statistics.median(x / y for x, y in zip(a, b))  # noqa: E731
    out["float_over_integer_median_ratio"] = {
        "decode": ratio(f["decode"], i["decode"]), "encode": ratio(f["encode"], i["encode"]),
        "decode_parameter_path": ratio([d - s for d, s in zip(f["decode"], f["synthesis"])],
                                       [d - s for d, s in zip(i["decode"], i["synthesis"])])}
    try:
        model = next(ln.split(":", 1)[1].strip() for ln in subprocess.run(["lscpu"], capture_output=True,
                     text=True).stdout.splitlines() if ln.startswith("Model name"))
    except Exception:  # noqa: BLE001  (no lscpu: the platform's word)
        model = platform.processor() or platform.machine()
    out["conditions"] = {"cpu": model, "load_average_after": os.getloadavg(), "cpus": os.cpu_count(),
                         "capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}
    print(json.dumps(out, indent=1))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
