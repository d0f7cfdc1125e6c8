"""Encode/decode time of two checkouts of fastlic on the same models, images and threads, alternating.

    python benchmarks/speed_before_after.py --before /tmp/old --threads 2 [--repeat 3] \
        [-o results/portability/speed_before_after.json]

``--before`` is a checkout of an earlier commit (``git worktree add /tmp/old <commit>``); the current checkout is
"after". Each (checkout, model) runs in a fresh process with that checkout first on ``PYTHONPATH``: the first
encode and decode of the process (a ``fastlic`` command's cost, warm-up included) and the best of ``--repeat``
further calls (a library user's). Runs alternate between the checkouts so that a change of machine load hits
both. Models: the bundled default, the eContextformer-small snapshot (tests/data), and the full MLIC++ with the
fixture weights (a converted checkpoint made once, which both checkouts load). Image: kodim23 (768 x 512).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ECF_SNAPSHOT, REPO, machine  # noqa: E402

MODELS = {"bundled-default": ("mlicpp-mini-vr", 2.0), "econtextformer-snapshot": (str(ECF_SNAPSHOT), 2.0),
          "mlicpp-fixture": ("fixture", None)}


def child(args):
    import torch

    torch.set_num_threads(args.threads)
    from fastlic import codec
    from fastlic.io import read_image

    spec, quality = MODELS[args.model]
    path = args.checkpoint if spec == "fixture" else spec if spec.endswith(".pt") else None
    m = codec.load_model(spec if path is None else None, checkpoint=path)
    img = read_image(args.image)
    kw = {} if quality is None else {"quality": quality}
    out = {}
    for phase in ("first", *("again",) * args.repeat):
        t0 = time.perf_counter()
        data = codec.encode_image(m, img, **kw)
        t1 = time.perf_counter()
        codec.decode_image(data, m)
        t2 = time.perf_counter()
        if phase == "first":
            out.update(first_encode_s=t1 - t0, first_decode_s=t2 - t1, bytes=len(data))
        else:
            out["best_encode_s"] = min(out.get("best_encode_s", 1e9), t1 - t0)
            out["best_decode_s"] = min(out.get("best_decode_s", 1e9), t2 - t1)
    import fastlic

    out["fastlic"] = str(Path(fastlic.__file__).resolve().parents[1])  # the checkout that really ran
    from fastlic import numerics

    if hasattr(numerics, "describe"):
        out["mode"] = numerics.describe()
    print(json.dumps(out))


def fixture_checkpoint(path: Path) -> Path:
    if not path.exists():
        from fastlic import checkpoint
        from fastlic.models.mlicpp import MLICPlusPlus
        from fastlic.testing import reference_weights

        m = MLICPlusPlus.from_reference_state_dict(reference_weights("official_keys_new.tsv", 0))
        m.model_name = "mlicpp"
        checkpoint.save_checkpoint(path, m)
    return path


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", help="checkout of the earlier commit")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--models", nargs="*", default=list(MODELS))
    p.add_argument("--image", default=str(REPO.parent / "shared" / "data" / "kodak" / "kodim23.png"))
    p.add_argument("--checkpoint", default=str(Path(tempfile.gettempdir()) / "fastlic-fixture-mlicpp.pt"))
    p.add_argument("-o", "--output", default=str(REPO / "results" / "portability" / "speed_before_after.json"))
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    if "mlicpp-fixture" in args.models:
        fixture_checkpoint(Path(args.checkpoint))
    trees = {"after": REPO}
    if args.before:
        trees = {"before": Path(args.before).resolve(), **trees}
    rows = []
    for model in args.models:
        for label, tree in trees.items():
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",)}
            env["PYTHONPATH"] = str(tree) + os.pathsep + env.get("PYTHONPATH", "")
            env["FASTLIC_BENCH_TREE"] = str(tree)  # benchmarks/_common.py would otherwise put this checkout first
            cmd = [sys.executable, __file__, "--child", "--model", model, "--threads", str(args.threads),
                   "--repeat", str(args.repeat), "--image", args.image, "--checkpoint", args.checkpoint]
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(tree))
            if r.returncode:
                raise SystemExit(f"{label} {model} failed:\n{r.stderr[-3000:]}")
            row = {"model": model, "checkout": label, **json.loads(r.stdout.strip().splitlines()[-1])}
            if Path(row["fastlic"]).resolve() != tree.resolve():
                raise SystemExit(f"{label}: the child imported fastlic from {row['fastlic']}, not {tree}")
            rows.append(row)
            print(json.dumps(row), flush=True)
    report = {"command": "python benchmarks/speed_before_after.py " + " ".join(sys.argv[1:]),
              "machine": machine(threads=args.threads), "image": args.image, "rows": rows}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
