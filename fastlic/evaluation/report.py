"""``fastlic report``: one self-contained HTML page from results files, to look at a codec rather than read it.

The page holds (everything embedded as base64 ``data:`` URIs: no server, no network, one file to share):

* the RD curves, PSNR and MS-SSIM against bpp (:func:`fastlic.evaluation.plot.plot_rd`, SVG);
* the BD-rate table of every curve against the anchor (``--anchor NAME``; default the first file), on PSNR and
  MS-SSIM (:mod:`fastlic.evaluation.bdrate`);
* with ``--images DIR``, for a few images (default 2), the same crop of the original and of every codec that can be
  re-run here (the classic codecs of :mod:`fastlic.evaluation.classic`, learned models with bundled weights) at
  the file size closest to fastlic's file of that image, with the bpp and PSNR of the whole image under each.

The sizes are matched by bisection over each codec's quality parameter on real encodings of the whole image
(file size grows with quality for every codec here); the closest size found is used.
"""

from __future__ import annotations

import base64
import html
import io
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FastlicError
from .base import EvaluationError
from .bdrate import bd_psnr_results, bd_rate_results
from .metrics import psnr
from .results import load_results

#: quality search range of each classic codec for the size match: (low, high, integer parameter?)
SEARCH_RANGES = {"jpeg": (1, 95, True), "webp": (0, 100, True), "avif": (0, 100, True), "jxl": (1, 100, True),
                 "jpeg2000": (15.0, 60.0, False)}


@dataclass
class Crop:
    label: str
    png: bytes
    bpp: float | None = None
    psnr: float | None = None
    note: str = ""


