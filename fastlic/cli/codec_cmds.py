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
from ..io import (EXIF_PREFIX, STDIN_NAME, STDIO, STDOUT_NAME, ImageMetadata, OutputExistsError, encode_image_file,
                  image_format, read_image, read_image_and_metadata, refuse_terminal, write_bytes, write_image,
                  write_stdout)
from . import progress

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".ppm", ".pgm", ".pnm"}


def _common(p, decoding: bool = False):
    if not decoding:
        p.add_argument("--model", help=f"registry name of the model (default: {codec.DEFAULT_MODEL}; the list: "
                                       f"fastlic models)")
    p.add_argument("--checkpoint", help="a fastlic checkpoint, or an official MLIC++ .pth.tar (variant detected)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's default)")
    p.add_argument("--precision", choices=numerics.PRECISIONS, default=None,
                   help="analysis/synthesis transforms: auto (bf16 where the CPU has native bf16, or CUDA), "
                        "bf16, or fp32 (exact mode); the entropy parameters are float64 in every mode "
                        "(default: auto, or $FASTLIC_PRECISION)")


def _output_options(p, what: str, kind: str, suffix: str):
    p.add_argument("-o", "--output", metavar="OUT",
                   help=f"output file ({kind}), an existing directory to write <name>{suffix} into (DIR/ with a "
                        f"trailing slash must exist), or - for standard output (default: beside each input, {what}; "
                        f"standard output for the input -)")
    p.add_argument("-f", "--force", action="store_true",
                   help="overwrite existing output files (and write binary data to a terminal)")
    p.add_argument("--strip", action="store_true", help="drop the ICC profile and EXIF metadata (kept by default)")
    talk = p.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    talk.add_argument("-v", "--verbose", action="store_true",
                      help="also print the model, quality, tiles and timings of each file")


def register(sub):
    p = sub.add_parser("compress", help="compress images to .flic files",
                       description="Compress images to .flic files: photo.png -> photo.flic beside it, into "
                                   "-o DIR, or -o FILE.flic; - reads standard input and -o - writes standard "
                                   "output. A directory input codes each image in it, prints a line per file, "
                                   "keeps going past bad files and ends with a summary. Existing files are never "
                                   "replaced without --force. The ICC profile and EXIF are kept (--strip drops "
                                   "them). A --target-* that the image cannot reach writes the nearest quality "
                                   "with a warning. Exit status: 0 all written, 1 an error (or any input of a "
                                   "batch failed), 2 bad usage, 130 interrupted.")
    p.add_argument("inputs", nargs="+", metavar="IN", help="image files, directories of images, or - (stdin)")
    _output_options(p, "photo.png -> photo.flic", "named *.flic", ".flic")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--quality", type=float, metavar="Q",
                      help="quality 0-100 as in cwebp -q and avifenc -q: 0 the smallest files, 100 the best "
                           "images (default 50); mapped linearly onto the model's native range")
    rate.add_argument("--native-quality", type=float, metavar="N",
                      help="quality on the model's own scale, a float in [0, K-1] for K trained rate points "
                           "(the bundled default: [0, 4]); what the .flic header and fastlic info show")
    rate.add_argument("--target-bpp", type=float, metavar="BPP",
                      help="search the quality whose file has this many bits per pixel (bisection on real files)")
    rate.add_argument("--target-psnr", type=float, metavar="DB",
                      help="search the quality whose decoded image has this PSNR in dB")
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
                       description="Decompress .flic files: photo.flic -> photo.png beside it, into -o DIR, or "
                                   "-o FILE for one input, whose extension picks the format (.png, .jpg, .webp, "
                                   ".tif, .bmp, .ppm; JPEG and WebP at quality 90); - reads standard input and "
                                   "-o - writes a PNG to standard output. A directory input decodes each .flic "
                                   "file in it, a line per file. Existing files are never replaced without "
                                   "--force. The ICC profile and EXIF stored in the file are written back "
                                   "(--strip drops them). Exit status: 0 all written, 1 an error, 2 bad usage, "
                                   "130 interrupted.")
    p.add_argument("inputs", nargs="+", metavar="IN.flic", help=".flic files, directories of them, or - (stdin)")
    _output_options(p, "photo.flic -> photo.png", "its extension picks the image format", ".png")
    p.add_argument("--max-memory", type=float, default=codec.DEFAULT_DECODE_MEMORY / 2 ** 30,
                   help="refuse files whose tiles need more memory than this, in GiB (default %(default)g)")
    _max_pixels_option(p)
    _common(p, decoding=True)
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("info", help="describe a .flic file",
                       description="Print what a .flic file holds: model and weights, image size, quality, "
                                   "tiles, metadata, and the bytes and bits per pixel of each stream. Reads the "
                                   "header only (no model needed); - reads standard input.")
    p.add_argument("input", metavar="IN.flic")
    _max_pixels_option(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", help="compress and decompress an example image, print size and PSNR",
                       description="Compress an image (default: the example shipped with fastlic) to "
                                   "DIR/demo.flic with the bundled default model, decompress it to DIR/demo.png, "
                                   "and print the file size, bits per pixel, times and PSNR. Existing demo files "
                                   "are not replaced without --force.")
    p.add_argument("image", nargs="?", help="image (default: the example shipped with fastlic)")
    p.add_argument("-o", "--output-dir", default=".", metavar="DIR", help="where to write demo.flic and demo.png "
                                                                          "(an existing directory; default .)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing demo.flic or demo.png")
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


