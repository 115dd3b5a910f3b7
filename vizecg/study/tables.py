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
from vizecg.evaluation import (AUROCMetric, ThresholdMetric, bootstrap_ci, classification_metrics, describe_device,
                               inference_ms_per_ecg, paired_difference_ci, per_class_auroc, tune_thresholds)
from vizecg.models.model_card import example_inputs, parameters_used
from vizecg.study.config import run_spec
from vizecg.study.runs import inference_paths, load_predictions, resolve_device, run_dir

#: Table 2 rows: setting name -> run scored with image-only inference
ABLATION_RUNS = {"full": "vizecgnet", "no_smam": "vizecgnet_no_smam", "no_cmam": "vizecgnet_no_cmam",
                 "no_smam_no_cmam": "vizecgnet_no_smam_no_cmam", "no_kd": "vizecgnet_no_kd"}


#: Below this validation AUROC a class's tuned threshold fits noise: its tuned F1 is not reported.
NEAR_CHANCE_AUROC = 0.6


def score_predictions(y_val, p_val, y_test, p_test, *, n_boot: int, seed: int = 0) -> dict:
    """Test metrics at 0.5 and at validation-tuned thresholds, with bootstrap CIs of F1 and AUROC.

    Per class: AUROC, F1 at 0.5 and at the tuned threshold, and the validation AUROC that
    threshold was tuned on. Where that validation AUROC is below :data:`NEAR_CHANCE_AUROC`,
    the class is marked ``near_chance`` and its tuned F1 is None: a threshold tuned on a
    classifier at chance picks noise (often "everything positive"), and the F1 it yields
    says nothing about the model.
    """
    at_half = classification_metrics(y_test, p_test, 0.5)
    thresholds = tune_thresholds(y_val, p_val)
    tuned = classification_metrics(y_test, p_test, thresholds)
    val_auroc = per_class_auroc(y_val, p_val)
    lo, hi = bootstrap_ci(y_test, p_test, ThresholdMetric("f1", 0.5), n_boot=n_boot, seed=seed)
    tuned_lo, tuned_hi = bootstrap_ci(y_test, p_test, ThresholdMetric("f1", thresholds), n_boot=n_boot, seed=seed)
    auroc_lo, auroc_hi = bootstrap_ci(y_test, p_test, AUROCMetric(), n_boot=n_boot, seed=seed)
    per_class = {}
    for i, c in enumerate(LABELS):
        near_chance = bool(not np.isfinite(val_auroc[i]) or val_auroc[i] < NEAR_CHANCE_AUROC)
        per_class[c] = {**at_half["per_class"][c], "val_auroc": float(val_auroc[i]), "near_chance": near_chance,
                        "threshold": float(thresholds[i]),
                        "f1_tuned": None if near_chance else tuned["per_class"][c]["f1"]}
    return {"precision": at_half["precision"], "recall": at_half["recall"], "f1": at_half["f1"],
            "f1_ci": [float(lo), float(hi)], "auroc": at_half["auroc"], "auroc_ci": [float(auroc_lo), float(auroc_hi)],
            "auprc": at_half["auprc"],
            "precision_tuned": tuned["precision"], "recall_tuned": tuned["recall"], "f1_tuned": tuned["f1"],
            "f1_tuned_ci": [float(tuned_lo), float(tuned_hi)],
            "per_class_auroc": {c: per_class[c]["auroc"] for c in LABELS},
            "near_chance_classes": [c for c in LABELS if per_class[c]["near_chance"]],
            "per_class": per_class}


def compare_paths(y_test, p_a, p_b, *, n_boot: int, seed: int = 0) -> dict:
    """Paired bootstrap differences (a - b) of macro AUROC and macro F1 at 0.5 on the same test records."""
    return {"auroc": paired_difference_ci(y_test, p_a, p_b, AUROCMetric(), n_boot=n_boot, seed=seed),
            "f1": paired_difference_ci(y_test, p_a, p_b, ThresholdMetric("f1", 0.5), n_boot=n_boot, seed=seed)}


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


def _per_class_tuned_f1(row: dict) -> dict:
    return {c: row["per_class"][c]["f1_tuned"] for c in LABELS}


def write_table1(rows: dict[str, dict], params: dict, test_size: int, path: str | Path,
                 comparisons: dict | None = None, photo_artifacts: dict | None = None) -> dict:
    keep = ("params_m", "ms_per_ecg", "device", "precision", "recall", "f1", "auroc", "auroc_ci", "f1_ci",
            "f1_tuned", "auprc", "per_class_auroc", "near_chance_classes")
    models = {}
    for key, row in rows.items():
        if key.endswith("@image_skip"):
            continue
        models[key] = {c: json_ready(row[c]) for c in keep if c in row}
        models[key]["per_class_f1_tuned"] = json_ready(_per_class_tuned_f1(row))
    doc = {"models": models, "test_size": int(test_size), "profile": params["profile"]}
    if comparisons:
        doc["comparisons"] = json_ready(comparisons)
    if photo_artifacts:
        doc["photo_artifacts"] = json_ready(photo_artifacts)
    write_json(doc, path)
    return doc


