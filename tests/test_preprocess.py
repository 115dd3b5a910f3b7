"""Preprocessing: resampling, centred pad/crop, detrend over the recorded part only, flat leads, bad input."""
import numpy as np
import pytest

from vizecg.contract import N_LEADS, N_SAMPLES, ContractError
from vizecg.data.preprocess import (SHORT_EXAM_SAMPLES, as_short_exam, preprocess_batch, preprocess_record, recorded_spans,
                                    resampling_factors)


def _ecg_like(n_samples: int, rate: float, seed: int = 0) -> np.ndarray:
    """A 1.2 Hz spiky rhythm per lead plus an offset and a drift: enough structure to test
    resampling and detrending without the generator."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / rate
    beats = np.exp(-((t[:, None] % 0.8) - 0.4) ** 2 / (2 * 0.01 ** 2))
    gains = rng.uniform(0.5, 1.5, N_LEADS)
    return beats * gains + rng.uniform(-1, 1, N_LEADS) + 0.3 * t[:, None]


def test_zero_padding_stays_zero_and_recorded_part_is_detrended():
    recorded = _ecg_like(2800, 400)
    raw = np.zeros((N_SAMPLES, N_LEADS))
    offset = (N_SAMPLES - 2800) // 2
    raw[offset:offset + 2800] = recorded
    out, report = preprocess_record(raw, 400, source="padded exam", zero_padded=True)

    assert out.dtype == np.float32 and out.shape == (N_SAMPLES, N_LEADS)
    assert np.all(out[:offset] == 0) and np.all(out[offset + 2800:] == 0)
    part = out[offset:offset + 2800].astype(np.float64)
    t = np.arange(2800)
    slopes = np.polyfit(t, part, 1)[0]
    assert np.abs(part.mean(axis=0)).max() < 1e-4
    assert np.abs(slopes).max() < 1e-7
    assert report.padded_records == 1 and report.flat_leads == 0
    # Without the padding flag, the zeros count as signal and get shifted: the ramp we avoid.
    naive, _ = preprocess_record(raw, 400, zero_padded=False)
    assert np.abs(naive[:offset]).max() > 0.01


def test_short_exam_is_what_reading_a_zero_padded_7s_exam_gives():
    """as_short_exam(record) = the record's centred 7 s stored and read as CODE-15% stores and reads
    it: exact zeros around a recorded part that is detrended on its own, and the beats in it untouched."""
    record, _ = preprocess_record(_ecg_like(N_SAMPLES, 400), 400, source="10 s exam")
    short = as_short_exam(record)
    offset = (N_SAMPLES - SHORT_EXAM_SAMPLES) // 2
    part = short[offset:offset + SHORT_EXAM_SAMPLES].astype(np.float64)

    assert short.dtype == np.float32 and short.shape == (N_SAMPLES, N_LEADS)
    assert np.all(short[:offset] == 0) and np.all(short[offset + SHORT_EXAM_SAMPLES:] == 0)
    assert np.abs(part.mean(axis=0)).max() < 1e-5
    assert np.abs(np.polyfit(np.arange(SHORT_EXAM_SAMPLES), part, 1)[0]).max() < 1e-8
    # only a line per lead was removed from the kept samples: the beats are where they were
    residual = part - record[offset:offset + SHORT_EXAM_SAMPLES]
    assert np.abs(np.diff(residual, n=2, axis=0)).max() < 1e-5
    assert np.ptp(part, axis=0).min() > 0.4


def test_resampling_500hz_centres_4000_samples_and_keeps_frequency():
    rate = 500
    t = np.arange(10 * rate) / rate
    raw = np.sin(2 * np.pi * 7.0 * t)[:, None] * np.ones(N_LEADS)
    out, report = preprocess_record(raw, rate, source="500 Hz record")
    assert report.resampled_records == 1 and report.padded_records == 1
    assert np.all(out[:48] == 0) and np.all(out[48 + 4000:] == 0)
    spectrum = np.abs(np.fft.rfft(out[48:4048, 0]))
    peak_hz = np.argmax(spectrum) * 400 / 4000
    assert peak_hz == pytest.approx(7.0, abs=0.1)
    assert resampling_factors(500) == (4, 5)
    assert resampling_factors(257) == (400, 257)


def test_long_record_is_cropped_centred():
    rate = 257
    raw = _ecg_like(30 * rate, rate)
    out, report = preprocess_record(raw, rate, source="30 s record")
    assert report.cropped_records == 1 and report.padded_records == 0
    assert np.all(out[0] != 0) and np.all(out[-1] != 0)


def test_flat_lead_is_kept_as_zeros_and_counted():
    raw = _ecg_like(4096, 400)
    raw[:, 3] = 0.7  # a disconnected electrode: constant
    out, report = preprocess_record(raw, 400)
    assert np.all(out[:, 3] == 0)
    assert np.abs(out[:, 0]).max() > 0.1
    assert report.flat_leads == 1 and report.records_with_flat_leads == 1


def test_empty_record_is_counted_not_an_error():
    out, report = preprocess_batch(np.zeros((2, N_SAMPLES, N_LEADS)), 400, zero_padded=True)
    assert report.empty_records == 2 and not out.any()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_raise_naming_the_source(bad):
    raw = _ecg_like(1000, 400)
    raw[500, 2] = bad
    with pytest.raises(ContractError, match="record-17.hea.*NaN/inf"):
        preprocess_record(raw, 400, source="record-17.hea")


def test_wrong_shape_raises_naming_the_source():
    with pytest.raises(ContractError, match="eight-lead.dat"):
        preprocess_record(np.zeros((5000, 8)), 500, source="eight-lead.dat")
    with pytest.raises(ContractError, match="sample rate"):
        preprocess_record(np.ones((100, 12)), 0)


def test_batch_with_mixed_spans_equals_one_record_at_a_time():
    raws = np.zeros((4, N_SAMPLES, N_LEADS))
    for i, length in enumerate((4000, 2800, 4096, 2800)):
        offset = (N_SAMPLES - length) // 2
        raws[i, offset:offset + length] = _ecg_like(length, 400, seed=i)
    batch, report = preprocess_batch(raws, 400, zero_padded=True)
    for i in range(4):
        single, _ = preprocess_record(raws[i], 400, zero_padded=True)
        np.testing.assert_array_equal(batch[i], single)
    assert report.records == 4 and report.padded_records == 3
    starts, stops = recorded_spans(raws)
    assert list(stops - starts) == [4000, 2800, 4096, 2800]


def test_detrend_equals_scipy_detrend():
    from scipy.signal import detrend

    from vizecg.data.preprocess import detrend_leads

    raw = np.stack([_ecg_like(n, 400, seed=n) for n in (2800, 2800)])
    np.testing.assert_allclose(detrend_leads(raw), detrend(raw, axis=1, type="linear"), atol=1e-9)
