import numpy as np
import pytest

from fastlic.entropy.coder import PRECISION, Decoder, Encoder, SymbolTables, quantize_pmf
from fastlic.errors import FormatError


def _tables(rng, t=6, k=15):
    lengths = rng.integers(3, k + 1, t)
    offsets = -(lengths // 2) + rng.integers(-3, 4, t)
    counts = np.zeros((t, k), np.int64)
    for i, n in enumerate(lengths):
        counts[i, :n] = quantize_pmf(rng.random(n) ** 3)
    return SymbolTables(counts, lengths, offsets)


def test_quantize_pmf_sums_exactly_and_keeps_every_symbol():
    rng = np.random.default_rng(1)
    pmf = rng.random((50, 40))
    pmf[:, 5] = 0.0
    pmf[3] = 1e-300
    q = quantize_pmf(pmf)
    assert (q.sum(-1) == 1 << PRECISION).all()
    assert (q >= 1).all()
    # close to the input distribution where probabilities are not tiny
    p = pmf[0] / pmf[0].sum()
    assert np.abs(q[0] / (1 << PRECISION) - p).max() < 1e-5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_with_escapes_and_rows(seed):
    rng = np.random.default_rng(seed)
    tables = _tables(rng)
    chunks = []
    enc = Encoder()
    for _ in range(3):
        n = int(rng.integers(0, 3000))
        idx = rng.integers(0, len(tables), n)
        sym = rng.integers(-12, 12, n)
        if n > 4:  # far outliers go through the escape code
            sym[:4] = [10 ** 6, -(10 ** 6), 2 ** 30, -7]
        enc.encode(sym, idx, tables)
        rows = quantize_pmf(rng.random((n // 3, 9)))
        rsym = rng.integers(-8, 8, n // 3)
        enc.encode_rows(rsym, rows, -4)
        chunks.append((idx, sym, rows, rsym))
    data = enc.finish()
    dec = Decoder(data)
    for idx, sym, rows, rsym in chunks:
        assert np.array_equal(dec.decode(idx, tables), sym)
        assert np.array_equal(dec.decode_rows(rows, -4), rsym)
    assert dec.is_exhausted()
    dec.finish()
    assert dec.digest() == enc.digest()


def test_rate_is_close_to_ideal_code_length():
    rng = np.random.default_rng(3)
    tables = _tables(rng, t=4, k=31)
    idx = rng.integers(0, 4, 200_000)
    # sample symbols from the tables themselves
    sym = np.empty_like(idx)
    for t in range(4):
        sel = idx == t
        p = tables.counts[t, : tables.lengths[t]] / (1 << PRECISION)
        sym[sel] = rng.choice(np.arange(tables.lengths[t]) + tables.offsets[t], sel.sum(), p=p)
    sym = np.clip(sym, tables.lo[idx], tables.hi[idx])
    enc = Encoder()
    enc.encode(sym, idx, tables)
    bits = 8 * len(enc.finish())
    ideal = tables.bits(sym, idx)
    assert abs(bits - ideal) <= ideal * 0.001 + 64


def test_decoder_rejects_bad_streams():
    with pytest.raises(FormatError):
        Decoder(b"abc")


def _three_chunks(rng, tables, n=3000):
    enc, chunks = Encoder(), []
    for _ in range(3):
        idx = rng.integers(0, len(tables), n)
        sym = rng.integers(-5, 6, n)
        enc.encode(sym, idx, tables)
        chunks.append((idx, sym))
    return enc.finish(), chunks


def test_a_stream_that_runs_dry_stops_at_that_chunk():
    """A stream shorter than what is asked of it (truncated, or a header that claims a larger image) is refused
    at the first chunk that consumes the sentinel's bits, not after decoding zeros to the end; a valid stream
    never trips the check (the round trips above)."""
    rng = np.random.default_rng(4)
    tables = _tables(rng)
    data, chunks = _three_chunks(rng, tables)
    # the decoder reads words from the end: dropping the leading third leaves the first chunk intact
    cut = data[(len(data) // 3) // 4 * 4 :]
    dec = Decoder(cut)
    assert np.array_equal(dec.decode(*chunks[0][:1], tables), chunks[0][1])
    with pytest.raises(FormatError, match="ran dry"):
        for idx, _ in chunks[1:]:
            dec.decode(idx, tables)
    # a claim of a million symbols from a stream of a few hundred bytes: refused after that one chunk
    small, _ = _three_chunks(rng, tables, n=100)
    dec = Decoder(small)
    with pytest.raises(FormatError, match="ran dry"):
        dec.decode(np.zeros(10 ** 6, np.int64), tables)
    with pytest.raises(FormatError, match="ran dry"):
        Decoder(b"")  # not even the guard chunk and the sentinel


def test_a_stream_must_end_where_its_last_symbol_does():
    rng = np.random.default_rng(5)
    tables = _tables(rng)
    data, chunks = _three_chunks(rng, tables)
    for extra in (b"\x01\0\0\0", b"\xff" * 8):  # words before the stream's first = after its last symbol
        dec = Decoder(extra + data)
        for idx, _ in chunks:
            dec.decode(idx, tables)  # the last symbols may already differ (the coder refills earlier)
        assert not dec.is_exhausted()
        with pytest.raises(FormatError, match="does not end"):
            dec.finish()
    dec = Decoder(data)  # a chunk too few: the sentinel is not next
    for idx, _ in chunks[:2]:
        dec.decode(idx, tables)
    with pytest.raises(FormatError):
        dec.finish()


def test_the_digest_covers_the_guard_flags():
    """Encoder and decoder digests agree, and differ when only a guard flag's side differs (the flags decide
    tables and mixture rows, so they are part of what the checksum must cover)."""
    rng = np.random.default_rng(6)
    tables = _tables(rng)
    idx, sym = rng.integers(0, len(tables), 500), rng.integers(-5, 6, 500)
    digests = []
    for bit in (0, 1):
        enc = Encoder()
        enc.guard.decide(np.array([3 + bit]), np.array([3]), np.array([0.0]))  # one flagged decision
        enc.encode(sym, idx, tables)
        dec = Decoder(enc.finish())
        dec.guard.decide(np.array([9]), np.array([3]), np.array([1.0]))
        assert np.array_equal(dec.decode(idx, tables), sym)
        dec.finish()
        assert dec.digest() == enc.digest()
        digests.append(enc.digest())
    assert digests[0] != digests[1]
