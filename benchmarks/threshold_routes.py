"""F1 of the shipped model's threshold sets on each route a page takes to predict (test records).

    python benchmarks/threshold_routes.py [--records 400] [--model DIR] [--out reports/metrics/threshold_routes.json]

The first ``--records`` test records of the default profile's prepared file are drawn by ecg_plot
0.2.8 as the three files of :data:`vizecg.study.rendering.PAGE_VARIANTS` (PNG, phone photo of the
page, photographed A4 print) and sent through ``vizecg.predict`` once (the shipped model, or
``--model``: another shipped-model folder, to compare a candidate on the same pages). Their probabilities are
then cut by every threshold set that ``model.json`` records (``threshold_tuning``: the shipped
pooled cuts, each validation route's own cuts, the release run's), so the comparison holds the
model and the pages fixed. Nothing here is tuned: every set was tuned on validation records.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from vizecg.contract import LABELS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, default=None, help="prepared HDF5 (default: the study's, data/)")
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--work", type=Path, default=None, help="where the pages are drawn (reused)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", type=Path, default=None, help="shipped-model folder (default: the shipped model)")
    parser.add_argument("--out", type=Path, default=Path("reports/metrics/threshold_routes.json"))
    args = parser.parse_args()

    from vizecg.evaluation.metrics import classification_metrics
    from vizecg.predict import load_classifier
    from vizecg.shipped_model import read_shipped_meta, weights_provenance
    from vizecg.study.release_thresholds import page_probabilities, scored
    from vizecg.study.rendering import write_ecg_plot_pages
    from vizecg.study.runs import prepared_file

    start = time.perf_counter()
    work = args.work or Path(f"data/benchmarks/test_pages_{args.records}")
    write_ecg_plot_pages(args.prepared or prepared_file("data"), work, args.records, workers=args.workers)
    classifier = load_classifier(args.model, device="cpu")
    meta = read_shipped_meta(classifier.checkpoint)
    tuning = meta.get("threshold_tuning") or {}
    sets = {"shipped": meta["thresholds"],
            **{f"{route} alone": entry["thresholds"] for route, entry in tuning.get("routes", {}).items()}}
    if tuning.get("release_run", {}).get("thresholds"):
        sets["release run"] = tuning["release_run"]["thresholds"]
    frame = page_probabilities(classifier, work)
    command = f"python benchmarks/threshold_routes.py --records {args.records}"
    if args.work is not None:
        command += f" --work {args.work}"
    if args.model is not None:
        command += f" --model {args.model}"
    out = {"command": command,
           "model": Path(classifier.checkpoint).parent.name, "weights": weights_provenance(classifier.checkpoint),
           "thresholds": sets, "routes": {}}
    for variant, part in frame.groupby("variant", sort=False):
        y, p = scored(part)
        ranking = classification_metrics(y, p)  # AUROC: no cut involved
        row = {"files": len(part), "refused": int(part["error"].notna().sum()),
               "macro_auroc": round(ranking["auroc"], 4),
               "per_class_auroc": {label: round(ranking["per_class"][label]["auroc"], 4) for label in LABELS},
               "f1": {}}
        for name, values in sets.items():
            cut = classification_metrics(y, p, np.array([values[label] for label in LABELS]))
            per_class = {label: round(cut["per_class"][label]["f1"], 4) for label in LABELS}
            row["f1"][name] = {"macro": round(cut["f1"], 4), "per_class": per_class}
            print(f"{variant:12s} {name:18s} macro F1 {row['f1'][name]['macro']:.3f}  "
                  + " ".join(f"{c} {v:.2f}" for c, v in per_class.items()))
        out["routes"][variant] = row
    out["mean_macro_f1_over_routes"] = {name: round(float(np.mean([r["f1"][name]["macro"] for r in out["routes"].values()])), 4)
                                        for name in sets}
    print("mean macro F1 over routes:", out["mean_macro_f1_over_routes"])
    print(f"{time.perf_counter() - start:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
