"""Interval and rhythm measurements taken from 12-lead ECG signals themselves.

They check labels against clinical criteria without looking at how a record was made: on the
synthetic generator (whose labels must agree with its own signals), on LUDB and on any source in
the record contract. Every public function accepts one record ``(4096, 12)`` or a batch
``(N, 4096, 12)`` in mV at 400 Hz (contract lead order) and returns a float or an ``(N,)`` array;
values that cannot be measured (fewer than two beats, no P wave) are NaN.

Method (one pass per record, shared by all measurements):

1. **Filtering.** 0.5-40 Hz band-pass plus 50 and 60 Hz notches (zero phase), removing baseline
   wander, muscle noise and mains hum. Each lead is then divided by its own robust amplitude,
   because lead gains are arbitrary (LUDB even normalises every lead to 1 mV peak to peak); flat
   leads get weight zero.
2. **R peaks.** A multi-lead QRS energy (sum over leads of the squared derivative of the
   8-25 Hz band, smoothed over 80 ms) and :func:`scipy.signal.find_peaks` with a 250 ms refractory
   distance and a threshold relative to the typical beat, so a single artefact cannot set it.
3. **Rate and rhythm.** Heart rate = 60 / mean RR. RR irregularity = median absolute successive
   RR difference divided by median RR ("normalised median successive difference"). It is robust
   to one or two premature beats, which inflate RMSSD-type statistics, while atrial fibrillation
   (independent intervals) scores about 0.1-0.3 against below 0.05 for sinus rhythm.
4. **Median beat.** Beats aligned at their R peaks, premature or differently shaped beats (PVCs)
   dropped by correlation, and the median taken. QRS onset and offset are where the multi-lead
   spatial velocity of the median beat stays below a fraction of its QRS maximum.
5. **P wave.** In the window between the end of the preceding T wave and QRS onset: the P-wave
   presence score is the share of that window's energy which is the same in every beat
   (energy of the beat average over mean energy per beat). Sinus P waves repeat at a fixed lag
   before the QRS and score near 1; fibrillatory waves and noise do not repeat and score near
   1 / number of beats. The P onset is where the median beat's deviation from the PR-segment
   baseline first exceeds a fraction of the P-wave peak; PR = QRS onset - P onset.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import signal as sps
from tqdm.auto import tqdm

from vizecg.contract import LABELS, N_LEADS, SAMPLE_RATE_HZ

FS = float(SAMPLE_RATE_HZ)

#: RR irregularity (normalised median successive RR difference) above which rhythm is irregular.
IRREGULAR_RR_THRESHOLD = 0.08
#: P-wave presence score at and above which a P wave is taken as present.
P_WAVE_PRESENT_THRESHOLD = 0.5

# Fractions of the QRS spatial-velocity peak and of the P-wave velocity peak that mark wave
# boundaries. Chosen so that hand-built waves with known edges are measured within a few ms.
_QRS_VELOCITY_FRACTION = 0.12
_P_VELOCITY_FRACTION = 0.4
_P_SCORE_LEADS = 3

_PRE_S, _POST_S = 0.55, 0.6     # median beat window around the R peak
_PRE = int(_PRE_S * FS)
_POST = int(_POST_S * FS)


def _design_filters() -> tuple[np.ndarray, np.ndarray]:
    band = sps.butter(2, [0.5, 40.0], btype="bandpass", fs=FS, output="sos")
    notches = [sps.tf2sos(*sps.iirnotch(f, 20.0, fs=FS)) for f in (50.0, 60.0)]
    qrs_band = sps.butter(2, [8.0, 25.0], btype="bandpass", fs=FS, output="sos")
    p_band = sps.butter(2, 30.0, btype="lowpass", fs=FS, output="sos")
    return np.vstack([band, *notches]), qrs_band, p_band


_CLEAN_SOS, _QRS_SOS, _P_SOS = _design_filters()


@dataclass
class RecordMeasurements:
    """Measurements of one record (NaN where not measurable)."""

    n_beats: int
    heart_rate_bpm: float
    rr_irregularity: float
    rr_cv: float
    p_wave_score: float
    qrs_duration_ms: float
    pr_interval_ms: float


def _as_batch(signals: np.ndarray) -> tuple[np.ndarray, bool]:
    arr = np.asarray(signals, dtype=np.float64)
    if arr.ndim == 2:
        arr, single = arr[None], True
    elif arr.ndim == 3:
        single = False
    else:
        raise ValueError(f"ECG measurements need signals (4096, 12) or (N, 4096, 12), got shape {arr.shape}")
    if arr.shape[-1] != N_LEADS:
        raise ValueError(f"ECG measurements need {N_LEADS} leads in the last axis, got shape {arr.shape}")
    if arr.shape[1] < int(2 * FS):
        raise ValueError(f"ECG measurements need at least 2 s at {FS:.0f} Hz, got {arr.shape[1]} samples")
    return arr, single


def _lead_weights(clean: np.ndarray) -> np.ndarray:
    """1 / robust amplitude per lead; zero for flat leads (disconnected electrodes)."""
    amplitude = np.percentile(clean, 99.5, axis=0) - np.percentile(clean, 0.5, axis=0)
    floor = max(0.05 * float(amplitude.max()), 1e-6)
    return np.where(amplitude > floor, 1.0 / np.maximum(amplitude, 1e-12), 0.0)


def detect_r_peaks_one(signal: np.ndarray) -> np.ndarray:
    """R-peak sample indices of one record ``(T, 12)`` (mV, 400 Hz) from the multi-lead QRS energy."""
    arr, _ = _as_batch(signal)
    return _r_peaks(arr[0], _lead_weights(sps.sosfiltfilt(_CLEAN_SOS, arr[0], axis=0)))


def _r_peaks(raw: np.ndarray, weights: np.ndarray) -> np.ndarray:
    band = sps.sosfiltfilt(_QRS_SOS, raw, axis=0) * weights
    energy = (np.gradient(band, axis=0) ** 2).sum(axis=1)
    smooth = np.convolve(energy, np.ones(int(0.08 * FS)) / int(0.08 * FS), mode="same")
    candidates, props = sps.find_peaks(smooth, distance=int(0.25 * FS), height=0.0)
    if candidates.size == 0:
        return candidates
    heights = props["peak_heights"]
    top = np.sort(heights)[::-1][: max(3, heights.size // 4)]
    reference = float(np.median(top))
    keep = heights > 0.25 * reference
    # Search back (as Pan and Tompkins do): a gap of more than 1.6 median RR most likely hides a
    # smaller beat, so accept the largest candidate in it above a lower threshold.
    for _ in range(3):
        accepted = np.flatnonzero(keep)
        if accepted.size < 3:
            break
        rr = np.diff(candidates[accepted])
        gaps = np.flatnonzero(rr > 1.6 * np.median(rr))
        added = False
        for g in gaps:
            inside = np.flatnonzero((candidates > candidates[accepted[g]] + 0.3 * np.median(rr))
                                    & (candidates < candidates[accepted[g + 1]] - 0.3 * np.median(rr)))
            inside = inside[heights[inside] > 0.08 * reference]
            if inside.size:
                keep[inside[np.argmax(heights[inside])]] = True
                added = True
        if not added:
            break
    # Of two accepted peaks closer than 0.55 median RR, the smaller is most likely a T wave.
    accepted = np.flatnonzero(keep)
    if accepted.size >= 3:
        median_rr = np.median(np.diff(candidates[accepted]))
        for a, b in zip(accepted[:-1], accepted[1:]):
            if keep[a] and keep[b] and candidates[b] - candidates[a] < 0.55 * median_rr:
                keep[a if heights[a] < heights[b] else b] = False
    peaks = candidates[keep]
    # Put the fiducial at the steepest part of the QRS in the energy (sharper than the smoothed peak).
    half = int(0.05 * FS)
    refined = np.array([max(p - half, 0) + int(np.argmax(energy[max(p - half, 0): p + half])) for p in peaks])
    return np.unique(refined)


def _median_beat(clean: np.ndarray, peaks: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median beat (PRE+POST, 12) of beats with a full window and the typical QRS shape."""
    full = peaks[(peaks >= _PRE) & (peaks + _POST <= len(clean))]
    if full.size < 2:
        return np.empty((0, N_LEADS)), full
    beats = np.stack([clean[p - _PRE: p + _POST] for p in full]) * weights
    template = np.median(beats, axis=0)
    core = slice(_PRE - int(0.1 * FS), _PRE + int(0.12 * FS))
    flat_template = template[core].ravel() - template[core].mean()
    flat_beats = beats[:, core].reshape(len(full), -1)
    flat_beats = flat_beats - flat_beats.mean(axis=1, keepdims=True)
    denom = np.linalg.norm(flat_beats, axis=1) * np.linalg.norm(flat_template) + 1e-12
    corr = flat_beats @ flat_template / denom
    typical = corr > 0.8
    if typical.sum() >= 2:
        full = full[typical]
        template = np.median(beats[typical], axis=0)
    return template, full


