"""The shipped model's card: what it was trained on, how well it reads pages it never saw, and
what it cannot do, measured by the pipeline (notebook 9) and written as ``MODEL_CARD.md``
beside the weights.

Every image below reaches the model the way a user's file does: drawn at twice the model's
input size (an ecg_plot-look page, another layout, or a phone photo of it), then read back
by :func:`vizecg.page_reader.prepare_page` at the size ``model.json`` states. The real-print
panel and the ecg_plot pages run through :func:`vizecg.predict.predict_files` itself.
"""
from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Subset

from vizecg.contract import LABELS
from vizecg.data.dataset import ECGDataset
from vizecg.evaluation import predict_probs
from vizecg.evaluation.metrics import reading_agreement
from vizecg.study.config import run_spec
from vizecg.study.external import score as external_score

#: DataLoader workers that draw the card's pages: drawing and reading back a page costs several
#: times the model's forward pass, and the result does not depend on the worker count
CARD_WORKERS = 2

#: (condition, layout preset, artifact mix, severity): the looks the card scores; severities are added per profile
LAYOUTS = (("paper (ecg_plot look)", "paper"), ("clinical 3x4", "clinical_3x4"), ("rhythm 12x1", "rhythm_12x1"))
RENDER_SCALE = 2.0


def card_renderer(height: int, width: int, style: str, photo_severity: float, seed: int = 0):
    """Pages of ``style`` drawn at 2x, with phone-photo artifacts at ``photo_severity``, read back by predict."""
    from vizecg.render.training import TrainingImageRenderer

    return TrainingImageRenderer(height, width, style=style, artifact_severity=float(photo_severity),
                                 artifact_mix="photo", seed=seed, page_preparation="predict",
                                 render_scale=RENDER_SCALE)


#: the paper page of a record cut to the 7 s exam CODE-15% stores (centred, zeros around): the paper's
#: data holds such exams beside 10 s ones, and their pages show every lead flat at both ends
SHORT_EXAM_LOOK = "paper (ecg_plot look), 7 s exam zero-padded"


def conditions(severities) -> list[tuple[str, str, float, bool]]:
    """(look name, layout preset, photo severity, 7 s exam) of each look the card scores: the three
    layouts, phone photos of the paper page at each of ``severities``, and the paper page of the 7 s exam."""
    out = [(name, style, 0.0, False) for name, style in LAYOUTS]
    out += [(f"photo of paper page, severity {s:g}", "paper", float(s), False) for s in severities if s > 0]
    return out + [(SHORT_EXAM_LOOK, "paper", 0.0, True)]


def card_looks(height: int, width: int, severities, seed: int = 0) -> dict[str, object]:
    """Look name -> renderer of :func:`conditions`."""
    from vizecg.render.training import ShortExamRenderer

    looks = {}
    for name, style, severity, short_exam in conditions(severities):
        renderer = card_renderer(height, width, style, severity, seed)
        looks[name] = ShortExamRenderer(renderer) if short_exam else renderer
    return looks


def score(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray, *, n_boot: int) -> dict:
    """:func:`vizecg.study.external.score` at the shipped thresholds, with the record count and the
    positives per class beside it."""
    row = {"n": len(y), **external_score(y, p, n_boot=n_boot, thresholds=thresholds)}
    for c in LABELS:
        row[f"positives {c}"] = int(y[:, LABELS.index(c)].sum())
    return row


