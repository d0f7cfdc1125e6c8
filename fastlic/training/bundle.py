"""Copy a run's best weights into the package (``fastlic/weights/``) with a JSON card next to them.

    python -m fastlic.training.bundle RUNDIR [--dest fastlic/weights] [--name NAME] [--which best|last]

The weights file is a fastlic checkpoint (coding tables built, fingerprint fixed), listed in
``fastlic/weights/index.json`` (what :func:`fastlic.codec.bundled_weights` reads). The card records what the
weights cost and what they measured: steps, training wall time, machine, batch, crops, λ per rate point, the
training data, and the validation metrics stored with the checkpoint (estimated bpp, PSNR, MS-SSIM).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import CheckpointError


def machine() -> str:
    return f"{os.cpu_count()}-core CPU, {platform.machine()}, torch {torch.__version__}"


def _portable(path: str) -> str:
    """A data path without this machine's prefix: from the ``shared/`` folder on when it is below one."""
    parts = Path(path).parts
    return str(Path(*parts[parts.index("shared"):])) if "shared" in parts else Path(path).name


@torch.no_grad()
def coding_check(model, image_path) -> list[dict]:
    """Real coding of one image at every trained rate point: bytes of the entropy-coded streams (no container
    header), bpp, PSNR of the decoded image (8-bit), and whether the decoder's latents match the encoder's."""
    from .data import load_rgb  # noqa: PLC0415

    x = torch.from_numpy(load_rgb(image_path)).permute(2, 0, 1).float().div(255)[None]
    h, w = x.shape[-2:]
    rows = []
    for q in range(getattr(model, "num_rates", 1)):
        kw = {"quality": q} if hasattr(model, "set_quality") else {}
        enc = model.compress(x, **kw)
        dec = model.decompress(enc["strings"], enc["shape"], **kw)
        nbytes = sum(len(s[0]) for s in enc["strings"])
        x8 = (dec["x_hat"].clamp(0, 1) * 255).round() / 255
        mse = float(((x8 - x) ** 2).mean())
        rows.append({"quality": q, "bytes": nbytes, "bpp": round(nbytes * 8 / (h * w), 4),
                     "psnr": round(10 * math.log10(1 / mse), 3), "decoded_exactly": dec["checksums"] == enc["checksums"]})
    return rows


def stages_of(meta: dict) -> list[dict]:
    """The training stages recorded in a checkpoint's metadata, oldest first (one stage for checkpoints written
    before stages were recorded: their ``step`` and ``train_wall_s``)."""
    if meta.get("stages"):
        return list(meta["stages"])
    before = list(meta.get("stages_before") or [])
    if meta.get("step") is None:
        return before
    return [*before, {"steps": meta.get("step"), "wall_s": meta.get("train_wall_s", 0.0),
                      "run": meta.get("run") or meta.get("bundled_from")}]


def _earlier_stages(meta: dict, config: dict) -> list[dict]:
    """The stages a run warm-started from, read again from its ``--init`` file when that file is still there
    (:func:`fastlic.training.state.init_weights` follows the chain of warm starts back to the start, so a record
    that lost a stage, as the eContextformer's once did, is completed), else as the trainer recorded them."""
    init = config.get("init")
    recorded = list(meta.get("stages_before") or [])
    if init and Path(init).is_file():
        from .state import init_weights  # noqa: PLC0415

        return stages_of(init_weights(init)[1])
    if recorded or not init:
        return recorded
    if not Path(init).is_file():
        raise CheckpointError(f"{init}: no such file; the run warm-started from it, and it is needed to count the "
                              "training budget of the bundled weights")
    from .state import init_weights  # noqa: PLC0415

    return stages_of(init_weights(init)[1])


def _stages(meta: dict, config: dict, run: Path) -> list[dict]:
    """The training stages behind these weights, oldest first, this run last."""
    init = config.get("init")
    this = {"steps": meta.get("step"), "wall_s": meta.get("train_wall_s", 0.0), "run": run.name, "machine": machine(),
            "threads": config.get("threads"), "lr": config.get("lr"), "lr_schedule": config.get("lr_schedule"),
            "init": Path(init).name if init else None,
            # what this stage saw and how it computed (earlier stages' records may lack these)
            "data": [_portable(d) for d in meta.get("data", config.get("data", []))],
            "data_weights": config.get("data_weights"), "batch_size": meta.get("batch_size"),
            "crop": meta.get("crop"), "precision": meta.get("precision") or f"amp={config.get('amp', 'auto')}"}
    return [*_earlier_stages(meta, config), this]