def _detrend_linear(segments: np.ndarray) -> np.ndarray:
    """Remove each segment's least-squares line along axis 1 (closed form; (B, L, leads))."""
    t = np.arange(segments.shape[1], dtype=float)
    t -= t.mean()
    centred = segments - segments.mean(axis=1, keepdims=True)
    slope = np.einsum("t,btl->bl", t, centred) / (t @ t)
    return centred - slope[:, None, :] * t[None, :, None]


def _run_below(values: np.ndarray, threshold: float, start: int, stop: int, step: int, run: int) -> int:
    """First index from ``start`` toward ``stop`` (exclusive) beginning a run of ``run`` samples below threshold."""
    count = 0
    for i in range(start, stop, step):
        count = count + 1 if values[i] < threshold else 0
        if count >= run:
            return i - step * (run - 1)
    return stop - step


def _measure_one(raw: np.ndarray) -> RecordMeasurements:
    nan = float("nan")
    clean = sps.sosfiltfilt(_CLEAN_SOS, raw, axis=0)
    weights = _lead_weights(clean)
    peaks = _r_peaks(raw, weights)
    if peaks.size < 2:
        return RecordMeasurements(int(peaks.size), nan, nan, nan, nan, nan, nan)
    rr = np.diff(peaks) / FS
    heart_rate = 60.0 / rr.mean()
    irregularity = float(np.median(np.abs(np.diff(rr))) / np.median(rr)) if rr.size >= 3 else nan
    rr_cv = float(rr.std() / rr.mean())

    template, beat_peaks = _median_beat(clean, peaks, weights)
    if template.size == 0:
        return RecordMeasurements(int(peaks.size), heart_rate, irregularity, rr_cv, nan, nan, nan)

    # QRS boundaries from the spatial velocity of the median beat.
    velocity = np.abs(np.gradient(template, axis=0)).sum(axis=1)
    search_lo, search_hi = _PRE - int(0.16 * FS), _PRE + int(0.2 * FS)
    centre = _PRE - int(0.05 * FS) + int(np.argmax(velocity[_PRE - int(0.05 * FS): _PRE + int(0.05 * FS)]))
    threshold = _QRS_VELOCITY_FRACTION * velocity[search_lo:search_hi].max()
    run = int(round(0.016 * FS))
    onset = _run_below(velocity, threshold, centre, search_lo, -1, run)
    offset = _run_below(velocity, threshold, centre, search_hi, 1, run)
    qrs_ms = (offset - onset) / FS * 1000.0

    # End of the T wave, to know where the preceding beat's T ends before this beat's P: after
    # the T apex (largest deviation from the PR-segment baseline), where the deviation falls
    # below a fifth of the apex.
    baseline = np.median(template[max(onset - int(0.03 * FS), 0): onset - int(0.008 * FS)], axis=0)
    deviation = np.sqrt(((template - baseline) ** 2).sum(axis=1))
    median_rr = float(np.median(rr))
    t_lo = offset + int(0.04 * FS)
    t_hi = min(_PRE + int(min(0.6, 0.75 * median_rr) * FS), len(template) - 1)
    previous_t_end = -np.inf
    if t_hi > t_lo + 4:
        t_apex = t_lo + int(np.argmax(deviation[t_lo:t_hi]))
        t_end = _run_below(deviation, 0.2 * deviation[t_apex], t_apex, len(template), 1, 2)
        if t_end < len(template) - 2:  # otherwise wander hid the T end: leave the window open
            previous_t_end = t_end - median_rr * FS

    # P-wave window: after the previous T wave, ending just before QRS onset.
    win_lo = int(max(onset - 0.42 * FS, previous_t_end + 0.02 * FS, 0))
    win_hi = onset - int(0.03 * FS)
    if win_hi - win_lo < int(0.06 * FS) or beat_peaks.size < 3:
        return RecordMeasurements(int(peaks.size), heart_rate, irregularity, rr_cv, nan, qrs_ms, nan)
    # P waves live below 30 Hz; a narrower band keeps muscle noise out of both the score and
    # the onset. Each beat's window is detrended so residual baseline wander does not count.
    p_band = sps.sosfiltfilt(_P_SOS, clean, axis=0)
    segments = np.stack([p_band[p - _PRE + win_lo: p - _PRE + win_hi] for p in beat_peaks])
    segments = _detrend_linear(segments)
    coherent = (segments.mean(axis=0) ** 2).sum(axis=0)
    total = (segments ** 2).sum(axis=1).mean(axis=0) + 1e-12
    lead_score = np.where(weights > 0, coherent / total, 0.0)
    # A P wave need not show in every lead (it is small where its vector is perpendicular),
    # so score the best few leads.
    p_score = float(np.sort(lead_score)[-_P_SCORE_LEADS:].mean())

    pr_ms = nan
    if p_score >= P_WAVE_PRESENT_THRESHOLD:
        # Onset from the spatial velocity of the leads where the P wave repeats: velocity is
        # insensitive to the slow baseline curvature that an amplitude threshold would be biased
        # by. The onset lies before the steepest point of the upstroke to the P apex.
        p_leads = lead_score >= min(P_WAVE_PRESENT_THRESHOLD, lead_score.max())
        p_template = np.median(np.stack([p_band[p - _PRE: p + _POST] for p in beat_peaks]), axis=0)[:, p_leads]
        p_template = p_template * weights[p_leads]
        p_velocity = np.abs(np.gradient(p_template, axis=0)).sum(axis=1)
        # The apex is the highest interior peak of the deviation from the PR-segment baseline,
        # so the falling tail of a preceding T wave at the window start cannot be taken for it.
        p_base = np.median(p_template[max(onset - int(0.03 * FS), 0): onset - int(0.008 * FS)], axis=0)
        p_deviation = np.sqrt(((p_template[win_lo:win_hi] - p_base) ** 2).sum(axis=1))
        interior, _ = sps.find_peaks(p_deviation)
        p_apex = win_lo + int(interior[np.argmax(p_deviation[interior])] if interior.size else np.argmax(p_deviation))
        up_lo = max(win_lo, p_apex - int(0.08 * FS))
        p_steepest = up_lo + int(np.argmax(p_velocity[up_lo:p_apex + 1]))
        p_onset = _run_below(p_velocity, _P_VELOCITY_FRACTION * p_velocity[p_steepest], p_steepest, win_lo - 1,
                             -1, int(0.012 * FS))
        pr_ms = (onset - p_onset) / FS * 1000.0
    return RecordMeasurements(int(peaks.size), heart_rate, irregularity, rr_cv, p_score, qrs_ms, pr_ms)