def evaluate_shipped(model, meta: dict, thresholds: np.ndarray, *, synthetic_file: Path, ludb_file: Path | None,
                     test_records: int, severities, n_boot: int, decimate: int, seed: int = 0,
                     device: torch.device | str = "cpu", batch_size: int = 32, progress: bool = False) -> pd.DataFrame:
    """One row per (dataset, condition): the synthetic test split (its first ``test_records``)
    and LUDB, each in the looks of :func:`card_looks`."""
    height, width = meta["input"]["image_height"], meta["input"]["image_width"]
    rows = []
    datasets = {"synthetic test": synthetic_file, "LUDB (real ECGs)": ludb_file}
    for dataset_name, path in datasets.items():
        if path is None:
            continue
        for condition, renderer in card_looks(height, width, severities, seed).items():
            dataset = ECGDataset(path, "test", decimate=decimate, image_renderer=renderer)
            y = dataset.labels
            if dataset_name == "synthetic test" and len(dataset) > test_records:
                dataset, y = Subset(dataset, range(test_records)), y[:test_records]
            p = predict_probs(model, dataset, inputs=("image",), batch_size=batch_size, device=device,
                              num_workers=CARD_WORKERS, progress=progress)
            rows.append({"dataset": dataset_name, "condition": condition, **score(y, p, thresholds, n_boot=n_boot)})
    return pd.DataFrame(rows)


#: class -> (the signal measurement its definition rests on, the direction in which it indicates the
#: class, the threshold of the definition the synthetic labels follow)
DEFINING_MEASUREMENT = {"1dAVb": ("pr_interval_ms", 1, 200.0), "RBBB": ("qrs_duration_ms", 1, 120.0),
                        "LBBB": ("qrs_duration_ms", 1, 120.0), "SB": ("heart_rate_bpm", -1, 60.0),
                        "ST": ("heart_rate_bpm", 1, 100.0)}


#: how many of the records the model ranks highest for a class the card describes by their measurement
TOP_RANKED = 10


def top_ranked_median(probs: np.ndarray, values: np.ndarray, n: int = TOP_RANKED) -> float:
    """Median measurement of the ``n`` records with the highest probability. Where the model reads the
    measurement, they lie on the class's side of its threshold, whatever the labels say; where it
    reads something else, they do not."""
    if probs.size == 0:
        return float("nan")
    order = np.argsort(-probs, kind="stable")[:n]
    return float(np.median(values[order]))


def defining_measurements(model, meta: dict, ecg_file: Path, *, decimate: int, seed: int = 0,
                          device: torch.device | str = "cpu", batch_size: int = 32) -> pd.DataFrame:
    """Does the model read, from the page, what defines each class? One row per class of
    :data:`DEFINING_MEASUREMENT`, on the records of ``ecg_file`` drawn in the paper look, through predict's page preparation: the measurement taken from the *signal* by
    :mod:`vizecg.data.ecg_measurements`, its
    values on the positives, the AUROC of that measurement alone, the model's AUROC from the page,
    and their Spearman correlation. A class whose measurement alone ranks far better than the model
    is one the model does not read; positives whose measurement contradicts the label's definition
    point at the labels, not the model. ``ecg_file`` is a prepared file whose ``test`` split is read
    (LUDB's prepared file holds all its records there)."""
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    from vizecg.data.ecg_measurements import measure_records
    from vizecg.data.prepared import read_index, read_signals

    height, width = meta["input"]["image_height"], meta["input"]["image_width"]
    dataset = ECGDataset(ecg_file, "test", decimate=decimate, image_renderer=card_renderer(height, width, "paper", 0.0,
                                                                                         seed))
    probs = predict_probs(model, dataset, inputs=("image",), batch_size=batch_size, device=device,
                          num_workers=CARD_WORKERS)
    index = read_index(ecg_file)
    measured = measure_records(read_signals(ecg_file, index.index[index["split"] == "test"].to_numpy()))
    y = dataset.labels
    rows = []
    for label, (column, sign, _) in DEFINING_MEASUREMENT.items():
        k = LABELS.index(label)
        value = measured[column].to_numpy(float)
        ok = np.isfinite(value)
        positives = value[ok & (y[:, k] == 1)]
        both = ok & np.isfinite(probs[:, k])
        defined = 0 < y[both, k].sum() < both.sum()
        rows.append({"class": label, "measurement": column, "positives": int(y[:, k].sum()),
                     "positives measured": [round(float(v)) for v in np.sort(positives)],
                     "AUROC of the measurement alone": float(roc_auc_score(y[both, k], sign * value[both]))
                     if defined else float("nan"),
                     "AUROC of the model (page)": float(roc_auc_score(y[both, k], probs[both, k]))
                     if defined else float("nan"),
                     "Spearman (model, measurement)": float(spearmanr(probs[both, k], value[both])[0]),
                     f"median of the {TOP_RANKED} ranked highest": top_ranked_median(probs[both, k], value[both])})
    return pd.DataFrame(rows)


