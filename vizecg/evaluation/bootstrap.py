"""Bootstrap confidence intervals over test records.

The test set is resampled with replacement (records are the unit, ``n_boot``
replicates of the same size), the metric is recomputed on each replicate and the
percentile interval ``[alpha/2, 1 - alpha/2]`` of the replicate values is returned.

Any ``metric_fn(y_true, probs) -> float | (C,) array`` works (one call per replicate).
The metrics the tables need are also provided as classes (:class:`ThresholdMetric`,
:class:`AUROCMetric`) that evaluate all replicates at once: a replicate is a vector of
per-record multiplicities, so confusion counts become one matrix product and AUROC
a weighted rank statistic. That makes ``n_boot=1000`` on a few thousand records take
well under a second instead of tens of seconds. Both paths draw the same replicates
for a seed, so they give the same interval.
"""
from __future__ import annotations

import warnings
from typing import Callable, Iterator, Sequence

import numpy as np
from tqdm.auto import tqdm

from vizecg.evaluation.metrics import _check_pair, _thresholds_array

# Replicates handled per vectorised chunk: bounds the (chunk, N) weight matrix.
_CHUNK = 100


def _resampled_indices(n_records: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Yield ``(k, n_records)`` index arrays, ``n_boot`` rows in total, deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, _CHUNK):
        k = min(_CHUNK, n_boot - start)
        yield rng.integers(0, n_records, size=(k, n_records))


def _multiplicities(indices: np.ndarray, n_records: int) -> np.ndarray:
    """Turn ``(k, N)`` resampled indices into ``(k, N)`` counts of each record per replicate."""
    k = indices.shape[0]
    flat = (np.arange(k)[:, None] * n_records + indices).ravel()
    return np.bincount(flat, minlength=k * n_records).reshape(k, n_records).astype(np.float64)


