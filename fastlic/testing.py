"""Helpers for the test suite: where the shared inputs are, the MLIC++ conformance fixtures (full or compact) and
their cached reference weights.

The conformance fixtures (the official MLIC++ code's outputs on synthetic weights) are in
``$FASTLIC_SHARED/fixtures/mlicpp`` where the shared folder exists, and in compact form in ``tests/data/mlicpp``
in every checkout (made from the full ones by ``tests/data/make_fixtures.py``, which says what they keep). The
weights are rebuilt from the fixture's key lists and seed by its generator, committed with the compact fixtures.
"""

from __future__ import annotations

import functools
import importlib.util
import lzma
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the compact conformance fixtures, the fixture's weight generator and its key lists (committed)
MLICPP_DATA = REPO / "tests" / "data" / "mlicpp"
#: the package's photo (Kodak kodim23, the shared set's file byte for byte): the suite's natural image
PHOTO = REPO / "fastlic" / "data" / "kodim23.png"
#: the eContextformer-small snapshot of 6074 CPU steps (its card beside it): trained weights for the tests and
#: benchmarks, no longer bundled as a codec (+242 % BD-rate against WebP on Kodak; docs/training.md)
ECF_SNAPSHOT = REPO / "tests" / "data" / "econtextformer-small-vr-6074.pt"


def cpu_flags() -> set:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def simd_configs(skip_native: bool) -> dict:
    """{name: environment} of the SIMD levels this CPU can run PyTorch's kernels at besides its own choice:
    ``default`` always, ``avx2``/``avx512`` where the CPU has them (left out when they are the native level and
    ``skip_native``)."""
    import torch

    flags, native = cpu_flags(), torch.backends.cpu.get_cpu_capability()
    cfg = {"simd-default": {"ATEN_CPU_CAPABILITY": "default"}}
    for level, flag in (("avx2", "avx2"), ("avx512", "avx512f")):
        if flag in flags and not (skip_native and native == level.upper()):
            cfg[f"simd-{level}"] = {"ATEN_CPU_CAPABILITY": level}
    return cfg


def worker_env(extra: dict, drop=("ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS")) -> dict:
    """The environment of a test worker process: this one's without the variables in ``drop``, with ``extra``,
    and the repository first on ``PYTHONPATH``."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def shared_dir() -> Path:
    """The read-only shared inputs: ``$FASTLIC_SHARED``, by default ``<repo>/../shared``."""
    return Path(os.environ.get("FASTLIC_SHARED", REPO.parent / "shared")).resolve()


@functools.lru_cache(maxsize=None)
def _make_weights_module():
    path = MLICPP_DATA / "make_weights.py"
    spec = importlib.util.spec_from_file_location("fastlic_fixture_make_weights", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@functools.lru_cache(maxsize=4)
def reference_weights(keys_file: str, seed: int) -> dict:
    """The synthetic official-format MLIC++ state dict of the fixtures (slow: ~30 s; cached per session), from the
    committed copy of the fixture's generator and key lists (tests/data/mlicpp)."""
    mod = _make_weights_module()
    return mod.build_state_dict(str(MLICPP_DATA / Path(keys_file).name), int(seed))


def weights_digest(sd: dict) -> str:
    return _make_weights_module().digest(sd)


# ---------------------------------------------------------------------------------------------- fixtures
def full_mlicpp_fixtures() -> list[Path]:
    """The official fixtures ``ref_*.pt`` of the shared folder (none on a checkout without it)."""
    d = shared_dir() / "fixtures" / "mlicpp"
    return sorted(d.glob("ref_*.pt")) if d.is_dir() else []


def compact_mlicpp_fixtures() -> list[Path]:
    return sorted(MLICPP_DATA.glob("compact_*.pt"))


def mlicpp_fixtures() -> list[Path]:
    """What the conformance tests run on: the full fixtures where the shared folder has them, else the compact
    ones (each compact file was checked against its full one: tests/test_mlicpp_conformance.py)."""
    return full_mlicpp_fixtures() or compact_mlicpp_fixtures()


def pack_tensor(t) -> dict:
    """A tensor as its LZMA-compressed bytes (a uint8 tensor: ``torch.save`` would inflate a ``bytes`` object by
    half) with its dtype and shape: the compact fixtures' storage."""
    import torch

    t = t.detach().contiguous()
    data = bytearray(lzma.compress(t.numpy().tobytes(), preset=9))
    return {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
            "lzma": torch.frombuffer(data, dtype=torch.uint8).clone()}


def unpack_tensor(d: dict):
    import numpy as np
    import torch

    a = np.frombuffer(lzma.decompress(d["lzma"].numpy().tobytes()), dtype=np.dtype(d["dtype"])).reshape(d["shape"])
    return torch.from_numpy(a.copy())


def load_mlicpp_fixture(path) -> dict:
    """A fixture as the flat dict of the full format (fixture README §5), whichever form ``path`` has.

    For a compact fixture: its tensors unpacked (integers widened to int32 as in the full form), ``input.float``
    made from ``input.uint8`` as the reference made it (``/ 255.0`` in float32), the entropy-parameter outputs
    ``fwd.ep_{anchor,nonanchor}.{i}`` put together from ``fwd.scales``/``fwd.means`` at the positions where they
    are read (everything the tests compare of them; equal there by construction: checked by make_fixtures.py),
    and ``select``: for a tensor kept in part, ``[(dim, indexes), ...]`` that :func:`pick` applies to ours. A
    full fixture gets an empty ``select``.
    """
    import torch

    raw = torch.load(path, weights_only=True)
    if raw.get("format") != COMPACT_FORMAT:
        return {**raw, "select": {}}
    R = {"meta": raw["meta"], "select": {k: [(d, torch.tensor(i)) for d, i in v] for k, v in raw["select"].items()}}
    packed = dict(raw["tensors"])
    for sibling, keys in raw.get("shared_from", {}).items():  # tensors stored once for both variants
        other = torch.load(Path(path).with_name(sibling), weights_only=True)["tensors"]
        packed.update({k: other[k] for k in keys})
    for k, v in packed.items():
        t = unpack_tensor(v)
        R[k] = t.to(torch.int32) if t.dtype in (torch.int8, torch.int16) else t
    R["input.float"] = R["input.uint8"].to(torch.float32) / 255.0
    c = R["meta"]["config"]["slice_ch"]
    for i in range(R["meta"]["config"]["slice_num"]):
        s = slice(i * c, (i + 1) * c)
        both = torch.cat([R["fwd.scales"][:, s], R["fwd.means"][:, s]], 1)
        R[f"fwd.ep_anchor.{i}"] = R[f"fwd.ep_nonanchor.{i}"] = both
    return R


#: format tag of the compact fixtures (tests/data/make_fixtures.py)
COMPACT_FORMAT = "fastlic-compact-mlicpp-fixture/1"


def pick(R: dict, key: str, t):
    """``t`` (ours, shaped like the full fixture's ``key``) restricted to what fixture ``R`` keeps of ``key``."""
    for dim, idx in R["select"].get(key, ()):
        t = t.index_select(dim, idx)
    return t


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
