"""Benchmark 2: entropy-coding throughput (symbols per second) and its share of the total coding time.

Two measurements:

* isolated: one million latent symbols drawn from discretized Gaussians (scales log-uniform in [0.11, 32],
  means uniform in [-4, 4]) coded through ``GaussianConditional.encode`` / ``decode`` with the default scale
  table (table lookup, escape handling and constriction's ANS included): symbols/s of encoding (collect +
  ``finish``) and of decoding;
* in the codec: the methods of :class:`fastlic.entropy.coder.Encoder` and :class:`~fastlic.entropy.coder.Decoder`
  are wrapped with timers while :func:`fastlic.codec.encode_image` / :func:`~fastlic.codec.decode_image` run on
  a test image, giving the symbols coded, the coder's time and its share of the total encode and decode time
  (the remainder is the neural networks, quantization and container).

    python benchmarks/entropy_coding.py --models mlicpp-tiny mlicpp-small mlicpp --threads 2
"""

from __future__ import annotations

import argparse
import functools
import math
import time

import _common as C

#: (class, method, how many symbols a call codes, given its arguments)
_WRAPPED = [
    ("Encoder", "encode", lambda a, k: int(getattr(a[0], "size", 0))),
    ("Encoder", "encode_rows", lambda a, k: int(getattr(a[0], "size", 0))),
    ("Encoder", "finish", lambda a, k: 0),
    ("Decoder", "__init__", lambda a, k: 0),
    ("Decoder", "decode", lambda a, k: int(getattr(a[0], "size", 0))),
    ("Decoder", "decode_rows", lambda a, k: int(a[0].shape[0])),
]


