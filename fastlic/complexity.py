"""Complexity accounting of any fastlic codec: parameters and kMAC per pixel of each component, for the encoder
(``compress``) and the decoder (``decompress``) separately.

Components: ``g_a``, ``g_s``, ``h_a``, ``h_s``, ``context_model`` (every other learned module: transformers,
context networks, latent residual prediction), ``entropy_parameters`` (every module whose name contains
``entropy_parameters``) and ``entropy_models`` (factorized prior, Gaussian / mixture conditionals).

MACs are counted by running the real coding paths under a :class:`~torch.utils._python_dispatch.TorchDispatchMode`
with PyTorch's FLOP formulas (:data:`torch.utils.flop_counter.flop_registry`: convolutions, linear layers and
every matrix product, so the attention ``QK^T`` and ``AV`` products are included; one MAC = two FLOPs).
Element-wise work (softmax, normalizations, activations) and the entropy coder itself are not counted, as is
usual for kMAC/px figures. An operation is attributed to the innermost component whose method is on the Python
call stack when it runs, so methods other than ``forward`` (e.g. a transformer's decoding ``step``) are
attributed correctly.
"""

from __future__ import annotations

import sys
from collections import defaultdict

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

#: in-place products PyTorch's registry does not list (the float64 convolutions of fastlic.layers.float64
#: accumulate their taps with addmm_)
_IN_PLACE = {torch.ops.aten.addmm_: flop_registry[torch.ops.aten.addmm]}
COMPONENTS = ("g_a", "h_a", "h_s", "context_model", "entropy_parameters", "g_s", "entropy_models")
_ENTROPY_MODELS = ("entropy_bottleneck", "gaussian_conditional", "gmm")


def component_of(name: str) -> str:
    """Component of a top-level child module of a codec."""
    if name in ("g_a", "g_s", "h_a", "h_s"):
        return name
    if "entropy_parameters" in name:
        return "entropy_parameters"
    if name in _ENTROPY_MODELS:
        return "entropy_models"
    return "context_model"


def component_modules(model: nn.Module) -> dict[int, str]:
    """id(module) -> component for every module below a top-level child (a submodule called directly by the
    model's own code, e.g. a transformer's embedding, still counts for its component)."""
    out = {}
    for name, child in model.named_children():
        comp = component_of(name)
        for sub in child.modules():
            out[id(sub)] = comp
    return out


class MacCounter(TorchDispatchMode):
    """Counts MACs per component while active (see module docstring)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.owners = component_modules(model)
        self.macs: dict[str, int] = defaultdict(int)

    def _owner(self) -> str:
        frame = sys._getframe(1)
        while frame is not None:
            obj = frame.f_locals.get("self")
            if obj is not None and id(obj) in self.owners:
                return self.owners[id(obj)]
            frame = frame.f_back
        return "other"

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket) or _IN_PLACE.get(func._overloadpacket)
        if formula is not None:
            self.macs[self._owner()] += formula(*args, **kwargs, out_val=out) // 2
        return out


def parameter_counts(model: nn.Module) -> dict[str, int]:
    counts = defaultdict(int)
    for name, child in model.named_children():
        counts[component_of(name)] += sum(p.numel() for p in child.parameters())
    return {c: counts.get(c, 0) for c in COMPONENTS}


def _per_pixel(macs: dict, pixels: int) -> dict:
    out = {c: macs.get(c, 0) / pixels / 1e3 for c in COMPONENTS}
    if macs.get("other"):
        out["other"] = macs["other"] / pixels / 1e3
    out["total"] = sum(macs.values()) / pixels / 1e3
    return out


@torch.no_grad()
def measure(model: nn.Module, height: int = 256, width: int = 256, seed: int = 0) -> dict:
    """Parameters and kMAC/px (per pixel of the ``height x width`` input) of each component for encoding and
    decoding one random image. The model must be in eval mode with coding tables built."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, height, width, generator=gen)
    enc = MacCounter(model)
    with enc:
        coded = model.compress(x)
    dec = MacCounter(model)
    with dec:
        model.decompress(coded["strings"], coded["shape"])
    pixels = height * width
    return {"model": getattr(model, "model_name", type(model).__name__), "size": [height, width],
            "parameters": parameter_counts(model), "total_parameters": sum(p.numel() for p in model.parameters()),
            "encoder_kmac_per_px": _per_pixel(enc.macs, pixels), "decoder_kmac_per_px": _per_pixel(dec.macs, pixels)}


def format_report(report: dict) -> str:
    """Human-readable table of :func:`measure`'s result."""
    lines = [f"{report['model']} at {report['size'][0]}x{report['size'][1]}",
             f"{'component':<20}{'parameters':>14}{'enc kMAC/px':>14}{'dec kMAC/px':>14}"]
    enc, dec, par = report["encoder_kmac_per_px"], report["decoder_kmac_per_px"], report["parameters"]
    for c in list(COMPONENTS) + (["other"] if "other" in enc or "other" in dec else []):
        lines.append(f"{c:<20}{par.get(c, 0):>14,}{enc.get(c, 0):>14.2f}{dec.get(c, 0):>14.2f}")
    lines.append(f"{'total':<20}{report['total_parameters']:>14,}{enc['total']:>14.2f}{dec['total']:>14.2f}")
    return "\n".join(lines)
