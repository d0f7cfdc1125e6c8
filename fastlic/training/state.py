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


def init_weights(path, _seen: frozenset = frozenset()) -> tuple[dict, dict]:
    """Weights and metadata to warm-start a run (``--init``): a fastlic checkpoint (``best.pt``, a bundled
    file) or another run's ``state.pt``, whose weights are the latest of that run (e.g. stopped between
    validations). -> (state_dict, meta).

    The metadata's ``stages_before`` (the training behind the weights) follows the chain of warm starts back to
    the start: a file that recorded none although its run warm-started itself (runs written before the record
    existed, or whose own ``--init`` predated it) gets the stages of that run's ``--init`` file, recursively;
    while that file exists it is read again even where a record exists (a record may have lost a stage). A
    missing link with nothing recorded is an error, since the budget could not be counted."""
    path = Path(path)
    if path.name != STATE_FILE:
        ckpt = read_checkpoint(path)
        weights, meta = ckpt["state_dict"], dict(ckpt.get("meta", {}))
        run_config = path.parent / "config.json"
        own_init = meta.get("init")
        if own_init is None and run_config.is_file() and not meta.get("stages"):
            import json  # noqa: PLC0415

            own_init = json.loads(run_config.read_text()).get("init")
    else:
        if not path.is_file():
            raise CheckpointError(f"{path}: no such training state")
        st = load_state(path)
        weights = st["model"]
        meta = st.get("meta")
        if meta is None:  # states written before runs recorded their metadata: their step and clock are the record
            meta = {"step": int(st["step"]), "train_wall_s": float(st.get("wall_s", 0.0)), "run": path.parent.name}
        meta = dict(meta)
        own_init = meta.get("init") or (st.get("config") or {}).get("init")
    if own_init and not meta.get("stages"):
        key = str(path.resolve())
        if str(Path(own_init).resolve()) in _seen | {key}:
            raise CheckpointError(f"{path}: its chain of warm starts loops back to {own_init}")
        if Path(own_init).is_file():  # the source of truth while it exists: a record may have lost a stage
            from .bundle import stages_of  # noqa: PLC0415

            meta["stages_before"] = stages_of(init_weights(own_init, _seen | {key})[1])
        elif not meta.get("stages_before"):
            raise CheckpointError(f"{own_init}: no such file; {path} warm-started from it, and it is needed to count "
                                  "the training budget of these weights")
    return weights, meta
