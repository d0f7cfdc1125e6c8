"""Compare step schedules of online RDO (fastlic.ordo) on crops of Kodak images.

    python benchmarks/ordo_schedules.py [--model mlicpp-mini-vr] [--qualities 0 2 4] [--size 256] \
        [--schedule paper=0.062,0.6,1e-7 --schedule ...] [--threads 1]

For each crop, quality and schedule: the actual RD cost (bytes of the coded streams per pixel + λ·255²·MSE of
the decoded crop, λ the checkpoint's λ at that quality) of plain coding and of oRDO's coded file, and the
relative change. oRDO never codes a worse file (it falls back to the plain latents), so a change of 0 means the
optimization found nothing better. Results: results/benchmarks/ordo_schedules_<model>.json and .md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _common import machine, md_table, write_outputs

# (image, top, left): a detailed, a mixed and a smooth picture
CROPS = [("kodim05", 0, 0), ("kodim19", 300, 100), ("kodim23", 200, 300)]
SCHEDULES = {"paper": (0.062, 0.6, 1e-7), "mlicpp": (0.04, 0.88, 1e-3), "g85": (0.062, 0.85, 1e-3)}


def _schedule(text: str):
    name, _, values = text.partition("=")
    try:
        alpha0, gamma, min_step = (float(v) for v in values.split(","))
    except ValueError:
        raise SystemExit(f"bad --schedule {text!r}; write NAME=ALPHA0,GAMMA,MIN_STEP") from None
    return name, (alpha0, gamma, min_step)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mlicpp-mini-vr")
    p.add_argument("--checkpoint", help="weights file (default: the bundled weights)")
    p.add_argument("--qualities", nargs="+", type=float, default=[0, 2, 4])
    p.add_argument("--size", type=int, default=256, help="side of the square crops")
    p.add_argument("--schedule", action="append", type=_schedule, metavar="NAME=A0,G,MIN",
                   help="schedules to compare (default: " + ", ".join(SCHEDULES) + ")")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--shared", default=None, help="the shared data folder (default: $FASTLIC_SHARED or ../shared)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from fastlic.codec import load_model
    from fastlic.io import image_to_tensor, read_image
    from fastlic.ordo import options_for, step_sizes
    from fastlic.testing import shared_dir

    schedules = dict(args.schedule) if args.schedule else SCHEDULES
    model = load_model(args.model, args.checkpoint)
    lambdas = options_for(model)["lmbda"]
    kodak = (shared_dir() if args.shared is None else Path(args.shared)) / "data" / "kodak"
    rows = []
    for name, top, left in CROPS:
        x = image_to_tensor(read_image(kodak / f"{name}.png"))[..., top:top + args.size, left:left + args.size]
        for q in args.qualities:
            for sname, (alpha0, gamma, min_step) in schedules.items():
                t0 = time.perf_counter()
                model.compress(x, quality=q, ordo=True, lmbda=lambdas, alpha0=alpha0, gamma=gamma, min_step=min_step)
                seconds = time.perf_counter() - t0
                info = model.last_ordo_info
                coded = min(info["initial"], info.get("optimized", info["initial"]))
                rows.append({"image": name, "crop": [top, left, args.size], "quality": q, "schedule": sname,
                             "alpha0": alpha0, "gamma": gamma, "min_step": min_step,
                             "iterations": len(step_sizes(alpha0, gamma, min_step)),
                             "plain_cost": info["initial"], "ordo_cost": coded,
                             "change_pct": 100 * (coded / info["initial"] - 1), "seconds": seconds})
                print(f"{name} q={q:g} {sname}: {rows[-1]['change_pct']:+.2f} % ({seconds:.1f} s)", flush=True)
    summary = []
    for sname in schedules:
        per_q = [float(np.mean([r["change_pct"] for r in rows if r["schedule"] == sname and r["quality"] == q]))
                 for q in args.qualities]
        its = next(r["iterations"] for r in rows if r["schedule"] == sname)
        summary.append([sname, *schedules[sname], its, *per_q,
                        float(np.mean([r["change_pct"] for r in rows if r["schedule"] == sname]))])
    header = ["schedule", "alpha0", "gamma", "min_step", "iterations",
              *[f"q={q:g} mean change %" for q in args.qualities], "all"]
    md = (f"# oRDO step schedules, {args.model}, {len(CROPS)} Kodak crops of {args.size}²\n\n"
          "Change of the actual RD cost (bytes/pixel + λ·255²·MSE) of the coded crop against plain coding.\n\n"
          + md_table(header, summary) + "\n" + md_table(
              ["image", "quality", "schedule", "change %", "s"],
              [[r["image"], r["quality"], r["schedule"], r["change_pct"], r["seconds"]] for r in rows]))
    data = {"model": args.model, "checkpoint": args.checkpoint or "bundled", "machine": machine("cpu", args.threads),
            "command": "python benchmarks/ordo_schedules.py " + " ".join(argv or sys.argv[1:]),
            "rows": rows, "summary": {"header": header, "rows": summary}}
    paths = write_outputs(f"ordo_schedules_{args.model}", data, md)
    print("->", *paths)


if __name__ == "__main__":
    main()
