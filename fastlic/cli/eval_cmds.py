"""``fastlic eval``, ``fastlic bdrate``, ``fastlic plot`` and ``fastlic report``: the evaluation commands.

Each command imports only what it needs, when it runs: ``bdrate`` needs numpy alone (a runtime dependency),
``plot`` needs matplotlib, ``eval`` and ``report`` need the ``eval`` extra. A missing library is a one-line
error naming it."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from .. import numerics
from ..errors import FastlicError


def _number(text: str):
    """A quality value: an int when it is written as one, else a float."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise __import__("argparse").ArgumentTypeError(f"not a number: {text!r}") from None


def register(sub):
    p = sub.add_parser("eval", help="evaluate a learned or classic codec on a folder of images",
                       description="Code every image of --data at every quality point into a real file, decode it, "
                                   "and write bpp, PSNR, MS-SSIM, times and peak memory (CompressAI JSON shape).")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="registry name of a learned model (see `fastlic models`)")
    what.add_argument("--codec", help="classic codec: jpeg, webp, avif, jxl, jpeg2000, vtm, bpg")
    p.add_argument("--checkpoint", action="append", metavar="P",
                   help="weights of --model; repeat for several rate points")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--quality", "--qualities", dest="qualities", nargs="+", type=_number, metavar="Q",
                       help="quality points: a classic codec's own parameter (0-100 for JPEG, WebP, AVIF, JPEG XL), "
                            "or for a variable-rate --model 0-100 as in fastlic compress (mapped onto its range)")
    scale.add_argument("--native-quality", "--native-qualities", dest="native_qualities", nargs="+", type=_number,
                       metavar="N", help="quality points of a variable-rate --model on its own scale [0, K-1] "
                                     "(the bundled default: 0 1 2 3 4)")
    p.add_argument("--random-init", action="store_true",
                   help="evaluate --model with untrained random weights (timing/pipeline check only)")
    p.add_argument("--ordo", action="store_true",
                   help="encode a --model with online RDO of its latents (slower encoding, same decoder)")
    p.add_argument("--lmbda", type=float, help="the lambda of --ordo (default: from the checkpoint's metadata)")
    p.add_argument("--data", required=True, metavar="DIR", help="folder of images")
    p.add_argument("-o", "--output", required=True, metavar="JSON",
                   help="results file to write (*.json; its directory must exist)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing results file")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1; use 1 for timings)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per process (learned models)")
    p.add_argument("--device", default="cpu", help="torch device of a learned model (cpu, cuda)")
    p.add_argument("--precision", choices=numerics.PRECISIONS, default=None,
                   help="transforms of a learned model: auto (default), bf16, or fp32 (exact mode)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N images (by name)")
    p.add_argument("--keep-files", metavar="DIR", help="keep the coded files in DIR")
    p.add_argument("--name", help="curve name in the results file (default: the codec's)")
    p.add_argument("--no-progress", "-q", "--quiet", dest="no_progress", action="store_true",
                   help="no progress bar (there is one on standard error when it is a terminal)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bdrate", help="Bjøntegaard delta rate of results files against an anchor",
                       description="BD-rate (pchip, overlapping quality range) of each TEST against ANCHOR; "
                                   "negative = fewer bits than the anchor at equal quality.")
    p.add_argument("anchor", metavar="ANCHOR.json")
    p.add_argument("tests", nargs="+", metavar="TEST.json")
    p.add_argument("--metric", choices=("psnr-rgb", "ms-ssim-rgb"), default="psnr-rgb")
    p.add_argument("--per-point", action="store_true",
                   help="also print, for every point of each TEST, the anchor's rate at the same quality")
    p.set_defaults(func=cmd_bdrate)

    p = sub.add_parser("plot", help="rate-distortion curves (PSNR and MS-SSIM vs bpp) of results files",
                       description="Draw PSNR-RGB and MS-SSIM-RGB against bits per pixel, one curve per results "
                                   "file of fastlic eval (solid) and per --anchor (dashed), into a PNG, PDF or "
                                   "SVG file. An existing file is not replaced without --force.")
    p.add_argument("results", nargs="*", metavar="RESULTS.json")
    p.add_argument("--anchor", action="append", default=[], metavar="JSON",
                   help="published curve drawn dashed (repeatable; a folder adds every *.json in it)")
    p.add_argument("-o", "--output", required=True, metavar="PNG",
                   help="the plot: .png, .pdf or .svg (its directory must exist)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--title", default="Rate-distortion")
    p.add_argument("--max-bpp", type=float, help="draw points up to this rate only")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("report", help="one self-contained HTML page: RD curves, BD-rates, crops at equal size",
                       description="Write one HTML page (images embedded, no network) with the RD curves of the "
                                   "results files, their BD-rates against --anchor, and, with --images, the same "
                                   "crop of a few images from the original and from each codec at the file size "
                                   "closest to fastlic's (needs the 'eval' extra for the crops).")
    p.add_argument("results", nargs="+", metavar="RESULTS.json")
    p.add_argument("-o", "--output", required=True, metavar="HTML", help="the page, *.html (its directory must exist)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--anchor", metavar="NAME", help="curve the BD-rates are taken against: its name or file stem "
                                                    "(default: the first file)")
    p.add_argument("--images", metavar="DIR", help="folder of the images to show crops of (e.g. the dataset)")
    p.add_argument("--image", action="append", default=[], metavar="NAME",
                   help="an image of --images to show (repeatable; default: the first --num-images by name)")
    p.add_argument("--num-images", type=int, default=2, metavar="N", help="how many images (default 2)")
    p.add_argument("--crop", type=int, default=192, metavar="PX", help="side of the crops (default 192)")
    p.add_argument("--zoom", type=int, default=2, help="crops are shown this many times larger (default 2)")
    p.add_argument("--model", help="fastlic model whose file size the crops match (default: the bundled default)")
    p.add_argument("--checkpoint", help="weights of that model")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--quality", type=float, help="its quality, 0-100 as in fastlic compress (default 50)")
    rate.add_argument("--native-quality", type=float, help="its quality on the model's own scale [0, K-1]")
    p.add_argument("--title", default="fastlic report")
    p.set_defaults(func=cmd_report)


