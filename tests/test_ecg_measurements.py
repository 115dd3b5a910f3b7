"""Signal measurements on hand-built ECGs with known rate and intervals, and on real LUDB records."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import signal as sps

from vizecg.data import ecg_measurements as em

FS = 400
N = 4096
LUDB = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ludb"


def _hand_built(beat_onsets_s, *, pr_s=0.16, qrs_s=0.09, p_wave=True, f_waves=False, seed=0) -> np.ndarray:
    """A 12-lead ECG from piecewise shapes with exact edges, independent of the generator.

    P: half sine of 100 ms starting ``pr_s`` before QRS onset; QRS: piecewise linear q-R-S of
    exactly ``qrs_s``; T: half sine of 160 ms, 100 ms after QRS end. Each lead scales (and
    possibly inverts) the same waveform, then gets 10 uV of white noise.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(N) / FS
    wave = np.zeros(N)
    for onset in beat_onsets_s:
        if p_wave:
            start = onset - pr_s
            inside = (t >= start) & (t < start + 0.1)
            wave[inside] += 0.15 * np.sin(np.pi * (t[inside] - start) / 0.1)
        knots_t = onset + np.array([0.0, 0.17, 0.5, 0.83, 1.0]) * qrs_s
        inside = (t >= onset) & (t <= onset + qrs_s)
        wave[inside] += np.interp(t[inside], knots_t, [0.0, -0.1, 1.2, -0.3, 0.0])
        t_start = onset + qrs_s + 0.1
        inside = (t >= t_start) & (t < t_start + 0.16)
        wave[inside] += 0.3 * np.sin(np.pi * (t[inside] - t_start) / 0.16)
    if f_waves:
        wave += 0.08 * np.sin(2 * np.pi * 6.3 * t + 2 * np.sin(2 * np.pi * 0.3 * t))
    gains = rng.choice([-1, 1], 12) * rng.uniform(0.3, 2.0, 12)
    return wave[:, None] * gains[None, :] + rng.normal(0.0, 0.01, (N, 12))


def _regular(hr_bpm: float) -> np.ndarray:
    return np.arange(0.4, N / FS - 0.3, 60.0 / hr_bpm)


@pytest.mark.parametrize("hr, pr, qrs", [(72, 0.16, 0.09), (50, 0.24, 0.14), (110, 0.18, 0.10),
                                         (65, 0.21, 0.125), (90, 0.13, 0.08)])
def test_known_rate_and_intervals_are_recovered(hr, pr, qrs):
    m = em.measure_records(_hand_built(_regular(hr), pr_s=pr, qrs_s=qrs)).iloc[0]
    assert abs(m.heart_rate_bpm - hr) < 1.0
    assert m.rr_irregularity < 0.02
    assert m.p_wave_score > 0.9
    assert abs(m.qrs_duration_ms - qrs * 1000) <= 10.0
    assert abs(m.pr_interval_ms - pr * 1000) <= 20.0


def test_fibrillation_is_irregular_without_p_waves():
    rng = np.random.default_rng(1)
    onsets = 0.3 + np.cumsum(rng.uniform(0.45, 1.05, 20))
    onsets = onsets[onsets < N / FS - 0.4]
    signal = _hand_built(onsets, p_wave=False, f_waves=True)
    m = em.measure_records(signal).iloc[0]
    assert m.rr_irregularity > em.IRREGULAR_RR_THRESHOLD
    assert m.p_wave_score < em.P_WAVE_PRESENT_THRESHOLD
    assert np.isnan(m.pr_interval_ms)


def test_one_premature_beat_does_not_make_sinus_rhythm_irregular():
    onsets = _regular(70)
    onsets[6] -= 0.25  # premature beat with a compensatory pause
    m = em.measure_records(_hand_built(onsets)).iloc[0]
    assert m.rr_irregularity < em.IRREGULAR_RR_THRESHOLD
    assert m.rr_cv > 0.1  # a plain spread statistic is fooled; the robust one is not


def test_flat_lead_and_large_gain_differences_are_tolerated():
    signal = _hand_built(_regular(80))
    signal[:, 7] = 0.0
    signal[:, 2] *= 20.0
    m = em.measure_records(signal).iloc[0]
    assert abs(m.heart_rate_bpm - 80) < 1.0
    assert abs(m.qrs_duration_ms - 90) <= 10.0


