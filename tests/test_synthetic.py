"""The synthetic generator: contract, determinism, label rules and clinical validity.

Clinical validity is checked with :mod:`vizecg.data.ecg_measurements`, which measures the
signals themselves and knows nothing of the generator's parameters.
"""
from __future__ import annotations

import numpy as np
import pytest

from vizecg.contract import LABELS, check_labels, check_signals
from vizecg.data import ecg_measurements, synthetic

I_AVB, I_RBBB, I_LBBB, I_SB, I_AF, I_ST = range(6)
N_VALIDITY = 300


@pytest.fixture(scope="module")
def cohort():
    """300 records with exact labels, and their measurements."""
    signals, labels = synthetic.generate(N_VALIDITY, seed=11)
    return signals, labels, ecg_measurements.measure_records(signals)


def test_contract_shape_dtype_and_range():
    signals, labels = synthetic.generate(12, seed=0)
    assert signals.shape == (12, 4096, 12) and signals.dtype == np.float32
    assert labels.shape == (12, 6) and labels.dtype == np.uint8
    check_signals(signals, "synthetic")
    check_labels(labels, "synthetic")
    peak_to_peak = signals.max(axis=1) - signals.min(axis=1)
    # Every record has a visible ECG in most leads, in the millivolt range.
    assert (np.median(peak_to_peak, axis=1) > 0.1).all()
    assert np.abs(signals).max() < 16.0


def test_same_record_for_same_seed_and_index_whatever_the_split():
    whole, whole_labels = synthetic.generate(10, seed=5)
    head, head_labels = synthetic.generate(4, seed=5)
    tail, tail_labels = synthetic.generate(6, seed=5, start=4)
    np.testing.assert_array_equal(np.concatenate([head, tail]), whole)
    np.testing.assert_array_equal(np.concatenate([head_labels, tail_labels]), whole_labels)
    other, _ = synthetic.generate(4, seed=6)
    assert not np.allclose(other, head)


def test_chunk_ids_are_stable_and_patients_group_records():
    chunk = synthetic.generate_chunk(40, seed=2, multi_record_patient_fraction=0.5)
    later = synthetic.generate_chunk(8, seed=2, start=20, multi_record_patient_fraction=0.5)
    assert chunk.record_ids[0] == "syn-s2-0000000" and len(set(chunk.record_ids)) == 40
    assert later.record_ids == chunk.record_ids[20:28]
    assert later.patient_ids == chunk.patient_ids[20:28]
    np.testing.assert_array_equal(later.signals, chunk.signals[20:28])
    _, counts = np.unique(chunk.patient_ids, return_counts=True)
    assert (counts > 1).any(), "with fraction 0.5 some patients must have several records"
    single = synthetic.generate_chunk(40, seed=2, multi_record_patient_fraction=0.0)
    assert len(set(single.patient_ids)) == 40


def test_share_of_records_in_multi_record_patients_follows_the_option():
    ids = [synthetic.patient_id(0, i, 0.4) for i in range(4000)]
    _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    share = float((counts[inverse] > 1).mean())
    assert 0.3 < share < 0.5


def test_limb_leads_obey_einthoven_and_goldberger():
    signals, _ = synthetic.generate(6, seed=3, independent_lead_gain_prob=0.0)
    lead = {name: signals[..., k].astype(np.float64) for k, name in enumerate(("I", "II", "III", "aVR", "aVL", "aVF"))}
    np.testing.assert_allclose(lead["III"], lead["II"] - lead["I"], atol=1e-5)
    np.testing.assert_allclose(lead["aVR"] + lead["aVL"] + lead["aVF"], 0.0, atol=1e-5)


@pytest.mark.parametrize("label_noise", [0.0, 0.5])
def test_labels_obey_exclusivity_rules(label_noise):
    _, labels = synthetic.generate(400, seed=4, label_noise=label_noise, noise_level=0.0)
    af, sb, st, avb = labels[:, I_AF], labels[:, I_SB], labels[:, I_ST], labels[:, I_AVB]
    assert not (af & (sb | st | avb)).any(), "AF co-occurs only with conduction blocks"
    assert not (sb & st).any()
    assert not (labels[:, I_RBBB] & labels[:, I_LBBB]).any()


def test_default_prevalences_and_overrides(cohort):
    _, labels, _ = cohort
    for k, name in enumerate(LABELS):
        assert abs(labels[:, k].mean() - synthetic.DEFAULT_PREVALENCE[name]) < 0.06, name
    normal_share = float((labels.sum(axis=1) == 0).mean())
    assert 0.3 < normal_share < 0.52
    _, skewed = synthetic.generate(200, seed=4, prevalence={"AF": 0.5, "SB": 0.0})
    assert 0.4 < skewed[:, I_AF].mean() < 0.6 and skewed[:, I_SB].sum() == 0


