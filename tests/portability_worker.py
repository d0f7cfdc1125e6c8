"""One "machine" of the portability matrix (tests/test_portability.py), run as a separate process.

    python tests/portability_worker.py encode OUT [--full]     # make the cases' models and .flic files in OUT
    python tests/portability_worker.py decode IN OUT [--full]  # decode IN/*.flic to OUT/<case>.npy (or .err)

The configuration comes from the environment, set by the parent before the process starts:
``ATEN_CPU_CAPABILITY`` (SIMD level of PyTorch's kernels), ``FASTLIC_TEST_THREADS`` (intra-op threads),
``FASTLIC_TEST_MKLDNN=0`` (no oneDNN) and ``FASTLIC_TEST_TORCH_KERNELS=1`` (the float64 parameter path on
PyTorch's own grouped convolution instead of fastlic's depthwise kernel: other summation orders).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import numpy as np
import torch

import fastlic
from fastlic import checkpoint, codec
from fastlic.io import read_image
from fastlic.testing import ECF_SNAPSHOT, PHOTO

#: case -> (model: registry name of a random model, "bundled:NAME", "checkpoint:PATH" or "fixture"; image crop;
#: options)
CASES = {
    "mlicpp-tiny-odd": ("mlicpp-tiny", (77, 93), {}),
    "mlicpp-tiny-tiled": ("mlicpp-tiny", (121, 117), {"tile": 64, "overlap": 8}),
    "econtextformer-tiny": ("econtextformer-tiny", (70, 90), {}),
    "econtextformer-paper": ("econtextformer", (64, 64), {}),
    "bundled-default": ("bundled:mlicpp-mini-vr", (131, 173), {"quality": 2.3}),
    "econtextformer-snapshot": (f"checkpoint:{ECF_SNAPSHOT}", (96, 136), {"quality": 1.0}),
}
FULL = {"mlicpp-full": ("fixture", (64, 96), {})}


def configure() -> dict:
    threads = int(os.environ.get("FASTLIC_TEST_THREADS", "2"))
    torch.set_num_threads(threads)
    if os.environ.get("FASTLIC_TEST_MKLDNN") == "0":
        torch.backends.mkldnn.enabled = False
    if os.environ.get("FASTLIC_TEST_TORCH_KERNELS") == "1":
        from fastlic.layers.float64 import Conv2d, DepthwiseConv2d

        DepthwiseConv2d.forward = Conv2d.forward = torch.nn.Conv2d.forward
    return {"capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "mkldnn": torch.backends.mkldnn.enabled}


def test_image(shape) -> np.ndarray:
    """A crop of the package's photo (kodim23, never a training image), in its lower right part, where the
    suite's other crops of it do not lie: every checkout has it."""
    h, w = shape
    img = read_image(PHOTO)
    y0, x0 = (img.shape[0] - h) * 5 // 6, (img.shape[1] - w) * 5 // 6
    return np.ascontiguousarray(img[y0 : y0 + h, x0 : x0 + w])


def _trained(spec: str):
    """A model with trained weights (bundled or a checkpoint), or None for random and fixture specs."""
    kind, _, what = spec.partition(":")
    if kind == "bundled":
        return codec.load_model(what)
    if kind == "checkpoint":
        return codec.load_model(checkpoint=what)
    return None


def build_model(case: str, spec: str, out: Path):
    """The encoder's model; random and fixture models are saved as checkpoints for the decoders."""
    if (m := _trained(spec)) is not None:
        return m
    if spec == "fixture":
        from fastlic.models.mlicpp import MLICPlusPlus
        from fastlic.testing import reference_weights

        m = MLICPlusPlus.from_reference_state_dict(reference_weights("official_keys_new.tsv", 0))
        m.model_name = "mlicpp"
    else:
        torch.manual_seed(0)
        m = fastlic.create_model(spec).eval()
        m.update()
    checkpoint.save_checkpoint(out / f"{case}.pt", m)  # a converted checkpoint, as a user would ship
    return codec.load_model(checkpoint=out / f"{case}.pt")


def load_decoder_model(case: str, spec: str, src: Path):
    if (m := _trained(spec)) is not None:
        return m
    return codec.load_model(checkpoint=src / f"{case}.pt")


def main(argv):
    cmd, *paths = [a for a in argv if not a.startswith("--")]
    cases = dict(CASES, **(FULL if "--full" in argv else {}))
    if "--only-full" in argv:
        cases = dict(FULL)
    info = configure()
    if cmd == "encode":
        out = Path(paths[0])
        out.mkdir(parents=True, exist_ok=True)
        for case, (spec, shape, opts) in cases.items():
            m = build_model(case, spec, out)
            data = codec.encode_image(m, test_image(shape), **opts)
            (out / f"{case}.flic").write_bytes(data)
            np.save(out / f"{case}.npy", codec.decode_image(data, m))
    elif cmd == "decode":
        src, out = Path(paths[0]), Path(paths[1])
        out.mkdir(parents=True, exist_ok=True)
        for case, (spec, _, _) in cases.items():
            f = src / f"{case}.flic"
            if not f.exists():
                continue
            try:
                m = load_decoder_model(case, spec, src)
                np.save(out / f"{case}.npy", codec.decode_image(f.read_bytes(), m, str(f)))
            except Exception:  # the parent reports it as this case's failure
                (out / f"{case}.err").write_text(traceback.format_exc())
    else:
        raise SystemExit(f"unknown command {cmd!r}")
    (Path(paths[-1]) / "config.json").write_text(json.dumps(info))


if __name__ == "__main__":
    main(sys.argv[1:])
