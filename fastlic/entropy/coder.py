"""Vectorized entropy coding of integer symbols with ``constriction``'s ANS coder.

How continuous entropy parameters become integer models (the design choice every codec here shares):

* **Tables.** A :class:`SymbolTables` holds a set of discrete distributions, each over a contiguous integer
  range ``[lo, hi]`` plus two *escape bins* ``lo - 1`` and ``hi + 1`` that carry the probability mass of the
  tails. The probabilities are quantized once to integers summing to ``2**PRECISION`` (:func:`quantize_pmf`)
  and stored as ``int32`` in the model's state, so that encoder and decoder build bit-identical coder models
  from the same checkpoint on any machine. A Gaussian conditional picks a table per symbol from its predicted
  scale (snapped *up* to a fixed log-spaced scale table, as in the MLIC++ reference); the factorized prior uses
  one table per channel.
* **Per-symbol rows.** :meth:`Encoder.encode_rows` takes an explicit probability row per symbol (for models
  such as Gaussian mixtures whose distributions cannot be tabulated); the caller must compute the rows
  bit-identically on both sides, which :mod:`fastlic.numerics` arranges (snapped parameters, exact arithmetic).
* **Guards.** Each stream starts with the flags of its guarded decisions (:mod:`fastlic.entropy.guard`): their
  count, the gaps between their positions (Elias-gamma, like escapes) and one bit each. The encoder knows them
  only after its pass, but ANS is a stack, so :meth:`Encoder.finish` can still put them first in decode order.
  An unflagged stream pays for one Elias-gamma zero (5 bits).
* **Checksum.** Encoder and decoder hash every coded integer (symbols and their table indexes) in coding order,
  and the stream's guard flags; :meth:`Encoder.digest` / :meth:`Decoder.digest` are the exact counterpart of each
  other.
* **End.** The last symbol of every stream in decode order is a *sentinel* (one uniform bit, set), coded first
  onto the empty coder, so the ANS state holds at least :data:`SENTINEL_BITS` bits until the sentinel is read:
  the state of the encoder only grows from there, and the decoder retraces it exactly. A decoder that finds
  fewer bits left at a chunk's end has run dry (a stream too short for what the header claims, or corrupted),
  and stops there with :class:`~fastlic.errors.FormatError` instead of decoding zeros from an empty coder to the
  end of the image; :meth:`Decoder.finish` reads the sentinel and requires the coder to be empty after it.
* **Escapes.** A symbol outside ``[lo, hi]`` is coded as its escape bin followed by its distance ``e >= 0`` to
  the bin in Elias-gamma form (``n = floor(log2(e + 1))`` with a uniform 5-bit model, then the ``n`` low bits of
  ``e + 1`` as uniform bits). Values are therefore never clipped and nothing is lost, at a cost of a few bits
  for each (rare) outlier.
* **Order.** Every ``encode_*`` call is one *chunk* of a single ANS stream. Within a chunk, symbols are grouped
  by table (ascending table index, positional order inside a group) so that each group is one vectorized
  constriction call; escapes follow the main symbols. The decoder knows the table index of every symbol before
  decoding a chunk (it computed the entropy parameters first), so it replays exactly the same grouping.

No Python loop runs per symbol or per position: per chunk there is one constriction call per distinct table
(at most a few dozen) plus two for escapes.
"""

from __future__ import annotations

import hashlib

import numpy as np

import constriction

from ..errors import CodingError, FormatError
from .guard import MAX_FLAGS, Guard

#: Probability precision of the integer tables (constriction's ANS coder works with 24-bit probabilities).
PRECISION = 24
_TOTAL = 1 << PRECISION

#: Largest escape distance the format can represent (Elias-gamma with a 5-bit length field).
MAX_ESCAPE = (1 << 31) - 2

_model = constriction.stream.model
_N_BITS_MODEL = _model.Uniform(32)
_BIT_MODEL = _model.Uniform(2)
#: valid bits an ANS coder holds right after the sentinel (a set uniform bit: state 2**(PRECISION - 1)) was coded
#: onto an empty coder; a decoder holds at least as many until it reads the sentinel
SENTINEL_BITS = PRECISION - 1


