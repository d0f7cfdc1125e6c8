"""Benchmark 1: encode and decode wall time and peak memory of each model against image size, with fitted
exponents of time and memory against the pixel count (MLIC++ claims linear complexity, exponent 1).

Each (model, size) point runs in a fresh process, so its memory peak is its own: the model is built (random
weights unless ``--checkpoint``), one warm-up encode/decode runs (at the measured size up to 512 x 512, else
at 128 x 128), then :func:`fastlic.codec.encode_image` and :func:`fastlic.codec.decode_image` are timed
``--repeat`` times up to 512 x 512 and once above (the median is reported). Peak memory is the process's
resident-set peak during the call above its size once the model and the input image are loaded
(:mod:`fastlic.evaluation.memory`, ``rss-hwm``), or ``torch.cuda.max_memory_allocated`` on a GPU. A size is
skipped, with the reason recorded, when the previous size predicts (linearly in pixels, x1.3) more time than
``--budget`` seconds for encode + decode or more memory than the machine has available, or when the child
process fails or exceeds ``--budget`` x 2.

    python benchmarks/timing.py --models mlicpp-tiny mlicpp --threads 2
    python benchmarks/timing.py --models mlicpp --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import _common as C

DEFAULT_SIZES = ["256", "512", "1024", "2048", "3840x2160"]
#: up to this many pixels a point is warmed up at its own size and repeated --repeat times (median)
SMALL = 512 * 512


def child(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from fastlic.codec import decode_image, encode_image
    from fastlic.evaluation.memory import METHOD, PeakMemory, resident_mib

    h, w = C.parse_size(args.size)
    model = C.make_model(args.model, args.checkpoint, args.device)
    img = C.test_image(h, w, args.image)
    baseline = resident_mib()  # model and input image loaded, nothing coded yet
    small = h * w <= SMALL
    # first calls pay one-off costs (kernel selection per shape, allocator growth): warm up at the measured size
    # where that is cheap, else on a small image
    warm = img if small else C.test_image(128, 128, args.image)
    decode_image(encode_image(model, warm), model)
    repeat = args.repeat if small else 1
    cuda = args.device.startswith("cuda")

    def measure(fn, *a):
        """(result, seconds, peak MiB) of one call."""
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        with PeakMemory(baseline) as pm:
            C.sync(args.device)
            t0 = time.perf_counter()
            out = fn(*a)
            C.sync(args.device)
            t = time.perf_counter() - t0
        return out, t, (torch.cuda.max_memory_allocated() - base) / 2**20 if cuda else pm.mib

    enc_t, dec_t, enc_m, dec_m = [], [], [], []
    for _ in range(repeat):
        data, t, mem = measure(encode_image, model, img)
        enc_t.append(t)
        enc_m.append(mem)
        rec, t, mem = measure(decode_image, data, model)
        dec_t.append(t)
        dec_m.append(mem)
    assert rec.shape == img.shape
    return {"model": args.model, "size": C.size_label(h, w), "height": h, "width": w, "pixels": h * w,
            "encode_s": statistics.median(enc_t), "decode_s": statistics.median(dec_t),
            "encode_peak_mib": max(enc_m), "decode_peak_mib": max(dec_m), "bytes": len(data),
            "bpp": 8 * len(data) / (h * w), "repeat": repeat, "encode_all_s": enc_t, "decode_all_s": dec_t,
            "memory_method": "cuda max_memory_allocated" if cuda else METHOD,
            "resident_before_mib": baseline, "resident_after_mib": resident_mib(),
            "load_average_1min": os.getloadavg()[0]}


def available_mib() -> float:
    from fastlic.evaluation.memory import _status_kib  # noqa: F401  (Linux only, like the method itself)

    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("inf")


def fit_exponent(points, key):
    """Least-squares slope of log(value) against log(pixels): value ~ pixels ** slope."""
    import numpy as np

    pts = [(p["pixels"], p[key]) for p in points if p.get(key) and p[key] > 0]
    if len(pts) < 2:
        return None
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def run_model(args, model: str) -> dict:
    points, skipped = [], []
    prev = None
    for size in args.sizes:
        h, w = C.parse_size(size)
        if prev is not None:
            ratio = h * w / prev["pixels"] * 1.3
            t_pred = (prev["encode_s"] + prev["decode_s"]) * ratio
            m_pred = max(prev["encode_peak_mib"], prev["decode_peak_mib"]) * ratio
            reason = None
            if t_pred > args.budget:
                reason = f"predicted {t_pred:.0f} s for encode+decode > budget {args.budget:.0f} s"
            elif not args.device.startswith("cuda") and m_pred > 0.8 * available_mib():
                reason = f"predicted {m_pred:.0f} MiB peak > 80 % of available {available_mib():.0f} MiB"
            if reason:
                skipped.append({"size": C.size_label(h, w), "reason": reason})
                print(f"  {model} {C.size_label(h, w)}: skipped ({reason})", flush=True)
                continue
        cmd = [sys.executable, __file__, "--child", "--models", model, "--size", size, "--threads",
               str(args.threads), "--device", args.device, "--repeat", str(args.repeat)]
        if args.checkpoint:
            cmd += ["--checkpoint", args.checkpoint]
        if args.image:
            cmd += ["--image", args.image]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=2 * args.budget + 120)
        except subprocess.TimeoutExpired:
            skipped.append({"size": C.size_label(h, w), "reason": f"exceeded {2 * args.budget + 120:.0f} s"})
            print(f"  {model} {C.size_label(h, w)}: timed out", flush=True)
            break
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            why = "killed (out of memory?)" if proc.returncode in (-9, 137) else f"failed: {tail}"
            skipped.append({"size": C.size_label(h, w), "reason": why})
            print(f"  {model} {C.size_label(h, w)}: {why}", flush=True)
            break
        prev = json.loads(proc.stdout.strip().splitlines()[-1])
        points.append(prev)
        print(f"  {model} {prev['size']}: encode {prev['encode_s']:.3f} s, decode {prev['decode_s']:.3f} s, "
              f"peak {prev['encode_peak_mib']:.0f}/{prev['decode_peak_mib']:.0f} MiB, {prev['bpp']:.3f} bpp",
              flush=True)
    big = [p for p in points if p["pixels"] >= 512 * 512]
    fits = {}
    for key in ("encode_s", "decode_s", "encode_peak_mib", "decode_peak_mib"):
        fits[key] = {"all": fit_exponent(points, key), "from_512": fit_exponent(big, key)}
    return {"model": model, "points": points, "skipped": skipped, "exponents": fits}


def markdown(data: dict) -> str:
    out = [f"# Encode/decode time and memory vs image size ({data['machine']['device']})\n\n",
           f"Machine: {data['machine']['summary']}. Weights: {data['weights']}. Command: `{data['command']}`.\n\n",
           "Times are the median of the runs; peak memory is the process's resident-set peak during the call "
           "above its size with the model and input image loaded (`rss-hwm`), or CUDA's peak allocation. Exponent b fits time or memory ~ pixels^b. "
           "load = the machine's 1-minute load average after the point (the CPU is shared; above the core "
           "count, other jobs took part of it and times are inflated).\n\n"]
    rows = []
    for m in data["models"]:
        for p in m["points"]:
            rows.append([m["model"], p["size"], p["pixels"], p["encode_s"], p["decode_s"], p["encode_peak_mib"],
                         p["decode_peak_mib"], p["bpp"], p["load_average_1min"]])
        for s in m["skipped"]:
            rows.append([m["model"], s["size"], None, None, None, None, None, f"skipped: {s['reason']}", None])
    out.append(C.md_table(["model", "size (WxH)", "pixels", "encode s", "decode s", "encode peak MiB",
                           "decode peak MiB", "bpp", "load"], rows))
    rows = []
    for m in data["models"]:
        e = m["exponents"]
        rows.append([m["model"], *[e[k][s] for k in ("encode_s", "decode_s", "encode_peak_mib", "decode_peak_mib")
                                   for s in ("all", "from_512")]])
    out.append("\nFitted exponents (all sizes / sizes from 512x512):\n\n")
    out.append(C.md_table(["model", "enc time", "enc time ≥512²", "dec time", "dec time ≥512²", "enc mem",
                           "enc mem ≥512²", "dec mem", "dec mem ≥512²"], rows))
    return "".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["mlicpp-tiny", "mlicpp-small", "mlicpp"])
    p.add_argument("--sizes", nargs="+", default=DEFAULT_SIZES, help="512 or WIDTHxHEIGHT")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=3, help="runs per size up to 512x512 (median); 1 above")
    p.add_argument("--budget", type=float, default=600.0, help="seconds allowed for encode+decode of one size")
    p.add_argument("--checkpoint", help="weights (one model only); default random weights")
    p.add_argument("--image", help="source image tiled to each size (default Kodak kodim23)")
    p.add_argument("--out-dir", help="default results/benchmarks")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--size", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.model = args.models[0]
        print(json.dumps(child(args)))
        return
    if args.checkpoint and len(args.models) != 1:
        raise SystemExit("--checkpoint needs exactly one model")
    data = {"benchmark": "timing", "command": C.command_line(), "machine": C.machine(args.device, args.threads),
            "weights": args.checkpoint or "random", "models": []}
    for model in args.models:
        print(f"{model}:", flush=True)
        data["models"].append(run_model(args, model))
    stem = f"timing_{args.device.split(':')[0]}"
    paths = C.write_outputs(stem, data, markdown(data), args.out_dir)
    print("wrote", *paths)


if __name__ == "__main__":
    main()