def head_readings(classifier, ecg_file: Path, *, decimate: int, seed: int = 0, records: int | None = None,
                  batch_size: int = 32) -> pd.DataFrame | None:
    """How close what ``predict`` reports as ``"measurements"`` comes to the measurements of the
    signals: the records of ``ecg_file``'s test split (the first ``records``) drawn in the paper look,
    read back by predict's page preparation and read by ``classifier``'s measurement head, against
    :func:`vizecg.data.ecg_measurements.measure_records` of the same records. One row per
    measurement: records where both exist, Pearson r, median absolute error in its unit. ``None``
    for a model without the head."""
    from torch.utils.data import DataLoader

    from vizecg.data.ecg_measurements import measure_records
    from vizecg.data.prepared import read_index, read_signals

    if not classifier.measurements:
        return None
    dataset = ECGDataset(ecg_file, "test", decimate=decimate,
                         image_renderer=card_renderer(classifier.image_height, classifier.image_width, "paper", 0.0,
                                                      seed))
    index = read_index(ecg_file)
    rows = index.index[index["split"] == "test"].to_numpy()
    if records is not None and len(dataset) > records:
        dataset, rows = Subset(dataset, range(records)), rows[:records]
    gc.collect()  # no dead loader iterator may reach the workers forked next (see vizecg.training.engine)
    read = np.concatenate([classifier.read(batch["image"].numpy())[1]
                           for batch in DataLoader(dataset, batch_size=batch_size, num_workers=CARD_WORKERS)])
    measured = measure_records(read_signals(ecg_file, rows))
    out = []
    for column, (name, _, _) in enumerate(classifier.measurements):
        truth = measured[name].to_numpy(float) if name in measured else np.full(len(read), np.nan)
        n, r, error = reading_agreement(truth, read[:, column])
        out.append({"measurement": name, "records": n, "Pearson r": r, "median |error|": error})
    return pd.DataFrame(out)


def readings_section(meta: dict, readings: dict[str, pd.DataFrame | None] | None) -> list[str]:
    """The card's section on the measurement head's readings, or nothing for a model without one."""
    if not meta.get("measurements"):
        return []
    lines = ["## What it reads off the page (measurements)",
             "Beside the probabilities, `predict` reports what the image stream's measurement head reads off the "
             "page (`\"measurements\"` in the JSON, `m_<name>` in the CSV). They are a network's readings, "
             "compared here with the same measurements taken from the digital signal by "
             "`vizecg.data.ecg_measurements` (paper look, read back by predict's page preparation):", ""]
    tables = {name: frame for name, frame in (readings or {}).items() if frame is not None and len(frame)}
    if not tables:
        return [*lines, "Not measured.", ""]
    lines += ["| data | measurement | records | Pearson r | median abs. error |", "|---|---|---:|---:|---:|"]
    for data, frame in tables.items():
        lines += [f"| {data} | {r['measurement']} | {r['records']} | {r['Pearson r']:.2f} | {r['median |error|']:.3g} |"
                  for r in frame.to_dict("records")]
    return [*lines, "", "A reading whose r is near 0 is not read at all: ignore it.", ""]


