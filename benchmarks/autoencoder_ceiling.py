"""How much of a model's distortion is quantization, and how much the transforms themselves?

    python benchmarks/autoencoder_ceiling.py [--model mlicpp-mini-vr] [--qualities 0 2 4] [--limit N] [--threads 2]

For every Kodak image and quality: PSNR-RGB of g_s(g_a(x)) with the latent left continuous (no quantization:
the ceiling the transforms allow), with y rounded (the latent grid of that quality, no entropy model: its
rounding around the predicted means changes this slightly), and of the real coded file (``fastlic`` encode +
decode). If the continuous PSNR is flat across qualities and close to the coded one at the highest quality, the
transforms, not the rate, limit the upper end of the RD curve. Results: results/benchmarks/autoencoder_ceiling_<model>.json and .md.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from _common import machine, md_table, write_outputs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mlicpp-mini-vr")
    p.add_argument("--checkpoint", help="weights file (default: the bundled weights)")
    p.add_argument("--qualities", nargs="+", type=float, default=[0, 2, 4])
    p.add_argument("--limit", type=int, help="only the first N Kodak images")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from fastlic.codec import decode_image, encode_image, load_model
    from fastlic.evaluation.metrics import psnr
    from fastlic.io import image_to_tensor, read_image
    from fastlic.testing import shared_dir
    from fastlic.training.metrics import mse_per_sample, psnr_from_mse

    def psnr_float(x_hat, x):  # of a float reconstruction, before any 8-bit rounding
        return float(psnr_from_mse(mse_per_sample(x_hat.clamp(0, 1), x)))

    model = load_model(args.model, args.checkpoint)
    images = sorted((shared_dir() / "data" / "kodak").glob("*.png"))[: args.limit]
    rows = []
    for path in images:
        image = read_image(path)
        x = image_to_tensor(image)
        h, w = x.shape[-2:]
        xp = model.pad(x)
        for q in args.qualities:
            model.set_quality(q)
            with torch.no_grad():
                y = model.g_a(xp)
                continuous = psnr_float(model.crop(model.g_s(y), h, w), x)
                rounded = psnr_float(model.crop(model.g_s(torch.round(y)), h, w), x)
            data = encode_image(model, image, quality=q)
            coded = psnr(image, decode_image(data, model))
            rows.append({"image": path.stem, "quality": q, "psnr_continuous": continuous, "psnr_rounded": rounded,
                         "psnr_coded": coded, "bpp": 8 * len(data) / (h * w)})
            print(f"{path.stem} q={q:g}: continuous {continuous:.2f} dB, rounded {rounded:.2f} dB, "
                  f"coded {coded:.2f} dB at {rows[-1]['bpp']:.3f} bpp", flush=True)
    summary = [[q, *(float(np.mean([r[k] for r in rows if r["quality"] == q]))
                     for k in ("bpp", "psnr_coded", "psnr_rounded", "psnr_continuous"))] for q in args.qualities]
    header = ["quality", "bpp", "PSNR coded (dB)", "PSNR y rounded (dB)", "PSNR y continuous (dB)"]
    md = (f"# Transform ceiling of {args.model} on Kodak ({len(images)} images)\n\n"
          "Mean over images of PSNR-RGB: the real file, g_s(round(y)), g_s(y) with no quantization.\n\n"
          + md_table(header, summary))
    data = {"model": args.model, "checkpoint": args.checkpoint or "bundled", "machine": machine("cpu", args.threads),
            "command": "python benchmarks/autoencoder_ceiling.py " + " ".join(argv or sys.argv[1:]),
            "rows": rows, "summary": {"header": header, "rows": summary}}
    print("->", *write_outputs(f"autoencoder_ceiling_{args.model}", data, md))


if __name__ == "__main__":
    main()
