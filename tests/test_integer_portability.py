"""The integer path gives the same integers in every configuration: SIMD level (``ATEN_CPU_CAPABILITY`` default,
avx2, avx512 where the CPU has them), oneDNN off, 1 and 2 threads, and both GEMM kernels (``torch._int_mm`` and
exact float64). Each configuration is a separate process (tests/integer_worker.py); small shapes, seconds each.

Three levels: the primitives of fastlic.integer.ops on saved inputs; a tiny MLIC++ quantized here (its integer
state saved, as a converted checkpoint would carry it) whose entropy parameters and decode must match exactly;
and integer-mode .flic files (one tile and tiled) written here and decoded through fastlic.codec in every
configuration: the same reconstructed latents bit for bit, pixels within the synthesis' float bound.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import fastlic
from fastlic.integer import ops
from fastlic.integer.mlicpp import quantize_mlicpp
from fastlic.integer.ops import QMAX
from fastlic.testing import simd_configs, worker_env

sys.path.insert(0, str(Path(__file__).resolve().parent))
import integer_worker  # noqa: E402

WORKER = Path(__file__).resolve().parent / "integer_worker.py"


def _configs() -> dict:
    return {"threads-1": {"FASTLIC_TEST_THREADS": "1"}, "threads-2": {"FASTLIC_TEST_THREADS": "2"},
            **simd_configs(skip_native=False), "no-onednn": {"FASTLIC_TEST_MKLDNN": "0"},
            "kernel-float64": {"FASTLIC_INT_KERNEL": "float64"},
            "all-foreign": {"ATEN_CPU_CAPABILITY": "default", "FASTLIC_TEST_MKLDNN": "0", "FASTLIC_TEST_THREADS": "2"}}


CONFIGS = _configs()


def _run(args, env_extra) -> dict:
    env = worker_env(env_extra, drop=("ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS", "FASTLIC_INT_KERNEL"))
    r = subprocess.run([sys.executable, str(WORKER), *map(str, args)], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return torch.load(args[-1], weights_only=True)


def _assert_identical(results: dict, reference: dict) -> None:
    for name, res in results.items():
        for key, want in reference.items():
            got = res["out"][key]
            assert got.dtype == want.dtype and torch.equal(got, want), f"{name}: {key} differs"


def _ops_inputs() -> dict:
    g = torch.Generator().manual_seed(40)
    r = lambda shape, bits: torch.randint(-QMAX[bits], QMAX[bits] + 1, shape, generator=g)  # noqa: E731
    mult, shift = ops.fixed_multipliers(torch.rand(48, generator=g, dtype=torch.float64) * 1e-3, 2.0 ** 34)
    return {"a8": r((300, 576), 8).to(torch.int16), "a16": r((300, 576), 16).to(torch.int16),
            "w_t": r((576, 48), 8).to(torch.int8), "x": r((1, 64, 12, 20), 16).to(torch.int16),
            "w_conv": r((64 * 9, 48), 8).to(torch.int8), "w_conv5": r((64 * 25, 16), 8).to(torch.int8),
            "w_dw": r((64, 3, 3), 8).to(torch.int8), "acc": torch.randint(-2 ** 34, 2 ** 34, (300, 48), generator=g),
            "mult": mult, "shift": torch.tensor(shift),
            "logits": torch.randint(-3000, 3000, (400, 25), generator=g), "tokens": r((500, 64), 16),
            "eps_term": torch.tensor(12345), "big": torch.randint(0, 2 ** 62, (5000,), generator=g),
            "ba": r((64, 25, 16), 16), "bb": r((64, 16, 25), 16)}


def test_primitives_identical_in_every_configuration(tmp_path):
    inp = _ops_inputs()
    torch.save(inp, tmp_path / "in.pt")
    torch.set_num_threads(1)
    reference = integer_worker.run_ops(inp)
    results = {name: _run(["ops", tmp_path / "in.pt", tmp_path / f"{name}.pt"], env) for name, env in CONFIGS.items()}
    caps = {res["capability"] for res in results.values()}
    assert len(caps) >= 2, caps  # the matrix really ran other kernels
    _assert_identical(results, reference)


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    """A tiny MLIC++ (seed 0) quantized on a crop of the package's photo, its latents and a stream."""
    d = tmp_path_factory.mktemp("integer-model")
    torch.manual_seed(0)
    m = fastlic.create_model("mlicpp-tiny").eval()
    m.update()
    from fastlic.io import read_image

    img = read_image(Path(fastlic.__file__).parent / "data" / "kodim23.png")
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    im = quantize_mlicpp(m, [t(img[100:228, 200:328])])
    x = t(img[300:377, 400:493])  # odd size: padded to 128 x 128
    y, z = im._latents(m.pad(x))
    enc = im.compress(x)
    torch.save({"model": m.state_dict(), "int": im.state_dict(), "cfg": vars(im.cfg), "y": y.double(),
                "z_sym": m.entropy_bottleneck.symbols(z), "strings": enc["strings"], "shape": list(enc["shape"])},
               d / "model.pt")
    return d, enc


def test_integer_mlicpp_identical_in_every_configuration(saved_tiny):
    d, enc = saved_tiny
    torch.set_num_threads(1)
    reference = integer_worker.run_model(d)
    assert bytes(reference["checksum"].numpy()) == enc["checksum"]
    assert torch.equal(reference["decoded_y_hat"], enc["y_hat"])
    results = {name: _run(["model", d, d / f"{name}.out.pt"], env) for name, env in CONFIGS.items()}
    _assert_identical(results, reference)


def test_integer_files_decode_identically_in_every_configuration(tmp_path):
    from fastlic import checkpoint, codec, numerics
    from fastlic.io import read_image

    torch.set_num_threads(1)
    torch.manual_seed(0)
    m = fastlic.create_model("mlicpp-tiny").eval()
    m.update()
    m.to_integer()
    checkpoint.save_checkpoint(tmp_path / "int.pt", m)
    img = read_image(Path(fastlic.__file__).parent / "data" / "kodim23.png")
    files = {"odd": np.ascontiguousarray(img[301:378, 401:494]), "tiled": np.ascontiguousarray(img[:121, 600:717])}
    paths = []
    for name, crop in files.items():
        data = codec.encode_image(m, crop, tile=64 if name == "tiled" else None, overlap=8)
        assert codec.read_header(data).numeric_mode == numerics.INTEGER_MODE
        paths.append(tmp_path / f"{name}.flic")
        paths[-1].write_bytes(data)
    reference = integer_worker.run_decode(tmp_path / "int.pt", paths)
    assert len([k for k in reference if k.startswith("tiled/y_hat")]) > 1
    for cname, env in CONFIGS.items():
        res = _run(["decode", tmp_path / "int.pt", *paths, tmp_path / f"{cname}.pt"], env)
        for key, want in reference.items():
            if "/y_hat" in key:
                assert torch.equal(res["out"][key], want), f"{cname}: {key} differs"
                continue
            # pixels come from the float32 synthesis on identical latents: +-1 where a value lies within float
            # noise of a rounding boundary (observed: 0.11 % of this random model's values with oneDNN off, above
            # the 0.1 % that fastlic.testing allows for trained models); an integer synthesis is issue 40's item 4
            a, b = res["out"][key].numpy().astype(np.int16), want.numpy().astype(np.int16)
            assert a.shape == b.shape and int(np.abs(a - b).max()) <= 1, (cname, key)
            assert float((a != b).mean()) <= 5e-3, (cname, key, float((a != b).mean()))
