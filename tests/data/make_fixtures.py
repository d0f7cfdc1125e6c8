"""Make the compact MLIC++ conformance fixtures in tests/data/mlicpp from the full ones of the shared folder.

    python tests/data/make_fixtures.py                 # reads $FASTLIC_SHARED/fixtures/mlicpp (default ../shared)

The full fixtures (``ref_{new,old}_seed0.pt``, 11.9 MB each: the official MLIC++ code's outputs on synthetic
weights for a 256x256 crop of kodim23; their README describes every tensor) stay in the shared folder. The
compact ones keep what tests/test_mlicpp_conformance.py needs to hold its claims, in float32 where it compares
floats, at about 2 MB each:

- in full: the teacher-forced inputs and everything the symbols, indexes and rounding margins are made from:
  ``input.uint8`` (``input.float`` is ``input.uint8 / 255.0``, checked here), ``fwd.y``, ``fwd.z``, ``fwd.z_hat``,
  ``fwd.hyper_params``, ``fwd.scales``, ``fwd.means``, ``fwd.y_hat``, ``fwd.z_likelihoods``; the integers
  ``enc.y_symbols``, ``enc.y_indexes``, ``enc.z_symbols`` (stored as int8, checked to fit) and the table facts
  ``cdf.gc.scale_table``, ``cdf.eb.{offset,cdf_length,medians}``;
- in part (``select``: the indexes kept along a dimension, which the test applies to its own tensors too): every
  context and LRP output (local, global intra and inter, channel context, both LRPs of every slice) on a seeded
  eighth of its channels (at least 4), ``fwd.y_likelihoods`` on an eighth of its channels, ``fwd.x_hat`` on every
  fourth row and column;
- not at all: ``fwd.ep_{anchor,nonanchor}.{i}``, whose values at the positions the coder reads are ``fwd.scales``
  and ``fwd.means`` (checked here; fastlic.testing.load_mlicpp_fixture puts them together), and what the tests do
  not read (the reference's rANS streams and CDF tables, ``dec.x_hat``, ``fwd.y_hat_anchor``).

Every tensor is stored LZMA-compressed (fastlic.testing.pack_tensor). The old variant shares ``fwd.y``, ``fwd.z``,
``fwd.hyper_params`` and the other tensors of g_a, h_a and h_s with the new one (the fixture weights give both
variants the same values for every common key): those are stored once, in the new variant's file, and checked
equal here. The fixture's weight generator ``make_weights.py`` and its key lists are copied beside them, byte for
byte. tests/test_mlicpp_conformance.py checks, where the shared folder exists, that the compact files and the
copies still match it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from fastlic.contexts import checkerboard as ckbd  # noqa: E402
from fastlic.testing import COMPACT_FORMAT, MLICPP_DATA, pack_tensor, shared_dir  # noqa: E402

FULL_KEYS = ["input.uint8", "fwd.y", "fwd.z", "fwd.z_hat", "fwd.hyper_params", "fwd.scales", "fwd.means",
             "fwd.y_hat", "fwd.z_likelihoods", "enc.y_symbols", "enc.y_indexes", "enc.z_symbols",
             "cdf.gc.scale_table", "cdf.eb.offset", "cdf.eb.cdf_length", "cdf.eb.medians"]
INT8_KEYS = ("enc.y_symbols", "enc.y_indexes", "enc.z_symbols")
CONTEXTS = ("local_context", "global_intra_context", "global_inter_context", "channel_context", "lrp_anchor",
            "lrp_nonanchor")
META_KEYS = ("format", "variant", "variant_description", "config", "seed", "keys_file", "make_weights_version",
             "weights_sha256", "n_params", "input_source", "input_source_sha256", "input_crop", "input_conversion",
             "threads", "torch_version", "compressai_version", "official_code", "stats")
COPIED = ("make_weights.py", "official_keys_new.tsv", "official_keys_old.tsv")


def channel_subset(key: str, channels: int) -> list[int]:
    """A seeded eighth of the channels (at least 4), other channels for every module."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    return sorted(int(c) for c in rng.choice(channels, max(4, channels // 8), replace=False))


