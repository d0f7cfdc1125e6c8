"""The integer primitives compute what they claim, exactly (reference: Python integers or exact float64)."""

import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from fastlic.integer import ops
from fastlic.integer.ops import QMAX


@pytest.fixture(autouse=True)
def _restore_kernel():
    yield
    ops.set_kernel("auto")


def _rand(shape, bits, gen):
    q = QMAX[bits]
    x = torch.randint(-q, q + 1, shape, generator=gen, dtype=torch.int64)
    x.view(-1)[:4] = torch.tensor([q, -q, q, -q])  # the extremes are where a split or an accumulator breaks
    return x


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 7), (16, 7, 8), (17, 33, 9), (64, 288, 96)])
def test_int_mm_accepts_any_shape_on_cpu_and_is_exact(shape):
    """torch._int_mm on the CPU: no m > 16 / multiple-of-8 constraints (those are CUDA's), int32 result exact."""
    m, k, n = shape
    g = torch.Generator().manual_seed(m * k * n)
    a = torch.randint(-128, 128, (m, k), generator=g, dtype=torch.int8)
    b = torch.randint(-128, 128, (k, n), generator=g, dtype=torch.int8)
    c = torch._int_mm(a, b)
    assert c.dtype == torch.int32
    assert torch.equal(c.long(), a.long() @ b.long())


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("kernel", ["int_mm", "float64"])
def test_matmul_kernels_exact(bits, kernel):
    g = torch.Generator().manual_seed(bits)
    a = _rand((37, 300), bits, g)
    w = _rand((300, 19), 8, g).clamp(-127, 127).to(torch.int8)
    ops.set_kernel(kernel)
    out = ops.matmul(a.to(torch.int16), w, bits)
    assert out.dtype == torch.int64
    assert torch.equal(out, a @ w.long())


def test_split16_is_exact_at_the_extremes():
    a = torch.arange(-QMAX[16], QMAX[16] + 1, dtype=torch.int64)
    hi, lo = ops._split16(a)
    assert hi.dtype == lo.dtype == torch.int8
    assert torch.equal(hi.long() * 256 + lo.long(), a)


def test_float64_kernel_refuses_inexact_sizes():
    ops.set_kernel("float64")
    k = ops.F64_EXACT // (QMAX[16] * 127) + 1
    with pytest.raises(ValueError, match="not be exact"):
        # expanded views: the size check comes before any work, nothing of that size is allocated
        ops.matmul(torch.zeros(1, 1, dtype=torch.int16).expand(1, k), torch.zeros(1, 1, dtype=torch.int8).expand(k, 1),
                   16)


def test_rshift_round_is_round_half_up():
    v = torch.arange(-40, 41, dtype=torch.int64)
    for sh in (1, 2, 3):
        want = [math.floor(Fraction(int(x), 2 ** sh) + Fraction(1, 2)) for x in v]
        assert ops.rshift_round(v, sh).tolist() == want
    assert torch.equal(ops.rshift_round(v, 0), v)
    assert torch.equal(ops.rshift_round(v, -2), v * 4)
    num, den = torch.tensor([-7, -5, -3, 3, 5, 7, 9]), torch.tensor([2, 2, 2, 2, 2, 2, 6])
    assert ops.div_round(num, den).tolist() == [math.floor(Fraction(int(a), int(b)) + Fraction(1, 2))
                                               for a, b in zip(num, den)]


def test_fixed_multipliers_precise_and_bounded():
    ratios = torch.tensor([[1e-3, 0.37, 2.5], [7.1e-5, 1.0, 0.0]], dtype=torch.float64)
    bound = 300 * QMAX[16] * 127.0
    m, sh = ops.fixed_multipliers(ratios, bound)
    assert int(m.abs().max()) * bound < ops.I64_SAFE
    approx = m.double() / 2.0 ** sh
    assert torch.allclose(approx, ratios, rtol=1e-5, atol=0)
    v = torch.tensor([int(bound)], dtype=torch.int64)
    assert int((v * m.max()).abs().max()) < 2 ** 62  # the product really fits int64


def test_requantize_matches_exact_rounding():
    g = torch.Generator().manual_seed(1)
    acc = torch.randint(-2 ** 30, 2 ** 30, (1000,), generator=g)
    m, sh = ops.fixed_multipliers(torch.tensor([3.7e-4]), 2.0 ** 30)
    got = ops.requantize(acc, m[0], sh, 16)
    want = [max(-QMAX[16], min(QMAX[16], math.floor(Fraction(int(a) * int(m[0]), 2 ** sh) + Fraction(1, 2))))
            for a in acc]
    assert got.tolist() == want


def test_isqrt_exact():
    g = torch.Generator().manual_seed(2)
    n = torch.cat([torch.randint(0, 2 ** 62, (2000,), generator=g), torch.arange(0, 300),
                   torch.tensor([k * k + d for k in (2 ** 31 - 1, 2 ** 26 + 3, 94906265) for d in (-1, 0, 1)])])
    assert ops.isqrt(n).tolist() == [math.isqrt(int(v)) for v in n]
    with pytest.raises(ValueError):
        ops.isqrt(torch.tensor([-1]))


