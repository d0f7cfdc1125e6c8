import torch

from fastlic.entropy.coder import Decoder, Encoder
from fastlic.entropy.gaussian import GaussianConditional, GaussianMixtureConditional


def test_likelihoods_sum_to_one_over_the_integers():
    gc = GaussianConditional()
    v = torch.arange(-60, 61, dtype=torch.float32).view(-1, 1)
    for s in (0.05, 0.11, 0.7, 3.0, 9.0):
        total = gc.likelihood(v, torch.full_like(v, s), torch.full_like(v, 0.3)).sum()
        assert abs(total.item() - 1) < 1e-5


def test_training_noise_and_eval_rounding():
    gc = GaussianConditional()
    y = torch.randn(2, 4, 8, 8) * 3
    mu = torch.randn_like(y)
    out, lik = gc(y, torch.ones_like(y), mu, training=False)
    assert torch.equal(out, torch.round(y - mu) + mu)
    out_t, lik_t = gc(y, torch.ones_like(y), mu, training=True)
    assert (out_t - y).abs().max() <= 0.5 and not torch.equal(out_t, out)
    assert lik.min() >= 1e-9 and lik_t.min() >= 1e-9


def test_index_rules():
    gc = GaussianConditional(snap="up")
    t = gc.scale_table
    scales = torch.stack([t[0] * 0.5, t[0], t[5], torch.nextafter(t[5], torch.tensor(0.0)),
                          torch.nextafter(t[5], torch.tensor(1e9)), t[-1] * 2])
    top = len(t) - 1
    assert gc.build_indexes(scales).tolist() == [0, 0, 5, 5, 6, top]
    near = GaussianConditional()
    mid = torch.sqrt(t[5] * t[6])
    probe = torch.stack([t[5], t[5] * 1.001, torch.nextafter(mid, torch.tensor(0.0)), mid * 1.0001, t[6], t[-1] * 2])
    assert near.build_indexes(probe).tolist() == [5, 5, 5, 6, 6, top]


def test_gaussian_round_trip_through_the_coder():
    gc = GaussianConditional()
    gc.update()
    g = torch.Generator().manual_seed(0)
    scales = torch.exp(torch.randn(5000, generator=g) * 2)
    means = torch.randn(5000, generator=g) * 4
    y = means + torch.randn(5000, generator=g) * scales
    y[:3] = torch.tensor([1e4, -1e4, 0.0])
    enc = Encoder()
    y_hat = gc.encode(enc, y, scales, means)
    dec = Decoder(enc.finish())
    assert torch.equal(gc.decode(dec, scales, means), y_hat)


def test_mixture_likelihood_and_round_trip():
    gmm = GaussianMixtureConditional(k=3)
    g = torch.Generator().manual_seed(0)
    w, mu, s = torch.randn(3, 400, generator=g), torch.randn(3, 400, generator=g) * 3, torch.rand(3, 400, generator=g) * 4
    v = torch.arange(-80, 81, dtype=torch.float32).view(-1, 1)
    total = gmm.likelihood(v.expand(-1, 400), w[None], mu[None], s[None], component_dim=1).sum(0)
    assert torch.allclose(total, torch.ones(400), atol=1e-4)
    y = torch.randn(1, 400, generator=g) * 5
    enc = Encoder()
    q = gmm.encode(enc, y, w[None], mu[None], s[None])
    out = gmm.decode(Decoder(enc.finish()), w[None], mu[None], s[None])
    assert torch.equal(out, q) and torch.equal(q, torch.round(y))
