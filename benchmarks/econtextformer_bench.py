"""Measurements of eContextformer's complexity claims on this code base (docs/econtextformer.md).

    python benchmarks/econtextformer_bench.py macs        # (1) context kMAC/px with/without EGR, SFG, caching
    python benchmarks/econtextformer_bench.py caching     # (2) decode time with vs without the KV cache
    python benchmarks/econtextformer_bench.py serial      # (3) eContextformer vs serial Contextformer
    python benchmarks/econtextformer_bench.py params      # (4) parameters of the paper configuration
    python benchmarks/econtextformer_bench.py exact       # (5a) exactness of the paper configuration, 256x256
    python benchmarks/econtextformer_bench.py decode      # (5b) 768x512 decode, 2 threads: time + peak memory
    python benchmarks/econtextformer_bench.py encode      # (6) single-pass vs step-by-step encoder, same bytes
    python benchmarks/econtextformer_bench.py breakdown   # where the 768x512 decode time goes

Every sub-command writes ``results/econtextformer/<name>.json``. Weights are random (no trained eContextformer
exists); g_a's last convolution is scaled by 5, which gives about 1 bpp on Kodak content, a realistic amount of
work for the entropy coder. MAC counts and decoding operations do not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fastlic.complexity import MacCounter, measure, parameter_counts  # noqa: E402
from fastlic.registry import create_model  # noqa: E402

OUT = REPO / "results" / "econtextformer"
KODAK = Path(os.environ.get("FASTLIC_SHARED", REPO.parent / "shared")) / "data" / "kodak"


def machine() -> str:
    return f"{os.cpu_count()}-core {platform.machine()} CPU, torch {torch.__version__}"


def build(name="econtextformer", seed=0, gain=5.0, **config):
    torch.manual_seed(seed)
    m = create_model(name, **config)
    with torch.no_grad():
        m.g_a.layers[6].weight.mul_(gain)
    m.eval()
    m.update()
    return m


def kodak(h: int, w: int) -> torch.Tensor:
    """Top-left h x w crop of kodim01 (768x512 landscape) as [1, 3, h, w] in [0, 1]."""
    from fastlic.io import read_image
    img = read_image(KODAK / "kodim01.png")[:h, :w]
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255


def save(name: str, data: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    data = {"machine": machine(), "command": f"python benchmarks/econtextformer_bench.py {' '.join(sys.argv[1:])}",
            **data}
    (OUT / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(data, indent=2))


def timed(fn, repeats: int):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, times


# ---------------------------------------------------------------------------------------------- (1)
def decoder_macs(m, x, cache: bool) -> dict:
    """kMAC/px per component of decoding x; the stream is made with the cache on (bit-identical streams,
    half the time), the decoder runs with ``cache``."""
    m.cache = True
    coded = m.compress(x)
    m.cache = cache
    counter = MacCounter(m)
    with counter, torch.no_grad():
        out = m.decompress(coded["strings"], coded["shape"])
    assert out["checksums"] == coded["checksums"]
    px = x.shape[-2] * x.shape[-1]
    return {k: v / px / 1e3 for k, v in counter.macs.items()}


def cmd_macs(args):
    h, w = args.size
    x = kodak(h, w)
    rows = []
    for sfg in (False, True):
        base = build(sfg=sfg)
        for egr in (False, True):
            for cache in (False, True):
                base.egr = egr
                dec = decoder_macs(base, x, cache)
                rows.append({"egr": egr, "sfg": sfg, "cache": cache, "context_model": dec["context_model"],
                             "entropy_parameters": dec["entropy_parameters"],
                             "context_plus_ep": dec["context_model"] + dec["entropy_parameters"],
                             "decoder_total": sum(dec.values())})
                print(rows[-1], flush=True)
    ref = next(r for r in rows if not (r["egr"] or r["sfg"] or r["cache"]))
    for r in rows:
        r["context_reduction_vs_none"] = 1 - r["context_model"] / ref["context_model"]
        r["context_plus_ep_reduction_vs_none"] = 1 - r["context_plus_ep"] / ref["context_plus_ep"]
    save("macs", {"size": [h, w], "model": "econtextformer (paper configuration)", "image": "kodim01", "rows": rows})


# ---------------------------------------------------------------------------------------------- (2)
def cmd_caching(args):
    """Cached and uncached decodes alternate, so that load from other processes hits both alike; the minimum
    over the repeats is the least disturbed measurement."""
    torch.set_num_threads(args.threads)
    h, w = args.size
    m = build()
    coded = m.compress(kodak(h, w))
    res = {"cached": {"decode_s": []}, "uncached": {"decode_s": []}}
    for _ in range(args.repeats):
        for cache in (True, False):
            m.cache = cache
            out, times = timed(lambda: m.decompress(coded["strings"], coded["shape"]), 1)
            assert out["checksums"] == coded["checksums"]
            res["cached" if cache else "uncached"]["decode_s"] += times
            print(cache, times, flush=True)
    for r in res.values():
        r["min_s"], r["median_s"] = min(r["decode_s"]), statistics.median(r["decode_s"])
    res["speedup_min"] = res["uncached"]["min_s"] / res["cached"]["min_s"]
    res["speedup_median"] = res["uncached"]["median_s"] / res["cached"]["median_s"]
    save("caching", {"size": [h, w], "threads": args.threads, "image": "kodim01", "load_before": os.getloadavg(),
                     **res})


# ---------------------------------------------------------------------------------------------- (3)
def cmd_serial(args):
    torch.set_num_threads(args.threads)
    rows = []
    for h, w in args.sizes:
        x = kodak(h, w)
        row = {"size": [h, w]}
        for name in ("econtextformer", "contextformer"):
            m = build(name)
            coded = m.compress(x)
            out, times = timed(lambda: m.decompress(coded["strings"], coded["shape"]), args.repeats)
            assert out["checksums"] == coded["checksums"]
            r = measure(m, h, w)
            row[name] = {"decode_s": times, "median_s": statistics.median(times),
                         "context_kmac_px": r["decoder_kmac_per_px"]["context_model"],
                         "context_plus_ep_kmac_px": r["decoder_kmac_per_px"]["context_model"]
                         + r["decoder_kmac_per_px"]["entropy_parameters"],
                         "decoder_kmac_px": r["decoder_kmac_per_px"]["total"]}
            if name == "contextformer":
                row[name]["context_kmac_px_closed_form"] = m.context_macs(h, w) / (h * w) / 1e3
            print(name, h, w, row[name], flush=True)
        e, s = row["econtextformer"], row["contextformer"]
        row["decode_time_ratio"] = s["median_s"] / e["median_s"]
        row["context_mac_ratio"] = s["context_kmac_px"] / e["context_kmac_px"]
        row["context_plus_ep_mac_ratio"] = s["context_plus_ep_kmac_px"] / e["context_plus_ep_kmac_px"]
        rows.append(row)
    # MACs at the Kodak size from the closed form (the serial decoder is too slow to run there on this CPU)
    cf = create_model("contextformer")
    ec = build()
    kod = measure(ec, 512, 768)["decoder_kmac_per_px"]
    serial = cf.context_macs(512, 768) / (512 * 768) / 1e3
    save("serial", {"threads": args.threads, "image": "kodim01 crops", "rows": rows,
                    "kodak_size_context_kmac_px": {"contextformer_closed_form": serial,
                                                   "econtextformer_counted": kod["context_model"],
                                                   "ratio": serial / kod["context_model"]}})


# ---------------------------------------------------------------------------------------------- (4)
def cmd_params(args):
    out = {}
    for name in ("econtextformer", "econtextformer-hr", "contextformer"):
        m = create_model(name)
        out[name] = {"per_component": parameter_counts(m), "total": sum(p.numel() for p in m.parameters())}
    save("params", out)


# ---------------------------------------------------------------------------------------------- (5)
def cmd_exact(args):
    torch.set_num_threads(args.threads)
    m = build()
    x = kodak(256, 256)
    with torch.no_grad():
        ref = m(x)
    coded = m.compress(x)
    out = m.decompress(coded["strings"], coded["shape"])
    m.cache = False
    out_nc = m.decompress(coded["strings"], coded["shape"])
    save("exact", {"size": [256, 256], "image": "kodim01 crop", "threads": args.threads,
                   "bytes": sum(len(s[0]) for s in coded["strings"]),
                   "max_abs_diff_decode_vs_eval_forward": (out["x_hat"] - ref["x_hat"]).abs().max().item(),
                   "checksums_equal": out["checksums"] == coded["checksums"],
                   "uncached_equal_cached": bool(torch.equal(out["x_hat"], out_nc["x_hat"]))})


def cmd_decode(args):
    h, w = args.size
    if args.worker:  # fresh process: load streams, decode once, report time and peak RSS
        torch.set_num_threads(args.threads)
        data = torch.load(args.worker)
        m = build()
        rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out, times = timed(lambda: m.decompress(data["strings"], data["shape"]), 1)
        print(json.dumps({"decode_s": times[0], "checksum_ok": out["checksums"] == data["checksums"],
                          "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          "rss_after_model_build_mib": rss_model / 1024}))
        return
    torch.set_num_threads(args.threads)
    m = build()
    x = kodak(h, w)
    t = time.perf_counter()
    coded = m.compress(x)
    enc_s = time.perf_counter() - t
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "streams.pt")
        torch.save(coded, path)
        for _ in range(args.repeats):
            p = subprocess.run([sys.executable, __file__, "decode", "--size", f"{h}x{w}", "--threads",
                                str(args.threads), "--worker", path], capture_output=True, text=True, check=True)
            runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
            print(runs[-1], flush=True)
    save("decode", {"size": [h, w], "threads": args.threads, "image": "kodim01", "encode_s": enc_s,
                    "bytes": sum(len(s[0]) for s in coded["strings"]), "runs": runs,
                    "median_decode_s": statistics.median(r["decode_s"] for r in runs)})


def cmd_encode(args):
    """The single-pass encoder against the decoder's step-by-step driver: each encode in a fresh process
    (first call of a ``fastlic compress``, peak RSS of that process), the two alternating; every file must be
    the same bytes."""
    h, w = args.size
    if args.worker:
        torch.set_num_threads(args.threads)
        m = build()
        m.single_pass_encoder = args.worker == "single"
        x = kodak(h, w)
        rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        coded, times = timed(lambda: m.compress(x), 1 + args.repeats)
        digest = hashlib.sha256(b"".join(s[0] for s in coded["strings"])).hexdigest()
        print(json.dumps({"first_encode_s": times[0], "best_encode_s": min(times[1:]) if times[1:] else None,
                          "streams_sha256": digest, "bytes": sum(len(s[0]) for s in coded["strings"]),
                          "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          "rss_after_model_build_mib": rss_model / 1024}))
        return
    runs = {"single": [], "steps": []}
    for _ in range(args.repeats):
        for mode in runs:
            p = subprocess.run([sys.executable, __file__, "encode", "--size", f"{h}x{w}", "--threads",
                                str(args.threads), "--repeats", "2", "--worker", mode],
                               capture_output=True, text=True, check=True)
            runs[mode].append(json.loads(p.stdout.strip().splitlines()[-1]))
            print(mode, runs[mode][-1], flush=True)
    digests = {r["streams_sha256"] for rs in runs.values() for r in rs}
    summary = {mode: {"median_first_encode_s": statistics.median(r["first_encode_s"] for r in rs),
                      "best_encode_s": min(r["best_encode_s"] for r in rs),
                      "max_peak_rss_mib": max(r["peak_rss_mib"] for r in rs)} for mode, rs in runs.items()}
    save("encode", {"size": [h, w], "threads": args.threads, "image": "kodim01", "same_streams": len(digests) == 1,
                    "runs": runs, "summary": summary,
                    "speedup_best": summary["steps"]["best_encode_s"] / summary["single"]["best_encode_s"],
                    "load_before": os.getloadavg()})


def cmd_breakdown(args):
    """Where a 768x512 decode spends its time: transformer steps, entropy parameters, mixture decoding (pmf
    rows + ANS), hyper decoder, g_s (wall time of each part, measured by wrapping the calls)."""
    torch.set_num_threads(args.threads)
    h, w = args.size
    m = build()
    coded = m.compress(kodak(h, w))
    spent = {}

    def wrap(obj, attr, label):
        fn = getattr(obj, attr)

        def timed_fn(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - t
        setattr(obj, attr, timed_fn)

    wrap(m.context_model, "forward", "context_model")
    wrap(m.gmm, "decode", "mixture_decode")
    wrap(m, "_params", "entropy_parameters")
    wrap(m.h_s, "forward", "h_s")
    wrap(m.g_s, "forward", "g_s")
    wrap(m.entropy_bottleneck, "decompress", "z_decode")
    t = time.perf_counter()
    out = m.decompress(coded["strings"], coded["shape"])
    total = time.perf_counter() - t
    assert out["checksums"] == coded["checksums"]
    spent["other"] = total - sum(spent.values())
    save("breakdown", {"size": [h, w], "threads": args.threads, "image": "kodim01", "total_s": total,
                       "seconds": spent, "load_before": os.getloadavg()})


def _size(text):
    h, w = text.lower().split("x")
    return int(h), int(w)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["macs", "caching", "serial", "params", "exact", "decode", "encode",
                                          "breakdown"])
    p.add_argument("--size", type=_size, default=(512, 768), help="HxW (macs, caching, decode)")
    p.add_argument("--sizes", type=_size, nargs="+", default=[(64, 64), (128, 128)], help="HxW list (serial)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    globals()[f"cmd_{args.command}"](args)


if __name__ == "__main__":
    main()
