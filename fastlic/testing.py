"""Helpers for the test suite: where the shared inputs are, and cached reference weights."""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the eContextformer-small snapshot of 6074 CPU steps (its card beside it): trained weights for the tests and
#: benchmarks, no longer bundled as a codec (+242 % BD-rate against WebP on Kodak; docs/training.md)
ECF_SNAPSHOT = REPO / "tests" / "data" / "econtextformer-small-vr-6074.pt"


def shared_dir() -> Path:
    """The read-only shared inputs: ``$FASTLIC_SHARED``, by default ``<repo>/../shared``."""
    return Path(os.environ.get("FASTLIC_SHARED", REPO.parent / "shared")).resolve()


def require_shared(*parts) -> Path:
    """Path below the shared folder, or skip the test (with the path) when it is not there."""
    import pytest  # noqa: PLC0415 - the benchmarks import this module without the test dependencies

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


#: pixel bound between decoders on different configurations (threads, SIMD level, oneDNN, device): the coded
#: integers are identical by construction; the float32 synthesis differs by float noise only, so an 8-bit pixel
#: may move by 1 where its value lies within that noise of a rounding boundary. Measured: none in the suite's
#: images (docs/results.md); the bound allows 1 in 10^3.
PIXEL_TOLERANCE = 1
PIXEL_FRACTION = 1e-3


def assert_same_pixels(a, b, context: str = "") -> None:
    """Two decodes of one file (uint8 H x W x 3, or float x_hat tensors) agree within the bound above."""
    import numpy as np
    import torch

    from .io import tensor_to_image

    a = tensor_to_image(a) if isinstance(a, torch.Tensor) else np.asarray(a)
    b = tensor_to_image(b) if isinstance(b, torch.Tensor) else np.asarray(b)
    assert a.shape == b.shape, (context, a.shape, b.shape)
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert int(diff.max(initial=0)) <= PIXEL_TOLERANCE, (context, int(diff.max()))
    assert float((diff > 0).mean()) <= PIXEL_FRACTION, (context, float((diff > 0).mean()))
