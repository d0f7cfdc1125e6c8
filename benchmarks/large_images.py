"""Compress and decompress large images; record wall time, peak memory (RSS) and tiling.

Each step runs in its own process so that its peak RSS (``ru_maxrss`` from ``wait4``) is its own:

    python benchmarks/large_images.py --model mlicpp --sizes 3840x2160 8000x6000 --threads 2 \
        -o results/large_images_mlicpp.json
    python benchmarks/large_images.py --checkpoint CKPT --sizes 2048x2048 --tile 1024 --compare-untiled ...

Test images are made by resizing a Kodak photo (bicubic), so they have photographic content. With ``--model``
and no checkpoint the weights are random (seed 0): time and memory do not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _child(a):
    import numpy as np
    import torch
    from PIL import Image

    import fastlic
    from fastlic import codec

    torch.set_num_threads(a.threads)
    if a.checkpoint:
        model = codec.load_model(checkpoint=a.checkpoint)
    else:
        torch.manual_seed(0)
        model = fastlic.create_model(a.model).eval()
        model.update()
    t0 = time.perf_counter()
    if a.step == "encode":
        w, h = map(int, a.size.split("x"))
        src = Image.open(a.source).convert("RGB").resize((w, h), Image.BICUBIC)
        image = np.asarray(src, dtype=np.uint8)
        t0 = time.perf_counter()
        data = codec.encode_image(model, image, tile=a.tile, max_memory=int(a.max_memory * 2 ** 30))
        Path(a.file).write_bytes(data)
        np.save(a.file + ".npy", image)
    else:
        data = Path(a.file).read_bytes()
        out = codec.decode_image(data, model, max_memory=1 << 40)
        ref = np.load(a.file + ".npy")
        print(json.dumps({"psnr": codec.psnr(ref, out)}))
    import resource

    print(json.dumps({"seconds": time.perf_counter() - t0,
                      "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def _run(args, step, size, file, tile):
    cmd = [sys.executable, __file__, "--child", step, "--size", size, "--file", file, "--threads", str(args.threads),
           "--max-memory", str(args.max_memory), "--source", args.source]
    cmd += ["--checkpoint", args.checkpoint] if args.checkpoint else ["--model", args.model]
    if tile:
        cmd += ["--tile", str(tile)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    res = {}
    for line in out.splitlines():
        if line.startswith("{"):
            res.update(json.loads(line))
    return proc.returncode, res, err.strip().splitlines()[-1:] if proc.returncode else [], res.get("peak_rss_kib")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="mlicpp")
    p.add_argument("--checkpoint")
    p.add_argument("--sizes", nargs="+", default=["3840x2160"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tile", type=int)
    p.add_argument("--max-memory", type=float, default=6.0, help="GiB, the encoder's tiling ceiling")
    p.add_argument("--compare-untiled", action="store_true", help="also code without tiles (rate cost of tiling)")
    p.add_argument("--source", default=str(HERE.parent / "fastlic" / "data" / "kodim23.png"))
    p.add_argument("-o", "--output")
    p.add_argument("--child", choices=["encode", "decode"], dest="step")
    p.add_argument("--size")
    p.add_argument("--file")
    a = p.parse_args(argv)
    if a.step:
        return _child(a)
    rows = []
    for size in a.sizes:
        for tile in ([a.tile, None] if a.compare_untiled else [a.tile]):
            with tempfile.TemporaryDirectory() as d:
                file = os.path.join(d, "img.flic")
                row = {"size": size, "tile_arg": tile}
                for step in ("encode", "decode"):
                    rc, res, err, rss = _run(a, step, size, file, tile)
                    row[step] = {"ok": rc == 0, "seconds": res.get("seconds"),
                                 "peak_rss_mib": rss / 1024 if rss else None, "error": err}
                    if step == "encode" and rc == 0:
                        from fastlic import container

                        f = container.unpack(Path(file).read_bytes())
                        w, h = map(int, size.split("x"))
                        row.update(bytes=os.path.getsize(file), bpp=8 * os.path.getsize(file) / (w * h),
                                   tiles=len(f.tiles), tile=f.tile_h, overlap=f.overlap)
                    if step == "decode":
                        row["psnr"] = res.get("psnr")
                    if rc != 0:
                        break
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    summary = {"model": a.checkpoint or f"{a.model} (random weights, seed 0)", "threads": a.threads,
               "machine": f"{os.cpu_count()}-core {platform.machine()} CPU, {platform.python_version()}",
               "load_average_at_end": os.getloadavg(), "command": "python " + " ".join(sys.argv), "rows": rows}
    if a.output:
        Path(a.output).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
