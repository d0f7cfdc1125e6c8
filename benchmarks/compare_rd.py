"""Rate-distortion of the portable decoder (format 2) against fastlic 0.1's float32 decoder (format 1).

    python benchmarks/compare_rd.py [-o results/portability/rd_vs_format1.json]

Pairs of ``fastlic eval`` results on Kodak with the same weights (see results/README.md): per quality point
the mean bpp and PSNR of each, their relative and absolute changes, and the PSNR BD-rate of format 2 against
format 1 (variable-rate models; a fixed-rate model has one point, so its rate change at equal PSNR is given
from the per-image files instead).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO  # noqa: E402

from fastlic.evaluation.bdrate import bd_psnr_results, bd_rate_results  # noqa: E402
from fastlic.evaluation.results import load_results  # noqa: E402

PAIRS = {
    "bundled-default (mlicpp-mini-vr)": ("results/kodak/fastlic-mlicpp-mini-vr.json",
                                         "results/portability/kodak_new_mlicpp-mini-vr.json"),
    "bundled eContextformer (econtextformer-small-vr)": (
        "results/kodak/fastlic-econtextformer-small-vr.json",
        "results/portability/kodak_new_econtextformer-small-vr.json"),
    "full MLIC++, fixture weights": ("results/portability/kodak_old_mlicpp-fixture.json",
                                     "results/portability/kodak_new_mlicpp-fixture.json"),
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default=str(REPO / "results" / "portability" / "rd_vs_format1.json"))
    args = p.parse_args()
    report = {"command": "python benchmarks/compare_rd.py " + " ".join(sys.argv[1:]), "models": {}}
    for name, (old_path, new_path) in PAIRS.items():
        if not (REPO / old_path).exists() or not (REPO / new_path).exists():
            print(f"{name}: missing {old_path} or {new_path}; skipped")
            continue
        old, new = load_results(REPO / old_path), load_results(REPO / new_path)
        ro, rn = old["results"], new["results"]
        points = []
        for i in range(len(ro["bpp"])):
            points.append({"quality": ro.get("quality", [None] * len(ro["bpp"]))[i],
                           "bpp_format1": ro["bpp"][i], "bpp_format2": rn["bpp"][i],
                           "rate_change": rn["bpp"][i] / ro["bpp"][i] - 1,
                           "psnr_format1": ro["psnr-rgb"][i], "psnr_format2": rn["psnr-rgb"][i],
                           "psnr_change_db": rn["psnr-rgb"][i] - ro["psnr-rgb"][i]})
        entry = {"format1": old_path, "format2": new_path, "points": points}
        if len(points) >= 2:
            entry["bd_rate_psnr"] = bd_rate_results(old, new) / 100
            entry["bd_psnr_db"] = bd_psnr_results(old, new)
        report["models"][name] = entry
        print(f"{name}: " + "; ".join(f"q{pt['quality']}: {100 * pt['rate_change']:+.3f} % rate, "
                                      f"{pt['psnr_change_db']:+.4f} dB" for pt in points)
              + (f"; BD-rate {100 * entry['bd_rate_psnr']:+.3f} %" if "bd_rate_psnr" in entry else ""))
    Path(args.output).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
