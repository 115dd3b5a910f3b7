"""Render one record to a page with either backend: the single entry point the package draws through."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from vizecg.contract import ContractError, N_LEADS, N_SAMPLES, check_signals
from vizecg.render.style import RenderStyle

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