def measure_records(signals: np.ndarray, *, progress: bool = False) -> pd.DataFrame:
    """One row per record: n_beats, heart_rate_bpm, rr_irregularity, rr_cv, p_wave_score,
    qrs_duration_ms, pr_interval_ms (NaN where not measurable)."""
    batch, _ = _as_batch(signals)
    rows = [asdict(_measure_one(record)) for record in tqdm(batch, desc="measuring ECGs", disable=not progress)]
    return pd.DataFrame(rows, columns=[f for f in RecordMeasurements.__dataclass_fields__])


#: The measurements a network can be asked to read off a page besides the labels (auxiliary
#: targets, :class:`vizecg.models.losses.MeasurementLoss`): field -> (centre, scale). Each is the
#: measurement that defines one or more classes (PR: 1dAVb; QRS: the bundle branch blocks; heart
#: rate: SB, ST; RR irregularity and P-wave presence: AF), standardised by fixed constants (a
#: typical value and spread, not fitted to any data set) so that one Huber loss suits all five.
MEASUREMENT_TARGETS: dict[str, tuple[float, float]] = {
    "pr_interval_ms": (170.0, 40.0),
    "qrs_duration_ms": (100.0, 30.0),
    "heart_rate_bpm": (75.0, 25.0),
    "rr_irregularity": (0.05, 0.05),
    "p_wave_score": (0.6, 0.3),
}


