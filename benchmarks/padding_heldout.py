"""The padding rule on whole held-out photos: zeros on the right and bottom (before issue 42) against the image
centred with its edges repeated (now), by the evaluation forward pass of the bundled default.

    python benchmarks/padding_heldout.py            # -> results/benchmarks/padding_heldout_mlicpp-mini-vr.json
    python benchmarks/padding_heldout.py --images 040 041 042 --qualities 0 2 4

Images: Wikipedia photos 040-049 of the shared folder (never trained on; ~1296x864, so both sides are padded),
whole. Per image and quality: PSNR of the 8-bit reconstruction on the image's own pixels and the estimated rate
(-sum log2 p of the rounded latents over the image's pixels; the evaluation forward is the decoder's output
exactly, and real files differ from the estimate by the coder's overhead alike in both rules). One thread.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from _common import REPO, command_line, machine, md_table, write_outputs


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mlicpp-mini-vr")
    p.add_argument("--images", nargs="+", default=["040", "041", "042"])
    p.add_argument("--qualities", type=float, nargs="+", default=[0.0, 2.0, 4.0])
    args = p.parse_args()
    torch.set_num_threads(1)

    from fastlic import codec, numerics
    from fastlic.io import image_to_tensor, read_image, tensor_to_image

    shared = Path(os.environ.get("FASTLIC_SHARED", REPO.parent / "shared"))
    model = codec.load_model(args.model)
    rows, t0 = [], time.time()
    for name in args.images:
        img = read_image(shared / "data" / "train" / "wikipedia" / f"{name}.png")
        h, w = img.shape[:2]
        x = image_to_tensor(img)
        ph, pw = model.padded_size(h, w)
        for q in args.qualities:
            model.set_quality(q)
            row = {"image": f"{name}.png", "size": f"{w}x{h}", "quality": q}
            for rule in ("zeros", "centred"):
                with torch.no_grad():
                    if rule == "zeros":  # padded here to sides the model does not pad again; top-left crop
                        out = model(F.pad(x, (0, pw - w, 0, ph - h)))
                        rec = out["x_hat"][..., :h, :w]
                    else:
                        out = model(x)
                        rec = out["x_hat"]
                bits = sum(-torch.log2(v).sum().item() for v in out["likelihoods"].values())
                mse = float(np.mean((tensor_to_image(rec).astype(np.float64) - img) ** 2))
                row[f"psnr_{rule}"] = round(10 * math.log10(255 ** 2 / mse), 3)
                row[f"bpp_{rule}"] = round(bits / (h * w), 5)
            rows.append(row)
            print(row, flush=True)
    mean = {f"{k}_{r}": round(float(np.mean([row[f"{k}_{r}"] for row in rows])), 4)
            for k in ("psnr", "bpp") for r in ("zeros", "centred")}
    data = {"what": "padding rule on whole held-out photos (estimated rate, exact reconstruction)",
            "command": command_line(), "model": args.model, "numerics": numerics.describe(),
            "machine": machine("cpu", 1), "seconds": round(time.time() - t0, 1), "rows": rows, "mean": mean}
    md = md_table(["image", "quality", "PSNR zeros", "PSNR centred", "bpp zeros", "bpp centred"],
                  [[r["image"], r["quality"], r["psnr_zeros"], r["psnr_centred"], r["bpp_zeros"], r["bpp_centred"]]
                   for r in rows])
    print("\n".join(str(p) for p in write_outputs(f"padding_heldout_{args.model}", data, md)))


if __name__ == "__main__":
    main()
