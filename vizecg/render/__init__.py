"""Signals to images of printed 12-lead ECGs.

Entry point: :func:`render_ecg` (in :mod:`vizecg.render.draw`) renders one record in the contract of
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

from vizecg.render.artifacts import ARTIFACTS, ArtifactConfig, apply_artifacts
from vizecg.render.draw import BACKENDS, check_record, render_ecg
from vizecg.render.style import GRID_COLOURS, LAYOUTS, STYLE_PRESETS, RenderStyle
from vizecg.render.training import TrainingImageRenderer, sample_style

__all__ = ["ARTIFACTS", "BACKENDS", "GRID_COLOURS", "LAYOUTS", "STYLE_PRESETS", "ArtifactConfig", "RenderStyle",
           "TrainingImageRenderer", "apply_artifacts", "check_record", "render_ecg", "sample_style"]
