"""Rate-distortion plots: PSNR (dB) and MS-SSIM (dB) against bits per pixel, side by side, one curve per results
file. Anchors (published curves) are drawn dashed so they stand apart from this project's measurements."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .base import EvaluationError
from .bdrate import ms_ssim_db
from .results import curve


def plot_rd(curves: list[dict], out, *, anchors: list[dict] = (), title: str = "Rate-distortion",
            max_bpp: float | None = None, dpi: int = 150) -> Path:
    """Draw ``curves`` (solid) and ``anchors`` (dashed, "(published)" in the legend) into the PNG/PDF/SVG file
    ``out``, optionally only up to ``max_bpp``; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not curves and not anchors:
        raise EvaluationError("nothing to plot: give at least one results file")
    out = Path(out)
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
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=out.suffix or ".png", dir=out.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return out