def _measurement_findings(criteria: pd.DataFrame, gap: float = 0.2) -> list[str]:
    """Sentences for the card, from the measured table only: classes whose positives mostly fail
    the definition (the labels are looser than it), else classes the model does not read."""
    units = {"pr_interval_ms": ("PR interval", "ms"), "qrs_duration_ms": ("QRS duration", "ms"),
             "heart_rate_bpm": ("heart rate", "bpm")}
    found = []
    for row in criteria.itertuples(index=False):
        label, column, positives, values, alone, model = row[0], row[1], row[2], row[3], row[4], row[5]
        name, unit = units[column]
        _, sign, threshold = DEFINING_MEASUREMENT[label]
        meeting = [v for v in values if sign * (v - threshold) > 0]
        top = row[7]  # median measurement of the records ranked highest
        if np.isfinite(top) and sign * (top - threshold) <= 0:
            found.append(f"- **{label}**: the {TOP_RANKED} LUDB records the model ranks highest for {label} measure a "
                         f"median {top:.0f} {unit}, on the other side of the definition ({'over' if sign > 0 else 'under'}"
                         f" {threshold:g} {unit}): on real pages its {label} output does not follow the {name}.")
        if values and len(meeting) < len(values) / 2:
            found.append(f"- **{label}**: {len(values) - len(meeting)} of LUDB's {len(values)} positives measure "
                         f"{min(values)}-{max(values)} {unit}, outside the {name} definition the synthetic labels "
                         f"follow ({'over' if sign > 0 else 'under'} {threshold:g} {unit}): LUDB's labels are looser "
                         f"there, so its AUROC for {label} ({model:.2f}) measures the labels as much as the model.")
        elif np.isfinite(alone) and np.isfinite(model) and alone - model > gap:
            found.append(f"- **{label}**: the signal's {name} alone ranks LUDB's {positives} positives at AUROC "
                         f"{alone:.2f}, the model reading the page at {model:.2f}: it does not read the {name} "
                         "from a page of real ECGs.")
    return found


def criteria_table(criteria: pd.DataFrame) -> str:
    lines = ["| class | measured from the signal | positives | their values | AUROC, measurement alone | "
             f"AUROC, model on the page | Spearman | median of the {TOP_RANKED} it ranks highest |",
             "|---|---|---|---|---|---|---|---|"]
    for row in criteria.itertuples(index=False):
        lines.append(f"| {row[0]} | {row[1]} | {row[2]} | {', '.join(map(str, row[3]))} | {row[4]:.2f} | "
                     f"{row[5]:.2f} | {row[6]:+.2f} | {row[7]:.0f} |")
    return "\n".join(lines)


def score_pages(classifier, pages_dir: Path, *, n_boot: int) -> pd.DataFrame:
    """The model through predict on labelled ecg_plot 0.2.8 pages (``png/``), their JPEG photos
    (``photo/``) and photos of them printed on A4 (``sheet_photo/``) of
    :func:`vizecg.study.rendering.write_ecg_plot_pages`; refused files are counted."""
    from vizecg.study.release_thresholds import page_probabilities, scored
    from vizecg.study.rendering import PAGE_VARIANTS

    rows = []
    for variant, part in page_probabilities(classifier, pages_dir, progress=False).groupby("variant", sort=False):
        y, p = scored(part)
        rows.append({"dataset": "synthetic, through predict", "condition": PAGE_VARIANTS[variant].what,
                     "files": len(part), "refused": int(part["error"].notna().sum()),
                     **score(y, p, classifier.thresholds, n_boot=n_boot)})
    return pd.DataFrame(rows)


def real_print_probabilities(classifier, files: list[Path]) -> pd.DataFrame:
    """predict's output on each real page: probabilities, or the reason it was refused."""
    from vizecg.predict import predict_files

    rows = []
    for result in predict_files(files, classifier, progress=False):
        row = {"file": Path(result.file).name, "error": result.error}
        row.update(result.probabilities or {})
        rows.append(row)
    return pd.DataFrame(rows).set_index("file")


