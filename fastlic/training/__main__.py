"""``python -m fastlic.training [train options]``: the ``fastlic train`` command without the rest of the CLI,
convenient under ``torchrun`` (``torchrun --nproc_per_node 2 -m fastlic.training --model ...``)."""

import argparse
import sys

from ..cli import train_cmd
from ..errors import FastlicError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastlic.training")
    sub = parser.add_subparsers(dest="command")
    train_cmd.register(sub)
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except FastlicError as exc:
        print(f"fastlic: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