def test_bad_arguments_are_rejected_with_clear_errors():
    with pytest.raises(ValueError, match="unknown label"):
        synthetic.generate(1, 0, prevalence={"MI": 0.1})
    with pytest.raises(ValueError, match="sum to more than 1"):
        synthetic.generate(1, 0, prevalence={"AF": 0.5, "SB": 0.4, "ST": 0.3})
    with pytest.raises(TypeError, match="unknown synthetic generator option"):
        synthetic.generate(1, 0, noise=1.0)
    with pytest.raises(ValueError, match="label_noise"):
        synthetic.generate(1, 0, label_noise=1.5)
    with pytest.raises(ValueError, match="start"):
        synthetic.generate(1, 0, start=-1)


def test_label_noise_flips_only_near_thresholds_and_leaves_signals_alone():
    exact_signals, exact = synthetic.generate(300, seed=8)
    noisy_signals, noisy = synthetic.generate(300, seed=8, label_noise=1.0)
    np.testing.assert_array_equal(exact_signals, noisy_signals)
    flipped = exact != noisy
    assert flipped.any()
    measured = ecg_measurements.measure_records(exact_signals[flipped.any(axis=1)])
    rows = flipped[flipped.any(axis=1)]
    hr = measured["heart_rate_bpm"].to_numpy()
    rate_flip = rows[:, I_SB] | rows[:, I_ST]
    # Flipped rate labels sit within a few bpm of 60 or 100 (5 bpm window plus measurement error).
    near = (np.abs(hr - 60) < 8) | (np.abs(hr - 100) < 8)
    assert near[rate_flip].all()
    assert not rows[:, I_AF].any(), "AF is not a threshold label and is never flipped"


def test_clinical_criteria_agree_with_measured_signals(cohort):
    """Heart rate, rhythm and intervals measured from the signals agree with the labels.

    Rate and rhythm are measured robustly (R peaks are unambiguous), so they must agree in at
    least 95% of records; interval boundaries are fuzzier under noise (the measurement itself
    errs by about +-10 ms), so conduction criteria must agree in at least 85-90%.
    """
    _, labels, measured = cohort
    table = ecg_measurements.clinical_agreement(None, labels, measurements=measured).set_index("label")
    assert (table["n"] >= 25).all(), table
    minimum = {"SB": 0.95, "ST": 0.95, "no SB/ST (sinus)": 0.95, "AF": 0.9, "no AF": 0.95,
               "RBBB": 0.85, "LBBB": 0.9, "no BBB": 0.9, "1dAVb": 0.8, "no 1dAVb (sinus)": 0.8}
    for label, floor in minimum.items():
        assert table.loc[label, "agreement"] >= floor, (label, table.loc[label].to_dict())


def test_borderline_records_exist_inside_thresholds(cohort):
    _, labels, measured = cohort
    sinus_negative = (labels[:, [I_SB, I_ST, I_AF]].sum(axis=1) == 0)
    hr = measured["heart_rate_bpm"].to_numpy()[sinus_negative]
    assert ((hr >= 60) & (hr < 66)).sum() >= 5 and ((hr > 94) & (hr <= 100)).sum() >= 5
    no_block = labels[:, I_RBBB] + labels[:, I_LBBB] == 0
    qrs = measured["qrs_duration_ms"].to_numpy()[no_block]
    assert ((qrs >= 100) & (qrs < 120)).sum() >= 10


def test_defining_parameters_are_the_generated_labels_and_follow_the_criteria():
    """What ``benchmarks/label_ceiling.py`` ranks by: the same labels as the records, and without
    label noise exactly the clinical criteria (1dAVb PR > 200 ms, SB < 60 bpm, ST > 100 bpm)."""
    _, noisy_labels = synthetic.generate(120, seed=5, start=40, label_noise=0.2)
    noisy = synthetic.defining_parameters(120, seed=5, start=40, label_noise=0.2)
    assert (noisy[list(LABELS)].to_numpy() == noisy_labels).all()
    clean = synthetic.defining_parameters(3000, seed=5)
    sinus = clean["pr_ms"].notna()
    assert (clean["AF"] == (~sinus).astype(int)).all()
    assert (clean["1dAVb"] == (clean["pr_ms"] > 200)).all()
    assert (clean.loc[sinus, "SB"] == (clean.loc[sinus, "heart_rate_bpm"] < 60)).all()
    assert (clean.loc[sinus, "ST"] == (clean.loc[sinus, "heart_rate_bpm"] > 100)).all()
    assert set(clean["conduction"]) >= {"normal", "RBBB", "LBBB"}
