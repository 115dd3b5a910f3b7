"""How well each label of the synthetic data can be ranked by the one parameter that defines it.

    python benchmarks/label_ceiling.py [--records 20000] [--out reports/metrics/label_ceiling.json]

The generator labels a record from its simulated parameters (1dAVb: PR > 200 ms; SB / ST: sinus rate
below 60 / above 100 bpm; RBBB / LBBB: a wide QRS with the block's conduction pattern; AF: the
rhythm). This script draws those parameters for the validation/test seed of the study (0, the same
records the prepared file holds, plus more) without drawing the signals, and scores each label by its
parameter alone: the AUROC of an ideal reader of that measurement, and of readers that measure it with
a Gaussian error of a few milliseconds or beats per minute. A model far below this ceiling is limited by
what it learnt or by what the page shows at its resolution, not by the labels.

Then the same rules read the generated *signals* through :mod:`vizecg.data.ecg_measurements` (R peaks,
median beat, PR and QRS from it), at 400 Hz and after the decimation the profiles train signal models at
(``--decimate``, 4 in ``default``: 100 Hz): what a rule-based reader of the signal gets, so whether the
information a signal model needs survives the decimation.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly
from sklearn.metrics import roc_auc_score

from vizecg.contract import LABELS
from vizecg.data.ecg_measurements import measure_records
from vizecg.data.synthetic import defining_parameters, generate

# Label -> (parameter, sign: +1 when a larger value means the label, the records it is defined over).
RULES = {
    "1dAVb": ("pr_ms", +1),
    "SB": ("heart_rate_bpm", -1),
    "ST": ("heart_rate_bpm", +1),
    "RBBB": ("qrs_ms", +1),
    "LBBB": ("qrs_ms", +1),
}
ERRORS = {"pr_ms": (10.0, 20.0, 30.0), "qrs_ms": (10.0, 20.0), "heart_rate_bpm": (2.0, 5.0)}
# The same parameters as vizecg.data.ecg_measurements names them.
MEASURED = {"pr_ms": "pr_interval_ms", "qrs_ms": "qrs_duration_ms", "heart_rate_bpm": "heart_rate_bpm"}


def ceiling(records: int, seed: int, noise_seed: int = 1) -> dict:
    table = defining_parameters(records, seed)
    rng = np.random.default_rng(noise_seed)
    out = {}
    for label, (column, sign) in RULES.items():
        value = table[column].fillna(0.0).to_numpy(float)
        # AF records have no PR interval and no sinus rate: a PR or sinus-rate reader calls them
        # negative (the lowest score), which is what the labels say (1dAVb, SB and ST need sinus rhythm).
        no_reading = (table["AF"] == 1).to_numpy() if column in ("pr_ms", "heart_rate_bpm") else np.zeros(len(table), bool)

        def auroc(measured: np.ndarray) -> float:
            score = np.where(no_reading, -1e9, sign * measured)
            return round(float(roc_auc_score(table[label], score)), 4)

        result = {"parameter": column, "positives": int(table[label].sum()), "auroc_exact": auroc(value)}
        for error in ERRORS[column]:
            result[f"auroc_error_{error:g}"] = auroc(value + rng.normal(0.0, error, value.size))
        out[label] = result
    # RBBB and LBBB share the QRS width: the width alone cannot tell them apart, so its AUROC for
    # each is limited by the other block; the morphology (V1 / V6) separates them.
    return {"records": records, "seed": seed, "labels": out,
            "note": "AF is defined by the rhythm itself (no scalar parameter); RBBB/LBBB by QRS width "
                    "alone, which the other block shares"}


def measured_from_signals(records: int, seed: int, decimate: int, start: int = 0) -> dict:
    """Per-label AUROC of :data:`RULES` applied to parameters measured from the generated signals."""
    signals, labels = generate(records, seed, start=start)
    # Decimated as the training Dataset does (polyphase FIR), then back to 400 Hz for the
    # measurement code: only what the lower rate keeps survives the round trip.
    decimated = np.stack([resample_poly(resample_poly(s, 1, decimate, axis=0), decimate, 1, axis=0)[: s.shape[0]]
                          for s in signals]).astype(np.float32)
    out = {}
    for rate, batch in ((400, signals), (400 // decimate, decimated)):
        table = measure_records(batch, progress=True)
        rows = {}
        for label, (column, sign) in RULES.items():
            value = table[MEASURED[column]].to_numpy(float)
            # unmeasurable (no P wave found, too few beats): the lowest score, as AF has no PR
            score = np.where(np.isnan(value), -1e9, sign * value)
            rows[label] = round(float(roc_auc_score(labels[:, LABELS.index(label)], score)), 4)
        out[f"{rate}_hz"] = rows
    return {"records": records, "seed": seed, "start": start, "decimate": decimate, "auroc": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0, help="synthetic dataset seed (0: the prepared file's)")
    parser.add_argument("--measured-records", type=int, default=1000, help="records whose signals are measured")
    parser.add_argument("--decimate", type=int, default=4, help="the profile's signal decimation (default: 4)")
    parser.add_argument("--out", type=Path, default=Path("reports/metrics/label_ceiling.json"))
    args = parser.parse_args()
    result = {"command": f"python benchmarks/label_ceiling.py --records {args.records} --seed {args.seed} "
                         f"--measured-records {args.measured_records} --decimate {args.decimate}",
              **ceiling(args.records, args.seed)}
    # records of the same seed past those the prepared file could hold, so none is reused
    result["measured_from_signals"] = measured_from_signals(args.measured_records, args.seed, args.decimate,
                                                            start=args.records)
    for label, row in result["labels"].items():
        errors = ", ".join(f"{k[12:]}: {v:.3f}" for k, v in row.items() if k.startswith("auroc_error_"))
        print(f"{label:6s} by {row['parameter']:15s} exact {row['auroc_exact']:.3f}   with error {errors}")
    for rate, rows in result["measured_from_signals"]["auroc"].items():
        print(f"measured from the signals at {rate.replace('_', ' ')}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
