"""Page geometry of a :class:`~vizecg.render.style.RenderStyle`, in natural pixels.

Every page is first laid out at its *natural* scale, 4 pixels per millimetre,
which is ecg_plot 0.2.8's scale at dpi 100 (100 px per second at 25 mm/s, 40 px
per mV at 10 mm/mV). Renderers draw the static parts (grid, frame, ticks, text)
at that scale once and resize them to the output, then draw the traces straight
at the output scale, so a small training image costs a few milliseconds.

The ``2x6`` geometry reproduces ecg_plot 0.2.8's figure exactly. Its constants
were measured from matplotlib 3.11 with ``savefig(dpi=100, bbox_inches="tight")``
of ``ecg_plot.plot(x, sample_rate=400)`` for ``x`` of shape (12, 4096): the figure
is 20.48 x 7.2 inches, the axes fill it, and the tight box adds the y tick labels
(52.72 px), the x tick labels (23.61 px) and 0.1 inch of padding on every side.
Matplotlib snaps horizontal and vertical lines to pixel centres; the ``snap``
flag tells the renderer to do the same.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from vizecg.contract import LEADS, N_SAMPLES, SAMPLE_RATE_HZ
from vizecg.render.style import PAPER_HEIGHT_PX, PAPER_WIDTH_PX, RenderStyle

NATURAL_PX_PER_MM = 4.0
POINT_PX = 100.0 / 72.0  # one typographic point at ecg_plot's dpi 100

# ecg_plot 0.2.8 page, measured (see module docstring). Image coordinates: x right,
# y down, pixel i spans [i, i + 1).
_EP_AXES_LEFT = 62.722222  # pad 10 + y tick label extent 52.72
_EP_AXES_BOTTOM = 729.388889  # canvas height 763 minus (pad 10 + x tick label extent 23.61)
_EP_AXES_WIDTH = 2048.0  # 2 columns x 10.24 s x 100 px/s
_EP_AXES_HEIGHT = 720.0  # 6 rows x 6 "row_height" / 5 inches x 100 dpi
_EP_Y_MIN_MV = -16.5  # row_height / 4 - rows / 2 * row_height
_EP_ROW_PITCH_MV = 3.0  # row_height / 2
_EP_TICK_MAJOR_PX = 3.5 * POINT_PX  # matplotlib default tick sizes and pads
_EP_TICK_MINOR_PX = 2.0 * POINT_PX
_EP_TICK_PAD_PX = 3.5 * POINT_PX
# DejaVu Sans "lp" ascent as a fraction of the em, which matplotlib aligns text with.
_LP_ASCENT_EM = 0.76


@dataclass(frozen=True)
class Panel:
    """One lead trace on the page: signal samples [start, stop) drawn from x0 to the right."""

    lead: int
    start: int
    stop: int
    x0: float
    baseline: float


@dataclass(frozen=True)
class Text:
    """A text item: ``align`` is 'left', 'center' or 'right' about x; y is the baseline."""

    text: str
    x: float
    y: float
    size_px: float
    align: str = "left"


@dataclass(frozen=True)
class Lines:
    """Full-length axis-parallel grid lines (positions in px) over a rectangle."""

    vertical_major: tuple[float, ...]
    vertical_minor: tuple[float, ...]
    horizontal_major: tuple[float, ...]
    horizontal_minor: tuple[float, ...]
    region: tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass(frozen=True)
class Rect:
    """An axis-parallel filled rectangle (frame lines, tick marks)."""

    x0: float
    y0: float
    x1: float
    y1: float
    major: bool = True


@dataclass(frozen=True)
class PageGeometry:
    """Everything a renderer needs to draw one style's page at natural scale."""

    width: int
    height: int
    px_per_sample: float
    px_per_mv: float
    clip: tuple[float, float, float, float]
    panels: tuple[Panel, ...]
    grid: Lines | None
    grid_line_px: float
    snap: bool
    frame: tuple[Rect, ...] = ()
    frame_line_px: float = 0.0
    ticks: tuple[Rect, ...] = ()
    texts: tuple[Text, ...] = ()
    strokes: tuple[tuple[tuple[float, float], ...], ...] = ()
    # ecg_plot's column separators: (x, baseline, lead whose first sample sets the height)
    start_marks: tuple[tuple[float, float, int], ...] = ()
    start_mark_half_px: float = 0.0


@functools.lru_cache(maxsize=256)
def page_geometry(style: RenderStyle) -> PageGeometry:
    """Lay out ``style``'s page at natural scale (see the module docstring); cached per style."""
    if style.layout == "2x6":
        return _ecg_plot_page(style)
    return _clinical_page(style)


def _fmt_tick(value: float) -> str:
    text = f"{value:.1f}"
    if text.startswith("-"):
        text = "\u2212" + text[1:]  # matplotlib draws a true minus sign
    return "0.0" if text == "\u22120.0" else text