def _plan(args, suffix: str, pick=None, check_name=None):
    """-> (batch, [(input, output), ...]), as cwebp, avifenc and gzip name outputs: beside the inputs with
    ``suffix``, in ``-o DIR`` (an existing directory; ``DIR/`` with a trailing slash must be one), ``-o FILE``
    for a single input (its directory must exist and ``check_name(FILE)`` accept its extension), or ``-``:
    standard input as the one input, standard output as ``-o -`` (and the default output of input ``-``)."""
    if STDIO in args.inputs:
        if len(args.inputs) > 1:
            raise FastlicError(f"{STDIN_NAME}: standard input (-) can only be the one input")
        files, batch = [STDIO], False
    else:
        files = _expand_inputs(args.inputs, pick)
        batch = len(files) > 1 or len(args.inputs) > 1 or Path(args.inputs[0]).is_dir()
    if args.output == STDIO or (args.output is None and files == [STDIO]):
        if batch:
            raise FastlicError(f"{STDOUT_NAME}: -o - writes one file; several inputs need -o DIR")
        return batch, [(files[0], STDIO)]
    if args.output is None:
        return batch, [(f, f.with_name(f.stem + suffix)) for f in files]
    out = Path(args.output)
    if out.is_dir():
        if files == [STDIO]:
            raise FastlicError(f"{out}: standard input has no file name to use in a directory; give -o FILE")
        return batch, [(f, out / (f.stem + suffix)) for f in files]
    if batch or args.output.endswith(("/", os.sep)):
        if out.exists():
            raise FastlicError(f"{args.output}: is not a directory" + (" (several inputs need -o DIR)" if batch
                                                                       else ""))
        raise FastlicError(f"{args.output}: output directory does not exist")
    parent = out.parent
    if not parent.is_dir():
        raise FastlicError(f"{out}: output directory {parent} does not exist")
    if check_name is not None:
        check_name(out)
    return batch, [(files[0], out)]


def _flic_name(out: Path) -> None:
    """A compressed file is named *.flic, so that nothing takes it for the image format it is not."""
    if out.suffix.lower() != ".flic":
        got = f"not {out.suffix!r}" if out.suffix else "no extension"
        raise FastlicError(f"{out}: a compressed file must be named *.flic ({got}); -o - writes to standard output")


def _label(src) -> str:
    return STDIN_NAME if str(src) == STDIO else str(src)


def _check_target(target, force: bool) -> None:
    """Before the work: an existing output needs --force; binary data is not written to a terminal."""
    if str(target) == STDIO:
        refuse_terminal(sys.stdout, force)
    elif not force and os.path.lexists(target):
        raise OutputExistsError(target)


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

    def detail(self, text, err=False):
        if self.verbose:
            self._print(text, err)

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