def selections(R: dict) -> dict:
    sel = {k: [(1, channel_subset(k, R[k].shape[1]))] for k in R if k.split(".")[1:2] and k.split(".")[1] in CONTEXTS}
    sel["fwd.y_likelihoods"] = [(1, channel_subset("fwd.y_likelihoods", R["fwd.y_likelihoods"].shape[1]))]
    h, w = R["fwd.x_hat"].shape[-2:]
    sel["fwd.x_hat"] = [(2, list(range(1, h, 4))), (3, list(range(2, w, 4)))]
    return sel


def check_derivations(R: dict) -> None:
    assert torch.equal(R["input.float"], R["input.uint8"].to(torch.float32) / 255.0)
    c, n = R["meta"]["config"]["slice_ch"], R["meta"]["config"]["slice_num"]
    for i in range(n):
        both = torch.cat([R["fwd.scales"][:, i * c : (i + 1) * c], R["fwd.means"][:, i * c : (i + 1) * c]], 1)
        assert torch.equal(ckbd.anchor(R[f"fwd.ep_anchor.{i}"]), ckbd.anchor(both)), i
        assert torch.equal(ckbd.nonanchor(R[f"fwd.ep_nonanchor.{i}"]), ckbd.nonanchor(both)), i
    for k in INT8_KEYS:
        assert R[k].min() >= -128 and R[k].max() <= 127, k


def compact(R: dict, source: Path) -> tuple[dict, dict]:
    """-> (the compact fixture, its tensors before packing)."""
    check_derivations(R)
    sel = selections(R)
    kept = {k: R[k].to(torch.int8) if k in INT8_KEYS else R[k] for k in FULL_KEYS}
    for k, dims in sel.items():
        t = R[k]
        for d, idx in dims:
            t = t.index_select(d, torch.tensor(idx))
        kept[k] = t.contiguous()
    meta = {k: R["meta"][k] for k in META_KEYS if k in R["meta"]}
    meta["compact_of"] = {"file": source.name, "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
                          "made_by": "tests/data/make_fixtures.py"}
    return {"format": COMPACT_FORMAT, "meta": meta, "select": sel, "shared_from": {}}, kept


def main() -> None:
    src = shared_dir() / "fixtures" / "mlicpp"
    full = sorted(src.glob("ref_*.pt"))
    if not full:
        raise SystemExit(f"no full fixtures in {src} (set FASTLIC_SHARED)")
    MLICPP_DATA.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        shutil.copyfile(src / name, MLICPP_DATA / name)
    made = {}
    # the new variant first: the old one takes the tensors both share from it
    for path in sorted(full, key=lambda p: "_new_" not in p.name):
        R = torch.load(path, weights_only=True)
        out, kept = compact(R, path)
        stem = path.stem.replace("ref_", "compact_")
        base = made.get(("new", R["meta"]["seed"])) if R["meta"]["variant"] != "new" else None
        tensors = {}
        for k, t in kept.items():
            if base is not None and k in base[1] and torch.equal(base[1][k], t) and t.numel() > 256:
                out["shared_from"].setdefault(base[0], []).append(k)
            else:
                tensors[k] = pack_tensor(t)
        out["tensors"] = tensors
        dst = MLICPP_DATA / f"{stem}.pt"
        tmp = dst.with_name(dst.name + ".tmp")
        torch.save(out, tmp)
        os.replace(tmp, dst)
        made[(R["meta"]["variant"], R["meta"]["seed"])] = (dst.name, kept)
        print(f"{dst.relative_to(REPO)}: {dst.stat().st_size / 1e6:.2f} MB, {len(tensors)} tensors"
              + (f", {sum(map(len, out['shared_from'].values()))} from {base[0]}" if base else ""))


if __name__ == "__main__":
    main()
