"""The reference renderer: ecg_plot 0.2.8, the library the paper rendered CODE-15% with.

``ecg_plot.plot(x, sample_rate=400, title=...)`` followed by ``save_as_png`` (which
is ``plt.savefig(dpi=100, bbox_inches="tight")``) draws the paper's page: two
columns of six leads, red mm grid, blue trace, numeric axes. We call exactly
that, but save into memory instead of a file, under matplotlib's default
rcParams (a notebook theme must not change the page), close the figure, and
resize the PNG to the style's pixel size with area averaging.

It is slow (about 2 s per page on one core), which is why
:mod:`vizecg.render.fast` exists; this module is the ground truth the fast
renderer is measured against, and lets a user render genuine ecg_plot pages
(e.g. a test subset through :func:`vizecg.render.store.render_to_store`).

ecg_plot can draw only some styles: the 2x6 layout at 25 mm/s, its red grid
(default) or grey grid with black traces (``style="bw"``), lead names on or off,
any title. Gain is emulated by scaling the signal by ``gain / 10`` before
plotting (ecg_plot's page is 10 mm/mV). Anything else raises ``ValueError``.
"""
from __future__ import annotations

import io

import cv2
import numpy as np

from vizecg.render.style import (BLACK_RGB, ECG_PLOT_LINE_WIDTH_PT, ECG_PLOT_TRACE_RGB, PAPER_HEIGHT_PX,
                                 PAPER_WIDTH_PX, RenderStyle, unsupported_by_ecg_plot)

ECG_PLOT_VERSION = "0.2.8"


def _check_ecg_plot_version() -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("ecg_plot")
    except PackageNotFoundError as exc:
        raise RuntimeError(f"backend='ecg_plot' needs ecg_plot=={ECG_PLOT_VERSION} (pip install ecg_plot=={ECG_PLOT_VERSION})") from exc
    if found != ECG_PLOT_VERSION:
        raise RuntimeError(f"backend='ecg_plot' needs ecg_plot=={ECG_PLOT_VERSION}, the paper's release; found {found} "
                           "(0.3.x draws a different page)")


def _ecg_plot_png(signal_12xt: np.ndarray, *, title: str, bw: bool, lead_labels: bool) -> bytes:
    """ecg_plot.plot + save_as_png, into memory, under default rcParams; the figure is always closed."""
    import matplotlib

    if matplotlib.get_backend().lower() not in {"agg", "module://matplotlib_inline.backend_inline", "pdf", "svg"}:
        # Never open a window from a worker; Agg is what save_as_png rasterises with anyway.
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import ecg_plot

    _check_ecg_plot_version()
    buf = io.BytesIO()
    with plt.style.context("default"):
        before = set(plt.get_fignums())
        try:
            ecg_plot.plot(signal_12xt, sample_rate=400, title=title, style="bw" if bw else None,
                          show_lead_name=lead_labels)
            plt.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        finally:
            for num in set(plt.get_fignums()) - before:
                plt.close(num)
    return buf.getvalue()


def render_ecg_plot(signal: np.ndarray, style: RenderStyle) -> np.ndarray:
    """Render one checked record ``(4096, 12)`` mV with ecg_plot 0.2.8: uint8 ``(style.height, style.width, 3)``."""
    problems = unsupported_by_ecg_plot(style)
    if problems:
        raise ValueError("ecg_plot 0.2.8 cannot draw this style: " + "; ".join(problems)
                         + ". Use backend='fast' for it.")
    scaled = np.asarray(signal, np.float64).T * (style.gain_mm_mv / 10.0)
    png = _ecg_plot_png(scaled, title=style.header, bw=style.grid_colour == "grey", lead_labels=style.lead_labels)
    bgr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if rgb.shape[:2] != (PAPER_HEIGHT_PX, PAPER_WIDTH_PX):
        # Text metrics of another matplotlib/FreeType could change the tight box by a pixel.
        rgb = cv2.resize(rgb, (PAPER_WIDTH_PX, PAPER_HEIGHT_PX), interpolation=cv2.INTER_AREA)
    if rgb.shape[:2] != (style.height, style.width):
        rgb = cv2.resize(rgb, (style.width, style.height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)
