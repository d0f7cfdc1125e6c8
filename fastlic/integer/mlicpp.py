"""MLIC++'s entropy-parameter path in exact integer arithmetic, by post-training quantization of a float model.

The networks are those of :mod:`fastlic.contexts.mlicpp` and :class:`fastlic.models.mlicpp.HyperSynthesis` (MLIC++,
Jiang et al., arXiv 2307.15421: hyper synthesis, channel context §3.2, local checkerboard attention §3.3, global
intra/inter-slice linear attention §3.4, latent residual prediction, entropy parameters), rewritten once on the
two-mode layers of :mod:`fastlic.integer.nodes`, so that the same code runs

* in float64 for calibration (and reproduces the float model's scales and means: ``mlicpp_test.py``), and
* in integers for coding: the hyper-latent enters as ``symbol * 2**16 + median`` (median rounded once), the
  latents leave as ``symbol * 2**y_frac + mean`` with integer means, the scales are integers in 2**-scale_frac and
  the Gaussian scale-table index is ``searchsorted`` of the scale against integer thresholds
  ``floor(boundary * 2**scale_frac)``. The index is then an exact function of integers: no decision is guarded
  (a scale s = S / 2**f exceeds a real boundary b exactly when the integer S exceeds floor(b 2**f)).

The coding order is MLIC++'s (§3.1), run by the float model's own driver, :meth:`fastlic.models.mlicpp.MLICPlusPlus._slices`,
on this class's node methods (:func:`fastlic.numerics.entropy_parameters` picks them or the float networks); the
only departures from the float model are the quantization itself (measured: ``benchmarks/integer_ptq.py``).
The analysis and synthesis transforms stay the float model's: they decide nothing the decoder shares.
"""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..contexts import checkerboard as ckbd
from ..contexts.mlicpp import _local_mask, _relative_position_index
from ..entropy.coder import Decoder, Encoder
from ..models.base import coded_checksum
from . import ops
from .nodes import QT, QAdd, QConv, QLayerNorm, QLinearAttention, QRequant, QuantConfig, QWindowAttention, mv

#: fractional bits of the hyper-latent as it enters h_s (symbol * 2**Z_FRAC + rounded median)
Z_FRAC = 16


def _split(x, n: int):
    """The ``n`` separately scaled output groups of a node: a list of QT (integer) or chunks (float)."""
    return list(x) if isinstance(x, list) else list(x.chunk(n, 1))


def _add_fixed(a, b):
    """Sum of two fixed-point tensors of the same scale (the reconstructed latents and their LRP residual)."""
    if isinstance(a, QT):
        assert a.s == b.s
        return QT(a.q.to(torch.int64) + b.q.to(torch.int64), a.s, 32)
    return a + b