#: Table 1 comparisons of the paper's claims: (a, b) rows, a - b on the same test records
TABLE1_COMPARISONS = (("vizecgnet@image", "resnet18"), ("vizecgnet@image", "mobilenetv3"),
                      ("vizecgnet@image", "mhm@image"), ("vizecgnet@image", "vizecgnet@signal"))


def table1_comparisons(work_dir: str | Path, runs: list[str], *, n_boot: int, seed: int = 0) -> dict:
    """Paired bootstrap differences of the rows in :data:`TABLE1_COMPARISONS` that this study has."""
    curves = test_curves(work_dir, runs)
    out = {}
    for a, b in TABLE1_COMPARISONS:
        if a in curves and b in curves:
            out[f"{a} - {b}"] = compare_paths(curves[a][0], curves[a][1], curves[b][1], n_boot=n_boot, seed=seed)
    return out


def table2_comparisons(predictions: dict[str, dict], *, n_boot: int, seed: int = 0) -> dict:
    """Each Table 2 setting against ``full``: paired bootstrap differences of image-only AUROC and F1."""
    full = predictions[ABLATION_RUNS["full"]]
    out = {}
    for setting, run in ABLATION_RUNS.items():
        if setting != "full":
            out[setting] = compare_paths(full["y_test"], predictions[run]["test@image"], full["test@image"],
                                         n_boot=n_boot, seed=seed)
    return out


def write_table2(rows: dict[str, dict], path: str | Path, comparisons: dict | None = None) -> dict:
    keep = ("precision", "recall", "f1", "f1_ci", "auroc", "auroc_ci", "f1_tuned", "per_class_auroc",
            "near_chance_classes")
    settings = {}
    for setting, run in ABLATION_RUNS.items():
        row = rows[f"{run}@image"]
        settings[setting] = {c: json_ready(row[c]) for c in keep}
        settings[setting]["per_class_f1_tuned"] = json_ready(_per_class_tuned_f1(row))
        if comparisons and setting in comparisons:
            settings[setting]["minus_full"] = json_ready(comparisons[setting])
    doc = {"settings": settings}
    write_json(doc, path)
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


