"""Multi-label classification metrics for the six ECG classes.

Conventions (used everywhere in the study, so tables stay comparable):

* A record is predicted positive for class ``c`` when ``probs[:, c] >= thresholds[c]``.
* Precision, recall and F1 follow scikit-learn with ``zero_division=0``; the macro
  value averages all classes, as ``sklearn.metrics.f1_score(average="macro")`` does.
* AUROC and AUPRC are undefined for a class whose true labels are all 0 or all 1 in
  the evaluated set. Such a class is reported as NaN, listed under
  ``"undefined_auc_classes"``, and left out of the macro AUROC/AUPRC; the call never
  raises for it (small validation splits and LUDB subsets hit this routinely).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import (average_precision_score, precision_recall_curve,
                             precision_recall_fscore_support, roc_auc_score)

from vizecg.contract import LABELS


def _check_pair(y_true: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(y_true as int8, probs as float64)``, raising a clear error for bad shapes/values."""
    y = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    if y.ndim != 2 or p.ndim != 2 or y.shape != p.shape:
        raise ValueError(f"y_true and probs must be (N, C) arrays of the same shape, got {y.shape} and {p.shape}")
    if y.shape[0] == 0:
        raise ValueError("y_true and probs are empty: no records to evaluate")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold only 0/1 labels")
    if not np.isfinite(p).all():
        raise ValueError(f"probs hold {int((~np.isfinite(p)).sum())} NaN/inf values")
    return y.astype(np.int8), p


def _thresholds_array(thresholds: float | Sequence[float] | np.ndarray, n_classes: int) -> np.ndarray:
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (n_classes,)).copy()
    return t


def _label_names(labels: Sequence[str] | None, n_classes: int) -> list[str]:
    if labels is None:
        labels = LABELS if n_classes == len(LABELS) else [f"class_{i}" for i in range(n_classes)]
    if len(labels) != n_classes:
        raise ValueError(f"{len(labels)} label names for {n_classes} classes")
    return list(labels)


def auc_defined(y_true: np.ndarray) -> np.ndarray:
    """Boolean mask of the classes that have both positives and negatives (AUROC/AUPRC defined)."""
    y = np.asarray(y_true)
    positives = y.sum(axis=0)
    return (positives > 0) & (positives < y.shape[0])


