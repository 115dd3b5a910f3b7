"""The shipped model through predict on phone photos of printed sheets, with and without the plot-area crop.

    python benchmarks/sheet_photos.py [--records 80] [--severities 0.25 0.5] [--check-off] [--out reports/metrics/sheet_photos.json]

Test records of the default profile's prepared file (``dvc repro prepare`` writes it) are drawn
by ecg_plot 0.2.8 in the paper look, printed on A4 landscape and photographed lying on a desk
(:func:`vizecg.render.artifacts.photograph_sheet`: the sheet fills 55-90 % of the frame, tilt,
perspective, shadow, blur, noise, JPEG). An ecg_plot page (about 2.8:1) fills half of an A4
sheet's height, so a photo of the print is half blank paper. Each photo goes through
``vizecg.predict`` twice in this process: once with the page crop as it was before
:func:`vizecg.page_reader.find_plot_area` (grid lines only, :func:`find_grid_box`), once as
predict runs now. Reported per severity: files refused by the ECG-page check, macro and
per-class AUROC of the files classified, and how often the crop kept less than 80 % of the
sheet's height (the plot found). With ``--check-off`` the photos are also read with the check
off (``--no-ecg-check``), all of them and the ones the check refused alone: whether a refusal keeps
a user from a reading the model could have given.
"""
from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from vizecg import page_reader
from vizecg.contract import LABELS
from vizecg.data.prepared import read_index, read_signals
from vizecg.evaluation.metrics import classification_metrics


def _photograph(task: tuple[np.ndarray, Path, int, float]) -> None:
    from vizecg.render import render_ecg
    from vizecg.render.artifacts import photograph_sheet

    signal, path, seed, severity = task
    page = render_ecg(signal, backend="ecg_plot", style="paper")
    Image.fromarray(photograph_sheet(page, seed, severity)).save(path, quality=90)


def write_photos(prepared: Path, out_dir: Path, records: int, severities: list[float], workers: int):
    """The photos (skipped where already written) and the labels of their records."""
    index = read_index(prepared)
    rows = index.index[index["split"] == "test"][:records].to_numpy()
    labels = index.loc[rows, list(LABELS)].to_numpy(dtype=int)
    ids = index.loc[rows, "record_id"].tolist()
    tasks, files = [], {}
    for severity in severities:
        folder = out_dir / f"severity_{severity:g}"
        folder.mkdir(parents=True, exist_ok=True)
        files[severity] = [folder / f"{record_id}.jpg" for record_id in ids]
        tasks += [(row, path, 7919 * int(row) + int(100 * severity), severity)
                  for row, path in zip(rows, files[severity]) if not path.exists()]
    if tasks:
        signals = read_signals(prepared, [int(t[0]) for t in tasks])
        jobs = [(signals[i], path, seed, severity) for i, (_, path, seed, severity) in enumerate(tasks)]
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for _ in tqdm(pool.map(_photograph, jobs), total=len(jobs), desc="photographed sheets"):
                pass
    return files, labels


@contextmanager
def grid_lines_only():
    """predict's page crop as it was before the plot-area step (forked readers inherit it)."""
    original = page_reader.find_plot_area
    page_reader.find_plot_area = lambda image, **kwargs: None
    try:
        yield
    finally:
        page_reader.find_plot_area = original


def crop_height_share(path: Path) -> float:
    """Share of the straightened sheet's height that the page crop keeps."""
    image = page_reader.load_image(path)
    _, _, _, sheet = page_reader.check_page(image)
    _, steps = page_reader.prepare_page(image, 64, 178, debug=True, sheet=sheet)
    return steps.images["grid"].shape[0] / steps.images["deskewed"].shape[0]