def measurement_targets(signal: np.ndarray) -> np.ndarray:
    """One record's :data:`MEASUREMENT_TARGETS`, standardised: float32 ``(5,)``, NaN where not
    measurable (no P wave: no PR; fewer than two beats: nothing). The RR irregularity is clipped
    to 0.5 (a handful of beats can measure more) so that no record dominates the loss."""
    record = asdict(_measure_one(_as_batch(signal)[0][0]))
    record["rr_irregularity"] = float(np.minimum(record["rr_irregularity"], 0.5))  # NaN stays NaN
    return np.array([(record[name] - centre) / scale for name, (centre, scale) in MEASUREMENT_TARGETS.items()],
                    dtype=np.float32)


def _per_record(signals: np.ndarray, field: str):
    batch, single = _as_batch(signals)
    values = np.array([getattr(_measure_one(record), field) for record in batch], dtype=float)
    return float(values[0]) if single else values


def detect_r_peaks(signals: np.ndarray) -> np.ndarray | list[np.ndarray]:
    """R-peak sample indices: an array for one record, a list of arrays for a batch."""
    batch, single = _as_batch(signals)
    found = [detect_r_peaks_one(record) for record in batch]
    return found[0] if single else found


def heart_rate(signals: np.ndarray):
    """Heart rate in beats per minute, 60 / mean RR interval."""
    return _per_record(signals, "heart_rate_bpm")


