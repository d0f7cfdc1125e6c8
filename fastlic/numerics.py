"""Numeric policy of every codec: what must be exact for the decoder, and what may be fast.

A ``.flic`` file must decode on any machine: any SIMD level (``ATEN_CPU_CAPABILITY``), with or without oneDNN,
any thread count, CPU or CUDA. Float results of those configurations differ in their last bits (reductions are
summed in other orders, vectorized ``exp``/``erf`` differ by an ulp), so the design rests on three rules, decided
here once for all codecs (the argument of correctness is in docs/format.md, "Portable decoding"):

1. **The entropy-parameter path runs in float64** (:func:`parameter_path`): hyper synthesis, context models,
   LRP, parameter networks. With float64 the difference between two configurations stays <= 1.0e-13 relative
   (measured: ``benchmarks/portability.py``, docs/results.md), seven orders of magnitude below float32's.
   It runs with the caller's threads and device; nothing is pinned. The analysis and synthesis transforms stay
   float32 (or faster): they only produce the encoder's latents and the decoder's pixels.
2. **Every discrete decision the decoder must share is guarded** (:class:`fastlic.entropy.guard.Guard`): a
   decision (a scale-table index; a snapped mixture weight, mean or scale) whose float64 input lies within a
   relative margin :data:`GUARD_EPS` of a decision boundary is flagged by the encoder, and the side it took is
   sent in the stream (one bit plus its position). Every other decision is ``GUARD_EPS`` (~1e-9) away from a
   boundary, 9e3 to 1.7e5 times the largest cross-configuration difference measured, so the decoder takes it
   identically. Symbols themselves are never re-decided: the decoder reads them.
3. **What comes after a snapped decision is computed exactly**: integer tables stored in the checkpoint, and for
   the Gaussian mixture a probability row computed from snapped (exact) parameters with IEEE basic operations
   only (:func:`exp`, :func:`erfc`: +, -, *, / and exact power-of-two scaling, each correctly rounded on every
   IEEE machine, so bit-identical on any CPU or GPU) and quantized with integer arithmetic.

Float noise still reaches the reconstructed latents (``y_hat = symbol + mean`` carries the decoder's mean) and
through them later contexts; the guard margin covers it (measured through the last slice) and the latent
checksum is defined over the coded integers (symbols and table indexes), which are exact.

TF32 and reduced precision never touch the parameter path: it is float64, which TF32 does not affect.

**What may be fast.** The analysis and synthesis transforms (g_a, g_s) decide nothing the decoder must share, so
they run on the fastest path the machine has (:func:`transform_plan`, used by every codec through
:meth:`fastlic.models.base.CompressionModel.analysis` / ``synthesis``): bf16 autocast with channels_last on CPUs
with native bf16 (AMX or AVX512-BF16) and on CUDA, float32 elsewhere. ``precision="fp32"`` (``--precision fp32``,
``FASTLIC_PRECISION=fp32``) is the exact mode: plain float32, contiguous. The cost of bf16 on Kodak is measured in
docs/results.md#speed (at most 0.02 dB at every quality of the bundled default).

**A model may prefer a precision** (:func:`prefer_precision`), which ``auto`` (the default) honours and an
explicit ``fp32``/``bf16`` overrides. Official MLIC++ weights prefer the exact mode
(:data:`REFERENCE_PRECISION`): their users compare with the reference implementation, which fastlic reproduces
in fp32 within 6.2e-6 at every stage (tests/test_mlicpp_conformance.py), while with bf16 transforms the end-to-end
x_hat differs from the reference's by up to 0.25 (2023 variant) and 0.41 (current variant) with the conformance
fixture's weights, on pixels in [0, 1] (y_hat by 1.05-1.07: rounding flips).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os

import torch

#: dtype of the entropy-parameter path on every device
PARAM_DTYPE = torch.float64
#: relative margin of guarded decisions (2**-30 ~ 9.3e-10); see the module docstring
GUARD_EPS = 2.0 ** -30
#: numeric mode recorded in the .flic header (format version 2): float64 parameter path with guarded decisions
PORTABLE_MODE = 2
#: numeric mode of a model whose entropy-parameter path is integer (:mod:`fastlic.integer`): int8 weights,
#: integer activations, integer scales and means; every decision is an exact function of integers (no guard)
INTEGER_MODE = 3
NUMERIC_MODES = {PORTABLE_MODE: "portable: float64 entropy parameters, guarded decisions (eps 2^-30)",
                 INTEGER_MODE: "integer: int8 weights, integer activations, scales and means (exact, no guard)"}


def numeric_mode(model) -> int:
    """The numeric mode ``model`` codes in, decided here for every codec: :data:`INTEGER_MODE` when it carries
    integer entropy-parameter constants (``model.integer_path``, :meth:`MLICPlusPlus.to_integer`), else
    :data:`PORTABLE_MODE`. The mode is written into every file and a decoder in the other mode refuses it."""
    model = getattr(model, "module", model)
    return INTEGER_MODE if getattr(model, "integer_path", None) is not None else PORTABLE_MODE


@contextlib.contextmanager
def entropy_parameters(model, exact: bool = True):
    """The one place where the numeric policy of a model's entropy-parameter path is chosen, for its single
    coding-order driver: yields the network object the driver calls (``params``, ``contexts``, ``lrp``, ...,
    and the quantizers of each pass).

    ``exact`` (evaluation, coding): in :data:`INTEGER_MODE` (:func:`numeric_mode`) the model's integer path
    (``model.integer_path``: integer values, no guard); otherwise the model's float networks
    (``model.float_parameter_net(exact)``) inside :func:`parameter_path` (float64 with guarded decisions).
    Not ``exact`` (training, oRDO's differentiable pass): the float networks as they are."""
    if exact and numeric_mode(model) == INTEGER_MODE:
        yield model.integer_path
        return
    with model.parameter_path(exact):
        yield model.float_parameter_net(exact)


# ---------------------------------------------------------------------------------------------- the float64 path
def _to_param_dtype(m) -> None:
    depth = getattr(m, "_fastlic_f64_depth", 0)
    if depth == 0:
        # float64 copies beside the float32 originals, which come back untouched (same storage and version
        # counter: the weights' identity, and with it the cached fingerprint, survives a coding pass)
        saved = []
        for mod in m.modules():
            for p in mod._parameters.values():
                if p is not None and p.dtype == torch.float32:
                    saved.append((p, p.data))
                    p.data = p.data.to(PARAM_DTYPE)
            for key, b in mod._buffers.items():
                if b is not None and b.dtype == torch.float32:
                    saved.append((mod, key, b))
                    mod._buffers[key] = b.to(PARAM_DTYPE)
        m._fastlic_f32 = saved
    m._fastlic_f64_depth = depth + 1


def _restore(m) -> None:
    m._fastlic_f64_depth -= 1
    if m._fastlic_f64_depth == 0:
        for entry in reversed(m._fastlic_f32):
            if len(entry) == 2:
                entry[0].data = entry[1]
            else:
                entry[0]._buffers[entry[1]] = entry[2]
        del m._fastlic_f32


@contextlib.contextmanager
def parameter_path(modules, enabled: bool = True, transient=()):
    """Run the enclosed block with ``modules`` (an iterable of ``nn.Module``) in float64, then restore float32.

    ``transient`` modules are converted only while their own ``forward`` runs (a model whose parameter-path
    modules each run once per coding pass, MLIC++'s per-slice networks, so holds one float64 copy at a time
    instead of all of them: 250 MB less at peak for the full MLIC++). The float64 copies are used in place of
    the float32 tensors, which are put back afterwards as they were (so weights, optimizers and the cached
    fingerprint are unaffected; writes to the float64 copies are dropped); nested uses convert once.
    """
    if not enabled:
        yield
        return
    entered = []  # modules whose depth counter this call raised (the outermost use converts and restores)
    live = []  # transient modules inside their forward right now (restored here if the forward raised)
    hooks = []

    def pre(m, _args):
        _to_param_dtype(m)
        live.append(m)

    def post(m, _args, _out):
        live.remove(m)
        _restore(m)

    with contextlib.ExitStack() as stack:
        # autocast would run convolutions and matmuls in bf16/fp16: never on the decisions' path
        for device in ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",):
            stack.enter_context(torch.autocast(device, enabled=False))
        try:
            for m in modules:
                if m is not None:
                    _to_param_dtype(m)
                    entered.append(m)
            for m in transient:
                if m is not None:
                    hooks += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
            yield
        finally:
            for h in hooks:
                h.remove()
            for m in reversed(live + entered):
                _restore(m)


def to_param(t: torch.Tensor) -> torch.Tensor:
    """A tensor entering the parameter path (latents, hyper-latents) as float64."""
    return t.to(PARAM_DTYPE)


# ---------------------------------------------------------------------------------------------- exact elementwise math
# Cody-Waite split of ln 2 (fdlibm): k * LN2_HI is exact for |k| < 2**11
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_EXP_TERMS = 14  # Taylor degree 13 on |r| <= ln2 / 2: truncation error < 1e-17


def exp(x: torch.Tensor) -> torch.Tensor:
    """exp of a float64 tensor with IEEE basic operations only, hence bit-identical on any machine.

    Range reduction ``x = k ln2 + r`` (Cody-Waite), a Horner polynomial in ``r``, and an exact scaling by 2**k
    built from its bit pattern. Arguments are clamped to [-708, 709] (the normal range). Relative error ~2e-16.
    """
    x = x.to(torch.float64).clamp(-708.0, 709.0)
    k = torch.round(x * _INV_LN2)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = torch.full_like(r, 1.0 / math.factorial(_EXP_TERMS - 1))
    for n in range(_EXP_TERMS - 2, -1, -1):
        p = p * r + 1.0 / math.factorial(n)
    scale = ((k.to(torch.int64) + 1023) << 52).view(torch.float64)
    return p * scale


# erfc(z) ~ t exp(-z^2 + P(t)), t = 1 / (1 + z / 2): Chebyshev fit, relative error < 1.2e-7 for every z >= 0
# (W. H. Press et al., Numerical Recipes in C, 2nd ed., §6.2, "erfcc")
_ERFC_P = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587,
           -0.82215223, 0.17087277)


