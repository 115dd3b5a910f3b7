"""Images that are not ECG pages, for holding the ECG-page check (:func:`vizecg.page_reader.looks_like_ecg`)
against what it must refuse: natural photographs and documents from scikit-image's sample data, and
drawn pages that share one feature with an ECG each (graph paper without traces, ruled tables, text
lines, a line chart, a handwritten page, blank or tinted paper, noise). The tests and
``benchmarks/ecg_check_acceptance.py`` draw from the same set, so the figures the benchmark reports are of
the images the tests hold the check to.
"""
from __future__ import annotations

import cv2
import numpy as np

NATURAL_IMAGES = ("astronaut", "coffee", "brick", "camera", "page", "text", "coins", "chelsea", "rocket",
                  "immunohistochemistry", "grass", "gravel", "checkerboard", "horse", "moon")
"""scikit-image sample images (photographs, a scanned book page, text, textures)."""


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3].astype(np.uint8))


def natural_images(names=NATURAL_IMAGES) -> dict[str, np.ndarray]:
    """scikit-image's sample images by name, as uint8 RGB."""
    from skimage import data

    return {name: _rgb(getattr(data, name)()) for name in names}


def graph_paper(height: int = 760, width: int = 2000) -> np.ndarray:
    """ECG paper without a trace: 1 mm and 5 mm lines at 8 px per mm."""
    graph = np.full((height, width, 3), 255, np.uint8)
    for x in range(0, width, 8):
        cv2.line(graph, (x, 0), (x, height - 1), (240, 80, 80) if x % 40 == 0 else (255, 190, 190), 1)
    for y in range(0, height, 8):
        cv2.line(graph, (0, y), (width - 1, y), (240, 80, 80) if y % 40 == 0 else (255, 190, 190), 1)
    return graph


def text_page(rng: np.random.Generator) -> np.ndarray:
    """A printed page of text lines."""
    page = np.full((1100, 850, 3), 255, np.uint8)
    for y in range(60, 1050, 24):
        words = "".join(rng.choice(list("abcdefghij klmnopqrstuvwxyz"), 60))
        cv2.putText(page, words, (40, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 1, cv2.LINE_AA)
    return page


def ruled_table(rng: np.random.Generator) -> np.ndarray:
    """A spreadsheet print: ruled rows and columns of digits (a lattice with marks in it)."""
    table = np.full((900, 1400, 3), 255, np.uint8)
    for y in range(40, 880, 40):
        cv2.line(table, (20, y), (1380, y), (90, 90, 90), 1)
        for x in range(30, 1360, 170):
            cv2.putText(table, f"{rng.integers(10000):>5}", (x, y + 28), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (20, 20, 20), 1)
    for x in range(20, 1400, 170):
        cv2.line(table, (x, 40), (x, 860), (90, 90, 90), 1)
    return table


def line_chart(rng: np.random.Generator) -> np.ndarray:
    """A printed line chart: axes, a light grid, tick labels and one wandering curve (thin curved ink on a
    grid, as an ECG has, but one line and no beats)."""
    chart = np.full((900, 1400, 3), 255, np.uint8)
    left, right, top, bottom = 110, 1360, 50, 820
    for x in range(left, right + 1, 125):
        cv2.line(chart, (x, top), (x, bottom), (215, 215, 215), 1)
        cv2.putText(chart, f"{(x - left) // 125 * 10}", (x - 12, bottom + 35), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (40, 40, 40), 1, cv2.LINE_AA)
    for y in range(top, bottom + 1, 110):
        cv2.line(chart, (left, y), (right, y), (215, 215, 215), 1)
        cv2.putText(chart, f"{(bottom - y) // 11}", (30, y + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (40, 40, 40), 1,
                    cv2.LINE_AA)
    cv2.line(chart, (left, bottom), (right, bottom), (30, 30, 30), 2)
    cv2.line(chart, (left, top), (left, bottom), (30, 30, 30), 2)
    walk = np.cumsum(rng.normal(size=right - left))
    walk = (walk - walk.min()) / max(np.ptp(walk), 1e-6)
    points = np.stack([np.arange(left, right), bottom - 40 - walk * (bottom - top - 80)], axis=1)
    cv2.polylines(chart, [points.astype(np.int32)], False, (150, 60, 20), 2, cv2.LINE_AA)
    return chart


def handwritten_note(rng: np.random.Generator) -> np.ndarray:
    """A handwritten page: lines of cursive-like strokes in blue ink (thin curved ink over the page, no grid)."""
    page = np.full((1100, 850, 3), 255, np.uint8)
    for baseline in range(90, 1040, 55):
        x = 50 + int(rng.integers(0, 30))
        while x < 760:
            length = int(rng.integers(40, 160))
            t = np.arange(length, dtype=np.float64)
            wiggle = sum(rng.uniform(3, 12) * np.sin(t / rng.uniform(2.5, 9) + rng.uniform(0, 6.3)) for _ in range(3))
            points = np.stack([x + t, baseline - 8 + wiggle], axis=1)
            cv2.polylines(page, [points.astype(np.int32)], False, (140, 50, 20), 2, cv2.LINE_AA)
            x += length + int(rng.integers(15, 35))
    return page


def drawn_non_ecgs(seed: int = 1) -> dict[str, np.ndarray]:
    """Drawn pages that are not ECGs, by name (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    smooth = cv2.GaussianBlur(rng.normal(size=(600, 1400)).astype(np.float32), (0, 0), 8)
    smooth = ((smooth - smooth.min()) / np.ptp(smooth) * 255).astype(np.uint8)
    return {
        "blank": np.full((600, 1400, 3), 255, np.uint8),
        "pink_paper": np.full((600, 1400, 3), (250, 225, 225), np.uint8),
        "uniform_noise": rng.integers(0, 256, (600, 1400, 3), dtype=np.uint8),
        "smooth_noise": np.repeat(smooth[:, :, None], 3, axis=2),
        "text_page": text_page(rng),
        "graph_paper_without_traces": graph_paper(),
        "ruled_table": ruled_table(rng),
        "line_chart": line_chart(rng),
        "handwritten_note": handwritten_note(rng),
    }