class IntegerMLICPP:
    """Integer entropy-parameter path of an :class:`~fastlic.models.mlicpp.MLICPlusPlus` (or its variable-rate
    subclass). Build with the float model, :meth:`calibrate` on images, then code with :meth:`forward`,
    :meth:`compress`, :meth:`decompress`; :meth:`state_dict` / :meth:`load_state_dict` carry every integer
    constant (nothing is recomputed from floats when a saved state is loaded)."""

    def __init__(self, model, cfg: QuantConfig | None = None):
        self.model = model
        self.cfg = cfg or QuantConfig()
        self.nodes: dict = collections.OrderedDict()
        self.C, self.S = model.slice_ch, model.slice_num
        self.meta: dict = {}
        self._make_nodes()

    # ------------------------------------------------------------------------------ node construction
    def _add(self, node):
        assert node.name not in self.nodes, node.name
        self.nodes[node.name] = node
        return node

    def _conv(self, name, conv: nn.Conv2d, act=None, **kw):
        depthwise = conv.groups > 1
        if depthwise:
            assert conv.groups == conv.in_channels == conv.out_channels, name
        assert conv.stride == (1, 1) and conv.dilation == (1, 1), name
        return self._add(QConv(name, conv.weight, conv.bias, padding=conv.padding, depthwise=depthwise, act=act,
                               bits=self.cfg.act_bits, lut_bits=self.cfg.lut_bits, **kw))

    def _linear(self, name, weight, bias, act=None, **kw):
        return self._add(QConv(name, weight[:, :, None, None], bias, layout="last", act=act, bits=self.cfg.act_bits,
                               lut_bits=self.cfg.lut_bits, **kw))

    def _seq(self, name, seq: nn.Sequential, last_act=None, **last_kw):
        """Nodes of a ``[conv, GELU, conv, GELU, ..., conv]`` stack, each GELU fused into the conv before it."""
        mods = list(seq)
        convs = [m for m in mods if isinstance(m, nn.Conv2d)]
        out = []
        for j, conv in enumerate(convs):
            last = j == len(convs) - 1
            out.append(self._conv(f"{name}.{j}", conv, act=last_act if last else "gelu", **(last_kw if last else {})))
        return out

    def _make_nodes(self):
        m, cfg, C = self.model, self.cfg, self.C
        yf, sf, L = cfg.y_frac, cfg.scale_frac, ops.LOGIT_FRAC
        self.z_in = self._add(QRequant("z_in", cfg.latent_bits))
        inc = m.h_s.increase
        self.hs = [self._conv("hs.0", inc[0], "gelu"), self._conv("hs.1", inc[2][0], "gelu"),
                   self._conv("hs.2", inc[4], "gelu"), self._conv("hs.3", inc[6][0], "gelu"),
                   self._conv("hs.4", inc[8], out_groups=[m.M, m.M])]
        self.ep = {}
        self.lrp_nodes = {}
        for kind, mods in (("a", m.entropy_parameters_anchor), ("n", m.entropy_parameters_nonanchor)):
            for i, ep in enumerate(mods):
                self.ep[kind, i] = self._seq(f"ep_{kind}{i}", ep.fusion, out_groups=[C, C], fixed=[sf, yf])
        for kind, mods in (("a", m.lrp_anchor), ("n", m.lrp_nonanchor)):
            for i, lrp in enumerate(mods):
                self.lrp_nodes[kind, i] = self._seq(f"lrp_{kind}{i}", lrp.lrp_transform, last_act="halftanh", fixed=[yf])
        self.cc, self.inter_nodes, self.intra_nodes, self.local_nodes, self.yq = {}, {}, {}, {}, {}
        for i in range(self.S):
            for tag in ("a0", "a1", "n0", "n1"):
                self.yq[tag, i] = self._add(QRequant(f"y_{tag}{i}", cfg.latent_bits))
            self.local_nodes[i] = self._local_nodes(f"local{i}", m.local_context[i])
            if i == 0:
                continue
            self.cc[i] = self._seq(f"cc{i}", m.channel_context[i].fushion)
            g = m.global_inter_context[i]
            self.inter_nodes[i] = self._attn_nodes(f"inter{i}", g, g.num_heads, skip=True)
            g = m.global_intra_context[i]
            self.intra_nodes[i] = self._attn_nodes(f"intra{i}", g, g.num_heads, skip=False)

    def _attn_nodes(self, name, g, heads, skip: bool) -> dict:
        L = ops.LOGIT_FRAC
        n = {}
        for part in ("queries", "keys", "values"):
            seq = getattr(g, part)
            fixed = dict(fixed=[L]) if part != "values" else {}
            n[part] = (self._conv(f"{name}.{part}.0", seq[0]), self._conv(f"{name}.{part}.1", seq[1], **fixed))
        n["att"] = self._add(QLinearAttention(f"{name}.att", heads, self.cfg.act_bits))
        n["reprojection"] = self._conv(f"{name}.reprojection", g.reprojection)
        n["mlp"] = self._seq(f"{name}.mlp", g.mlp)
        if skip:
            n["skip"] = self._conv(f"{name}.skip", g.skip)
        n["add"] = self._add(QAdd(f"{name}.add", self.cfg.act_bits))
        return n

    def _local_nodes(self, name, lc) -> dict:
        c, k = lc.dim, lc.window_size
        kk = k * k
        w, b = lc.qkv_proj.weight.detach().double(), lc.qkv_proj.bias.detach().double()
        g1, b1 = lc.norm1.weight.detach().double(), lc.norm1.bias.detach().double()
        # LayerNorm's affine part folded into the next linear layer: W diag(gamma), b + W beta
        n = {"ln1": self._add(QLayerNorm(f"{name}.ln1", lc.norm1.eps, self.cfg.act_bits)),
             "qkv": self._linear(f"{name}.qkv", w * g1, b + w @ b1, out_groups=[c, c, c])}
        bias = lc.relative_position_table.detach()[_relative_position_index(k).view(-1)].view(kk, kk, lc.num_heads)
        n["attn"] = self._add(QWindowAttention(f"{name}.attn", bias.permute(2, 0, 1), lc.scale, self.cfg.act_bits))
        n["fusion"] = self._linear(f"{name}.fusion", lc.fusion.weight.detach().reshape(c * 2, c * kk),
                                   lc.fusion.bias)
        n["proj"] = self._linear(f"{name}.proj", lc.proj.weight.detach(), lc.proj.bias)
        n["ln2"] = self._add(QLayerNorm(f"{name}.ln2", lc.norm2.eps, self.cfg.act_bits))
        w1, bb1 = lc.mlp.fc1.weight.detach().double(), lc.mlp.fc1.bias.detach().double()
        g2, b2 = lc.norm2.weight.detach().double(), lc.norm2.bias.detach().double()
        n["fc1"] = self._linear(f"{name}.fc1", w1 * g2, bb1 + w1 @ b2, act="gelu")
        n["fc2"] = self._linear(f"{name}.fc2", lc.mlp.fc2.weight.detach(), lc.mlp.fc2.bias)
        n["add"] = self._add(QAdd(f"{name}.add", self.cfg.act_bits))
        n["dims"] = (c, k, lc.num_heads, lc.head_dim)
        return n

    # ------------------------------------------------------------------------------ the graph (both modes)
    @staticmethod
    def _run_seq(nodes, x):
        for node in nodes:
            x = node(x)
        return x

    def _h_s(self, z):
        ps = lambda t: F.pixel_shuffle(t, 2)  # noqa: E731  (GELU is elementwise: applying it before is the same)
        x = self.hs[0](z)
        x = mv(ps, self.hs[1](x))
        x = self.hs[2](x)
        x = mv(ps, self.hs[3](x))
        return self.hs[4](x)

    def _ep(self, kind, i, x, anchors: bool):
        hw = x[0].q.shape[-2:] if isinstance(x[0], QT) else x[0].shape[-2:]
        out = self._run_seq(self.ep[kind, i], mv(lambda t: ckbd.half(t, anchors), x))
        return _split(mv(lambda t: ckbd.unhalf(t, hw, anchors), out), 2)

    def _global(self, n, q_in, k_in, v_in, squeeze):
        """Shared part of the global contexts: q/k/v branches, linear attention, reprojection."""
        q = n["queries"][1](n["queries"][0](q_in))
        k = n["keys"][1](n["keys"][0](k_in))
        v = n["values"][1](n["values"][0](v_in))
        return n["att"](*(mv(squeeze[j], t) for j, t in enumerate((q, k, v))))

    def _inter(self, i, done):
        n = self.inter_nodes[i]
        ref = done[0].q if isinstance(done[0], QT) else done[0]
        b, _, h, w = ref.shape
        dim = self.C * i
        flatten = lambda t: t.reshape(b, dim, h * w)  # noqa: E731
        att = self._global(n, done, done, done, (flatten,) * 3)
        a = n["reprojection"](mv(lambda t: t.reshape(b, dim, h, w), att))
        return n["add"](n["skip"](a), self._run_seq(n["mlp"], a))

    def _intra(self, i, prev, a_hat):
        n = self.intra_nodes[i]
        b, c, h, w = (prev.q if isinstance(prev, QT) else prev).shape
        half = h * w // 2
        sq = lambda anchors: (lambda t: ckbd.squeeze(t, anchors).reshape(b, c, half))  # noqa: E731
        att = self._global(n, mv(ckbd.nonanchor, prev), mv(ckbd.anchor, prev), a_hat,
                           (sq(False), sq(True), sq(True)))
        a = n["reprojection"](mv(lambda t: ckbd.unsqueeze(t.reshape(b, c, h, w // 2), False), att))
        return n["add"](a, self._run_seq(n["mlp"], a))

    def _local(self, i, x):
        n = self.local_nodes[i]
        c, k, nh, hd = n["dims"]
        kk = k * k
        b, _, h, w = (x.q if isinstance(x, QT) else x).shape
        t = n["ln1"](mv(lambda u: u.reshape(b, c, h * w).permute(0, 2, 1), x))
        qkv = n["qkv"](t)
        parts = qkv if isinstance(qkv, list) else list(qkv.split(c, dim=-1))
        at = ckbd.half_index(h, w, False, (x.q if isinstance(x, QT) else x).device)
        n_pos = at.numel()

        def windows(u):  # [b, hw, c] -> [b, L, heads, kk, head_dim] (the float model's unfold and head split)
            u = u.reshape(b, h, w, c).permute(0, 3, 1, 2)
            up = F.pad(u, ((k - 1) // 2,) * 4).unfold(2, k, 1).unfold(3, k, 1)  # [b, c, h, w, k, k]
            win = up.permute(0, 1, 4, 5, 2, 3).reshape(b, c * kk, h * w).index_select(2, at)
            return win.permute(0, 2, 1).reshape(b, n_pos, hd, nh, kk).permute(0, 1, 3, 4, 2)

        q, kt, v = (mv(windows, p) for p in parts)
        mask = _local_mask(h, w, k).to(at.device).index_select(0, at)
        out = n["attn"](q, kt, v, mask)
        merge = lambda u: (u.reshape(b, n_pos, nh, k, k, hd).permute(0, 1, 3, 4, 2, 5)  # noqa: E731
                           .reshape(b, n_pos, kk, c).transpose(2, 3).reshape(b, n_pos, c * kk))
        out = n["proj"](n["fusion"](mv(merge, out)))
        out = n["add"](out, n["fc2"](n["fc1"](n["ln2"](out))))
        return mv(lambda u: ckbd.unhalf(u.permute(0, 2, 1).unsqueeze(-1), (h, w), False), out)

    # ------------------------------------------------------------------------------ what the driver calls
    # MLIC++'s coding order is run by the float model's driver, :meth:`MLICPlusPlus._slices`, on these methods
    # (the counterpart of :class:`fastlic.models.mlicpp._FloatNet`); in calibration they run in float64.
    def hyper(self, z_hat, z_sym=None):
        """h_s of the hyper-latent: of ``z_sym`` as fixed point (integer mode), or of ``z_hat`` in float64
        (calibration, ``z_sym`` None)."""
        return self._h_s(self.z_in(self._z_fixed(z_sym) if z_sym is not None else z_hat.double()))

    split = staticmethod(_split)

    def params(self, kind: str, i: int, ctx: list):
        return self._ep(kind, i, ctx, kind == "a")

    def contexts(self, i: int, done: list):
        return self._inter(i, done), self._run_seq(self.cc[i], done)

    def lrp(self, kind: str, i: int, inputs: list):
        return mv(ckbd.anchor if kind == "a" else ckbd.nonanchor, self._run_seq(self.lrp_nodes[kind, i], inputs))

    def local(self, i: int, a_hat):
        return self._local(i, a_hat)

    def intra(self, i: int, prev, a_hat):
        return self._intra(i, prev, a_hat)

    add = staticmethod(_add_fixed)

    def latent(self, y, tag: str, i: int):
        """A reconstructed latent (fixed point, 2**-y_frac) requantized to an activation where a network reads it."""
        return self.yq[tag, i](y)

    @staticmethod
    def join(out: list):
        """The reconstructed slices as they are: fixed-point QT (integer mode) or float64 (calibration)."""
        return out

    def y_hat(self, fixed: list) -> torch.Tensor:
        return self.y_float(fixed) if isinstance(fixed[0], QT) else torch.cat(fixed, 1)

    def forward_quantizer(self, y, mode: str = "eval"):
        return _IntForward(y.double(), self)

    def encode_quantizer(self, y, encoder: Encoder):
        return _IntEncode(y.double(), self, encoder)

    def decode_quantizer(self, decoder: Decoder):
        return _IntDecode(self, decoder)

    def slices(self, z_hat, z_sym, q) -> list:
        """The driver's pass on this path: -> the reconstructed slices (:meth:`join`)."""
        return self.model._slices(self.hyper(z_hat, z_sym), q, self)

    # ------------------------------------------------------------------------------ latents
    def _latents(self, x):
        """(y, z) of a padded image from the float model's analysis transforms (encoder side)."""
        y = self.model.analysis(x)
        return y, self.model.h_a(y)

    def _z_fixed(self, z_sym: torch.Tensor) -> QT:
        return QT((z_sym.to(torch.int64) << Z_FRAC) + self.meta["z_median"].to(z_sym.device), 2.0 ** -Z_FRAC, 32)

    # ------------------------------------------------------------------------------ calibration
    @torch.no_grad()
    def calibrate(self, images, qualities=(None,)) -> None:
        """Record activation ranges on ``images`` ([1, 3, H, W] in [0, 1]) at each variable-rate ``quality``
        (None: the model's current one), then build every integer constant (an integer pass on the first)."""
        m = self.model
        for quality in qualities:
            if quality is not None:
                m.set_quality(quality)
            for x in images:
                y, z = self._latents(m.pad(x))
                z_hat, _ = m.entropy_bottleneck(z, training=False)
                self.slices(z_hat, None, _FloatQuantizer(y.double(), self.C))
        eb, gc = m.entropy_bottleneck, m.gaussian_conditional
        self.meta = {"z_median": torch.round(eb.medians().detach().double() * 2.0 ** Z_FRAC).to(torch.int64),
                     # index = #{boundaries b < s}; for s = S 2**-f with S an integer: #{floor(b 2**f) < S}
                     "thresholds": torch.floor(gc._bounds() * 2.0 ** self.cfg.scale_frac).to(torch.int64)}
        y, z = self._latents(m.pad(images[0]))
        self.slices(None, eb.symbols(z), _IntForward(y.double(), self))
        missing = [k for k, n in self.nodes.items() if not n.built]
        assert not missing, missing

    # ------------------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        sd = {f"meta.{k}": v for k, v in self.meta.items()}
        for name, node in self.nodes.items():
            for k, v in node.params.items():
                sd[f"{name}.{k}"] = v
        return sd

    def load_state_dict(self, sd: dict) -> None:
        self.meta = {k[5:]: v for k, v in sd.items() if k.startswith("meta.")}
        for name, node in self.nodes.items():
            pre = name + "."
            node.params = {k[len(pre):]: v for k, v in sd.items() if k.startswith(pre) and "." not in k[len(pre):]}
            if not node.params:
                raise KeyError(f"integer state has no constants for {name}")

    # ------------------------------------------------------------------------------ coding
    def scales_float(self, s: QT) -> torch.Tensor:
        return s.q.to(torch.float64) * 2.0 ** -self.cfg.scale_frac

    def indexes(self, s: QT) -> torch.Tensor:
        """Scale-table indexes of integer scales: integer comparisons only."""
        t = self.meta["thresholds"].to(s.q.device)
        return torch.searchsorted(t, s.q.to(torch.int64).contiguous(), side="left")

    def y_float(self, fixed: list) -> torch.Tensor:
        """The reconstructed latent (for the synthesis) from its fixed point: exact in float64."""
        return torch.cat([f.q.to(torch.float64) for f in fixed], 1) * 2.0 ** -self.cfg.y_frac

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> dict:
        """Evaluation pass on the integer path: likelihoods of y (from the integer scales and means) and z,
        reconstruction, and the coded integers' table indexes; like ``model(x)`` in evaluation."""
        h, w = x.shape[-2:]
        out = self.from_latents(*self._latents(self.model.pad(x)))
        out["x_hat"] = self.model.crop(out["x_hat"], h, w)
        return out

    @torch.no_grad()
    def from_latents(self, y, z) -> dict:
        """:meth:`forward` on padded latents: the model's evaluation pass on this path (also the integer
        scales, means and table indexes of the coded halves, in coding order)."""
        return self.model._run_forward(y, z, "eval", self)

    @torch.no_grad()
    def encode_latents(self, y, z):
        """Code padded latents (y, z) -> ([y stream, z stream], y_hat (exact), checksum)."""
        return self.model._run_encode(y, z, self)

    @torch.no_grad()
    def decode_latents(self, strings, padded_hw, verify=None):
        """Inverse of :meth:`encode_latents` -> (y_hat, checksum); the latent grid is ``padded_hw / 16``.
        ``verify(k, digest)`` as in :meth:`fastlic.models.base.CompressionModel.decompress`: z (stream 1) is
        checked, with its sentinel, before y is decoded."""
        return self.model._run_decode(strings, padded_hw, verify, self)

    @torch.no_grad()
    def compress(self, x: torch.Tensor) -> dict:
        """Streams of one image ([1, 3, H, W]): {"strings": [y, z], "shape", "checksum", "y_hat"}."""
        strings, y_hat, checksum = self.encode_latents(*self._latents(self.model.pad(x)))
        return {"strings": strings, "shape": tuple(x.shape[-2:]), "checksum": checksum, "y_hat": y_hat}

    @torch.no_grad()
    def decompress(self, strings, shape) -> dict:
        m = self.model
        h, w = int(shape[0]), int(shape[1])
        y_hat, checksum = self.decode_latents(strings, m.padded_size(h, w))
        return {"x_hat": m.crop(m.synthesis(y_hat), h, w), "checksum": checksum, "y_hat": y_hat}


# ---------------------------------------------------------------------------------------------- quantizers
class _FloatQuantizer:
    """Calibration: rounding around the float means, as the float model's evaluation pass."""

    def __init__(self, y, c):
        self.y, self.c = y, c
        self.params = []

    def _q(self, i, scales, means, pick):
        self.params.append((scales, means))
        return torch.round(pick(self.y[:, i * self.c : (i + 1) * self.c]) - means) + means

    def anchor(self, i, scales, means):
        return self._q(i, scales, means, ckbd.anchor)

    def nonanchor(self, i, scales, means):
        return self._q(i, scales, means, ckbd.nonanchor)


class _IntQuantizer:
    def __init__(self, im: IntegerMLICPP):
        self.im = im
        self.f = im.cfg.y_frac

    def _fixed(self, sym: torch.Tensor, means: QT, anchors: bool) -> QT:
        pick = ckbd.anchor if anchors else ckbd.nonanchor
        return QT(pick((sym.to(torch.int64) << self.f) + means.q.to(torch.int64)), means.s, 32)

    def anchor(self, i, scales, means):
        return self._code(i, scales, means, True)

    def nonanchor(self, i, scales, means):
        return self._code(i, scales, means, False)


class _IntForward(_IntQuantizer):
    """Rounding around the integer means, likelihoods from the integer scales and means (float64, estimate only)."""

    def __init__(self, y, im):
        super().__init__(im)
        self.y = y
        self.likelihoods, self.indexes, self.scales, self.means = [], [], [], []

    def extras(self) -> dict:
        return {"indexes": self.indexes, "scales": self.scales, "means": self.means}

    def _code(self, i, scales, means, anchors):
        c = self.im.C
        y = self.y[:, i * c : (i + 1) * c]
        mu = means.q.to(torch.float64) * 2.0 ** -self.f
        sym = torch.round(y - mu)
        gc = self.im.model.gaussian_conditional
        s = self.im.scales_float(scales)
        lik = gc.likelihood_lower_bound(gc.likelihood(sym + mu, s, mu))
        self.likelihoods.append(ckbd.gather(lik, anchors)[None])
        self.indexes.append(ckbd.gather(self.im.indexes(scales), anchors))
        self.scales.append(ckbd.gather(scales.q, anchors))
        self.means.append(ckbd.gather(means.q, anchors))
        return self._fixed(sym, means, anchors)


class _IntEncode(_IntQuantizer):
    def __init__(self, y, im, enc: Encoder):
        super().__init__(im)
        self.y, self.enc = y, enc

    def _code(self, i, scales, means, anchors):
        c = self.im.C
        y = self.y[:, i * c : (i + 1) * c]
        sym = torch.round(y - means.q.to(torch.float64) * 2.0 ** -self.f)  # the encoder's choice: it is sent
        idx = ckbd.gather(self.im.indexes(scales), anchors)
        self.enc.encode(ckbd.gather(sym, anchors).long().numpy(), idx.numpy(), self.im.model.gaussian_conditional.tables)
        return self._fixed(sym, means, anchors)


class _IntDecode(_IntQuantizer):
    def __init__(self, im, dec: Decoder):
        super().__init__(im)
        self.dec = dec

    def _code(self, i, scales, means, anchors):
        idx = ckbd.gather(self.im.indexes(scales), anchors)
        sym = torch.from_numpy(self.dec.decode(idx.numpy(), self.im.model.gaussian_conditional.tables))
        full = ckbd.scatter(sym.reshape(idx.shape), scales.q.shape, anchors)
        return self._fixed(full, means, anchors)


def package_calibration_images() -> list:
    """The calibration set the package ships: the left half of ``fastlic/data/kodim23.png`` as two 256x384
    crops and their mirror images ([1, 3, H, W] in [0, 1]); the right half stays for measuring."""
    from ..io import read_image  # noqa: PLC0415

    img = read_image(Path(__file__).resolve().parents[1] / "data" / "kodim23.png")
    left = [img[:256, :384], img[256:512, :384]]
    crops = left + [c[:, ::-1] for c in left]
    return [torch.from_numpy(np.ascontiguousarray(c)).permute(2, 0, 1)[None].float() / 255 for c in crops]


def quantize_mlicpp(model, images, qualities=(None,), cfg: QuantConfig | None = None) -> IntegerMLICPP:
    """Post-training quantization of ``model``'s entropy-parameter path on ``images`` (see :class:`IntegerMLICPP`)."""
    im = IntegerMLICPP(model, cfg)
    im.calibrate(images, qualities)
    return im

