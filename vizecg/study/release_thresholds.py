"""The shipped model's per-class thresholds, tuned on pages as users hold them.

The release run tunes its thresholds on validation pages from the study's fast renderer, read
through predict's page preparation. Those travel badly: on photographed pages the bundle-branch
block probabilities sit lower than on clean PNGs, so cuts tuned on clean pages (RBBB 0.86, LBBB
0.94) miss most blocks in photos. Nothing at prediction time says which kind of file a page is
(a JPEG may be a scan, a PNG a screenshot of a photo), so one cut per class has to serve every
route a page can take to the model.

This step draws every validation record of the prepared set as the three files of
:data:`vizecg.study.rendering.PAGE_VARIANTS` (an ecg_plot 0.2.8 PNG, a phone photo of it, a
photographed A4 print of it), sends them through :func:`vizecg.predict.predict_files` exactly as
a user's files go, and tunes one F1-maximising threshold per class on the three routes pooled.
The thresholds tuned on each route alone and the release run's own are kept in ``model.json``
(``threshold_tuning``) so the choice can be checked.

    python -m vizecg.study.release_thresholds models/vizecgnet_image --prepared data/prepared/dataset.h5 \
        --pages data/release_validation_pages

A rerun reuses pages already drawn for the same validation records (``labels.csv`` must match
the prepared set's validation split) and redraws them otherwise.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from vizecg.contract import LABELS
from vizecg.data.prepared import read_index
from vizecg.evaluation.metrics import tune_thresholds

SPLIT = "val"
POOLED = "pooled"


def split_labels(prepared: str | Path, split: str = SPLIT) -> pd.DataFrame:
    """``file`` (record id) and the six labels of every record of ``split``, in file order."""
    index = read_index(prepared)
    rows = index[index["split"] == split]
    return rows[["record_id", *LABELS]].rename(columns={"record_id": "file"}).reset_index(drop=True)


def labels_match(pages_dir: Path, expected: pd.DataFrame) -> bool:
    """Whether ``pages_dir/labels.csv`` lists exactly ``expected``'s records with the same labels."""
    labels_file = pages_dir / "labels.csv"
    if not labels_file.is_file():
        return False
    stored = pd.read_csv(labels_file)
    return list(stored.columns) == list(expected.columns) and stored.astype(str).equals(expected.astype(str))


def pages_match(pages_dir: Path, expected: pd.DataFrame) -> bool:
    """Whether ``pages_dir`` already holds every page of ``expected``'s records with the same labels."""
    from vizecg.study.rendering import PAGE_VARIANTS, page_path

    return labels_match(pages_dir, expected) and all(
        page_path(pages_dir, variant, name).is_file() for variant in PAGE_VARIANTS for name in expected["file"])


def ensure_pages(prepared: str | Path, pages_dir: str | Path, *, seed: int = 0, workers: int = 2) -> pd.DataFrame:
    """The validation records drawn as every page variant under ``pages_dir``; drawn only if missing or stale."""
    import shutil

    from vizecg.study.rendering import PAGE_VARIANTS, write_ecg_plot_pages

    pages_dir = Path(pages_dir)
    expected = split_labels(prepared)
    if not pages_match(pages_dir, expected):
        if (pages_dir / "labels.csv").is_file() and not labels_match(pages_dir, expected):
            # pages of another prepared set: write_ecg_plot_pages keeps any page file that exists
            for variant in PAGE_VARIANTS:
                shutil.rmtree(pages_dir / variant, ignore_errors=True)
        write_ecg_plot_pages(prepared, pages_dir, None, seed=seed, workers=workers, split=SPLIT)
    return expected


def page_probabilities(classifier, pages_dir: str | Path, *, progress: bool = True) -> pd.DataFrame:
    """predict's output on every page of every variant under ``pages_dir``: one row per file with
    ``variant``, ``file`` (record id), ``error`` (None when scored), the labels (truth, from
    ``labels.csv``) and ``p_<label>`` (NaN where refused)."""
    from vizecg.page_reader import image_files_in
    from vizecg.predict import predict_files
    from vizecg.study.rendering import PAGE_VARIANTS

    pages_dir = Path(pages_dir)
    truth = pd.read_csv(pages_dir / "labels.csv").set_index("file")
    frames = []
    for variant in PAGE_VARIANTS:
        files = image_files_in(pages_dir / variant)
        results = predict_files(files, classifier, progress=progress)
        rows = []
        for result in results:
            name = Path(result.file).stem
            row = {"variant": variant, "file": name, "error": result.error,
                   **truth.loc[name, list(LABELS)].astype(int).to_dict()}
            row.update({f"p_{label}": (result.probabilities or {}).get(label, np.nan) for label in LABELS})
            rows.append(row)
        frames.append(pd.DataFrame(rows))
    return pd.concat(frames, ignore_index=True)