def erfc(x: torch.Tensor) -> torch.Tensor:
    """Complementary error function with IEEE basic operations only (see :func:`exp`); relative error < 1.2e-7.

    Accurate enough for coding distributions (rows are quantized to 2**-24 anyway); it is used where encoder and
    decoder must compute the same bits, not where a likelihood is estimated.
    """
    x = x.to(torch.float64)
    z = x.abs()
    t = 1.0 / (1.0 + 0.5 * z)
    poly = torch.full_like(t, _ERFC_P[-1])
    for c in reversed(_ERFC_P[:-1]):
        poly = poly * t + c
    ans = t * exp(poly - z * z)
    return torch.where(x >= 0, ans, 2.0 - ans)


_SQRT1_2 = 0.70710678118654752440


def ndtr(x: torch.Tensor) -> torch.Tensor:
    """Standard normal CDF from :func:`erfc` (bit-identical on any machine)."""
    return 0.5 * erfc(-_SQRT1_2 * x.to(torch.float64))


# ---------------------------------------------------------------------------------------------- the fast transforms
#: transform precisions a user can ask for; "auto" picks per model and machine (:func:`transform_plan`)
PRECISIONS = ("auto", "fp32", "bf16")
_precision = os.environ.get("FASTLIC_PRECISION", "auto")
#: what ``auto`` runs models with official MLIC++ weights in (set by
#: :meth:`fastlic.models.mlicpp.MLICPlusPlus.from_reference_state_dict`): the exact mode, the one the conformance
#: with the reference holds in
REFERENCE_PRECISION = ("fp32", "official MLIC++ weights: the reference's numerics")


