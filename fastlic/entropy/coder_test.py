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
