"""Random-mutation fuzzing of the .flic decoder as users run it; needs no fuzzing library.

    python fuzz/mutate_flic.py --model mlicpp-mini-vr --runs 10000 --seed 1 --out results/fuzz/run.json
    python fuzz/mutate_flic.py --checkpoint tests/data/econtextformer-small-vr-6074.pt --runs 2000 --out ...

Seeds are real files of the model: crops of ``fastlic/data/kodim23.png`` at several qualities, tiled and not,
one with ICC and EXIF metadata. Each input is a seed with one mutation (a header field set to an edge value,
stream bytes flipped, a stream truncated or grown with its length fixed, bytes moved between streams, streams
swapped or taken from another seed, the file cut or extended), then made valid to a degree (``--modes``):

* ``crc``: the CRC-32 recomputed, as any tool that edits a file does (the acceptance case of issue 44);
* ``check``: the header check recomputed too, as a tool that knows the format would: this reaches the per-stream
  checksums, the coder's checks and the field validation behind the header check;
* ``raw``: nothing fixed (nearly all end at the CRC).

Each input goes through what ``fastlic decompress`` runs (:func:`fastlic.codec.read_header`, then
:func:`fastlic.codec.decode_image`). A **finding** is any exception that is not a ``FastlicError``, any image
returned that differs from the seed's own decoded image, and any decode slower than a bound proportional to the
file's size (``2 s + 10 x`` the seconds per byte of the slowest seed ``x`` the input's bytes, and never more than
20 s). The JSON written by ``--out`` holds the exact command, the seeds, the counts per outcome and mode, the
slowest decodes and the findings (whose inputs are written beside it).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import re
import resource
import shlex
import signal
import struct
import sys
import time
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fastlic import codec, container  # noqa: E402
from fastlic.errors import FastlicError  # noqa: E402
from fastlic.io import read_image  # noqa: E402

#: (name, y0, x0, height, width, quality as a fraction of the model's range, tile side or None)
FULL_SEEDS = [
    ("64x64-q0", 100, 200, 64, 64, 0.0, None),
    ("64x96-q0.5", 300, 40, 64, 96, 0.5, None),
    ("96x130-q1", 150, 500, 96, 130, 1.0, None),
    ("40x200-q0.3", 20, 300, 40, 200, 0.3, None),
    ("150x140-q0.25-tiled", 200, 300, 150, 140, 0.25, 64),
    ("130x70-q0.75-tiled", 10, 10, 130, 70, 0.75, 64),
]
#: the short run of the test suite: one file of each kind
SMALL_SEEDS = [FULL_SEEDS[1], ("96x100-q0.25-tiled", 200, 300, 96, 100, 0.25, 64)]
#: metadata on one seed: an ICC header (size, 'acsp') with no tags, and a minimal little-endian TIFF
ICC = (132).to_bytes(4, "big") + bytes(32) + b"acsp" + bytes(88) + bytes(4)
EXIF = b"Exif\0\0II*\0\x08\0\0\0" + bytes(6)
#: no decode of a file this size may take longer, whatever the bound says (issue 44's acceptance: 20 s)
HARD_LIMIT_S = 20.0


@dataclass
class Seed:
    name: str
    data: bytes
    image: np.ndarray
    seconds: float
    layout: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def layout(data: bytes) -> dict:
    """Offsets of the fields of a valid version-3 file (docs/format.md): ``fields`` name -> (offset, struct
    format), ``entries`` (offset of each stream's length, in file order), ``streams`` (start, length)."""
    f = container.unpack(data)
    name_len = data[10]
    body = 11 + name_len
    fields = {"version": (4, "<B"), "flags": (5, "<B"), "header_length": (6, "<I"), "name_length": (10, "<B"),
              "name_byte": (11 + name_len // 2, "<B")}
    for name, off, fmt in [("fingerprint", 0, "<Q"), ("height", 16, "<I"), ("width", 20, "<I"),
                           ("channels", 24, "<B"), ("bit_depth", 25, "<B"), ("pad_multiple", 26, "<H"),
                           ("quality", 28, "<d"), ("numeric_mode", 36, "<B"), ("tile_h", 37, "<I"),
                           ("tile_w", 41, "<I"), ("overlap", 45, "<H"), ("streams_per_tile", 47, "<B"),
                           ("tiles", 48, "<I")]:
        fields[name] = (body + off, fmt)
    pos = body + container._BODY.size
    fields["header_check"] = (pos, "<Q")
    pos += 8
    if data[5] & container.FLAG_METADATA:
        fields["icc_length"], fields["exif_length"] = (pos, "<I"), (pos + 4, "<I")
        pos += 8
    n = sum(len(t.streams) for t in f.tiles)
    entries = [pos + 12 * i for i in range(n)]
    start = pos + 12 * n + len(f.icc) + len(f.exif)
    streams = []
    for t in f.tiles:
        for s in t.streams:
            streams.append((start, len(s)))
            start += len(s)
    return {"fields": fields, "entries": entries, "streams": streams,
            "metadata": (pos + 12 * n, len(f.icc) + len(f.exif))}


def make_seeds(model, specs=FULL_SEEDS) -> list[Seed]:
    image = read_image(REPO / "fastlic" / "data" / "kodim23.png")
    top = (model.num_rates - 1) if hasattr(model, "set_quality") else None
    seeds = []
    for i, (name, y0, x0, h, w, q, tile) in enumerate(specs):
        crop = np.ascontiguousarray(image[y0 : y0 + h, x0 : x0 + w])
        meta = dict(icc=ICC, exif=EXIF) if i == 1 else {}
        quality = None if top is None else q * top
        data = codec.encode_image(model, crop, quality=quality, tile=tile, overlap=16, **meta)
        t0 = time.perf_counter()
        decoded = codec.decode_image(data, model)
        seconds = time.perf_counter() - t0
        seeds.append(Seed(name + ("+metadata" if meta else ""), data, decoded, seconds, layout(data),
                          {"crop": [y0, x0, h, w], "quality": quality, "tile": tile, "bytes": len(data),
                           "decode_s": round(seconds, 4), "metadata": bool(meta)}))
    return seeds


# ---------------------------------------------------------------------------------------------- mutations
def _edge_ints(rng, old: int, bits: int) -> int:
    top = (1 << bits) - 1
    choices = [0, 1, top, old + 1, old - 1, old ^ (1 << int(rng.integers(bits))), old * 2, old // 2,
               int(rng.integers(0, 1 << 62)) & top, 2240, 4096, 65536, 65537, 16]
    return int(choices[int(rng.integers(len(choices)))]) & top


def _edge_quality(rng, top: float) -> float:
    grid = int(rng.integers(0, int(top * 1024) + 1)) / 1024
    choices = [math.nan, math.inf, -math.inf, -0.0, -1.0, top, top + 1e-9, top + 1, grid, grid + 1 / 4096,
               float(rng.uniform(0, top)), 1e308, -1e-300, 2.0 ** -1074]
    return choices[int(rng.integers(len(choices)))]


def mutate_field(rng, data: bytearray, lay: dict, top: float) -> str:
    name = sorted(lay["fields"])[int(rng.integers(len(lay["fields"])))]
    off, fmt = lay["fields"][name]
    if name == "quality":
        value = _edge_quality(rng, top)
        struct.pack_into(fmt, data, off, value)
        return f"field quality={value!r}"
    bits = 8 * struct.calcsize(fmt)
    (old,) = struct.unpack_from(fmt, data, off)
    value = _edge_ints(rng, old, bits)
    struct.pack_into(fmt, data, off, value)
    return f"field {name}={value}"


def mutate_entry(rng, data: bytearray, lay: dict) -> str:
    """A stream's length or checksum in the tile table."""
    k = int(rng.integers(len(lay["entries"])))
    off = lay["entries"][k]
    if rng.random() < 0.6:
        (old,) = struct.unpack_from("<I", data, off)
        value = _edge_ints(rng, old, 32)
        struct.pack_into("<I", data, off, value)
        return f"entry {k} length={value}"
    data[off + 4 + int(rng.integers(8))] ^= 1 << int(rng.integers(8))
    return f"entry {k} checksum bit"


def _streams(data: bytes, lay: dict) -> list[bytearray]:
    return [bytearray(data[s : s + n]) for s, n in lay["streams"]]


def _rebuild(data: bytes, lay: dict, streams: list) -> bytearray:
    """The file with other stream bytes, their lengths written into the tile table (checksums kept)."""
    first = lay["streams"][0][0]
    head = bytearray(data[:first])
    for off, s in zip(lay["entries"], streams):
        struct.pack_into("<I", head, off, len(s))
    return head + b"".join(bytes(s) for s in streams) + data[-4:]


def mutate_stream_bytes(rng, data: bytes, lay: dict) -> tuple[bytearray, str]:
    streams = _streams(data, lay)
    k = int(rng.integers(len(streams)))
    s = streams[k]
    if not s:
        return bytearray(data), f"stream {k} empty (unchanged)"
    how = int(rng.integers(4))
    if how == 0:
        for _ in range(int(rng.integers(1, 5))):
            s[int(rng.integers(len(s)))] ^= 1 << int(rng.integers(8))
        what = "bit flips"
    elif how == 1:
        for _ in range(int(rng.integers(1, 5))):
            s[int(rng.integers(len(s)))] = int(rng.integers(256))
        what = "random bytes"
    elif how == 2:
        a = int(rng.integers(len(s)))
        b = min(len(s), a + int(rng.integers(1, 17)))
        s[a:b] = bytes([0 if rng.random() < 0.5 else 0xFF]) * (b - a)
        what = "run of 00/ff"
    else:
        i = int(rng.integers(len(s) - len(s) % 4 or 1)) // 4 * 4
        s[i : i + 4] = bytes(4)
        what = "zero word"
    return _rebuild(data, lay, streams), f"stream {k} {what}"


def mutate_stream_size(rng, data: bytes, lay: dict) -> tuple[bytearray, str]:
    streams = _streams(data, lay)
    k = int(rng.integers(len(streams)))
    s = streams[k]
    how = int(rng.integers(5))
    if how == 0 and s:
        n = int(rng.integers(0, len(s)))
        streams[k] = s[:n]
        what = f"truncated to {n}"
    elif how == 1 and s:
        n = int(rng.integers(1, len(s) + 1))
        streams[k] = s[n:]
        what = f"first {n} bytes dropped"
    elif how == 2:
        extra = bytes(rng.integers(0, 256, int(rng.choice([1, 3, 4, 8, 64]))).astype(np.uint8))
        streams[k] = s + extra if rng.random() < 0.5 else bytearray(extra) + s
        what = f"{len(extra)} bytes added"
    elif how == 3 and s:
        a = int(rng.integers(len(s)))
        del s[a : a + int(rng.integers(1, 9))]
        what = "bytes deleted"
    else:
        streams[k] = bytearray()
        what = "emptied"
    return _rebuild(data, lay, streams), f"stream {k} {what}"


def mutate_boundary(rng, data: bytes, lay: dict) -> tuple[bytearray, str]:
    """Bytes moved from one stream to the next (their lengths changed, the file the same)."""
    if len(lay["streams"]) < 2:
        return bytearray(data), "boundary (one stream)"
    k = int(rng.integers(len(lay["streams"]) - 1))
    d = int(rng.choice([-8, -4, -1, 1, 4, 8]))
    head = bytearray(data)
    a, b = lay["streams"][k][1], lay["streams"][k + 1][1]
    if not (0 <= a + d and 0 <= b - d):
        d = -d
    if not (0 <= a + d and 0 <= b - d):
        return head, "boundary (too short)"
    struct.pack_into("<I", head, lay["entries"][k], a + d)
    struct.pack_into("<I", head, lay["entries"][k + 1], b - d)
    return head, f"boundary {k}/{k + 1} moved {d}"


def mutate_swap(rng, data: bytes, lay: dict, other: Seed | None) -> tuple[bytearray, str]:
    streams = _streams(data, lay)
    if other is not None and rng.random() < 0.5:
        theirs = _streams(other.data, other.layout)
        k, j = int(rng.integers(len(streams))), int(rng.integers(len(theirs)))
        streams[k] = theirs[j]
        return _rebuild(data, lay, streams), f"stream {k} from {other.name} stream {j}"
    if len(streams) < 2:
        return bytearray(data), "swap (one stream)"
    k, j = rng.choice(len(streams), 2, replace=False)
    streams[k], streams[j] = streams[j], streams[k]
    return _rebuild(data, lay, streams), f"streams {k} and {j} swapped"


def mutate_file(rng, data: bytes) -> tuple[bytearray, str]:
    out = bytearray(data)
    how = int(rng.integers(3))
    if how == 0:
        n = int(rng.integers(0, len(out)))
        return out[:n] + out[-4:] if rng.random() < 0.5 else out[:n], f"file cut to {n}"
    if how == 1:
        extra = bytes(rng.integers(0, 256, int(rng.choice([1, 4, 100]))).astype(np.uint8))
        return out[:-4] + extra + out[-4:], f"{len(extra)} bytes appended"
    i = int(rng.integers(len(out)))
    out[i] ^= 1 << int(rng.integers(8))
    return out, f"bit flip at {i}"


MUTATORS = {"field": 0.30, "entry": 0.08, "stream_bytes": 0.25, "stream_size": 0.15, "boundary": 0.07,
            "swap": 0.07, "file": 0.05, "multi": 0.03}


def mutate(rng, seed: Seed, seeds: list[Seed], top: float, kind: str | None = None) -> tuple[bytes, str, str]:
    kind = kind or rng.choice(list(MUTATORS), p=np.array(list(MUTATORS.values())) / sum(MUTATORS.values()))
    if kind == "multi":
        # one change of the streams, then one or two of header fields or table entries: the streams' changes
        # keep the header's size, so the seed's offsets of fields and entries still hold
        data, first, _ = mutate(rng, seed, seeds, top, str(rng.choice(["stream_bytes", "stream_size", "boundary"])))
        data, parts = bytearray(data), [first]
        for _ in range(int(rng.integers(1, 3))):
            if rng.random() < 0.6:
                parts.append(mutate_field(rng, data, seed.layout, top))
            else:
                parts.append(mutate_entry(rng, data, seed.layout))
        return bytes(data), " + ".join(parts), "multi"
    data = bytearray(seed.data)
    if kind == "field":
        what = mutate_field(rng, data, seed.layout, top)
    elif kind == "entry":
        what = mutate_entry(rng, data, seed.layout)
    elif kind == "stream_bytes":
        data, what = mutate_stream_bytes(rng, seed.data, seed.layout)
    elif kind == "stream_size":
        data, what = mutate_stream_size(rng, seed.data, seed.layout)
    elif kind == "boundary":
        data, what = mutate_boundary(rng, seed.data, seed.layout)
    elif kind == "swap":
        other = seeds[int(rng.integers(len(seeds)))]
        data, what = mutate_swap(rng, seed.data, seed.layout, None if other is seed else other)
    else:
        data, what = mutate_file(rng, seed.data)
    return bytes(data), what, kind


def fix(data: bytes, mode: str) -> bytes:
    """Make a mutant valid to the degree ``mode`` says: ``raw`` nothing, ``crc`` the CRC-32, ``check`` the
    header check (over the mutated fields, wherever the mutated name length puts them) and then the CRC."""
    if mode == "raw" or len(data) < 4:
        return data
    body = bytearray(data[:-4])
    if mode == "check" and len(body) > 10:
        end = 11 + body[10] + container._BODY.size
        if end + 8 <= len(body):
            body[end : end + 8] = container.header_digest(bytes(body[:5] + body[10:end]))[:8]
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


# ---------------------------------------------------------------------------------------------- running
class _Timeout(BaseException):
    """Raised by the alarm inside a decode that runs past the hard limit (not an Exception: nothing catches it)."""


def _alarm(_signum, _frame):
    raise _Timeout()


def outcome_key(exc: BaseException) -> str:
    """The error's class and message with the file name, numbers and quoted values taken out (for counting)."""
    msg = str(exc).split(": ", 1)[-1]
    msg = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", msg)
    msg = re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?|\b(nan|inf)\b", "#", msg)
    msg = re.sub(r"\(fingerprint [0-9a-f#]+, decoder has [0-9a-f#]+\)", "(fingerprints)", msg)
    return f"{type(exc).__name__}: {msg[:110]}"


def decode(model, data: bytes):
    """What ``fastlic decompress`` runs on the bytes of a file."""
    f = codec.read_header(data, "mutant")
    return codec.decode_image(f, model, "mutant")


def run(model, seeds: list[Seed], runs: int, seed: int = 0, modes: dict | None = None,
        max_seconds: float | None = None, findings_dir: Path | None = None, log=None) -> dict:
    """Fuzz ``runs`` inputs; -> the summary (see the module docstring)."""
    modes = modes or {"crc": 1.0}
    rng = np.random.default_rng(seed)
    names, weights = list(modes), np.array(list(modes.values()), np.float64)
    top = float(model.num_rates - 1) if hasattr(model, "set_quality") else 4.0
    rate = max(s.seconds / len(s.data) for s in seeds)  # seconds per byte of the slowest seed

    def bound(nbytes: int) -> float:
        return min(HARD_LIMIT_S, 2.0 + 10.0 * rate * nbytes)

    outcomes = {m: {} for m in names}
    by_kind: dict = {}
    findings, slowest = [], []
    counts = {m: 0 for m in names}
    crc_valid = 0
    old = signal.signal(signal.SIGALRM, _alarm)
    t_start = time.perf_counter()
    done = 0
    try:
        for i in range(runs):
            if max_seconds is not None and time.perf_counter() - t_start > max_seconds:
                break
            s = seeds[int(rng.integers(len(seeds)))]
            mode = names[int(rng.choice(len(names), p=weights / weights.sum()))]
            mutant, what, kind = mutate(rng, s, seeds, top)
            mutant = fix(mutant, mode)
            if len(mutant) >= 4 and zlib.crc32(mutant[:-4]) == struct.unpack("<I", mutant[-4:])[0]:
                crc_valid += 1
            counts[mode] += 1
            finding = None
            t0 = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, HARD_LIMIT_S * 3)
            try:
                image = decode(model, mutant)
            except FastlicError as exc:
                key = outcome_key(exc)
            except _Timeout:
                key = "TIMEOUT"
                finding = f"decode ran past {HARD_LIMIT_S * 3:.0f} s"
            except Exception as exc:  # the finding this harness looks for
                key = f"EXCEPTION {type(exc).__name__}"
                finding = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            else:
                if image.shape == s.image.shape and np.array_equal(image, s.image):
                    key = "same image as the seed"
                else:
                    key = "WRONG IMAGE"
                    finding = f"an image {image.shape} that differs from the seed's"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            seconds = time.perf_counter() - t0
            if finding is None and seconds > bound(len(mutant)):
                finding = f"decode took {seconds:.2f} s, above the bound {bound(len(mutant)):.2f} s"
            outcomes[mode][key] = outcomes[mode].get(key, 0) + 1
            k = by_kind.setdefault(kind, {"inputs": 0, "refused": 0, "same_image": 0, "findings": 0})
            k["inputs"] += 1
            k["findings" if finding else ("same_image" if key == "same image as the seed" else "refused")] += 1
            record = {"input": i, "seed": s.name, "mode": mode, "mutation": what, "bytes": len(mutant),
                      "seconds": round(seconds, 4), "outcome": key}
            slowest = sorted(slowest + [record], key=lambda r: -r["seconds"])[:10]
            if finding:
                record["finding"] = finding
                if findings_dir is not None:
                    findings_dir.mkdir(parents=True, exist_ok=True)
                    record["file"] = str(findings_dir / f"finding-{seed}-{i}.flic")
                    Path(record["file"]).write_bytes(mutant)
                findings.append(record)
                if log:
                    log(f"FINDING {record}")
            done = i + 1
            if log and done % 1000 == 0:
                log(f"{done} inputs, {time.perf_counter() - t_start:.0f} s, {len(findings)} findings")
    finally:
        signal.signal(signal.SIGALRM, old)
    return {
        "inputs": done,
        "inputs_per_mode": counts,
        "crc_valid_inputs": crc_valid,
        "seconds": round(time.perf_counter() - t_start, 1),
        "time_bound": f"min({HARD_LIMIT_S:g} s, 2 s + 10 x {rate:.3g} s/byte x bytes) (the slowest seed's "
                      f"decode seconds per byte)",
        "outcomes": {m: dict(sorted(o.items(), key=lambda kv: -kv[1])) for m, o in outcomes.items()},
        "by_mutation": by_kind,
        "findings": findings,
        "slowest": slowest,
    }


def _modes(text: str) -> dict:
    out = {}
    for part in text.split(","):
        name, _, w = part.partition(":")
        if name not in ("raw", "crc", "check"):
            raise argparse.ArgumentTypeError(f"unknown mode {name!r} (raw, crc, check)")
        out[name] = float(w or 1)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="bundled model (default: the bundled default)")
    p.add_argument("--checkpoint", help="weights to fuzz instead (a fastlic checkpoint)")
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--modes", type=_modes, default=_modes("crc:3,check:1"),
                   help="comma list of raw, crc, check with optional weights, e.g. crc:3,check:1 (default)")
    p.add_argument("--seeds", choices=("full", "small"), default="full")
    p.add_argument("--max-seconds", type=float, help="stop after this long")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="JSON file for the results (findings' inputs are written beside it)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = codec.load_model(args.model, args.checkpoint)
    seeds = make_seeds(model, FULL_SEEDS if args.seeds == "full" else SMALL_SEEDS)
    setup = time.perf_counter() - t0
    out = Path(args.out) if args.out else None
    summary = run(model, seeds, args.runs, args.seed, args.modes, args.max_seconds,
                  out.with_suffix("") if out else None, log=lambda m: print(m, file=sys.stderr, flush=True))
    result = {
        "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0]] + list(sys.argv[1:] if argv is None
                                                                                  else argv)),
        "model": model.model_name,
        "weights": codec.fingerprint(model).hex(),
        "checkpoint": args.checkpoint,
        "format_version": container.VERSION,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''} {sys.platform}, torch {torch.__version__}, "
                   f"python {platform.python_version()}".replace("  ", " "),
        "seeds": [{"name": s.name, **s.info} for s in seeds],
        "modes": args.modes,
        "setup_seconds": round(setup, 1),
        **summary,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    text = json.dumps(result, indent=1)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    totals = {m: sum(o.values()) for m, o in summary["outcomes"].items()}
    print(f"{summary['inputs']} inputs ({totals}), {summary['crc_valid_inputs']} with a valid CRC, "
          f"{len(summary['findings'])} findings, slowest {summary['slowest'][0]['seconds'] if summary['slowest'] else 0} s, "
          f"{summary['seconds']} s")
    return 1 if summary["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