def score(files: list[Path], labels: np.ndarray, classifier, *, ecg_check: bool = True,
          subsets: dict[str, list[int]] | None = None) -> tuple[dict[str, dict], list[int]]:
    """Metrics of the files predict classifies, macro F1 at the model's own per-class thresholds
    beside AUROC; with ``subsets``, the same for each named list of file indices too (one read).
    Returns those rows (``"all"`` and each subset) and the indices of the files predict refused."""
    from vizecg.predict import predict_files

    results = predict_files(files, classifier, ecg_check=ecg_check, progress=False)
    refused = [i for i, r in enumerate(results) if not r.probabilities]
    errors = collections.Counter(r.error.split(": ", 1)[1].split(":")[0].split(" (")[0] for r in results if r.error)
    rows = {}
    for name, indices in {"all": list(range(len(files))), **(subsets or {})}.items():
        kept = [i for i in indices if results[i].probabilities]
        if not kept:  # every file of the set refused: nothing to score
            rows[name] = {"files": len(indices), "refused": len(indices), "macro_auroc": float("nan"),
                          "macro_f1": float("nan"), "per_class_auroc": {}}
            continue
        p = np.array([[results[i].probabilities[c] for c in LABELS] for i in kept])
        metrics = classification_metrics(labels[kept], p, classifier.thresholds)
        rows[name] = {"files": len(indices), "refused": len(indices) - len(kept),
                      "positives": dict(zip(LABELS, labels[kept].sum(axis=0).tolist())),
                      "macro_auroc": round(metrics["auroc"], 4), "macro_f1": round(metrics["f1"], 4),
                      "per_class_auroc": {c: round(metrics["per_class"][c]["auroc"], 4) for c in LABELS}}
    rows["all"]["errors"] = dict(errors)
    return rows, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, default=None, help="prepared HDF5 (default: the study's, data/)")
    parser.add_argument("--records", type=int, default=80)
    parser.add_argument("--severities", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--work", type=Path, default=Path("data/benchmarks/sheet_photos"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--check-off", action="store_true",
                        help="also read every photo, and the ones the ECG-page check refuses, with the check off")
    parser.add_argument("--out", type=Path, default=Path("reports/metrics/sheet_photos.json"))
    args = parser.parse_args()

    from vizecg.predict import load_classifier
    from vizecg.shipped_model import weights_provenance
    from vizecg.study.runs import prepared_file

    start = time.perf_counter()
    prepared = args.prepared or prepared_file("data")
    files, labels = write_photos(prepared, args.work, args.records, args.severities, args.workers)
    classifier = load_classifier(None, device="cpu")
    out = {"command": f"python benchmarks/sheet_photos.py --records {args.records} --severities "
                      + " ".join(f"{s:g}" for s in args.severities)
                      + (" --check-off" if args.check_off else ""),
           "model": Path(classifier.checkpoint).parent.name, "weights": weights_provenance(classifier.checkpoint),
           "severities": {}}
    for severity in args.severities:
        with grid_lines_only():
            before = score(files[severity], labels, classifier)[0]["all"]
            before["crop_below_80pct_of_sheet_height"] = sum(crop_height_share(f) < 0.8 for f in files[severity])
        after_rows, refused = score(files[severity], labels, classifier)
        after = after_rows["all"]
        after["crop_below_80pct_of_sheet_height"] = sum(crop_height_share(f) < 0.8 for f in files[severity])
        rows = {"grid lines only (before)": before, "grid lines and plot area": after}
        if args.check_off:
            # what the check's refusals keep from the user: the same photos read with --no-ecg-check
            unchecked, _ = score(files[severity], labels, classifier, ecg_check=False, subsets={"refused": refused})
            rows["no ECG-page check, every photo"] = unchecked["all"]
            if refused:
                rows["no ECG-page check, the photos the check refuses"] = unchecked["refused"]
        out["severities"][f"{severity:g}"] = rows
        for name, row in rows.items():
            print(f"severity {severity:g}  {name:48s} files {row['files']:3d} refused {row['refused']:3d}  "
                  f"macro AUROC {row['macro_auroc']:.3f}  F1 {row['macro_f1']:.3f}  "
                  + " ".join(f"{c} {v:.2f}" for c, v in row["per_class_auroc"].items())
                  + (f"  errors {row['errors']}" if row.get("errors") else ""))
    print(f"{time.perf_counter() - start:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
