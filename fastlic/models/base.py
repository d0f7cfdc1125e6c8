"""Base class of the learned codecs: the CompressAI-style API, padding, coding tables and fingerprints.

``forward(x) -> {"x_hat", "likelihoods": {...}}``, ``compress(x) -> {"strings", "shape", "checksums"}``,
``decompress(strings, shape) -> {"x_hat", "checksums"}`` and ``update()``, for images of any size: the image is
centred in its size rounded up to a multiple of :attr:`CompressionModel.pad_multiple` (64 for the hyperprior
codecs), the border repeating its edge pixels, and the reconstruction is cropped back
(:meth:`CompressionModel.pad`, :meth:`~CompressionModel.crop`). ``shape`` is the original ``(H, W)`` of the
image. The MLIC++ reference pads with zeros on the right and bottom: a tiny image becomes a few pixels in the
corner of a black picture and decodes to another colour (a 1×1 image at 10-13 dB with the bundled default).
Edge padding alone is not enough either: the learned transforms reconstruct a picture's outermost rows and
columns worst (a flat 64×64 picture: its corner pixel at 23-27 dB, its interior at 42-46 dB), so a 1×1 to 8×8
image kept in the corner stays 1.6-10 dB below the same pixels inside a larger picture. Centred, tiny and thin
images code at least as well as inside a larger picture, within 0.11 dB where a side leaves no margin (63 rows
in 64); measured by ``benchmarks/tiny_images.py`` (results/benchmarks/tiny_images_mlicpp-mini-vr.json). The
decoder derives the placement from the image size alone (:meth:`~CompressionModel.pad_offsets`).

``checksums`` (one per image) is a 64-bit BLAKE2b digest of every coded integer (the symbols of each stream and
their table indexes, in coding order: :func:`coded_checksum`). Those are exact on any machine
(:mod:`fastlic.numerics`), so a decoder that arrives at other symbols (other weights, a bug, a corrupted stream)
detects the divergence instead of returning a wrong image.
"""

from __future__ import annotations

import hashlib
import math
import weakref

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import numerics
from ..entropy.bottleneck import EntropyBottleneck
from ..entropy.coder import TableOwner


class CodedChecksum(bytes):
    """The 8-byte checksum of an image's streams (compares as those bytes), which also carries the digest of
    each stream (``streams``, in the order of the coders given: the order of ``strings``), for the container to
    bind each stream to its header (:func:`fastlic.container.stream_checksum`)."""

    streams: tuple = ()


def coded_checksum(*coders) -> bytes:
    """Checksum of an image's streams: 8-byte BLAKE2b over the digests of its encoders (or decoders)."""
    digests = tuple(c.digest() for c in coders)
    h = hashlib.blake2b(digest_size=8)
    for d in digests:
        h.update(d)
    out = CodedChecksum(h.digest())
    out.streams = digests
    return out


def state_dict_fingerprint(state_dict: dict) -> bytes:
    """16-byte BLAKE2b over a state dict's names, shapes, dtypes and bytes, in name order."""
    h = hashlib.blake2b(digest_size=16)
    for k, v in sorted(state_dict.items()):
        t = v.detach().to("cpu").contiguous()
        h.update(k.encode() + b"\0" + str(tuple(t.shape)).encode() + str(t.dtype).encode() + b"\0")
        h.update(t.reshape(-1).view(torch.uint8).numpy() if t.numel() else b"")
    return h.digest()