@functools.lru_cache(maxsize=1)
def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 natively (AMX or AVX512-BF16, from /proc/cpuinfo; False elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return bool(set(line.split(":", 1)[1].split()) & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def set_precision(precision: str) -> None:
    """Precision of the analysis and synthesis transforms from now on: "auto", "fp32" (exact) or "bf16"."""
    global _precision
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    _precision = precision


@contextlib.contextmanager
def precision(p: str):
    """Context manager form of :func:`set_precision`."""
    old = _precision
    set_precision(p)
    try:
        yield
    finally:
        set_precision(old)


def prefer_precision(model, precision: str | None, reason: str = "") -> None:
    """Make ``auto`` run ``model``'s transforms in ``precision`` ("fp32" or "bf16"; None: the machine's
    choice again). An explicit setting (``--precision``, ``FASTLIC_PRECISION``, :func:`set_precision`) wins."""
    if precision not in (None, "fp32", "bf16"):
        raise ValueError(f"a preferred precision is fp32 or bf16, not {precision!r}")
    model._fastlic_preferred_precision = None if precision is None else (precision, reason or "model's choice")


def preferred_precision(model) -> tuple[str, str] | None:
    """``(precision, reason)`` that ``model`` asks ``auto`` for, or None: its own (:func:`prefer_precision`), else
    the one its fastlic checkpoint records (``meta["preferred_precision"]``, which
    :func:`fastlic.checkpoint.save_checkpoint` writes for a model that has one: ``fastlic convert-checkpoint`` of
    official MLIC++ weights)."""
    if model is None:
        return None
    own = getattr(model, "_fastlic_preferred_precision", None)
    if own is not None:
        return own
    meta = getattr(model, "checkpoint_meta", None)
    p = meta.get("preferred_precision") if isinstance(meta, dict) else None
    if isinstance(p, (list, tuple)) and len(p) == 2 and p[0] in ("fp32", "bf16"):
        return str(p[0]), str(p[1])
    return None


@dataclasses.dataclass(frozen=True)
class TransformPlan:
    """How g_a and g_s run: ``dtype`` of their autocast (None: plain float32) and memory format."""

    dtype: torch.dtype | None
    channels_last: bool
    reason: str

    def describe(self) -> str:
        name = "fp32" if self.dtype is None else str(self.dtype).replace("torch.", "").replace("bfloat16", "bf16")
        return f"transforms {name}{' channels_last' if self.channels_last else ''} ({self.reason})"


def transform_plan(device: torch.device | str = "cpu", model=None) -> TransformPlan:
    """The fast path chosen for the transforms on ``device`` under the current precision setting, for ``model``
    (its :func:`preferred_precision` decides ``auto``; None: the machine's choice)."""
    kind = torch.device(device).type
    p = _precision if _precision in PRECISIONS else "auto"
    preferred = preferred_precision(model) if p == "auto" else None
    if preferred is not None and preferred[0] == "fp32":
        return TransformPlan(None, False, f"exact mode, auto: {preferred[1]}")
    if preferred is not None:
        p = preferred[0]
    if p == "fp32":
        return TransformPlan(None, False, "exact mode")
    if kind == "cuda":
        ok = torch.cuda.is_bf16_supported()
        if p == "bf16" or ok:
            return TransformPlan(torch.bfloat16, True, "CUDA")
        return TransformPlan(None, True, "CUDA without bf16")
    if p == "bf16":
        return TransformPlan(torch.bfloat16, True, "asked for" + ("" if native_bf16_cpu() else ", not native here"))
    if native_bf16_cpu():
        return TransformPlan(torch.bfloat16, True, "CPU with native bf16")
    return TransformPlan(None, False, "CPU without native bf16")


def describe(device: torch.device | str = "cpu", model=None, mode: int | None = None) -> dict:
    """What runs how on ``device`` (for ``model``, if given, or a file's numeric ``mode``): for
    ``fastlic --verbose``, ``fastlic info`` and benchmark JSON."""
    mode = mode if mode is not None else numeric_mode(model) if model is not None else PORTABLE_MODE
    path = ("integer (int8 weights, integer activations, int32/int64 accumulation; exact, no guard)"
            if mode == INTEGER_MODE else f"{str(PARAM_DTYPE).replace('torch.', '')}, guarded decisions (eps 2^-30)")
    return {"transforms": transform_plan(device, model).describe(), "precision_setting": _precision,
            "parameter_path": path, "numeric_mode": mode,
            "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkldnn": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled}


def _layout_of(module: torch.nn.Module):
    w = next((p for p in module.parameters() if p.dim() == 4), None)
    if w is not None and not w.is_contiguous() and w.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _set_layout(module: torch.nn.Module, fmt) -> None:
    if getattr(module, "_fastlic_memory_format", None) is None:
        module._fastlic_memory_format = module._fastlic_native_format = _layout_of(module)
    if module._fastlic_memory_format != fmt:
        module.to(memory_format=fmt)
        module._fastlic_memory_format = fmt


def training_layout(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` back in the memory format it had before :func:`run_transform` changed it (an evaluation
    forward inside a training run, e.g. its validation): the optimizer's moments were made in that format, and
    PyTorch's CPU training kernels corrupt the heap on channels_last weights (observed: ``free(): invalid next
    size`` after the first validation)."""
    native = getattr(module, "_fastlic_native_format", None)
    if native is not None:
        _set_layout(module, native)
    return module


def compile_for_training(module: torch.nn.Module, device: torch.device | str = "cpu") -> torch.nn.Module:
    """``torch.compile(module)`` for a training forward (opt-in: ``fastlic train --compile on``). On the CPU,
    Inductor's layout optimization is switched off: it runs the convolutions channels_last, and PyTorch's CPU
    training kernels corrupt the heap on that layout (see :func:`training_layout`; with it on, the first compiled
    step of ``mlicpp-tiny-vr`` aborted with ``corrupted size vs. prev_size``). Not the default: on a 2-core AMD
    EPYC it bought 1.00x (``mlicpp-tiny-vr``), 1.00x (``mlicpp-mini-vr``, bf16) and 1.08x (float32) per step for a
    first step of 19-95 s (``results/benchmarks/training_compile.json``); on GPUs it is unmeasured."""
    if torch.device(device).type == "cpu":
        import torch._inductor.config as inductor_config  # noqa: PLC0415

        inductor_config.layout_optimization = False
    return torch.compile(module)


def run_transform(module: torch.nn.Module, x: torch.Tensor, model=None) -> torch.Tensor:
    """``module(x)`` for an analysis or synthesis transform of ``model`` in evaluation, on
    :func:`transform_plan`'s path; returns float32 in the default memory format."""
    plan = transform_plan(x.device, model)
    fmt = torch.channels_last if plan.channels_last else torch.contiguous_format
    _set_layout(module, fmt)
    x = x.to(torch.float32).contiguous(memory_format=fmt)
    if plan.dtype is None:
        out = module(x)
    else:
        with torch.autocast(x.device.type, dtype=plan.dtype):
            out = module(x)
    return out.to(torch.float32).contiguous()
