"""Rate-distortion cost of post-training quantization of the bundled default's entropy-parameter path (issue 40).

    python benchmarks/integer_ptq.py [--act-bits 16] [--no-bytes] [-o results/integer/ptq_a16.json]

Calibration (fastlic.integer.mlicpp.quantize_mlicpp) uses only the package's own photo, ``fastlic/data/kodim23.png``:
two 256x384 crops of its left half and their mirror images, at the five trained qualities 0..4. Evaluation: the
right half of the same photo (two 256x384 crops, never calibrated on) and three other Kodak images (whole,
768x512), at qualities 0, 2 and 4. Per point: the estimated rate -sum(log2 p) / pixels from the integer and the
float entropy parameters, the real file bytes of both (``--no-bytes`` skips them) and the PSNR of the
reconstruction (the integer path's from its own latents; in evaluation the float model's forward equals its
decode). One thread, the float64 parameter path as the baseline.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import fastlic
from fastlic import codec
from fastlic.integer.mlicpp import quantize_mlicpp
from fastlic.integer.nodes import QuantConfig
from fastlic.io import read_image

REPO = Path(__file__).resolve().parents[1]
KODAK = REPO.parent / "shared" / "data" / "kodak"


def tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float() / 255


def psnr(x_hat, x) -> float:
    return float(10 * torch.log10(1 / ((x_hat.clamp(0, 1) - x) ** 2).mean()))


def bits(lik: dict) -> float:
    return float(sum(-torch.log2(v.double()).sum() for v in lik.values()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--act-bits", type=int, default=16)
    ap.add_argument("--no-bytes", action="store_true")
    ap.add_argument("--kodak", default="kodim01,kodim15,kodim21")
    ap.add_argument("--qualities", default="0,2,4")
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    m = codec.load_model()
    own = read_image(Path(fastlic.__file__).parent / "data" / "kodim23.png")
    left = [own[:256, :384], own[256:, :384]]
    cal = [tensor(c) for c in left] + [tensor(c[:, ::-1]) for c in left]
    t0 = time.perf_counter()
    im = quantize_mlicpp(m, cal, qualities=(0, 1, 2, 3, 4), cfg=QuantConfig(act_bits=args.act_bits))
    calib_s = time.perf_counter() - t0
    evals = {"kodim23-right-top": own[:256, 384:], "kodim23-right-bottom": own[256:, 384:]}
    for name in filter(None, args.kodak.split(",")):
        evals[name] = read_image(KODAK / f"{name}.png")
    rows = []
    for q in [float(v) for v in args.qualities.split(",")]:
        m.set_quality(q)
        for name, img in evals.items():
            x = tensor(img)
            px = x.shape[-2] * x.shape[-1]
            with torch.no_grad():
                f = m(x)
            r = im.forward(x)
            row = {"image": name, "quality": q, "pixels": px,
                   "bpp_est_float": bits(f["likelihoods"]) / px, "bpp_est_int": bits(r["likelihoods"]) / px,
                   "psnr_float": psnr(f["x_hat"], x), "psnr_int": psnr(r["x_hat"], x)}
            if not args.no_bytes:
                fe = m.compress(x)
                ie = im.compress(x)
                row["bpp_file_float"] = 8 * sum(len(s[0]) for s in fe["strings"]) / px
                row["bpp_file_int"] = 8 * sum(len(s) for s in ie["strings"]) / px
            rows.append(row)
            print(json.dumps(row), flush=True)

    def total(key):
        return sum(r[key] * r["pixels"] for r in rows)

    summary = {"rate_est_change_pct": 100 * (total("bpp_est_int") / total("bpp_est_float") - 1),
               "psnr_change_db_mean": float(np.mean([r["psnr_int"] - r["psnr_float"] for r in rows]))}
    if not args.no_bytes:
        summary["rate_file_change_pct"] = 100 * (total("bpp_file_int") / total("bpp_file_float") - 1)
    out = {"config": im.cfg.describe(), "calibration": "kodim23 left half: 2 crops 256x384 + mirrors, qualities 0-4",
           "calibration_s": calib_s, "rows": rows, "summary": summary,
           "conditions": {"cpu": platform.processor() or platform.machine(), "threads": 1,
                          "torch": torch.__version__, "note": "shared CPU under load"}}
    print(json.dumps(summary))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