class CoderTimer:
    """Context manager that times every call of the coder methods in :data:`_WRAPPED`."""

    def __init__(self):
        self.time = {"Encoder": 0.0, "Decoder": 0.0}
        self.symbols = {"Encoder": 0, "Decoder": 0}
        self._saved = []

    def __enter__(self):
        from fastlic.entropy import coder

        for cls_name, meth, count in _WRAPPED:
            cls = getattr(coder, cls_name)
            orig = cls.__dict__.get(meth)
            if orig is None:
                continue
            self._saved.append((cls, meth, orig))
            setattr(cls, meth, self._wrap(orig, cls_name, count))
        return self

    def _wrap(self, fn, cls_name, count):
        @functools.wraps(fn)
        def timed(obj, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(obj, *args, **kwargs)
            finally:
                self.time[cls_name] += time.perf_counter() - t0
                self.symbols[cls_name] += count(args, kwargs)

        return timed

    def __exit__(self, *exc):
        for cls, meth, orig in reversed(self._saved):
            setattr(cls, meth, orig)
        return False


def isolated(n: int, seed: int = 0) -> dict:
    import numpy as np
    import torch

    from fastlic.entropy.coder import Decoder, Encoder
    from fastlic.entropy.gaussian import GaussianConditional

    gc = GaussianConditional()
    gc.update()
    rng = np.random.default_rng(seed)
    side = int(math.sqrt(n / 16))
    shape = (1, 16, side, side)
    scales = torch.from_numpy(np.exp(rng.uniform(math.log(0.11), math.log(32.0), shape))).float()
    means = torch.from_numpy(rng.uniform(-4, 4, shape)).float()
    y = means + scales * torch.from_numpy(rng.standard_normal(shape)).float()
    count = int(np.prod(shape))
    t0 = time.perf_counter()
    enc = Encoder()
    gc.encode(enc, y, scales, means)
    data = enc.finish()
    t_enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = gc.decode(Decoder(data), scales, means)
    t_dec = time.perf_counter() - t0
    assert torch.equal(out, torch.round(y - means) + means), "decoded symbols differ"
    return {"symbols": count, "bytes": len(data), "bits_per_symbol": 8 * len(data) / count,
            "encode_s": t_enc, "decode_s": t_dec, "encode_symbols_per_s": count / t_enc,
            "decode_symbols_per_s": count / t_dec}


def in_codec(model_name: str, h: int, w: int, image: str | None, device: str, repeat: int) -> dict:
    from fastlic.codec import decode_image, encode_image

    model = C.make_model(model_name, None, device)
    img = C.test_image(h, w, image)
    decode_image(encode_image(model, img), model)  # warm-up
    rows = []
    for _ in range(repeat):
        with CoderTimer() as ct:
            C.sync(device)
            t0 = time.perf_counter()
            data = encode_image(model, img)
            C.sync(device)
            t_enc = time.perf_counter() - t0
            t1 = time.perf_counter()
            decode_image(data, model)
            C.sync(device)
            t_dec = time.perf_counter() - t1
        rows.append((t_enc, t_dec, ct))
    t_enc, t_dec, ct = sorted(rows, key=lambda r: r[0] + r[1])[len(rows) // 2]
    e, d = ct.time["Encoder"], ct.time["Decoder"]
    return {"model": model_name, "size": C.size_label(h, w), "pixels": h * w, "bpp": 8 * len(data) / (h * w),
            "symbols_encoded": ct.symbols["Encoder"], "symbols_decoded": ct.symbols["Decoder"],
            "encode_total_s": t_enc, "decode_total_s": t_dec, "encode_coder_s": e, "decode_coder_s": d,
            "encode_coder_share": e / t_enc, "decode_coder_share": d / t_dec,
            "encode_symbols_per_s": ct.symbols["Encoder"] / e if e else None,
            "decode_symbols_per_s": ct.symbols["Decoder"] / d if d else None}


def markdown(data: dict) -> str:
    iso = data["isolated"]
    out = [f"# Entropy-coding throughput ({data['machine']['device']})\n\n",
           f"Machine: {data['machine']['summary']}. Command: `{data['command']}`.\n\n",
           f"Isolated (GaussianConditional + ANS, {iso['symbols']} symbols, {iso['bits_per_symbol']:.3f} "
           f"bits/symbol): encode {iso['encode_symbols_per_s'] / 1e6:.2f} M symbols/s, decode "
           f"{iso['decode_symbols_per_s'] / 1e6:.2f} M symbols/s.\n\n",
           "In the codec (coder = `fastlic.entropy.coder` Encoder/Decoder methods; share = coder time / total "
           "encode or decode time):\n\n"]
    rows = [[r["model"], r["size"], r["symbols_encoded"], r["encode_total_s"], r["encode_coder_s"],
             f"{100 * r['encode_coder_share']:.1f} %", r["encode_symbols_per_s"], r["decode_total_s"],
             r["decode_coder_s"], f"{100 * r['decode_coder_share']:.1f} %", r["decode_symbols_per_s"]]
            for r in data["in_codec"]]
    out.append(C.md_table(["model", "size", "symbols", "encode s", "enc coder s", "enc share", "enc sym/s",
                           "decode s", "dec coder s", "dec share", "dec sym/s"], rows))
    return "".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["mlicpp-tiny", "mlicpp-small", "mlicpp"])
    p.add_argument("--sizes", nargs="+", default=["768x512"], help="512 or WIDTHxHEIGHT (default Kodak's)")
    p.add_argument("--symbols", type=int, default=1_000_000, help="symbols of the isolated test")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--image", help="source image tiled to each size (default Kodak kodim23)")
    p.add_argument("--out-dir", help="default results/benchmarks")
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    data = {"benchmark": "entropy_coding", "command": C.command_line(),
            "machine": C.machine(args.device, args.threads), "weights": "random",
            "isolated": isolated(args.symbols), "in_codec": []}
    iso = data["isolated"]
    print(f"isolated: encode {iso['encode_symbols_per_s']:.3g} sym/s, decode {iso['decode_symbols_per_s']:.3g} sym/s",
          flush=True)
    for model in args.models:
        for size in args.sizes:
            r = in_codec(model, *C.parse_size(size), args.image, args.device, args.repeat)
            data["in_codec"].append(r)
            print(f"{model} {r['size']}: coder {100 * r['encode_coder_share']:.1f} % of encode, "
                  f"{100 * r['decode_coder_share']:.1f} % of decode; {r['encode_symbols_per_s']:.3g} / "
                  f"{r['decode_symbols_per_s']:.3g} sym/s", flush=True)
    stem = f"entropy_coding_{args.device.split(':')[0]}"
    print("wrote", *C.write_outputs(stem, data, markdown(data), args.out_dir))


if __name__ == "__main__":
    main()