def rr_irregularity(signals: np.ndarray):
    """Median absolute successive RR difference / median RR (dimensionless)."""
    return _per_record(signals, "rr_irregularity")


def p_wave_presence(signals: np.ndarray):
    """Share of the pre-QRS window's energy that repeats in every beat (0..1; P present >= 0.5)."""
    return _per_record(signals, "p_wave_score")


def qrs_duration(signals: np.ndarray):
    """QRS duration of the median beat in ms."""
    return _per_record(signals, "qrs_duration_ms")


def pr_interval(signals: np.ndarray):
    """PR interval (P onset to QRS onset) of the median beat in ms; NaN without a P wave."""
    return _per_record(signals, "pr_interval_ms")


def clinical_agreement(signals: np.ndarray | None, labels: np.ndarray, *,
                       measurements: pd.DataFrame | None = None, progress: bool = False) -> pd.DataFrame:
    """Agreement of labels with the clinical criteria, measured on the signals.

    One row per criterion: the records it applies to (``n``) and the share of them whose
    measurements meet it (``agreement``). A record whose measurement is NaN counts as not
    meeting the criterion. Pass ``measurements`` (from :func:`measure_records`) to skip measuring.
    Criteria: SB -> HR < 60; ST -> HR > 100; sinus without SB/ST -> 60 <= HR <= 100;
    AF -> irregular RR and no P wave; no AF -> regular RR or P wave; RBBB, LBBB -> QRS >= 120 ms;
    neither -> QRS < 120 ms; 1dAVb -> PR > 200 ms; sinus without 1dAVb -> PR <= 200 ms.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] != len(LABELS):
        raise ValueError(f"labels must have shape (N, {len(LABELS)}) in order {LABELS}, got {labels.shape}")
    m = measure_records(signals, progress=progress) if measurements is None else measurements.reset_index(drop=True)
    if len(m) != len(labels):
        raise ValueError(f"{len(m)} measured records but {len(labels)} label rows")
    col = {name: labels[:, i].astype(bool) for i, name in enumerate(LABELS)}
    hr, qrs, pr = m["heart_rate_bpm"].to_numpy(), m["qrs_duration_ms"].to_numpy(), m["pr_interval_ms"].to_numpy()
    irregular = m["rr_irregularity"].to_numpy() > IRREGULAR_RR_THRESHOLD
    p_present = m["p_wave_score"].to_numpy() >= P_WAVE_PRESENT_THRESHOLD
    with np.errstate(invalid="ignore"):
        criteria = [
            ("SB", "HR < 60 bpm", col["SB"], hr < 60),
            ("ST", "HR > 100 bpm", col["ST"], hr > 100),
            ("no SB/ST (sinus)", "60 <= HR <= 100 bpm", ~col["SB"] & ~col["ST"] & ~col["AF"], (hr >= 60) & (hr <= 100)),
            ("AF", "irregular RR and no P wave", col["AF"], irregular & ~p_present),
            ("no AF", "regular RR or P wave present", ~col["AF"], ~irregular | p_present),
            ("RBBB", "QRS >= 120 ms", col["RBBB"], qrs >= 120),
            ("LBBB", "QRS >= 120 ms", col["LBBB"], qrs >= 120),
            ("no BBB", "QRS < 120 ms", ~col["RBBB"] & ~col["LBBB"], qrs < 120),
            ("1dAVb", "PR > 200 ms", col["1dAVb"], pr > 200),
            ("no 1dAVb (sinus)", "PR <= 200 ms", ~col["1dAVb"] & ~col["AF"], pr <= 200),
        ]
    rows = []
    for label, criterion, applies, met in criteria:
        n = int(applies.sum())
        rows.append({"label": label, "criterion": criterion, "n": n,
                     "agreement": float(met[applies].mean()) if n else float("nan")})
    return pd.DataFrame(rows)
