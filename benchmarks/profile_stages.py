"""Wall time of each top-level module of a model during one compress and one decompress of an image.

    python benchmarks/profile_stages.py [--checkpoint /tmp/fastlic-fixture-mlicpp.pt] [--image kodim23.png]
        [--threads 2] [--repeat 2]

Forward hooks on the model's children (every element of a ModuleList counts for its list); the last of
``--repeat`` passes is reported, so that one-time conversions do not count. Needs an idle machine.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default=str(Path(tempfile.gettempdir()) / "fastlic-fixture-mlicpp.pt"))
    p.add_argument("--image", default=str(Path(__file__).resolve().parents[1] / "fastlic" / "data" / "kodim23.png"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args(argv)
    import torch

    from fastlic import codec
    from fastlic.io import image_to_tensor, read_image

    torch.set_num_threads(args.threads)
    m = codec.load_model(checkpoint=args.checkpoint)
    x = image_to_tensor(read_image(args.image))
    spent, start = collections.defaultdict(float), {}

    def hook(name):
        def pre(_mod, _inp):
            start[name] = time.perf_counter()

        def post(_mod, _inp, _out):
            spent[name] += time.perf_counter() - start[name]
        return pre, post

    for name, mod in m.named_children():
        for sub in (mod if isinstance(mod, torch.nn.ModuleList) else [mod]):
            if sub is not None:
                pre, post = hook(name)
                sub.register_forward_pre_hook(pre)
                sub.register_forward_hook(post)
    with torch.no_grad():
        for _ in range(args.repeat):
            spent.clear()
            t = time.perf_counter()
            coded = m.compress(x)
            enc_total, enc = time.perf_counter() - t, dict(spent)
            spent.clear()
            t = time.perf_counter()
            m.decompress(coded["strings"], coded["shape"])
            dec_total, dec = time.perf_counter() - t, dict(spent)
    print(f"compress {enc_total:.2f} s, decompress {dec_total:.2f} s ({args.threads} threads)")
    for k in sorted(set(enc) | set(dec), key=lambda k: -dec.get(k, 0.0)):
        print(f"  {k:30s} compress {enc.get(k, 0.0):6.3f} s   decompress {dec.get(k, 0.0):6.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