def json_ready(value, digits: int = 6):
    """``value`` (nested dicts, lists, floats) with floats rounded to ``digits`` and NaN as ``None``."""
    if isinstance(value, dict):
        return {k: json_ready(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v, digits) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else round(float(value), digits)
    return value


def write_json(doc: dict, path: str | Path) -> None:
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


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(ci) -> str:
    return "" if not ci or ci[0] is None else f" [{ci[0]:.3f}, {ci[1]:.3f}]"


def markdown_table1(doc: dict) -> str:
    """Table 1 (``table1.json``) as the README's markdown: macro figures, then per-class AUROC."""
    lines = ["| model | params (M) | ms/ECG | F1 [95 % CI] | F1 tuned | AUROC [95 % CI] | "
             + " | ".join(LABELS) + " |", "|---|---:|---:|---|---:|---|" + "---:|" * len(LABELS)]
    for name, row in doc["models"].items():
        per_class = " | ".join(_fmt(row["per_class_auroc"].get(c), 2) + ("*" if c in row.get("near_chance_classes", [])
                                                                          else "") for c in LABELS)
        lines.append(f"| {name} | {_fmt(row.get('params_m'), 2)} | {_fmt(row.get('ms_per_ecg'), 1)} | "
                     f"{_fmt(row['f1'])}{_ci(row.get('f1_ci'))} | {_fmt(row.get('f1_tuned'))} | "
                     f"{_fmt(row['auroc'])}{_ci(row.get('auroc_ci'))} | {per_class} |")
    return "\n".join(lines)


def markdown_table2(doc: dict) -> str:
    """Table 2 (``table2.json``) as markdown, with each setting's paired difference from the full model."""
    lines = ["| setting | F1 [95 % CI] | AUROC [95 % CI] | AUROC - full [95 % CI] | F1 - full [95 % CI] | "
             + " | ".join(LABELS) + " |", "|---|---|---|---|---|" + "---:|" * len(LABELS)]
    for setting, row in doc["settings"].items():
        diff = row.get("minus_full")

        def delta(metric: str) -> str:
            if not diff:
                return "-"
            d = diff[metric]
            return f"{d['difference']:+.3f}{_ci(d['ci'])}{' (beyond CI)' if d['beyond_ci'] else ''}"

        per_class = " | ".join(_fmt(row["per_class_auroc"].get(c), 2) for c in LABELS)
        lines.append(f"| {setting} | {_fmt(row['f1'])}{_ci(row.get('f1_ci'))} | {_fmt(row['auroc'])}"
                     f"{_ci(row.get('auroc_ci'))} | {delta('auroc')} | {delta('f1')} | {per_class} |")
    return "\n".join(lines)


def markdown_comparisons(doc: dict) -> str:
    """Table 1's paired bootstrap differences (``table1.json`` -> ``comparisons``) as a markdown list."""
    def one(d: dict) -> str:
        within = "beyond CI" if d["beyond_ci"] else "within CI"
        return f"{d['difference']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}] ({within})"

    return "\n".join(f"- `{name}`: AUROC {one(diff['auroc'])}, F1 {one(diff['f1'])}"
                     for name, diff in doc["comparisons"].items())


def markdown_photo_artifacts(doc: dict) -> str:
    """Table 1's image rows on photographed test pages (``table1.json`` -> ``photo_artifacts``): macro AUROC
    with its CI per severity, then per-class AUROC at the highest severity."""
    rows = doc["photo_artifacts"]
    severities = list(next(iter(rows.values())))
    worst = severities[-1]
    lines = ["| model | " + " | ".join(f"severity {s}" for s in severities) + " | "
             + " | ".join(f"{c} at {worst}" for c in LABELS) + " |",
             "|---|" + "---|" * len(severities) + "---:|" * len(LABELS)]
    for name, by_severity in rows.items():
        macro = " | ".join(f"{_fmt(by_severity[s]['auroc'])}{_ci(by_severity[s].get('auroc_ci'))}" for s in severities)
        per_class = " | ".join(_fmt(by_severity[worst]["per_class_auroc"].get(c), 2) for c in LABELS)
        lines.append(f"| {name} | {macro} | {per_class} |")
    return "\n".join(lines)


#: The LUDB conditions the README shows of ``ludb.json`` (the JSON has every severity)
README_LUDB_CONDITIONS = ("paper", "clinical 3x4", "paper+artifacts 0.5", "signal")


def markdown_ludb(doc: dict, conditions=README_LUDB_CONDITIONS) -> str:
    """LUDB rows (``ludb.json``, keys ``"<model> | <condition>"``) as markdown, in the JSON's model order."""
    lines = ["| model | condition | macro AUROC [95 % CI] | macro F1 | " + " | ".join(LABELS) + " |",
             "|---|---|---|---:|" + "---:|" * len(LABELS)]
    for key, row in doc["ludb"].items():
        model, condition = (part.strip() for part in key.split("|", 1))
        if condition not in conditions:
            continue
        per_class = " | ".join(_fmt(row["per_class_auroc"].get(c), 2) for c in LABELS)
        lines.append(f"| {model} | {condition} | {_fmt(row['auroc'])}{_ci(row.get('auroc_ci'))} | "
                     f"{_fmt(row['f1'])} | {per_class} |")
    return "\n".join(lines)


#: Image rows of Table 1 scored again on test pages with phone-photo artifacts
ARTIFACT_ROWS = {"vizecgnet@image": "vizecgnet", "resnet18": "resnet18", "mobilenetv3": "mobilenetv3",
                 "mhm@image": "mhm"}


def artifact_robustness(params: dict, work_dir: str | Path, severities, *, progress: bool = False) -> dict:
    """Macro and per-class test AUROC of the image rows at each phone-photo artifact ``severity``.

    Table 1 scores clean paper-look pages; this scores the same test records drawn with the
    ``photo`` artifact mix (blur, perspective, shadow, noise, JPEG) at fixed severities, so the
    cost of a photographed printout is measured per class. Returns ``{row: {severity: {...}}}``.
    """
    from vizecg.data.dataset import ECGDataset
    from vizecg.evaluation import AUROCMetric, predict_probs
    from vizecg.render.training import TrainingImageRenderer
    from vizecg.study.runs import prepared_file
    from vizecg.training.checkpoint import load_model

    device = resolve_device(params["train"].get("device", "auto"))
    inp = params["input"]
    out: dict[str, dict] = {}
    for row, run in ARTIFACT_ROWS.items():
        if not (run_dir(work_dir, run) / "best.pt").exists():
            continue
        model, _ = load_model(run_dir(work_dir, run) / "best.pt", map_location=device)
        out[row] = {}
        for severity in severities:
            renderer = TrainingImageRenderer(inp["image_height"], inp["image_width"], artifact_severity=float(severity),
                                             artifact_mix="photo", seed=params["train"]["seed"])
            test = ECGDataset(prepared_file(work_dir), "test", decimate=inp["decimate"], image_renderer=renderer)
            probs = predict_probs(model, test, inputs=("image",), batch_size=params["evaluation"]["batch_size"],
                                  device=device, progress=progress)
            lo, hi = bootstrap_ci(test.labels, probs, AUROCMetric(), n_boot=params["evaluation"]["n_boot"],
                                  seed=params["train"]["seed"])
            out[row][str(float(severity))] = {
                "auroc": float(AUROCMetric()(test.labels, probs)), "auroc_ci": [float(lo), float(hi)],
                "per_class_auroc": dict(zip(LABELS, per_class_auroc(test.labels, probs).tolist()))}
    return out
