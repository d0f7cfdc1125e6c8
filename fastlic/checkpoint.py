"""This project's checkpoint format and conversion of reference checkpoints.

A fastlic checkpoint is a ``torch.save`` dict::

    {"format": "fastlic-checkpoint", "version": 1,
     "model": "<registry name>", "config": {<constructor keywords>},
     "state_dict": {...},            # coding tables included (built by model.update())
     "meta": {...},                  # free-form: training step, lambda, source checkpoint, ...
     "fingerprint": "<32 hex>"}      # the weights fingerprint of exactly this state dict (optional)

It is read with ``torch.load(weights_only=True)`` (no pickled classes), so loading a checkpoint never runs code.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path

import torch

from . import numerics
from .errors import CheckpointError
from .models.base import state_dict_fingerprint
from .registry import create_model

FORMAT = "fastlic-checkpoint"
VERSION = 1


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def checkpoint_dict(model, meta: dict | None = None) -> dict:
    if model.needs_update():
        model.update()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    meta = dict(meta or {})
    preferred = numerics.preferred_precision(model)
    if preferred is not None:  # official MLIC++ weights stay exact by default once saved (fastlic.numerics)
        meta.setdefault("preferred_precision", list(preferred))
    return {"format": FORMAT, "version": VERSION, "model": model.model_name, "config": _plain(model.config),
            "state_dict": state, "meta": meta, "fingerprint": state_dict_fingerprint(state).hex()}


def save_checkpoint(path, model, meta: dict | None = None) -> None:
    """Write ``model`` atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(checkpoint_dict(model, meta), tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_checkpoint(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        # reference checkpoints carry a scheduler state with a Counter; allow that one plain container
        with torch.serialization.safe_globals([collections.Counter]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a checkpoint dict")
    return ckpt


def model_from_checkpoint_dict(ckpt: dict, source: str = "checkpoint"):
    if ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{source}: not a fastlic checkpoint (convert reference checkpoints with "
                              f"'fastlic convert-checkpoint')")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{source}: unsupported checkpoint version {ckpt.get('version')!r}")
    try:
        model = create_model(ckpt["model"], **ckpt.get("config", {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: cannot build model {ckpt.get('model')!r}: {exc}") from None
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{source}: weights do not fit model {ckpt['model']!r}: {first}") from None
    model.eval()
    if model.needs_update():
        model.update()
    elif _stored_fingerprint_applies(ckpt, model):
        # the digest of the very tensors just loaded: a fresh process need not hash them again (~0.4 s on
        # the full MLIC++, paid by the first compress or decompress)
        model.adopt_fingerprint(bytes.fromhex(ckpt["fingerprint"]))
    model.checkpoint_meta = ckpt.get("meta", {})
    return model


def _stored_fingerprint_applies(ckpt: dict, model) -> bool:
    """Whether the checkpoint's stored fingerprint describes the model's state dict as loaded: it must be well
    formed, and every tensor must have kept its name, dtype and shape (``load_state_dict`` copies values)."""
    fp = ckpt.get("fingerprint")
    if not (isinstance(fp, str) and len(fp) == 32 and all(c in "0123456789abcdef" for c in fp)):
        return False
    stored, now = ckpt["state_dict"], model.state_dict()
    return stored.keys() == now.keys() and all(
        stored[k].dtype == v.dtype and stored[k].shape == v.shape for k, v in now.items())


def load_checkpoint(path):
    """-> the model stored at ``path``, in eval mode with coding tables ready."""
    return model_from_checkpoint_dict(read_checkpoint(path), str(path))


def convert_reference_checkpoint(src, dst, variant: str = "current") -> None:
    """Official MLIC++ ``.pth.tar`` -> fastlic checkpoint."""
    from .models.mlicpp import MLICPlusPlus

    raw = read_checkpoint(src)
    model = MLICPlusPlus.from_reference_state_dict(raw, variant=variant)
    model.model_name = "mlicpp" if variant == "current" else "mlicpp-2023"
    meta = {"source": os.path.basename(str(src)), "variant": variant}
    for key in ("epoch", "loss"):
        if key in raw and isinstance(raw[key], (int, float)):
            meta[key] = raw[key]
        elif key in raw and torch.is_tensor(raw[key]) and raw[key].numel() == 1:
            meta[key] = float(raw[key])
    save_checkpoint(dst, model, meta)
