"""eContextformer: spatio-channel window attention for fast context modeling.

Koyuncu, Jia, Boev, Alshina, Steinbach, "Efficient Contextformer: Spatio-Channel Window Attention for Fast
Context Modeling in Learned Image Compression", IEEE TCSVT 34(8), 2024, arXiv 2306.14287 (our summary:
``shared/specs/econtextformer.md``). No reference code exists; every choice the paper leaves open is a
constructor parameter of :class:`EContextformer` (see its docstring).

Coding order (§III-B): the latent's M channels form Ncs segments of p = M/Ncs channels; each segment's two
checkerboard halves are two *coding groups*, coded in sfo order seg1-anchor, seg1-non-anchor, seg2-anchor, ...
(2·Ncs parallel steps). Group 1 comes from the hyperprior alone (SFG); group g ≥ 2 from the hyperprior and the
transformer's output at group g − 1 (:mod:`fastlic.contexts.spatio_channel`). Each group's p channels get a
Gaussian mixture of k_m components.

One driver, :meth:`EContextformer._drive`, runs these steps for evaluation ``forward``, ``compress`` and
``decompress``; only the quantizer differs (rounding + likelihoods, encoding, decoding), and it runs on the
float64 parameter path of :mod:`fastlic.numerics`: the decoder rebuilds the encoder's quantized mixtures bit for
bit on any machine (snapped parameters as guarded decisions, exact rows), and ``decompress(compress(x))`` equals
the evaluation forward reconstruction on the same machine.
Training ``forward`` runs all groups in one transformer pass with the causal group mask.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..contexts import checkerboard as ckbd
from ..contexts.spatio_channel import SpatioChannelTransformer
from ..entropy.bottleneck import EntropyBottleneck
from ..entropy.coder import Decoder, Encoder
from ..entropy.gaussian import GaussianMixtureConditional
from ..entropy.ops import ste_round
from ..layers import GDN, AttentionBlock, ResidualBlock, conv3x3, subpel_conv3x3
from ..ordo import OnlineRDO
from ..registry import register_model
from .. import numerics
from .base import CompressionModel, coded_checksum
from .gain import variable_rate


# ---------------------------------------------------------------------------------------------- transforms
class AnalysisTransform(nn.Module):
    """g_a: four 3x3 stride-2 convolutions with GDN between them, then one residual attention block (Cheng
    2020 simplified attention) on the latent (the framework of Cui et al. 2021 / Contextformer)."""

    def __init__(self, N: int, M: int):
        super().__init__()
        self.layers = nn.Sequential(conv3x3(3, N, 2), GDN(N), conv3x3(N, N, 2), GDN(N), conv3x3(N, N, 2), GDN(N),
                                    conv3x3(N, M, 2), AttentionBlock(M))

    def forward(self, x):
        return self.layers(x)


class SynthesisTransform(nn.Module):
    """g_s mirrors g_a: attention block, residual blocks in the first layer, then four sub-pixel 3x3
    convolutions (x2 each) with inverse GDN between them."""

    def __init__(self, N: int, M: int, res_blocks: int = 2):
        super().__init__()
        first = [ResidualBlock(M, N)] + [ResidualBlock(N, N) for _ in range(res_blocks - 1)]
        self.layers = nn.Sequential(AttentionBlock(M), *first, subpel_conv3x3(N, N, 2), GDN(N, inverse=True),
                                    subpel_conv3x3(N, N, 2), GDN(N, inverse=True), subpel_conv3x3(N, N, 2),
                                    GDN(N, inverse=True), subpel_conv3x3(N, 3, 2))

    def forward(self, x):
        return self.layers(x)


def _conv(k: int, a: int, b: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(a, b, k, stride=stride, padding=k // 2)


def _deconv(k: int, a: int, b: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(a, b, k, stride=2, padding=k // 2, output_padding=1)


class HyperAnalysis(nn.Module):
    """h_a: conv k (stride 1), two conv k stride 2, LeakyReLU between (Minnen et al. 2018)."""

    def __init__(self, M: int, N: int, kernel: int = 5):
        super().__init__()
        self.layers = nn.Sequential(_conv(kernel, M, N), nn.LeakyReLU(inplace=True), _conv(kernel, N, N, 2),
                                    nn.LeakyReLU(inplace=True), _conv(kernel, N, N, 2))

    def forward(self, x):
        return self.layers(x)


class HyperSynthesis(nn.Module):
    """h_s: two transposed conv k stride 2 then conv k to 2M channels (repeated for every segment)."""

    def __init__(self, M: int, N: int, kernel: int = 5):
        super().__init__()
        self.layers = nn.Sequential(_deconv(kernel, N, M), nn.LeakyReLU(inplace=True),
                                    _deconv(kernel, M, M * 3 // 2), nn.LeakyReLU(inplace=True),
                                    _conv(kernel, M * 3 // 2, 2 * M))

    def forward(self, x):
        return self.layers(x)


class EntropyParameters(nn.Module):
    """1x1 convolutions with GELU between; hidden widths step linearly from in to out unless given."""

    def __init__(self, in_dim: int, out_dim: int, hidden=None):
        super().__init__()
        if hidden is None:
            d = in_dim - out_dim
            hidden = (in_dim - d // 3, in_dim - 2 * d // 3)
        dims = (in_dim, *hidden, out_dim)
        layers = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            if i:
                layers.append(nn.GELU())
            layers.append(nn.Conv2d(a, b, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


# ---------------------------------------------------------------------------------------------- quantizers
class _ForwardQuantizer:
    """Rounding (evaluation) or noise/STE (training) of each group; records its likelihoods."""

    def __init__(self, y_groups, gmm: GaussianMixtureConditional, training: bool, context_input: str = "ste",
                 ste: bool = False):
        self.y, self.gmm, self.training, self.context_input, self.ste = y_groups, gmm, training, context_input, ste
        self.likelihoods = []
        # one noise sample per group, shared by its likelihood and (context_input="noise") its consumers
        self.noisy = [y + torch.empty_like(y).uniform_(-0.5, 0.5) for y in y_groups] if training else None

    def context(self, g):
        """Group g's values as the transformer input of the parallel pass (the values this quantizer codes)."""
        y = self.y[g]
        if self.training and self.context_input == "noise":
            return self.noisy[g]
        return ste_round(y) if (self.training or self.ste) else torch.round(y)

    def __call__(self, g, weights, means, scales):
        y = self.y[g]
        if self.training:
            noisy = self.noisy[g]
            lik = self.gmm.likelihood(noisy, weights, means, scales)
            out = noisy if self.context_input == "noise" else ste_round(y)
        else:
            out = ste_round(y) if self.ste else torch.round(y)
            lik = self.gmm.likelihood(out, weights, means, scales)
        self.likelihoods.append(self.gmm.likelihood_lower_bound(lik))
        return out


