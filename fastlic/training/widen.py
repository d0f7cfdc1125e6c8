"""Widen the transforms of a trained MLIC++ without changing what it computes, to warm-start a wider model.

A small model trained long enough is limited at high rates by its analysis and synthesis transforms, not by its
entropy model (docs/results.md: quality 4 codes within 0.3–0.6 dB of the unquantized g_s(g_a(x)) of the same
weights). Training a wider model from scratch would throw its budget away; this keeps it. Every convolution and
GDN of g_a / g_s grows from N to ``transform_channels`` (:class:`fastlic.models.mlicpp.MLICPlusPlus`) so that
the old channels compute exactly what they did:

* an old output channel reads nothing from a new input channel (those weights are 0; GDN's γ for old rows and
  new columns is 0), so the old channels, and with them y, the entropy model and x̂, are unchanged;
* a new output channel starts from the wider model's own initialization (it reads the old channels and the new
  ones), so it carries a signal from the first step, and the gradient of the zero weights that read it is not
  zero: training grows them from where the function is still the trained one.

This is Net2Net's function-preserving widening (Chen, Goodfellow, Shlens, ICLR 2016, §2.2) in its zero-init
form, applied only to the transforms; the hyperprior, the contexts, the latent gains and the coder are copied.

    python -m fastlic.training.widen fastlic/weights/mlicpp-mini-vr.pt /work/runs/wide96.init.pt \\
        --transform-channels 96
    fastlic train --config configs/mlicpp_vr_cpu_clean_wide.toml --init /work/runs/wide96.init.pt --out RUN

The widened file records the training behind the source weights (``stages``), so the cards of the wider model
count every step from the start.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import FastlicError
from ..layers.gdn import GDN
from ..models.mlicpp import MLICPlusPlus
from ..registry import create_model

#: the modules whose width changes
TRANSFORMS = ("g_a", "g_s")


def _zero_gamma(gdn: GDN) -> torch.Tensor:
    """The parameter value of GDN's γ = 0 (γ is stored reparametrized)."""
    return gdn.gamma_reparam.init(torch.zeros(1)).to(gdn.gamma.dtype)


def widen(model, transform_channels: int, seed: int = 0):
    """A copy of the MLIC++ ``model`` (fixed or variable rate) whose g_a / g_s are ``transform_channels`` wide
    and whose outputs equal the model's, in eval and training mode alike."""
    if transform_channels < model.transform_channels:
        raise FastlicError(f"transform_channels {transform_channels} is narrower than the model's "
                           f"{model.transform_channels}")
    config = {**model.config, "transform_channels": int(transform_channels)}
    torch.manual_seed(seed)  # the new channels' initialization, reproducible
    wide = create_model(model.model_name, **config)
    src, dst = model.state_dict(), wide.state_dict()
    if src.keys() != dst.keys():
        raise FastlicError(f"{model.model_name}: cannot widen (the state dicts differ beyond shapes)")
    gdns = {name for prefix in TRANSFORMS for name, m in getattr(wide, prefix).named_modules(prefix=prefix)
            if isinstance(m, GDN)}
    out = {}
    for key, a in src.items():
        b = dst[key].clone()
        if a.shape == b.shape or not key.startswith(TRANSFORMS):  # (coding tables: the source's, as they are)
            out[key] = a.clone()
            continue
        module = key.rsplit(".", 1)[0]
        lead = tuple(slice(0, n) for n in a.shape)
        if a.dim() >= 2:  # conv weight [out, in, k, k] or GDN gamma [out, in]
            b[(slice(0, a.shape[0]), slice(a.shape[1], None))] = (
                _zero_gamma(wide.get_submodule(module)) if module in gdns else 0)
        b[lead] = a  # bias, GDN beta: old entries kept, new ones as initialized
        out[key] = b
    wide.load_state_dict(out)
    wide.train(model.training)
    return wide


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastlic.training.widen", description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="a fastlic checkpoint of an MLIC++ model (e.g. fastlic/weights/mlicpp-mini-vr.pt)")
    p.add_argument("out", help="the widened checkpoint, for fastlic train --init")
    p.add_argument("--transform-channels", type=int, required=True, help="new width of g_a and g_s")
    p.add_argument("--seed", type=int, default=0, help="initialization of the new channels")
    args = p.parse_args(argv)
    try:
        out = Path(args.out)
        if out.exists():
            raise FastlicError(f"{out}: exists; not replaced")
        from .state import init_weights  # noqa: PLC0415
        from .bundle import stages_of  # noqa: PLC0415

        model = load_checkpoint(args.src)
        if not isinstance(model, MLICPlusPlus):
            raise FastlicError(f"{args.src}: not an MLIC++ model ({model.model_name})")
        stages = stages_of(init_weights(args.src)[1])  # the training behind the source, back to the start
        wide = widen(model, args.transform_channels, args.seed)
        save_checkpoint(out, wide, {"stages": stages, "widened_from": str(args.src),
                                    "widened": f"transforms {model.transform_channels} -> "
                                               f"{args.transform_channels} channels"})
    except FastlicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    n = sum(p.numel() for p in wide.parameters())
    print(f"{out}: {wide.model_name} with transforms {args.transform_channels} wide ({n / 1e6:.2f} M parameters); "
          f"{sum(s.get('steps') or 0 for s in stages)} steps of training behind it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
