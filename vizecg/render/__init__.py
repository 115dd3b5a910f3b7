"""Signals to images of printed 12-lead ECGs.

Entry point: :func:`render_ecg` renders one record in the contract of
:mod:`vizecg.contract` with either backend:

* ``"ecg_plot"``: ecg_plot 0.2.8, the paper's renderer (about 2 s a page);
* ``"fast"``: the same page drawn with numpy/OpenCV (milliseconds), plus styles
  ecg_plot cannot draw (:class:`RenderStyle`).

Both return the same height and width for the same style. Print, scan and
photo artifacts live in :mod:`vizecg.render.artifacts`, the per-sample training
renderer in :mod:`vizecg.render.training`, the pre-rendered HDF5 store in
:mod:`vizecg.render.store`.

Input handling: a record must be float ``(4096, 12)`` mV, finite, within
+-20 mV (:func:`vizecg.contract.check_signals`), else ``ContractError``. Flat
leads render as straight lines and clipped (saturated) leads as plateaus, as
on paper. Amplitudes inside the contract but beyond the page are cut at the
page frame, like ecg_plot's axes clip them; neighbouring rows may overlap, as
they do on ecg_plot's pages.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from vizecg.contract import ContractError, N_LEADS, N_SAMPLES, check_signals
from vizecg.render.artifacts import ARTIFACTS, ArtifactConfig, apply_artifacts
from vizecg.render.style import GRID_COLOURS, LAYOUTS, STYLE_PRESETS, RenderStyle

BACKENDS: tuple[str, ...] = ("fast", "ecg_plot")


def _as_style(style: RenderStyle | Mapping[str, Any] | str | None) -> RenderStyle:
    if isinstance(style, str):
        return RenderStyle.preset(style)
    return RenderStyle.from_dict(style)


def check_record(signal: np.ndarray, source: str = "render_ecg") -> np.ndarray:
    """One record ``(4096, 12)`` in the contract, as float32; ``ContractError`` naming ``source`` otherwise."""
    arr = np.asarray(signal)
    if arr.shape != (N_SAMPLES, N_LEADS):
        if arr.shape == (N_LEADS, N_SAMPLES):
            raise ContractError(f"{source}: got shape {arr.shape}, leads first; pass samples x leads "
                                f"({N_SAMPLES}, {N_LEADS}) (transpose it)")
        raise ContractError(f"{source}: one record must have shape ({N_SAMPLES}, {N_LEADS}) "
                            f"(samples x leads), got {arr.shape}")
    return check_signals(arr, source)


def render_ecg(signal: np.ndarray, *, backend: str = "fast",
               style: RenderStyle | Mapping[str, Any] | str | None = None, seed: int = 0) -> np.ndarray:
    """Render one record ``(4096, 12)`` float mV at 400 Hz to an RGB page, uint8 ``(H, W, 3)``.

    ``style`` is a :class:`RenderStyle`, its dict, a preset name or None (the
    paper look at ecg_plot's natural 2128 x 763). ``seed`` is accepted for the
    shared interface; a clean page has no randomness, so it does not change the
    image (artifacts and random styles come from
    :class:`~vizecg.render.training.TrainingImageRenderer`).
    """
    record = check_record(signal)
    resolved = _as_style(style)
    if backend == "fast":
        from vizecg.render.fast import render_fast

        return render_fast(record, resolved)
    if backend == "ecg_plot":
        from vizecg.render.reference import render_ecg_plot

        return render_ecg_plot(record, resolved)
    raise ValueError(f"unknown render backend {backend!r}; choose one of {BACKENDS}")


from vizecg.render.training import TrainingImageRenderer, sample_style  # noqa: E402 (needs render_ecg above)

__all__ = ["ARTIFACTS", "BACKENDS", "GRID_COLOURS", "LAYOUTS", "STYLE_PRESETS", "ArtifactConfig", "RenderStyle",
           "TrainingImageRenderer", "apply_artifacts", "check_record", "render_ecg", "sample_style"]