def scored(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Truth ``(N, 6)`` and probabilities ``(N, 6)`` of the rows predict scored (refused rows dropped)."""
    kept = frame[frame["error"].isna()]
    return kept[list(LABELS)].to_numpy(dtype=int), kept[[f"p_{label}" for label in LABELS]].to_numpy(dtype=float)


def tuned_by_route(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """F1-maximising thresholds (LABELS order) for each variant alone and for all of them pooled."""
    routes = {variant: tune_thresholds(*scored(part)) for variant, part in frame.groupby("variant", sort=False)}
    routes[POOLED] = tune_thresholds(*scored(frame))
    return routes


def _as_dict(values: np.ndarray) -> dict[str, float]:
    return {label: float(value) for label, value in zip(LABELS, values)}


def write_release_thresholds(model_dir: str | Path, frame: pd.DataFrame) -> dict:
    """Set ``model_dir``'s thresholds to the pooled ones of :func:`tuned_by_route` and record how
    (``threshold_tuning``); returns the ``model.json`` document written."""
    from vizecg.shipped_model import read_shipped_meta, shipped_meta_path, update_shipped_meta
    from vizecg.study.rendering import PAGE_VARIANTS

    meta = read_shipped_meta(model_dir)
    previous = meta.get("threshold_tuning", {}).get("release_run") or {
        "thresholds": meta.get("thresholds"), "source": meta.get("thresholds_source")}
    routes = tuned_by_route(frame)
    counts = frame.groupby("variant", sort=False)["error"].agg(files="size", refused=lambda e: int(e.notna().sum()))
    tuning = {
        "split": SPLIT,
        "records": int(frame["file"].nunique()),
        "routes": {variant: {"what": PAGE_VARIANTS[variant].what, "files": int(counts.loc[variant, "files"]),
                             "refused": int(counts.loc[variant, "refused"]), "thresholds": _as_dict(routes[variant])}
                   for variant in PAGE_VARIANTS if variant in counts.index},
        "release_run": previous,
        "command": "python -m vizecg.study.release_thresholds",
    }
    return update_shipped_meta(shipped_meta_path(model_dir), {
        "thresholds": _as_dict(routes[POOLED]),
        "thresholds_source": (f"F1-maximising per class on the {tuning['records']} validation records drawn by "
                              f"ecg_plot 0.2.8, read through predict as PNG, phone photo and photographed A4 "
                              f"print, pooled (threshold_tuning)"),
        "threshold_tuning": tuning,
    })


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vizecg.study.release_thresholds", description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path, help="shipped-model folder whose model.json gets the thresholds")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared/dataset.h5"),
                        help="prepared dataset (its validation split is drawn)")
    parser.add_argument("--pages", type=Path, default=Path("data/release_validation_pages"),
                        help="where the validation pages are drawn (reused when current)")
    parser.add_argument("--probabilities", type=Path, default=None,
                        help="also write predict's per-file output here (CSV)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="processes drawing the pages")
    return parser


def main(argv: list[str] | None = None) -> int:
    from vizecg.predict import load_classifier

    args = build_parser().parse_args(argv)
    ensure_pages(args.prepared, args.pages, seed=args.seed, workers=args.workers)
    classifier = load_classifier(args.model_dir, device="cpu")
    frame = page_probabilities(classifier, args.pages)
    if args.probabilities is not None:
        args.probabilities.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.probabilities, index=False)
    meta = write_release_thresholds(args.model_dir, frame)
    tuning, thresholds = meta["threshold_tuning"], meta["thresholds"]
    print(f"{args.model_dir}: thresholds from {tuning['records']} validation records x "
          f"{len(tuning['routes'])} routes: " + ", ".join(f"{label} {thresholds[label]:.3f}" for label in LABELS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