def plot_real_prints(frame: pd.DataFrame, path: Path, title: str) -> Path:
    """Fig. 2-style panel: the probability of each disease on each real page (refused pages left blank)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    values = frame.reindex(columns=list(LABELS)).astype(float)
    fig, ax = plt.subplots(figsize=(7, 0.22 * len(values) + 1.5))
    sns.heatmap(values, vmin=0, vmax=1, cmap="rocket_r", annot=True, fmt=".2f", annot_kws={"fontsize": 6},
                cbar_kws={"label": "probability"}, ax=ax)
    ax.set_ylabel("")
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="y", labelsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _ci(row, key: str) -> str:
    value = row[key]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    low, high = row[f"{key}_ci"]
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _per_class(row, metric: str) -> str:
    cells = []
    for c in LABELS:
        value = row[f"{metric} {c}"]
        cells.append("n/a" if value is None or np.isnan(value) else f"{value:.2f}")
    return " | ".join(cells)


def metrics_table(frame: pd.DataFrame) -> str:
    head = ("| data | look | n | macro AUROC [95% CI] | macro F1 [95% CI] | "
            + " | ".join(f"AUROC {c}" for c in LABELS) + " |")
    lines = [head, "|" + "---|" * (5 + len(LABELS))]
    for _, row in frame.iterrows():
        lines.append(f"| {row['dataset']} | {row['condition']} | {row['n']} | {_ci(row, 'auroc')} | "
                     f"{_ci(row, 'f1')} | {_per_class(row, 'auroc')} |")
    return "\n".join(lines)


def _weak_classes(evaluation: pd.DataFrame, below: float = 0.65, dataset: str = "synthetic test") -> dict[str, float]:
    """Classes whose AUROC on ``dataset``'s clean paper pages stays below ``below``."""
    clean = evaluation[(evaluation["dataset"] == dataset) & (evaluation["condition"] == LAYOUTS[0][0])]
    if clean.empty:
        return {}
    row = clean.iloc[0]
    return {c: float(row[f"auroc {c}"]) for c in LABELS if not np.isnan(row[f"auroc {c}"]) and row[f"auroc {c}"] < below}


def _run_train_options(params: dict, run: str | None) -> dict:
    """The ``train`` options ``run`` was trained with, or ``{}`` where ``model.json`` names no run its
    params hold (an older model.json)."""
    return run_spec(params, run)["train"] if run and run in params.get("runs", {}) else {}


def _records_seen(params: dict, run: str | None, training: dict) -> str:
    """How the training records were drawn: fresh every epoch, or through a replay pool."""
    pool = _run_train_options(params, run).get("replay_pool")
    if not pool:
        return "fresh records every epoch"
    epochs = int(training.get("epochs") or 0)
    fresh = min(int(pool.get("fresh_epochs", 1)), epochs)
    distinct = pool["size"] * fresh + max(epochs - fresh, 0) * pool["refresh"]
    return (f"drawn into a replay pool of {pool['size']:,} pages, the whole pool drawn anew for the first "
            f"{fresh} epoch(s), then {pool['refresh']:,} of them redrawn with new records every epoch "
            f"({distinct:,} distinct records in {epochs} epochs)")


def _stream_seed(params: dict, run: str | None):
    """The synthetic stream the run's training records came from: its own ``train.stream_seed``, else the
    profile's ``data.train_stream.seed``."""
    own = _run_train_options(params, run).get("stream_seed")
    return own if own is not None else (params.get("data", {}).get("train_stream") or {}).get("seed")


def _warm_start_lines(training: dict) -> list[str]:
    """What a continued run (``train.warm_start``) started from: its weights had been trained before."""
    source = training.get("warm_start")
    if not source:
        return []
    prior = source.get("training") or {}
    # a source may itself be a continuation: one line per run back to the first
    return [f"- Continued from run `{source['run']}` (the weights of its epoch {source.get('epoch')}; that run: "
            f"{prior.get('epochs')} epochs, {prior.get('samples_seen') or 0:,} pages, "
            f"{(prior.get('train_seconds') or 0) / 60:.0f} min of training on 2 CPU cores) with a fresh optimizer "
            "and learning-rate cycle; the lines around this one describe the continuation.",
            *_warm_start_lines(prior)]


