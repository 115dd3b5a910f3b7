"""Do steadier estimates of the per-class cuts travel better between page routes than the F1 maximum?

    python benchmarks/threshold_estimators.py [PROBABILITIES_CSV] [--splits 10] [--out reports/metrics/threshold_estimators.json]

A near-separable class has a wide range of cuts with almost the best validation F1, and the F1
maximum (``vizecg.evaluation.metrics.tune_thresholds``) can land at either end of it, next to one
class's scores, where any shift between the pages tuned on and the pages read moves the errors most.
Three other estimates are compared with it: the centre (in logit) of the cuts within 0.01 or 0.02
of the best F1, and the median of the F1-maximising cuts over 200 bootstrap resamples.

Input: the validation page probabilities that ``vizecg.study.release_thresholds`` writes beside a
release run (``validation_page_probabilities.csv``: one row per record and route). For each of
``--splits`` random halves of the records, cuts are tuned on one half of one route (or of all routes
pooled, as shipped) and F1 is measured on the other half of every route: the same route (no shift) and
the other routes (a shift of the kind the estimates are meant to survive). Nothing is tuned on LUDB.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vizecg.contract import LABELS  # noqa: E402
from vizecg.evaluation.metrics import f1_by_threshold, tune_thresholds  # noqa: E402

POOLED = "pooled"


def _logit(p: np.ndarray | float) -> np.ndarray:
    return logit(np.clip(p, 1e-6, 1 - 1e-6))


def plateau_centre(y: np.ndarray, p: np.ndarray, tolerance: float) -> np.ndarray:
    """Per class, the logit-midpoint of the cuts whose F1 is within ``tolerance`` of the best."""
    cuts = []
    for c in range(y.shape[1]):
        candidates, f1 = f1_by_threshold(y[:, c], p[:, c])
        near = candidates[f1 >= f1.max() - tolerance]
        cuts.append(float(expit(0.5 * (_logit(near.min()) + _logit(near.max())))))
    return np.asarray(cuts)


def bagged(y: np.ndarray, p: np.ndarray, resamples: int = 200, seed: int = 0) -> np.ndarray:
    """The median (in logit) of the F1-maximising cuts over bootstrap resamples of the records."""
    rng = np.random.default_rng(seed)
    draws = [_logit(tune_thresholds(y[i], p[i])) for i in (rng.integers(0, len(y), len(y)) for _ in range(resamples))]
    return expit(np.median(draws, axis=0))


ESTIMATES = {
    "F1 maximum (shipped)": tune_thresholds,
    "centre of F1 within 0.01": lambda y, p: plateau_centre(y, p, 0.01),
    "centre of F1 within 0.02": lambda y, p: plateau_centre(y, p, 0.02),
    "bootstrap median": bagged,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("probabilities", type=Path, nargs="?",
                        default=Path("data/models/vizecgnet_release_sheet_photos/validation_page_probabilities.csv"))
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("reports/metrics/threshold_estimators.json"))
    args = parser.parse_args()

    frame = pd.read_csv(args.probabilities)
    frame = frame[frame["error"].isna()]
    labels, scores = list(LABELS), [f"p_{label}" for label in LABELS]
    routes = list(dict.fromkeys(frame["variant"]))
    records = np.asarray(sorted(frame["file"].unique()))
    rng = np.random.default_rng(0)
    rows = []
    for split in range(args.splits):
        tuned_half = set(rng.permutation(records)[: len(records) // 2])
        tuned = frame[frame["file"].isin(tuned_half)]
        held_out = frame[~frame["file"].isin(tuned_half)]
        for tuned_on in [*routes, POOLED]:
            part = tuned if tuned_on == POOLED else tuned[tuned["variant"] == tuned_on]
            for name, estimate in ESTIMATES.items():
                cuts = estimate(part[labels].to_numpy(), part[scores].to_numpy())
                for read_on in routes:
                    page = held_out[held_out["variant"] == read_on]
                    y, p = page[labels].to_numpy(), page[scores].to_numpy()
                    f1 = [f1_score(y[:, c], p[:, c] >= cuts[c], zero_division=0) for c in range(len(labels))]
                    rows.append({"split": split, "estimate": name, "tuned_on": tuned_on, "read_on": read_on,
                                 "macro_f1": float(np.mean(f1))})
    results = pd.DataFrame(rows)
    summary = {}
    for name, part in results.groupby("estimate", sort=False):
        by_route = part[part["tuned_on"] != POOLED]
        summary[name] = {
            "same route": round(float(by_route[by_route["tuned_on"] == by_route["read_on"]]["macro_f1"].mean()), 4),
            "other route": round(float(by_route[by_route["tuned_on"] != by_route["read_on"]]["macro_f1"].mean()), 4),
            "pooled routes (as shipped)": round(float(part[part["tuned_on"] == POOLED]["macro_f1"].mean()), 4)}
        print(f"{name:28s} " + "  ".join(f"{k} {v:.4f}" for k, v in summary[name].items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": f"python benchmarks/threshold_estimators.py {args.probabilities} "
                                               f"--splits {args.splits}",
                                    "records": int(records.size), "routes": routes,
                                    "mean_macro_f1_on_held_out_half": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
