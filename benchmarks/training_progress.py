"""Append the Kodak RD points of a bundled model to ``results/kodak/training_progress.csv``.

    python benchmarks/training_progress.py results/kodak/fastlic-mlicpp-mini-vr.json \
        --card fastlic/weights/mlicpp-mini-vr.json [--csv results/kodak/training_progress.csv]
    python benchmarks/training_progress.py --from-git results/kodak/fastlic-mlicpp-mini-vr.json \
        --card fastlic/weights/mlicpp-mini-vr.json      # every committed version of the pair, oldest first
    python benchmarks/training_progress.py --bdrate-against results/kodak/webp.json   # the curve as BD-rates

One row per quality: model, total training steps and wall hours of the weights (from the card), quality, mean
bpp of the real files and mean PSNR over the Kodak images. Rows already in the file (same model, steps,
quality) are replaced, so re-running is harmless.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

FIELDS = ["model", "steps", "wall_time_h", "quality", "bpp", "psnr"]


def rows(result: dict, card: dict) -> list[dict]:
    r = result["results"]
    return [{"model": card["model"], "steps": card["training"]["steps"], "wall_time_h": card["training"]["wall_time_h"],
             "quality": q, "bpp": round(b, 4), "psnr": round(p, 3)}
            for q, b, p in zip(r["quality"], r["bpp"], r["psnr-rgb"])]


def _git(*args) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def from_git(result_path: str, card_path: str) -> list[dict]:
    out = []
    for commit in reversed(_git("log", "--format=%H", "--", result_path).split()):
        try:
            card = json.loads(_git("show", f"{commit}:{card_path}"))
        except subprocess.CalledProcessError:
            continue
        out += rows(json.loads(_git("show", f"{commit}:{result_path}")), card)
    return out


def bdrate_curve(csv_path: Path, anchor_path: Path) -> list[dict]:
    """PSNR BD-rate (%) of every (model, steps) snapshot of the CSV against an anchor's RD results."""
    from fastlic.evaluation.base import EvaluationError
    from fastlic.evaluation.bdrate import bd_rate

    anchor = json.loads(anchor_path.read_text())["results"]
    points: dict[tuple, list] = {}
    for r in csv.DictReader(csv_path.open()):
        points.setdefault((r["model"], int(r["steps"]), float(r["wall_time_h"])), []).append(
            (float(r["bpp"]), float(r["psnr"])))
    out = []
    for (model, steps, hours), pts in sorted(points.items()):
        bpp, psnr = zip(*sorted(pts))
        try:
            value = round(bd_rate(anchor["bpp"], anchor["psnr-rgb"], list(bpp), list(psnr)), 2)
        except EvaluationError:  # no overlapping quality range (early snapshots)
            value = None
        out.append({"model": model, "steps": steps, "wall_time_h": hours, "bd_rate_percent": value})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("result", nargs="?")
    p.add_argument("--card")
    p.add_argument("--csv", default="results/kodak/training_progress.csv")
    p.add_argument("--from-git", action="store_true")
    p.add_argument("--bdrate-against", metavar="RESULTS_JSON",
                   help="print the CSV's snapshots as PSNR BD-rates against these results (e.g. WebP's) and exit")
    args = p.parse_args(argv)
    if args.bdrate_against:
        print(f"PSNR BD-rate against {args.bdrate_against} (Kodak, mean bpp and PSNR per quality):")
        for r in bdrate_curve(Path(args.csv), Path(args.bdrate_against)):
            value = "no overlap" if r["bd_rate_percent"] is None else f"{r['bd_rate_percent']:+.2f} %"
            print(f"  {r['model']:24s} {r['steps']:6d} steps {r['wall_time_h']:6.2f} h  {value}")
        return 0
    if not (args.result and args.card):
        p.error("RESULT and --card are required (or --bdrate-against)")
    new = from_git(args.result, args.card) if args.from_git else \
        rows(json.loads(Path(args.result).read_text()), json.loads(Path(args.card).read_text()))
    path = Path(args.csv)
    old = list(csv.DictReader(path.open())) if path.exists() else []
    key = lambda r: (r["model"], int(r["steps"]), float(r["quality"]))  # noqa: E731
    merged = {key(r): r for r in old}
    merged.update({key(r): r for r in new})
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(sorted(merged.values(), key=key))
    print(f"{path}: {len(merged)} rows ({len(new)} written)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