def thresholds_section(meta: dict) -> list[str]:
    """The card's thresholds: the shipped ones and, where ``model.json`` records how they were
    tuned (:mod:`vizecg.study.release_thresholds`), the cuts each page route alone would get."""
    thresholds = meta.get("thresholds") or {}
    tuning = meta.get("threshold_tuning")
    header = ["| thresholds | " + " | ".join(LABELS) + " |", "|---|" + "---:|" * len(LABELS)]

    def row(name: str, values: dict | None) -> str:
        values = values or {}
        return f"| {name} | " + " | ".join(f"{values[c]:.3f}" if c in values else "-" for c in LABELS) + " |"

    if not tuning:
        return ["## Thresholds (tuned per class on validation for F1)", *header, row("shipped", thresholds)]
    routes = tuning.get("routes", {})
    release = tuning.get("release_run") or {}
    return [
        "## Thresholds (tuned per class for F1 on validation pages as users hold them)",
        f"One cut per class, F1-maximising on the {tuning.get('records')} validation records drawn by ecg_plot "
        f"0.2.8 and sent through predict by {len(routes)} routes pooled: "
        + "; ".join(f"{r.get('what')} ({r.get('files', 0) - r.get('refused', 0)} of {r.get('files')} read)"
                    for r in routes.values())
        + ". predict cannot tell which route a file took, so one cut serves all; the cuts each route alone "
          "would get, and the release run's own (tuned on the fast renderer's validation pages), show what "
          "that costs.",
        "",
        *header,
        row("**shipped (pooled)**", thresholds),
        *(row(f"{name} alone", r.get("thresholds")) for name, r in routes.items()),
        row(f"release run ({release.get('source')})", release.get("thresholds")),
    ]


