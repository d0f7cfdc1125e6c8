"""Training step time eager against ``torch.compile`` (``fastlic train --compile on``), on the same samples.

    python benchmarks/training_compile.py [--threads 2] [--steps 6] \
        [-o results/benchmarks/training_compile.json]

For each case (model, batch, crop, autocast precision) two fresh processes of ``python -m fastlic.training.speed``
run the same seeded steps, one eager and one compiled: median seconds per step after the first, the first step
(the compilation, for the compiled one) and the loss of every step, so the two can be compared at equal samples.
Cases: ``mlicpp-tiny-vr`` (batch 2 of 128², float32), the bundled default ``mlicpp-mini-vr`` (batch 4 of 256², the
clean-data preset's shape) in bf16 autocast (what ``--amp auto`` picks on CPUs with native bf16) and in float32.
Nothing else may run during the measurement.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine  # noqa: E402
from training_precision import cpu_bf16  # noqa: E402

CASES = [("mlicpp-tiny-vr", 2, 128, "off"), ("mlicpp-mini-vr", 4, 256, "bf16"), ("mlicpp-mini-vr", 4, 256, "off")]


def run(model, batch, crop, amp, compile_, threads, steps):
    cmd = [sys.executable, "-m", "fastlic.training.speed", "--model", model, "--batch-size", str(batch),
           "--crop", str(crop), "--steps", str(steps), "--threads", str(threads), "--amp", amp,
           "--compile", compile_]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if r.returncode:
        return {"model": model, "amp": amp, "compile": compile_, "s_per_step": None,
                "returncode": r.returncode, "stderr_tail": r.stderr[-300:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--cases", type=int, nargs="*", help="indexes into the case list (default: all)")
    p.add_argument("-o", "--output", default=str(REPO / "results" / "benchmarks" / "training_compile.json"))
    args = p.parse_args()
    report = {"command": "python benchmarks/training_compile.py " + " ".join(sys.argv[1:]),
              "machine": machine(threads=args.threads), "cpu_bf16": cpu_bf16(), "cases": []}
    for i, (model, batch, crop, amp) in enumerate(CASES):
        if args.cases is not None and i not in args.cases:
            continue
        eager, compiled = (run(model, batch, crop, amp, c, args.threads, args.steps) for c in ("off", "on"))
        case = {"model": model, "batch_size": batch, "crop": crop, "amp": amp, "eager": eager, "compiled": compiled}
        if eager.get("s_per_step") and compiled.get("s_per_step"):
            case["speedup"] = round(eager["s_per_step"] / compiled["s_per_step"], 3)
            case["max_relative_loss_difference"] = max(
                abs(b / a - 1) for a, b in zip(eager["losses"], compiled["losses"]))
        report["cases"].append(case)
        print(json.dumps({k: v for k, v in case.items() if k not in ("eager", "compiled")}), flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
