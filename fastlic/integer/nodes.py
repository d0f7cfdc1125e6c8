"""Quantized layers with two lives: a float64 calibration pass and an exact integer pass.

Post-training quantization after Jacob et al. 2018 (CVPR, integer-arithmetic-only inference): per-output-channel
symmetric int8 weights, per-tensor symmetric activation scales calibrated on sample images (the largest magnitude
seen), int32/int64 accumulation and requantization by integer multiply and shift (:mod:`fastlic.integer.ops`).

Each node is called with either

* float64 tensors (**calibration**): it computes the float layer exactly as the float model does and records the
  range of what it produces (``Observer``);
* :class:`QT` values (**integer**): integer tensors with the scale they stand for. On the first integer call the
  node derives its integer constants from the calibrated ranges and its inputs' scales (``build``) and keeps
  them in ``params``; every later call computes with those integers only. The scale a :class:`QT` carries is
  bookkeeping (checked against what the node was built for), never used in arithmetic.

A list of inputs is a concatenation along channels whose parts keep their own scales: a convolution consumes it
group by group (one GEMM per part, each part's weights quantized on their own, the partial accumulators brought
to one fixed point by per-part multipliers before a single rounding), so a concatenation costs no precision.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from . import ops
from .ops import QMAX, WMAX


@dataclasses.dataclass
class QT:
    """An integer tensor ``q`` standing for ``q * s``; ``bits`` bounds ``|q| <= QMAX[bits]`` (32: fixed point)."""

    q: torch.Tensor
    s: float
    bits: int


def mv(fn, x):
    """Apply a data-movement function (reshape, checkerboard half, pixel shuffle...) to a float tensor, a QT or a
    list of them; the scales are unchanged."""
    if isinstance(x, QT):
        return QT(fn(x.q), x.s, x.bits)
    if isinstance(x, (list, tuple)):
        return [mv(fn, p) for p in x]
    return fn(x)


def flat(x) -> list:
    if isinstance(x, (list, tuple)):
        return [p for part in x for p in flat(part)]
    return [x]


def is_int(x) -> bool:
    return isinstance(flat(x)[0], QT)


@dataclasses.dataclass
class QuantConfig:
    """Bit widths of the integer path (weights are always int8).

    ``act_bits``: calibrated activations (8 or 16); ``lut_bits``: the domain of a nonlinearity's look-up table
    (the pre-activation is requantized to ``lut_bits`` signed bits); ``y_frac`` / ``scale_frac``: fractional
    bits of the means and reconstructed latents / of the predicted scales (fixed point, not calibrated);
    ``latent_bits``: width of the latents and hyper-latents as the context networks read them."""

    act_bits: int = 16
    lut_bits: int = 14
    y_frac: int = 8
    scale_frac: int = 12
    latent_bits: int = 16

    def describe(self) -> str:
        return (f"int8 weights, int{self.act_bits} activations, int{self.latent_bits} latents, "
                f"{self.lut_bits}-bit LUT domains, means 2^-{self.y_frac}, scales 2^-{self.scale_frac}")


class Observer:
    """Largest magnitude seen (calibration)."""

    def __init__(self):
        self.amax = 0.0

    def update(self, t: torch.Tensor) -> None:
        if t.numel():
            self.amax = max(self.amax, float(t.detach().abs().max()))

    def scale(self, bits: int) -> float:
        # an all-zero tensor still needs a positive scale; any works, its values are all 0
        return max(self.amax, 1e-12) / QMAX[bits]


_ACTS = {"gelu": F.gelu, "halftanh": lambda t: 0.5 * torch.tanh(t)}


class Node:
    """Common part: a name, integer ``params`` once built (``state`` for saving), float64 weights for calibration."""

    def __init__(self, name: str):
        self.name = name
        self.params: dict = {}

    @property
    def built(self) -> bool:
        return bool(self.params)

    def _check_in(self, key: str, s: float) -> None:
        want = float(self.params[key])
        if not math.isclose(want, s, rel_tol=1e-12, abs_tol=0.0):
            raise ValueError(f"{self.name}: input scale {s!r} differs from the one it was built for ({want!r})")


# ---------------------------------------------------------------------------------------------- convolution
class QConv(Node):
    """Convolution (stride 1, zero padding) or linear layer, optionally followed by a nonlinearity.

    ``layout="nchw"``: a convolution on [B, C, H, W]; ``"last"``: a linear layer on [..., C] (``weight`` [Cout, Cin,
    1, 1] either way). ``depthwise``: groups == channels. ``act``: ``"gelu"`` or ``"halftanh"`` (0.5 tanh, LRP)
    by look-up table. ``out_groups``: output channel counts of separately scaled outputs (default one group);
    ``fixed``: per group, None (calibrated scale, ``bits``) or a number of fractional bits (fixed point,
    clamped to int32: the entropy parameters, logits, LRP residuals).
    """

    def __init__(self, name, weight, bias, padding=(0, 0), depthwise=False, act=None, out_groups=None, fixed=None,
                 layout="nchw", bits=16, lut_bits=14, mask=None):
        super().__init__(name)
        w = weight.detach().to(torch.float64)
        if mask is not None:  # masked convolution (e.g. a checkerboard context kernel): zero taps stay zero
            w = w * mask.to(torch.float64)
        self.w = w
        self.b = None if bias is None else bias.detach().to(torch.float64)
        self.padding = tuple(padding)
        self.depthwise, self.act, self.layout = depthwise, act, layout
        cout = w.shape[0]
        self.out_groups = list(out_groups or [cout])
        assert sum(self.out_groups) == cout, (name, self.out_groups, cout)
        self.fixed = list(fixed or [None] * len(self.out_groups))
        self.bits, self.lut_bits = bits, lut_bits
        self.pre = Observer()
        self.obs = [Observer() for _ in self.out_groups]

    # ------------------------------------------------------------------ float64 (calibration)
    def _float(self, x):
        parts = flat(x)
        if self.layout == "last":
            y = F.linear(torch.cat(parts, dim=-1), self.w[:, :, 0, 0], self.b)
        else:
            xin = torch.cat(parts, dim=1)
            y = F.conv2d(xin, self.w, self.b, padding=self.padding, groups=xin.shape[1] if self.depthwise else 1)
        if self.act is not None:
            self.pre.update(y)
            y = _ACTS[self.act](y)
        cdim = -1 if self.layout == "last" else 1
        for obs, part in zip(self.obs, torch.split(y, self.out_groups, dim=cdim)):
            obs.update(part)
        return y

    def _out_scales(self):
        return [2.0 ** -f if f is not None else o.scale(self.bits) for o, f in zip(self.obs, self.fixed)]

    def _out_bits(self):
        return [32 if f is not None else self.bits for f in self.fixed]

    # ------------------------------------------------------------------ build
    def build(self, parts: list[QT]) -> None:
        w, cout = self.w, self.w.shape[0]
        kh, kw = w.shape[-2:]
        out_s = torch.tensor([s for s, n in zip(self._out_scales(), self.out_groups) for _ in range(n)],
                             dtype=torch.float64)
        qp = (1 << (self.lut_bits - 1)) - 1
        pre_s = self.pre.scale(16) * QMAX[16] / qp if self.act is not None else None
        target = torch.full((cout,), pre_s, dtype=torch.float64) if self.act is not None else out_s
        p = {"in_scales": torch.tensor([x.s for x in parts], dtype=torch.float64),
             "in_bits": torch.tensor([x.bits for x in parts])}
        ratios, acc_bound, weights = [], 0.0, []
        if self.depthwise:
            assert len(parts) == 1
            sw = w.abs().amax(dim=(1, 2, 3)).clamp(min=1e-30) / WMAX
            wq = torch.round(w[:, 0] / sw.view(-1, 1, 1)).to(torch.int8)
            weights.append(wq)
            ratios.append(parts[0].s * sw / target)
            acc_bound += kh * kw * QMAX[parts[0].bits] * WMAX
        else:
            start = 0
            for x in parts:
                n = x.q.shape[-1] if self.layout == "last" else x.q.shape[1]
                wg = w[:, start : start + n]
                start += n
                sw = wg.abs().amax(dim=(1, 2, 3)).clamp(min=1e-30) / WMAX
                wq = torch.round(wg / sw.view(-1, 1, 1, 1)).to(torch.int8)
                weights.append(wq.reshape(cout, -1).t().contiguous())  # [Cin_g * kh * kw, Cout], (c, ki, kj)
                ratios.append(x.s * sw / target)
                acc_bound += wq.shape[1] * kh * kw * QMAX[x.bits] * WMAX
            assert start == w.shape[1], (self.name, start, w.shape)
        mult, sh = ops.fixed_multipliers(torch.stack(ratios), acc_bound)
        bias = torch.zeros(cout, dtype=torch.int64)
        if self.b is not None:
            bias = torch.round(self.b / target * 2.0 ** sh).to(torch.int64)
            if int(bias.abs().max()) >= ops.I64_SAFE:
                raise ValueError(f"{self.name}: bias does not fit the fixed point")
        p.update({"mult": mult, "shift": torch.tensor(sh), "bias": bias})
        for g, wq in enumerate(weights):
            p[f"w{g}"] = wq
        if self.act is not None:
            xs = torch.arange(-qp, qp + 1, dtype=torch.float64) * pre_s
            ys = _ACTS[self.act](xs)
            # one table per output group (its own output scale); the groups of an activated layer are rare
            for g, (s, bits) in enumerate(zip(self._out_scales(), self._out_bits())):
                p[f"lut{g}"] = ops.clamp_bits(torch.round(ys / s).to(torch.int64), bits).to(
                    torch.int16 if bits <= 16 else torch.int32)
        p["out_scales"] = torch.tensor(self._out_scales(), dtype=torch.float64)
        self.params = p

    # ------------------------------------------------------------------ integer
    def _int(self, x):
        parts = flat(x)
        if not self.built:
            self.build(parts)
        p = self.params
        for g, xp in enumerate(parts):
            self._check_in_scale(g, xp)
        mult, sh = p["mult"], int(p["shift"])
        # round half up folded into the bias: rshift_round(total + bias, sh) = (total + bias + 2**(sh-1)) >> sh,
        # one pass over the accumulators less (the same integers)
        bias = p["bias"] + (1 << (sh - 1)) if sh > 0 else p["bias"]
        if self.depthwise:
            total = ops.depthwise_conv2d(parts[0].q, p["w0"], self.padding)
            total.mul_(mult[0].view(1, -1, 1, 1)).add_(bias.view(1, -1, 1, 1))
        else:
            total = None
            for g, xp in enumerate(parts):
                if self.layout == "last":
                    lead = xp.q.shape[:-1]
                    acc = ops.matmul(xp.q.reshape(-1, xp.q.shape[-1]), p[f"w{g}"], xp.bits)
                else:
                    acc, (oh, ow) = ops.conv_gemm(xp.q, p[f"w{g}"], tuple(self.w.shape[-2:]), self.padding, xp.bits,
                                                  self._taps(g))
                    lead = (xp.q.shape[0], oh, ow)
                acc.mul_(mult[g])  # int64, fresh from the GEMM: scaled in place
                total = acc if total is None else total.add_(acc)
            total.add_(bias)
        if sh > 0:
            total.bitwise_right_shift_(sh)  # the arithmetic shift is the floor: with the half above, a rounding
        else:
            total = ops.rshift_round(total, sh)
        outs = []
        if self.act is not None:
            qp = (1 << (self.lut_bits - 1)) - 1
            total.clamp_(-qp, qp)
        cdim = 1 if self.depthwise else -1
        start = 0
        for g, (n, s, bits) in enumerate(zip(self.out_groups, self._stored_scales(), self._out_bits())):
            v = total.narrow(cdim, start, n) if len(self.out_groups) > 1 else total
            start += n
            if self.act is not None:
                q = ops.lut(p[f"lut{g}"], v, qp)
            else:
                q = ops.clamp_bits(v, bits)
            q = q.to(torch.int16 if bits <= 16 else torch.int64)
            if not self.depthwise:
                if self.layout == "last":
                    q = q.reshape(*lead, n)
                else:
                    q = q.view(*lead, n).permute(0, 3, 1, 2)
            outs.append(QT(q, s, bits))
        return outs[0] if len(outs) == 1 else outs

    def _taps(self, g: int):
        """Weights of input group ``g`` in :func:`ops.taps_first` order, derived once from the stored ones."""
        kh, kw = self.w.shape[-2:]
        w = self.params[f"w{g}"]
        cache = self.__dict__.setdefault("_taps_cache", {})
        if (kh, kw) == (1, 1):
            return None
        if g not in cache or cache[g][0] is not w:
            cache[g] = (w, ops.taps_first(w, kh, kw))
        return cache[g][1]

    def _check_in_scale(self, g, xp):
        want = float(self.params["in_scales"][g])
        if not math.isclose(want, xp.s, rel_tol=1e-12) or int(self.params["in_bits"][g]) != xp.bits:
            raise ValueError(f"{self.name}: input {g} has scale {xp.s!r}/{xp.bits} bits, built for "
                             f"{want!r}/{int(self.params['in_bits'][g])}")

    def _stored_scales(self):
        return [float(s) for s in self.params["out_scales"]]

    def __call__(self, x):
        return self._int(x) if is_int(x) else self._float(x)


# ---------------------------------------------------------------------------------------------- requantization
class QRequant(Node):
    """A fixed-point or differently scaled integer tensor brought to a calibrated scale of ``bits`` (e.g. the
    reconstructed latents, fixed point 2**-y_frac, as the context networks read them)."""

    def __init__(self, name, bits=16):
        super().__init__(name)
        self.bits = bits
        self.obs = Observer()

    def build(self, x: QT) -> None:
        s_out = self.obs.scale(self.bits)
        ratio = x.s / s_out
        # clamping the input where the output saturates anyway bounds the product (values of any size come in:
        # a latent symbol coded with an escape)
        lim = int(math.ceil((QMAX[self.bits] + 1) / ratio)) + 1
        mult, sh = ops.fixed_multipliers(torch.tensor([ratio]), float(lim))
        self.params = {"in_scales": torch.tensor([x.s], dtype=torch.float64), "mult": mult, "shift": torch.tensor(sh),
                       "limit": torch.tensor(lim), "out_scales": torch.tensor([s_out], dtype=torch.float64)}

    def __call__(self, x):
        if not isinstance(x, QT):
            self.obs.update(x)
            return x
        if not self.built:
            self.build(x)
        self._check_in("in_scales", x.s)
        p = self.params
        lim = int(p["limit"])
        q = ops.requantize(x.q.to(torch.int64).clamp(-lim, lim), p["mult"][0], int(p["shift"]), self.bits)
        return QT(q.to(torch.int16), float(p["out_scales"][0]), self.bits)


class QAdd(Node):
    """``a + b`` of two calibrated tensors into a calibrated scale: ``round((a m_a + b m_b) / 2**sh)``."""

    def __init__(self, name, bits=16):
        super().__init__(name)
        self.bits = bits
        self.obs = Observer()

    def __call__(self, a, b):
        if not isinstance(a, QT):
            out = a + b
            self.obs.update(out)
            return out
        if not self.built:
            s_out = self.obs.scale(self.bits)
            mult, sh = ops.fixed_multipliers(torch.tensor([a.s / s_out, b.s / s_out]),
                                             float(QMAX[a.bits] + QMAX[b.bits]))
            self.params = {"in_scales": torch.tensor([a.s, b.s], dtype=torch.float64), "mult": mult,
                           "shift": torch.tensor(sh), "out_scales": torch.tensor([s_out], dtype=torch.float64)}
        p = self.params
        if not (math.isclose(float(p["in_scales"][0]), a.s, rel_tol=1e-12)
                and math.isclose(float(p["in_scales"][1]), b.s, rel_tol=1e-12)):
            raise ValueError(f"{self.name}: inputs scaled unlike what it was built for")
        m = p["mult"]
        v = a.q.to(torch.int64) * m[0] + b.q.to(torch.int64) * m[1]
        q = ops.clamp_bits(ops.rshift_round(v, int(p["shift"])), self.bits)
        return QT(q.to(torch.int16), float(p["out_scales"][0]), self.bits)


# ---------------------------------------------------------------------------------------------- normalization
class QLayerNorm(Node):
    """Layer normalization over the last dimension without its affine part (folded into the next linear layer
    by the caller): :func:`fastlic.integer.ops.layer_norm`, then requantized to a calibrated scale."""

    def __init__(self, name, eps: float, bits=16):
        super().__init__(name)
        self.eps, self.bits = float(eps), bits
        self.obs = Observer()

    def build(self, x: QT) -> None:
        c = x.q.shape[-1]
        eps_term = int(round(self.eps * c ** 3 / x.s ** 2))
        d_max = 4 * c ** 3 * QMAX[x.bits] ** 2 + eps_term
        guard = max(0, (61 - d_max.bit_length()) // 2)
        s_out = self.obs.scale(self.bits)
        n_bound = math.sqrt(c) * 2.0 ** ops.NORM_FRAC + 2
        mult, sh = ops.fixed_multipliers(torch.tensor([2.0 ** -ops.NORM_FRAC / s_out]), n_bound)
        self.params = {"in_scales": torch.tensor([x.s], dtype=torch.float64), "eps_term": torch.tensor(eps_term),
                       "guard": torch.tensor(guard), "mult": mult, "shift": torch.tensor(sh),
                       "out_scales": torch.tensor([s_out], dtype=torch.float64)}

    def __call__(self, x):
        if not isinstance(x, QT):
            out = F.layer_norm(x, x.shape[-1:], eps=self.eps)
            self.obs.update(out)
            return out
        if not self.built:
            self.build(x)
        self._check_in("in_scales", x.s)
        p = self.params
        n = ops.layer_norm(x.q, int(p["eps_term"]), int(p["guard"]))
        q = ops.requantize(n, p["mult"][0], int(p["shift"]), self.bits)
        return QT(q.to(torch.int16), float(p["out_scales"][0]), self.bits)


# ---------------------------------------------------------------------------------------------- attention
#: fractional bits kept on the attention context (k^T v / sum) of the linear attention
CTX_FRAC = 8


class QLinearAttention(Node):
    """Efficient attention (Shen et al., WACV 2021) as MLIC++'s global contexts use it, in integers.

    Per head: keys softmaxed over positions, queries over channels, ``out = (softmax(k) v^T)^T softmax(q)``.
    Integer form: key numerators ``e = exp(k - max)`` (2**-16 units, :func:`ops.softmax_exp`), the context
    ``sum_L e v / sum_L e`` rounded to 2**-CTX_FRAC of v's units once per (channel, channel) pair, queries by
    :func:`ops.softmax`, the product exact (:func:`ops.bmm_exact`), then requantized to a calibrated scale.
    Inputs ``[B, D, L]``: keys and queries are logits in fixed point 2**-LOGIT_FRAC, values calibrated."""

    def __init__(self, name, heads: int, bits=16):
        super().__init__(name)
        self.heads, self.bits = max(1, heads), bits
        self.obs = Observer()

    def _float(self, q, k, v):
        b, dim, n = q.shape
        d = dim // self.heads
        sh = lambda t: t.reshape(b * self.heads, d, n)  # noqa: E731  contiguous heads
        key = torch.softmax(sh(k), dim=2)
        query = torch.softmax(sh(q), dim=1)
        context = key @ sh(v).transpose(1, 2)
        out = (context.transpose(1, 2) @ query).reshape(b, dim, n)
        self.obs.update(out)
        return out

    def __call__(self, q, k, v):
        if not isinstance(v, QT):
            return self._float(q, k, v)
        assert q.s == k.s == 2.0 ** -ops.LOGIT_FRAC
        b, dim, n = v.q.shape
        d = dim // self.heads
        sh = lambda t: t.reshape(b * self.heads, d, n)  # noqa: E731
        if not self.built:
            s_out = self.obs.scale(self.bits)
            core = v.s * 2.0 ** -(CTX_FRAC + ops.PROB_FRAC)
            bound = QMAX[v.bits] * 2.0 ** CTX_FRAC * (2.0 ** ops.PROB_FRAC + d)
            mult, shift = ops.fixed_multipliers(torch.tensor([core / s_out]), bound)
            self.params = {"in_scales": torch.tensor([v.s], dtype=torch.float64), "mult": mult,
                           "shift": torch.tensor(shift), "out_scales": torch.tensor([s_out], dtype=torch.float64)}
        self._check_in("in_scales", v.s)
        p = self.params
        # integers held in float64 where their bounds allow (exact: ops.div_round_f64, ops.bmm_exact)
        e = ops.softmax_exp(sh(k.q.to(torch.int64)), dim=2, table=ops.EXP_TABLE_F64)  # [BH, d, L]
        total = e.sum(dim=2, keepdim=True)
        num_bound = n * float(1 << ops.EXP_FRAC) * QMAX[v.bits]
        num = ops.bmm_exact(e, sh(v.q).transpose(1, 2), num_bound, as_int=False)  # [BH, d, d]
        if 2 * num_bound * 2.0 ** CTX_FRAC + n * 2.0 ** ops.EXP_FRAC < ops.F64_EXACT:
            ctx = ops.div_round_f64(num.mul_(2.0 ** CTX_FRAC), total)
        else:  # very large images: int64 division
            ctx = ops.div_round(num.to(torch.int64) << CTX_FRAC, total.to(torch.int64))
        query = ops.softmax_f64(sh(q.q.to(torch.int64)), dim=1)
        out = ops.bmm_exact(ctx.transpose(1, 2), query,
                            QMAX[v.bits] * 2.0 ** CTX_FRAC * (2.0 ** ops.PROB_FRAC + d)).reshape(b, dim, n)
        qo = ops.requantize(out, p["mult"][0], int(p["shift"]), self.bits)
        return QT(qo.to(torch.int16), float(p["out_scales"][0]), self.bits)


class QWindowAttention(Node):
    """The checkerboard attention of MLIC++'s local context (§3.3) on unfolded 5x5 windows, in integers.

    ``q k^T`` exact, times ``head_dim**-0.5`` requantized to logits in 2**-LOGIT_FRAC, plus the relative position
    bias and the mask (-100, both in the same fixed point), integer softmax (:func:`ops.softmax`), ``p v`` exact,
    requantized to a calibrated scale. Inputs ``[B, L, heads, kk, head_dim]``."""

    def __init__(self, name, bias_table: torch.Tensor, scale: float, bits=16):
        super().__init__(name)
        self.bias = bias_table.detach().to(torch.float64)  # [heads, kk, kk]
        self.scale, self.bits = float(scale), bits
        self.obs = Observer()

    def __call__(self, q, k, v, mask):
        if not isinstance(v, QT):
            attn = (q * self.scale) @ k.transpose(-2, -1) + self.bias.unsqueeze(0).unsqueeze(1)
            attn = (attn + mask.to(torch.float64).unsqueeze(0).unsqueeze(2)).softmax(dim=-1)
            out = attn @ v
            self.obs.update(out)
            return out
        hd, kk = q.q.shape[-1], q.q.shape[-2]
        if not self.built:
            lf = 2.0 ** -ops.LOGIT_FRAC
            acc_bound = hd * QMAX[q.bits] * QMAX[k.bits]
            lm, lsh = ops.fixed_multipliers(torch.tensor([q.s * k.s * self.scale / lf]), acc_bound)
            s_out = self.obs.scale(self.bits)
            core = v.s * 2.0 ** -ops.PROB_FRAC
            bound = QMAX[v.bits] * (2.0 ** ops.PROB_FRAC + kk)
            om, osh = ops.fixed_multipliers(torch.tensor([core / s_out]), bound)
            self.params = {"in_scales": torch.tensor([q.s, k.s, v.s], dtype=torch.float64),
                           "logit_mult": lm, "logit_shift": torch.tensor(lsh),
                           "bias": torch.round(self.bias / lf).to(torch.int64),
                           "mask_value": torch.tensor(int(round(-100.0 / lf))),
                           "mult": om, "shift": torch.tensor(osh),
                           "out_scales": torch.tensor([s_out], dtype=torch.float64)}
        p = self.params
        for i, t in enumerate((q, k, v)):
            if not math.isclose(float(p["in_scales"][i]), t.s, rel_tol=1e-12):
                raise ValueError(f"{self.name}: input {i} scaled unlike what it was built for")
        acc_bound = hd * QMAX[q.bits] * QMAX[k.bits]
        lm, lsh = int(p["logit_mult"][0]), int(p["logit_shift"])
        bias, mask_value = p["bias"], int(p["mask_value"])
        # the logits' bound: the products' after the shift, plus the bias and the mask
        logit_bound = acc_bound * lm / 2.0 ** lsh + 2 + float(bias.abs().max()) + abs(mask_value)
        out_bound = QMAX[v.bits] * (2.0 ** ops.PROB_FRAC + kk)
        om, osh = int(p["mult"][0]), int(p["shift"])
        if (ops.mul_shift_f64_ok(lm, lsh, acc_bound) and ops.mul_shift_f64_ok(om, osh, out_bound)
                and logit_bound < 2.0 ** 52):
            # every value an integer held in float64 (exact: ops.mul_shift_f64, ops.softmax_f64), no int64 pass
            acc = ops.bmm_exact(q.q, k.q.transpose(-2, -1), acc_bound, as_int=False)
            logits = ops.mul_shift_f64(acc, lm, lsh)
            logits.add_(bias.to(torch.float64).unsqueeze(0).unsqueeze(1))
            logits.add_(((mask != 0).to(torch.float64) * float(mask_value)).unsqueeze(0).unsqueeze(2))
            prob = ops.softmax_f64(logits, dim=-1)
            out = ops.bmm_exact(prob, v.q, out_bound, as_int=False)
            qo = ops.clamp_bits(ops.mul_shift_f64(out, om, osh), self.bits)
            return QT(qo.to(torch.int32).to(torch.int16), float(p["out_scales"][0]), self.bits)
        acc = ops.bmm_exact(q.q, k.q.transpose(-2, -1), acc_bound)
        logits = ops.rshift_round(acc * lm, lsh)
        logits = logits + bias.unsqueeze(0).unsqueeze(1)
        logits = logits + ((mask != 0).to(torch.int64) * mask_value).unsqueeze(0).unsqueeze(2)
        prob = ops.softmax_f64(logits, dim=-1)  # exact integers in float64: the next product takes them so
        out = ops.bmm_exact(prob, v.q, out_bound)
        qo = ops.requantize(out, p["mult"][0], osh, self.bits)
        return QT(qo.to(torch.int16), float(p["out_scales"][0]), self.bits)