def write_model_card(path: Path, meta: dict, evaluation: pd.DataFrame, real_prints: pd.DataFrame,
                     panel: Path, *, model_dir: str | Path, n_boot: int, command: str,
                     criteria: pd.DataFrame | None = None,
                     readings: dict[str, pd.DataFrame | None] | None = None) -> Path:
    """``MODEL_CARD.md`` from the shipped ``model.json``, the measured tables and the panel figure."""
    training = meta.get("training") or {}
    params = meta.get("params") or {}
    inp = params.get("input", {})
    data = params.get("data", {})
    ludb = evaluation[evaluation["dataset"].str.startswith("LUDB")]
    ludb_positives = {c: int(ludb[f"positives {c}"].iloc[0]) for c in LABELS} if len(ludb) else {}
    refused = real_prints["error"].notna()
    seen = training.get("samples_seen")
    lines = [
        f"# Model card: {meta['model_name']} image stream (`{Path(model_dir).as_posix()}`)",
        "",
        "Generated by the pipeline (`dvc repro model_card`, notebook 9) from `model.json` and measurements; "
        "do not edit by hand.",
        "",
        "## Intended use",
        "Research on reading printed, scanned and photographed 12-lead ECGs: six labels (1dAVb, RBBB, LBBB, SB, "
        "AF, ST), each an independent probability. **Not a medical device**: it was never validated on patients "
        "and must not inform care.",
        "",
        "## Model",
        f"- VizECGNet's image stream alone (`{meta['model_name']}`, options `{json.dumps(meta['model_options'])}`): "
        "what image-only inference runs; the signal stream that taught it is not shipped.",
        f"- Input: one page, read by `vizecg.page_reader.prepare_page` (paper found, perspective and skew corrected, "
        f"cropped to the grid, paper and ink normalised) and resized to {meta['input']['image_height']} x "
        f"{meta['input']['image_width']} px RGB in [0, 1].",
        f"- Missing-modality rule: `{meta.get('missing_modality')}` (CMAM attends to the page's own tokens).",
        f"- Weights: `{meta['weights']['file']}`, {meta['weights']['bytes']:,} bytes, sha256 "
        f"`{meta['weights']['sha256'][:16]}...`; code commit `{meta.get('git_commit')}`.",
        "",
        "## Training data",
        f"- Synthetic only: 12-lead records from the project's generator (`vizecg.data.synthetic`, "
        f"`data.source: {data.get('source')}`), each disease drawn from its ECG criteria; "
        f"{_records_seen(params, meta.get('run'), training)} (stream seed {_stream_seed(params, meta.get('run'))}), "
        "validation records from another seed.",
        f"- Pages: every layout and style the renderer draws (60% the paper's ecg_plot 2x6 look), with print, scan "
        f"and phone-photo artifacts up to severity {inp.get('train_artifact_severity', ['?', '?'])[1]} after a "
        f"clean-page curriculum ({inp.get('curriculum')}); gain augmentation {inp.get('gain_augment')}; every page "
        f"drawn at {inp.get('render_scale', 1)}x and read back through `prepare_page` "
        f"(`page_preparation: {inp.get('page_preparation', 'none')}`).",
        *_warm_start_lines(training),
        f"- Cost: {training.get('epochs')} epochs, {seen:,} pages, {training.get('wall_seconds', 0) / 60:.0f} min "
        "on 2 CPU cores." if seen else "- Cost: not recorded.",
        "",
        *thresholds_section(meta),
        "",
        "## Metrics",
        f"Bootstrap 95% CIs over records ({n_boot:,} replicates); F1 at the shipped thresholds above; n/a where a class "
        "has no positive.",
        "",
        metrics_table(evaluation),
        "",
        (f"LUDB positives per class: {ludb_positives}. With {min(ludb_positives.values())} to "
         f"{max(ludb_positives.values())} positives per class its per-class AUROCs are wide; it is external "
         "validation only (never used for training, selection or thresholds)." if ludb_positives
         else "LUDB was not available when this card was written."),
        "",
        "## Does it read what defines each class? (LUDB, measured from the signals)",
        *(["Each class rests on one measurement (PR interval, QRS duration, heart rate), taken here from the "
           "digital signal by `vizecg.data.ecg_measurements`; the model sees only the page. Both AUROCs are over "
           "the records where the measurement is defined (no PR interval in AF), so they can differ from the "
           "metrics table's.", "",
           criteria_table(criteria), "", *_measurement_findings(criteria)]
          if criteria is not None and len(criteria) else ["Not measured: LUDB was not available."]),
        "",
        *readings_section(meta, readings),
        "## Real printed and photographed pages (no labels)",
        f"{len(real_prints)} pages beside the project, through `python -m vizecg.predict`: {int((~refused).sum())} "
        f"classified, {int(refused.sum())} refused by the ECG-page check.",
        "",
        f"![probabilities on the real pages]({panel.name})",
        "",
        "## What it cannot do",
        *[f"- **{c}** reaches AUROC {v:.2f} on clean synthetic pages: treat its probability as weak evidence."
          + (" 1dAVb is a PR interval over 200 ms; at this input size 40 ms is under one pixel." if c == "1dAVb"
             else "") for c, v in _weak_classes(evaluation).items()],
        *[f"- **{c}** on real ECGs (LUDB, paper look, {ludb_positives.get(c, 0)} positives) reaches AUROC {v:.2f}: "
          "the synthetic training did not carry over for it; do not rely on it."
          for c, v in _weak_classes(evaluation, dataset="LUDB (real ECGs)").items()],
        "- It saw synthetic ECGs only; real morphology, noise, pacing, other rhythms and co-existing diseases outside "
        "the six labels may confuse it. Compare the synthetic and LUDB rows above before trusting a class.",
        "- Layouts and looks it never saw (other lead arrangements, 50 mm/s rhythm strips only, hand-annotated or "
        "heavily marked pages, partial pages, screenshots of ECG software) are out of scope; the ECG-page check "
        "refuses some of them, not all.",
        "- Probabilities are not calibrated to any clinical population's prevalence.",
        "",
        "## Reproduce",
        f"`{command}`",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