#: what each command imports beyond the runtime dependencies
EVAL_MODULES = ("imagecodecs", "matplotlib", "pytorch_msssim", "tqdm")
PLOT_MODULES = ("matplotlib",)


def require(command: str, modules=EVAL_MODULES):
    """Import ``modules`` or fail with one line naming the first one missing and the extra that has it."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise FastlicError(f"{command} needs the '{name}' package, which is missing: "
                               f"pip install 'fastlic[eval]'") from None


def _eval_imports():
    require("fastlic eval")


def check_output(path, suffixes: tuple, force: bool, what: str) -> Path:
    """Refuse, before the (possibly hours of) work, an output that cannot be written: an extension not in
    ``suffixes``, a missing directory, a directory, an existing file without --force."""
    from ..io import OutputExistsError

    out = Path(path)
    if out.is_dir():
        raise FastlicError(f"{out}: is a directory; give a {suffixes[0]} file name")
    if out.suffix.lower() not in suffixes:
        raise FastlicError(f"{out}: {what} must be named *{suffixes[0]}")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise FastlicError(f"{out}: output directory {parent} does not exist")
    if not force and os.path.lexists(out):
        raise OutputExistsError(out)
    return out


def _learned_qualities(codec, args) -> list | None:
    """Native qualities of --model: --native-quality as given, --quality mapped from 0-100 on the loaded model
    (:func:`fastlic.codec.native_quality`), or None."""
    if args.qualities is None:
        return args.native_qualities
    from .. import codec as flic

    codec.prepare()  # loads the weights once, here, to learn the model's range
    model = codec._model(codec.qualities[0])
    native = [flic.native_quality(model, q) for q in args.qualities]
    top = model.num_rates - 1
    odd = [q for q in args.qualities if 0 < q <= top]
    if odd and len(odd) == len([q for q in args.qualities if q]):  # looks like the native scale of old
        print(f"fastlic: warning: --quality {' '.join(map(str, args.qualities))} is on the 0-100 scale (native "
              f"{' '.join(f'{n:g}' for n in native)} of [0, {top}]); for the model's own scale use --native-quality",
              file=sys.stderr)
    return [int(n) if float(n).is_integer() else n for n in native]


def cmd_eval(args):
    _eval_imports()
    from ..evaluation import get_codec
    from ..evaluation.base import EvaluationError
    from ..evaluation.learned import LearnedCodec
    from ..evaluation.runner import evaluate, find_images
    from ..io import write_bytes

    out = check_output(args.output, (".json",), args.force, "a results file")
    images = find_images(args.data, args.limit)
    if args.precision is not None:
        numerics.set_precision(args.precision)
        os.environ["FASTLIC_PRECISION"] = args.precision  # for worker processes
    if args.model:
        codec = LearnedCodec(args.model, args.checkpoint, args.native_qualities or args.qualities,
                             device=args.device, random_init=args.random_init, ordo=args.ordo, lmbda=args.lmbda)
        native = _learned_qualities(codec, args)
        if native is not None:
            codec.qualities = native
    else:
        if args.checkpoint or args.random_init or args.ordo or args.lmbda is not None or args.native_qualities:
            raise EvaluationError("--checkpoint, --random-init, --ordo, --lmbda and --native-quality apply to "
                                  "--model, not --codec")
        codec = get_codec(args.codec, args.qualities)
    if args.name:
        codec.name = args.name
    result = evaluate(codec, images, workers=args.workers, threads=args.threads,
                      progress=not args.no_progress and sys.stderr.isatty(), keep_files=args.keep_files)
    result["name"] = args.name or result["name"]
    result["meta"]["dataset"] = str(Path(args.data))
    result["meta"]["command"] = "fastlic " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if args.model:
        result["meta"]["numerics"] = numerics.describe(args.device)
        if args.qualities is not None:
            result["meta"]["quality_scale"] = {"native": codec.qualities, "from 0-100": args.qualities}
    import json

    write_bytes(out, (json.dumps(result, indent=2) + "\n").encode(), overwrite=args.force)
    r = result["results"]
    print(f"{result['name']}: {len(images)} images x {len(r['bpp'])} points -> {out}")
    given = args.qualities if args.model and args.qualities is not None else [None] * len(r["quality"])
    for q, g, b, p_, m in zip(r["quality"], given, r["bpp"], r["psnr-rgb"], r["ms-ssim-rgb"]):
        ms = f"{m:.4f}" if m is not None else "-"
        ps = f"{p_:.2f}" if p_ is not None else "inf"
        shown = f"q={q}" if g is None else f"q={g} (native {q:g})"
        print(f"  {shown}: {b:.4f} bpp  {ps} dB  MS-SSIM {ms}")
    return 0


def cmd_bdrate(args):
    from ..evaluation.bdrate import bd_psnr_results, bd_rate_results, rate_gaps
    from ..evaluation.results import load_results

    anchor = load_results(args.anchor)
    unit = "dB" if args.metric == "psnr-rgb" else "dB (MS-SSIM)"
    print(f"BD-rate against {anchor['name']} ({args.anchor}), {args.metric}, pchip:")
    for path in args.tests:
        test = load_results(path)
        rate = bd_rate_results(anchor, test, args.metric)
        gain = bd_psnr_results(anchor, test, args.metric)
        print(f"  {test['name']}: BD-rate {rate:+.2f} %  BD-quality {gain:+.3f} {unit}  ({path})")
        if args.per_point:
            for g in rate_gaps(anchor, test, args.metric):
                where = (f"anchor {g['anchor_bpp']:.4f} bpp, rate {g['rate_pct']:+.1f} %" if g["rate_pct"] is not None
                         else "outside the anchor's range")
                print(f"    {g['bpp']:.4f} bpp at {g['quality']:.3f} {unit}: {where}")
    return 0


def cmd_plot(args):
    require("fastlic plot", PLOT_MODULES)
    from ..evaluation.base import EvaluationError
    from ..evaluation.plot import check_plot_output, plot_rd
    from ..evaluation.results import load_results

    check_plot_output(args.output, args.force)  # before reading and drawing anything

    anchor_files = []
    for a in args.anchor:
        p = Path(a)
        if p.is_dir():
            found = sorted(p.glob("*.json"))
            if not found:
                raise EvaluationError(f"no *.json results files in {p}")
            anchor_files += found
        else:
            anchor_files.append(p)
    out = plot_rd([load_results(f) for f in args.results], args.output,
                  anchors=[load_results(f) for f in anchor_files], title=args.title,
                  max_bpp=args.max_bpp, overwrite=args.force)
    print(f"wrote {out}")
    return 0


def cmd_report(args):
    require("fastlic report", PLOT_MODULES if args.images is None else EVAL_MODULES)
    from ..evaluation.report import build_report

    check_output(args.output, (".html", ".htm"), args.force, "a report")

    out = build_report(args.results, args.output, anchor=args.anchor, images_dir=args.images,
                       image_names=args.image, num_images=args.num_images, crop=args.crop, zoom=args.zoom,
                       model=args.model, checkpoint=args.checkpoint, quality=args.quality,
                       native_quality=args.native_quality, title=args.title, overwrite=args.force)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0
