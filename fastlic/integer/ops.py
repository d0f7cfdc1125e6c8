"""Exact integer primitives of the integer entropy-parameter path.

Integer-arithmetic-only inference after Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", CVPR 2018: int8 weights, int8/int16 activations, int32 (here int64 where a
bound needs it) accumulation, and requantization by an integer multiplier and a right shift. The reason this
project needs it is the one given by Ballé, Johnston, Minnen, "Integer networks for data compression with
latent-variable models", ICLR 2019: an entropy decoder must reproduce the encoder's probability model exactly,
and integer arithmetic is exact by construction (a sum of integers does not depend on order, SIMD width, thread
count, library or device).

Every function here maps integer tensors to integer tensors. Floating point appears in two places only, both
exact by construction and argued where they occur:

* :func:`matmul`'s ``"float64"`` kernel multiplies small integers whose every product and partial sum is an
  integer below 2**53, so each float64 operation is exact whatever the order of the sums (or FMA);
* :func:`isqrt` takes a float64 ``sqrt`` as a first guess and corrects it with integer comparisons, so its result
  is the exact integer square root whatever the guess.

Constants (multipliers, look-up tables) are computed once, when a model is converted
(:mod:`fastlic.integer.nodes`), and stored; decoding only reads them.
"""

from __future__ import annotations

import math
import os

import torch

#: largest magnitude of an activation of each width. 16-bit activations are kept within 127 * 256 + 127 so that
#: ``a = 256 * hi + lo`` splits into two int8 halves (hi, lo in [-128, 127]) for the int8 GEMM (:func:`matmul`)
QMAX = {8: 127, 16: 127 * 256 + 127, 32: (1 << 31) - 1}
#: weights are int8, symmetric (-127..127, so that negation stays in range)
WMAX = 127
#: ``torch._int_mm`` accumulates in int32: K * 128 * 128 must stay below 2**31
INT_MM_MAX_K = 1 << 17
#: float64 holds every integer below 2**53 exactly
F64_EXACT = 1 << 53
#: bound on the products of requantization (int64; the bias term gets the other half of the headroom)
I64_SAFE = 1 << 61

KERNELS = ("auto", "int_mm", "float64")
_kernel = os.environ.get("FASTLIC_INT_KERNEL", "auto")


def set_kernel(kernel: str) -> None:
    """GEMM kernel of :func:`matmul`: ``"int_mm"`` (``torch._int_mm``, int8 x int8 -> int32), ``"float64"`` (exact
    float64 GEMM of small integers) or ``"auto"`` (``int_mm`` on the CPU, ``float64`` elsewhere). All give the
    same integers; the choice is speed only (tests compare them)."""
    global _kernel
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, not {kernel!r}")
    _kernel = kernel


def get_kernel(device: torch.device | str = "cpu") -> str:
    if _kernel != "auto":
        return _kernel
    # torch._int_mm on CUDA requires m > 16 and k, n multiples of 8; on the CPU it takes any shape (checked
    # in ops_test.py); CUDA is not wired yet, so everything but the CPU takes the exact float64 kernel
    return "int_mm" if torch.device(device).type == "cpu" else "float64"


# ---------------------------------------------------------------------------------------------- rounding
def rshift_round(v: torch.Tensor, shift: int) -> torch.Tensor:
    """``floor(v / 2**shift + 1/2)`` (round half up) of an int64 tensor: an arithmetic right shift is a floor."""
    if shift <= 0:
        return v << (-shift) if shift else v
    return (v + (1 << (shift - 1))) >> shift


