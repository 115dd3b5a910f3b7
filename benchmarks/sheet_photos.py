"""The shipped model through predict on phone photos of printed sheets, with and without the plot-area crop.

    python benchmarks/sheet_photos.py [--records 80] [--severities 0.25 0.5] [--out reports/metrics/sheet_photos.json]

Test records of the default profile's prepared file (``dvc repro prepare`` writes it) are drawn
by ecg_plot 0.2.8 in the paper look, printed on A4 landscape and photographed lying on a desk
(:func:`vizecg.render.artifacts.photograph_sheet`: the sheet fills 55-90 % of the frame, tilt,
perspective, shadow, blur, noise, JPEG). An ecg_plot page (about 2.8:1) fills half of an A4
sheet's height, so a photo of the print is half blank paper. Each photo goes through
``vizecg.predict`` twice in this process: once with the page crop as it was before
:func:`vizecg.page_reader.find_plot_area` (grid lines only, :func:`find_grid_box`), once as
predict runs now. Reported per severity: files refused by the ECG-page check, macro and
per-class AUROC of the files classified, and how often the crop kept less than 80 % of the
sheet's height (the plot found).
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


def score(files: list[Path], labels: np.ndarray, classifier) -> dict:
    from vizecg.predict import predict_files

    results = predict_files(files, classifier, progress=False)
    kept = [i for i, r in enumerate(results) if r.probabilities]
    p = np.array([[results[i].probabilities[c] for c in LABELS] for i in kept])
    metrics = classification_metrics(labels[kept], p)
    errors = collections.Counter(r.error.split(": ", 1)[1].split(":")[0].split(" (")[0] for r in results if r.error)
    return {"files": len(files), "refused": len(files) - len(kept), "errors": dict(errors),
            "macro_auroc": round(metrics["auroc"], 4),
            "per_class_auroc": {c: round(metrics["per_class"][c]["auroc"], 4) for c in LABELS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, default=None, help="prepared HDF5 (default: the study's, data/)")
    parser.add_argument("--records", type=int, default=80)
    parser.add_argument("--severities", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--work", type=Path, default=Path("data/benchmarks/sheet_photos"))
    parser.add_argument("--workers", type=int, default=2)
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
                      + " ".join(f"{s:g}" for s in args.severities),
           "model": Path(classifier.checkpoint).parent.name, "weights": weights_provenance(classifier.checkpoint),
           "severities": {}}
    for severity in args.severities:
        with grid_lines_only():
            before = score(files[severity], labels, classifier)
            before["crop_below_80pct_of_sheet_height"] = sum(crop_height_share(f) < 0.8 for f in files[severity])
        after = score(files[severity], labels, classifier)
        after["crop_below_80pct_of_sheet_height"] = sum(crop_height_share(f) < 0.8 for f in files[severity])
        out["severities"][f"{severity:g}"] = {"grid lines only (before)": before, "grid lines and plot area": after}
        for name, row in out["severities"][f"{severity:g}"].items():
            print(f"severity {severity:g}  {name:26s} refused {row['refused']:3d}/{row['files']}  "
                  f"cropped to the plot {row['crop_below_80pct_of_sheet_height']:3d}  macro AUROC {row['macro_auroc']:.3f}  "
                  + " ".join(f"{c} {v:.2f}" for c, v in row["per_class_auroc"].items())
                  + (f"  errors {row['errors']}" if row["errors"] else ""))
    print(f"{time.perf_counter() - start:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
