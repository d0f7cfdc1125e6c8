import torch

from fastlic.entropy.bottleneck import EntropyBottleneck
from fastlic.entropy.coder import Decoder, Encoder


def test_aux_loss_moves_quantiles_to_the_tails():
    torch.manual_seed(0)
    eb = EntropyBottleneck(4)
    opt = torch.optim.Adam([eb.quantiles], lr=1.0)
    first = eb.loss().item()
    for _ in range(300):
        opt.zero_grad()
        eb.loss().backward()
        opt.step()
    assert eb.loss().item() < first * 0.5


def test_eval_likelihood_is_a_pmf_and_coding_round_trips():
    torch.manual_seed(0)
    eb = EntropyBottleneck(3).eval()
    z = torch.randn(2, 3, 5, 7) * 4
    z[0, 0, 0, 0] = 500.0  # far outside the quantiles: escape-coded
    z_hat, lik = eb(z)
    assert torch.equal(z_hat, torch.round(z - eb.medians()) + eb.medians())
    grid = torch.arange(-200, 201, dtype=torch.float32).view(1, 1, -1, 1).expand(1, 3, -1, 1)
    assert torch.allclose(eb(grid)[1].sum(2), torch.ones(1, 3, 1), atol=1e-4)
    eb.update()
    enc = Encoder()
    zq = eb.compress(z, enc)
    out = eb.decompress(Decoder(enc.finish()), tuple(z.shape))
    assert torch.equal(out, zq) and torch.equal(zq, z_hat)


def test_tables_survive_a_state_dict_round_trip():
    eb = EntropyBottleneck(5)
    eb.update()
    other = EntropyBottleneck(5)
    other.load_state_dict(eb.state_dict())
    assert torch.equal(other._table_counts, eb._table_counts)
