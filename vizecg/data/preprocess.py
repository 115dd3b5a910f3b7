"""Preprocessing of raw 12-lead recordings into the record contract (paper section 3.1).

Every source converts its raw samples with :func:`preprocess_batch` (or
:func:`preprocess_record` for one recording), which does, per record:

1. **Find the recorded part.** CODE-15% stores 7 s and 10 s exams zero-padded
   (centred) to 4096 samples. With ``zero_padded=True`` the leading and trailing
   rows where all 12 leads are exactly zero are treated as padding, not as signal.
   A row of twelve exact zeros inside a real float recording does not happen in
   practice, so the only possible error is to shave a few genuinely-zero samples
   off the ends, which is harmless.
2. **Resample** the recorded part to 400 Hz with :func:`scipy.signal.resample_poly`
   (polyphase filtering with an anti-aliasing FIR; the rational factor is exact for
   the usual 250/257/500/1000 Hz rates).
3. **Crop, centred,** to 4096 samples if longer.
4. **Detrend per lead**: subtract the least-squares line (which also removes the mean),
   exactly what :func:`scipy.signal.detrend` does (see :func:`detrend_leads` for why it
   is computed as a projection), over the recorded part only. Detrending the padded
   4096 samples would fit a line to signal plus zeros and turn the padding into a
   ramp, a feature no real exam has.
5. **Pad, centred,** back to 4096 samples with exact zeros.

Flat leads (a lead constant over the whole recorded part, e.g. a disconnected
electrode) are kept as all-zero leads and counted in :class:`PreprocessReport`:
dropping the record would bias the data against real acquisition faults, and a zero
lead is what the detrend produces anyway, so the model sees the same thing at train
and at test time. Records with no recorded part at all (all zeros) are counted as
``empty_records``; sources decide whether to skip them (CODE-15% does).

NaN or infinite samples raise :class:`~vizecg.contract.ContractError` naming the
source: they are a broken file, not an ECG property to smooth over.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy.signal import resample_poly

from vizecg.contract import N_LEADS, N_SAMPLES, SAMPLE_RATE_HZ, ContractError

# A lead whose peak-to-peak amplitude over the recorded part is below this is flat.
# 0.1 uV is far below the quantisation step of any clinical recorder (about 1-5 uV),
# so only genuinely constant leads fall under it.
FLAT_LEAD_TOLERANCE_MV: float = 1e-4

# Recorded lengths in CODE-15%: 10 s and 7 s at 400 Hz.
LONG_EXAM_SAMPLES: int = 4000
SHORT_EXAM_SAMPLES: int = 2800


@dataclass
class PreprocessReport:
    """Counts of what preprocessing did; add reports with ``+=`` to total them over chunks."""

    records: int = 0
    empty_records: int = 0
    flat_leads: int = 0
    records_with_flat_leads: int = 0
    padded_records: int = 0
    cropped_records: int = 0
    resampled_records: int = 0

    def __iadd__(self, other: "PreprocessReport") -> "PreprocessReport":
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))
        return self

    def as_dict(self) -> dict[str, int]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


@lru_cache(maxsize=16)
def _line_basis(length: int) -> np.ndarray:
    """Orthonormal basis ``(length, 2)`` of the constant and the linear functions on ``length`` samples."""
    ramp = np.arange(length, dtype=np.float64) - (length - 1) / 2.0  # centred, so orthogonal to the constant
    basis = np.stack([np.full(length, 1.0 / np.sqrt(length)), ramp / np.linalg.norm(ramp)], axis=1)
    basis.flags.writeable = False
    return basis


def detrend_leads(recorded: np.ndarray) -> np.ndarray:
    """Remove each lead's least-squares line (and so its mean) along axis 1 of ``(n, T, leads)``.

    The result equals ``scipy.signal.detrend(recorded, axis=1, type="linear")`` (the tests
    check it), computed as the residual of a projection on an orthonormal basis of
    ``{1, t}``. scipy solves the same problem with an SVD-based ``lstsq`` whose cost grows
    with the number of right-hand sides: 0.3 s per 256 CODE-15% exams, more than the rest
    of the reading, against a few milliseconds for two matrix products here.
    """
    basis = _line_basis(recorded.shape[1])
    coefficients = np.matmul(basis.T, recorded)  # (n, 2, leads)
    return recorded - np.matmul(basis, coefficients)


def resampling_factors(sample_rate: float) -> tuple[int, int]:
    """``(up, down)`` with ``up / down == 400 / sample_rate`` as a small exact fraction."""
    if not np.isfinite(sample_rate) or sample_rate <= 0:
        raise ContractError(f"sample rate must be a positive number of Hz, got {sample_rate!r}")
    ratio = (Fraction(SAMPLE_RATE_HZ) / Fraction(float(sample_rate))).limit_denominator(10_000)
    return ratio.numerator, ratio.denominator


def recorded_spans(signals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per record, ``[start, stop)`` between leading and trailing all-zero sample rows.

    ``signals`` is ``(n, T, leads)``. A record without any non-zero sample gets
    ``start == stop == 0``.
    """
    row_nonzero = np.any(signals != 0, axis=2)  # (n, T)
    any_nonzero = row_nonzero.any(axis=1)
    n_samples = signals.shape[1]
    start = np.where(any_nonzero, np.argmax(row_nonzero, axis=1), 0)
    stop = np.where(any_nonzero, n_samples - np.argmax(row_nonzero[:, ::-1], axis=1), 0)
    return start, stop