def per_class_auroc(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """AUROC per class; NaN where the class lacks positives or negatives."""
    y, p = _check_pair(y_true, probs)
    defined = auc_defined(y)
    return np.array([roc_auc_score(y[:, c], p[:, c]) if defined[c] else np.nan for c in range(y.shape[1])])


def per_class_auprc(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Average precision (area under the PR curve) per class; NaN where undefined."""
    y, p = _check_pair(y_true, probs)
    defined = auc_defined(y)
    return np.array([average_precision_score(y[:, c], p[:, c]) if defined[c] else np.nan
                     for c in range(y.shape[1])])


def _nanmean_or_nan(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def macro_auroc(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean AUROC over the classes where it is defined; NaN if it is defined for none."""
    return _nanmean_or_nan(per_class_auroc(y_true, probs))


def macro_auprc(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean average precision over the classes where it is defined; NaN if it is defined for none."""
    return _nanmean_or_nan(per_class_auprc(y_true, probs))


def macro_f1(y_true: np.ndarray, probs: np.ndarray, thresholds: float | Sequence[float] = 0.5) -> float:
    """Macro F1 at ``probs >= thresholds`` (scikit-learn semantics, ``zero_division=0``)."""
    y, p = _check_pair(y_true, probs)
    pred = (p >= _thresholds_array(thresholds, y.shape[1])).astype(np.int8)
    _, _, f1, _ = precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    return float(f1)


def classification_metrics(y_true: np.ndarray, probs: np.ndarray,
                           thresholds: float | Sequence[float] | np.ndarray = 0.5, *,
                           labels: Sequence[str] | None = None) -> dict:
    """Per-class and macro metrics of multi-label probabilities.

    Args:
        y_true: ``(N, C)`` 0/1 labels.
        probs: ``(N, C)`` predicted probabilities (after the sigmoid).
        thresholds: one threshold for all classes or one per class (e.g. from
            :func:`tune_thresholds`); positive means ``probs >= threshold``.
        labels: class names; default :data:`vizecg.contract.LABELS` when ``C == 6``.

    Returns:
        A JSON-ready dict: ``precision``, ``recall``, ``f1`` (macro over all classes),
        ``auroc``, ``auprc`` (macro over the classes where defined), ``n`` (records),
        ``thresholds`` (list), ``undefined_auc_classes`` (names left out of the AUC
        macros) and ``per_class``: ``{name: {precision, recall, f1, auroc, auprc,
        support, threshold}}``. Values are fractions in [0, 1] or NaN.
    """
    y, p = _check_pair(y_true, probs)
    n_classes = y.shape[1]
    names = _label_names(labels, n_classes)
    t = _thresholds_array(thresholds, n_classes)
    pred = (p >= t).astype(np.int8)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, average=None, labels=list(range(n_classes)), zero_division=0)
    auroc = per_class_auroc(y, p)
    auprc = per_class_auprc(y, p)
    defined = auc_defined(y)
    per_class = {
        name: {"precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
               "auroc": float(auroc[c]), "auprc": float(auprc[c]), "support": int(support[c]),
               "threshold": float(t[c])}
        for c, name in enumerate(names)
    }
    return {
        "n": int(y.shape[0]),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
        "auroc": _nanmean_or_nan(auroc),
        "auprc": _nanmean_or_nan(auprc),
        "thresholds": [float(v) for v in t],
        "undefined_auc_classes": [names[c] for c in range(n_classes) if not defined[c]],
        "per_class": per_class,
    }


def reading_agreement(truth: np.ndarray, reading: np.ndarray) -> tuple[int, float, float]:
    """How closely a reading follows a measurement (1-D, same length, same unit), over the entries
    where both are finite: ``(entries, Pearson r, median absolute error)``; r is NaN under three
    entries, the error NaN with none."""
    truth, reading = np.asarray(truth, dtype=float), np.asarray(reading, dtype=float)
    both = np.isfinite(truth) & np.isfinite(reading)
    n = int(both.sum())
    r = float(np.corrcoef(truth[both], reading[both])[0, 1]) if n > 2 else float("nan")
    error = float(np.median(np.abs(truth[both] - reading[both]))) if n else float("nan")
    return n, r, error


def f1_by_threshold(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(candidates, f1)`` of one class: each distinct score as the cut ``p >= candidate`` (ascending,
    ``sklearn.metrics.precision_recall_curve``) and the F1 it gives (0 where precision and recall are 0)."""
    precision, recall, candidates = precision_recall_curve(y, p)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    denom = precision + recall
    return candidates, np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)


def tune_thresholds(y_val: np.ndarray, p_val: np.ndarray, *, default: float = 0.5) -> np.ndarray:
    """Per-class thresholds that maximise F1 on a validation set.

    For each class the candidate thresholds are the distinct validation scores
    (``sklearn.metrics.precision_recall_curve``); the F1-maximising score is chosen
    (the highest such score on ties, i.e. the most conservative rule) and the
    threshold is placed halfway between it and the next lower distinct score, so the
    validation predictions are unchanged while the cut does not sit exactly on one
    validation record's score. A class without validation positives keeps
    ``default`` (its F1 cannot be optimised).

    Returns:
        ``(C,)`` float array of thresholds for ``probs >= threshold``.
    """
    y, p = _check_pair(y_val, p_val)
    thresholds = np.full(y.shape[1], float(default))
    for c in range(y.shape[1]):
        if y[:, c].sum() == 0:
            continue
        candidates, f1 = f1_by_threshold(y[:, c], p[:, c])
        best = np.flatnonzero(f1 == f1.max())[-1]  # candidates ascend: last = highest score
        chosen = candidates[best]
        lower = np.unique(p[:, c])
        lower = lower[lower < chosen]
        thresholds[c] = 0.5 * (chosen + lower[-1]) if lower.size else chosen
    return thresholds
