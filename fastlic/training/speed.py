"""Seconds per training step of a model (forward, backward, both optimizer steps) on random data.

    python -m fastlic.training.speed --model mlicpp-mini-vr --batch-size 8 --crop 128 --steps 4 --threads 1

Prints one JSON line: the median of the timed steps (the first step is a warm-up and not counted; with
``--compile on`` it is the compilation), the first step's time and the loss of every step (the data and the
training noise are seeded, so two runs that differ only in precision or compilation see the same samples).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import torch

from .config import make_config
from .trainer import Trainer


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastlic.training.speed")
    p.add_argument("--model", default="mlicpp-mini-vr")
    p.add_argument("--model-config", type=json.loads, default={},
                   help='JSON keyword overrides for the model, e.g. \'{"transform_channels": 96}\'')
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--lambdas", type=int, default=5, help="rate points of a variable-rate model")
    p.add_argument("--amp", default="off", choices=["auto", "off", "bf16", "fp16"], help="autocast precision")
    p.add_argument("--channels-last", default="off", choices=["auto", "on", "off"])
    p.add_argument("--compile", default="off", choices=["on", "off"], help="torch.compile the training forward")
    p.add_argument("--out", default="/tmp/fastlic-speed")
    args = p.parse_args(argv)
    lmbda = [0.0035 * 2 ** i for i in range(args.lambdas)] if args.model.endswith("-vr") else [0.013]
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as data:
        cfg = make_config(model=args.model, model_config=args.model_config, data=[data], out=args.out, lmbda=lmbda,
                          batch_size=args.batch_size, crop=args.crop, threads=args.threads, device=args.device,
                          tensorboard=False, amp=args.amp, channels_last=args.channels_last, compile=args.compile)
        trainer = Trainer(cfg, quiet=True)
        times, losses = [], []
        for _ in range(args.steps + 1):
            x = torch.rand(args.batch_size, 3, args.crop, args.crop)
            rates = torch.randint(len(lmbda), (args.batch_size,))
            t = time.perf_counter()
            losses.append(trainer.train_step(x, rates)["loss"])
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        trainer.close()
    print(json.dumps({"model": args.model, **({"model_config": args.model_config} if args.model_config else {}),
                      "batch_size": args.batch_size, "crop": args.crop,
                      "threads": args.threads, "device": str(trainer.device), "amp": args.amp,
                      "channels_last": args.channels_last, "compile": args.compile,
                      "s_per_step": round(statistics.median(times[1:]), 3), "first_step_s": round(times[0], 1),
                      "losses": [round(v, 5) for v in losses],
                      "machine": f"{platform.machine()}, torch {torch.__version__}"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
