"""Helpers for the test suite: where the shared inputs are, and cached reference weights."""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The read-only shared inputs: ``$FASTLIC_SHARED``, by default ``<repo>/../shared``."""
    return Path(os.environ.get("FASTLIC_SHARED", REPO.parent / "shared")).resolve()


def require_shared(*parts) -> Path:
    """Path below the shared folder, or skip the test (with the path) when it is not there."""
    p = shared_dir().joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared input {p} not available (set FASTLIC_SHARED)")
    return p


@functools.lru_cache(maxsize=None)
def _make_weights_module():
    path = require_shared("fixtures", "mlicpp", "make_weights.py")
    spec = importlib.util.spec_from_file_location("fastlic_fixture_make_weights", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@functools.lru_cache(maxsize=4)
def reference_weights(keys_file: str, seed: int) -> dict:
    """The synthetic official-format MLIC++ state dict of the fixtures (slow: ~30 s; cached per session)."""
    mod = _make_weights_module()
    keys = require_shared("fixtures", "mlicpp", Path(keys_file).name)
    return mod.build_state_dict(str(keys), int(seed))


def weights_digest(sd: dict) -> str:
    return _make_weights_module().digest(sd)
