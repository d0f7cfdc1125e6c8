"""``fastlic compress``, ``decompress``, ``info`` and ``demo``."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch

from .. import codec, container
from ..errors import FastlicError, FormatError
from ..io import read_image, write_bytes, write_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".ppm", ".pgm", ".pnm"}


def _common(p, decoding: bool = False):
    if not decoding:
        p.add_argument("--model", help=f"registry name of the model (default: {codec.DEFAULT_MODEL})")
    p.add_argument("--checkpoint", help="a fastlic checkpoint, or an official MLIC++ .pth.tar (variant detected)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--threads", type=int, help="CPU threads for the transforms (default: torch's default)")


def register(sub):
    p = sub.add_parser("compress", help="compress images to .flic files",
                       description="Compress images to .flic files. Several inputs or a directory output write "
                                   "one OUT/<name>.flic per image; bad inputs are reported and skipped.")
    p.add_argument("inputs", nargs="+", metavar="IN", help="image files or directories of images")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file, or directory for several")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--quality", type=float, help="rate of a variable-rate model, a float in [0, rates - 1] "
                                                     "(default: the middle)")
    rate.add_argument("--target-bpp", type=float, help="search the quality whose file has this many bits per pixel")
    rate.add_argument("--target-psnr", type=float, help="search the quality whose decoded image has this PSNR (dB)")
    p.add_argument("--tile", type=int, help="code in independent square tiles of this side (multiple of 64)")
    p.add_argument("--tile-overlap", type=int, default=32, help="pixels shared by neighbouring tiles (default 32)")
    p.add_argument("--max-memory", type=float, default=codec.DEFAULT_MAX_MEMORY / 2 ** 30,
                   help="memory ceiling in GiB for one tile; larger images are tiled (default %(default)g)")
    p.add_argument("--ordo", action="store_true",
                   help="online rate-distortion optimization of the latents at the encoder (eContextformer, "
                        "MLIC++): slower encoding, same decoder, a file never worse by its RD cost")
    p.add_argument("--lmbda", type=float,
                   help="the model's training lambda for --ordo (default: from the checkpoint's metadata)")
    p.add_argument("--coding-threads", type=int, default=1,
                   help="threads of the deterministic entropy-parameter path, recorded in the file; the decoder "
                        "uses the same number (default 1)")
    _common(p)
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", help="decompress a .flic file to an image")
    p.add_argument("input", metavar="IN.flic")
    p.add_argument("-o", "--output", required=True, metavar="OUT.png")
    p.add_argument("--max-memory", type=float, default=codec.DEFAULT_DECODE_MEMORY / 2 ** 30,
                   help="refuse files whose tiles need more memory than this, in GiB (default %(default)g)")
    _common(p, decoding=True)
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("info", help="describe a .flic file")
    p.add_argument("input", metavar="IN.flic")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", help="compress and decompress an example image, print size and PSNR")
    p.add_argument("image", nargs="?", help="image (default: the example shipped with fastlic)")
    p.add_argument("-o", "--output-dir", default=".", help="where to write demo.flic and demo.png")
    _common(p)
    p.set_defaults(func=cmd_demo)


def _setup(args):
    if args.threads is not None:
        if args.threads < 1:
            raise FastlicError("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    if args.device != "cpu" and not torch.cuda.is_available():
        raise FastlicError(f"device {args.device!r} is not available on this machine")


def _expand_inputs(inputs):
    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(q for q in path.iterdir() if q.is_file() and not q.name.startswith("."))
            if not found:
                raise FastlicError(f"{path}: directory has no files")
            files.extend(found)
        else:
            files.append(path)
    return files


def _progress(items, enabled: bool):
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:  # progress is a nicety; never a dependency failure
        return items
    return tqdm(items, unit="img", file=sys.stderr)


def _ordo_options(args, model) -> dict:
    if not args.ordo:
        if args.lmbda is not None:
            raise FastlicError("--lmbda is only used with --ordo")
        return {}
    from ..ordo import OnlineRDO, options_for

    if not isinstance(model, OnlineRDO):
        raise FastlicError(f"model {model.model_name!r} does not support --ordo")
    return options_for(model, args.lmbda)


def cmd_compress(args) -> int:
    _setup(args)
    files = _expand_inputs(args.inputs)
    out = Path(args.output)
    to_dir = len(files) > 1 or out.is_dir() or len(args.inputs) > 1 or Path(args.inputs[0]).is_dir()
    if to_dir and not out.is_dir():
        raise FastlicError(f"{out}: output directory does not exist")
    model = codec.load_model(args.model, args.checkpoint, args.device)
    if not 1 <= args.coding_threads <= 16:
        raise FastlicError("--coding-threads must be in 1..16")
    model.coding_threads = args.coding_threads
    opts = _ordo_options(args, model)
    failures = []
    for f in _progress(files, len(files) > 1):
        target = out / (f.stem + ".flic") if to_dir else out
        try:
            notes = []
            image = read_image(f, notes)
            for n in notes:
                print(f"fastlic: warning: {n}", file=sys.stderr)
            t0 = time.perf_counter()
            kw = dict(tile=args.tile, overlap=args.tile_overlap, max_memory=int(args.max_memory * 2 ** 30), **opts)
            if args.target_bpp is not None or args.target_psnr is not None:
                metric, goal = ("bpp", args.target_bpp) if args.target_bpp is not None else \
                    ("psnr", args.target_psnr)
                data, q, value = codec.encode_to_target(model, image, goal, metric, **kw)
                print(f"{f.name}: quality {q:.4f} gives {value:.4f} {'bpp' if metric == 'bpp' else 'dB'} "
                      f"(target {goal:g})", file=sys.stderr)
            else:
                data = codec.encode_image(model, image, quality=args.quality, **kw)
            write_bytes(target, data)
            if len(files) == 1:
                h, w = image.shape[:2]
                print(f"{f} -> {target}: {len(data)} bytes, {8 * len(data) / (h * w):.4f} bpp, "
                      f"{time.perf_counter() - t0:.2f} s")
        except FastlicError as exc:
            if len(files) == 1:
                raise
            failures.append(str(exc))
    if failures:
        print(f"fastlic: {len(failures)} of {len(files)} inputs failed:", file=sys.stderr)
        for msg in failures:
            print(f"  {msg}", file=sys.stderr)
        return 1
    if len(files) > 1:
        print(f"compressed {len(files)} images into {out}")
    return 0


def _read_flic(path):
    path = Path(path)
    if not path.is_file():
        raise FastlicError(f"{path}: no such file")
    data = path.read_bytes()
    return container.unpack(data, str(path))


def cmd_decompress(args) -> int:
    _setup(args)
    f = _read_flic(args.input)
    model = codec.load_model(f.model, args.checkpoint, args.device) if args.checkpoint else \
        codec.load_model(f.model, None, args.device)
    t0 = time.perf_counter()
    image = codec.decode_image(f, model, args.input, max_memory=int(args.max_memory * 2 ** 30))
    write_image(args.output, image)
    print(f"{args.input} -> {args.output}: {f.width}x{f.height}, {time.perf_counter() - t0:.2f} s")
    return 0


def cmd_info(args) -> int:
    f = _read_flic(args.input)
    total = Path(args.input).stat().st_size
    px = f.num_pixels
    print(f"file:        {args.input}")
    print(f"model:       {f.model} (weights {f.fingerprint.hex()[:16]})")
    print(f"image:       {f.width}x{f.height}, {f.channels} channels, {f.bit_depth} bit "
          f"(padded to multiples of {f.pad_multiple})")
    if not math.isnan(f.quality):
        print(f"quality:     {f.quality:g}")
    print(f"numeric:     {container.NUMERIC_MODES[f.numeric_mode]}")
    print(f"size:        {total} bytes, {8 * total / px:.4f} bpp")
    if len(f.tiles) > 1:
        print(f"tiles:       {len(f.tiles)} of {f.tile_w}x{f.tile_h}, overlap {f.overlap}")
    sizes = f.stream_bytes()
    names = ["y", "z"] if len(sizes) == 2 else [f"stream {i}" for i in range(len(sizes))]
    for name, n in zip(names, sizes):
        print(f"  {name:10s} {n:9d} bytes  {8 * n / px:.4f} bpp")
    overhead = container.header_size(f)
    print(f"  {'header+crc':10s} {overhead:9d} bytes  {8 * overhead / px:.4f} bpp")
    return 0


def cmd_demo(args) -> int:
    """The README's main job: compress an example image to a file, decompress it, print size and PSNR."""
    _setup(args)
    from .. import create_model

    image_path = Path(args.image) if args.image else Path(__file__).resolve().parents[1] / "data" / "kodim23.png"
    outdir = Path(args.output_dir)
    if not outdir.is_dir():
        raise FastlicError(f"{outdir}: output directory does not exist")
    image = read_image(image_path)
    try:
        model = codec.load_model(args.model, args.checkpoint, args.device)
        trained = "trained"
        card = codec.bundled_weights().get(model.model_name, {}).get("card")
        if card and not args.checkpoint:
            import json

            info = json.loads((codec.WEIGHTS_DIR / card).read_text()).get("training", {})
            if "steps" in info:
                trained = f"bundled weights, {info['steps']} training steps on {info.get('machine', 'CPU')}"
    except FastlicError:
        if args.checkpoint:
            raise
        name = args.model or "mlicpp-tiny"
        print(f"NOTE: no trained weights are bundled for {name!r}; this demo uses an UNTRAINED, randomly "
              f"initialized {name!r} model: the numbers below show the pipeline works, not what fastlic can do.", file=sys.stderr)
        torch.manual_seed(0)
        model = create_model(name).eval()
        model.update()
        trained = "UNTRAINED"
    flic, png = outdir / "demo.flic", outdir / "demo.png"
    t0 = time.perf_counter()
    data = codec.encode_image(model, image)
    t1 = time.perf_counter()
    write_bytes(flic, data)
    decoded = codec.decode_image(flic.read_bytes(), model, str(flic))
    t2 = time.perf_counter()
    write_image(png, decoded)
    h, w = image.shape[:2]
    print(f"model {model.model_name} ({trained}), image {image_path.name} {w}x{h}")
    print(f"{flic}: {len(data)} bytes = {8 * len(data) / (h * w):.4f} bpp (PNG input: "
          f"{image_path.stat().st_size} bytes); encode {t1 - t0:.2f} s, decode {t2 - t1:.2f} s")
    print(f"{png}: PSNR {codec.psnr(image, decoded):.2f} dB")
    return 0


__all__ = ["register", "FormatError"]