def _guard_bytes(positions: np.ndarray, bits: np.ndarray) -> bytes:
    # the guard flags as hashed by Encoder.digest / Decoder.digest: count, positions, sides
    return (len(positions).to_bytes(4, "little") + np.asarray(positions, "<i8").tobytes()
            + np.asarray(bits, np.uint8).tobytes())


def _give_remainder_to_top(counts: np.ndarray) -> np.ndarray:
    """Add what the rows of ``counts`` lack to ``2**PRECISION`` to each row's first largest entry."""
    deficit = _TOTAL - counts.sum(axis=-1)
    top = counts.argmax(axis=-1)
    np.put_along_axis(counts, top[..., None], np.take_along_axis(counts, top[..., None], -1) + deficit[..., None], -1)
    return counts


def quantize_pmf(pmf: np.ndarray) -> np.ndarray:
    """Quantize probability rows to positive integers that sum to ``2**PRECISION`` exactly.

    Args:
        pmf: float64 array ``[..., K]`` of non-negative numbers (need not be normalized).

    Every entry gets at least 1 (so every symbol of the range stays codable); the rounding remainder goes to
    the most probable entry of each row. The arithmetic is plain IEEE float64 multiply/floor and integer
    sums, so the result is reproducible on any machine from the same float64 input.
    """
    pmf = np.asarray(pmf, dtype=np.float64)
    k = pmf.shape[-1]
    if k < 1 or k > _TOTAL // 2:
        raise ValueError(f"cannot quantize a distribution over {k} symbols")
    pmf = np.where(np.isfinite(pmf) & (pmf > 0), pmf, 0.0)
    total = pmf.sum(axis=-1, keepdims=True)
    total = np.where(total > 0, total, 1.0)
    counts = np.floor(pmf / total * (_TOTAL - k)).astype(np.int64) + 1
    return _give_remainder_to_top(counts)


def quantize_pmf_exact(pmf: np.ndarray) -> np.ndarray:
    """:func:`quantize_pmf` in integer arithmetic, for rows that encoder and decoder compute bit-identically
    but must also *quantize* identically on any machine (no float reduction whose order could vary).

    ``pmf``: float64 ``[n, K]`` with rows summing to about 1. Each entry is floored to a multiple of 2**-30, the
    rows are scaled to ``2**PRECISION - K`` with integer floor division, every entry gets 1 more, and the
    remainder goes to the first most probable entry.
    """
    pmf = np.asarray(pmf, dtype=np.float64)
    k = pmf.shape[-1]
    if k < 1 or k > _TOTAL // 2:
        raise ValueError(f"cannot quantize a distribution over {k} symbols")
    a = np.floor(np.where(np.isfinite(pmf), np.clip(pmf, 0.0, 1.0), 0.0) * float(1 << 30)).astype(np.int64)
    total = np.maximum(a.sum(axis=-1, keepdims=True), 1)
    counts = a * (_TOTAL - k) // total + 1
    return _give_remainder_to_top(counts)


class SymbolTables:
    """A set of quantized discrete distributions with escape bins (see the module docstring).

    Args:
        counts: int array ``[T, K]``: row ``t`` holds the integer probabilities of symbols
            ``offsets[t] + k`` for ``k < lengths[t]``; entries past ``lengths[t]`` are ignored. The first and
            last entries of a row are the escape bins.
        lengths: int array ``[T]`` (each >= 3).
        offsets: int array ``[T]``: the symbol value of the first (escape) bin of each row.
    """

    def __init__(self, counts, lengths, offsets):
        self.counts = np.asarray(counts, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        self.offsets = np.asarray(offsets, dtype=np.int64).reshape(-1)
        if self.counts.ndim != 2 or len(self.lengths) != len(self.counts) or len(self.offsets) != len(self.counts):
            raise ValueError("tables: counts [T, K], lengths [T] and offsets [T] do not fit")
        if (self.lengths < 3).any() or (self.lengths > self.counts.shape[1]).any():
            raise ValueError("tables: every length must be in [3, K]")
        self.lo = self.offsets + 1  # first regular symbol
        self.hi = self.offsets + self.lengths - 2  # last regular symbol
        self._models: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self.lengths)

    def model(self, t: int):
        m = self._models.get(t)
        if m is None:
            row = self.counts[t, : self.lengths[t]].astype(np.float64) / _TOTAL
            m = _model.Categorical(row, perfect=False)
            self._models[t] = m
        return m

    def bits(self, symbols: np.ndarray, index: np.ndarray) -> float:
        """Ideal code length in bits of ``symbols`` under tables ``index`` (escapes counted as their bin)."""
        symbols, index = np.asarray(symbols, np.int64).ravel(), np.asarray(index, np.int64).ravel()
        pos = np.clip(symbols, self.lo[index] - 1, self.hi[index] + 1) - self.offsets[index]
        return float(-np.log2(self.counts[index, pos] / _TOTAL).sum())