def export_state(run: Path, dest: Path) -> Path:
    """The current weights of ``run/state.pt`` (e.g. of a run stopped between validations) as a checkpoint."""
    from ..registry import create_model  # noqa: PLC0415
    from .state import STATE_FILE, load_state  # noqa: PLC0415

    st = load_state(run / STATE_FILE)
    cfg = st["config"]
    model = create_model(cfg["model"], **(cfg.get("model_config") or {}))
    model.load_state_dict(st["model"])
    model.eval()
    model.update()
    save_checkpoint(dest, model, st["meta"])
    return dest


def bundle(run: Path, dest: Path, name: str | None = None, which: str = "best", note: str = "",
           check_image=None) -> Path:
    if which == "state":
        export_state(run, run / "state-weights.pt")
        which = "state-weights"
    model = load_checkpoint(run / f"{which}.pt")
    meta = dict(model.checkpoint_meta)
    name = name or model.model_name
    config = json.loads((run / "config.json").read_text()) if (run / "config.json").exists() else {}
    stages = _stages(meta, config, run)  # may fail on a missing --init file: before anything is written
    dest.mkdir(parents=True, exist_ok=True)
    weights = dest / f"{name}.pt"
    save_checkpoint(weights, model, {**meta, "bundled_from": f"{run.name}/{which}.pt", "stages": stages})
    card = {
        "file": weights.name,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "bytes": weights.stat().st_size,
        "model": model.model_name,
        "config": model.config,
        "parameters": model.num_parameters(),
        "fingerprint": model.fingerprint().hex(),
        "quality_range": [0, getattr(model, "num_rates", 1) - 1],
        "training": {
            # totals over every stage (warm starts included); "stages" lists them
            "steps": sum(st["steps"] or 0 for st in stages),
            "wall_time_h": round(sum(st["wall_s"] or 0.0 for st in stages) / 3600, 2),
            "stages": stages,
            "machine": machine(),
            "threads": config.get("threads"),
            "processes": meta.get("world_size", 1),
            "batch_size": meta.get("batch_size"),
            "crop_schedule": meta.get("crop"),
            "lr": config.get("lr"),
            "lambda": meta.get("lambda"),
            "metric": meta.get("metric"),
            "data": [_portable(d) for d in meta.get("data", [])],
            "validation_data": [_portable(d) for d in config.get("val", [])],
            "validation_images": config.get("val_images"),
        },
        "validation": meta.get("val"),
        "note": note,
    }
    if check_image:
        card["coding_check"] = {"image": Path(check_image).name, "points": coding_check(model, check_image)}
    (dest / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    _update_index(dest, name, weights.name, card)
    return weights


def _update_index(dest: Path, name: str, file: str, card: dict) -> None:
    """``dest/index.json`` lists the bundled models (read by :func:`fastlic.codec.bundled_weights`)."""
    index_path = dest / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    models = index.setdefault("models", {})
    lo, hi = card["quality_range"]
    models[name] = {"file": file, "card": f"{name}.json", "sha256": card["sha256"], "quality_range": [lo, hi]}
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastlic.training.bundle", description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--dest", type=Path, default=Path(__file__).resolve().parents[1] / "weights")
    p.add_argument("--name")
    p.add_argument("--which", choices=["best", "last", "state"], default="best",
                   help="best.pt, last.pt (both written at validations) or the weights of state.pt (the latest)")
    p.add_argument("--note", default="")
    p.add_argument("--check-image", help="also code this image at every rate point and record the real sizes")
    args = p.parse_args(argv)
    source = args.run / ("state.pt" if args.which == "state" else f"{args.which}.pt")
    if not source.is_file():
        p.error(f"{source}: no such file (is {args.run} a run directory of fastlic train?)")
    if args.check_image and not Path(args.check_image).is_file():
        p.error(f"{args.check_image}: no such file")
    try:
        path = bundle(args.run, args.dest, args.name, args.which, args.note, args.check_image)
    except CheckpointError as exc:  # a damaged or missing weights/state file: nothing is written before it is read
        p.error(str(exc))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) and {path.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
