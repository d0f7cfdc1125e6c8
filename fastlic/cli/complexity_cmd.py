"""``fastlic complexity``: parameters and kMAC/px per component of a registered model
(:mod:`fastlic.complexity`)."""

from __future__ import annotations

import json
import re

from ..errors import FastlicError


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)[xX](\d+)", text.strip())
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise FastlicError(f"--size must look like HxW (e.g. 512x768), not {text!r}")
    return int(m.group(1)), int(m.group(2))


def _option(text: str):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise FastlicError(f"--set needs KEY=VALUE, not {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def run(args) -> int:
    import torch

    from ..complexity import format_report, measure
    from ..registry import create_model
    h, w = _size(args.size)
    config = dict(_option(o) for o in args.set)
    torch.manual_seed(0)
    try:
        model = create_model(args.model, **config)
    except KeyError as exc:
        raise FastlicError(str(exc.args[0])) from None
    except TypeError as exc:
        raise FastlicError(f"bad --set option for {args.model}: {exc}") from None
    model.eval()
    model.update()
    report = measure(model, h, w)
    report["config_overrides"] = config
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("complexity", help="parameters and kMAC/px per component of a model",
                              description="Count parameters and multiply-accumulates per pixel of every component "
                                          "(g_a, h_a, h_s, context model, entropy parameters, g_s) for encoding "
                                          "and decoding one random image with random weights.")
    p.add_argument("--model", required=True, help="registered model name (the list: fastlic models)")
    p.add_argument("--size", default="256x256", help="image size HxW (default 256x256)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model constructor override, JSON value (e.g. --set cache=false)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)