def _escape_split(symbols: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """-> (bin positions clipped to the escape bins, escape distances for escaped symbols, escaped mask)."""
    below = symbols < lo
    above = symbols > hi
    clipped = np.clip(symbols, lo - 1, hi + 1)
    escaped = below | above
    dist = np.where(below, (lo - 1) - symbols, symbols - (hi + 1))[escaped]
    if dist.size and dist.max() > MAX_ESCAPE:
        raise CodingError(f"a latent value is {int(dist.max())} steps outside its model's range; cannot code it")
    return clipped, dist, escaped


def _gamma_encode(dist: np.ndarray):
    """Elias-gamma split of distances ``e >= 0``: -> (n per value, flat array of the low bits, MSB first)."""
    v = dist.astype(np.int64) + 1
    n = np.floor(np.log2(v.astype(np.float64))).astype(np.int64)
    # log2 of exact powers of two is exact in float64, but guard against off-by-one near 2**k anyway
    n = np.where((1 << (n + 1)) <= v, n + 1, n)
    n = np.where((1 << n) > v, n - 1, n)
    if n.size == 0:
        return n, np.zeros(0, np.int64)
    total = int(n.sum())
    owner = np.repeat(np.arange(len(v)), n)
    starts = np.cumsum(n) - n
    k = np.arange(total) - starts[owner]  # 0 .. n-1, MSB first
    bits = (v[owner] >> (n[owner] - 1 - k)) & 1
    return n, bits


def _gamma_decode(n: np.ndarray, bits: np.ndarray) -> np.ndarray:
    if n.size == 0:
        return np.zeros(0, np.int64)
    owner = np.repeat(np.arange(len(n)), n)
    starts = np.cumsum(n) - n
    k = np.arange(len(bits)) - starts[owner]
    v = np.ones(len(n), np.int64) << n
    np.add.at(v, owner, bits.astype(np.int64) << (n[owner] - 1 - k))
    return v - 1


class Encoder:
    """Collects chunks of symbols and writes them into one ANS stream (see the module docstring)."""

    def __init__(self):
        self._chunks: list[tuple] = []  # in decode order: (symbols int32, model or (family, rows))
        self.guard = Guard()
        self._hash = hashlib.blake2b(digest_size=8)

    def digest(self) -> bytes:
        """8-byte BLAKE2b over the BLAKE2b-64 of every integer coded so far (symbols and table indexes, in
        coding order) and the guard flags recorded so far (:func:`_guard_bytes`)."""
        return hashlib.blake2b(self._hash.digest() + _guard_bytes(*self.guard.flags()), digest_size=8).digest()

    def _push(self, symbols: np.ndarray, model, rows: np.ndarray | None = None):
        if symbols.size:
            self._chunks.append((np.ascontiguousarray(symbols, dtype=np.int32), model, rows))

    def _push_escapes(self, dist: np.ndarray):
        n, bits = _gamma_encode(dist)
        self._push(n, _N_BITS_MODEL)
        self._push(bits, _BIT_MODEL)

    def encode(self, symbols: np.ndarray, index: np.ndarray, tables: SymbolTables) -> None:
        """Append one chunk: ``symbols[i]`` coded with table ``index[i]`` (both flattened, same length)."""
        symbols = np.asarray(symbols, dtype=np.int64).ravel()
        index = np.asarray(index, dtype=np.int64).ravel()
        if symbols.shape != index.shape:
            raise ValueError("symbols and table indexes differ in length")
        if symbols.size == 0:
            return
        self._hash.update(symbols.tobytes() + index.tobytes())
        clipped, dist, _ = _escape_split(symbols, tables.lo[index], tables.hi[index])
        order = np.argsort(index, kind="stable")
        counts = np.bincount(index, minlength=len(tables))
        pos = (clipped - tables.offsets[index])[order]
        start = 0
        for t in np.flatnonzero(counts):
            c = counts[t]
            self._push(pos[start : start + c], tables.model(int(t)))
            start += c
        self._push_escapes(dist)

    def encode_rows(self, symbols: np.ndarray, pmf_rows: np.ndarray, offset: int) -> None:
        """Append one chunk with an explicit distribution per symbol.

        Args:
            symbols: int array ``[n]``.
            pmf_rows: int array ``[n, K]`` of quantized probabilities (:func:`quantize_pmf`) over symbols
                ``offset .. offset + K - 1``, whose first and last entries are escape bins.
            offset: symbol value of column 0.
        """
        symbols = np.asarray(symbols, dtype=np.int64).ravel()
        if symbols.size == 0:
            return
        self._hash.update(symbols.tobytes())
        k = pmf_rows.shape[1]
        lo = np.full_like(symbols, offset + 1)
        hi = np.full_like(symbols, offset + k - 2)
        clipped, dist, _ = _escape_split(symbols, lo, hi)
        rows = np.ascontiguousarray(pmf_rows, dtype=np.float64) / _TOTAL
        self._push(clipped - offset, _model.Categorical(perfect=False), rows)
        self._push_escapes(dist)

    def finish(self) -> bytes:
        """Encode every chunk (in reverse, as ANS is a stack) and return the stream's bytes."""
        positions, bits = self.guard.flags()
        gaps = np.diff(positions, prepend=-1) - 1
        body, self._chunks = self._chunks, []
        self._push_escapes(np.array([len(positions)], np.int64))
        self._push_escapes(gaps)
        self._push(bits, _BIT_MODEL)
        self._chunks += body
        self._push(np.ones(1, np.int32), _BIT_MODEL)  # the sentinel: decoded last, so encoded first
        coder = constriction.stream.stack.AnsCoder()
        for symbols, model, rows in reversed(self._chunks):
            if rows is None:
                coder.encode_reverse(symbols, model)
            else:
                coder.encode_reverse(symbols, model, rows)
        self._chunks = []
        return coder.get_compressed().astype("<u4").tobytes()


class Decoder:
    """Reads chunks back in the order an :class:`Encoder` wrote them."""

    def __init__(self, data: bytes):
        if len(data) % 4:
            raise FormatError("entropy-coded stream length is not a multiple of 4 bytes")
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        try:
            self._coder = constriction.stream.stack.AnsCoder(words)
        except Exception as exc:  # constriction rejects e.g. a stream ending in a zero word
            raise FormatError(f"entropy-coded stream is invalid ({exc})") from None
        self._hash = hashlib.blake2b(digest_size=8)
        (n,) = self._pop_escapes(1)
        if n > MAX_FLAGS:
            raise FormatError(f"entropy-coded stream is corrupted ({n} guard flags)")
        gaps = self._pop_escapes(int(n))
        bits = self._pop(_BIT_MODEL, int(n))
        self._check_supply()
        self.guard = Guard(np.cumsum(gaps + 1) - 1, bits)

    def digest(self) -> bytes:
        """Counterpart of :meth:`Encoder.digest` over the integers decoded so far and the guard flags."""
        return hashlib.blake2b(self._hash.digest() + _guard_bytes(self.guard.positions, self.guard.bits),
                               digest_size=8).digest()

    def _check_supply(self) -> None:
        # see the module docstring ("End"): a valid stream never holds fewer bits before its sentinel
        if self._coder.num_valid_bits() < SENTINEL_BITS:
            raise FormatError("entropy-coded stream ran dry (it holds fewer symbols than the image it belongs to "
                              "needs: truncated, corrupted, or a header that claims a larger image)")

    def finish(self) -> None:
        """Read the sentinel and check that nothing is left: the end of a complete, consistent decode."""
        self._check_supply()
        if int(self._pop(_BIT_MODEL, 1)[0]) != 1 or not self._coder.is_empty():
            raise FormatError(f"entropy-coded stream does not end where its last symbol does "
                              f"({self._coder.num_valid_bits()} bits left over)")

    def _pop(self, model, n: int, rows: np.ndarray | None = None) -> np.ndarray:
        if n == 0:
            return np.zeros(0, np.int64)
        try:
            if rows is None:
                out = self._coder.decode(model, n)
            else:
                out = self._coder.decode(model, rows)
        except Exception as exc:
            raise FormatError(f"entropy-coded stream is corrupted ({exc})") from None
        return np.asarray(out, dtype=np.int64)

    def _pop_escapes(self, count: int) -> np.ndarray:
        n = self._pop(_N_BITS_MODEL, count)
        self._check_supply()  # before sum(n) bits are decoded (and allocated) from a stream that ran dry
        bits = self._pop(_BIT_MODEL, int(n.sum()))
        return _gamma_decode(n, bits)

    def decode(self, index: np.ndarray, tables: SymbolTables) -> np.ndarray:
        """Decode one chunk coded by :meth:`Encoder.encode` with these table indexes."""
        index = np.asarray(index, dtype=np.int64).ravel()
        if index.size == 0:
            return np.zeros(0, np.int64)
        order = np.argsort(index, kind="stable")
        counts = np.bincount(index, minlength=len(tables))
        parts = [self._pop(tables.model(int(t)), int(counts[t])) for t in np.flatnonzero(counts)]
        pos = np.empty(index.size, np.int64)
        pos[order] = np.concatenate(parts)
        symbols = self._resolve_escapes(pos + tables.offsets[index], tables.lo[index], tables.hi[index])
        self._hash.update(symbols.tobytes() + index.tobytes())
        self._check_supply()
        return symbols

    def decode_rows(self, pmf_rows: np.ndarray, offset: int) -> np.ndarray:
        """Decode one chunk coded by :meth:`Encoder.encode_rows` with the same rows and offset."""
        if pmf_rows.shape[0] == 0:
            return np.zeros(0, np.int64)
        k = pmf_rows.shape[1]
        rows = np.ascontiguousarray(pmf_rows, dtype=np.float64) / _TOTAL
        symbols = self._pop(_model.Categorical(perfect=False), len(rows), rows) + offset
        lo = np.full_like(symbols, offset + 1)
        hi = np.full_like(symbols, offset + k - 2)
        symbols = self._resolve_escapes(symbols, lo, hi)
        self._hash.update(symbols.tobytes())
        self._check_supply()
        return symbols

    def _resolve_escapes(self, symbols, lo, hi):
        below = symbols < lo
        above = symbols > hi
        escaped = below | above
        count = int(escaped.sum())
        if count:
            dist = self._pop_escapes(count)
            sign = np.where(below[escaped], -1, 1)
            symbols[escaped] = symbols[escaped] + sign * dist
        return symbols

    def is_exhausted(self) -> bool:
        """True when only the sentinel is left (a complete, consistent decode; :meth:`finish` reads it)."""
        rest = self._coder.clone()
        try:
            return int(rest.decode(_BIT_MODEL, 1)[0]) == 1 and bool(rest.is_empty())
        except Exception:  # constriction's errors have no public type; an undecodable rest is not exhausted
            return False


class TableOwner:
    """Mixin for entropy models that keep their :class:`SymbolTables` as state-dict buffers, so that a
    checkpoint carries the exact integer tables its streams were coded with."""

    _TABLE_BUFFERS = ("_table_counts", "_table_lengths", "_table_offsets")

    def _init_tables(self):
        import torch

        for name in self._TABLE_BUFFERS:
            self.register_buffer(name, torch.zeros(0, dtype=torch.int32))
        self._tables = None

    def _set_tables(self, counts, lengths, offsets):
        import torch

        self._table_counts = torch.as_tensor(np.asarray(counts, np.int32))
        self._table_lengths = torch.as_tensor(np.asarray(lengths, np.int32))
        self._table_offsets = torch.as_tensor(np.asarray(offsets, np.int32))
        self._tables = None

    @property
    def tables(self) -> SymbolTables:
        if self._table_counts.numel() == 0:
            raise RuntimeError(f"{type(self).__name__}: call update() before coding")
        if self._tables is None:
            self._tables = SymbolTables(*(getattr(self, n).cpu().numpy() for n in self._TABLE_BUFFERS))
        return self._tables

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the tables change size with update(); take the stored sizes so that loading never fails on shape
        for name in self._TABLE_BUFFERS + getattr(self, "_EXTRA_RESIZABLE", ()):
            if prefix + name in state_dict:
                setattr(self, name, state_dict[prefix + name].new_empty(state_dict[prefix + name].shape))
        self._tables = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
