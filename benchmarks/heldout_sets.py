"""The held-out evaluation sets: Wikipedia photos 040-049 (never trained on; ``configs/mlicpp_vr_cpu_clean.toml``
validates on them), whole and as one 512x512 centre crop each.

    python benchmarks/heldout_sets.py /tmp/heldout     # -> /tmp/heldout/full/*.png, /tmp/heldout/crops512/*.png

then ``fastlic eval --data /tmp/heldout/full ...`` and ``--data /tmp/heldout/crops512`` (results/heldout/,
results/heldout_crops512/; commands in docs/results.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

SHARED = Path(os.environ.get("FASTLIC_SHARED", Path(__file__).resolve().parents[2] / "shared"))
HELD_OUT = [f"{i:03d}.png" for i in range(40, 50)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--crop", type=int, default=512)
    args = p.parse_args(argv)
    from fastlic.io import read_image, write_image

    full, crops = args.out / "full", args.out / f"crops{args.crop}"
    full.mkdir(parents=True, exist_ok=True)
    crops.mkdir(parents=True, exist_ok=True)
    for name in HELD_OUT:
        img = read_image(SHARED / "data" / "train" / "wikipedia" / name)
        write_image(full / name, img)
        h, w = img.shape[:2]
        c = min(args.crop, h, w)
        y0, x0 = (h - c) // 2, (w - c) // 2
        write_image(crops / name, img[y0 : y0 + c, x0 : x0 + c])
    print(f"{full}: {len(HELD_OUT)} photos; {crops}: {len(HELD_OUT)} crops of {args.crop}x{args.crop}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
