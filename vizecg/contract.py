"""The one record contract every part of the study reads and writes.

A prepared ECG record is

* ``signal``: float32 array ``(4096, 12)`` in millivolts, sampled at 400 Hz,
  leads in the order :data:`LEADS` (``I, II, III, aVR, aVL, aVF, V1..V6``);
* ``label``: uint8 array ``(6,)`` of 0/1 in the order :data:`LABELS`
  (``1dAVb, RBBB, LBBB, SB, AF, ST``);
* ``record_id`` (str) and ``patient_id`` (str).

Batches stack these along a leading axis: signals ``(N, 4096, 12)`` and labels
``(N, 6)``. Sources convert to this contract; everything downstream may rely on it.
:func:`check_signals` and :func:`check_labels` enforce it at the boundary and
name the offending file and problem when it is broken.
"""
from __future__ import annotations

import numpy as np

LABELS: tuple[str, ...] = ("1dAVb", "RBBB", "LBBB", "SB", "AF", "ST")
LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF",
                          "V1", "V2", "V3", "V4", "V5", "V6")
SAMPLE_RATE_HZ: int = 400
N_SAMPLES: int = 4096
N_LEADS: int = len(LEADS)
N_CLASSES: int = len(LABELS)

# A real surface ECG stays well within +-10 mV; anything beyond is a units
# mistake (uV or raw ADC counts), not physiology.
MAX_ABS_MV: float = 20.0


class ContractError(ValueError):
    """Input that breaks the record contract. The message names the source and the problem."""


def check_signals(signals: np.ndarray, source: str = "<array>", *, max_abs_mv: float = MAX_ABS_MV) -> np.ndarray:
    """Validate ``(N, 4096, 12)`` or ``(4096, 12)`` float signals in mV; return them as float32.

    Raises :class:`ContractError` naming ``source`` for a wrong shape, NaN/inf
    samples or amplitudes outside +-``max_abs_mv``.
    """
    arr = np.asarray(signals)
    if arr.ndim not in (2, 3) or arr.shape[-2:] != (N_SAMPLES, N_LEADS):
        raise ContractError(
            f"{source}: signals must have shape (N, {N_SAMPLES}, {N_LEADS}) or "
            f"({N_SAMPLES}, {N_LEADS}) (samples x leads {', '.join(LEADS)}), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ContractError(f"{source}: signals must be floating point mV, got dtype {arr.dtype}")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise ContractError(f"{source}: {int((~finite).sum())} NaN/inf samples (first at index {tuple(int(i) for i in bad)})")
    peak = float(np.abs(arr).max()) if arr.size else 0.0
    if peak > max_abs_mv:
        raise ContractError(
            f"{source}: amplitude {peak:.1f} exceeds +-{max_abs_mv} mV; signals must be in millivolts")
    return arr.astype(np.float32, copy=False)


def check_labels(labels: np.ndarray, source: str = "<array>") -> np.ndarray:
    """Validate ``(N, 6)`` or ``(6,)`` 0/1 labels in :data:`LABELS` order; return them as uint8."""
    arr = np.asarray(labels)
    if arr.ndim not in (1, 2) or arr.shape[-1] != N_CLASSES:
        raise ContractError(f"{source}: labels must have shape (N, {N_CLASSES}) in order {', '.join(LABELS)}, got {arr.shape}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ContractError(f"{source}: labels must be 0/1, got values {np.unique(arr)[:10].tolist()}")
    return arr.astype(np.uint8, copy=False)
