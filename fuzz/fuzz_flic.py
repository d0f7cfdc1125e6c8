"""Coverage-guided fuzzing of the .flic decoder with atheris (libFuzzer), on the models users run.

    pip install atheris
    python fuzz/fuzz_flic.py [--checkpoint=FILE] [corpus_dir] -atheris_runs=200000 [-max_total_time=600]

The target is what ``fastlic decompress`` runs (``codec.read_header`` then ``codec.decode_image``) with the
bundled default (variable rate) or the weights of ``--checkpoint=`` (e.g. the eContextformer weights in
tests/data). The first input byte picks how the rest is made valid before decoding, as in
fuzz/mutate_flic.py: 0 nothing, 1 the CRC-32 recomputed, 2 the header check and the CRC (so the fuzzer reaches
the per-stream checksums and the coder). Seeds: the files of fuzz/mutate_flic.py (crops of kodim23 at several
qualities, tiled and not, one with metadata), written to the corpus directory with each fix byte.

Findings (an exception that stops the fuzzer): any exception other than the library's own (FastlicError
subclasses); an image returned that differs from the seed with the same header digest (or an image from a file
whose header matches no seed's: a forged file that decoded); a decode slower than 20 s. atheris is optional:
fuzz/mutate_flic.py needs no fuzzing library.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import atheris

import numpy as np
import torch

with atheris.instrument_imports(include=["fastlic"]):
    from fastlic import codec
    from fastlic.errors import FastlicError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mutate_flic  # noqa: E402

torch.set_num_threads(1)
torch.manual_seed(0)
_CHECKPOINT = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--checkpoint=")), None)
MODEL = codec.load_model(checkpoint=_CHECKPOINT)
SEEDS = mutate_flic.make_seeds(MODEL)
#: the decoded image of each seed, by the header digest that binds its streams
IMAGES = {codec.read_header(s.data).digest(): s.image for s in SEEDS}
TIME_BOUND = mutate_flic.HARD_LIMIT_S
MODES = ("raw", "crc", "check")


def test_one_input(data: bytes):
    if not data:
        return
    blob = mutate_flic.fix(data[1:], MODES[data[0] % 3])
    t0 = time.perf_counter()
    try:
        f = codec.read_header(blob, "input")
        image = codec.decode_image(f, MODEL, "input")
    except FastlicError:
        image = None
    seconds = time.perf_counter() - t0
    if seconds > TIME_BOUND:
        raise RuntimeError(f"decode took {seconds:.1f} s")
    if image is not None:
        want = IMAGES.get(f.digest())
        if want is None or not np.array_equal(image, want):
            raise RuntimeError("an image was returned that is not the decoded image of the seed with its header")


def main():
    argv = [a for a in sys.argv if not a.startswith("--checkpoint=")]
    corpus = [a for a in argv[1:] if not a.startswith("-")]
    if corpus:
        d = Path(corpus[0])
        d.mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(SEEDS):
            for mode in (1, 2):  # leading byte: how the rest is made valid (MODES)
                (d / f"seed{i}-{MODES[mode]}.flic").write_bytes(bytes([mode]) + s.data)
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
