"""``fastlic train``: train any registered model from a folder of images (one CPU, one GPU, or torchrun).

    fastlic train --model mlicpp-mini-vr --data DIR --val DIR --config configs/mlicpp_cpu.toml --out RUNDIR
    fastlic train --out RUNDIR --resume                 # continue a run (its saved configuration is reused)
    torchrun --nproc_per_node 4 -m fastlic.cli train --config configs/mlicpp_paper.toml --data DIR ...
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import FastlicError


class TrainingError(FastlicError):
    """Bad training options or data."""


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model on a folder of images",
                              description="Train a fastlic model on folders of images, on one CPU, one GPU or "
                                          "torchrun across GPUs, with exact resume (see docs/training.md). A run "
                                          "directory that holds a run is never reused without --resume. Progress: "
                                          "one status line on standard error (redrawn on a terminal), --quiet "
                                          "for none.")
    p.add_argument("--model", help="registered model name (the list: fastlic models)")
    p.add_argument("--data", nargs="+", metavar="DIR",
                   help="folder(s) of training images (searched recursively) or glob patterns ('wiki/0[0-3]?.png')")
    p.add_argument("--data-weights", type=int, nargs="+", metavar="K",
                   help="times each --data source's images appear per epoch (default 1 each)")
    p.add_argument("--val", nargs="+", metavar="DIR", help="folder(s) or glob patterns of held-out validation images")
    p.add_argument("--lambda", dest="lmbda", type=float, nargs="+", metavar="L",
                   help="rate-distortion trade-off; several values train a variable-rate model")
    p.add_argument("--metric", choices=["mse", "ms-ssim"])
    p.add_argument("--config", help="recipe file (.toml or .json), e.g. configs/mlicpp_cpu.toml")
    p.add_argument("--out", help="run directory (checkpoints, logs); default runs/train")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its state.pt")
    p.add_argument("--steps", type=int, help="total number of optimizer steps")
    p.add_argument("--batch-size", type=int, help="global batch size (split across torchrun processes)")
    p.add_argument("--crop", type=int, help="crop size (replaces the recipe's crop schedule)")
    p.add_argument("--lr", type=float, help="learning rate of the network")
    p.add_argument("--workers", type=int, help="data loader worker processes")
    p.add_argument("--val-interval", type=int, help="steps between validations")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, help="torch intra-op threads per process")
    p.add_argument("--amp", choices=["auto", "off", "bf16", "fp16"],
                   help="autocast precision of the transforms and context models (entropy models stay float32); "
                        "auto: bf16 on CUDA and on CPUs with native bf16 (AMX, AVX512-BF16), else float32")
    p.add_argument("--compile", choices=["on", "off"],
                   help="torch.compile the training forward (default off: on a 2-core CPU it was 1.00-1.08x per step "
                        "after a first step of up to 95 s; unmeasured on GPUs)")
    p.add_argument("--seed", type=int)
    p.add_argument("--init", metavar="CKPT", help="start from the weights of a fastlic checkpoint or of another run's state.pt (fresh optimizers)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def _options(args) -> dict:
    opts = {k: getattr(args, k) for k in ("model", "data", "data_weights", "val", "lmbda", "metric", "out", "steps",
                                          "batch_size",
                                          "crop", "lr", "workers", "val_interval", "device", "threads", "seed", "init",
                                          "amp", "compile")}
    return {k: v for k, v in opts.items() if v is not None}


def run(args) -> int:
    from ..training.config import make_config  # noqa: PLC0415  (keep 'fastlic --help' fast)
    from ..training.state import RunLocked  # noqa: PLC0415
    from ..training.trainer import Trainer  # noqa: PLC0415

    opts = _options(args)
    base = None
    if args.resume:
        saved = Path(opts.get("out", "runs/train")) / "config.json"
        if not saved.is_file():
            raise TrainingError(f"--resume: no run to resume in {saved.parent} (config.json missing)")
        base = json.loads(saved.read_text())
    try:
        cfg = make_config(args.config, base=base, **opts)
    except (OSError, ValueError) as exc:
        raise TrainingError(str(exc)) from None
    for key, what in (("model", "--model"), ("data", "--data")):
        if not getattr(cfg, key):
            raise TrainingError(f"{what} is required (or a --config that sets it)")
    from ..training.data import list_images  # noqa: PLC0415

    for source in [*cfg.data, *cfg.val]:
        try:
            list_images(source)
        except FileNotFoundError as exc:
            raise TrainingError(str(exc)) from None
    try:
        list_images(cfg.data, cfg.data_weights)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    if not args.resume and (Path(cfg.out) / "state.pt").exists():
        raise TrainingError(f"{cfg.out} already holds a run; pass --resume to continue it or choose another --out")
    try:
        trainer = Trainer(cfg, resume=args.resume, quiet=args.quiet)
    except (KeyError, ValueError, RunLocked) as exc:
        raise TrainingError(str(exc).strip("'\"")) from None
    if trainer.info.is_main and not args.quiet:
        print(f"training {cfg.model} on {trainer.device}: {trainer.precision}")
    try:
        result = trainer.fit()
    finally:
        trainer.close()
    if trainer.info.is_main and not args.quiet:
        print(f"trained to step {result['step']} ({trainer.precision}); run directory {cfg.out}")
    return 0
