"""Markdown table of BD-rates (PSNR-RGB, pchip) of every curve against several anchors, for docs/evaluation.md.

    python results/kodak/bdrate_table.py results/kodak/*.json ../shared/anchors/kodak/*.json \
        --anchors vtm jpeg webp avif
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fastlic.evaluation.base import EvaluationError  # noqa: E402
from fastlic.evaluation.bdrate import bd_rate_results  # noqa: E402
from fastlic.evaluation.results import load_results  # noqa: E402


def label(path: Path, data: dict) -> str:
    origin = "anchor" if "anchors" in path.parts else "measured"
    return f"{data['name']} ({origin}: {path.name})"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--anchors", nargs="+", required=True, help="curve names (the 'name' field) used as anchors")
    p.add_argument("--metric", default="psnr-rgb")
    args = p.parse_args()
    curves = [(f, load_results(f)) for f in args.files]
    # a measured curve wins over a published one of the same name, except VTM which only exists as anchor
    by_name = {}
    for f, d in curves:
        if d["name"] not in by_name or "anchors" not in f.parts:
            by_name[d["name"]] = (f, d)
    anchors = [by_name[a] for a in args.anchors if a in by_name]
    print("| codec | " + " | ".join(f"vs {d['name']}" for _, d in anchors) + " |")
    print("|---|" + "---|" * len(anchors))
    for f, d in curves:
        cells = []
        for af, ad in anchors:
            if af == f:
                cells.append("—")
                continue
            try:
                cells.append(f"{bd_rate_results(ad, d, args.metric):+.1f} %")
            except EvaluationError:
                cells.append("n/a")
        print(f"| {label(f, d)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
