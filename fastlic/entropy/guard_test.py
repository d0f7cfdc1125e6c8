import numpy as np
import pytest
import torch

from fastlic.entropy.coder import Decoder, Encoder
from fastlic.entropy.gaussian import GaussianConditional, GaussianMixtureConditional
from fastlic.entropy.guard import Guard, nearest_boundary, rounding_decision
from fastlic.errors import FormatError


def _noisy(t: torch.Tensor, rel: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return t * (1 + rel * (2 * torch.rand(t.shape, generator=g, dtype=torch.float64) - 1))


def test_decoder_takes_the_encoders_scale_indexes_at_boundaries():
    """Scales exactly on, and within 1e-12 of, table boundaries: the decoder sees other noise (its own scales
    perturbed by up to 1e-11, which flips its own choice at many of them), yet decodes the encoder's symbols."""
    gc = GaussianConditional()
    gc.update()
    bounds = gc._bounds()
    base = bounds[torch.randint(0, len(bounds), (4000,), generator=torch.Generator().manual_seed(0))]
    enc_scales = _noisy(base, 1e-12, 1)
    dec_scales = _noisy(enc_scales, 1e-11, 2)
    assert (gc.build_indexes(enc_scales) != gc.build_indexes(dec_scales)).sum() > 100  # the danger is real
    y = torch.randn(4000, dtype=torch.float64) * base
    means = torch.zeros(4000, dtype=torch.float64)
    enc = Encoder()
    y_hat = gc.encode(enc, y, enc_scales, means)
    assert enc.guard.num_flags > 100
    data = enc.finish()
    dec = Decoder(data)
    out = gc.decode(dec, dec_scales, means)
    assert torch.equal(out, y_hat)
    assert dec.is_exhausted()
    assert dec.digest() == enc.digest()


def test_unflagged_stream_costs_five_bits_and_flags_cost_about_their_positions():
    assert Guard().num_flags == 0
    enc = Encoder()
    gc = GaussianConditional()
    gc.update()
    scales = torch.full((1000,), 3.0, dtype=torch.float64)  # far from every boundary
    gc.encode(enc, torch.zeros(1000, dtype=torch.float64), scales, torch.zeros(1000, dtype=torch.float64))
    assert enc.guard.num_flags == 0
    plain = len(enc.finish())
    empty = Encoder()
    empty.encode(np.zeros(1000, np.int64), np.asarray(gc.guarded_indexes(scales, Guard())), gc.tables)
    assert len(empty.finish()) == plain


def test_rounding_decision_measures_distance_in_the_values_units():
    d, j, dist = rounding_decision(np.array([0.5 / 256, 0.25, 100.0 + 0.5 / 256]), 256)
    assert dist[0] == 0 and dist[2] < 1e-15 and dist[1] > 0.001
    assert list(d[[1]]) == [64] and list(j[[0, 2]]) == [0, 25600]


def test_nearest_boundary_picks_the_closer_side():
    bounds = np.array([1.0, 2.0, 4.0])
    values = np.array([0.5, 1.0000001, 1.9999, 3.0, 100.0])
    d = np.searchsorted(bounds, values)
    j, dist = nearest_boundary(values, d, bounds)
    assert list(j) == [0, 0, 1, 2, 2] or list(j) == [0, 0, 1, 1, 2]
    assert dist[1] < 1e-6 and dist[2] < 1e-4


def test_mixture_rows_are_identical_under_decoder_noise():
    """The mixture coder: the decoder's parameters carry relative noise 1e-13 (far above the measured
    cross-machine difference, far below the guard margin); rows, symbols and reconstruction are the encoder's."""
    torch.manual_seed(0)
    gmm = GaussianMixtureConditional(k=3, chunk_size=700)
    n = 3000
    w, mu = torch.randn(1, 3, n, dtype=torch.float64), torch.randn(1, 3, n, dtype=torch.float64) * 3
    s = torch.rand(1, 3, n, dtype=torch.float64) * 4
    # put some means and weights exactly on snapping boundaries
    mu[0, 0, :50] = (torch.arange(50, dtype=torch.float64) + 0.5) / gmm.MEAN_STEPS
    y = (mu * torch.softmax(w, 1)).sum(1) + torch.randn(1, n, dtype=torch.float64)
    enc = Encoder()
    q = gmm.encode(enc, y, w, mu, s)
    assert enc.guard.num_flags >= 50
    dec = Decoder(enc.finish())
    out = gmm.decode(dec, _noisy(w, 1e-13, 3), _noisy(mu, 1e-13, 4), _noisy(s, 1e-13, 5))
    assert torch.equal(out, q) and dec.is_exhausted() and dec.digest() == enc.digest()


def test_guard_flags_travel_and_a_crafted_count_is_refused():
    import constriction

    from fastlic.entropy import coder as coder_mod

    enc = Encoder()
    enc.guard._positions.append(np.arange(10) * 3)
    enc.guard._bits.append(np.arange(10) % 2)
    dec = Decoder(enc.finish())
    assert list(dec.guard.positions) == list(np.arange(10) * 3) and list(dec.guard.bits) == list(np.arange(10) % 2)
    # a stream whose guard chunk claims more flags than any stream may carry
    coder = constriction.stream.stack.AnsCoder()
    n, bits = coder_mod._gamma_encode(np.array([(1 << 22) + 1]))
    coder.encode_reverse(bits.astype(np.int32), coder_mod._BIT_MODEL)
    coder.encode_reverse(n.astype(np.int32), coder_mod._N_BITS_MODEL)
    with pytest.raises(FormatError, match="guard flags"):
        Decoder(coder.get_compressed().astype("<u4").tobytes())
