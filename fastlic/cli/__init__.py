"""The ``fastlic`` command line. Each sub-command lives in its own module with a ``register(subparsers)``
function; user mistakes (:class:`fastlic.errors.FastlicError`) print one line and exit with status 1."""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import FastlicError

#: modules that define sub-commands, in help order
COMMAND_MODULES = ["codec_cmds", "checkpoint_cmds", "train_cmd", "eval_cmds", "complexity_cmd"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastlic", description="Learned image compression (MLIC++, eContextformer).")
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"fastlic {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except FastlicError as exc:
        print(f"fastlic: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fastlic: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
