"""How a rendered ECG page looks: one frozen, serialisable :class:`RenderStyle`.

A style fixes everything a printed page varies in: the lead layout, paper speed
and gain, grid and trace colours, line width, output pixel size, lead labels and
the header line. Every image is a deterministic function of (record, seed,
style), so the style travels as a plain dict (:meth:`RenderStyle.to_dict`) into
``params.yaml``, HDF5 attributes and checkpoints, and comes back through
:meth:`RenderStyle.from_dict`.

Layouts (columns x rows for ``2x6``, clinical rows x columns for the others,
because that is how each is commonly named):

``2x6``
    The paper's look, ``ecg_plot`` 0.2.8: two columns of six leads (I..aVF left,
    V1..V6 right), each lead over the whole record, numeric axis ticks, red mm
    grid, blue trace. The page is ecg_plot's tight PNG (2128 x 763 pixels for a
    4096-sample record at 400 Hz) resized to the style's pixel size.
``3x4``
    The clinical print: three rows by four columns of 2.56 s segments
    (I/II/III, aVR/aVL/aVF, V1-V3, V4-V6 at successive times) plus a full-length
    lead II rhythm strip.
``6x2``
    Six rows by two columns of 5.12 s segments (limb leads, then chest leads).
``12x1``
    Twelve full-length rows.

At 50 mm/s a panel shows half as many seconds (the paper does not get wider,
as on a real printer).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

LAYOUTS: tuple[str, ...] = ("2x6", "3x4", "6x2", "12x1")
PAPER_SPEEDS_MM_S: tuple[float, ...] = (25.0, 50.0)
GAINS_MM_MV: tuple[float, ...] = (5.0, 10.0, 20.0)

# (major, minor) grid line colours, RGB 0-255. "red" and "grey" are exactly
# ecg_plot 0.2.8's colours (its default and its style="bw"); the others follow
# common ECG papers (see the real prints beside the project).
GRID_COLOURS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]] | None] = {
    "red": ((255, 0, 0), (255, 178, 178)),
    "pink": ((238, 120, 150), (250, 200, 212)),
    "green": ((40, 160, 90), (175, 225, 195)),
    "blue": ((60, 110, 210), (185, 205, 240)),
    "grey": ((102, 102, 102), (191, 191, 191)),
    "none": None,
}

# ecg_plot 0.2.8 traces: (0, 0, 0.7) in its default style, black in "bw".
ECG_PLOT_TRACE_RGB: tuple[int, int, int] = (0, 0, 178)
BLACK_RGB: tuple[int, int, int] = (0, 0, 0)
ECG_PLOT_LINE_WIDTH_PT: float = 0.5
ECG_PLOT_HEADER: str = "ECG 12"
# ecg_plot's tight PNG of a (12, 4096) record at 400 Hz, dpi 100.
PAPER_WIDTH_PX: int = 2128
PAPER_HEIGHT_PX: int = 763


def _rgb(value: Any, field: str) -> tuple[int, int, int]:
    try:
        rgb = tuple(int(c) for c in value)
    except TypeError as exc:
        raise ValueError(f"RenderStyle.{field} must be an (r, g, b) triple of 0-255 ints, got {value!r}") from exc
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise ValueError(f"RenderStyle.{field} must be an (r, g, b) triple of 0-255 ints, got {value!r}")
    return rgb  # type: ignore[return-value]


@dataclass(frozen=True)
class RenderStyle:
    """One page look. Immutable and hashable (renderers cache static page layers by it).

    Widths are in typographic points at ecg_plot's 100 dpi page (0.5 pt = 0.69 px
    on the 2128-pixel-wide page), so a style keeps its look when ``width``/``height``
    change: the page is drawn at its natural scale and resized, like a resized
    ecg_plot PNG.
    """

    layout: str = "2x6"
    paper_speed_mm_s: float = 25.0
    gain_mm_mv: float = 10.0
    grid_colour: str = "red"
    trace_colour: tuple[int, int, int] = ECG_PLOT_TRACE_RGB
    line_width_pt: float = ECG_PLOT_LINE_WIDTH_PT
    grid_line_width_pt: float = 0.5
    height: int = PAPER_HEIGHT_PX
    width: int = PAPER_WIDTH_PX
    lead_labels: bool = True
    header: str = ECG_PLOT_HEADER
    axis_ticks: bool | None = None
    calibration_pulse: bool | None = None

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"RenderStyle.layout must be one of {LAYOUTS}, got {self.layout!r}")
        if float(self.paper_speed_mm_s) not in PAPER_SPEEDS_MM_S:
            raise ValueError(f"RenderStyle.paper_speed_mm_s must be one of {PAPER_SPEEDS_MM_S}, got {self.paper_speed_mm_s!r}")
        if float(self.gain_mm_mv) not in GAINS_MM_MV:
            raise ValueError(f"RenderStyle.gain_mm_mv must be one of {GAINS_MM_MV}, got {self.gain_mm_mv!r}")
        if self.grid_colour not in GRID_COLOURS:
            raise ValueError(f"RenderStyle.grid_colour must be one of {tuple(GRID_COLOURS)}, got {self.grid_colour!r}")
        object.__setattr__(self, "trace_colour", _rgb(self.trace_colour, "trace_colour"))
        object.__setattr__(self, "paper_speed_mm_s", float(self.paper_speed_mm_s))
        object.__setattr__(self, "gain_mm_mv", float(self.gain_mm_mv))
        for field in ("line_width_pt", "grid_line_width_pt"):
            value = float(getattr(self, field))
            if not 0.05 <= value <= 5.0:
                raise ValueError(f"RenderStyle.{field} must be within [0.05, 5] points, got {value}")
            object.__setattr__(self, field, value)
        for field in ("height", "width"):
            value = getattr(self, field)
            if int(value) != value or not 16 <= int(value) <= 8192:
                raise ValueError(f"RenderStyle.{field} must be an integer number of pixels in [16, 8192], got {value!r}")
            object.__setattr__(self, field, int(value))
        if not isinstance(self.header, str):
            raise ValueError(f"RenderStyle.header must be a string, got {type(self.header).__name__}")
        object.__setattr__(self, "lead_labels", bool(self.lead_labels))
        for field in ("axis_ticks", "calibration_pulse"):
            value = getattr(self, field)
            if value is not None:
                object.__setattr__(self, field, bool(value))
        if self.axis_ticks and self.layout != "2x6":
            raise ValueError("RenderStyle.axis_ticks (ecg_plot's numeric axes) exists only in the 2x6 layout")
        if self.calibration_pulse and self.layout == "2x6":
            raise ValueError("RenderStyle.calibration_pulse does not exist in the 2x6 (ecg_plot) layout: "
                             "its traces start at the page edge")

    @property
    def show_axis_ticks(self) -> bool:
        """ecg_plot's numeric tick labels: on by default in 2x6, absent elsewhere."""
        return self.layout == "2x6" if self.axis_ticks is None else self.axis_ticks

    @property
    def show_calibration_pulse(self) -> bool:
        """1 mV x 0.2 s pulse at each row start: on by default in the clinical layouts."""
        return self.layout != "2x6" if self.calibration_pulse is None else self.calibration_pulse

    # -- constructors -----------------------------------------------------
    @classmethod
    def paper(cls, height: int = PAPER_HEIGHT_PX, width: int = PAPER_WIDTH_PX, **changes: Any) -> "RenderStyle":
        """The paper's look (ecg_plot 0.2.8 defaults) at ``height`` x ``width`` pixels."""
        return cls(height=height, width=width).replace(**changes)

    @classmethod
    def preset(cls, name: str, height: int = PAPER_HEIGHT_PX, width: int = PAPER_WIDTH_PX) -> "RenderStyle":
        """A named look from :data:`STYLE_PRESETS` (the names ``params.yaml`` uses)."""
        if name not in STYLE_PRESETS:
            raise ValueError(f"unknown render style preset {name!r}; choose one of {sorted(STYLE_PRESETS)}")
        return cls.from_dict({**STYLE_PRESETS[name], "height": height, "width": width})

    def replace(self, **changes: Any) -> "RenderStyle":
        """A copy with ``changes`` applied (validated like the constructor)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"RenderStyle has no field(s) {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    # -- plain-dict round trip -------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-safe dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["trace_colour"] = list(self.trace_colour)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | "RenderStyle" | None) -> "RenderStyle":
        """Inverse of :meth:`to_dict`; missing keys take the paper defaults, unknown keys are an error."""
        if data is None:
            return cls()
        if isinstance(data, RenderStyle):
            return data
        if not isinstance(data, Mapping):
            raise ValueError(f"a render style must be a mapping or RenderStyle, got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown render style key(s) {sorted(unknown)}; valid keys: {sorted(fields)}")
        return cls(**dict(data))

    @property
    def is_ecg_plot_page(self) -> bool:
        """True when ecg_plot 0.2.8 itself can draw this style (see :mod:`vizecg.render.reference`)."""
        return not unsupported_by_ecg_plot(self)


def unsupported_by_ecg_plot(style: RenderStyle) -> list[str]:
    """Reasons ecg_plot 0.2.8 cannot draw ``style`` (empty when it can)."""
    problems = []
    if style.layout != "2x6":
        problems.append(f"layout {style.layout!r} (ecg_plot draws only 2x6)")
    if style.paper_speed_mm_s != 25.0:
        problems.append(f"paper speed {style.paper_speed_mm_s:g} mm/s (ecg_plot draws 25 mm/s)")
    expected_trace = {"red": ECG_PLOT_TRACE_RGB, "grey": BLACK_RGB}.get(style.grid_colour)
    if expected_trace is None:
        problems.append(f"grid colour {style.grid_colour!r} (ecg_plot has red, or grey with style='bw')")
    elif tuple(style.trace_colour) != expected_trace:
        problems.append(f"trace colour {tuple(style.trace_colour)} (ecg_plot's {style.grid_colour} grid uses {expected_trace})")
    if abs(style.line_width_pt - ECG_PLOT_LINE_WIDTH_PT) > 1e-9 or abs(style.grid_line_width_pt - 0.5) > 1e-9:
        problems.append("line widths other than ecg_plot's 0.5 pt")
    if not style.show_axis_ticks:
        problems.append("no axis ticks (ecg_plot always draws them)")
    return problems


# Named looks. Sizes come from the caller (RenderStyle.preset); these are the rest.
STYLE_PRESETS: dict[str, dict[str, Any]] = {
    # ecg_plot 0.2.8 as the paper used it.
    "paper": {},
    # ecg_plot 0.2.8 style="bw".
    "paper_bw": {"grid_colour": "grey", "trace_colour": list(BLACK_RGB)},
    # A typical clinical 12-lead printout (cf. the 3x4 + rhythm real prints).
    "clinical_3x4": {"layout": "3x4", "grid_colour": "pink", "trace_colour": list(BLACK_RGB), "line_width_pt": 1.0,
                     "header": "25mm/s 10mm/mV"},
    "clinical_6x2": {"layout": "6x2", "grid_colour": "red", "trace_colour": list(BLACK_RGB), "line_width_pt": 1.0,
                     "header": "25mm/s 10mm/mV"},
    "rhythm_12x1": {"layout": "12x1", "grid_colour": "grey", "trace_colour": list(BLACK_RGB), "line_width_pt": 0.6,
                    "header": ""},
}
