"""Progress bars of the command line: tqdm on standard error, only when it is a terminal and not ``--quiet``.

Coding one large image takes tens of seconds, so :func:`coding_progress` counts its steps without touching
the models: forward hooks on the modules that run once per step. A tile is the analysis (encoding) or synthesis
(decoding) transform, then one step per slice of MLIC++ (its ``lrp_nonanchor`` networks run once per slice) or
per group of eContextformer (its entropy-parameter networks run once per group); other models count the
transform alone. Bars appear only after :data:`DELAY` seconds (tqdm's ``delay``), so a small image shows none.
"""

from __future__ import annotations

import contextlib
import sys

#: seconds before a bar is drawn: what finishes sooner never shows one
DELAY = 0.5


def enabled(quiet: bool = False, stream=None) -> bool:
    """Whether to draw progress: not ``quiet``, and ``stream`` (standard error) is a terminal."""
    stream = sys.stderr if stream is None else stream
    return not quiet and hasattr(stream, "isatty") and stream.isatty()


def bar(total=None, desc: str | None = None, unit: str = "it", leave: bool = False, **kw):
    """A tqdm bar on standard error (None when tqdm is missing: progress is a nicety, never a dependency
    failure)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr, delay=DELAY,
                dynamic_ncols=True, **kw)


def _step_modules(model) -> tuple[list, int]:
    """(modules whose every forward call is one coding step, steps per tile besides the transform)."""
    if hasattr(model, "lrp_nonanchor") and hasattr(model, "slice_num"):  # MLIC++: the last module of a slice
        return list(model.lrp_nonanchor), int(model.slice_num)
    if hasattr(model, "num_groups") and hasattr(model, "entropy_parameters"):  # eContextformer: one per group
        mods = [model.entropy_parameters]
        if getattr(model, "entropy_parameters_first", None) is not None:
            mods.append(model.entropy_parameters_first)
        return mods, int(model.num_groups)
    return [], 0


@contextlib.contextmanager
def coding_progress(model, tiles: int, decoding: bool, show: bool, desc: str | None = None):
    """While the block codes ``tiles`` tiles with ``model``, advance a bar by its steps (module docstring).
    Does nothing unless ``show``. The hooks are removed on leaving, whatever happens."""
    if not show:
        yield
        return
    modules, per_tile = _step_modules(model)
    transform = getattr(model, "g_s" if decoding else "g_a", None)
    if transform is not None:
        modules = [transform, *modules]
        per_tile += 1
    b = bar(total=max(1, tiles) * per_tile or None, desc=desc, unit="step")
    if b is None or not modules:
        yield
        if b is not None:
            b.close()
        return
    def step(*_):
        b.update(1)  # returns None: a hook's return value would replace the module's output

    handles = [m.register_forward_hook(step) for m in modules]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        b.close()
