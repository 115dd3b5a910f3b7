"""Table 1 (every model) and Table 2 (ablations) from the stored predictions of each run.

Each row is scored on the test split: precision, recall and F1 (macro over the six classes)
at threshold 0.5 and at per-class thresholds tuned on the validation split, macro AUROC and
AUPRC, and a percentile-bootstrap 95 % interval of F1 (test records resampled). Parameters
count what the inference path uses; time is the median batch-1 forward pass on the stated device.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vizecg.contract import LABELS
from vizecg.evaluation import (ThresholdMetric, bootstrap_ci, classification_metrics, describe_device,
                               inference_ms_per_ecg, tune_thresholds)
from vizecg.models.model_card import example_inputs, parameters_used
from vizecg.study.config import run_spec
from vizecg.study.runs import inference_paths, load_predictions, resolve_device, run_dir

#: Table 2 rows: setting name -> run scored with image-only inference
ABLATION_RUNS = {"full": "vizecgnet", "no_smam": "vizecgnet_no_smam", "no_cmam": "vizecgnet_no_cmam",
                 "no_smam_no_cmam": "vizecgnet_no_smam_no_cmam", "no_kd": "vizecgnet_no_kd"}


def score_predictions(y_val, p_val, y_test, p_test, *, n_boot: int, seed: int = 0) -> dict:
    """Test metrics at 0.5 and at validation-tuned thresholds, with a bootstrap CI of F1 at 0.5."""
    at_half = classification_metrics(y_test, p_test, 0.5)
    thresholds = tune_thresholds(y_val, p_val)
    tuned = classification_metrics(y_test, p_test, thresholds)
    lo, hi = bootstrap_ci(y_test, p_test, ThresholdMetric("f1", 0.5), n_boot=n_boot, seed=seed)
    tuned_lo, tuned_hi = bootstrap_ci(y_test, p_test, ThresholdMetric("f1", thresholds), n_boot=n_boot, seed=seed)
    return {"precision": at_half["precision"], "recall": at_half["recall"], "f1": at_half["f1"],
            "f1_ci": [float(lo), float(hi)], "auroc": at_half["auroc"], "auprc": at_half["auprc"],
            "precision_tuned": tuned["precision"], "recall_tuned": tuned["recall"], "f1_tuned": tuned["f1"],
            "f1_tuned_ci": [float(tuned_lo), float(tuned_hi)],
            "per_class": {c: {**at_half["per_class"][c], "f1_tuned": tuned["per_class"][c]["f1"]} for c in LABELS}}


def row_key(run: str, model_kind: str, path: str) -> str:
    return run if model_kind != "multimodal" else f"{run}@{path}"


def measure_path(model, path: str, params: dict, device: torch.device) -> tuple[float, float]:
    """(parameters used in millions, batch-1 ms per ECG) of one inference path."""
    inp = params["input"]
    inputs = example_inputs("signal" if path == "signal" else "image", 1, 4096 // inp["decimate"],
                            (inp["image_height"], inp["image_width"]), generator=torch.Generator().manual_seed(0))
    params_m = parameters_used(model, inputs) / 1e6
    iters = params["evaluation"]["latency_iters"]
    ms = inference_ms_per_ecg(model, {k: v.to(device) for k, v in inputs.items()}, device=device,
                              warmup=min(5, iters), iters=iters)
    return params_m, ms


def evaluate_runs(params: dict, work_dir: str | Path, runs: list[str], *, measure: bool = True) -> dict[str, dict]:
    """Metrics (and size/speed) of every inference path of ``runs``, keyed ``run`` or ``run@path``."""
    from vizecg.training.checkpoint import load_model

    device = resolve_device(params["train"].get("device", "auto"))
    n_boot = params["evaluation"]["n_boot"]
    rows: dict[str, dict] = {}
    for run in runs:
        predictions = load_predictions(work_dir, run)
        model, meta = load_model(run_dir(work_dir, run) / "best.pt", map_location=device)
        spec = run_spec(params, run)
        for path in inference_paths(spec, model):
            row = score_predictions(predictions["y_val"], predictions[f"val@{path}"], predictions["y_test"],
                                    predictions[f"test@{path}"], n_boot=n_boot, seed=params["train"]["seed"])
            if measure and path != "image_skip":
                row["params_m"], row["ms_per_ecg"] = measure_path(model, path, params, device)
                row["device"] = describe_device(device)
            rows[row_key(run, model.input_kind, path)] = row
    return rows


def summary_frame(rows: dict[str, dict], columns=("params_m", "ms_per_ecg", "precision", "recall", "f1", "f1_ci",
                                                   "f1_tuned", "auroc", "auprc")) -> pd.DataFrame:
    frame = pd.DataFrame({name: {c: row.get(c) for c in columns} for name, row in rows.items()}).T
    for c in ("f1_ci", "f1_tuned_ci"):
        if c in frame:
            frame[c] = frame[c].map(lambda ci: f"[{ci[0]:.3f}, {ci[1]:.3f}]" if isinstance(ci, list) else ci)
    return frame


def per_class_frame(rows: dict[str, dict], metric: str = "f1") -> pd.DataFrame:
    """Long frame (model, class, value) for per-class bar plots."""
    return pd.DataFrame([{"model": name, "class": c, metric: row["per_class"][c][metric]}
                         for name, row in rows.items() for c in LABELS])


def write_table1(rows: dict[str, dict], params: dict, test_size: int, path: str | Path) -> dict:
    keep = ("params_m", "ms_per_ecg", "device", "precision", "recall", "f1", "auroc", "f1_ci",
            "f1_tuned", "auprc")
    doc = {"models": {k: {c: _json_float(v[c]) for c in keep if c in v} for k, v in rows.items()
                      if not k.endswith("@image_skip")},
           "test_size": int(test_size), "profile": params["profile"]}
    _write_json(doc, path)
    return doc


def write_table2(rows: dict[str, dict], path: str | Path) -> dict:
    keep = ("precision", "recall", "f1", "f1_ci", "auroc", "f1_tuned")
    doc = {"settings": {setting: {c: _json_float(rows[f"{run}@image"][c]) for c in keep}
                        for setting, run in ABLATION_RUNS.items()}}
    _write_json(doc, path)
    return doc


def roc_points(rows_predictions: dict[str, tuple[np.ndarray, np.ndarray]], n_points: int = 101) -> pd.DataFrame:
    """Micro-averaged ROC curve per model on a common FPR grid (for `dvc plots`)."""
    from sklearn.metrics import roc_curve

    grid = np.linspace(0, 1, n_points)
    frames = []
    for name, (y, p) in rows_predictions.items():
        fpr, tpr, _ = roc_curve(y.ravel(), p.ravel())
        frames.append(pd.DataFrame({"model": name, "fpr": grid, "tpr": np.interp(grid, fpr, tpr)}))
    return pd.concat(frames, ignore_index=True)


def _json_float(value):
    if isinstance(value, (list, tuple)):
        return [_json_float(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else round(float(value), 6)
    return value


def _write_json(doc: dict, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=2) + "\n")


def test_curves(work_dir: str | Path, runs: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Test labels and probabilities per Table 1 row (``run``, or ``run@path`` for runs scored on
    several paths; the ``image_skip`` comparison is left out), for ROC curves."""
    curves = {}
    for run in runs:
        predictions = load_predictions(work_dir, run)
        paths = [key[len("test@"):] for key in predictions if key.startswith("test@")]
        for path in paths:
            if path != "image_skip":
                name = run if len(paths) == 1 else f"{run}@{path}"
                curves[name] = (predictions["y_test"], predictions[f"test@{path}"])
    return curves
