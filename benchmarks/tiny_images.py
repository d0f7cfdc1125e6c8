"""Tiny and thin images: PSNR of the image coded alone (before and after issue 42's padding) against the same
pixels coded inside a larger natural picture.

    python benchmarks/tiny_images.py                      # -> results/benchmarks/tiny_images_mlicpp-mini-vr.json
    python benchmarks/tiny_images.py --qualities 0 2 4 --positions 16 --model mlicpp-mini-vr

Every image is a crop of the package's photo (``fastlic/data/kodim23.png``) mirrored and tiled into an unbounded
plane, at seeded places (``--positions`` for sides up to 8 pixels, a quarter of it for the others, at least 2).
For each quality, each crop is coded five ways with the bundled weights, by the model's ``compress`` and
``decompress`` (real streams; ``bytes`` counts them, without the ``.flic`` header):

- ``zeros``: the image in the top-left corner, padded with zeros to a multiple of 64 (the MLIC++ reference's
  padding: fastlic before issue 42);
- ``replicate_corner``: top-left, the border repeating the edge pixels (edge padding alone);
- ``fastlic``: ``compress``/``decompress`` as they are (centred, edge padding: :meth:`CompressionModel.pad`);
- ``embedded``: inside a context of the plane around it (at least 31 pixels on every side, sides multiples of
  64, so nothing is padded), the PSNR measured on the crop's own pixels: the same pixels in a larger picture;
- ``embedded_corner``: the same context size with the crop at its top-left corner.

PSNR is pooled over positions (mean squared error of all their pixels, then PSNR); ``bytes`` is the mean size
of the streams. One thread (``torch.set_num_threads(1)``); the transforms run with the default precision setting
(recorded under ``numerics``).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from _common import REPO, RESULTS, command_line, machine, md_table, write_outputs

SIZES = [(1, 1), (2, 2), (8, 8), (1, 5000), (5000, 1), (3, 200), (63, 65)]  # (H, W)
PHOTO = REPO / "fastlic" / "data" / "kodim23.png"


def _mirror(idx: np.ndarray, n: int) -> np.ndarray:
    """Index into a side of length ``n`` mirrored without repeating the edge sample (period 2n)."""
    k = np.mod(idx, 2 * n)
    return np.where(k < n, k, 2 * n - 1 - k)


def plane_crop(photo: np.ndarray, y0: int, x0: int, h: int, w: int) -> np.ndarray:
    rows = _mirror(np.arange(y0, y0 + h), photo.shape[0])
    cols = _mirror(np.arange(x0, x0 + w), photo.shape[1])
    return np.ascontiguousarray(photo[rows][:, cols])


def _ceil64(n: int) -> int:
    return -(-n // 64) * 64


def context_box(y0: int, x0: int, h: int, w: int) -> tuple[int, int, int, int]:
    """A larger box around the crop: sides multiples of 64 with at least 31 pixels of context on each side."""
    ch, cw = _ceil64(h + 64), _ceil64(w + 64)
    return y0 - (ch - h) // 2, x0 - (cw - w) // 2, ch, cw


def _psnr(se: float, n: int) -> float:
    mse = se / n
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mlicpp-mini-vr")
    p.add_argument("--qualities", type=float, nargs="+", default=[0.0, 2.0, 4.0])
    p.add_argument("--positions", type=int, default=16,
                   help="crops per size up to 8x8 (seeded); a quarter of it (at least 2) for the larger sizes")
    p.add_argument("--out", default=None, help="JSON path (default results/benchmarks/tiny_images_<model>.json)")
    args = p.parse_args()
    torch.set_num_threads(1)

    from fastlic import codec, numerics
    from fastlic.io import image_to_tensor, read_image, tensor_to_image

    model = codec.load_model(args.model)
    photo = read_image(PHOTO)
    rng = np.random.default_rng(0)
    places = {s: [(int(rng.integers(0, 4 * photo.shape[0])), int(rng.integers(0, 4 * photo.shape[1])))
                  for _ in range(args.positions if max(s) <= 8 else max(2, args.positions // 4))] for s in SIZES}

    def code(x, q, padded_from=None):
        """-> (the crop's pixels as decoded, stream bytes). ``padded_from=(h, w)``: ``x`` is an h x w image that
        was padded here, in the top-left corner, to sides the model does not pad again."""
        model.set_quality(q)
        enc = model.compress(x)
        dec = model.decompress(enc["strings"], enc["shape"])
        assert dec["checksums"] == enc["checksums"]
        out = tensor_to_image(dec["x_hat"])
        if padded_from:
            out = out[: padded_from[0], : padded_from[1]]
        return out, sum(len(s[0]) for s in enc["strings"])

    variants = ("zeros", "replicate_corner", "fastlic", "embedded", "embedded_corner")
    rows, t0 = [], time.time()
    for q in args.qualities:
        for (h, w) in SIZES:
            se, size = dict.fromkeys(variants, 0.0), dict.fromkeys(variants, 0)

            def add(name, region, img, n):
                se[name] += float(((region.astype(np.float64) - img) ** 2).sum())
                size[name] += n

            for (y0, x0) in places[(h, w)]:
                img = plane_crop(photo, y0, x0, h, w)
                x = image_to_tensor(img)
                ph, pw = model.padded_size(h, w)
                for name, mode in (("zeros", "constant"), ("replicate_corner", "replicate")):
                    out, n = code(F.pad(x, (0, pw - w, 0, ph - h), mode=mode), q, (h, w))
                    add(name, out, img, n)
                out, n = code(x, q)
                add("fastlic", out, img, n)
                cy, cx, ch, cw = context_box(y0, x0, h, w)
                out, n = code(image_to_tensor(plane_crop(photo, cy, cx, ch, cw)), q)
                add("embedded", out[y0 - cy : y0 - cy + h, x0 - cx : x0 - cx + w], img, n)
                out, n = code(image_to_tensor(plane_crop(photo, y0, x0, ch, cw)), q)
                add("embedded_corner", out[:h, :w], img, n)
            k = len(places[(h, w)])
            row = {"quality": q, "size": f"{w}x{h}", "h": h, "w": w, "positions": k,
                   **{f"psnr_{v}": round(_psnr(se[v], 3 * h * w * k), 2) for v in variants},
                   **{f"bytes_{v}": round(size[v] / k, 1) for v in variants}}
            rows.append(row)
            print(row, flush=True)

    data = {"what": "tiny and thin images coded alone (zero padding before issue 42, edge padding in the corner, "
                    "fastlic's centred edge padding) vs the same pixels inside a larger picture (centre, corner)",
            "command": command_line(), "variants": variants,
            "model": args.model, "image": "fastlic/data/kodim23.png, mirrored plane, seeded positions (numpy seed 0)",
            "positions": {f"{w}x{h}": v for (h, w), v in places.items()}, "numerics": numerics.describe(),
            "machine": machine("cpu", 1), "seconds": round(time.time() - t0, 1), "rows": rows}
    md = md_table(["quality", "size (WxH)", "positions", *[f"PSNR {v}" for v in variants], "bytes fastlic",
                   "bytes embedded"],
                  [[r["quality"], r["size"], r["positions"], *[r[f"psnr_{v}"] for v in variants],
                    r["bytes_fastlic"], r["bytes_embedded"]] for r in rows])
    stem = f"tiny_images_{args.model}"
    out_dir = RESULTS if args.out is None else None
    if args.out:
        from pathlib import Path

        out_dir, stem = Path(args.out).parent, Path(args.out).stem
    print("\n".join(str(p) for p in write_outputs(stem, data, md + "\n", out_dir)))


if __name__ == "__main__":
    main()