class _EncodeQuantizer:
    def __init__(self, y_groups, gmm: GaussianMixtureConditional, encoder: Encoder):
        self.y, self.gmm, self.enc = y_groups, gmm, encoder

    def context(self, g):
        """Group g as the decoder will have it (the single-pass encoder's transformer input): coded values are
        ``round(y)``, integers, the same on any machine."""
        return torch.round(self.y[g])

    def __call__(self, g, weights, means, scales):
        return self.gmm.encode(self.enc, self.y[g], weights, means, scales)


# ---------------------------------------------------------------------------------------------- model
class MixtureHyperpriorCodec(CompressionModel):
    """The framework Contextformer and eContextformer share (Cui et al. 2021): g_a / g_s with GDN and an
    attention block, a hyperprior with a factorized z, Gaussian-mixture likelihoods of y.

    A subclass supplies its context driver ``_drive(hyper, q) -> y_hat`` (run on the float64 parameter path by
    the coding paths) and ``_encode_quantizer(y, encoder)``; a
    quantizer is called as ``q(key, logits, means, scales)`` and returns the values of the part ``key`` names.
    """

    def _build_framework(self, N: int, M: int, hyper_kernel: int, gs_res_blocks: int, mixtures: int,
                         gmm_chunk: int = 4096):
        self.g_a = AnalysisTransform(N, M)
        self.g_s = SynthesisTransform(N, M, gs_res_blocks)
        self.h_a = HyperAnalysis(M, N, hyper_kernel)
        self.h_s = HyperSynthesis(M, N, hyper_kernel)
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gmm = GaussianMixtureConditional(mixtures, chunk_size=gmm_chunk)

    def _encode_latents(self, y, z):
        """Code (y, z) -> (streams, y_hat as the synthesis will see it, checksum)."""
        enc_z, enc_y = Encoder(), Encoder()
        z_hat = self.entropy_bottleneck.compress(z, enc_z)
        with self.parameter_path():
            y_hat = self._encode_drive(self.h_s(numerics.to_param(z_hat)), self._encode_quantizer(y, enc_y))
        checksum = coded_checksum(enc_y, enc_z)
        return [enc_y.finish(), enc_z.finish()], y_hat.to(torch.float32), checksum

    def _encode_drive(self, hyper, q):
        """The encoder's pass over the groups; the decoder's step-by-step driver unless a subclass has a
        faster one that takes the same decisions."""
        return self._drive(hyper, q)

    def _compress(self, x):
        y = self.analysis(x)
        streams, _, checksum = self._encode_latents(y, self.h_a(y))
        return streams, checksum

    def _decompress(self, strings, padded_hw, verify=None):
        y_string, z_string = strings
        ph, pw = padded_hw
        dec_z = Decoder(z_string)
        z_hat = self.entropy_bottleneck.decompress(dec_z, (1, self.N, ph // 64, pw // 64))
        dec_z.finish()
        if verify is not None:  # z is small: a damaged file or header stops here, before y costs anything
            verify(1, dec_z.digest())
        dec = Decoder(y_string)
        with self.parameter_path():
            y_hat = self._drive(self.h_s(numerics.to_param(z_hat)), lambda key, *params: self.gmm.decode(dec, *params))
        dec.finish()
        if verify is not None:
            verify(0, dec.digest())
        return self.synthesis(y_hat), coded_checksum(dec, dec_z)


class EContextformer(OnlineRDO, MixtureHyperpriorCodec):
    """eContextformer (see module docstring). Defaults are the paper's configuration.

    Args (fixed by the paper):
        N: width of the transforms (192).
        M: latent channels (192; 312 for the highest rates).
        num_segments: channel segments Ncs (4); M must be a multiple of it, p = M / Ncs.
        window: window size K on the squeezed grid (8), i.e. K x 2K latent positions.
        depth: transformer layers L (8), alternating window / shifted window (shift K/2).
        mixtures: Gaussian mixture components k_m (3).
        mlp_ratio: d_mlp / d_e (4).
        hyper_kernel: kernel of the hyperprior convolutions (5).

    Args (left open by the paper; our defaults):
        embed_dim: d_e; ``None`` = 2M (the reading of the garbled "8M" consistent with Contextformer).
        heads: attention heads (12 as in Contextformer; the paper's high-rate model uses 6).
        ep_hidden: hidden widths of the entropy-parameter networks (2M + d_e -> 3·k_m·p); ``None`` = two
            layers stepping linearly from input to output width. One network is shared by groups 2..2Ncs
            (the transformer output carries the group's context); group 1 has its own (2M -> 3·k_m·p).
        gs_res_blocks: residual blocks in the first layer of g_s (2).
        context_input: what the context model and g_s see in training: ``"ste"`` (rounded values with a
            straight-through gradient, as coded) or ``"noise"`` (the noisy values the likelihoods use).
        gmm_chunk: symbols per coder chunk of the mixture coder (bounds memory).

    Args (decoding optimizations, the paper's ablations; encoder and decoder must agree):
        sfg: skip the first group (group 1 from the hyperprior alone, 2·Ncs − 1 transformer steps); False runs
            2·Ncs steps from a learned start token (changes the parameters).
        egr: efficient group rearrangement; False = measurement mode that computes whole channel segments
            as the full-resolution layout must (see :mod:`fastlic.contexts.spatio_channel`).
        cache: key-value caching during compress/decompress (outputs bit-identical either way).
    """

    def __init__(self, N: int = 192, M: int = 192, num_segments: int = 4, window: int = 8, depth: int = 8,
                 embed_dim: int | None = None, heads: int = 12, mlp_ratio: float = 4.0, mixtures: int = 3,
                 hyper_kernel: int = 5, ep_hidden=None, gs_res_blocks: int = 2, context_input: str = "ste",
                 gmm_chunk: int = 4096, sfg: bool = True, egr: bool = True, cache: bool = True):
        super().__init__()
        if M % num_segments:
            raise ValueError(f"M={M} is not a multiple of num_segments={num_segments}")
        if context_input not in ("ste", "noise"):
            raise ValueError("context_input must be 'ste' or 'noise'")
        d_e = 2 * M if embed_dim is None else int(embed_dim)
        p = M // num_segments
        self.N, self.M, self.p, self.d_e, self.k_m = N, M, p, d_e, mixtures
        self.num_groups = 2 * num_segments
        self.sfg, self.egr, self.cache, self.context_input = bool(sfg), bool(egr), bool(cache), context_input
        self.config = dict(N=N, M=M, num_segments=num_segments, window=window, depth=depth, embed_dim=d_e,
                           heads=heads, mlp_ratio=mlp_ratio, mixtures=mixtures, hyper_kernel=hyper_kernel,
                           ep_hidden=None if ep_hidden is None else tuple(ep_hidden), gs_res_blocks=gs_res_blocks,
                           context_input=context_input, gmm_chunk=gmm_chunk, sfg=self.sfg, egr=self.egr,
                           cache=self.cache)

        self._build_framework(N, M, hyper_kernel, gs_res_blocks, mixtures, gmm_chunk)
        seq = self.num_groups - 1 if self.sfg else self.num_groups
        self.context_model = SpatioChannelTransformer(p, seq, d_e, depth, heads, window, mlp_ratio,
                                                      start_token=not self.sfg)
        out = 3 * mixtures * p
        self.entropy_parameters = EntropyParameters(2 * M + d_e, out, ep_hidden)
        self.entropy_parameters_first = EntropyParameters(2 * M, out, None) if self.sfg else None

    # ------------------------------------------------------------------------------ groups
    def split_groups(self, y: torch.Tensor) -> list[torch.Tensor]:
        """[B, M, H, W] -> 2·Ncs squeezed groups ``[B, p, H, W/2]`` in sfo order."""
        segs = y.split(self.p, dim=1)
        return [ckbd.squeeze(s, anchors=(h == 0)) for s in segs for h in (0, 1)]

    def merge_groups(self, groups) -> torch.Tensor:
        segs = [ckbd.unsqueeze(groups[2 * i], True) + ckbd.unsqueeze(groups[2 * i + 1], False)
                for i in range(len(groups) // 2)]
        return torch.cat(segs, dim=1)

    def _mixture(self, params: torch.Tensor):
        """[B, 3·k·p, H, W2] -> (logits, means, scales), each [B, k, p, H, W2] (component dim 1)."""
        b, _, h, w = params.shape
        return params.reshape(b, 3, self.k_m, self.p, h, w).unbind(1)

    def _params(self, g: int, hyper_halves, ctx):
        if ctx is None:
            return self._mixture(self.entropy_parameters_first(hyper_halves[0]))
        return self._mixture(self.entropy_parameters(torch.cat([hyper_halves[g % 2], ctx], dim=1)))

    # ------------------------------------------------------------------------------ the shared driver
    def _drive(self, hyper: torch.Tensor, q, cache: bool | None = None) -> torch.Tensor:
        """Code the 2·Ncs groups one step each; ``q(g, logits, means, scales)`` returns group g's values."""
        halves = (ckbd.squeeze(hyper, anchors=True), ckbd.squeeze(hyper, anchors=False))
        b, _, h, w = halves[0].shape
        state = self.context_model.new_state(b, h, w, cache=self.cache if cache is None else cache, egr=self.egr)
        done = []
        for g in range(self.num_groups):
            ctx = None
            if g or not self.sfg:
                ctx = self.context_model(state=state, values=done[-1] if done else None, anchor=(g - 1) % 2 == 0)
            params = self._params(g, halves, ctx)
            done.append(q(g, *params).to(params[0].dtype))
        return self.merge_groups(done)

    def _parallel(self, hyper: torch.Tensor, q) -> torch.Tensor:
        """Training path and single-pass encoder: every group's parameters from one transformer pass (causal
        group mask)."""
        halves = (ckbd.squeeze(hyper, anchors=True), ckbd.squeeze(hyper, anchors=False))
        inputs = [q.context(g).to(hyper.dtype) for g in range(self.num_groups - 1)]
        ctx = self.context_model(torch.stack(inputs, dim=1))  # [B, S, d_e, H, W2]
        done = []
        for g in range(self.num_groups):
            c = None if (self.sfg and g == 0) else ctx[:, g - 1 if self.sfg else g]
            done.append(q(g, *self._params(g, halves, c)))
        return self.merge_groups(done)

    # ------------------------------------------------------------------------------ API on padded input
    def _forward(self, x):
        y = self.analysis(x)
        return self._from_latents(y, self.h_a(y), "train" if self.training else "eval")

    def _from_latents(self, y, z, mode: str) -> dict:
        """Reconstruction and likelihoods from unquantized latents. ``mode``: ``"train"`` (noise likelihoods,
        one parallel pass), ``"eval"`` (rounding, the coding driver) or ``"ste"`` (rounding with
        straight-through gradients in one parallel pass: the differentiable objective of oRDO)."""
        eb = self.entropy_bottleneck
        if mode == "train":
            _, z_likelihoods = eb(z, training=True)
            z_hat = eb.quantize_ste(z)
        else:
            z_hat, z_likelihoods = eb.forward_ste(z)  # == round(z - median) + median in value
        groups = self.split_groups(y)
        q = _ForwardQuantizer(groups, self.gmm, mode == "train", self.context_input, ste=(mode == "ste"))
        if mode == "eval":
            with self.parameter_path():
                y_hat = self._drive(self.h_s(numerics.to_param(z_hat)), q)
        else:
            y_hat = self._parallel(self.h_s(z_hat), q)
        return {"x_hat": self.synthesis(y_hat),
                "likelihoods": {"y": torch.cat(q.likelihoods, dim=1).to(z_likelihoods.dtype), "z": z_likelihoods}, "y_hat": y_hat}

    def _encode_quantizer(self, y, encoder):
        return _EncodeQuantizer(self.split_groups(y), self.gmm, encoder)

    #: encode with the paper's single-pass encoder (§III-D): the encoder knows every coded value,
    #: ``round(y)``, so one causal transformer pass gives all groups' parameters, where the decoder needs
    #: 2·Ncs − 1 steps. Its float64 parameters differ from the step-by-step driver's by float rounding only
    #: (at most 2.6e-15 measured, 3.6e5 times below the guard margin), which the guarded decisions absorb as
    #: they absorb another machine's rounding: the decoder takes the encoder's decisions, and the streams are
    #: byte for byte the step-by-step encoder's (tested). Off by default: on a 2-core CPU it is slower (paper
    #: configuration, 768x512: 6.3-7.3 s against 4.2-4.9 s, +0.45 GiB peak; docs/econtextformer.md), because the
    #: full causal pass does the attention work the key-value cache saves.
    single_pass_encoder: bool = False

    def _encode_drive(self, hyper, q):
        return self._parallel(hyper, q) if self.single_pass_encoder else self._drive(hyper, q)


# ---------------------------------------------------------------------------------------------- registry
@register_model("econtextformer", "eContextformer (arXiv 2306.14287), paper configuration: N=M=192, Ncs=4, K=8, L=8")
def econtextformer(**config):
    return EContextformer(**config)


@register_model("econtextformer-hr", "eContextformer high-rate configuration: M=312, 6 heads")
def econtextformer_hr(**config):
    return EContextformer(**{"M": 312, "heads": 6, **config})


_SMALL = dict(N=96, M=96, embed_dim=96, depth=4, heads=4)
_TINY = dict(N=16, M=16, embed_dim=16, depth=2, heads=2, window=4, gs_res_blocks=1)


@register_model("econtextformer-small", "Small eContextformer for CPU training: N=M=96, d_e=96, 4 layers, 4 heads")
def econtextformer_small(**config):
    return EContextformer(**{**_SMALL, **config})


@register_model("econtextformer-tiny", "Tiny eContextformer for tests: N=M=16, d_e=16, K=4, 2 layers")
def econtextformer_tiny(**config):
    return EContextformer(**{**_TINY, **config})


@register_model("econtextformer-small-vr",
                "econtextformer-small with gain units for continuous variable rate (Cui et al. 2021, as in the paper)")
def econtextformer_small_vr(**config):
    return variable_rate(EContextformer)(**{**_SMALL, **config})


@register_model("econtextformer-tiny-vr", "econtextformer-tiny with gain units for continuous variable rate (tests)")
def econtextformer_tiny_vr(**config):
    return variable_rate(EContextformer)(**{**_TINY, **config})
