"""One configuration of the integer-path matrix (tests/test_integer_portability.py), run as a separate process.

    python tests/integer_worker.py ops IN.pt OUT.pt     # the primitives of fastlic.integer.ops on saved inputs
    python tests/integer_worker.py model DIR OUT.pt     # a saved integer MLIC++ (tiny): parameters and a decode
    python tests/integer_worker.py decode CKPT FLIC... OUT.pt   # integer-mode .flic files through fastlic.codec

The configuration comes from the environment: ``ATEN_CPU_CAPABILITY`` (SIMD level of PyTorch's kernels),
``FASTLIC_TEST_THREADS`` (intra-op threads), ``FASTLIC_TEST_MKLDNN=0`` (no oneDNN) and ``FASTLIC_INT_KERNEL``
(the GEMM kernel of fastlic.integer.ops).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch


def configure() -> dict:
    torch.set_num_threads(int(os.environ.get("FASTLIC_TEST_THREADS", "1")))
    if os.environ.get("FASTLIC_TEST_MKLDNN") == "0":
        torch.backends.mkldnn.enabled = False
    return {"capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "mkldnn": torch.backends.mkldnn.enabled}


def run_ops(inp: dict) -> dict:
    """Every primitive on the saved integer inputs (the parent computes the same in its own process)."""
    from fastlic.integer import ops

    out = {}
    for bits in (8, 16):
        out[f"matmul{bits}"] = ops.matmul(inp[f"a{bits}"], inp["w_t"], bits)
    out["conv3x3"] = ops.conv2d(inp["x"], inp["w_conv"], (3, 3), (1, 1), 16)
    out["conv5x5"] = ops.conv2d(inp["x"], inp["w_conv5"], (5, 5), (2, 2), 16)
    out["depthwise"] = ops.depthwise_conv2d(inp["x"], inp["w_dw"], (1, 1))
    out["requant"] = ops.requantize(inp["acc"], inp["mult"], int(inp["shift"]), 16)
    out["softmax"] = ops.softmax(inp["logits"], dim=-1)
    out["softmax_exp"] = ops.softmax_exp(inp["logits"], dim=0)
    out["layer_norm"] = ops.layer_norm(inp["tokens"], int(inp["eps_term"]), 0)
    out["isqrt"] = ops.isqrt(inp["big"])
    out["bmm"] = ops.bmm_exact(inp["ba"], inp["bb"], 2.0 ** 52)
    return out


def run_model(d: Path) -> dict:
    import fastlic
    from fastlic.integer.mlicpp import IntegerMLICPP, _IntForward
    from fastlic.integer.nodes import QuantConfig

    saved = torch.load(d / "model.pt", weights_only=True)
    m = fastlic.create_model("mlicpp-tiny").eval()
    m.load_state_dict(saved["model"])
    im = IntegerMLICPP(m, QuantConfig(**saved["cfg"]))
    im.load_state_dict(saved["int"])
    q = _IntForward(saved["y"], im)
    fixed = im.slices(None, saved["z_sym"], q)
    out = {"y_fixed": torch.cat([f.q for f in fixed], 1), "indexes": torch.cat([t.reshape(-1) for t in q.indexes]),
           "scales": torch.cat([t.reshape(-1) for t in q.scales]), "means": torch.cat([t.reshape(-1) for t in q.means])}
    dec = im.decompress(saved["strings"], tuple(saved["shape"]))
    out["decoded_y_hat"] = dec["y_hat"]
    out["checksum"] = torch.frombuffer(bytearray(dec["checksum"]), dtype=torch.uint8)
    return out


def run_decode(ckpt: Path, flics) -> dict:
    """Whole files in the integer mode, as a user decodes them (header, fingerprint, mode, checksum checks), and
    the reconstructed latents of each tile; keys ``<file stem>/...``."""
    import numpy as np

    from fastlic import checkpoint, codec

    m = checkpoint.load_checkpoint(ckpt)
    out = {}
    for flic in map(Path, flics):
        data = flic.read_bytes()
        out[f"{flic.stem}/pixels"] = torch.from_numpy(np.ascontiguousarray(codec.decode_image(data, m)))
        for k, t in enumerate(codec.read_header(data).tiles):
            y_hat, _ = m.integer_path.decode_latents(t.streams, m.padded_size(t.height, t.width))
            out[f"{flic.stem}/y_hat{k}"] = y_hat
    return out


def main(argv) -> int:
    cfg = configure()
    kind = argv[1]
    if kind == "ops":
        out = run_ops(torch.load(argv[2], weights_only=True))
    elif kind == "model":
        out = run_model(Path(argv[2]))
    elif kind == "decode":
        out = run_decode(Path(argv[2]), argv[3:-1])
    else:
        raise SystemExit(f"unknown mode {kind!r}")
    out["_config"] = torch.tensor([cfg["threads"], int(cfg["mkldnn"])])
    torch.save({"out": out, "capability": cfg["capability"]}, argv[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