class ThresholdMetric:
    """Precision, recall or F1 at fixed thresholds, macro-averaged or per class.

    Matches :func:`vizecg.evaluation.metrics.classification_metrics`
    (``probs >= threshold``, scikit-learn semantics with ``zero_division=0``).
    """

    def __init__(self, name: str = "f1", thresholds: float | Sequence[float] | np.ndarray = 0.5, *,
                 per_class: bool = False):
        if name not in ("precision", "recall", "f1"):
            raise ValueError(f"ThresholdMetric name must be precision, recall or f1, got {name!r}")
        self.name = name
        self.thresholds = thresholds
        self.per_class = per_class

    def __repr__(self) -> str:
        return f"ThresholdMetric({self.name!r}, per_class={self.per_class})"

    def _from_counts(self, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
        if self.name == "precision":
            num, den = tp, tp + fp
        elif self.name == "recall":
            num, den = tp, tp + fn
        else:
            num, den = 2 * tp, 2 * tp + fp + fn
        value = np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)
        return value if self.per_class else value.mean(axis=-1)

    def on_resamples(self, y_true: np.ndarray, probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Metric for each row of ``weights`` (``(k, N)`` record multiplicities) -> ``(k,)`` or ``(k, C)``."""
        pred = probs >= _thresholds_array(self.thresholds, y_true.shape[1])
        positive = y_true.astype(bool)
        tp = weights @ (positive & pred)
        fp = weights @ (~positive & pred)
        fn = weights @ (positive & ~pred)
        return self._from_counts(tp, fp, fn)

    def __call__(self, y_true: np.ndarray, probs: np.ndarray):
        y, p = _check_pair(y_true, probs)
        value = self.on_resamples(y, p, np.ones((1, y.shape[0])))[0]
        return value if self.per_class else float(value)


class AUROCMetric:
    """AUROC, macro over the classes where defined (or per class), NaN when undefined.

    Computed as the weighted Mann-Whitney statistic (ties count one half), which equals
    ``sklearn.metrics.roc_auc_score`` on the replicate.
    """

    def __init__(self, *, per_class: bool = False):
        self.per_class = per_class

    def __repr__(self) -> str:
        return f"AUROCMetric(per_class={self.per_class})"

    def on_resamples(self, y_true: np.ndarray, probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
        n_classes = y_true.shape[1]
        auc = np.full((weights.shape[0], n_classes), np.nan)
        for c in range(n_classes):
            order = np.argsort(probs[:, c], kind="stable")
            scores = probs[order, c]
            positive = y_true[order, c].astype(np.float64)
            group_starts = np.flatnonzero(np.r_[True, scores[1:] != scores[:-1]])
            w = weights[:, order]
            pos = np.add.reduceat(w * positive, group_starts, axis=1)
            neg = np.add.reduceat(w * (1.0 - positive), group_starts, axis=1)
            neg_below = np.cumsum(neg, axis=1) - neg
            n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
            wins = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
            defined = (n_pos > 0) & (n_neg > 0)
            auc[defined, c] = wins[defined] / (n_pos[defined] * n_neg[defined])
        if self.per_class:
            return auc
        with np.errstate(all="ignore"):
            counts = (~np.isnan(auc)).sum(axis=1)
            total = np.nansum(auc, axis=1)
            return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)

    def __call__(self, y_true: np.ndarray, probs: np.ndarray):
        y, p = _check_pair(y_true, probs)
        value = self.on_resamples(y, p, np.ones((1, y.shape[0])))[0]
        return value if self.per_class else float(value)


def bootstrap_ci(y_true: np.ndarray, probs: np.ndarray,
                 metric_fn: Callable[[np.ndarray, np.ndarray], float | np.ndarray], *,
                 n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                 progress: bool = False) -> tuple:
    """Percentile bootstrap interval of ``metric_fn`` over resampled test records.

    Args:
        y_true, probs: ``(N, C)`` labels and probabilities of the test set.
        metric_fn: ``metric_fn(y_true, probs)`` returning a float (or a ``(C,)`` array for
            per-class intervals). Objects with an ``on_resamples`` method
            (:class:`ThresholdMetric`, :class:`AUROCMetric`) are evaluated vectorised.
        n_boot: number of replicates. seed: fixes the replicates. alpha: 0.05 -> 95 %.
        progress: tqdm bar for the per-replicate (non-vectorised) path.

    Returns:
        ``(lo, hi)``: floats, or ``(C,)`` arrays for per-class metrics. Replicates where
        the metric is undefined (NaN, e.g. no positives drawn) are ignored; the bound is
        NaN if every replicate is.
    """
    y, p = _check_pair(y_true, probs)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n = y.shape[0]
    values = []
    if hasattr(metric_fn, "on_resamples"):
        for indices in _resampled_indices(n, n_boot, seed):
            values.append(np.asarray(metric_fn.on_resamples(y, p, _multiplicities(indices, n)), dtype=np.float64))
    else:
        with tqdm(total=n_boot, desc="bootstrap", disable=not progress, leave=False) as bar:
            for indices in _resampled_indices(n, n_boot, seed):
                values.append(np.asarray([metric_fn(y[row], p[row]) for row in indices], dtype=np.float64))
                bar.update(len(indices))
    replicates = np.concatenate(values, axis=0)
    with warnings.catch_warnings():
        # An all-NaN column (metric never defined) is a documented NaN result, not a warning.
        warnings.filterwarnings("ignore", message="All-NaN slice encountered", category=RuntimeWarning)
        lo, hi = np.nanpercentile(replicates, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
    if np.ndim(lo) == 0:
        return float(lo), float(hi)
    return lo, hi



def paired_difference_ci(y_true: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, metric_fn, *,
                         n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict:
    """``metric(a) - metric(b)`` on the same test records, with a paired percentile bootstrap interval.

    Both models are scored on every replicate's *same* resampled records, so the interval is
    that of the difference itself, much narrower than two separate intervals would suggest.
    ``metric_fn`` must be vectorised (:class:`ThresholdMetric` or :class:`AUROCMetric`, macro).

    Returns ``{"difference", "ci": [lo, hi], "beyond_ci"}``; ``beyond_ci`` is True when the
    interval excludes 0 (the two differ beyond the bootstrap's 1 - alpha interval).
    """
    y, pa = _check_pair(y_true, probs_a)
    _, pb = _check_pair(y_true, probs_b)
    if not hasattr(metric_fn, "on_resamples"):
        raise TypeError(f"paired_difference_ci needs a vectorised metric (ThresholdMetric, AUROCMetric), "
                        f"got {metric_fn!r}")
    n = y.shape[0]
    replicates = []
    for indices in _resampled_indices(n, n_boot, seed):
        weights = _multiplicities(indices, n)
        replicates.append(np.asarray(metric_fn.on_resamples(y, pa, weights), np.float64)
                          - np.asarray(metric_fn.on_resamples(y, pb, weights), np.float64))
    values = np.concatenate(replicates)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="All-NaN slice encountered", category=RuntimeWarning)
        lo, hi = np.nanpercentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    difference = float(metric_fn(y, pa) - metric_fn(y, pb))
    return {"difference": difference, "ci": [float(lo), float(hi)], "beyond_ci": bool(lo > 0 or hi < 0)}
