"""Coverage-guided fuzzing of the .flic decoder with atheris (libFuzzer).

    pip install atheris
    python fuzz/fuzz_flic.py -atheris_runs=200000 [-max_total_time=600] [corpus_dir]

The target parses the input as a .flic file and, when it parses, decodes it with a tiny model. Any exception
other than the library's own error types (FastlicError subclasses) is a finding, and so is a decode slower than
the time bound or an image returned whose checks did not pass. Seeds: valid files of several shapes, tiled and
not, whose CRC the fuzzer must keep valid to get past it — so half of the inputs get their CRC recomputed
before parsing, which lets the fuzzer reach the header and stream logic.
"""

from __future__ import annotations

import struct
import sys
import time
import zlib

import atheris

import numpy as np
import torch

with atheris.instrument_imports(include=["fastlic"]):
    import fastlic
    from fastlic import codec, container
    from fastlic.errors import FastlicError

torch.set_num_threads(1)
torch.manual_seed(0)
MODEL = fastlic.create_model("mlicpp-tiny").eval()
MODEL.update()
TIME_BOUND = 60.0  # generous: the machine may be loaded; a hang would exceed any bound


def seeds():
    rng = np.random.default_rng(0)
    out = []
    for h, w, tile in [(16, 16, None), (70, 33, None), (140, 150, 64)]:
        img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        out.append(codec.encode_image(MODEL, img, tile=tile, overlap=8))
    return out


def test_one_input(data: bytes):
    fdp = atheris.FuzzedDataProvider(data)
    fix_crc = fdp.ConsumeBool()
    blob = fdp.ConsumeBytes(fdp.remaining_bytes())
    if fix_crc and len(blob) > 4:
        blob = blob[:-4] + struct.pack("<I", zlib.crc32(blob[:-4]))
    try:
        f = container.unpack(blob)
    except FastlicError:
        return
    if f.num_pixels > 256 * 256:  # keep each run fast; the size bounds themselves are unit-tested
        return
    t0 = time.perf_counter()
    try:
        codec.decode_image(f, MODEL)
    except FastlicError:
        pass
    if time.perf_counter() - t0 > TIME_BOUND:
        raise RuntimeError(f"decode took {time.perf_counter() - t0:.1f} s")


def main():
    corpus = [a for a in sys.argv[1:] if not a.startswith("-")]
    if corpus:
        import pathlib

        d = pathlib.Path(corpus[0])
        d.mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(seeds()):
            (d / f"seed{i}.flic").write_bytes(b"\x01" + s)  # leading byte: the fix-CRC flag
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
