"""Another machine on this machine: files encoded under one configuration decode under every other one.

Each configuration is a separate process (tests/portability_worker.py) with its own PyTorch kernels: SIMD level
(``ATEN_CPU_CAPABILITY=default|avx2|avx512``), oneDNN on/off, 1/2/3 intra-op threads, and the float64 parameter
path on PyTorch's own grouped convolution instead of fastlic's. Every family is covered: MLIC++ (tiny random,
tiled, the bundled default, and the full model with the fixture weights as a converted checkpoint, once),
eContextformer (tiny random, the paper configuration, the bundled small model), on crops of the package's photo
that the suite does not otherwise use, with odd sizes; nothing comes from the shared folder (the full MLIC++
runs on the conformance fixture's weights, rebuilt by the generator committed in tests/data/mlicpp). Each decode must pass the header and checksum checks (identical coded
integers, see fastlic.numerics) and give the pixels of the encoder-side decoder within the bound of
:func:`fastlic.testing.assert_same_pixels`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastlic.testing import assert_same_pixels, simd_configs, worker_env

sys.path.insert(0, str(Path(__file__).resolve().parent))
from portability_worker import CASES, FULL  # noqa: E402

WORKER = Path(__file__).resolve().parent / "portability_worker.py"


def _configs() -> dict:
    return {"threads-1": {"FASTLIC_TEST_THREADS": "1"}, "threads-3": {"FASTLIC_TEST_THREADS": "3"},
            **simd_configs(skip_native=True), "no-onednn": {"FASTLIC_TEST_MKLDNN": "0"},
            "torch-kernels": {"FASTLIC_TEST_TORCH_KERNELS": "1"}}


CONFIGS = _configs()
#: the second encoder, and the decoder of the full MLIC++: every lever foreign at once
FOREIGN = {"ATEN_CPU_CAPABILITY": "default", "FASTLIC_TEST_MKLDNN": "0", "FASTLIC_TEST_THREADS": "1"}


def _run(args, env_extra):
    # pixels compared in the exact mode; the bf16 transforms: test_bf16_*
    env = worker_env({"FASTLIC_PRECISION": "fp32", **env_extra})
    r = subprocess.run([sys.executable, str(WORKER), *args], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """Run every process once: -> {(encoder, decoder): folder of decodes}, encoders' folders."""
    root = tmp_path_factory.mktemp("portability")
    enc_native, enc_foreign = root / "enc-native", root / "enc-foreign"
    _run(["encode", str(enc_native), "--full"], {"FASTLIC_TEST_THREADS": "2"})
    _run(["encode", str(enc_foreign)], FOREIGN)
    out = {}
    for name, env in CONFIGS.items():
        out[("native", name)] = root / f"dec-{name}"
        _run(["decode", str(enc_native), str(out[("native", name)])], env)
    out[("foreign", "native")] = root / "dec-foreign-by-native"
    _run(["decode", str(enc_foreign), str(out[("foreign", "native")])], {"FASTLIC_TEST_THREADS": "2"})
    out[("native", "foreign")] = root / "dec-full-foreign"
    _run(["decode", str(enc_native), str(out[("native", "foreign")]), "--only-full"], FOREIGN)
    # the fast path: bf16 transforms at both ends, the decoder with every lever foreign
    enc_bf16 = root / "enc-bf16"
    _run(["encode", str(enc_bf16)], {"FASTLIC_TEST_THREADS": "2", "FASTLIC_PRECISION": "bf16"})
    out[("bf16", "foreign")] = root / "dec-bf16-foreign"
    _run(["decode", str(enc_bf16), str(out[("bf16", "foreign")])], {**FOREIGN, "FASTLIC_PRECISION": "bf16"})
    return out, {"native": enc_native, "foreign": enc_foreign, "bf16": enc_bf16}


def _check(matrix, encoder, decoder, case):
    out, enc = matrix
    folder = out[(encoder, decoder)]
    assert (enc[encoder] / f"{case}.flic").exists(), f"{case}: the {encoder} encoder wrote no file"
    err = folder / f"{case}.err"
    assert not err.exists(), err.read_text()[-2000:]
    decoded = np.load(folder / f"{case}.npy")
    assert_same_pixels(decoded, np.load(enc[encoder] / f"{case}.npy"), f"{case} {encoder}->{decoder}")


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_decodes_under_another_configuration(matrix, config, case):
    _check(matrix, "native", config, case)


@pytest.mark.parametrize("case", sorted(CASES))
def test_file_from_a_foreign_configuration_decodes_natively(matrix, case):
    _check(matrix, "foreign", "native", case)


@pytest.mark.parametrize("case", sorted(FULL))
def test_full_mlicpp_decodes_with_every_lever_foreign(matrix, case):
    _check(matrix, "native", "foreign", case)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bf16_transforms_decode_exactly_under_every_lever_foreign(matrix, case):
    """With bf16 synthesis the pixels of two machines differ by bf16 rounding (other kernels), but the coded
    integers are the same (the decode passes its checksum) and the two images stay close."""
    out, enc = matrix
    folder = out[("bf16", "foreign")]
    err = folder / f"{case}.err"
    assert not err.exists(), err.read_text()[-2000:]
    a = np.load(folder / f"{case}.npy").astype(np.float64)
    b = np.load(enc["bf16"] / f"{case}.npy").astype(np.float64)
    mse = np.mean((a - b) ** 2)
    assert mse == 0 or 10 * np.log10(255 ** 2 / mse) >= BF16_MIN_PSNR, (case, mse)


#: PSNR between two bf16 decodes of one file on different kernels (measured 62.9-63.9 dB on kodim23 with every
#: lever foreign: docs/results.md#speed-fast-path-and-the-mlic-reference)
BF16_MIN_PSNR = 45.0


def test_the_configurations_really_differ(matrix):
    """The processes ran with the kernels they were asked for (a matrix of identical processes proves nothing)."""
    import json

    out, _ = matrix
    seen = {name: json.loads((out[("native", name)] / "config.json").read_text()) for name in CONFIGS}
    assert seen["simd-default"]["capability"] == "DEFAULT"
    assert seen["threads-1"]["threads"] == 1 and seen["threads-3"]["threads"] == 3
    assert seen["no-onednn"]["mkldnn"] is False
    if "simd-avx2" in seen:
        assert seen["simd-avx2"]["capability"] == "AVX2"
