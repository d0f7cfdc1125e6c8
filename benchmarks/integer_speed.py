"""First timing of the integer numeric mode against the float64 portable mode (issue 40).

    python benchmarks/integer_speed.py [--threads 1] [--repeats 3] [-o results/integer/speed.json]

The bundled default on the whole of ``fastlic/data/kodim23.png`` (768x512) at quality 2: encode and decode
through fastlic.codec in the float64 mode and in the integer mode (int16 and int8 activations), first call in the
process and best of ``--repeats``. The parameter path's own time is the decode minus the synthesis (timed alone
on the same latents). Conditions go into the JSON; on a shared CPU label the numbers "under load".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

import fastlic
from fastlic import codec
from fastlic.integer.nodes import QuantConfig
from fastlic.io import read_image


def timed(fn, repeats):
    t = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t
    best = first
    for _ in range(repeats - 1):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return out, first, best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    img = read_image(Path(fastlic.__file__).parent / "data" / "kodim23.png")
    rows = {}
    for name, cfg in (("float64", None), ("int16-act", QuantConfig(act_bits=16)), ("int8-act", QuantConfig(act_bits=8))):
        m = codec.load_model()
        if cfg is not None:
            m.to_integer(cfg=cfg)
        data, enc_first, enc_best = timed(lambda: codec.encode_image(m, img, quality=2.0), args.repeats)
        _, dec_first, dec_best = timed(lambda: codec.decode_image(data, m), args.repeats)
        x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            y_hat = m(x)["y_hat"]
            _, _, syn_best = timed(lambda: m.synthesis(y_hat), args.repeats)
        rows[name] = {"bytes": len(data), "encode_first_s": enc_first, "encode_best_s": enc_best,
                      "decode_first_s": dec_first, "decode_best_s": dec_best, "synthesis_best_s": syn_best,
                      "parameter_path_decode_best_s": dec_best - syn_best}
        print(name, json.dumps(rows[name]), flush=True)
    out = {"image": "kodim23 768x512", "quality": 2.0, "threads": args.threads, "rows": rows,
           "conditions": {"cpu": platform.processor() or platform.machine(), "load_average": os.getloadavg(),
                          "capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
                          "note": "shared 2-core CPU with other jobs running: under load"}}
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