def _native_quality(args, model, say) -> float | None:
    """The native quality to code with: --native-quality as given, --quality mapped from 0-100
    (:func:`fastlic.codec.native_quality`), or None (the default, the middle)."""
    if getattr(args, "native_quality", None) is not None:
        return args.native_quality
    if args.quality is None:
        return None
    native = codec.native_quality(model, args.quality)
    top = model.num_rates - 1
    if 0 < args.quality <= top:  # most likely a value of the old native scale, which --quality took before
        say.warn(f"--quality {args.quality:g} is on the 0-100 scale (native quality {native:.4g} of [0, {top}]); "
                 f"for the model's own scale use --native-quality {args.quality:g}")
    return native


def _quality_text(model, native: float) -> str:
    if math.isnan(native):
        return ""
    return f"quality {codec.scale_quality(model, native):.4g} (native {native:g})"


def _target(args, model, image, label, kw, say, show):
    """Encode at --target-bpp/--target-psnr; an unreachable target is a warning naming the reachable range,
    and the file is written at the nearest end of the quality range (exit status 0)."""
    metric, goal = ("bpp", args.target_bpp) if args.target_bpp is not None else ("psnr", args.target_psnr)
    unit = "bpp" if metric == "bpp" else "dB"
    probes = progress.bar(desc=f"{label}: searching {goal:g} {unit}", unit="probe") if show else None

    def probed(q, value):
        if probes is not None:
            probes.set_postfix_str(f"quality {codec.scale_quality(model, q):.3g}: {value:.4g} {unit}")
            probes.update(1)

    try:
        res = codec.encode_to_target(model, image, goal, metric, progress=probed, **kw)
    finally:
        if probes is not None:
            probes.close()
    data, q, value = res
    if res.reached:
        say.info(f"{label}: {_quality_text(model, q)} gives {value:.4f} {unit} (target {goal:g}, "
                 f"{res.probes} encodings)", err=True)
    else:
        lo, hi = res.reachable
        say.warn(f"{label}: target {goal:g} {unit} is out of reach: {lo:.4g}-{hi:.4g} {unit} over qualities 0-100 "
                 f"of {model.model_name}; wrote the nearest, {_quality_text(model, q)} at {value:.4f} {unit}")
    return data


def _metadata_options(meta: ImageMetadata) -> dict:
    """The metadata keywords of :func:`fastlic.codec.encode_image` (only those with content)."""
    return {k: v for k, v in (("icc", meta.icc), ("exif", meta.exif)) if v}


def cmd_compress(args) -> int:
    _setup(args)
    say = _Say(args)
    batch, jobs = _plan(args, ".flic", pick=lambda q: q.suffix.lower() != ".flic", check_name=_flic_name)
    if not batch:
        _check_target(jobs[0][1], args.force)  # before loading the model and encoding
    model = codec.load_model(args.model, args.checkpoint, args.device)
    opts = _ordo_options(args, model)
    native = _native_quality(args, model, say)
    say.detail(f"model {model.model_name}, weights {codec.fingerprint(model).hex()[:16]}"
               + (f" ({args.checkpoint})" if args.checkpoint else " (bundled)"))
    say.detail(_mode(args.device, model))
    show = progress.enabled(args.quiet) and not batch  # a batch has its bar per file

    def work(f, target):
        label, to_stdout = _label(f), str(target) == STDIO
        _check_target(target, args.force)
        notes = []
        image, meta = read_image_and_metadata(f, notes)
        for n in notes:
            say.warn(n)
        if args.strip:
            meta = ImageMetadata()
        t0 = time.perf_counter()
        max_memory = int(args.max_memory * 2 ** 30)
        kw = dict(tile=args.tile, overlap=args.tile_overlap, max_memory=max_memory, **opts, **_metadata_options(meta))
        h, w = image.shape[:2]
        if args.target_bpp is not None or args.target_psnr is not None:
            data = _target(args, model, image, label, kw, say, show)
        else:
            grid = codec.plan_tiles(model, h, w, args.tile, args.tile_overlap, max_memory)
            tiles = len(container.tile_grid(h, w, *grid))
            with progress.coding_progress(model, tiles, False, show and not args.ordo, desc=f"encoding {label}"):
                data = codec.encode_image(model, image, quality=native, **kw)
        seconds = time.perf_counter() - t0
        if to_stdout:
            write_stdout(data, args.force)
        else:
            write_bytes(target, data, overwrite=args.force)
        shown = STDOUT_NAME if to_stdout else target
        say.info(f"{label} -> {shown}: {len(data)} bytes, {8 * len(data) / (h * w):.4f} bpp, {seconds:.2f} s",
                 err=to_stdout)
        header = codec.read_header(data, str(shown))
        quality = _quality_text(model, header.quality)
        size = "" if str(f) == STDIO else f", input {Path(f).stat().st_size} bytes"
        kept = meta.describe()
        say.detail(f"  {w}x{h}" + (f", {quality}" if quality else "") + f", {len(header.tiles)} tile(s){size}"
                   + (f", {kept} kept" if kept else ""), err=to_stdout)

    return _run_batch(jobs, batch, say, work, "compressed")


