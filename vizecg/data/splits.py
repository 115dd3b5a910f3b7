"""Patient-wise, label-stratified, seeded train/val/test splits.

Records of one patient are correlated (CODE-15% has up to a dozen exams per patient), so a
patient in two splits leaks test information into training. Splits are therefore made
over patients, never records. Within that constraint the six multi-label targets are
stratified greedily, after the iterative stratification of Sechidis et al. (2011) applied
to patient groups: patients are visited rarest label first, and each goes to the split
that still lacks the most positives of that label (ties: the split that lacks the most
records). Patients without any label fill the splits by record count. This keeps even
rare classes (LBBB at ~1-2%) present in every split in the right proportion, which a
random patient split does not guarantee at small sizes.

The assignment depends only on the set of (patient, labels) pairs and the seed, not on
the order records arrive in.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
SPLIT_CODES: dict[str, int] = {name: code for code, name in enumerate(SPLIT_NAMES)}


def check_fractions(fractions: Sequence[float]) -> np.ndarray:
    """Validate ``(train, val, test)`` fractions: three non-negative numbers summing to 1."""
    arr = np.asarray(fractions, dtype=np.float64)
    if arr.shape != (len(SPLIT_NAMES),) or (arr < 0).any() or abs(arr.sum() - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be three non-negative numbers (train, val, test) summing to 1, "
                         f"got {list(fractions)}")
    return arr / arr.sum()


def split_code(name: str) -> int:
    """``"train"`` -> 0, ``"val"`` -> 1, ``"test"`` -> 2."""
    if name not in SPLIT_CODES:
        raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLIT_NAMES)}")
    return SPLIT_CODES[name]


def patient_stratified_split(patient_ids: Sequence[str], labels: np.ndarray, *,
                             fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> np.ndarray:
    """Assign each record a split code (0 train, 1 val, 2 test), patient-wise and stratified.

    ``patient_ids`` has one entry per record, ``labels`` is ``(n_records, n_classes)`` 0/1.
    Returns ``(n_records,)`` uint8. Every record of a patient gets the same split.
    """
    shares = check_fractions(fractions)
    labels = np.asarray(labels)
    n_records = len(patient_ids)
    if labels.ndim != 2 or len(labels) != n_records:
        raise ValueError(f"labels must be (n_records, n_classes) with n_records={n_records}, got {labels.shape}")
    if n_records == 0:
        return np.zeros(0, dtype=np.uint8)
    patients, record_patient = np.unique(np.asarray(patient_ids, dtype=str), return_inverse=True)
    record_patient = record_patient.reshape(-1)
    n_patients, n_classes = len(patients), labels.shape[1]
    # Per patient: number of records and of positive records per class.
    patient_records = np.bincount(record_patient, minlength=n_patients).astype(np.float64)
    patient_positives = np.zeros((n_patients, n_classes), dtype=np.float64)
    np.add.at(patient_positives, record_patient, labels.astype(np.float64))

    # Still wanted per split: records and positives per class.
    wanted_records = shares * n_records
    wanted_positives = np.outer(patient_positives.sum(axis=0), shares)  # (classes, splits)
    closed = shares == 0  # a split with fraction 0 never receives patients
    class_frequency = patient_positives.sum(axis=0)

    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(n_patients)
    carried = patient_positives[shuffled] > 0
    # Rarest carried class per patient (patients without labels go last).
    rarity = np.where(carried, class_frequency[None, :], np.inf)
    rarest = np.where(carried.any(axis=1), np.argmin(rarity, axis=1), n_classes)
    rarest_frequency = np.where(rarest < n_classes, class_frequency[np.minimum(rarest, n_classes - 1)], np.inf)
    visit = shuffled[np.lexsort((rarest, rarest_frequency))]  # stable: ties keep the shuffled order

    patient_split = np.zeros(n_patients, dtype=np.uint8)
    for patient in visit:
        positives = patient_positives[patient]
        if positives.any():
            target = int(np.argmin(np.where(positives > 0, class_frequency, np.inf)))
            # Most positives of the rarest class still wanted; ties broken by records wanted.
            score = np.stack([wanted_positives[target], wanted_records])
            score[:, closed] = -np.inf
            order = np.lexsort((score[1], score[0]))
            split = int(order[-1])
        else:
            score = np.where(closed, -np.inf, wanted_records)
            split = int(np.argmax(score))
        patient_split[patient] = split
        wanted_records[split] -= patient_records[patient]
        wanted_positives[:, split] -= positives
    return patient_split[record_patient]
