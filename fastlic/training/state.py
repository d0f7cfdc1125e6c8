"""Resumable training state, written atomically.

``RUNDIR/state.pt`` holds everything an exact resume needs: model weights, both optimizers, both schedulers,
the AMP grad scaler, the step (which is also the data position: samples are a function of (seed, sample
number), see :mod:`fastlic.training.data`), the RNG states of torch (CPU and CUDA), numpy and Python (the
training noise of the entropy models comes from torch's RNG), the run's configuration and the best
validation loss. It is written to a temporary file and renamed, so a run killed while saving keeps the previous
state. Deployable weights go to ``RUNDIR/best.pt`` / ``RUNDIR/last.pt`` in the fastlic checkpoint format
(:func:`fastlic.checkpoint.save_checkpoint`).
"""

from __future__ import annotations

import fcntl
import os
import random
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import read_checkpoint
from ..errors import CheckpointError

STATE_FILE = "state.pt"
LOCK_FILE = "lock"


class RunLocked(RuntimeError):
    """Another process is training in the same run directory."""


def lock_run(out: Path):
    """Hold an exclusive lock on ``out`` for the life of this process (two trainers in one run directory
    would overwrite each other's state). -> the open lock file (keep a reference; closing it unlocks)."""
    fh = open(Path(out) / LOCK_FILE, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise RunLocked(f"{out} is in use by another training process") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj, path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_state(path) -> dict:
    # our own file, with numpy/python RNG states inside: full unpickling is needed and the file is trusted
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a damaged or foreign file: say which, not what the unpickler tripped on
        raise CheckpointError(f"{path}: not a readable training state ({type(exc).__name__})") from None


def init_weights(path) -> tuple[dict, dict]:
    """Weights and metadata to warm-start a run (``--init``): a fastlic checkpoint (``best.pt``, a bundled
    file) or another run's ``state.pt``, whose weights are the latest of that run (e.g. stopped between
    validations). -> (state_dict, meta)."""
    path = Path(path)
    if path.name != STATE_FILE:
        ckpt = read_checkpoint(path)
        return ckpt["state_dict"], ckpt.get("meta", {})
    if not path.is_file():
        raise CheckpointError(f"{path}: no such training state")
    st = load_state(path)
    meta = st.get("meta")
    if meta is None:  # states written before runs recorded their metadata: their step and clock are the record
        meta = {"step": int(st["step"]), "train_wall_s": float(st.get("wall_s", 0.0)), "run": path.parent.name}
    return st["model"], meta