class CompressionModel(nn.Module):
    """Common machinery of fastlic codecs; subclasses implement ``_forward``, ``_compress`` and
    ``_decompress`` on padded single images (batch of one for coding)."""

    pad_multiple = 64
    model_name = "unnamed"
    #: the entropy-coded streams of an image, in the order of ``compress()["strings"]`` (decoded z first)
    stream_names = ("y", "z")
    #: children that are not on the entropy-parameter path: transforms that only the encoder runs (g_a, h_a) or
    #: that only produce pixels (g_s), and entropy models with integer tables
    transform_modules = ("g_a", "g_s", "h_a", "entropy_bottleneck", "gaussian_conditional", "gmm", "latent_gain")

    #: whether each parameter-path module (ModuleLists counted by element) runs once per coding pass: then each
    #: is in float64 only during its own forward (:func:`fastlic.numerics.parameter_path`, ``transient``)
    param_modules_run_once = False

    def parameter_path(self, enabled: bool = True):
        """Context manager: the entropy-parameter path in float64 (:func:`fastlic.numerics.parameter_path`)."""
        mods = [m for name, m in self.named_children() if name not in self.transform_modules]
        if not self.param_modules_run_once:
            return numerics.parameter_path(mods, enabled)
        each = [e for m in mods for e in (m if isinstance(m, nn.ModuleList) else [m])]
        return numerics.parameter_path([], enabled, transient=each)

    def __init__(self):
        super().__init__()
        self.config: dict = {}

    # ------------------------------------------------------------------ transforms
    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        """g_a; in evaluation on the machine's fast path (:func:`fastlic.numerics.run_transform`): it decides
        nothing the decoder shares."""
        return numerics.training_layout(self.g_a)(x) if self.training else self._run_transform(self.g_a, x)

    def synthesis(self, y_hat: torch.Tensor) -> torch.Tensor:
        """g_s of latents from either path (float64 from the parameter path, float32 in training); in evaluation
        on the fast path, the same in ``forward``, ``decompress`` and the encoder's oRDO."""
        if self.training:
            return numerics.training_layout(self.g_s)(y_hat.to(torch.float32))
        return self._run_transform(self.g_s, y_hat)

    def _run_transform(self, module, x):
        # the fast path may change the transform's memory format on first use: new storage, same values, so a
        # fingerprint valid before stays valid
        cache = getattr(self, "_fingerprint_cache", None)
        fmt = getattr(module, "_fastlic_memory_format", None)
        valid = cache is not None and self._same_weights(cache[0])
        out = numerics.run_transform(module, x, self)  # the model's preferred precision decides `auto`
        if valid and getattr(module, "_fastlic_memory_format", None) != fmt:
            self._fingerprint_cache = (self._weights_stamp(), cache[1])
        return out

    # ------------------------------------------------------------------ padding
    def padded_size(self, h: int, w: int) -> tuple[int, int]:
        m = self.pad_multiple
        return (h + m - 1) // m * m, (w + m - 1) // m * m

    def pad_offsets(self, h: int, w: int) -> tuple[int, int]:
        """``(top, left)`` of an ``h x w`` image inside :meth:`padded_size`: centred (the extra row or column
        of an odd margin at the bottom or right). The one rule by which the encoder pads and the decoder crops:
        it follows from the image size alone, so files need no field for it (docs/format.md, "Padding")."""
        ph, pw = self.padded_size(h, w)
        return (ph - h) // 2, (pw - w) // 2

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` at :meth:`pad_offsets` inside :meth:`padded_size`, the border repeating its edge pixels (a
        tiny image becomes a flat picture of its own colours, not a few pixels in a black one). ``forward`` and
        ``compress`` both pad here, so ``decompress(compress(x))`` equals ``forward(x)``."""
        h, w = x.shape[-2:]
        ph, pw = self.padded_size(h, w)
        if (ph, pw) == (h, w):
            return x
        top, left = self.pad_offsets(h, w)
        return F.pad(x, (left, pw - w - left, top, ph - h - top), mode="replicate")

    def crop(self, t: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """The ``h x w`` image's own pixels of a padded tensor (a reconstruction, or the padded input)."""
        top, left = self.pad_offsets(h, w)
        return t[..., top : top + h, left : left + w]

    # ------------------------------------------------------------------ API
    def forward(self, x: torch.Tensor) -> dict:
        """Training (noise) or evaluation (rounding) pass over a batch of any size; x in [0, 1]."""
        h, w = x.shape[-2:]
        out = self._forward(self.pad(x))
        out["x_hat"] = self.crop(out["x_hat"], h, w)
        return out

    @torch.no_grad()
    def compress(self, x: torch.Tensor, **opts) -> dict:
        """Entropy-code each image of the batch: ``strings[k][i]`` is stream k of image i. Keyword options
        go to the model's ``_compress`` (e.g. ``ordo=True, lmbda=...`` for eContextformer)."""
        if self.training:
            raise RuntimeError("call model.eval() before compress()")
        h, w = x.shape[-2:]
        per_image = [self._compress(self.pad(x[i : i + 1]), **opts) for i in range(x.shape[0])]
        n = len(per_image[0][0])
        strings = [[s[k] for s, _ in per_image] for k in range(n)]
        return {"strings": strings, "shape": (h, w), "checksums": [c for _, c in per_image]}

    @torch.no_grad()
    def decompress(self, strings, shape, verify=None) -> dict:
        """Inverse of :meth:`compress`; ``shape`` is the original ``(H, W)``.

        ``verify(k, digest)``, if given, is called as soon as stream ``k`` (an index into ``strings``) of an
        image is decoded, in decode order, with the digest of its coded integers; it may raise to stop before
        the next stream is decoded (:func:`fastlic.codec.decode_image` checks each stream's checksum so)."""
        if self.training:
            raise RuntimeError("call model.eval() before decompress()")
        h, w = int(shape[0]), int(shape[1])
        ph, pw = self.padded_size(h, w)
        outs, sums = [], []
        for i in range(len(strings[0])):
            x_hat, checksum = self._decompress([s[i] for s in strings], (ph, pw), verify)
            outs.append(self.crop(x_hat, h, w))
            sums.append(checksum)
        return {"x_hat": torch.cat(outs, 0), "checksums": sums}

    # ------------------------------------------------------------------ entropy models
    def entropy_bottlenecks(self):
        return [m for m in self.modules() if isinstance(m, EntropyBottleneck)]

    def aux_loss(self) -> torch.Tensor:
        """Sum of the factorized priors' quantile losses (optimize with a separate optimizer)."""
        losses = [m.loss() for m in self.entropy_bottlenecks()]
        return sum(losses) if losses else torch.zeros(())

    def update(self, force: bool = True) -> bool:
        """(Re)build every integer coding table from the current weights."""
        for m in self.modules():
            if isinstance(m, TableOwner):
                m.update()
        return True

    def needs_update(self) -> bool:
        for m in self.modules():
            if isinstance(m, TableOwner) and m._table_counts.numel() == 0:
                return True
        return False

    # ------------------------------------------------------------------ identity
    def fingerprint(self) -> bytes:
        """16-byte BLAKE2b digest of the state dict (names, shapes, dtypes and bytes, coding tables included):
        a stream can only be decoded by a model with the same fingerprint.

        Cached against the weights' identity (:meth:`_weights_stamp`): hashing the full MLIC++'s 334 MB takes
        ~0.4 s, and a checkpoint written by fastlic carries the digest of exactly the tensors it stores, so a
        fresh ``fastlic`` process does not pay it again (:func:`fastlic.checkpoint.model_from_checkpoint_dict`).
        Any in-place change of a tensor (an optimizer step, ``load_state_dict``, ``update()``), a new tensor or
        moving the model invalidates the cache."""
        cached = getattr(self, "_fingerprint_cache", None)
        if cached is not None and self._same_weights(cached[0]):
            return cached[1]
        stamp = self._weights_stamp()
        fp = state_dict_fingerprint(self.state_dict())
        self._fingerprint_cache = (stamp, fp)
        return fp

    @staticmethod
    def _tensor_state(v: torch.Tensor) -> tuple:
        # the storage, the version counter (bumped by every in-place write) and the layout
        return v.data_ptr(), v._version, v.dtype, tuple(v.shape), v.device

    def _weights_stamp(self) -> list:
        # with a weak reference: identity without keeping old tensors alive, so an address cannot be reused
        # while it is compared
        return [(k, weakref.ref(v), self._tensor_state(v)) for k, v in self.state_dict(keep_vars=True).items()]

    def _same_weights(self, stamp: list) -> bool:
        now = self.state_dict(keep_vars=True)
        return len(now) == len(stamp) and all(
            now.get(k) is not None and ref() is now[k] and self._tensor_state(now[k]) == state
            for k, ref, state in stamp)

    def adopt_fingerprint(self, fp: bytes) -> None:
        """Take ``fp`` as the fingerprint of the current weights, which the caller knows to be the tensors
        ``fp`` was computed from (a checkpoint's stored digest right after loading it)."""
        self._fingerprint_cache = (self._weights_stamp(), bytes(fp))

    def estimated_peak_bytes(self, h: int, w: int) -> int:
        """Rough peak memory of coding an ``h x w`` image (bytes), used to choose a tile size.

        Calibrated on MLIC++: about 4.5 bytes per pixel per channel of the transform width N (encode and
        decode alike, measured at 1024x1024 with N = 192), plus the weights. Subclasses may refine it.
        """
        ph, pw = self.padded_size(h, w)
        width = int(self.config.get("N", 192))
        return int(4.5 * width * ph * pw) + 4 * self.num_parameters()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @staticmethod
    def bpp(likelihoods: dict, num_pixels: int) -> torch.Tensor:
        """Estimated bits per pixel, -sum(log2 likelihoods) / pixels (per batch)."""
        return sum(torch.log(lk).sum() for lk in likelihoods.values()) / (-math.log(2) * num_pixels)
