"""Stage 6: models on real ECGs they never saw.

* LUDB (real 12-lead signals, external validation only): signal models on the signals, image models
  on the signals rendered in the paper look, in other layouts, and with print/photo artifacts of
  increasing severity.
* The real printed/photographed pages in ``real_prints/`` (no labels): per-disease probabilities of
  the image models, read through the same page preprocessing as ``python -m vizecg.predict``.
* The predict path end to end on genuine ecg_plot 0.2.8 pages of labelled test records, saved as
  PNG files and as JPEG "photos", which is how a user (and an external scorer) meets the model.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vizecg.contract import LABELS
from vizecg.data.dataset import ECGDataset
from vizecg.data.prepared import write_prepared
from vizecg.data.sources import iter_source
from vizecg.evaluation import ThresholdMetric, AUROCMetric, bootstrap_ci, classification_metrics, predict_probs
from vizecg.study.tables import json_ready, write_json

#: image conditions LUDB is rendered in: (name, layout preset, artifact severity)
def image_conditions(severities) -> list[tuple[str, str, float]]:
    conditions = [("paper", "paper", 0.0), ("clinical 3x4", "clinical_3x4", 0.0), ("rhythm 12x1", "rhythm_12x1", 0.0)]
    conditions += [(f"paper+artifacts {s:g}", "paper", float(s)) for s in severities if s > 0]
    return conditions


def prepare_ludb(params: dict, work_dir: str | Path, *, progress: bool = False) -> Path:
    """LUDB in the prepared layout (all records in the test split), written once per setting.

    ``ludb/source.json`` beside the file records what it was built from; a different
    ``ludb_max_records`` or data folder rebuilds it instead of reusing a stale file.
    """
    path = Path(work_dir) / "ludb" / "dataset.h5"
    root = Path(params["data"]["real_data_dir"]) / "ludb"
    built_from = json.dumps({"root": str(root), "max_records": params["real_prints"]["ludb_max_records"]},
                            sort_keys=True)
    stamp = path.with_name("source.json")
    if not (path.exists() and stamp.exists() and stamp.read_text() == built_from):
        path.unlink(missing_ok=True)
        chunks = iter_source("ludb", root=str(root), max_records=params["real_prints"]["ludb_max_records"],
                             progress=progress)
        write_prepared(chunks, path, split_fractions=(0.0, 0.0, 1.0), seed=0, source="ludb", progress=progress)
        stamp.write_text(built_from)
    return path


def eval_renderer(params: dict, style: str, severity: float):
    from vizecg.render.training import TrainingImageRenderer

    inp = params["input"]
    return TrainingImageRenderer(inp["image_height"], inp["image_width"], randomize_style=False,
                                 artifact_severity=float(severity), seed=params["train"]["seed"], style=style)


def score(y: np.ndarray, p: np.ndarray, *, n_boot: int, thresholds=0.5) -> dict:
    """Macro and per-class metrics with bootstrap CIs of macro F1 and AUROC; per-class supports beside them."""
    metrics = classification_metrics(y, p, thresholds)
    f1_lo, f1_hi = bootstrap_ci(y, p, ThresholdMetric("f1", thresholds), n_boot=n_boot, seed=0)
    au_lo, au_hi = bootstrap_ci(y, p, AUROCMetric(), n_boot=n_boot, seed=0)
    row = {k: metrics[k] for k in ("precision", "recall", "f1", "auroc", "auprc")}
    row.update(f1_ci=[float(f1_lo), float(f1_hi)], auroc_ci=[float(au_lo), float(au_hi)])
    for c in LABELS:
        row[f"auroc {c}"] = metrics["per_class"][c]["auroc"]
        row[f"f1 {c}"] = metrics["per_class"][c]["f1"]
    return row


def ludb_evaluation(params: dict, work_dir: str | Path, models: dict, *, device: torch.device,
                    progress: bool = False) -> pd.DataFrame:
    """One row per (model, inference path, image condition) on LUDB. ``models`` maps a Table 1
    key (``run`` or ``run@path``) to ``(model, path)``."""
    path = prepare_ludb(params, work_dir)
    n_boot = params["evaluation"]["n_boot"]
    decimate = params["input"]["decimate"]
    rows = []
    signal_set = ECGDataset(path, "test", decimate=decimate)
    y = signal_set.labels
    image_sets = {name: ECGDataset(path, "test", decimate=decimate, image_renderer=eval_renderer(params, style, sev))
                  for name, style, sev in image_conditions(params["real_prints"]["severities"])}
    for key, (model, kind) in models.items():
        conditions = {"signal": signal_set} if kind == "signal" else image_sets
        for condition, dataset in conditions.items():
            p = predict_probs(model, dataset, inputs=(kind,), batch_size=params["evaluation"]["batch_size"],
                              device=device, progress=progress)
            rows.append({"model": key, "input": kind, "condition": condition, **score(y, p, n_boot=n_boot)})
    return pd.DataFrame(rows)


def robustness_curve(frame: pd.DataFrame) -> pd.DataFrame:
    """Macro F1 and AUROC versus artifact severity (paper layout), per image model."""
    part = frame[frame["condition"].str.startswith("paper")].copy()
    part["severity"] = part["condition"].map(lambda c: float(c.split()[-1]) if "artifacts" in c else 0.0)
    return part[["model", "severity", "f1", "auroc"]].sort_values(["model", "severity"])


def page_probabilities(models: dict, files: list[Path], *, height: int, width: int, device) -> pd.DataFrame:
    """Per-disease probabilities of each image model on each real page (predict's preprocessing)."""
    from vizecg.page_reader import PageReadError, load_image, looks_like_ecg, prepare_page

    rows, batch, names = [], [], []
    for file in files:
        try:
            image = load_image(file)
        except PageReadError as error:
            rows.append({"file": file.name, "error": str(error)})
            continue
        is_ecg, reason, _ = looks_like_ecg(image)
        batch.append(torch.from_numpy(prepare_page(image, height, width)))
        names.append((file.name, is_ecg, reason))
    images = torch.stack(batch)
    for key, (model, _) in models.items():
        model.eval()
        with torch.no_grad():
            probs = torch.sigmoid(model(image=images.to(device))["logits"]).cpu().numpy()
        for (name, is_ecg, reason), p in zip(names, probs):
            rows.append({"file": name, "model": key, "looks_like_ecg": is_ecg, **dict(zip(LABELS, p.round(4)))})
    return pd.DataFrame(rows)


def write_ludb_metrics(frame: pd.DataFrame, path: str | Path) -> dict:
    """``ludb.json``: per (model, condition) macro F1 and AUROC with their bootstrap CIs and the
    per-class AUROC (``None`` where a class has no positive or no negative)."""
    doc = json_ready({f"{r['model']} | {r['condition']}": {
        "f1": r["f1"], "f1_ci": r["f1_ci"], "auroc": r["auroc"], "auroc_ci": r["auroc_ci"],
        "per_class_auroc": {c: r[f"auroc {c}"] for c in LABELS}} for r in frame.to_dict("records")}, digits=4)
    write_json({"ludb": doc}, path)
    return doc


def score_predict_command(pages_dir: str | Path, checkpoint: str | Path, *, n_boot: int) -> pd.DataFrame:
    """Run ``python -m vizecg.predict <variant> --json`` on each page folder (``png``, ``photo``,
    ``sheet_photo``) of :func:`vizecg.study.rendering.write_ecg_plot_pages`, exactly as a user would,
    and score the files it classified against ``labels.csv``; files it refused are counted, not scored."""
    import subprocess
    import sys

    from vizecg.study.rendering import PAGE_VARIANTS

    pages_dir = Path(pages_dir)
    truth = pd.read_csv(pages_dir / "labels.csv").set_index("file")
    rows = []
    for variant in PAGE_VARIANTS:
        command = [sys.executable, "-m", "vizecg.predict", str(pages_dir / variant), "--json",
                   "--checkpoint", str(checkpoint)]
        done = subprocess.run(command, capture_output=True, text=True)
        result = json.loads(done.stdout)
        scored = [r for r in result["results"] if r.get("probabilities")]
        y = np.stack([truth.loc[Path(r["file"]).stem, list(LABELS)].to_numpy(dtype=int) for r in scored])
        p = np.array([[r["probabilities"][c] for c in LABELS] for r in scored])
        rows.append({"pages": variant, "files": len(result["results"]), "scored": len(scored),
                     "exit status": done.returncode, **score(y, p, n_boot=n_boot)})
    return pd.DataFrame(rows).set_index("pages")


def synthetic_vs_ludb_auroc(work_dir: str | Path, ludb: pd.DataFrame, rows: dict[str, tuple[str, str]],
                            ludb_positives: dict[str, int]) -> pd.DataFrame:
    """Per-class AUROC on the synthetic test split beside LUDB (paper layout or signal), one row per
    (model, class). ``rows`` maps a LUDB table key to its ``(run, inference path)``."""
    from vizecg.study.runs import load_predictions

    out = []
    for key, (run, path) in rows.items():
        predictions = load_predictions(work_dir, run)
        synthetic = classification_metrics(predictions["y_test"], predictions[f"test@{path}"])
        real = ludb[(ludb["model"] == key) & (ludb["condition"].isin(["paper", "signal"]))].iloc[0]
        for c in LABELS:
            out.append({"model": key, "class": c, "synthetic test": synthetic["per_class"][c]["auroc"],
                        "LUDB": real[f"auroc {c}"], "LUDB positives": int(ludb_positives[c])})
    return pd.DataFrame(out)