def _check_raw(signals: np.ndarray, source: str) -> np.ndarray:
    arr = np.asarray(signals)
    if arr.ndim != 3 or arr.shape[2] != N_LEADS:
        raise ContractError(f"{source}: raw signals must have shape (records, samples, {N_LEADS}), got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ContractError(f"{source}: raw signals must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.isfinite(arr)
        if not finite.all():
            record, sample, lead = (int(i) for i in np.argwhere(~finite)[0])
            raise ContractError(
                f"{source}: {int((~finite).sum())} NaN/inf samples "
                f"(first in record {record}, sample {sample}, lead {lead})")
    return arr


def preprocess_batch(signals: np.ndarray, sample_rate: float, *, source: str = "<signals>",
                     zero_padded: bool = False) -> tuple[np.ndarray, PreprocessReport]:
    """Convert raw ``(n, T, 12)`` mV recordings at ``sample_rate`` Hz into contract signals.

    Leads must already be in contract order. ``zero_padded=True`` means leading and
    trailing all-zero rows are padding (CODE-15%), otherwise all ``T`` samples are
    recorded. Returns ``(signals (n, 4096, 12) float32, report)``. Records are grouped
    by their recorded span so that the common case (many records with the same span)
    is resampled and detrended in one vectorised call.
    """
    arr = _check_raw(signals, source)
    n, n_raw = arr.shape[0], arr.shape[1]
    report = PreprocessReport(records=n)
    out = np.zeros((n, N_SAMPLES, N_LEADS), dtype=np.float32)
    if n == 0:
        return out, report
    if zero_padded:
        starts, stops = recorded_spans(arr)
    else:
        starts, stops = np.zeros(n, dtype=np.int64), np.full(n, n_raw, dtype=np.int64)
    up, down = resampling_factors(sample_rate)
    spans = np.stack([starts, stops], axis=1)
    unique_spans, group_of_record = np.unique(spans, axis=0, return_inverse=True)
    group_of_record = group_of_record.reshape(-1)
    for group, (start, stop) in enumerate(unique_spans):
        members = np.flatnonzero(group_of_record == group)
        if stop - start < 2:  # nothing (or a single sample) recorded: no trend to fit
            report.empty_records += len(members)
            continue
        recorded = arr[members, start:stop].astype(np.float64)
        if (up, down) != (1, 1):
            recorded = resample_poly(recorded, up, down, axis=1)
            report.resampled_records += len(members)
        length = recorded.shape[1]
        if length > N_SAMPLES:
            first = (length - N_SAMPLES) // 2
            recorded = recorded[:, first:first + N_SAMPLES]
            report.cropped_records += len(members)
            length = N_SAMPLES
        flat = np.ptp(recorded, axis=1) <= FLAT_LEAD_TOLERANCE_MV  # (members, leads)
        recorded = detrend_leads(recorded)
        recorded[np.broadcast_to(flat[:, None, :], recorded.shape)] = 0.0
        report.flat_leads += int(flat.sum())
        report.records_with_flat_leads += int(flat.any(axis=1).sum())
        if length < N_SAMPLES:
            report.padded_records += len(members)
        offset = (N_SAMPLES - length) // 2
        out[members, offset:offset + length] = recorded
    return out, report


def zero_pad_centred(signals: np.ndarray, recorded_samples: np.ndarray) -> np.ndarray:
    """Keep the centred ``recorded_samples[i]`` samples of each ``(n, 4096, 12)`` record and zero
    the rest, the way CODE-15% stores exams shorter than 4096 samples."""
    out = np.zeros_like(signals)
    for i, length in enumerate(recorded_samples):
        offset = (N_SAMPLES - int(length)) // 2
        out[i, offset:offset + length] = signals[i, offset:offset + length]
    return out


def as_short_exam(signal: np.ndarray, samples: int = SHORT_EXAM_SAMPLES) -> np.ndarray:
    """A contract record ``(4096, 12)`` as the shorter exam CODE-15% would hold of it: its centred
    ``samples`` recorded, zeros around them, read the way CODE-15% is read (recorded part detrended,
    padding left at exact zeros). A page of it shows every lead flat at both ends of its row."""
    padded = zero_pad_centred(np.asarray(signal, dtype=np.float32)[None], np.array([int(samples)]))
    out, _ = preprocess_batch(padded, SAMPLE_RATE_HZ, source="short exam", zero_padded=True)
    return out[0]


def preprocess_record(signal: np.ndarray, sample_rate: float, *, source: str = "<record>",
                      zero_padded: bool = False) -> tuple[np.ndarray, PreprocessReport]:
    """One raw ``(T, 12)`` recording -> ``((4096, 12) float32, report)``; see :func:`preprocess_batch`."""
    arr = np.asarray(signal)
    if arr.ndim != 2:
        raise ContractError(f"{source}: a raw record must have shape (samples, {N_LEADS}), got {arr.shape}")
    out, report = preprocess_batch(arr[None], sample_rate, source=source, zero_padded=zero_padded)
    return out[0], report
