"""``fastlic compress``, ``decompress``, ``info`` and ``demo``."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import torch

from .. import codec, container, numerics
from ..errors import FastlicError, FormatError
from ..io import OutputExistsError, read_image, write_bytes, write_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".ppm", ".pgm", ".pnm"}


def _common(p, decoding: bool = False):
    if not decoding:
        p.add_argument("--model", help=f"registry name of the model (default: {codec.DEFAULT_MODEL})")
    p.add_argument("--checkpoint", help="a fastlic checkpoint, or an official MLIC++ .pth.tar (variant detected)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's default)")
    p.add_argument("--precision", choices=numerics.PRECISIONS, default=None,
                   help="analysis/synthesis transforms: auto (bf16 where the CPU has native bf16, or CUDA), "
                        "bf16, or fp32 (exact mode); the entropy parameters are float64 in every mode "
                        "(default: auto, or $FASTLIC_PRECISION)")


def _output_options(p, what: str, suffix: str):
    p.add_argument("-o", "--output", metavar="OUT",
                   help=f"output file, or an existing directory to write <name>{suffix} into (default: beside "
                        f"each input, {what})")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing output files")
    talk = p.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    talk.add_argument("-v", "--verbose", action="store_true",
                      help="also print the model, quality, tiles and timings of each file")


def register(sub):
    p = sub.add_parser("compress", help="compress images to .flic files",
                       description="Compress images to .flic files: photo.png -> photo.flic beside it, or into "
                                   "-o DIR; a directory input codes each image in it, keeps going past bad files "
                                   "and ends with a summary. Existing files are never replaced without --force. "
                                   "Exit status: 0 all written, 1 an error (or any input of a batch failed), "
                                   "2 bad usage.")
    p.add_argument("inputs", nargs="+", metavar="IN", help="image files or directories of images")
    _output_options(p, "photo.png -> photo.flic", ".flic")
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
    _common(p)
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", help="decompress .flic files to images",
                       description="Decompress .flic files: photo.flic -> photo.png beside it, or into -o DIR "
                                   "(-o FILE for one input; its extension picks the format). A directory input "
                                   "decodes each .flic file in it. Existing files are never replaced without "
                                   "--force. Exit status: 0 all written, 1 an error, 2 bad usage.")
    p.add_argument("inputs", nargs="+", metavar="IN.flic", help=".flic files or directories of them")
    _output_options(p, "photo.flic -> photo.png", ".png")
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
    if args.precision is not None:
        numerics.set_precision(args.precision)
    if args.threads is not None:
        if args.threads < 1:
            raise FastlicError("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    if args.device != "cpu" and not torch.cuda.is_available():
        raise FastlicError(f"device {args.device!r} is not available on this machine")


def _expand_inputs(inputs, pick=None):
    """Files of ``inputs``; a directory adds its visible files (those ``pick`` accepts, if given)."""
    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(q for q in path.iterdir() if q.is_file() and not q.name.startswith(".")
                           and (pick is None or pick(q)))
            if not found:
                raise FastlicError(f"{path}: directory has no {'files' if pick is None else 'files to code'}")
            files.extend(found)
        else:
            files.append(path)
    return files


def _plan(args, suffix: str, pick=None):
    """-> (batch, [(input, output), ...]): outputs beside the inputs with ``suffix``, in ``-o DIR``, or ``-o FILE``
    for a single input."""
    files = _expand_inputs(args.inputs, pick)
    batch = len(files) > 1 or len(args.inputs) > 1 or Path(args.inputs[0]).is_dir()
    if args.output is None:
        return batch, [(f, f.with_name(f.stem + suffix)) for f in files]
    out = Path(args.output)
    if out.is_dir():
        return batch, [(f, out / (f.stem + suffix)) for f in files]
    if batch:
        if out.exists():
            raise FastlicError(f"{out}: is not a directory (several inputs need -o DIR)")
        raise FastlicError(f"{out}: output directory does not exist")
    return batch, [(files[0], out)]


class _Say:
    """What a command prints: ``info`` unless --quiet, ``detail`` with --verbose, warnings unless --quiet,
    errors always (through the progress bar's writer while one is drawn)."""

    def __init__(self, args):
        self.quiet, self.verbose = args.quiet, args.verbose
        self.bar = None

    def _print(self, text, err):
        stream = sys.stderr if err else sys.stdout
        if self.bar is not None:
            self.bar.write(text, file=stream)
        else:
            print(text, file=stream)

    def info(self, text, err=False):
        if not self.quiet:
            self._print(text, err)

    def detail(self, text):
        if self.verbose:
            self._print(text, False)

    def warn(self, text):
        if not self.quiet:
            self._print(f"fastlic: warning: {text}", True)

    def error(self, text):
        self._print(f"fastlic: error: {text}", True)


def _run_batch(jobs, batch: bool, say: _Say, work, verb: str) -> int:
    """Run ``work(src, dst)`` for each job. One file: errors propagate (one line, exit 1). A batch keeps going
    past failures, prints one error line for each, and ends with a summary line; exit 1 if any failed."""
    if not batch:
        work(*jobs[0])
        return 0
    failed, written = 0, {}
    items = _progress(jobs, not say.quiet and sys.stderr.isatty())
    say.bar = items if items is not jobs else None
    try:
        for src, dst in items:
            try:
                if dst in written:
                    raise FastlicError(f"{src}: would overwrite {dst}, just written from {written[dst]}")
                work(src, dst)
                written[dst] = src
            except FastlicError as exc:
                failed += 1
                say.error(str(exc))
    finally:
        if say.bar is not None:
            say.bar.close()
        say.bar = None
    if failed:
        print(f"fastlic: {len(written)} {verb}, {failed} failed", file=sys.stderr)
        return 1
    say.info(f"{len(written)} {verb}, 0 failed")
    return 0


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
    say = _Say(args)
    batch, jobs = _plan(args, ".flic", pick=lambda q: q.suffix.lower() != ".flic")
    if not batch and not args.force and os.path.lexists(jobs[0][1]):
        raise OutputExistsError(jobs[0][1])  # before loading the model and encoding
    model = codec.load_model(args.model, args.checkpoint, args.device)
    opts = _ordo_options(args, model)
    say.detail(f"model {model.model_name}, weights {codec.fingerprint(model).hex()[:16]}"
               + (f" ({args.checkpoint})" if args.checkpoint else " (bundled)"))
    say.detail(_mode(args.device))

    def work(f, target):
        if not args.force and os.path.lexists(target):
            raise OutputExistsError(target)
        notes = []
        image = read_image(f, notes)
        for n in notes:
            say.warn(n)
        t0 = time.perf_counter()
        kw = dict(tile=args.tile, overlap=args.tile_overlap, max_memory=int(args.max_memory * 2 ** 30), **opts)
        if args.target_bpp is not None or args.target_psnr is not None:
            metric, goal = ("bpp", args.target_bpp) if args.target_bpp is not None else ("psnr", args.target_psnr)
            data, q, value = codec.encode_to_target(model, image, goal, metric, **kw)
            say.info(f"{f.name}: quality {q:.4f} gives {value:.4f} {'bpp' if metric == 'bpp' else 'dB'} "
                     f"(target {goal:g})", err=True)
        else:
            data = codec.encode_image(model, image, quality=args.quality, **kw)
        seconds = time.perf_counter() - t0
        write_bytes(target, data, overwrite=args.force)
        h, w = image.shape[:2]
        if not batch or say.verbose:
            say.info(f"{f} -> {target}: {len(data)} bytes, {8 * len(data) / (h * w):.4f} bpp, {seconds:.2f} s")
        header = codec.read_header(data, str(target))
        quality = "" if math.isnan(header.quality) else f", quality {header.quality:g}"
        say.detail(f"  {w}x{h}{quality}, {len(header.tiles)} tile(s), input {f.stat().st_size} bytes")

    return _run_batch(jobs, batch, say, work, "compressed")


def _read_flic(path):
    path = Path(path)
    if not path.is_file():
        raise FastlicError(f"{path}: no such file")
    data = path.read_bytes()
    return container.unpack(data, str(path))


def cmd_decompress(args) -> int:
    _setup(args)
    say = _Say(args)
    batch, jobs = _plan(args, ".png", pick=lambda q: q.suffix.lower() == ".flic")
    if not batch and not args.force and os.path.lexists(jobs[0][1]):
        raise OutputExistsError(jobs[0][1])
    models = {}

    def work(src, target):
        if not args.force and os.path.lexists(target):
            raise OutputExistsError(target)
        f = _read_flic(src)
        if f.model not in models:  # loaded once per model name of a batch
            models[f.model] = codec.load_model(f.model, args.checkpoint, args.device)
            say.detail(f"model {f.model}, weights {codec.fingerprint(models[f.model]).hex()[:16]}")
            say.detail(_mode(args.device))
        model = models[f.model]
        t0 = time.perf_counter()
        image = codec.decode_image(f, model, str(src), max_memory=int(args.max_memory * 2 ** 30))
        write_image(target, image, overwrite=args.force)
        if not batch or say.verbose:
            say.info(f"{src} -> {target}: {f.width}x{f.height}, {time.perf_counter() - t0:.2f} s")
        quality = "" if math.isnan(f.quality) else f"quality {f.quality:g}, "
        say.detail(f"  {quality}{len(f.tiles)} tile(s), {Path(src).stat().st_size} bytes, "
                   f"{8 * Path(src).stat().st_size / f.num_pixels:.4f} bpp")

    return _run_batch(jobs, batch, say, work, "decompressed")


def _mode(device) -> str:
    d = numerics.describe(device)
    return (f"{d['transforms']}; entropy parameters {d['parameter_path']}; {d['threads']} threads, "
            f"SIMD {d['cpu_capability']}, oneDNN {'on' if d['mkldnn'] else 'off'}")


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
    print(f"this machine: {_mode('cpu')}")
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
