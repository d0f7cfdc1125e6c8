"""Rate cost of the integer coding models (scale snapping, table quantization, escapes, ANS, header).

For each image: the model's estimate -sum(log2 likelihoods) (continuous scales), the ideal code length of the
symbols under the snapped integer tables, the real entropy-coded stream sizes, and the .flic file size.

    python benchmarks/rate_overhead.py --checkpoint CKPT --images DIR [--limit N] -o results/rate_overhead.json
    python benchmarks/rate_overhead.py --fixture-weights new --images ../shared/data/kodak --limit 4 -o ...
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

from fastlic import codec, container
from fastlic.io import image_to_tensor, read_image


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--checkpoint")
    g.add_argument("--fixture-weights", choices=["new", "old"], help="MLIC++ with the conformance fixture weights")
    p.add_argument("--images", required=True)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.checkpoint:
        model = codec.load_model(checkpoint=a.checkpoint)
        label = a.checkpoint
    else:
        from fastlic.models.mlicpp import MLICPlusPlus
        from fastlic.testing import reference_weights

        sd = reference_weights(f"official_keys_{a.fixture_weights}.tsv", 0)
        model = MLICPlusPlus.from_reference_state_dict(sd, "2023" if a.fixture_weights == "old" else "current")
        label = f"MLIC++ fixture weights ({a.fixture_weights}, seed 0)"
    files = sorted(q for q in Path(a.images).iterdir() if q.suffix.lower() in (".png", ".jpg", ".jpeg"))
    files = files[: a.limit] if a.limit else files
    rows = []
    for f in files:
        image = read_image(f)
        x = image_to_tensor(image)
        with torch.no_grad():
            out = model(x)
        est = {k: float(-torch.log2(v).sum()) for k, v in out["likelihoods"].items()}
        data = codec.encode_image(model, image)
        ff = container.unpack(data)
        y_bytes, z_bytes = ff.stream_bytes()
        real = {"y": 8 * y_bytes, "z": 8 * z_bytes}
        px = image.shape[0] * image.shape[1]
        rows.append({"image": f.name, "pixels": px, "estimated_bits": est, "stream_bits": real,
                     "file_bits": 8 * len(data), "header_bits": 8 * container.header_size(ff),
                     "overhead_vs_estimate": (8 * len(data)) / sum(est.values()) - 1})
        print(f"{f.name}: est {sum(est.values()) / px:.4f} bpp, file {8 * len(data) / px:.4f} bpp "
              f"({100 * rows[-1]['overhead_vs_estimate']:+.2f} %)", file=sys.stderr)
    tot_est = sum(sum(r["estimated_bits"].values()) for r in rows)
    tot_file = sum(r["file_bits"] for r in rows)
    summary = {"model": label, "images": len(rows), "overhead_vs_estimate": tot_file / tot_est - 1,
               "machine": f"{platform.machine()} CPU, torch {torch.__version__}", "command": " ".join(sys.argv),
               "per_image": rows}
    Path(a.output).write_text(json.dumps(summary, indent=1))
    print(f"total: file is {100 * summary['overhead_vs_estimate']:+.3f} % vs the estimated rate")


if __name__ == "__main__":
    main()