def _ecg_plot_page(style: RenderStyle) -> PageGeometry:
    """ecg_plot 0.2.8 ``plot`` (columns=2, row_height=6) + ``save_as_png`` (dpi 100, tight)."""
    left, bottom = _EP_AXES_LEFT, _EP_AXES_BOTTOM
    top, right = bottom - _EP_AXES_HEIGHT, left + _EP_AXES_WIDTH
    px_per_s_page = 100.0  # at 25 mm/s
    px_per_mv_page = 40.0  # at 10 mm/mV

    def y_of(v_page_mv: float) -> float:
        return bottom - (v_page_mv - _EP_Y_MIN_MV) * px_per_mv_page

    col_seconds = N_SAMPLES / SAMPLE_RATE_HZ  # 10.24 s per column on the page
    px_per_sample = px_per_s_page / SAMPLE_RATE_HZ * style.paper_speed_mm_s / 25.0
    px_per_mv = px_per_mv_page * style.gain_mm_mv / 10.0
    shown = int(round(N_SAMPLES * 25.0 / style.paper_speed_mm_s))
    panels, start_marks = [], []
    for column in range(2):
        x0 = left + column * col_seconds * px_per_s_page
        for row in range(6):
            lead = column * 6 + row
            baseline = y_of(-_EP_ROW_PITCH_MV * row)
            panels.append(Panel(lead, 0, min(shown, N_SAMPLES), x0, baseline))
            if column > 0:
                # ecg_plot reads the previous loop iteration's lead for the mark's height.
                start_marks.append((x0, baseline, lead - 1))

    grid = None
    if style.grid_colour != "none":
        # x: major every 0.2 s (arange(0, 20.48, 0.2)), minor every 0.04 s up to the right spine.
        n_mm_x = int(round(_EP_AXES_WIDTH / NATURAL_PX_PER_MM))
        n_mm_y = int(round(_EP_AXES_HEIGHT / NATURAL_PX_PER_MM))
        vmaj = tuple(left + i * NATURAL_PX_PER_MM for i in range(0, n_mm_x, 5))
        vmin = tuple(left + i * NATURAL_PX_PER_MM for i in range(n_mm_x + 1) if i % 5)
        hmaj = tuple(bottom - i * NATURAL_PX_PER_MM for i in range(0, n_mm_y, 5))
        hmin = tuple(bottom - i * NATURAL_PX_PER_MM for i in range(n_mm_y + 1) if i % 5 or i == n_mm_y)
        grid = Lines(vmaj, vmin, hmaj, hmin, (left, top, right, bottom))

    frame = (Rect(left, top, left, bottom), Rect(right, top, right, bottom),
             Rect(left, top, right, top), Rect(left, bottom, right, bottom))
    ticks: list[Rect] = []
    texts: list[Text] = []
    if style.show_axis_ticks:
        label_px = 10 * POINT_PX
        n_major_x = int(math.ceil(20.48 / 0.2 - 1e-9))  # 0.0 .. 20.4
        for i in range(int(round(_EP_AXES_WIDTH / NATURAL_PX_PER_MM)) + 1):
            x = left + i * NATURAL_PX_PER_MM
            major = i % 5 == 0 and i // 5 < n_major_x
            ticks.append(Rect(x, bottom, x, bottom + (_EP_TICK_MAJOR_PX if major else _EP_TICK_MINOR_PX), major))
            if major:
                label_top = bottom + _EP_TICK_MAJOR_PX + _EP_TICK_PAD_PX
                texts.append(Text(_fmt_tick(0.2 * (i // 5)), x, label_top + _LP_ASCENT_EM * label_px, label_px, "center"))
        for i in range(int(round(_EP_AXES_HEIGHT / NATURAL_PX_PER_MM)) + 1):
            y = bottom - i * NATURAL_PX_PER_MM
            major = i % 5 == 0 and i < 180
            ticks.append(Rect(left - (_EP_TICK_MAJOR_PX if major else _EP_TICK_MINOR_PX), y, left, y, major))
            if major:
                value = _EP_Y_MIN_MV + 0.5 * (i // 5)
                texts.append(Text(_fmt_tick(value), left - _EP_TICK_MAJOR_PX - _EP_TICK_PAD_PX,
                                  y + _LP_ASCENT_EM * label_px / 2, label_px, "right"))
    if style.lead_labels:
        for panel in panels:
            texts.append(Text(LEADS[panel.lead], panel.x0 + 0.07 * px_per_s_page,
                              panel.baseline + 0.5 * px_per_mv_page, 9 * POINT_PX, "left"))
    if style.header:
        title_px = 12 * POINT_PX  # suptitle, fontsize "large"
        title_top = bottom - 0.98 * _EP_AXES_HEIGHT
        texts.append(Text(style.header, left + _EP_AXES_WIDTH / 2, title_top + _LP_ASCENT_EM * title_px,
                          title_px, "center"))
    return PageGeometry(
        width=PAPER_WIDTH_PX, height=PAPER_HEIGHT_PX, px_per_sample=px_per_sample, px_per_mv=px_per_mv,
        clip=(left, top, right, bottom), panels=tuple(panels), grid=grid,
        grid_line_px=style.grid_line_width_pt * POINT_PX, snap=True,
        frame=frame, frame_line_px=0.8 * POINT_PX, ticks=tuple(ticks), texts=tuple(texts),
        start_marks=tuple(start_marks), start_mark_half_px=0.3 * px_per_mv_page,
    )


# Clinical layouts: rows of panels; (rows, columns, nominal row pitch in mm, rhythm strip).
_CLINICAL = {
    "3x4": (3, 4, 38.0, True),
    "6x2": (6, 2, 28.0, False),
    "12x1": (12, 1, 18.0, False),
}
_MARGIN_LEFT_MM, _MARGIN_RIGHT_MM, _MARGIN_TOP_MM, _MARGIN_BOTTOM_MM = 16.0, 8.0, 14.0, 8.0
_STRIP_MM = N_SAMPLES / SAMPLE_RATE_HZ * 25.0  # 256 mm: the whole record at 25 mm/s


def _clinical_page(style: RenderStyle) -> PageGeometry:
    """A printer-style page: mm grid over the whole sheet, rows of panels, calibration pulses.

    The sheet has the proportions of its content (margins, 256 mm of trace, the
    rows at their nominal pitch) and, like a photographed printout fed to a
    model, is resized to the output size whatever its aspect ratio.
    """
    rows, columns, pitch_mm, rhythm = _CLINICAL[style.layout]
    n_rows = rows + (1 if rhythm else 0)
    page_w = _MARGIN_LEFT_MM + _STRIP_MM + _MARGIN_RIGHT_MM
    page_h = _MARGIN_TOP_MM + n_rows * pitch_mm + _MARGIN_BOTTOM_MM
    s = NATURAL_PX_PER_MM
    width, height = int(round(page_w * s)), int(round(page_h * s))
    left_mm = _MARGIN_LEFT_MM
    px_per_sample = style.paper_speed_mm_s * s / SAMPLE_RATE_HZ
    px_per_mv = style.gain_mm_mv * s
    panel_mm = _STRIP_MM / columns
    panel_samples = int(round(panel_mm / style.paper_speed_mm_s * SAMPLE_RATE_HZ))

    def baseline_of(row: int) -> float:
        return (_MARGIN_TOP_MM + pitch_mm * (row + 0.62)) * s

    panels: list[Panel] = []
    for column in range(columns):
        for row in range(rows):
            lead = column * rows + row
            start = column * panel_samples
            panels.append(Panel(lead, start, min(start + panel_samples, N_SAMPLES), (left_mm + column * panel_mm) * s,
                                baseline_of(row)))
    if rhythm:
        shown = int(round(_STRIP_MM / style.paper_speed_mm_s * SAMPLE_RATE_HZ))
        panels.append(Panel(LEADS.index("II"), 0, min(shown, N_SAMPLES), left_mm * s, baseline_of(rows)))

    grid = None
    if style.grid_colour != "none":
        n_x, n_y = int(page_w), int(page_h)
        grid = Lines(tuple(i * s for i in range(0, n_x + 1, 5)), tuple(i * s for i in range(n_x + 1) if i % 5),
                     tuple(i * s for i in range(0, n_y + 1, 5)), tuple(i * s for i in range(n_y + 1) if i % 5),
                     (0.0, 0.0, float(width), float(height)))

    strokes: list[tuple[tuple[float, float], ...]] = []
    texts: list[Text] = []
    label_px = 3.2 * s
    for panel in panels:
        if style.lead_labels:
            texts.append(Text(LEADS[panel.lead], panel.x0 + 1.0 * s, panel.baseline - 0.3 * pitch_mm * s, label_px))
        if panel.x0 > left_mm * s + 1e-6:  # a short bar where one segment hands over to the next
            strokes.append(((panel.x0, panel.baseline - 2.5 * s), (panel.x0, panel.baseline + 2.5 * s)))
    if style.show_calibration_pulse:
        pulse_w = 0.2 * style.paper_speed_mm_s * s
        pulse_h = style.gain_mm_mv * s  # 1 mV
        x_end = left_mm * s - 1.0 * s
        x_start = x_end - pulse_w - 2.0 * s
        for row in range(n_rows):
            b = baseline_of(row)
            strokes.append(((x_start, b), (x_start + s, b), (x_start + s, b - pulse_h), (x_start + s + pulse_w, b - pulse_h),
                            (x_start + s + pulse_w, b), (x_end, b)))
    if style.header:
        texts.append(Text(style.header, left_mm * s, (_MARGIN_TOP_MM - 6.0) * s, 3.5 * s))
    return PageGeometry(
        width=width, height=height, px_per_sample=px_per_sample, px_per_mv=px_per_mv,
        clip=(0.0, 0.0, float(width), float(height)), panels=tuple(panels), grid=grid,
        grid_line_px=style.grid_line_width_pt * POINT_PX, snap=False, texts=tuple(texts), strokes=tuple(strokes),
    )