def div_round(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``floor(num / den + 1/2)`` for int64 tensors, ``den > 0``: ``floor((2 num + den) / (2 den))``."""
    return torch.div(2 * num + den, 2 * den, rounding_mode="floor")


def div_round_f64(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """:func:`div_round` of integers held in float64 (returned so), for ``|2 num + den| < 2**53``: exact.

    ``a = 2 num + den`` and ``b = 2 den`` are then exact float64 integers, and ``floor(fl(a / b))`` is
    ``floor(a / b)``: if ``a / b`` is an integer it is representable and IEEE division returns it; otherwise its
    distance to the next integer is at least ``1 / b``, more than the rounding error ``|a / b| 2**-53`` because
    ``|a| < 2**53``. IEEE division is correctly rounded on every platform, so the result is machine-independent
    (and ~10x faster than int64 division on a CPU)."""
    return torch.floor_((2.0 * num + den).div_(2.0 * den))


def clamp_bits(v: torch.Tensor, bits: int) -> torch.Tensor:
    q = QMAX[bits]
    return v.clamp(-q, q)


def fixed_multipliers(ratios, acc_bound: float, max_mult_bits: int = 31) -> tuple[torch.Tensor, int]:
    """Integer multipliers ``m`` and one shift ``sh`` with ``m / 2**sh ~ ratio`` for every ratio (build time).

    The shift is the largest that keeps ``acc_bound * max(m)`` below 2**61 (no int64 overflow in
    :func:`requantize` for any accumulator within ``acc_bound``) and ``max(m) < 2**max_mult_bits``."""
    r = torch.as_tensor(ratios, dtype=torch.float64).abs()
    top = float(r.max()) if r.numel() else 0.0
    if top == 0.0:
        return torch.zeros(r.shape, dtype=torch.int64), 0
    limit = min(I64_SAFE / max(acc_bound, 1.0), float(1 << max_mult_bits))
    sh = int(math.floor(math.log2(limit / top)))
    sh = max(min(sh, 62), -30)
    while sh > -30 and round(top * 2.0 ** sh) >= limit:  # float rounding of the log: step down once if needed
        sh -= 1
    m = torch.round(torch.as_tensor(ratios, dtype=torch.float64) * 2.0 ** sh).to(torch.int64)
    return m, sh


#: largest magnitude of a float64-held integer that :func:`mul_shift_f64` takes
MUL_SHIFT_F64_MAX = float(1 << 36)


def mul_shift_f64_ok(mult: int, shift: int, x_bound: float) -> bool:
    """Whether :func:`mul_shift_f64` is exact for these constants and inputs up to ``x_bound``."""
    return 0 <= mult < (1 << 31) and 16 <= shift <= 52 and x_bound < MUL_SHIFT_F64_MAX


def mul_shift_f64(x: torch.Tensor, mult: int, shift: int) -> torch.Tensor:
    """``floor((x * mult + 2**(shift-1)) / 2**shift)`` (:func:`rshift_round` of the product) for integers held in
    float64, exactly, without int64 arithmetic (much slower than float64 on CPUs without vectorized int64
    multiply). Requires :func:`mul_shift_f64_ok`: ``|x| < 2**36``, ``0 <= mult < 2**31``, ``16 <= shift <= 52``.

    With ``mult = a 2**16 + b`` (``a < 2**15``, ``b < 2**16``): ``t = x b + 2**(shift-1)`` is an exact float64
    integer (``|x b| < 2**52``), ``q = floor(t / 2**16)`` is exact (scaling by a power of two, then floor), and
    ``n = x a + q`` is exact (below 2**52). The product is ``n 2**16 + r`` with ``0 <= r < 2**16``, and for an
    integer ``n`` and ``0 <= r / 2**16 < 1``, ``floor((n + r / 2**16) / 2**(shift-16)) = floor(n / 2**(shift-16))``,
    again an exact scaling and floor. Every step is an IEEE basic operation on exact values: machine-independent."""
    a, b = divmod(int(mult), 1 << 16)
    t = (x * float(b)).add_(float(1 << (shift - 1)))
    q = t.mul_(2.0 ** -16).floor_()
    return q.add_(x * float(a)).mul_(2.0 ** -(shift - 16)).floor_()


def requantize(acc: torch.Tensor, mult: torch.Tensor, shift: int, bits: int) -> torch.Tensor:
    """``clamp(round_half_up(acc * mult / 2**shift))`` in int64 (``mult`` broadcast against ``acc``)."""
    return clamp_bits(rshift_round(acc.to(torch.int64) * mult, shift), bits)


# ---------------------------------------------------------------------------------------------- GEMM
def _split16(a: torch.Tensor):
    """16-bit activations as two int8 halves, ``a = 256 * hi + lo`` with hi, lo in [-128, 127] (|a| <= QMAX[16]).
    Computed in int16: ``a + 128 <= 32767`` and ``|hi << 8| <= 32512`` for |a| <= QMAX[16], so nothing wraps."""
    a = a.to(torch.int16)
    hi = (a + 128) >> 8
    lo = a - (hi << 8)
    return hi.to(torch.int8), lo.to(torch.int8)


def _int_mm64(a8: torch.Tensor, w8: torch.Tensor) -> torch.Tensor:
    return torch._int_mm(a8.contiguous(), w8).to(torch.int64)


def _halves_mm(hi: torch.Tensor, lo: torch.Tensor, w8: torch.Tensor) -> torch.Tensor:
    """``(hi @ w) * 256 + lo @ w`` in int64, in place on the first product (each product exact in int32)."""
    out = _int_mm64(hi, w8)
    out.bitwise_left_shift_(8)
    return out.add_(torch._int_mm(lo.contiguous(), w8))


def matmul(a: torch.Tensor, w_t: torch.Tensor, a_bits: int) -> torch.Tensor:
    """Exact ``a @ w_t`` as int64: ``a`` [M, K] integer activations of ``a_bits`` (8 or 16), ``w_t`` [K, N] int8.

    ``int_mm`` kernel: ``torch._int_mm`` (int8 x int8 -> int32, exact while K <= :data:`INT_MM_MAX_K`); 16-bit
    activations take two calls on their int8 halves. ``float64`` kernel: one float64 GEMM, exact because every
    product and partial sum is an integer of magnitude <= K * QMAX * 127 < 2**53."""
    k = a.shape[-1]
    kernel = get_kernel(a.device)
    if kernel == "int_mm" and k <= INT_MM_MAX_K:
        w8 = w_t.contiguous()
        if a_bits == 8:
            return _int_mm64(a.to(torch.int8), w8)
        return _halves_mm(*_split16(a), w8)
    if k * QMAX[a_bits] * WMAX >= F64_EXACT:
        raise ValueError(f"float64 GEMM of K={k} {a_bits}-bit values would not be exact")
    return torch.matmul(a.to(torch.float64), w_t.to(torch.float64)).to(torch.int64)


def bmm_exact(a: torch.Tensor, b: torch.Tensor, bound: float, as_int: bool = True) -> torch.Tensor:
    """Exact batched ``a @ b`` of integer tensors (int64, or held in float64 with ``as_int=False``), given
    ``bound`` >= sum over K of |a||b| (checked by the caller's static bounds): a float64 batched GEMM is exact
    when every partial sum is an integer below 2**53."""
    if bound >= F64_EXACT:
        raise ValueError(f"batched product bound {bound:.3g} exceeds 2**53: not exact in float64")
    out = torch.matmul(a.to(torch.float64), b.to(torch.float64))
    return out.to(torch.int64) if as_int else out


# ---------------------------------------------------------------------------------------------- convolutions
def im2col(x: torch.Tensor, kh: int, kw: int, ph: int, pw: int) -> torch.Tensor:
    """[B, C, H, W] integer -> [B * H' * W', C * kh * kw] (stride 1, zero padding), channel-major taps as
    ``F.unfold`` orders them (c, ki, kj)."""
    b, c = x.shape[:2]
    xp = torch.nn.functional.pad(x, (pw, pw, ph, ph))
    win = xp.unfold(2, kh, 1).unfold(3, kw, 1)  # [B, C, H', W', kh, kw]
    oh, ow = win.shape[2], win.shape[3]
    return win.permute(0, 2, 3, 1, 4, 5).reshape(b * oh * ow, c * kh * kw), (oh, ow)


def im2col_taps(x: torch.Tensor, kh: int, kw: int, ph: int, pw: int):
    """Like :func:`im2col` but tap-major, columns ordered (ki, kj, c): built channels-last from ``kh * kw``
    contiguous slices of the padded NHWC tensor (a free view when ``x`` is the channels-last output of the
    previous layer), much cheaper than the 6-D permute. Pair with :func:`taps_first` weights."""
    b, c, h, w = x.shape
    xp = torch.nn.functional.pad(x.permute(0, 2, 3, 1), (0, 0, pw, pw, ph, ph))
    oh, ow = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
    cols = torch.cat([xp[:, i : i + oh, j : j + ow] for i in range(kh) for j in range(kw)], dim=-1)
    return cols.view(b * oh * ow, kh * kw * c), (oh, ow)


def taps_first(w_t: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """Rows of a [C * kh * kw, N] weight matrix from (c, ki, kj) to (ki, kj, c) order (:func:`im2col_taps`); the
    sum over K is the same integers in any order."""
    k, n = w_t.shape
    return w_t.view(k // (kh * kw), kh * kw, n).transpose(0, 1).reshape(k, n).contiguous()


def conv_gemm(x: torch.Tensor, w_t: torch.Tensor, kernel: tuple[int, int], padding: tuple[int, int],
              a_bits: int, w_taps: torch.Tensor | None = None):
    """Exact integer convolution (stride 1) as GEMM -> (int64 [B * H' * W', Cout], (H', W')). With the ``int_mm``
    kernel, 16-bit activations are split into their int8 halves *before* im2col (on C*H*W values, not the
    kh*kw times larger column matrix), and the columns are built in int8."""
    kh, kw = kernel
    b, c, h, w = x.shape
    k = c * kh * kw
    one = (kh, kw) == (1, 1) and tuple(padding) == (0, 0)

    def cols(t):
        if one:
            return t.permute(0, 2, 3, 1).reshape(b * h * w, c), (h, w)
        return im2col_taps(t, kh, kw, *padding)

    if get_kernel(x.device) == "int_mm" and k <= INT_MM_MAX_K:
        w8 = w_t.contiguous() if one else (w_taps if w_taps is not None else taps_first(w_t, kh, kw))
        if a_bits == 8:
            c8, hw = cols(x.to(torch.int8))
            return _int_mm64(c8, w8), hw
        hi, lo = _split16(x)
        (ch, hw), (cl, _) = cols(hi), cols(lo)
        return _halves_mm(ch, cl, w8), hw
    c_all, hw = (x.permute(0, 2, 3, 1).reshape(b * h * w, c), (h, w)) if one else im2col(x, kh, kw, *padding)
    return matmul(c_all, w_t, a_bits), hw


def conv2d(x: torch.Tensor, w_t: torch.Tensor, kernel: tuple[int, int], padding: tuple[int, int],
           a_bits: int) -> torch.Tensor:
    """Exact integer convolution (stride 1) as one GEMM on the im2col matrix: ``x`` [B, C, H, W] integers of
    ``a_bits``, ``w_t`` [C * kh * kw, Cout] int8 -> int64 [B, Cout, H', W'] (:func:`conv_gemm`)."""
    out, (oh, ow) = conv_gemm(x, w_t, kernel, padding, a_bits)
    return out.view(x.shape[0], oh, ow, -1).permute(0, 3, 1, 2)


def depthwise_conv2d(x: torch.Tensor, w: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
    """Exact depthwise convolution (stride 1): ``x`` [B, C, H, W] integers, ``w`` [C, kh, kw] int8 -> int64.
    k*k shifted multiply-adds of whole tensors, in int64 (exact: integer sums in any order)."""
    kh, kw = w.shape[-2:]
    ph, pw = padding
    xp = torch.nn.functional.pad(x.to(torch.int64), (pw, pw, ph, ph))
    h, wd = xp.shape[-2] - kh + 1, xp.shape[-1] - kw + 1
    w64 = w.to(torch.int64)
    out = None
    for dy in range(kh):
        for dx in range(kw):
            term = xp[..., dy : dy + h, dx : dx + wd] * w64[:, dy, dx].view(1, -1, 1, 1)
            out = term if out is None else out + term
    return out


# ---------------------------------------------------------------------------------------------- square root
def isqrt(n: torch.Tensor) -> torch.Tensor:
    """``floor(sqrt(n))`` of a non-negative int64 tensor (n < 2**62), exactly.

    A float64 ``sqrt`` gives a guess within a few units of the answer (its input is the correctly rounded
    conversion of n); integer comparisons then move each entry to the exact root, so the result does not depend
    on how the platform computes ``sqrt``."""
    if n.numel() and int(n.min()) < 0:
        raise ValueError("isqrt of a negative number")
    r = torch.sqrt(n.to(torch.float64)).floor().to(torch.int64)
    for _ in range(64):  # each pass moves every wrong entry by one; the guess is off by at most a few
        down = r * r > n
        up = (r + 1) * (r + 1) <= n
        if not bool(down.any() or up.any()):
            return r
        r = r - down.to(torch.int64) + up.to(torch.int64)
    raise AssertionError("isqrt did not converge")


# ---------------------------------------------------------------------------------------------- softmax
#: logits enter the integer softmax in fixed point with this many fractional bits
LOGIT_FRAC = 8
#: exp look-up values have this many fractional bits
EXP_FRAC = 16
#: probabilities leave it with this many fractional bits
PROB_FRAC = 15


def _exp_table() -> torch.Tensor:
    """``round(2**EXP_FRAC * exp(-d / 2**LOGIT_FRAC))`` for d = 0, 1, ... until it rounds to 0 (last entry 0).

    Built with :func:`fastlic.numerics.exp` (IEEE basic operations only, bit-identical on every machine), so every
    process builds the same table; rounding happens on the exact float64 values."""
    from .. import numerics  # noqa: PLC0415  (numerics imports nothing from here; late import keeps it light)

    stop = int(math.ceil((EXP_FRAC + 1) * math.log(2) * (1 << LOGIT_FRAC))) + 2
    d = torch.arange(stop, dtype=torch.float64)
    e = numerics.exp(-d / (1 << LOGIT_FRAC)) * float(1 << EXP_FRAC)
    t = torch.floor(e + 0.5).to(torch.int64)
    t[-1] = 0
    return t


EXP_TABLE = _exp_table()
#: the same integers in float64 (all below 2**17: exact), for the float64-held integer kernels
EXP_TABLE_F64 = EXP_TABLE.to(torch.float64)


def exp_neg(d: torch.Tensor, table: torch.Tensor = EXP_TABLE) -> torch.Tensor:
    """``2**EXP_FRAC * exp(-d / 2**LOGIT_FRAC)`` rounded, by table look-up, for integer ``d >= 0`` (in the
    dtype of ``table``: :data:`EXP_TABLE` int64 or :data:`EXP_TABLE_F64`; ``d`` integer or float64-held)."""
    table = table.to(d.device)
    idx = d.clamp_(0, table.numel() - 1).to(torch.int32)  # int32 indexes: a faster gather than int64
    return table.index_select(0, idx.reshape(-1)).view(idx.shape)


def softmax_exp(logits: torch.Tensor, dim: int, table: torch.Tensor = EXP_TABLE) -> torch.Tensor:
    """Unnormalized integer softmax numerators ``exp(x - max)`` in 2**-EXP_FRAC units (the max entry gets
    2**EXP_FRAC, so every row sums to at least that), for logits in 2**-LOGIT_FRAC units."""
    m = logits.amax(dim=dim, keepdim=True)
    return exp_neg(m - logits, table)


def softmax_f64(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """:func:`softmax`'s integers held in float64: numerators at most 2**16, sums below 2**53 for any row
    shorter than 2**36, so every sum is exact and the division is :func:`div_round_f64`'s exact one, here on
    ``a = 2 (e 2**PROB_FRAC) + s`` formed in place (at most 2**33 + s: exact)."""
    e = softmax_exp(logits, dim, EXP_TABLE_F64)
    s = e.sum(dim=dim, keepdim=True)
    return e.mul_(float(1 << (PROB_FRAC + 1))).add_(s).div_(2.0 * s).floor_()


def softmax(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """Integer softmax: probabilities in 2**-PROB_FRAC units, ``round(e * 2**PROB_FRAC / sum(e))``."""
    return softmax_f64(logits, dim).to(torch.int64)


# ---------------------------------------------------------------------------------------------- layer norm
#: fractional bits of the normalized values inside :func:`layer_norm`
NORM_FRAC = 16


def layer_norm(x: torch.Tensor, eps_term: int, guard_bits: int) -> torch.Tensor:
    """Integer layer normalization over the last dimension (no affine part), in 2**-NORM_FRAC units.

    With ``xc = C x - sum(x)`` (exact), ``(x - mean) / sqrt(var + eps) = xc / sqrt((sum(xc**2) + E) / C)`` where
    ``E = eps C**3 / s**2`` for the input scale s (``eps_term``, an integer fixed at conversion). The root is taken
    exactly (:func:`isqrt`) on ``(sum(xc**2) + E) * 4**guard_bits // C`` and the quotient rounded half up.
    Cf. the integer-only LayerNorm of Kim et al., "I-BERT: Integer-only BERT Quantization", ICML 2021.
    """
    x = x.to(torch.int64)
    c = x.shape[-1]
    xc = c * x - x.sum(dim=-1, keepdim=True)
    d = (xc * xc).sum(dim=-1, keepdim=True) + eps_term
    r = isqrt((d << (2 * guard_bits)) // c).clamp(min=1)
    return div_round(xc << (NORM_FRAC + guard_bits), r)


# ---------------------------------------------------------------------------------------------- look-up tables
def lut(table: torch.Tensor, idx: torch.Tensor, offset: int) -> torch.Tensor:
    """``table[idx + offset]`` in the table's dtype, ``idx`` already clamped to the table's domain."""
    return table.to(idx.device)[(idx + offset).to(torch.int64)]