@dataclass
class ImageCrops:
    name: str
    box: tuple[int, int, int, int]  # top, left, height, width
    crops: list[Crop] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def crop_box(image: np.ndarray, side: int) -> tuple[int, int, int, int]:
    """The ``side`` x ``side`` window (on a grid of half-window steps) with the most detail (gradient energy):
    where codecs differ most."""
    h, w = image.shape[:2]
    ch, cw = min(side, h), min(side, w)
    g = image.astype(np.float64).mean(axis=2)
    energy = np.zeros_like(g)
    energy[:, 1:] += np.abs(np.diff(g, axis=1))
    energy[1:, :] += np.abs(np.diff(g, axis=0))
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    best, box = -1.0, (0, 0, ch, cw)
    for top in range(0, h - ch + 1, max(1, ch // 2)):
        for left in range(0, w - cw + 1, max(1, cw // 2)):
            s = (integral[top + ch, left + cw] - integral[top, left + cw] - integral[top + ch, left]
                 + integral[top, left])
            if s > best:
                best, box = s, (top, left, ch, cw)
    return box


def match_size(encode, target: int, lo, hi, integer: bool, steps: int = 12):
    """Bisection over a quality parameter in [lo, hi] for the encoding whose size is closest to ``target``
    bytes (size assumed to grow with quality). -> (quality, data)."""
    best = None

    def consider(q):
        nonlocal best
        data = encode(q)
        if best is None or abs(len(data) - target) < abs(len(best[1]) - target):
            best = (q, data)
        return len(data)

    if integer:
        a, b = int(lo), int(hi)
        while a <= b:
            mid = (a + b) // 2
            if consider(mid) < target:
                a = mid + 1
            else:
                b = mid - 1
    else:
        a, b = float(lo), float(hi)
        for _ in range(steps):
            mid = (a + b) / 2
            if consider(mid) < target:
                a = mid
            else:
                b = mid
    return best


def _codec_of(result: dict):
    """What re-encodes a results file's codec: ("classic", name) / ("learned", model name) / None."""
    info = result.get("meta", {}).get("codec", {}) if isinstance(result.get("meta"), dict) else {}
    if isinstance(info, dict) and info.get("model") and not info.get("random_init"):
        return "learned", info["model"]
    if result.get("name") in SEARCH_RANGES:
        return "classic", result["name"]
    return None


def make_crops(image_path: Path, results: list[dict], reference, reference_quality, side: int) -> ImageCrops:
    """Crops of one image: the original, the reference (fastlic) model's file, and every other codec at the file
    size closest to the reference's."""
    from .. import codec as flic
    from ..io import read_image
    from . import get_codec

    image = read_image(image_path)
    h, w = image.shape[:2]
    top, left, ch, cw = crop_box(image, side)
    out = ImageCrops(image_path.name, (top, left, ch, cw))

    def cut(a):
        return a[top:top + ch, left:left + cw]

    def add(label, data, rec, note=""):
        out.crops.append(Crop(label, _png(cut(rec)), 8 * len(data) / (h * w), psnr(image, rec), note))

    out.crops.append(Crop("original", _png(cut(image))))
    ref_data = flic.encode_image(reference, image, quality=reference_quality)
    q = flic.read_header(ref_data).quality
    shown = "" if math.isnan(q) else f" (quality {flic.scale_quality(reference, q):.3g})"  # on the 0-100 scale
    add(f"fastlic {reference.model_name}{shown}", ref_data, flic.decode_image(ref_data, reference))
    target = len(ref_data)
    seen = {("learned", reference.model_name)}
    for result in results:
        kind = _codec_of(result)
        label = result.get("name", "?")
        if kind is None:
            out.notes.append(f"{label}: no codec to re-encode here (published or external curve)")
            continue
        if kind in seen:
            continue
        seen.add(kind)
        try:
            if kind[0] == "classic":
                c = get_codec(kind[1])
                c.check_available()
                lo, hi, integer = SEARCH_RANGES[kind[1]]
                qual, data = match_size(lambda q: c.encode(image, q), target, lo, hi, integer)
                add(f"{c.name} (q {qual:g})", data, np.asarray(c.decode(data, qual)))
            else:
                model = flic.load_model(kind[1])
                if hasattr(model, "set_quality"):
                    qual, data = match_size(lambda q: flic.encode_image(model, image, quality=q), target, 0.0,
                                            float(model.num_rates - 1), False, steps=8)
                    label = f"fastlic {kind[1]} (quality {flic.scale_quality(model, qual):.3g})"
                else:
                    data, label = flic.encode_image(model, image), f"fastlic {kind[1]} (fixed rate)"
                add(label, data, flic.decode_image(data, model))
        except FastlicError as exc:
            out.notes.append(f"{label}: {exc}")
    return out


def bd_table(results: list[dict], anchor: dict) -> list[tuple[str, list[str]]]:
    """Rows (name, [BD-rate PSNR, BD-PSNR, BD-rate MS-SSIM]) of every curve but the anchor."""
    rows = []
    for r in results:
        if r is anchor:
            continue
        cells = []
        for fn, metric, fmt in ((bd_rate_results, "psnr-rgb", "{:+.2f} %"), (bd_psnr_results, "psnr-rgb", "{:+.3f} dB"),
                                (bd_rate_results, "ms-ssim-rgb", "{:+.2f} %")):
            try:
                cells.append(fmt.format(fn(anchor, r, metric)))
            except FastlicError as exc:
                cells.append(f"— ({exc})" if "overlap" in str(exc) else "—")
        rows.append((r.get("name", "?"), cells))
    return rows


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1320px;color:#222}
h1{font-size:26px;margin-bottom:4px} h2{font-size:20px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.neg{color:#0a7a2f;font-weight:600} .pos{color:#b3261e}
.rd{width:100%;border:1px solid #eee}
.crops{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;text-align:center;font-size:13px}
figure img{image-rendering:pixelated;border:1px solid #999}
.note{color:#666;font-size:13px}
"""


def render_html(title: str, results: list[dict], anchor: dict, rd_svg: bytes, rows, images: list[ImageCrops],
                zoom: int, sources: list[str]) -> str:
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{e(title)}</h1>"]
    # the data sets by name: a results file records the folder it was measured on, which another machine (a
    # fresh clone) does not have, so a path here would point nowhere
    datasets = sorted({Path(str(r.get("meta", {}).get("dataset", ""))).name for r in results} - {""})
    parts.append(f"<p class='note'>{len(results)} curves" + (f" on {e(', '.join(datasets))}" if datasets else "") +
                 f"; BD-rates against <b>{e(anchor.get('name', '?'))}</b>. Made by <code>fastlic report</code>.</p>")
    parts.append("<h2>Rate-distortion</h2>")
    parts.append(f"<img class='rd' alt='RD curves: PSNR and MS-SSIM against bpp' "
                 f"src='{_data_uri(rd_svg, 'image/svg+xml')}'>")
    parts.append(f"<h2>BD-rate against {e(anchor.get('name', '?'))}</h2><p class='note'>Negative: fewer bits than "
                 "the anchor at equal quality (pchip over the overlapping range).</p><table><tr><th>codec</th>"
                 "<th>BD-rate (PSNR)</th><th>BD-PSNR</th><th>BD-rate (MS-SSIM)</th></tr>")
    for name, cells in rows:
        # green where the curve beats the anchor: a negative BD-rate, a positive BD-PSNR
        better = [cells[0].startswith("-"), cells[1].startswith("+"), cells[2].startswith("-")]
        tds = "".join(f"<td class='{'' if c.startswith('—') else 'neg' if b else 'pos'}'>{e(c)}</td>"
                      for c, b in zip(cells, better))
        parts.append(f"<tr><td>{e(name)}</td>{tds}</tr>")
    parts.append("</table>")
    for img in images:
        top, left, ch, cw = img.box
        parts.append(f"<h2>{e(img.name)}: crop {cw}×{ch} at ({left}, {top}), shown ×{zoom}</h2>"
                     "<p class='note'>Each codec at the file size closest to fastlic's; bpp and PSNR of the whole "
                     "image.</p><div class='crops'>")
        for c in img.crops:
            caption = e(c.label) if c.bpp is None else \
                f"{e(c.label)}<br>{c.bpp:.3f} bpp, {c.psnr:.2f} dB"
            parts.append(f"<figure><img width='{cw * zoom}' height='{ch * zoom}' alt='{e(c.label)}' "
                         f"src='{_data_uri(c.png, 'image/png')}'><figcaption>{caption}</figcaption></figure>")
        parts.append("</div>")
        for n in img.notes:
            parts.append(f"<p class='note'>{e(n)}</p>")
    parts.append("<h2>Curves</h2><table><tr><th>name</th><th>description</th><th>points</th><th>file</th></tr>")
    for r, src in zip(results, sources):
        parts.append(f"<tr><td>{e(str(r.get('name', '?')))}</td><td>{e(str(r.get('description', '')))}</td>"
                     f"<td>{len(r['results']['bpp'])}</td><td>{e(src)}</td></tr>")
    parts.append("</table></body></html>\n")
    return "".join(parts)


def pick_anchor(results: list[dict], sources: list[str], name: str | None) -> dict:
    if name is None:
        return results[0]
    for r, src in zip(results, sources):
        if name in (r.get("name"), Path(src).stem, src):
            return r
    have = ", ".join(str(r.get("name")) for r in results)
    raise EvaluationError(f"--anchor {name!r} is none of the curves ({have})")


def build_report(paths, out, *, anchor: str | None = None, images_dir=None, image_names=(), num_images: int = 2,
                 crop: int = 192, zoom: int = 2, model: str | None = None, checkpoint=None, quality=None,
                 native_quality=None, title: str = "fastlic report", overwrite: bool = False) -> Path:
    """Write the report of the results files ``paths`` to ``out`` (atomically); returns its path. The crops'
    reference is ``model`` at ``quality`` (0-100, :func:`fastlic.codec.native_quality`) or ``native_quality``
    (its own scale); default the middle."""
    from ..io import write_bytes
    from .plot import plot_rd

    out = Path(out)
    if not overwrite and out.exists():
        from ..io import OutputExistsError

        raise OutputExistsError(out)
    if not paths:
        raise EvaluationError("give at least one results file")
    if num_images < 0 or crop < 16 or zoom < 1:
        raise EvaluationError("--num-images must be >= 0, --crop >= 16 and --zoom >= 1")
    sources = [str(p) for p in paths]
    results = [load_results(p) for p in paths]
    anchor_result = pick_anchor(results, sources, anchor)
    rows = bd_table(results, anchor_result)
    with tempfile.TemporaryDirectory() as tmp:
        svg = plot_rd(results, Path(tmp) / "rd.svg", title=title).read_bytes()
    crops = []
    if images_dir is not None and num_images > 0:
        from .. import codec as flic
        from .runner import find_images

        found = find_images(images_dir)
        if image_names:
            by_name = {p.name: p for p in found}
            missing = [n for n in image_names if n not in by_name]
            if missing:
                raise EvaluationError(f"{images_dir}: no image named {', '.join(missing)}")
            found = [by_name[n] for n in image_names]
        reference = flic.load_model(model, checkpoint)
        native = native_quality if quality is None else flic.native_quality(reference, quality)
        for path in found[:num_images]:
            crops.append(make_crops(path, results, reference, native, crop))
    page = render_html(title, results, anchor_result, svg, rows, crops, zoom, sources)
    write_bytes(out, page.encode("utf-8"), overwrite=overwrite)
    return out
