"""Fast ECG page renderer: numpy + OpenCV, no matplotlib.

It draws the page geometry of :mod:`vizecg.render.layout` (for the ``2x6`` layout,
ecg_plot 0.2.8's exact figure) in two layers:

* the **static layer** (grid, frame, tick marks, tick labels, lead labels,
  header) is the same for every record of a style and is cached per process
  (:func:`static_layer`). The grid is placed with matplotlib Agg's rules (0.5 pt
  lines snapped to pixel centres at ecg_plot's scale) and drawn straight at the
  output size with exact area coverage; the black furniture (text in DejaVu
  Sans, as matplotlib draws it) is drawn at natural scale and area-averaged
  down, as a resized ecg_plot PNG is;
* the **trace layer** is drawn per record straight at the output scale with
  OpenCV's anti-aliased polylines, optionally supersampled, and alpha-blended.
  A line thinner than a pixel (ecg_plot's 0.5 pt trace is 0.69 px on its own page,
  0.17 px on a 512-pixel-wide image) is drawn as a one-pixel line whose opacity
  carries its true ink per unit length, which is what area-averaging a thin line
  gives.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vizecg.render.layout import POINT_PX, PageGeometry, page_geometry
from vizecg.render.style import BLACK_RGB, GRID_COLOURS, RenderStyle

_SHIFT = 4  # fractional bits for OpenCV coordinates
# Ink per unit length (px) of an OpenCV LINE_AA polyline by thickness, measured
# on OpenCV 4/5: thickness 1 leaves ~1.38 px of ink, each extra unit ~2 px.
_AA_INK_PX = {1: 1.38, 2: 3.43, 3: 5.46, 4: 7.46, 5: 9.46, 6: 11.46}


def _font_path() -> str:
    """DejaVu Sans, the font matplotlib draws ecg_plot's text with (shipped in matplotlib's data)."""
    candidates = []
    try:
        import matplotlib

        candidates.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")
    except ImportError:  # pragma: no cover - matplotlib is a dependency of the reference backend
        pass
    candidates.append(Path(ImageFont.__file__).parent / "fonts" / "DejaVuSans.ttf")
    for path in candidates:
        if path.is_file():
            return str(path)
    raise FileNotFoundError("DejaVuSans.ttf not found (install matplotlib, which ships it)")


@functools.lru_cache(maxsize=32)
def _font(size_px: float) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(_font_path(), size=max(1, int(round(size_px))))


def _line_coverage(n: int, centres: np.ndarray, width: float, snap: bool) -> np.ndarray:
    """Per-pixel coverage (0..1) of axis-parallel lines of ``width`` px centred at ``centres``.

    Pixel i spans [i, i+1). With ``snap`` the centres move like matplotlib's Agg
    snapping: to a pixel centre for odd rounded widths, to a pixel edge for even.
    """
    cov = np.zeros(n + 2, np.float64)
    c = np.asarray(centres, np.float64)
    if c.size == 0:
        return cov[:n]
    if snap:
        c = np.floor(c + 0.5) + (0.5 if int(math.floor(width + 0.5)) % 2 == 1 else 0.0)
    a, b = c - width / 2, c + width / 2
    first = np.floor(a).astype(np.int64)
    for k in range(int(math.ceil(width)) + 2):
        idx = first + k
        part = np.clip(np.minimum(idx + 1, b) - np.maximum(idx, a), 0.0, None)
        ok = (idx >= 0) & (idx < n) & (part > 0)
        np.add.at(cov, idx[ok], part[ok])
    return np.clip(cov[:n], 0.0, 1.0)


def _span_coverage(n: int, lo: float, hi: float) -> np.ndarray:
    """Coverage of the interval [lo, hi] over pixels 0..n-1."""
    idx = np.arange(n, dtype=np.float64)
    return np.clip(np.minimum(idx + 1, hi) - np.maximum(idx, lo), 0.0, 1.0)


def _blend(img: np.ndarray, alpha: np.ndarray, colour: tuple[int, int, int]) -> None:
    """In place: img = img * (1 - alpha) + colour * alpha (alpha broadcast over channels)."""
    a = alpha[..., None] if alpha.ndim == img.ndim - 1 else alpha
    img *= 1.0 - a
    img += a * np.asarray(colour, np.float32)


def _draw_rects(img: np.ndarray, rects, line_px: float, snap: bool, colour) -> None:
    """Axis-parallel segments (x0==x1 or y0==y1) of ``line_px`` width, as Agg would stroke them."""
    h, w = img.shape[:2]
    for r in rects:
        if r.x0 == r.x1:  # vertical segment
            cx = _line_coverage(w, np.array([r.x0]), line_px, snap)
            cy = _span_coverage(h, min(r.y0, r.y1), max(r.y0, r.y1))
        else:
            cy = _line_coverage(h, np.array([r.y0]), line_px, snap)
            cx = _span_coverage(w, min(r.x0, r.x1), max(r.x0, r.x1))
        ys, xs = np.nonzero(cy)[0], np.nonzero(cx)[0]
        if ys.size and xs.size:
            sub = img[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1]
            _blend(sub, np.outer(cy[ys[0]:ys[-1] + 1], cx[xs[0]:xs[-1] + 1]).astype(np.float32), colour)


def _snapped(centres: np.ndarray, width: float, snap: bool) -> np.ndarray:
    """Line centres after matplotlib Agg's snapping (pixel centre for odd rounded widths, edge for even)."""
    c = np.asarray(centres, np.float64)
    if not snap:
        return c
    return np.floor(c + 0.5) + (0.5 if int(math.floor(width + 0.5)) % 2 == 1 else 0.0)