def _flic_bytes(path) -> bytes:
    """The bytes of a .flic file, or of standard input for ``-``."""
    if str(path) == STDIO:
        if sys.stdin is None or sys.stdin.isatty():
            raise FastlicError(f"{STDIN_NAME}: standard input is a terminal; pipe a .flic file into it")
        return sys.stdin.buffer.read()
    path = Path(path)
    if not path.is_file():
        raise FastlicError(f"{path}: no such file")
    return path.read_bytes()


def _max_pixels_option(p):
    def count(text):
        n = int(text)
        if n < 0:
            raise ValueError(text)
        return n or None  # 0: no limit but the format's

    p.add_argument("--max-pixels", type=count, default=codec.MAX_DECODE_PIXELS, metavar="N",
                   help="refuse files whose image has more pixels than this, before decoding (default "
                        "%(default)d, Pillow's limit; 0: no limit)")


def _read_flic(path):
    return container.unpack(_flic_bytes(path), _label(path))


def _file_metadata(f) -> ImageMetadata:
    """The ICC profile and EXIF a .flic file carries, EXIF without the JPEG ``Exif\\0\\0`` prefix (the container
    takes it with or without)."""
    exif = bytes(f.exif)
    return ImageMetadata(icc=bytes(f.icc), exif=exif[len(EXIF_PREFIX):] if exif.startswith(EXIF_PREFIX) else exif)


def cmd_decompress(args) -> int:
    _setup(args)
    say = _Say(args)
    batch, jobs = _plan(args, ".png", pick=lambda q: q.suffix.lower() == ".flic", check_name=image_format)
    if not batch:
        _check_target(jobs[0][1], args.force)
    models = {}
    show = progress.enabled(args.quiet) and not batch

    def work(src, target):
        label, to_stdout = _label(src), str(target) == STDIO
        _check_target(target, args.force)
        data = _flic_bytes(src)
        f = codec.read_header(data, label, max_pixels=args.max_pixels)
        if f.model not in models:  # loaded once per model name of a batch
            models[f.model] = codec.load_model(f.model, args.checkpoint, args.device)
            say.detail(f"model {f.model}, weights {codec.fingerprint(models[f.model]).hex()[:16]}")
            say.detail(_mode(args.device, models[f.model]))
        model = models[f.model]
        t0 = time.perf_counter()
        with progress.coding_progress(model, len(f.tiles), True, show, desc=f"decoding {label}"):
            image = codec.decode_image(f, model, label, max_memory=int(args.max_memory * 2 ** 30),
                                       max_pixels=args.max_pixels)
        meta = ImageMetadata() if args.strip else _file_metadata(f)
        notes = []
        if to_stdout:
            write_stdout(encode_image_file(image, "PNG", meta, notes, STDOUT_NAME), args.force)
        else:
            write_image(target, image, overwrite=args.force, metadata=meta, warnings=notes)
        for n in notes:
            say.warn(n)
        shown = STDOUT_NAME if to_stdout else target
        say.info(f"{label} -> {shown}: {f.width}x{f.height}, {time.perf_counter() - t0:.2f} s", err=to_stdout)
        quality = "" if math.isnan(f.quality) else f"{_quality_text(model, f.quality)}, "
        size = len(data)
        kept = meta.describe()
        say.detail(f"  {quality}{len(f.tiles)} tile(s), {size} bytes, {8 * size / f.num_pixels:.4f} bpp"
                   + (f", {kept} written" if kept else ""), err=to_stdout)

    return _run_batch(jobs, batch, say, work, "decompressed")


