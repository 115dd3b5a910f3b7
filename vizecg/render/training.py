"""Per-sample image rendering for training and evaluation (used inside DataLoader workers).

:class:`TrainingImageRenderer` turns one record into one image, deterministically
for ``(seed, index, epoch)``: the same record gets a new look every epoch (style
and artifacts), yet any run, any worker count and any resume sees the same image.
It holds only plain values, so it pickles into worker processes; the static page
layers it draws from are cached per process by :mod:`vizecg.render.fast`.

With ``randomize_style`` the look is drawn per (index, epoch) by
:func:`sample_style`: mostly the paper look (the real test images are ecg_plot
0.2.8 pages and phone photos of them), with the clinical layouts, other grids,
line widths, gains and speeds for breadth. Without it every image uses one
style (by default the paper look at the requested size) and, when a severity is
given, phone-photo artifacts at that severity: the evaluation path.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from vizecg.data.preprocess import SHORT_EXAM_SAMPLES, as_short_exam
from vizecg.render.artifacts import ArtifactConfig, apply_artifacts, photograph_sheet
from vizecg.render.draw import render_ecg
from vizecg.render.style import (BLACK_RGB, ECG_PLOT_HEADER, ECG_PLOT_TRACE_RGB, RenderStyle)

ARTIFACT_MIXES: tuple[str, ...] = ("random", "photo", "scan", "uniform")
PAGE_PREPARATIONS: tuple[str, ...] = ("none", "predict")
CLEAN_STYLES: tuple[str, ...] = ("fixed", "random")

# Sampling weights of randomized styles. The paper look dominates on purpose.
_LAYOUT_WEIGHTS = {"2x6": 0.6, "3x4": 0.2, "6x2": 0.1, "12x1": 0.1}
_PAPER_GRIDS = {"red": 0.7, "grey": 0.1, "pink": 0.06, "blue": 0.05, "green": 0.04, "none": 0.05}
_CLINICAL_GRIDS = {"pink": 0.3, "red": 0.3, "grey": 0.15, "blue": 0.1, "green": 0.1, "none": 0.05}
_TRACE_COLOURS = (BLACK_RGB, (20, 20, 90), (60, 60, 60), ECG_PLOT_TRACE_RGB)
#: Share of randomised pages drawn at 50 mm/s. Without them a network reads heart rate in pixels and
#: fails SB and ST on 50 mm/s pages; they cost 1dAVb nothing (README, "The CPU recipe").
DEFAULT_SHARE_50MM_S = 0.1


def _pick(rng: np.random.Generator, weights: Mapping[Any, float]) -> Any:
    keys = list(weights)
    p = np.asarray([weights[k] for k in keys], np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def sample_style(rng: np.random.Generator, height: int, width: int, *,
                 share_50mm_s: float = DEFAULT_SHARE_50MM_S) -> RenderStyle:
    """A random page look at ``height`` x ``width``: 60% the paper's 2x6 (70% of those in its red grid).

    ``share_50mm_s``: the share of pages at 50 mm/s instead of 25. The draw that decides it is made
    whatever the share, so two renderers that differ only in it draw every other attribute alike.
    """
    layout = _pick(rng, _LAYOUT_WEIGHTS)
    speed = 50.0 if rng.random() >= 1.0 - share_50mm_s else 25.0
    gain = _pick(rng, {10.0: 0.8, 5.0: 0.1, 20.0: 0.1})
    lead_labels = bool(rng.random() < 0.9)
    if layout == "2x6":
        grid = _pick(rng, _PAPER_GRIDS)
        if grid == "red" and rng.random() < 0.75:
            trace = ECG_PLOT_TRACE_RGB
        elif grid == "grey":
            trace = BLACK_RGB
        else:
            trace = _TRACE_COLOURS[int(rng.integers(len(_TRACE_COLOURS)))]
        width_pt = _pick(rng, {0.5: 0.6, 0.35: 0.1, 0.8: 0.2, 1.2: 0.1})
        header = _pick(rng, {ECG_PLOT_HEADER: 0.5, "": 0.3, "12-lead ECG": 0.2})
        return RenderStyle(layout=layout, paper_speed_mm_s=speed, gain_mm_mv=gain, grid_colour=grid,
                           trace_colour=trace, line_width_pt=width_pt, height=height, width=width,
                           lead_labels=lead_labels, header=header, axis_ticks=bool(rng.random() < 0.85))
    grid = _pick(rng, _CLINICAL_GRIDS)
    trace = BLACK_RGB if rng.random() < 0.7 else _TRACE_COLOURS[int(rng.integers(len(_TRACE_COLOURS)))]
    width_pt = _pick(rng, {0.8: 0.3, 1.0: 0.3, 1.4: 0.25, 2.0: 0.15})  # printers: 0.3-0.7 mm lines
    header = f"{speed:g}mm/s {gain:g}mm/mV" if rng.random() < 0.6 else ""
    return RenderStyle(layout=layout, paper_speed_mm_s=speed, gain_mm_mv=gain, grid_colour=grid, trace_colour=trace,
                       line_width_pt=width_pt, grid_line_width_pt=_pick(rng, {0.5: 0.6, 0.8: 0.4}), height=height,
                       width=width, lead_labels=lead_labels, header=header,
                       calibration_pulse=bool(rng.random() < 0.8))


def _artifact_config(mix: str, rng: np.random.Generator, severity: float) -> ArtifactConfig:
    if mix == "random":
        return ArtifactConfig.random(rng, severity)
    if mix == "photo":
        return ArtifactConfig.photo(severity)
    if mix == "scan":
        return ArtifactConfig.scan(severity)
    return ArtifactConfig.uniform(severity)


class TrainingImageRenderer:
    """Callable ``(signal (4096, 12) mV, index, epoch) -> uint8 (height, width, 3)``, deterministic per
    ``(seed, index, epoch)`` and picklable.

    ``artifact_severity``: a float (that severity for every image) or a
    ``(low, high)`` range sampled per image. ``style``: the fixed look (a
    :class:`RenderStyle`, its dict or a preset name; its size is replaced by
    ``height`` x ``width``); ignored with ``randomize_style``. ``artifact_mix``:
    how the severity spreads over the artifacts, "random" (each kept with
    probability 3/4 at a random fraction; the default with randomized styles)
    or the fixed mixes "photo" (default otherwise), "scan", "uniform".
    ``backend="ecg_plot"`` renders with ecg_plot 0.2.8 (slow; fixed styles it can draw).

    ``curriculum=(start_epoch, full_epoch)`` ramps the broad look in: before
    ``start_epoch`` every page is the clean fixed style; from there the share of
    pages drawn in a randomised style with artifacts, and the upper end of their
    severity range, grow linearly to the full ``randomize_style``/``artifact_severity``
    setting at ``full_epoch``. Why: a network first has to find the traces on a
    clean page; artifacts at full strength from the first step hide the very
    features it has not yet learnt to look for, while validation and the paper's
    test pages are clean. ``None`` applies the full setting from epoch 0.
    ``clean_style``: the look of those clean pages, ``"fixed"`` (the fixed style) or
    ``"random"`` (a randomised style, so every layout, grid and ink, still without artifacts).
    Why "random": a release run whose clean phase drew 57,344 paper-look pages read the 3x4
    and 12x1 layouts at 0.73 and 0.69 macro AUROC against the shipped model's 0.91 and 0.89
    (``reports/metrics/release_candidate.json``); clean pages are the cheap ones (no sheet or
    skew to find), so they should cover every layout.

    ``page_preparation="predict"`` draws the page ``render_scale`` times larger, applies the
    artifacts there, and reads it back with :func:`vizecg.page_reader.prepare_page` (paper
    and grid found, perspective and skew corrected, paper and ink normalised, resized to
    ``height`` x ``width``), exactly as ``python -m vizecg.predict`` reads a user's file.
    Why: ``prepare_page`` crops to the grid and renormalises, so a model trained on direct
    renders meets other pixels at deployment (mean absolute difference 0.09 on a clean page
    at 128 x 357); and a photo's desk, tilt and perspective only exist on the larger page
    before preparation removes most of them, as in a real photo.
    ``"none"`` returns the direct render (the study's Table 1 runs).

    ``share_50mm_s``: the share of randomised-style pages drawn at 50 mm/s (the others at 25).

    ``paper_share``: the share of pages, clean or with artifacts, drawn in the fixed style (the paper
    look) where they would otherwise take a randomised one; the decision has a stream of its own,
    so a share of 0 gives the same pages as before the option existed. Why: on every style at once
    the networks read the PR interval (1dAVb) about four times slower than on the paper look alone,
    and the paper look alone forgets the other layouts; a share keeps both in every batch.

    ``sheet_photo_share``: the fraction of pages with artifacts that are instead printed on A4
    and photographed lying on a desk (:func:`vizecg.render.artifacts.photograph_sheet` at the
    page's severity), then read back by ``prepare_page`` (needs ``page_preparation="predict"``).
    Why: a phone photo of a printout is what a clinic sends, and it differs from artifacts
    applied to the page itself: the sheet fills only part of the frame, so ``prepare_page``
    cuts it out of the desk and straightens it, and what reaches the model is smaller, softer
    and differently lit. The decision is drawn from a stream of its own, so a share of 0 gives
    the same pages as before the option existed.
    """

    def __init__(self, height: int, width: int, *, randomize_style: bool = False,
                 artifact_severity: tuple[float, float] | float = 0.0, seed: int = 0,
                 style: RenderStyle | Mapping[str, Any] | str | None = None, backend: str = "fast",
                 artifact_mix: str | None = None, curriculum: tuple[int, int] | None = None,
                 page_preparation: str = "none", render_scale: float = 1.0,
                 sheet_photo_share: float = 0.0, clean_style: str = "fixed",
                 share_50mm_s: float = DEFAULT_SHARE_50MM_S, paper_share: float = 0.0) -> None:
        if isinstance(artifact_severity, (tuple, list)):
            if len(artifact_severity) != 2:
                raise ValueError(f"artifact_severity range must be (low, high), got {artifact_severity!r}")
            low, high = (float(v) for v in artifact_severity)
        else:
            low = high = float(artifact_severity)
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"artifact_severity must lie in [0, 1] with low <= high, got {artifact_severity!r}")
        mix = artifact_mix or ("random" if randomize_style else "photo")
        if mix not in ARTIFACT_MIXES:
            raise ValueError(f"artifact_mix must be one of {ARTIFACT_MIXES}, got {mix!r}")
        if backend not in ("fast", "ecg_plot"):
            raise ValueError(f"backend must be 'fast' or 'ecg_plot', got {backend!r}")
        if clean_style not in CLEAN_STYLES:
            raise ValueError(f"clean_style must be one of {CLEAN_STYLES}, got {clean_style!r}")
        if backend == "ecg_plot" and (randomize_style or clean_style == "random"):
            raise ValueError("randomize_style and clean_style='random' need backend='fast' (ecg_plot draws only its "
                             "own page)")
        if page_preparation not in PAGE_PREPARATIONS:
            raise ValueError(f"page_preparation must be one of {PAGE_PREPARATIONS}, got {page_preparation!r}")
        if not 1.0 <= float(render_scale) <= 8.0:
            raise ValueError(f"render_scale must lie in [1, 8], got {render_scale!r}")
        if render_scale != 1.0 and page_preparation == "none":
            raise ValueError("render_scale needs page_preparation='predict' (nothing else brings the page back "
                             "to the model's size)")
        if not 0.0 <= float(sheet_photo_share) <= 1.0:
            raise ValueError(f"sheet_photo_share must lie in [0, 1], got {sheet_photo_share!r}")
        if sheet_photo_share > 0.0 and page_preparation != "predict":
            raise ValueError("sheet_photo_share needs page_preparation='predict' (only prepare_page cuts the "
                             "sheet out of the photo)")
        if not 0.0 <= float(share_50mm_s) <= 1.0:
            raise ValueError(f"share_50mm_s must lie in [0, 1], got {share_50mm_s!r}")
        self.share_50mm_s = float(share_50mm_s)
        if not 0.0 <= float(paper_share) <= 1.0:
            raise ValueError(f"paper_share must lie in [0, 1], got {paper_share!r}")
        if paper_share > 0.0 and not (randomize_style or clean_style == "random"):
            raise ValueError("paper_share needs randomize_style or clean_style='random' (otherwise every page "
                             "is already in the paper look)")
        self.paper_share = float(paper_share)
        self.sheet_photo_share = float(sheet_photo_share)
        self.page_preparation = page_preparation
        self.render_scale = float(render_scale)
        if curriculum is not None:
            start, full = (int(v) for v in curriculum)
            if not 0 <= start <= full:
                raise ValueError(f"curriculum must be (start_epoch, full_epoch) with 0 <= start <= full, "
                                 f"got {curriculum!r}")
            curriculum = (start, full)
        self.curriculum = curriculum
        base = RenderStyle.preset(style) if isinstance(style, str) else RenderStyle.from_dict(style)
        self.height, self.width = int(height), int(width)
        self.style = base.replace(height=self.height, width=self.width)
        # the size pages are drawn at (larger than the model's input when they are prepared)
        self.page_height = round(self.height * self.render_scale)
        self.page_width = round(self.width * self.render_scale)
        self._page_style = self.style.replace(height=self.page_height, width=self.page_width)
        self.randomize_style = bool(randomize_style)
        self.clean_style = clean_style
        self.severity_range = (low, high)
        self.seed = int(seed)
        self.backend = backend
        self.artifact_mix = mix

    def config(self) -> dict[str, Any]:
        """Plain-dict description (for checkpoints, HDF5 attributes and reports)."""
        return {"height": self.height, "width": self.width, "randomize_style": self.randomize_style,
                "artifact_severity": list(self.severity_range), "seed": self.seed,
                "style": self.style.to_dict(), "backend": self.backend, "artifact_mix": self.artifact_mix,
                "curriculum": None if self.curriculum is None else list(self.curriculum),
                "page_preparation": self.page_preparation, "render_scale": self.render_scale,
                "sheet_photo_share": self.sheet_photo_share, "clean_style": self.clean_style,
                "share_50mm_s": self.share_50mm_s, "paper_share": self.paper_share}

    def __repr__(self) -> str:
        return f"TrainingImageRenderer({self.config()})"

    def _streams(self, index: int, epoch: int) -> list[np.random.Generator]:
        if index < 0 or epoch < 0:
            raise ValueError(f"index and epoch must be >= 0, got index={index}, epoch={epoch}")
        # style, severity, artifacts, curriculum, sheet photo, paper look: children of one seed
        # sequence, so adding a stream at the end leaves the others' draws unchanged
        return np.random.default_rng([self.seed, int(index), int(epoch)]).spawn(6)

    def broad_fraction(self, epoch: int) -> float:
        """How far the curriculum has ramped at ``epoch``: 0 = all clean pages, 1 = the full setting."""
        if self.curriculum is None:
            return 1.0
        start, full = self.curriculum
        if epoch < start:
            return 0.0
        return min(1.0, (epoch - start + 1) / (full - start + 1))

    def _sampled_style(self, rng: np.random.Generator, paper_look: bool) -> RenderStyle:
        if paper_look:
            return self._page_style
        return sample_style(rng, self.page_height, self.page_width, share_50mm_s=self.share_50mm_s)

    def _look(self, index: int, epoch: int) -> tuple[RenderStyle, float, np.random.Generator, np.random.Generator]:
        """(style, severity, artifact-config rng, artifact rng) of image (index, epoch)."""
        style_rng, severity_rng, artifact_rng, curriculum_rng, _, paper_rng = self._streams(index, epoch)
        paper_look = self.paper_share > 0.0 and paper_rng.random() < self.paper_share
        ramp = self.broad_fraction(epoch)
        if ramp < 1.0 and curriculum_rng.random() >= ramp:  # a clean page while the curriculum ramps
            clean = (self._sampled_style(style_rng, paper_look) if self.clean_style == "random"
                     else self._page_style)
            return clean, 0.0, severity_rng, artifact_rng
        style = self._sampled_style(style_rng, paper_look) if self.randomize_style else self._page_style
        low, high = self.severity_range
        high = low + ramp * (high - low)
        severity = low if high == low else float(severity_rng.uniform(low, high))
        return style, severity, severity_rng, artifact_rng

    def photographs_sheet(self, index: int, epoch: int = 0) -> bool:
        """Whether image (index, epoch), if it has artifacts, is a photographed print."""
        return self.sheet_photo_share > 0.0 and self._streams(index, epoch)[4].random() < self.sheet_photo_share

    def style_for(self, index: int, epoch: int = 0) -> RenderStyle:
        """The look of image (index, epoch)."""
        return self._look(index, epoch)[0]

    def __call__(self, signal: np.ndarray, index: int, epoch: int = 0) -> np.ndarray:
        import cv2

        # One OpenCV thread per worker: DataLoader workers already run in parallel with the
        # training process, and nested thread pools on a 2-core machine only contend.
        cv2.setNumThreads(1)
        style, severity, severity_rng, artifact_rng = self._look(index, epoch)
        page = render_ecg(signal, backend=self.backend, style=style)
        if severity > 0.0 and self.photographs_sheet(index, epoch):
            page = photograph_sheet(page, artifact_rng, severity)
        elif severity > 0.0:  # artifacts applied to the page itself
            page = apply_artifacts(page, _artifact_config(self.artifact_mix, severity_rng, severity), artifact_rng)
        if self.page_preparation == "none":
            return page
        return prepared_page(page, self.height, self.width, clean_render=severity == 0.0)


VALIDATION_ROUTES: tuple[str, ...] = ("png", "photo", "sheet_photo")
"""The three ways a page reaches predict, in the order :class:`RouteMixRenderer` cycles through them
(the same routes, by the same names, as the page folders of :data:`vizecg.study.rendering.PAGE_VARIANTS`)."""


class RouteMixRenderer:
    """Validation pages that stand for the files predict is given: record ``index`` is drawn as
    route ``VALIDATION_ROUTES[index % 3]``, the clean paper page, a phone photo of it (the
    ``"photo"`` artifact mix at ``severity``) or the page printed on A4 and photographed on a desk
    (:func:`vizecg.render.artifacts.photograph_sheet` at ``severity``), each read back by
    ``prepare_page``. Same call and determinism as :class:`TrainingImageRenderer`.

    Why: a release run that is selected on clean pages alone can keep a checkpoint from before
    it has learnt the photographed look. Measured on the release run with photographed prints in
    training: the checkpoint that clean validation chose (epoch 4 of 10, clean 0.928) scored 0.893
    mean macro AUROC over the three routes of the 580 validation records through predict, the last
    epoch (clean 0.927) 0.916; RBBB on the photographed routes 0.76-0.78 against 0.92-0.93.
    """

    def __init__(self, height: int, width: int, *, severity: float = 0.5, seed: int = 0,
                 render_scale: float = 1.0) -> None:
        if not 0.0 < float(severity) <= 1.0:
            raise ValueError(f"severity must lie in (0, 1], got {severity!r}")
        common = {"seed": seed, "page_preparation": "predict", "render_scale": render_scale}
        self.severity = float(severity)
        self.renderers = {
            "png": TrainingImageRenderer(height, width, **common),
            "photo": TrainingImageRenderer(height, width, artifact_severity=self.severity, artifact_mix="photo",
                                           **common),
            "sheet_photo": TrainingImageRenderer(height, width, artifact_severity=self.severity, sheet_photo_share=1.0,
                                                 **common)}

    @staticmethod
    def route(index: int) -> str:
        """The route record ``index`` is drawn as."""
        return VALIDATION_ROUTES[int(index) % len(VALIDATION_ROUTES)]

    def config(self) -> dict[str, Any]:
        """Plain-dict description (for checkpoints and reports)."""
        clean = self.renderers["png"].config()
        return {"look": "routes", "routes": list(VALIDATION_ROUTES), "severity": self.severity,
                **{k: clean[k] for k in ("height", "width", "seed", "style", "page_preparation", "render_scale")}}

    def __repr__(self) -> str:
        return f"RouteMixRenderer({self.config()})"

    def __call__(self, signal: np.ndarray, index: int, epoch: int = 0) -> np.ndarray:
        return self.renderers[self.route(index)](signal, index, epoch)


def prepared_page(page: np.ndarray, height: int, width: int, *, clean_render: bool = False) -> np.ndarray:
    """``page`` read back as predict reads a file, as uint8 ``(height, width, 3)``.

    A page whose paper or grid the reader cannot find still yields an image (the
    photometric steps and the resize only), as predict would score it.

    ``clean_render``: ``page`` is a render without artifacts, so it fills its frame and stands
    upright; the sheet finder and the skew estimate are skipped and their answers for such a
    page (no sheet, no skew) given instead. Why: those two steps are most of what a clean page
    costs at twice the 128 x 357 input, and on clean renders they find nothing (no sheet and a
    skew of exactly 0 on 300 of 300 pages of every layout and style), so the result is the same
    pixels at about a quarter of the cost (``benchmarks/bench_deployed_pages.py``: 167 -> 38 ms);
    ``tests/test_image_learning.py`` holds a sample of pages of every layout to that equality, so
    a change of the finders that breaks it fails there.
    """
    from vizecg.page_reader import PageReadError, limit_resolution, prepare_page

    known = {"sheet": (limit_resolution(page), None), "skew_deg": 0.0} if clean_render else {}
    try:
        prepared = prepare_page(page, height, width, **known)
    except (PageReadError, ValueError):
        prepared = prepare_page(page, height, width, correct_geometry=False)
    return np.clip(np.rint(prepared.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)


class ShortExamRenderer:
    """Draws a record as the 7 s exam CODE-15% would store of it (its centred ``samples`` kept, the
    rest zero: :func:`vizecg.data.preprocess.as_short_exam`) with ``renderer``; same call."""

    def __init__(self, renderer, samples: int = SHORT_EXAM_SAMPLES) -> None:
        self.renderer, self.samples = renderer, int(samples)

    def __call__(self, signal: np.ndarray, index: int, epoch: int = 0) -> np.ndarray:
        return self.renderer(as_short_exam(signal, self.samples), index, epoch)
