"""MLIC++: linear-complexity multi-reference entropy modeling.

Jiang, Yang, Zhai, Gao, Wang, "MLIC++: Linear Complexity Multi-Reference Entropy Modeling for Learned Image
Compression", arXiv 2307.15421 (ACM TOMM 2025). The architecture, key names and numerics follow the released
reference model (``shared/specs/mlicpp.md``), so that published checkpoints load with
:meth:`MLICPlusPlus.from_reference_state_dict` and give the published model.

Coding order (§3.1): the latent y (M channels) is split into S slices; each slice is coded in two checkerboard
steps, anchors ((row + col) odd) then non-anchors, so 2S steps in all. Slice i's anchors use the hyperprior,
the channel context and the global inter-slice context; its non-anchors add the local (checkerboard attention)
and global intra-slice contexts. Latent residual prediction refines every reconstructed half.

One driver, :meth:`MLICPlusPlus._slices`, runs this order for ``forward``, ``compress`` and ``decompress``; only
the *quantizer* it is given differs (straight-through rounding and likelihoods, encoding, or decoding). All
three therefore compute the same entropy parameters with the same operations, and in evaluation mode the
driver runs on the float64 parameter path of :mod:`fastlic.numerics`, whose guarded table choices make the
decoder take exactly the encoder's decisions on any machine, thread count or device.

The encoder can refine the latents by online rate-distortion optimization (``compress(x, ordo=True, lmbda=λ)``,
:mod:`fastlic.ordo`): not part of MLIC++, borrowed from eContextformer (§III-E); the decoder is unchanged.
"""

from __future__ import annotations

import dataclasses
import re

import torch
import torch.nn as nn

from ..contexts import checkerboard as ckbd
from ..contexts.mlicpp import (ChannelContext, EntropyParameters, LatentResidualPrediction, LinearGlobalInterContext,
                               LinearGlobalIntraContext, LocalContext)
from ..entropy.bottleneck import EntropyBottleneck
from ..entropy.coder import Decoder, Encoder
from ..entropy.gaussian import GaussianConditional
from ..entropy.ops import ste_round
from ..errors import CheckpointError
from ..layers import ResidualBlock, ResidualBlockUpsample, ResidualBlockWithStride, conv3x3, subpel_conv3x3
from ..ordo import OnlineRDO
from ..registry import register_model
from .. import numerics
from .base import CompressionModel, coded_checksum
from .gain import variable_rate


class AnalysisTransform(nn.Module):
    """g_a: three (strided residual block, residual block) pairs, then conv3 stride 2 (16x down)."""

    def __init__(self, N: int, M: int):
        super().__init__()
        self.analysis_transform = nn.Sequential(
            ResidualBlockWithStride(3, N), ResidualBlock(N, N),
            ResidualBlockWithStride(N, N), ResidualBlock(N, N),
            ResidualBlockWithStride(N, N), ResidualBlock(N, N),
            conv3x3(N, M, stride=2))

    def forward(self, x):
        return self.analysis_transform(x)


class SynthesisTransform(nn.Module):
    """g_s (16x up). ``variant="2023"`` starts with ResidualBlock(M -> N) and a 1x1 skip instead of
    ResidualBlock(M) + ResidualBlockUpsample(M -> N)."""

    def __init__(self, N: int, M: int, variant: str = "current"):
        super().__init__()
        first = [ResidualBlock(M, N), ResidualBlockUpsample(N, N)] if variant == "2023" else \
                [ResidualBlock(M, M), ResidualBlockUpsample(M, N)]
        self.synthesis_transform = nn.Sequential(
            *first, ResidualBlock(N, N), ResidualBlockUpsample(N, N), ResidualBlock(N, N),
            ResidualBlockUpsample(N, N), ResidualBlock(N, N), subpel_conv3x3(N, 3, 2))

    def forward(self, x):
        return self.synthesis_transform(x)


class HyperAnalysis(nn.Module):
    def __init__(self, M: int, N: int):
        super().__init__()
        g = nn.GELU
        self.reduction = nn.Sequential(conv3x3(M, N), g(), conv3x3(N, N), g(), conv3x3(N, N, stride=2), g(),
                                       conv3x3(N, N), g(), conv3x3(N, N, stride=2))

    def forward(self, x):
        return self.reduction(x)