def _mode(device, model=None, mode=None) -> str:
    # the model's preferred precision decides `auto` (official MLIC++: fp32); its numeric mode (or a file's
    # ``mode``) names the entropy-parameter path
    d = numerics.describe(device, model, mode)
    return (f"{d['transforms']}; entropy parameters {d['parameter_path']}; {d['threads']} threads, "
            f"SIMD {d['cpu_capability']}, oneDNN {'on' if d['mkldnn'] else 'off'}")


def cmd_info(args) -> int:
    data = _flic_bytes(args.input)
    f = codec.read_header(data, _label(args.input), max_pixels=args.max_pixels)
    total = len(data)
    px = f.num_pixels
    print(f"file:        {_label(args.input)}")
    print(f"model:       {f.model} (weights {f.fingerprint.hex()[:16]})")
    print(f"image:       {f.width}x{f.height}, {f.channels} channels, {f.bit_depth} bit "
          f"(padded to multiples of {f.pad_multiple})")
    if not math.isnan(f.quality):
        span = codec.bundled_weights().get(f.model, {}).get("quality_range")  # K is known without loading
        if span and span[1] > 0:
            print(f"quality:     {f.quality * codec.QUALITY_SCALE / span[1]:.4g} of 0-{codec.QUALITY_SCALE} "
                  f"(native {f.quality:g} of [0, {span[1]:g}])")
        else:
            print(f"quality:     native {f.quality:g}")
    meta = _file_metadata(f)
    if meta:
        sizes = ", ".join(f"{n} {len(v)} bytes" for n, v in (("ICC profile", meta.icc), ("EXIF", meta.exif)) if v)
        print(f"metadata:    {sizes}")
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
    print(f"this machine: {_mode('cpu', mode=f.numeric_mode)}")
    return 0


def cmd_demo(args) -> int:
    """The README's main job: compress an example image to a file, decompress it, print size and PSNR."""
    _setup(args)
    from .. import create_model

    image_path = Path(args.image) if args.image else Path(__file__).resolve().parents[1] / "data" / "kodim23.png"
    outdir = Path(args.output_dir)
    if not outdir.is_dir():
        raise FastlicError(f"{outdir}: output directory does not exist")
    flic, png = outdir / "demo.flic", outdir / "demo.png"
    for target in (flic, png):
        _check_target(target, args.force)  # before any work
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
    except FastlicError as exc:
        if args.checkpoint or isinstance(exc, codec.UnknownModelError):
            raise
        name = args.model or "mlicpp-tiny"
        print(f"NOTE: no trained weights are bundled for {name!r}; this demo uses an UNTRAINED, randomly "
              f"initialized {name!r} model: the numbers below show the pipeline works, not what fastlic can do.", file=sys.stderr)
        torch.manual_seed(0)
        model = create_model(name).eval()
        model.update()
        trained = "UNTRAINED"
    t0 = time.perf_counter()
    data = codec.encode_image(model, image)
    t1 = time.perf_counter()
    write_bytes(flic, data, overwrite=args.force)
    decoded = codec.decode_image(flic.read_bytes(), model, str(flic))
    t2 = time.perf_counter()
    write_image(png, decoded, overwrite=args.force)
    h, w = image.shape[:2]
    print(f"model {model.model_name} ({trained}), image {image_path.name} {w}x{h}")
    print(f"{flic}: {len(data)} bytes = {8 * len(data) / (h * w):.4f} bpp (PNG input: "
          f"{image_path.stat().st_size} bytes); encode {t1 - t0:.2f} s, decode {t2 - t1:.2f} s")
    print(f"{png}: PSNR {codec.psnr(image, decoded):.2f} dB")
    return 0


__all__ = ["register", "FormatError"]