def test_exp_table_and_softmax():
    t = ops.EXP_TABLE
    assert int(t[0]) == 2 ** ops.EXP_FRAC and int(t[-1]) == 0 and bool((t[:-1] >= t[1:]).all())
    d = torch.arange(t.numel() - 1, dtype=torch.float64)
    assert float((t[:-1].double() - torch.exp(-d / 256) * 2 ** 16).abs().max()) <= 0.5 + 1e-9
    g = torch.Generator().manual_seed(3)
    x = torch.randn(50, 25, generator=g, dtype=torch.float64) * 3
    xi = torch.round(x * 2 ** ops.LOGIT_FRAC).long()
    p = ops.softmax(xi, dim=-1)
    ref = torch.softmax(xi.double() / 2 ** ops.LOGIT_FRAC, dim=-1)
    assert float((p.double() / 2 ** ops.PROB_FRAC - ref).abs().max()) < 2e-4
    # masked entries (logit - 100) get nothing; a fully shifted row is the row itself (softmax is shift-free)
    xm = xi.clone()
    xm[:, 10:] -= 100 << ops.LOGIT_FRAC
    pm = ops.softmax(xm, dim=-1)
    assert int(pm[:, 10:].abs().max()) == 0
    assert torch.equal(ops.softmax(xi - (100 << ops.LOGIT_FRAC), dim=-1), p)


def test_layer_norm_close_to_float():
    g = torch.Generator().manual_seed(4)
    for bits, c in ((16, 32), (8, 64), (16, 256)):
        x = _rand((40, c), bits, g)
        s = 0.01
        n = ops.layer_norm(x, int(round(1e-5 * c ** 3 / s ** 2)), guard_bits=0 if bits == 16 else 8)
        ref = F.layer_norm(x.double() * s, (c,), eps=1e-5)
        assert float((n.double() / 2 ** ops.NORM_FRAC - ref).abs().max()) < 1e-4
    zero = ops.layer_norm(torch.zeros(3, 32, dtype=torch.int64), 0, 0)  # a zero token (a masked position)
    assert int(zero.abs().max()) == 0


@pytest.mark.parametrize("kernel", ["int_mm", "float64"])
def test_conv2d_and_depthwise_exact(kernel):
    ops.set_kernel(kernel)
    g = torch.Generator().manual_seed(5)
    x = _rand((2, 6, 7, 9), 16, g)
    w = _rand((5, 6, 3, 3), 8, g).clamp(-127, 127)
    w_t = w.reshape(5, -1).t().contiguous().to(torch.int8)
    out = ops.conv2d(x.to(torch.int16), w_t, (3, 3), (1, 1), 16)
    # float64 convolution of these integers is exact: every partial sum is an integer < 2**53
    ref = F.conv2d(x.double(), w.double(), padding=1).long()
    assert torch.equal(out, ref)
    w1 = _rand((4, 6, 1, 1), 8, g).clamp(-127, 127)
    out1 = ops.conv2d(x.to(torch.int16), w1.reshape(4, -1).t().contiguous().to(torch.int8), (1, 1), (0, 0), 16)
    assert torch.equal(out1, F.conv2d(x.double(), w1.double()).long())
    wd = _rand((6, 1, 5, 5), 8, g).clamp(-127, 127)
    outd = ops.depthwise_conv2d(x, wd[:, 0].to(torch.int8), (2, 2))
    assert torch.equal(outd, F.conv2d(x.double(), wd.double(), padding=2, groups=6).long())


def test_float64_held_kernels_equal_the_int64_ones():
    """mul_shift_f64 and softmax_f64 / div_round_f64 give exactly the int64 arithmetic's integers, at the edges
    of their stated domains (|x| < 2**36, multipliers below 2**31, shifts 16..52)."""
    g = torch.Generator().manual_seed(5)
    x = torch.randint(-(1 << 36) + 1, 1 << 36, (20000,), generator=g, dtype=torch.int64)
    x[:4] = torch.tensor([(1 << 36) - 1, -(1 << 36) + 1, 0, -1])
    for mult, shift in ((1, 16), ((1 << 31) - 1, 52), (123456789, 40), (65535, 20), (65536, 33), (0, 30)):
        assert ops.mul_shift_f64_ok(mult, shift, float(1 << 36) - 1)
        # the int64 reference only where its product does not overflow (the float64 form is exact beyond)
        xs = x.clamp(-(1 << 62) // max(mult, 1), (1 << 62) // max(mult, 1))
        want = ops.rshift_round(xs * mult, shift)
        assert torch.equal(ops.mul_shift_f64(xs.to(torch.float64), mult, shift).to(torch.int64), want), (mult, shift)
    big = [(1 << 36) - 1, -(1 << 36) + 1, (1 << 35) + 12345, -987654321012]  # beyond int64's product: Python ints
    for mult, shift in (((1 << 31) - 1, 16), ((1 << 31) - 1, 40), (2 ** 30 + 7, 52)):
        got = ops.mul_shift_f64(torch.tensor(big, dtype=torch.float64), mult, shift).tolist()
        assert got == [float((v * mult + (1 << (shift - 1))) >> shift) for v in big]
    assert not ops.mul_shift_f64_ok(1 << 31, 20, 10.0) and not ops.mul_shift_f64_ok(5, 15, 10.0)
    logits = torch.randint(-5000, 5000, (64, 37), generator=g, dtype=torch.int64)
    e = ops.EXP_TABLE[(logits.amax(-1, keepdim=True) - logits).clamp(0, ops.EXP_TABLE.numel() - 1)]
    want = ops.div_round(e << ops.PROB_FRAC, e.sum(-1, keepdim=True))
    assert torch.equal(ops.softmax(logits, -1), want)
    assert torch.equal(ops.softmax_f64(logits.to(torch.float64), -1).to(torch.int64), want)
    num = torch.randint(-(1 << 50), 1 << 50, (5000,), generator=g, dtype=torch.int64)
    den = torch.randint(1, 1 << 20, (5000,), generator=g, dtype=torch.int64)
    assert torch.equal(ops.div_round_f64(num.double(), den.double()).to(torch.int64), ops.div_round(num, den))
