"""Where the integer decode spends its time, per node kind (issue 40's speed work).

    python benchmarks/integer_profile.py [--threads 1] [--repeats 2] [--checkpoint INT.pt]

Decodes a file of the bundled default converted to the integer mode (or ``--checkpoint``, an integer-mode
checkpoint) made from the whole of ``fastlic/data/kodim23.png`` at quality 2, timing every node of the integer
path (:mod:`fastlic.integer.nodes`) and the entropy decoder's calls by wrapping them; best of ``--repeats``
decodes. Node time includes the integer ops inside it; "other" is the driver's data movement, checkerboard
gathers and the synthesis. Wall-clock on whatever machine runs it: say whether it was shared.
"""

from __future__ import annotations

import argparse
import collections
import re
import time
from pathlib import Path

import torch

import fastlic
from fastlic import checkpoint, codec
from fastlic.entropy.coder import Decoder
from fastlic.io import read_image


def _kind(name: str) -> str:
    """Group node names: hs.3 -> hs, ep_a4.1 -> ep, local7.qkv -> local.qkv, inter3.mlp.0 -> inter.mlp."""
    head, _, rest = name.partition(".")
    head = re.sub(r"\d+$", "", head)
    head = {"ep_a": "ep", "ep_n": "ep", "lrp_a": "lrp", "lrp_n": "lrp"}.get(head, head)
    if head.startswith("y_"):
        return "latent requant"
    rest = re.sub(r"\.\d+$", "", rest)
    return head if head in ("hs", "ep", "lrp", "cc") or not rest else f"{head}.{rest}"


def profile(model, data, repeats: int) -> tuple[dict, float]:
    ip = model.integer_path
    totals = collections.defaultdict(float)
    depth = [0]

    def wrap(key, fn):
        def inner(*a, **k):
            if depth[0]:
                return fn(*a, **k)
            depth[0] += 1
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                totals[key] += time.perf_counter() - t
                depth[0] -= 1
        return inner

    # special methods are looked up on the class: wrap each node class's __call__
    classes = {type(n) for n in ip.nodes.values()}
    saved = {c: c.__call__ for c in classes}
    for c in classes:
        real = saved[c]

        def call(self, *a, _real=real, **k):
            return wrap(_kind(self.name), lambda *aa, **kk: _real(self, *aa, **kk))(*a, **k)
        c.__call__ = call
    dec = Decoder.decode
    Decoder.decode = lambda self, *a, **k: wrap("entropy decode", lambda: dec(self, *a, **k))()
    syn = type(model).synthesis
    type(model).synthesis = lambda self, y: wrap("synthesis", lambda: syn(self, y))()
    best, best_totals = float("inf"), {}
    try:
        for _ in range(repeats):
            totals.clear()
            t = time.perf_counter()
            codec.decode_image(data, model)
            wall = time.perf_counter() - t
            if wall < best:
                best, best_totals = wall, dict(totals)
    finally:
        for c, f in saved.items():
            c.__call__ = f
        Decoder.decode = dec
        type(model).synthesis = syn
    best_totals["other"] = best - sum(best_totals.values())
    return best_totals, best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--checkpoint", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    img = read_image(Path(fastlic.__file__).parent / "data" / "kodim23.png")
    if args.checkpoint:
        m = checkpoint.load_checkpoint(args.checkpoint)
    else:
        m = codec.load_model()
        m.to_integer()
    data = codec.encode_image(m, img, quality=2.0 if hasattr(m, "num_rates") else None)
    codec.decode_image(data, m)  # warm-up
    totals, wall = profile(m, data, args.repeats)
    print(f"decode {wall:.3f} s, {args.threads} thread(s)")
    for k, v in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {k:24s} {v:7.3f} s  {100 * v / wall:5.1f} %")


if __name__ == "__main__":
    main()
