"""Training step time in float32 and with bf16 autocast (and channels_last), and the loss after the same samples.

    python benchmarks/training_precision.py [--steps 120] [--threads 2] \
        [-o results/benchmarks/training_precision.json]

1. Seconds per step (median of 4 after a warm-up; ``python -m fastlic.training.speed``) of the bundled default
   (mlicpp-mini-vr) and of econtextformer-small-vr, batch 4 of 256², for every combination of ``--amp off|bf16``
   and ``--channels-last off|on``.
2. Equal loss after the same samples: two short runs of the clean-data preset
   (``configs/mlicpp_vr_cpu_clean.toml``, warm-started from the bundled default, same seed, hence the same
   samples and rate points), one in float32 and one with bf16 autocast; the mean training loss, bpp and PSNR
   over the last half of the steps, and the wall time of each.

The entropy models stay in float32 under autocast (the trainer runs them outside it). The CPU's native bf16
support (AMX, AVX512-BF16) is recorded; nothing else may run during the measurement.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine  # noqa: E402


def cpu_bf16() -> dict:
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {"amx_bf16": "amx_bf16" in flags, "avx512_bf16": "avx512_bf16" in flags}


def step_time(model, amp, channels_last, threads):
    cmd = [sys.executable, "-m", "fastlic.training.speed", "--model", model, "--batch-size", "4", "--crop", "256",
           "--steps", "4", "--threads", str(threads), "--amp", amp, "--channels-last", channels_last]
    failures = []
    for _ in range(3):  # a crashed process is recorded and retried (channels_last training crashed here: glibc
        # "double free or corruption", "free(): invalid next size", SIGSEGV)
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if r.returncode == 0:
            return {**json.loads(r.stdout.strip().splitlines()[-1]), "crashed_attempts": failures}
        failures.append({"returncode": r.returncode, "stderr_tail": r.stderr[-300:]})
    return {"model": model, "amp": amp, "channels_last": channels_last, "s_per_step": None,
            "crashed_attempts": failures}


def short_run(amp, steps, threads, out):
    cmd = [sys.executable, "-m", "fastlic.training", "--config", "configs/mlicpp_vr_cpu_clean.toml",
           "--init", "fastlic/weights/mlicpp-mini-vr.pt", "--out", str(out), "--steps", str(steps),
           "--val-interval", str(10 ** 9), "--threads", str(threads), "--amp", amp, "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if r.returncode:
        raise SystemExit(r.stderr[-2000:])
    rows = list(csv.DictReader(open(Path(out) / "train.csv")))
    return {"amp": amp, "steps": int(rows[-1]["step"]), "wall_s": float(rows[-1]["time_s"]),
            "logged": [{k: float(r[k]) for k in ("step", "loss", "bpp", "psnr")} for r in rows]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("-o", "--output", default=str(REPO / "results" / "benchmarks" / "training_precision.json"))
    args = p.parse_args()
    report = {"command": "python benchmarks/training_precision.py " + " ".join(sys.argv[1:]),
              "machine": machine(threads=args.threads), "cpu_bf16": cpu_bf16(), "step_time": [], "short_runs": []}
    for model in ("mlicpp-mini-vr", "econtextformer-small-vr"):
        for amp in ("off", "bf16"):
            for cl in ("off", "on"):
                row = step_time(model, amp, cl, args.threads)
                report["step_time"].append(row)
                print(json.dumps(row), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for amp in ("off", "bf16"):
            row = short_run(amp, args.steps, args.threads, Path(tmp) / f"run-{amp}")
            report["short_runs"].append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "logged"}), flush=True)
    # the same samples at the same logged steps: paired differences
    a, b = (r["logged"] for r in report["short_runs"])
    pairs = [(x, y) for x, y in zip(a, b) if x["step"] == y["step"]]
    report["bf16_vs_fp32"] = {
        "logged_steps": [x["step"] for x, _ in pairs],
        "mean_relative_loss_difference": sum(y["loss"] / x["loss"] - 1 for x, y in pairs) / len(pairs),
        "mean_psnr_difference_db": sum(y["psnr"] - x["psnr"] for x, y in pairs) / len(pairs),
        "mean_relative_bpp_difference": sum(y["bpp"] / x["bpp"] - 1 for x, y in pairs) / len(pairs),
        "wall_time_ratio": report["short_runs"][1]["wall_s"] / report["short_runs"][0]["wall_s"]}
    print(json.dumps(report["bf16_vs_fp32"]), flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
