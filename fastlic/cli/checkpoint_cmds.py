"""``fastlic convert-checkpoint`` and ``fastlic models``."""

from __future__ import annotations

import os
from pathlib import Path

from ..checkpoint import convert_reference_checkpoint
from ..errors import FastlicError
from ..io import OutputExistsError
from ..registry import describe_model, list_models


def register(sub):
    p = sub.add_parser("convert-checkpoint", help="convert an official MLIC++ checkpoint to fastlic's format "
                                                  "(--integer: into the integer numeric mode)",
                       description="Convert an official MLIC++ checkpoint (.pth.tar of the reference code) into a "
                                   "fastlic checkpoint that --checkpoint loads without conversion. An existing "
                                   "output is not replaced without --force.")
    p.add_argument("input", metavar="REF.pth.tar")
    p.add_argument("-o", "--output", required=True, metavar="model.pt", help="the fastlic checkpoint to write")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--variant", choices=["current", "2023"], default="current",
                   help="'current' (2024 release) or '2023' (the 2023-09 checkpoints)")
    p.add_argument("--integer", action="store_true",
                   help="convert into the integer numeric mode (exact on every machine) by post-training "
                        "quantization calibrated on the package's photo; the input may also be a float MLIC++ "
                        "checkpoint of fastlic; prints the rate and PSNR cost measured on held-out crops")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("models", help="list the registered models",
                       description="List every registered model with its size and kind, marking those with "
                                   "trained weights bundled (and the default of fastlic compress).")
    p.set_defaults(func=cmd_models)


def cmd_convert(args) -> int:
    out = Path(args.output)
    if not out.parent.is_dir():
        raise FastlicError(f"{out}: output directory {out.parent} does not exist")
    if not args.force and os.path.lexists(out):
        raise OutputExistsError(out)
    if args.integer:
        return _convert_integer(args.input, out)
    convert_reference_checkpoint(args.input, out, args.variant)
    print(f"{args.input} -> {out} (MLIC++ {args.variant})")
    return 0


def _convert_integer(src, out: Path) -> int:
    from ..integer.convert import convert_to_integer  # noqa: PLC0415  (only this sub-command needs it)

    rows = convert_to_integer(src, out)
    print(f"{src} -> {out} (integer numeric mode, post-training quantization on fastlic/data/kodim23.png)")
    print("RD cost on held-out crops (kodim23 right half, 2 x 256x384, real files), integer vs float mode:")
    for r in rows:
        q = "" if r["quality"] is None else f"quality {r['quality']:g}: "
        print(f"  {q}rate {r['rate_pct']:+.3f} % ({r['float_bytes']} -> {r['integer_bytes']} bytes), "
              f"PSNR {r['psnr_delta_db']:+.4f} dB ({r['float_psnr']:.3f} -> {r['integer_psnr']:.3f})")
    return 0


def cmd_models(args) -> int:
    from ..codec import DEFAULT_MODEL, bundled_weights  # noqa: PLC0415

    bundled = bundled_weights()
    for name in list_models():
        mark = "default, trained weights bundled" if name == DEFAULT_MODEL and name in bundled else \
            "trained weights bundled" if name in bundled else ""
        print(f"{name:24s} {describe_model(name)}" + (f"  [{mark}]" if mark else ""))
    return 0