def test_single_record_and_batch_forms_agree():
    signals = np.stack([_hand_built(_regular(hr)) for hr in (55, 105)])
    batch = em.heart_rate(signals)
    assert batch.shape == (2,)
    assert em.heart_rate(signals[1]) == pytest.approx(batch[1])
    assert batch[0] < 60 < 100 < batch[1]
    peaks = em.detect_r_peaks(signals[0])
    assert abs(len(peaks) - len(_regular(55))) <= 1
    for fn in (em.rr_irregularity, em.p_wave_presence, em.qrs_duration, em.pr_interval):
        assert np.isfinite(fn(signals[0]))


def test_flat_record_gives_nan_not_an_error():
    m = em.measure_records(np.zeros((N, 12))).iloc[0]
    assert np.isnan(m.heart_rate_bpm) and np.isnan(m.qrs_duration_ms)


def test_wrong_shapes_are_rejected():
    with pytest.raises(ValueError, match="12 leads"):
        em.measure_records(np.zeros((N, 8)))
    with pytest.raises(ValueError, match="shape"):
        em.heart_rate(np.zeros(N))
    with pytest.raises(ValueError, match="label rows"):
        em.clinical_agreement(np.zeros((2, N, 12)), np.zeros((3, 6)))


def test_clinical_agreement_table_counts_and_rates():
    signals = np.stack([_hand_built(_regular(hr), pr_s=pr, qrs_s=qrs)
                        for hr, pr, qrs in ((50, 0.16, 0.09), (110, 0.16, 0.09), (75, 0.24, 0.14))])
    labels = np.array([[0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1], [1, 1, 0, 0, 0, 0]], dtype=np.uint8)
    table = em.clinical_agreement(signals, labels).set_index("label")
    for label in ("SB", "ST", "no SB/ST (sinus)", "RBBB", "1dAVb", "no 1dAVb (sinus)"):
        assert table.loc[label, "n"] >= 1 and table.loc[label, "agreement"] == 1.0, label
    assert table.loc["LBBB", "n"] == 0 and np.isnan(table.loc["LBBB", "agreement"])


def _ludb_record(record: int) -> np.ndarray:
    wfdb = pytest.importorskip("wfdb")
    path = LUDB / "data" / str(record)
    if not path.with_suffix(".hea").exists():
        pytest.skip(f"LUDB not found at {LUDB}")
    raw, fields = wfdb.rdsamp(str(path))
    names = [n.lower() for n in fields["sig_name"]]
    order = [names.index(n) for n in ("i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6")]
    resampled = sps.resample_poly(raw[:, order], 4, 5, axis=0)  # 500 -> 400 Hz
    out = np.zeros((N, 12))
    n = min(N, len(resampled))
    out[(N - n) // 2:(N - n) // 2 + n] = resampled[:n]
    return out


def test_measurements_are_sane_on_real_ludb_records():
    """Real 10 s ECGs (rhythm from LUDB's diagnosis text): sinus records have a P wave, regular
    RR and physiological intervals; most atrial fibrillation records meet the AF criterion."""
    import pandas as pd

    meta = pd.read_csv(LUDB / "ludb.csv") if (LUDB / "ludb.csv").exists() else pytest.skip("no LUDB")
    rhythm = dict(zip(meta["ID"], meta["Rhythms"].astype(str).str.strip()))
    sinus = [r for r, text in rhythm.items() if text == "Sinus rhythm"][:6]
    fibrillation = [r for r, text in rhythm.items() if text == "Atrial fibrillation"][:4]
    measured = em.measure_records(np.stack([_ludb_record(r) for r in sinus + fibrillation]))
    s, f = measured.iloc[:len(sinus)], measured.iloc[len(sinus):]
    assert s["heart_rate_bpm"].between(40, 110).all()
    assert (s["p_wave_score"] >= em.P_WAVE_PRESENT_THRESHOLD).all()
    assert (s["rr_irregularity"] < em.IRREGULAR_RR_THRESHOLD).all()
    assert s["qrs_duration_ms"].between(60, 130).all() and s["pr_interval_ms"].between(100, 260).all()
    af_criterion = (f["rr_irregularity"] > em.IRREGULAR_RR_THRESHOLD) & (f["p_wave_score"] < em.P_WAVE_PRESENT_THRESHOLD)
    assert af_criterion.mean() >= 0.5
