"""Evaluation metrics against hand-computed values, thresholds, bootstrap, inference, latency."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, roc_auc_score
from torch import nn
from torch.utils.data import Dataset

from vizecg.evaluation import (AUROCMetric, ThresholdMetric, bootstrap_ci, classification_metrics, parameters_millions,
                               describe_device, inference_ms_per_ecg, macro_auroc, macro_f1, predict_probs,
                               tune_thresholds)

# Two classes, four records. Class 0: positives score 0.9 and 0.4, negatives 0.6 and 0.1.
# Class 1: no positives at all (AUROC undefined).
Y_SMALL = np.array([[1, 0], [1, 0], [0, 0], [0, 0]], dtype=np.uint8)
P_SMALL = np.array([[0.9, 0.2], [0.4, 0.7], [0.6, 0.1], [0.1, 0.3]])


def test_metrics_match_hand_computed_values():
    result = classification_metrics(Y_SMALL, P_SMALL, 0.5)
    c0, c1 = result["per_class"]["class_0"], result["per_class"]["class_1"]
    # class 0 at 0.5: predicted [1, 0, 1, 0] -> TP 1, FP 1, FN 1
    assert (c0["precision"], c0["recall"], c0["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    # AUROC: of the 4 positive/negative pairs, 3 are ordered correctly
    assert c0["auroc"] == pytest.approx(0.75)
    # AP: ranking pos, neg, pos, neg -> 0.5 * 1 + 0.5 * 2/3
    assert c0["auprc"] == pytest.approx(0.5 + 1 / 3)
    # class 1: one false positive, no positives -> zeros, AUC undefined and excluded
    assert (c1["precision"], c1["recall"], c1["f1"]) == (0.0, 0.0, 0.0)
    assert math.isnan(c1["auroc"]) and math.isnan(c1["auprc"])
    assert result["undefined_auc_classes"] == ["class_1"]
    assert (result["precision"], result["recall"], result["f1"]) == pytest.approx((0.25, 0.25, 0.25))
    assert result["auroc"] == pytest.approx(0.75)
    assert c0["support"] == 2 and c1["support"] == 0 and result["n"] == 4

    tuned = classification_metrics(Y_SMALL, P_SMALL, [0.35, 0.5])
    # class 0 at 0.35: predicted [1, 1, 1, 0] -> TP 2, FP 1, FN 0
    assert tuned["per_class"]["class_0"]["f1"] == pytest.approx(0.8)
    assert tuned["thresholds"] == [0.35, 0.5]


def test_six_class_names_default_to_the_study_labels():
    y = np.tile(np.eye(6, dtype=np.uint8), (3, 1))
    result = classification_metrics(y, y * 0.8 + 0.1)
    assert list(result["per_class"]) == ["1dAVb", "RBBB", "LBBB", "SB", "AF", "ST"]
    assert result["f1"] == 1.0 and result["auroc"] == 1.0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="same shape"):
        classification_metrics(Y_SMALL, P_SMALL[:, :1])
    with pytest.raises(ValueError, match="0/1"):
        classification_metrics(Y_SMALL * 2, P_SMALL)
    with pytest.raises(ValueError, match="NaN"):
        classification_metrics(Y_SMALL, np.full_like(P_SMALL, np.nan))


def test_threshold_tuning_hand_case_and_improves_validation_f1():
    thresholds = tune_thresholds(Y_SMALL, P_SMALL)
    # class 0: F1 is best (0.8) when cutting at 0.4; the cut goes halfway to the next lower score 0.1.
    # class 1 has no positives and keeps the default.
    assert thresholds == pytest.approx([0.25, 0.5])

    rng = np.random.default_rng(0)
    y = (rng.random((400, 6)) < 0.15).astype(np.uint8)
    probs = np.clip(0.05 + 0.3 * y + 0.25 * rng.random((400, 6)), 0, 1)  # miscalibrated: all below 0.5 mostly
    tuned = tune_thresholds(y, probs)
    assert tuned.shape == (6,)
    assert macro_f1(y, probs, tuned) > macro_f1(y, probs, 0.5) + 0.2
    # per class, no threshold on the validation scores does better than the tuned one
    for c in range(6):
        candidates = np.unique(probs[:, c])
        predicted = probs[:, c][None, :] >= candidates[:, None]
        tp = (predicted & (y[:, c] == 1)).sum(axis=1)
        best = (2 * tp / (predicted.sum(axis=1) + y[:, c].sum())).max()
        assert f1_score(y[:, c], probs[:, c] >= tuned[c], zero_division=0) == pytest.approx(best)


def _scored_set(n=600, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 6)) < 0.25).astype(np.uint8)
    probs = np.round(np.clip(0.35 * y + 0.65 * rng.random((n, 6)), 0, 1), 2)  # rounding creates ties
    return y, probs


def test_vectorised_metrics_equal_sklearn():
    y, probs = _scored_set()
    assert AUROCMetric()(y, probs) == pytest.approx(np.mean([roc_auc_score(y[:, c], probs[:, c]) for c in range(6)]))
    assert ThresholdMetric("f1", 0.5)(y, probs) == pytest.approx(f1_score(y, probs >= 0.5, average="macro"))
    report = classification_metrics(y, probs, 0.4)
    assert ThresholdMetric("precision", 0.4)(y, probs) == pytest.approx(report["precision"])
    assert ThresholdMetric("recall", 0.4)(y, probs) == pytest.approx(report["recall"])


def test_bootstrap_ci_contains_estimate_is_deterministic_and_matches_loop():
    y, probs = _scored_set()
    point = macro_f1(y, probs)
    lo, hi = bootstrap_ci(y, probs, ThresholdMetric("f1"), n_boot=1000, seed=0)
    assert lo < point < hi and hi - lo < 0.2
    assert bootstrap_ci(y, probs, ThresholdMetric("f1"), n_boot=1000, seed=0) == (lo, hi)
    assert bootstrap_ci(y, probs, ThresholdMetric("f1"), n_boot=1000, seed=1) != (lo, hi)
    # the vectorised path draws the same replicates as calling a plain function per replicate
    assert bootstrap_ci(y, probs, macro_f1, n_boot=60, seed=5) == pytest.approx(
        bootstrap_ci(y, probs, ThresholdMetric("f1"), n_boot=60, seed=5))
    assert bootstrap_ci(y, probs, macro_auroc, n_boot=60, seed=5) == pytest.approx(
        bootstrap_ci(y, probs, AUROCMetric(), n_boot=60, seed=5))
    auroc_lo, auroc_hi = bootstrap_ci(y, probs, AUROCMetric(), n_boot=1000)
    assert auroc_lo < macro_auroc(y, probs) < auroc_hi


def test_per_class_bootstrap_and_undefined_classes():
    y, probs = _scored_set()
    lo, hi = bootstrap_ci(y, probs, ThresholdMetric("f1", per_class=True), n_boot=200)
    assert lo.shape == hi.shape == (6,) and (lo <= hi).all()
    y[:, 2] = 0  # a class without positives: AUROC undefined in every replicate
    lo, hi = bootstrap_ci(y, probs, AUROCMetric(per_class=True), n_boot=200)
    assert np.isnan(lo[2]) and np.isnan(hi[2]) and not np.isnan(lo[[0, 1, 3, 4, 5]]).any()


class _Records(Dataset):
    def __init__(self, n=10):
        generator = torch.Generator().manual_seed(0)
        self.signals = torch.randn(n, 12, 32, generator=generator)

    def __len__(self):
        return len(self.signals)

    def __getitem__(self, index):
        return {"signal": self.signals[index], "label": torch.zeros(6), "index": index}


class _Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(12, 6)

    def forward(self, signal=None, image=None, return_attention=False):
        return {"logits": self.linear(signal.mean(dim=-1))}


def test_predict_probs_in_dataset_order_and_mode_restored():
    torch.manual_seed(0)
    model, records = _Linear(), _Records()
    model.train()
    probs = predict_probs(model, records, inputs=("signal",), batch_size=3, device="cpu", progress=False)
    expected = torch.sigmoid(model.linear(records.signals.mean(dim=-1))).detach().numpy()
    assert probs.shape == (10, 6) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, expected, rtol=1e-5)
    assert model.training
    with pytest.raises(KeyError, match="image"):
        predict_probs(model, records, inputs=("image",), batch_size=3, device="cpu", progress=False)


def test_size_and_latency():
    model = _Linear()
    assert parameters_millions(model) == pytest.approx(78 / 1e6)
    ms = inference_ms_per_ecg(model, {"signal": torch.randn(12, 32)}, device="cpu", warmup=1, iters=3)
    assert ms > 0 and math.isfinite(ms)
    ms_batch = inference_ms_per_ecg(model, {"signal": torch.randn(1, 12, 32)}, device="cpu", batch_size=4,
                                    warmup=1, iters=3)
    assert ms_batch > 0
    assert describe_device("cpu").startswith("CPU: ")


def test_ludb_metrics_carry_cis_and_per_class_auroc(tmp_path) -> None:
    import json

    import pandas as pd

    from vizecg.contract import LABELS
    from vizecg.study.external import score, write_ludb_metrics

    rng = np.random.default_rng(0)
    y = (rng.random((60, 6)) < 0.3).astype(int)
    y[:, LABELS.index("ST")] = 0  # no positive: its AUROC is undefined, not a number
    p = rng.random((60, 6))
    p[:, 0] = y[:, 0] + 0.1 * rng.random(60)  # a class the model ranks perfectly
    row = {"model": "m@image", "input": "image", "condition": "paper", **score(y, p, n_boot=20)}
    doc = write_ludb_metrics(pd.DataFrame([row]), tmp_path / "ludb.json")
    entry = json.loads((tmp_path / "ludb.json").read_text())["ludb"]["m@image | paper"]
    assert entry == doc["m@image | paper"]
    assert entry["per_class_auroc"][LABELS[0]] == 1.0 and entry["per_class_auroc"]["ST"] is None
    assert entry["auroc_ci"][0] <= entry["auroc"] <= entry["auroc_ci"][1]