class HyperSynthesis(nn.Module):
    """h_s: 4x up, output 2M channels: the first M are "scales" (unused as such), the last M the hyper means."""

    def __init__(self, M: int, N: int):
        super().__init__()
        g = nn.GELU
        self.increase = nn.Sequential(conv3x3(N, M), g(), subpel_conv3x3(M, M, 2), g(), conv3x3(M, M * 3 // 2), g(),
                                      subpel_conv3x3(M * 3 // 2, M * 3 // 2, 2), g(), conv3x3(M * 3 // 2, M * 2))

    def forward(self, x):
        return self.increase(x)


# ---------------------------------------------------------------------------------------------- quantizers
class _ForwardQuantizer:
    """Rounding around the means (straight-through in training and with ``ste``); records likelihoods per
    slice: of noisy values in training, of the rounded values otherwise."""

    def __init__(self, y, gc: GaussianConditional, training: bool, slice_ch: int, ste: bool = False):
        self.y, self.gc, self.training, self.c, self.ste = y, gc, training, slice_ch, ste
        self.likelihoods = []
        self._scales_a = self._means_a = None

    def _slice(self, i):
        return self.y[:, i * self.c : (i + 1) * self.c]

    def _round(self, v):
        return ste_round(v) if (self.training or self.ste) else torch.round(v)

    def anchor(self, i, scales, means):
        self._scales_a, self._means_a = scales, means
        return self._round(ckbd.anchor(self._slice(i)) - means) + means

    def nonanchor(self, i, scales, means):
        y = self._slice(i)
        scales_i, means_i = self._scales_a + scales, self._means_a + means
        if self.ste:
            y_hat = ste_round(y - means_i) + means_i
            lik = self.gc.likelihood_lower_bound(self.gc.likelihood(y_hat, scales_i, means_i))
        else:
            _, lik = self.gc(y, scales_i, means_i, training=self.training)
        self.likelihoods.append(lik)
        return self._round(ckbd.nonanchor(y) - means) + means


class _EncodeQuantizer:
    def __init__(self, y, gc: GaussianConditional, encoder: Encoder, slice_ch: int):
        self.y, self.gc, self.enc, self.c = y, gc, encoder, slice_ch

    def _code(self, i, scales, means, anchors):
        y = self.y[:, i * self.c : (i + 1) * self.c]
        g = lambda t: ckbd.gather(t, anchors)  # noqa: E731
        values = self.gc.encode(self.enc, g(y), g(scales), g(means))
        return ckbd.scatter(values, y.shape, anchors)

    def anchor(self, i, scales, means):
        return self._code(i, scales, means, True)

    def nonanchor(self, i, scales, means):
        return self._code(i, scales, means, False)


class _DecodeQuantizer:
    def __init__(self, gc: GaussianConditional, decoder: Decoder):
        self.gc, self.dec = gc, decoder

    def _code(self, scales, means, anchors):
        values = self.gc.decode(self.dec, ckbd.gather(scales, anchors), ckbd.gather(means, anchors))
        return ckbd.scatter(values, scales.shape, anchors)

    def anchor(self, i, scales, means):
        return self._code(scales, means, True)

    def nonanchor(self, i, scales, means):
        return self._code(scales, means, False)


class IntegerConstants(nn.Module):
    """The integer numeric mode's constants (:mod:`fastlic.integer`: int8 weights, multipliers, shifts, look-up
    tables, thresholds) as buffers, so that the state dict, the checkpoint and the weights fingerprint carry
    them; loading takes whatever names and shapes the saved state has."""

    def __init__(self):
        super().__init__()
        self.version = 0

    def set(self, constants: dict) -> None:
        self._buffers.clear()
        for k, v in constants.items():
            self.register_buffer(k.replace(".", "__"), v.detach().clone())
        self.version += 1

    def get(self) -> dict:
        return {k.replace("__", "."): v for k, v in self._buffers.items()}

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        self._buffers.clear()
        for k, v in state_dict.items():
            if k.startswith(prefix) and "." not in k[len(prefix):]:
                self.register_buffer(k[len(prefix):], torch.empty_like(v))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        self.version += 1


class MLICPlusPlus(OnlineRDO, CompressionModel):
    """MLIC++ (see module docstring).

    Args:
        N: width of the transforms (192).
        M: latent channels (320).
        slice_num: number of channel slices S (10); M must be a multiple of it.
        variant: ``"current"`` (released 2024 code) or ``"2023"`` (the 2023-09 checkpoints: 4-layer LRP and
            the old synthesis head).
        ep_hidden, cc_hidden, lrp_hidden: hidden widths of the entropy-parameter, channel-context and LRP
            networks (the reference's by default; smaller for small models).
        local_heads, intra_heads: heads of the local and global intra-slice attention (2 and 2).
    """

    #: oRDO steps for this model (:mod:`fastlic.ordo`): 28 iterations (the eContextformer paper's schedule has 26)
    #: that stay large longer; measured against it in docs/results.md#online-rdo-at-the-encoder
    ordo_schedule = {"alpha0": 0.04, "gamma": 0.88, "min_step": 1e-3}
    #: h_s and every per-slice network run once per pass: one float64 copy of their weights at a time
    param_modules_run_once = True
    transform_modules = CompressionModel.transform_modules + ("integer_constants",)

    def __init__(self, N: int = 192, M: int = 320, slice_num: int = 10, variant: str = "current",
                 ep_hidden=(320, 256, 128), cc_hidden=(192, 128), lrp_hidden=(224, 128),
                 local_heads: int = 2, intra_heads: int = 2, transform_channels: int | None = None,
                 integer: dict | None = None):
        """``transform_channels``: width of g_a and g_s where it differs from the hyperprior's ``N`` (the
        released model uses N for both). Not in the paper: it lets a small model widen the transforms, which
        limit its quality at high rates, without touching the entropy model (:mod:`fastlic.training.widen`).
        ``integer``: the :class:`fastlic.integer.nodes.QuantConfig` fields of a model converted to the integer
        numeric mode (:meth:`to_integer`); its constants then load with the state dict."""
        super().__init__()
        if variant not in ("current", "2023"):
            raise ValueError(f"variant must be 'current' or '2023', not {variant!r}")
        if M % slice_num:
            raise ValueError(f"M={M} is not a multiple of slice_num={slice_num}")
        C = M // slice_num
        self.N, self.M, self.slice_num, self.slice_ch, self.variant = N, M, slice_num, C, variant
        self.config = dict(N=N, M=M, slice_num=slice_num, variant=variant, ep_hidden=tuple(ep_hidden),
                           cc_hidden=tuple(cc_hidden), lrp_hidden=tuple(lrp_hidden), local_heads=local_heads,
                           intra_heads=intra_heads)
        T = N if transform_channels is None else int(transform_channels)
        if T < 1:
            raise ValueError(f"transform_channels must be positive, not {transform_channels!r}")
        if T != N:  # absent otherwise: configurations of the released layout stay as they were
            self.config["transform_channels"] = T
        self.transform_channels = T

        self.g_a = AnalysisTransform(T, M)
        self.g_s = SynthesisTransform(T, M, variant)
        self.h_a = HyperAnalysis(M, N)
        self.h_s = HyperSynthesis(M, N)
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional()

        S = slice_num
        self.local_context = nn.ModuleList(LocalContext(C, num_heads=local_heads) for _ in range(S))
        self.channel_context = nn.ModuleList(ChannelContext(C * i, C * 4, cc_hidden) if i else None for i in range(S))
        self.global_inter_context = nn.ModuleList(
            LinearGlobalInterContext(C * i, C * 2, num_heads=i) if i else None for i in range(S))
        self.global_intra_context = nn.ModuleList(
            LinearGlobalIntraContext(C, intra_heads) if i else None for i in range(S))
        self.entropy_parameters_anchor = nn.ModuleList(
            EntropyParameters(M * 2 + C * 6 if i else M * 2, C * 2, ep_hidden) for i in range(S))
        self.entropy_parameters_nonanchor = nn.ModuleList(
            EntropyParameters(M * 2 + C * 10 if i else M * 2 + C * 2, C * 2, ep_hidden) for i in range(S))
        self.lrp_anchor = nn.ModuleList(
            LatentResidualPrediction(M + (i + 1) * C, C, variant, lrp_hidden) for i in range(S))
        self.lrp_nonanchor = nn.ModuleList(
            LatentResidualPrediction(M + (i + 1) * C, C, variant, lrp_hidden) for i in range(S))
        self._integer_cache = None
        self.integer_constants = None
        if integer is not None:
            self.config["integer"] = dict(integer)
            self.integer_constants = IntegerConstants()

    # ------------------------------------------------------------------------------ the integer numeric mode
    @property
    def integer_path(self):
        """The :class:`fastlic.integer.mlicpp.IntegerMLICPP` this model codes with in the integer numeric mode
        (:data:`fastlic.numerics.INTEGER_MODE`), or None for the float64 portable mode."""
        consts = self.integer_constants
        if consts is None:
            return None
        if self._integer_cache is None or self._integer_cache[0] != consts.version:
            from ..integer.mlicpp import IntegerMLICPP  # noqa: PLC0415  (the integer package imports this one)
            from ..integer.nodes import QuantConfig  # noqa: PLC0415

            ip = IntegerMLICPP(self, QuantConfig(**self.config["integer"]))
            ip.load_state_dict(consts.get())
            self._integer_cache = (consts.version, ip)
        return self._integer_cache[1]

    @torch.no_grad()
    def to_integer(self, images=None, qualities=None, cfg=None) -> "MLICPlusPlus":
        """Convert the entropy-parameter path to the integer numeric mode in place, by post-training
        quantization (:func:`fastlic.integer.mlicpp.quantize_mlicpp`) calibrated on ``images`` (default: crops of
        the package's photo, :func:`fastlic.integer.mlicpp.package_calibration_images`) at ``qualities`` (default:
        every trained rate point of a variable-rate model). Returns the model."""
        from ..integer.mlicpp import package_calibration_images, quantize_mlicpp  # noqa: PLC0415
        from ..integer.nodes import QuantConfig  # noqa: PLC0415

        cfg = cfg or QuantConfig()
        if images is None:
            images = package_calibration_images()
        old_quality = getattr(self, "quality", None)
        if qualities is None:
            qualities = range(self.num_rates) if hasattr(self, "num_rates") else (None,)
        self.integer_constants, self._integer_cache = None, None  # calibrate the float model
        try:
            ip = quantize_mlicpp(self, images, tuple(qualities), cfg)
        finally:
            if old_quality is not None:
                self.set_quality(old_quality)
        consts = IntegerConstants()
        consts.set(ip.state_dict())
        self.integer_constants = consts
        self.config["integer"] = dataclasses.asdict(cfg)
        self._integer_cache = (consts.version, ip)
        return self

    # ------------------------------------------------------------------------------ the shared driver
    def float_parameter_net(self, exact: bool = True) -> "_FloatNet":
        """The float networks as the coding-order driver calls them (:func:`fastlic.numerics.entropy_parameters`
        picks them, or the integer path); ``exact``: the input of h_s in the parameter dtype (float64)."""
        return _FloatNet(self, exact)

    def _slices(self, hyper, q, net=None):
        """Run the 2S coding steps of §3.1 on ``net``'s values (default: the float networks, float64 inside
        :meth:`parameter_path`); ``q`` turns (scales, means) of a half-slice into its reconstruction. The one
        driver of both numeric modes: ``net`` is what :func:`fastlic.numerics.entropy_parameters` yields, the
        float networks or :class:`fastlic.integer.mlicpp.IntegerMLICPP` (fixed-point reconstructions, each
        requantized where a network reads it: ``net.latent``). -> ``net.join`` of the reconstructed slices."""
        net = net if net is not None else _FloatNet(self, True)
        hyper = net.split(hyper, 2)
        hyper_means = hyper[1]
        done, out = [], []
        for i in range(self.slice_num):
            # parameters, and the local context that feeds them, only at the half being coded (zeros elsewhere)
            if i == 0:
                scales_a, means_a = net.params("a", 0, hyper)
            else:
                inter, channel = net.contexts(i, done)
                scales_a, means_a = net.params("a", i, [inter, channel, *hyper])
            a_rec = q.anchor(i, scales_a, means_a)
            a_rec = net.add(a_rec, net.lrp("a", i, [hyper_means, *done, net.latent(a_rec, "a0", i)]))
            a_hat = net.latent(a_rec, "a1", i)
            local = net.local(i, a_hat)
            ctx = [local, *hyper] if i == 0 else [local, net.intra(i, done[-1], a_hat), inter, channel, *hyper]
            scales_n, means_n = net.params("n", i, ctx)
            y_rec = net.add(a_rec, q.nonanchor(i, scales_n, means_n))
            y_rec = net.add(y_rec, net.lrp("n", i, [hyper_means, *done, net.latent(y_rec, "n0", i)]))
            done.append(net.latent(y_rec, "n1", i))
            out.append(y_rec)
        return net.join(out)

    # ------------------------------------------------------------------------------ API on padded input
    def _forward(self, x):
        y = self.analysis(x)
        return self._from_latents(y, self.h_a(y), "train" if self.training else "eval")

    def _from_latents(self, y, z, mode: str) -> dict:
        """Likelihoods and reconstruction of latents (y, z): ``"train"`` (noise for the likelihoods,
        straight-through rounding for the context and g_s), ``"eval"`` (rounding, the coding path's values) or
        ``"ste"`` (rounding with straight-through gradients everywhere: the differentiable objective of oRDO)."""
        with numerics.entropy_parameters(self, mode == "eval") as net:
            return self._run_forward(y, z, mode, net)

    def _run_forward(self, y, z, mode: str, net) -> dict:
        eb = self.entropy_bottleneck
        if mode == "train":
            _, z_likelihoods = eb(z, training=True)
            z_hat = eb.quantize_ste(z)
        elif mode == "eval":
            z_hat, z_likelihoods = eb(z, training=False)  # round(z - median) + median
        else:
            z_hat, z_likelihoods = eb.forward_ste(z)
        q = net.forward_quantizer(y, mode)
        y_hat = net.y_hat(self._slices(net.hyper(z_hat, eb.symbols(z) if mode == "eval" else None), q, net))
        out = {"x_hat": self.synthesis(y_hat.to(y.dtype)),
               "likelihoods": {"y": torch.cat(q.likelihoods, dim=1).to(z_likelihoods.dtype), "z": z_likelihoods},
               "y_hat": y_hat.to(y.dtype)}
        out.update(getattr(q, "extras", dict)())
        return out

    def _encode_latents(self, y, z):
        """Code (y, z) -> (streams, y_hat as the synthesis will see it, checksum)."""
        with numerics.entropy_parameters(self) as net:
            return self._run_encode(y, z, net)

    def _run_encode(self, y, z, net):
        enc_z, enc_y = Encoder(), Encoder()
        eb = self.entropy_bottleneck
        z_hat = eb.compress(z, enc_z)
        y_hat = net.y_hat(self._slices(net.hyper(z_hat, eb.symbols(z)), net.encode_quantizer(y, enc_y), net))
        checksum = coded_checksum(enc_y, enc_z)
        return [enc_y.finish(), enc_z.finish()], y_hat.to(y.dtype), checksum

    def _decompress(self, strings, padded_hw, verify=None):
        with numerics.entropy_parameters(self) as net:
            y_hat, checksum = self._run_decode(strings, padded_hw, verify, net)
        return self.synthesis(y_hat), checksum

    def _run_decode(self, strings, padded_hw, verify, net):
        """Decode the streams of one padded image -> (y_hat, checksum); ``verify`` as in
        :meth:`~fastlic.models.base.CompressionModel.decompress`: z is read to its sentinel and checked before
        any of y is decoded."""
        y_string, z_string = strings
        ph, pw = padded_hw
        dec_z = Decoder(z_string)
        eb = self.entropy_bottleneck
        z_sym = eb.decompress_symbols(dec_z, (1, self.N, ph // 64, pw // 64))
        dec_z.finish()
        if verify is not None:  # z is small: a damaged file or header stops here, before y costs anything
            verify(1, dec_z.digest())
        dec_y = Decoder(y_string)
        y_hat = net.y_hat(self._slices(net.hyper(eb.dequantize(z_sym), z_sym), net.decode_quantizer(dec_y), net))
        dec_y.finish()
        if verify is not None:
            verify(0, dec_y.digest())
        return y_hat, coded_checksum(dec_y, dec_z)


    # ------------------------------------------------------------------------------ reference checkpoints
    @classmethod
    def from_reference_state_dict(cls, state_dict: dict, variant: str = "current", **config) -> "MLICPlusPlus":
        """A model in eval mode, with coding tables built, from a state dict of the official MLIC++ code.

        Accepts keys with or without a ``module.`` prefix, the older ``_matrix{k}/_bias{k}/_factor{k}`` or the
        newer ``matrices.{k}/biases.{k}/factors.{k}`` entropy-bottleneck names, and CDF buffers present or
        absent (they are rebuilt with this project's coder). ``N``, ``M`` and ``slice_num`` are inferred from
        the weights unless given. The model prefers the exact fp32 transforms, which the default precision
        ``auto`` honours (:data:`fastlic.numerics.REFERENCE_PRECISION`; ``--precision bf16`` overrides it).
        """
        if "state_dict" in state_dict and isinstance(state_dict["state_dict"], dict):
            state_dict = state_dict["state_dict"]
        sd = convert_reference_state_dict(state_dict)
        cfg = infer_config(sd, variant)
        cfg.update(config)
        model = cls(variant=variant, **cfg)
        try:
            missing, unexpected = model.load_state_dict(sd, strict=False)
        except RuntimeError as exc:
            detail = next((ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln), str(exc)[:200])
            raise CheckpointError(f"state dict does not fit MLIC++ variant {variant!r}: {detail}") from None
        missing = [k for k in missing if not _is_table_buffer(k)]
        if missing or unexpected:
            detail = "; ".join(filter(None, [f"missing {missing[:3]}" if missing else "",
                                             f"unexpected {unexpected[:3]}" if unexpected else ""]))
            raise CheckpointError(f"state dict does not fit MLIC++ variant {variant!r}: {detail}")
        model.eval()
        model.update()
        numerics.prefer_precision(model, *numerics.REFERENCE_PRECISION)  # `auto` runs official weights exactly
        return model


class _FloatNet:
    """MLIC++'s float networks in the form the coding-order driver (:meth:`MLICPlusPlus._slices`) calls; the
    integer counterpart is :class:`fastlic.integer.mlicpp.IntegerMLICPP`."""

    def __init__(self, model: MLICPlusPlus, exact: bool):
        self.m, self.exact = model, exact

    def hyper(self, z_hat, z_sym=None):
        return self.m.h_s(numerics.to_param(z_hat) if self.exact else z_hat)

    @staticmethod
    def split(t, n: int):
        return list(t.chunk(n, 1))

    def params(self, kind: str, i: int, ctx: list):
        ep = (self.m.entropy_parameters_anchor if kind == "a" else self.m.entropy_parameters_nonanchor)[i]
        return ep(torch.cat(ctx, dim=1), anchors=kind == "a").chunk(2, 1)

    def contexts(self, i: int, done: list):
        prev = torch.cat(done, dim=1)
        return self.m.global_inter_context[i](prev), self.m.channel_context[i](prev)

    def lrp(self, kind: str, i: int, inputs: list):
        """LRP's residual, at the half just coded only."""
        lrp = (self.m.lrp_anchor if kind == "a" else self.m.lrp_nonanchor)[i]
        return (ckbd.anchor if kind == "a" else ckbd.nonanchor)(lrp(torch.cat(inputs, dim=1)))

    def local(self, i: int, a_hat):
        return self.m.local_context[i](a_hat, anchors=False)

    def intra(self, i: int, prev, a_hat):
        return self.m.global_intra_context[i](prev, a_hat)

    @staticmethod
    def add(a, b):
        return a + b

    @staticmethod
    def latent(y, tag: str, i: int):
        return y

    @staticmethod
    def join(out: list):
        return torch.cat(out, dim=1)

    @staticmethod
    def y_hat(joined):
        return joined

    def forward_quantizer(self, y, mode: str):
        return _ForwardQuantizer(y, self.m.gaussian_conditional, mode == "train", self.m.slice_ch, ste=mode == "ste")

    def encode_quantizer(self, y, encoder: Encoder):
        return _EncodeQuantizer(y, self.m.gaussian_conditional, encoder, self.m.slice_ch)

    def decode_quantizer(self, decoder: Decoder):
        return _DecodeQuantizer(self.m.gaussian_conditional, decoder)



def infer_config(sd: dict, variant: str = "current") -> dict:
    """MLIC++ constructor keywords read off a (converted) state dict's shapes."""
    try:
        w = lambda k: sd[k].shape  # noqa: E731
        cfg = dict(N=w("h_a.reduction.0.weight")[0], M=w("g_a.analysis_transform.6.weight")[0])
        if w("g_a.analysis_transform.0.conv1.weight")[0] != cfg["N"]:
            cfg["transform_channels"] = w("g_a.analysis_transform.0.conv1.weight")[0]
        cfg["slice_num"] = len({k.split(".")[1] for k in sd if k.startswith("entropy_parameters_anchor.")})
        cfg["ep_hidden"] = tuple(w(f"entropy_parameters_anchor.0.fusion.{i}.weight")[0] for i in (0, 2, 4))
        if cfg["slice_num"] > 1:
            cfg["cc_hidden"] = tuple(w(f"channel_context.1.fushion.{i}.weight")[0] for i in (0, 2))
        if variant != "2023":
            cfg["lrp_hidden"] = tuple(w(f"lrp_anchor.0.lrp_transform.{i}.weight")[0] for i in (0, 2))
        cfg["local_heads"] = w("local_context.0.relative_position_table")[1]
    except KeyError as exc:
        raise CheckpointError(f"not an MLIC++ state dict (missing {exc})") from None
    return cfg


_REF_SKIP = re.compile(r"(_offset|_quantized_cdf|_cdf_length|relative_position_index|pedestal|lower_bound\.bound|"
                       r"likelihood_lower_bound\.bound|lower_bound_scale\.bound|scale_bound|\.target|scale_table)$")
_LEGACY_EB = re.compile(r"^entropy_bottleneck\._(matrix|bias|factor)(\d+)$")
_LEGACY_NAMES = {"matrix": "matrices", "bias": "biases", "factor": "factors"}


def _is_table_buffer(key: str) -> bool:
    return bool(re.search(r"\._table_(counts|lengths|offsets)$", key)) or key.endswith("scale_table")


def convert_reference_state_dict(state_dict: dict) -> dict:
    """Map an official MLIC++ state dict onto this implementation's names (drop buffers we rebuild)."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith("module."):
            key = key[len("module."):]
        m = _LEGACY_EB.match(key)
        if m:
            key = f"entropy_bottleneck.{_LEGACY_NAMES[m.group(1)]}.{m.group(2)}"
        if _REF_SKIP.search(key):
            continue
        if not torch.is_tensor(value):
            raise CheckpointError(f"state dict entry {key!r} is not a tensor")
        out[key] = value.detach().to(torch.float32) if value.is_floating_point() else value
    return out


# ---------------------------------------------------------------------------------------------- registry
@register_model("mlicpp", "MLIC++ (arXiv 2307.15421), released configuration: N=192, M=320, 10 slices")
def mlicpp(**config):
    return MLICPlusPlus(**config)


@register_model("mlicpp-2023", "MLIC++ 2023 variant (4-layer LRP, old synthesis head) for the 2023-09 checkpoints")
def mlicpp_2023(**config):
    return MLICPlusPlus(**{"variant": "2023", **config})


_MINI = dict(N=64, M=96, slice_num=3, ep_hidden=(128, 96, 64), cc_hidden=(64, 48), lrp_hidden=(64, 48))
_SMALL = dict(N=96, M=160, slice_num=5, ep_hidden=(160, 128, 96), cc_hidden=(96, 64), lrp_hidden=(112, 64))
_TINY = dict(N=32, M=32, slice_num=2, ep_hidden=(48, 40, 32), cc_hidden=(32, 32), lrp_hidden=(32, 32))


@register_model("mlicpp-small", "Small MLIC++ for CPU training: N=96, M=160, 5 slices of 32, narrow hidden layers")
def mlicpp_small(**config):
    return MLICPlusPlus(**{**_SMALL, **config})


@register_model("mlicpp-tiny", "Tiny MLIC++ for tests: N=32, M=32, 2 slices of 16")
def mlicpp_tiny(**config):
    return MLICPlusPlus(**{**_TINY, **config})


@register_model("mlicpp-mini", "MLIC++ sized for CPU training and bundling: N=64, M=96, 3 slices of 32 (~5.9M params)")
def mlicpp_mini(**config):
    return MLICPlusPlus(**{**_MINI, **config})


@register_model("mlicpp-vr", "MLIC++ (full size) with gain units for continuous variable rate (Cui et al. 2021)")
def mlicpp_vr(**config):
    return variable_rate(MLICPlusPlus)(**config)


@register_model("mlicpp-small-vr", "mlicpp-small with gain units for continuous variable rate (Cui et al. 2021)")
def mlicpp_small_vr(**config):
    return variable_rate(MLICPlusPlus)(**{**_SMALL, **config})


@register_model("mlicpp-mini-vr", "mlicpp-mini with gain units for continuous variable rate (Cui et al. 2021)")
def mlicpp_mini_vr(**config):
    return variable_rate(MLICPlusPlus)(**{**_MINI, **config})


@register_model("mlicpp-tiny-vr", "mlicpp-tiny with gain units for continuous variable rate (tests)")
def mlicpp_tiny_vr(**config):
    return variable_rate(MLICPlusPlus)(**{**_TINY, **config})
