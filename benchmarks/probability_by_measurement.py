"""Does the shipped model's probability follow the measurement that defines its class?

Each of 1dAVb (PR interval), SB and ST (heart rate) rests on one number. This script draws records in
the paper look (the model card's renderer, read through predict's page preparation), measures that
number from the *signal* (``vizecg.data.ecg_measurements``), and prints the model's mean probability
and the share of positives in bins of it, on the synthetic test records and on LUDB (external: never
used to choose anything). A class whose probability stays flat across the bins where its label flips
is one the model does not read from the page.

    python benchmarks/probability_by_measurement.py --out reports/metrics/probability_by_measurement.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from torch.utils.data import Subset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vizecg.contract import LABELS  # noqa: E402
from vizecg.data.dataset import ECGDataset  # noqa: E402
from vizecg.data.ecg_measurements import measure_records  # noqa: E402
from vizecg.data.prepared import read_index, read_signals  # noqa: E402
from vizecg.evaluation import predict_probs  # noqa: E402
from vizecg.predict import load_classifier  # noqa: E402
from vizecg.shipped_model import read_shipped_meta, weights_provenance  # noqa: E402
from vizecg.study.shipped_card import card_renderer  # noqa: E402

#: class -> (measurement column, bin edges); the label's threshold is one of the edges
BINS = {
    "1dAVb": ("pr_interval_ms", [0, 140, 160, 180, 200, 220, 250, 1000]),
    "SB": ("heart_rate_bpm", [0, 50, 55, 60, 65, 70, 80, 300]),
    "ST": ("heart_rate_bpm", [0, 70, 80, 90, 100, 110, 120, 300]),
}


def probabilities_and_measurements(classifier, meta: dict, ecg_file: Path, records: int | None) -> pd.DataFrame:
    """One row per test record of ``ecg_file``: its measurements, labels and the model's probabilities."""
    height, width = meta["input"]["image_height"], meta["input"]["image_width"]
    dataset = ECGDataset(ecg_file, "test", decimate=4, image_renderer=card_renderer(height, width, "paper", 0.0, 0))
    index = read_index(ecg_file)
    rows = index.index[index["split"] == "test"].to_numpy()
    take = np.arange(len(rows) if records is None else min(records, len(rows)))
    probs = predict_probs(classifier.model, Subset(dataset, take), inputs=("image",), batch_size=32, device="cpu",
                          num_workers=2)
    measured = measure_records(read_signals(ecg_file, rows[take])).reset_index(drop=True)
    return pd.concat([measured, pd.DataFrame(probs, columns=[f"p_{label}" for label in LABELS]),
                      pd.DataFrame(dataset.labels[take], columns=LABELS)], axis=1)


def binned(frame: pd.DataFrame) -> dict:
    """Per class: per bin of its measurement, records, share of positives and mean probability."""
    out = {}
    for label, (column, edges) in BINS.items():
        part = frame[np.isfinite(frame[column])]
        groups = part.groupby(pd.cut(part[column], edges, right=False), observed=False)
        out[label] = {"measurement": column,
                      "spearman": float(spearmanr(part[f"p_{label}"], part[column])[0]),
                      "bins": [{"bin": str(interval), "records": int(len(group)),
                                "positive_share": float(group[label].mean()) if len(group) else None,
                                "mean_probability": float(group[f"p_{label}"].mean()) if len(group) else None}
                               for interval, group in groups]}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/vizecgnet_image"))
    parser.add_argument("--synthetic", type=Path, default=Path("data/prepared/dataset.h5"))
    parser.add_argument("--ludb", type=Path, default=Path("data/ludb/dataset.h5"),
                        help="LUDB prepared by the study (dvc repro); left out if absent")
    parser.add_argument("--records", type=int, default=600, help="synthetic test records")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    classifier = load_classifier(args.model, device="cpu")
    meta = read_shipped_meta(args.model / "model.json")
    result = {"command": "python benchmarks/probability_by_measurement.py " + " ".join(argv or sys.argv[1:]),
              "model": str(args.model), "weights": weights_provenance(args.model)}
    sources = [("synthetic test", args.synthetic, args.records)]
    if args.ludb.exists():
        sources.append(("LUDB (external)", args.ludb, None))
    else:
        print(f"{args.ludb} is absent: LUDB left out")
    for name, path, records in sources:
        result[name] = binned(probabilities_and_measurements(classifier, meta, path, records))
        for label, entry in result[name].items():
            print(f"\n{name}, {label} by {entry['measurement']} (Spearman {entry['spearman']:+.2f})")
            print(pd.DataFrame(entry["bins"]).round(3).to_string(index=False))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
