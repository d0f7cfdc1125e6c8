"""Rate-distortion plots: PSNR (dB) and MS-SSIM (dB) against bits per pixel, side by side, one curve per results
file. Anchors (published curves) are drawn dashed so they stand apart from this project's measurements."""

from __future__ import annotations

import os
from pathlib import Path

from .base import EvaluationError
from .bdrate import ms_ssim_db
from .results import curve

#: the file formats of a plot, by extension
PLOT_FORMATS = ("png", "pdf", "svg")


def check_plot_output(out, overwrite: bool = True) -> str:
    """Refuse, before any drawing, an output the plot could not be written to: an extension other than
    :data:`PLOT_FORMATS`, a missing directory, an existing file without ``overwrite``. -> the format."""
    from ..io import OutputExistsError

    out = Path(out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in PLOT_FORMATS:
        what = f"unknown plot extension {out.suffix!r}" if out.suffix else "no plot extension"
        raise EvaluationError(f"{out}: {what} (use {', '.join('.' + f for f in PLOT_FORMATS)})")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise EvaluationError(f"{out}: output directory {parent} does not exist")
    if out.is_dir():
        raise EvaluationError(f"{out}: is a directory")
    if not overwrite and os.path.lexists(out):
        raise OutputExistsError(out)
    return fmt


def plot_rd(curves: list[dict], out, *, anchors: list[dict] = (), title: str = "Rate-distortion",
            max_bpp: float | None = None, dpi: int = 150, overwrite: bool = True) -> Path:
    """Draw ``curves`` (solid) and ``anchors`` (dashed, "(published)" in the legend) into the PNG/PDF/SVG file
    ``out``, optionally only up to ``max_bpp``; returns its path. The file is written atomically
    (:func:`fastlic.io.atomic_output`); its directory must exist, and an existing file is replaced only with
    ``overwrite`` (:func:`check_plot_output`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_output

    if not curves and not anchors:
        raise EvaluationError("nothing to plot: give at least one results file")
    out = Path(out)
    fmt = check_plot_output(out, overwrite)
    fig, axes = plt.subplots(1, 2, figsize=(14, 6))
    # one colour per curve, the same in both panels (20 distinct colours before any repeats)
    palette = plt.get_cmap("tab20").colors
    colours = [palette[(2 * i) % 20 + (2 * i) // 20 % 2] for i in range(len(curves) + len(anchors))]
    panels = (("psnr-rgb", "PSNR-RGB (dB)"), ("ms-ssim-rgb", "MS-SSIM-RGB (dB), -10 log10(1 - MS-SSIM)"))
    for ax, (metric, label) in zip(axes, panels):
        drawn = 0
        for style, group, offset in (("-", curves, 0), ("--", anchors, len(curves))):
            for k, data in enumerate(group):
                if metric not in data["results"]:
                    continue
                x, y = curve(data, metric)
                if not x:
                    continue
                pts = sorted(p for p in zip(x, y) if max_bpp is None or p[0] <= max_bpp)
                xs = [p[0] for p in pts]
                ys = [p[1] for p in pts]
                if metric == "ms-ssim-rgb":
                    ys = list(ms_ssim_db(ys))
                name = data.get("name", "?") + (" (published)" if style == "--" else "")
                ax.plot(xs, ys, style, marker="o" if style == "-" else ".", markersize=4, linewidth=1.4,
                        color=colours[offset + k], label=name)
                drawn += 1
        ax.set_xlabel("Rate (bits per pixel, bpp)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(fontsize=8, loc="lower right")
        else:
            ax.text(0.5, 0.5, f"no {metric} values", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title)
    fig.tight_layout()
    try:
        with atomic_output(out, overwrite) as tmp:
            fig.savefig(tmp, dpi=dpi, format=fmt)
    finally:
        plt.close(fig)
    return out