def _draw_grid(geom: PageGeometry, style: RenderStyle) -> np.ndarray:
    """The mm grid at output size, float32 (H, W, 3) in 0..255.

    Lines are placed (and snapped) at natural scale and drawn straight at the
    output scale with exact area coverage, which is what area-averaging the
    natural page would give, at a fraction of the cost.
    """
    h, w = style.height, style.width
    img = np.full((h, w, 3), 255.0, np.float32)
    colours = GRID_COLOURS[style.grid_colour]
    if geom.grid is None or colours is None:
        return img
    sx, sy = w / geom.width, h / geom.height
    major, minor = colours
    x0, y0, x1, y1 = geom.grid.region
    along_y, along_x = _span_coverage(h, y0 * sy, y1 * sy), _span_coverage(w, x0 * sx, x1 * sx)
    lw = geom.grid_line_px
    # matplotlib order: x major, x minor, y major, y minor (later lines cover earlier ones)
    for positions, colour in ((geom.grid.vertical_major, major), (geom.grid.vertical_minor, minor)):
        cov = _line_coverage(w, _snapped(positions, lw, geom.snap) * sx, lw * sx, False)
        _blend(img, np.outer(along_y, cov).astype(np.float32), colour)
    for positions, colour in ((geom.grid.horizontal_major, major), (geom.grid.horizontal_minor, minor)):
        cov = _line_coverage(h, _snapped(positions, lw, geom.snap) * sy, lw * sy, False)
        _blend(img, np.outer(cov, along_x).astype(np.float32), colour)
    return img


def _draw_ink(geom: PageGeometry, style: RenderStyle) -> np.ndarray:
    """Black page furniture (frame, tick marks, tick labels, lead labels, header) as alpha (H, W) at output size.

    Drawn at natural scale (text needs it) and area-averaged to the output.
    """
    h, w = geom.height, geom.width
    ink = np.zeros((h, w, 3), np.float32)  # drawn as "colour 1 over 0" so _blend accumulates coverage
    white = (1, 1, 1)
    _draw_rects(ink, geom.frame, geom.frame_line_px, geom.snap, white)
    _draw_rects(ink, [t for t in geom.ticks if t.major], 0.8 * POINT_PX, geom.snap, white)
    _draw_rects(ink, [t for t in geom.ticks if not t.major], 0.6 * POINT_PX, geom.snap, white)
    alpha = ink[..., 0]
    if geom.texts:
        text = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(text)
        anchors = {"left": "ls", "center": "ms", "right": "rs"}
        for t in geom.texts:
            draw.text((t.x, t.y), t.text, fill=255, font=_font(t.size_px), anchor=anchors[t.align])
        t_alpha = np.asarray(text, np.float32) / 255.0
        alpha = alpha + t_alpha * (1.0 - alpha)
    if (w, h) != (style.width, style.height):
        alpha = cv2.resize(alpha, (style.width, style.height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(alpha, np.float32)


@functools.lru_cache(maxsize=1024)
def _grid_key(style: RenderStyle) -> RenderStyle:
    """Only the fields the grid depends on (layout fixes the geometry); the rest reset so caches are shared."""
    return RenderStyle(layout=style.layout, grid_colour=style.grid_colour, grid_line_width_pt=style.grid_line_width_pt,
                       height=style.height, width=style.width, header="", lead_labels=False,
                       axis_ticks=False if style.layout == "2x6" else None)


@functools.lru_cache(maxsize=1024)
def _ink_key(style: RenderStyle) -> RenderStyle:
    return RenderStyle(layout=style.layout, grid_colour="none", height=style.height, width=style.width,
                       header=style.header, lead_labels=style.lead_labels, axis_ticks=style.axis_ticks)


@functools.lru_cache(maxsize=48)
def _grid_layer(key: RenderStyle) -> np.ndarray:
    """uint8 grid at output size (uint8 keeps a worker's cache small: 0.3 MB a look at 192 x 536)."""
    grid = np.clip(np.rint(_draw_grid(page_geometry(key), key)), 0, 255).astype(np.uint8)
    grid.setflags(write=False)
    return grid


@functools.lru_cache(maxsize=48)
def _ink_layer(key: RenderStyle) -> np.ndarray:
    ink = _draw_ink(page_geometry(key), key)
    ink.setflags(write=False)
    return ink


@functools.lru_cache(maxsize=32)
def _static_layer_cached(grid_key: RenderStyle, ink_key: RenderStyle) -> np.ndarray:
    grid, ink = _grid_layer(grid_key), _ink_layer(ink_key)
    out = np.clip(np.rint(grid.astype(np.float32) * (1.0 - ink)[..., None]), 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


def static_layer(style: RenderStyle) -> np.ndarray:
    """The record-independent page of ``style`` at output size: read-only uint8 (H, W, 3), cached per process.

    Grid and black furniture are cached separately (a few dozen looks each), so
    randomized styles rarely pay for drawing text at natural scale.
    """
    return _static_layer_cached(_grid_key(style), _ink_key(style))


def _thickness_and_opacity(ink_px: float) -> tuple[int, float]:
    """OpenCV thickness and opacity whose anti-aliased line leaves ``ink_px`` of ink per unit length."""
    for thickness, ink in _AA_INK_PX.items():
        if ink_px <= ink:
            return thickness, ink_px / ink
    return max(1, int(round((ink_px + 0.57) / 2))), 1.0


def _choose_supersample(ink_px: float, height: int, width: int, max_pixels: float = 4e6) -> int:
    """Supersampling factor at which the trace is about one OpenCV AA line wide.

    Matplotlib strokes a trace as one path, so where a noisy trace zigzags
    within a pixel the ink saturates instead of adding up. Drawing at the scale
    where a thickness-1 OpenCV line has the trace's true width and area-averaging
    down reproduces that; the factor is capped so the drawing holds at most
    ``max_pixels`` (speed), the remaining thinning is carried by opacity.
    """
    wanted = round(_AA_INK_PX[1] / max(ink_px, 1e-6))
    cap = math.floor(math.sqrt(max_pixels / (height * width)))
    return int(max(1, min(wanted, cap, 8)))


def _decimate(values: np.ndarray, per_bucket: int) -> tuple[np.ndarray, np.ndarray]:
    """(sample index, value) of each bucket's first, min and max sample, in time order, plus the last sample."""
    n = values.shape[0]
    usable = (n // max(per_bucket, 1)) * max(per_bucket, 1)
    if per_bucket < 3 or n < per_bucket:
        return np.arange(n), values
    blocks = values[:usable].reshape(-1, per_bucket)
    base = np.arange(0, usable, per_bucket)
    picks = np.stack([base, base + blocks.argmin(axis=1), base + blocks.argmax(axis=1)], axis=1)
    picks.sort(axis=1)
    idx = np.concatenate([picks.reshape(-1), np.arange(usable, n), [n - 1]])
    return idx, values[idx]


def _trace_alpha(signal: np.ndarray, geom: PageGeometry, style: RenderStyle,
                 supersample: int | None) -> tuple[np.ndarray, float, float]:
    """Anti-aliased trace coverage at output size (uint8 mask); alpha = clip(mask / 255 * opacity + offset, 0, 1)."""
    out_h, out_w = style.height, style.width
    base_sx, base_sy = out_w / geom.width, out_h / geom.height
    ink_out = style.line_width_pt * POINT_PX * math.sqrt(base_sx * base_sy)
    ss = _choose_supersample(ink_out, out_h, out_w) if supersample is None else max(1, int(supersample))
    sx, sy = base_sx * ss, base_sy * ss
    mask = np.zeros((out_h * ss, out_w * ss), np.uint8)
    scale = float(1 << _SHIFT)
    polylines = []
    # Samples per half output pixel (in the drawing scale): beyond that, keep each bucket's envelope.
    per_bucket = int(0.5 / (geom.px_per_sample * sx))
    for panel in geom.panels:
        idx, values = _decimate(signal[panel.start:panel.stop, panel.lead], per_bucket)
        x = (panel.x0 + idx.astype(np.float64) * geom.px_per_sample) * sx - 0.5
        y = (panel.baseline - values.astype(np.float64) * geom.px_per_mv) * sy - 0.5
        polylines.append(np.rint(np.stack([x, y], axis=1) * scale).astype(np.int32))
    for x0, baseline, lead in geom.start_marks:
        yc = baseline - float(signal[0, lead]) * geom.px_per_mv
        pts = np.array([[x0 * sx - 0.5, (yc - geom.start_mark_half_px) * sy - 0.5],
                        [x0 * sx - 0.5, (yc + geom.start_mark_half_px) * sy - 0.5]])
        polylines.append(np.rint(pts * scale).astype(np.int32))
    for stroke in geom.strokes:
        pts = np.array(stroke, np.float64) * np.array([sx, sy]) - 0.5
        polylines.append(np.rint(pts * scale).astype(np.int32))
    thickness, opacity = _thickness_and_opacity(ink_out * ss)
    offset = 0.0
    if ss == 1 and thickness == 1 and ink_out >= 0.5 * _AA_INK_PX[1]:
        # A line between half and one AA-line wide drawn without supersampling (a page near its natural
        # size): cutting the soft shoulders of OpenCV's ~2 px profile ([.21, .91, .23] across a line)
        # gives a sharper line with the same ink, like Agg's (0.69 px ecg_plot trace: [0, .61, 0]).
        offset = -0.3 * min(1.0, (_AA_INK_PX[1] - ink_out) / (0.5 * _AA_INK_PX[1]))
        opacity = 1.0
    cv2.polylines(mask, polylines, False, 255, thickness, cv2.LINE_AA, _SHIFT)
    # Traces leave the page only through its frame (matplotlib clips to the axes).
    x0, y0, x1, y1 = geom.clip
    cx0, cx1 = int(math.floor(x0 * sx)), int(math.ceil(x1 * sx))
    cy0, cy1 = int(math.floor(y0 * sy)), int(math.ceil(y1 * sy))
    mask[:max(cy0, 0)] = 0
    mask[cy1:] = 0
    mask[:, :max(cx0, 0)] = 0
    mask[:, cx1:] = 0
    if ss > 1:
        mask = cv2.resize(mask, (out_w, out_h), interpolation=cv2.INTER_AREA)
    return mask, opacity, offset


@functools.lru_cache(maxsize=8)
def _colour_plane(height: int, width: int, colour: tuple[int, int, int]) -> np.ndarray:
    plane = np.empty((height, width, 3), np.uint8)
    plane[:] = colour
    plane.setflags(write=False)
    return plane


def render_fast(signal: np.ndarray, style: RenderStyle, *, supersample: int | None = None) -> np.ndarray:
    """Render one checked record ``(4096, 12)`` mV to uint8 ``(style.height, style.width, 3)``.

    No validation here: :func:`vizecg.render.render_ecg` checks the record contract.
    ``supersample`` overrides the automatic factor (:func:`_choose_supersample`).
    """
    geom = page_geometry(style)
    base = static_layer(style)
    mask, opacity, offset = _trace_alpha(signal, geom, style, supersample)
    lut = np.clip(np.arange(256, dtype=np.float32) * np.float32(opacity / 255.0) + np.float32(offset), 0.0, 1.0)
    trace_weight = cv2.LUT(mask, lut.astype(np.float32))
    out = cv2.blendLinear(base, _colour_plane(style.height, style.width, style.trace_colour),
                          1.0 - trace_weight, trace_weight)
    return out
