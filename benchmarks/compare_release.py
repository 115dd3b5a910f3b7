"""A release candidate against the shipped model, on the same pages: should its weights replace the shipped ones?

    python benchmarks/compare_release.py CANDIDATE_DIR [--baseline models/vizecgnet_image] [--test-records 1000]

Both are shipped-model folders (``python -m vizecg.shipped_model best.pt DIR`` writes one from a
release run). Each look of the model card (the synthetic test's first ``--test-records`` records as
the paper page, the clinical 3x4 and the rhythm 12x1 layouts, phone photos of the paper page at
severity 0.25 and 0.5), the photographed A4 print at 0.5 and the paper page of the record cut to
the 7 s exam CODE-15% stores (centred, zeros around) is drawn once, at twice the input and
read back by predict's ``prepare_page``; both models score the same arrays (where their input sizes
differ, each model gets the same records in the same look drawn at its own size). Per look: macro and
per-class AUROC of each, and the paired bootstrap interval of the difference in macro AUROC
(candidate minus baseline). LUDB (real ECGs, external) is scored the same way in the paper look and
reported beside, never used to decide.

The decision rule is fixed here, before any candidate is scored: **replace** when the candidate's
mean macro AUROC over the synthetic looks is higher and no look is worse beyond its paired 95 %
interval. The 7 s look joined the rule before the first candidate trained on 7 s exams was scored
(``runs.vizecgnet_release_short_exams``); earlier comparisons decided on the first six. AUROC only:
F1 depends on thresholds, which are tuned after the decision (``vizecg.study.release_thresholds``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vizecg.contract import LABELS  # noqa: E402
from vizecg.data.dataset import ECGDataset  # noqa: E402
from vizecg.evaluation.bootstrap import AUROCMetric, bootstrap_ci, paired_difference_ci  # noqa: E402
from vizecg.evaluation.metrics import per_class_auroc  # noqa: E402
from vizecg.predict import load_classifier  # noqa: E402
from vizecg.render.training import VALIDATION_ROUTES, RouteMixRenderer  # noqa: E402
from vizecg.study.shipped_card import card_looks, card_renderer, conditions  # noqa: E402

SHEET_PHOTO = "A4 print photographed on a desk, severity 0.5"
SEVERITIES = (0.25, 0.5)


def looks(height: int, width: int) -> dict[str, object]:
    """Look name -> renderer: the model card's looks (the 7 s exam among them) and the photographed print."""
    out = card_looks(height, width, SEVERITIES)
    out[SHEET_PHOTO] = RouteMixRenderer(height, width, severity=0.5, render_scale=2.0).renderers["sheet_photo"]
    return out


LOOK_NAMES = [name for name, *_ in conditions(SEVERITIES)] + [SHEET_PHOTO]


def drawn_pages(path: Path, renderer, n: int | None, workers: int,
                split: str = "test") -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """(images (N, 3, H, W), labels (N, 6), file rows (N,)) of ``split`` of ``path``, drawn once; the
    row is what picks a route-mixing renderer's route."""
    dataset = ECGDataset(path, split, decimate=4, image_renderer=renderer)
    labels = dataset.labels
    if n is not None and len(dataset) > n:
        dataset, labels = Subset(dataset, range(n)), labels[:n]
    batches = list(DataLoader(dataset, batch_size=32, num_workers=workers))
    return (torch.cat([batch["image"] for batch in batches]), np.asarray(labels),
            torch.cat([batch["index"] for batch in batches]).numpy())


def pages_per_model(models: dict, draw) -> tuple[dict[str, torch.Tensor], np.ndarray, np.ndarray]:
    """({model name: images}, labels, file rows): ``draw(height, width)`` once per input size among
    ``models``, so models of one size score the same arrays and models of two sizes the same records."""
    drawn: dict[tuple[int, int], tuple] = {}
    for classifier in models.values():
        size = (classifier.image_height, classifier.image_width)
        if size not in drawn:
            drawn[size] = draw(*size)
    (_, labels, rows), *others = drawn.values()
    for _, other_labels, other_rows in others:
        if not (np.array_equal(other_labels, labels) and np.array_equal(other_rows, rows)):
            raise RuntimeError("pages drawn at the two input sizes are not of the same records")
    images = {name: drawn[(c.image_height, c.image_width)][0] for name, c in models.items()}
    return images, labels, rows


def validation_by_route(models: dict, prepared: Path, workers: int, n_boot: int) -> dict:
    """Both models on the release run's validation pages, over all routes and per route."""
    from vizecg.study.config import load_params, params_for_run
    from vizecg.study.runs import image_renderer

    release = params_for_run(load_params(profile="default"), "vizecgnet_release")

    def renderer_at(height: int, width: int):
        sized = {**release, "input": {**release["input"], "image_height": height, "image_width": width}}
        return image_renderer(sized, train=False, split="val")

    images, labels, rows = pages_per_model(
        models, lambda height, width: drawn_pages(prepared, renderer_at(height, width), None, workers, split="val"))
    routing = renderer_at(*images[next(iter(models))].shape[-2:])  # a record's route does not depend on the size
    routes = np.array([routing.route(row) for row in rows])
    out = {"all routes": scored(models, images, labels, n_boot)}
    for route in VALIDATION_ROUTES:
        part = torch.from_numpy(routes == route)
        out[route] = scored(models, {name: pages[part] for name, pages in images.items()}, labels[part.numpy()],
                            n_boot)
    for look, entry in out.items():
        for name in models:
            print(f"validation, {look}, {name}: macro {entry[name]['macro_auroc']:.3f} "
                  f"{entry[name]['per_class_auroc']}", flush=True)
    return out


def scored(models: dict, images: dict[str, torch.Tensor], labels: np.ndarray, n_boot: int) -> dict:
    """Each model on its pages (``images[name]``, the same records for every model)."""
    probs = {}
    for name, classifier in models.items():
        pages = images[name]
        probs[name] = np.concatenate([classifier.probabilities(pages[i:i + 64].numpy())
                                      for i in range(0, len(pages), 64)])
    macro = AUROCMetric()
    row = {"n": int(len(labels)), "positives": dict(zip(LABELS, labels.sum(0).astype(int).tolist()))}
    for name, p in probs.items():
        low, high = bootstrap_ci(labels, p, macro, n_boot=n_boot)
        row[name] = {"macro_auroc": macro(labels, p), "ci": [low, high],
                     "per_class_auroc": dict(zip(LABELS, np.round(per_class_auroc(labels, p), 4).tolist()))}
    row["difference"] = paired_difference_ci(labels, probs["candidate"], probs["baseline"], macro, n_boot=n_boot)
    return row


def score_test_looks(models: dict, args: argparse.Namespace) -> dict:
    """Both models on the synthetic test looks and LUDB, and the decision of the rule in the docstring."""
    result: dict = {"synthetic test": {}, "LUDB": {}}
    for name in LOOK_NAMES:
        images, labels, _ = pages_per_model(models, lambda height, width: drawn_pages(
            args.prepared, looks(height, width)[name], args.test_records, args.workers))
        result["synthetic test"][name] = row = scored(models, images, labels, args.n_boot)
        print(f"{name}: candidate {row['candidate']['macro_auroc']:.3f}, baseline {row['baseline']['macro_auroc']:.3f}, "
              f"difference {row['difference']['difference']:+.3f} {row['difference']['ci']}", flush=True)
    if args.ludb.is_file():
        images, labels, _ = pages_per_model(models, lambda height, width: drawn_pages(
            args.ludb, card_renderer(height, width, "paper", 0.0), None, args.workers))
        result["LUDB"]["paper (ecg_plot look)"] = row = scored(models, images, labels, args.n_boot)
        print(f"LUDB paper: candidate {row['candidate']['macro_auroc']:.3f}, baseline "
              f"{row['baseline']['macro_auroc']:.3f}", flush=True)
    synthetic = result["synthetic test"].values()
    means = {name: float(np.mean([row[name]["macro_auroc"] for row in synthetic])) for name in models}
    worse = [look for look, row in result["synthetic test"].items() if row["difference"]["ci"][1] < 0]
    result["decision"] = {"mean_macro_auroc": means, "looks_worse_beyond_ci": worse,
                          "replace": bool(means["candidate"] > means["baseline"] and not worse),
                          "rule": "replace when the mean macro AUROC over the synthetic looks is higher and no look "
                                  "is worse beyond its paired 95% bootstrap interval"}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidate", type=Path, help="shipped-model folder of the candidate")
    parser.add_argument("--baseline", type=Path, default=Path("models/vizecgnet_image"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared/dataset.h5"))
    parser.add_argument("--ludb", type=Path, default=Path("data/ludb/dataset.h5"),
                        help="LUDB in the prepared layout (written by the model card stage; skipped when absent)")
    parser.add_argument("--test-records", type=int, default=1000)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("reports/metrics/release_candidate.json"))
    parser.add_argument("--validation", action="store_true",
                        help="score instead on the validation pages the release run selects its checkpoint on "
                             "(the three routes, drawn as params.yaml's run sets them); no decision is made there")
    args = parser.parse_args(argv)

    torch.set_num_threads(2)
    start = time.perf_counter()
    models = {"candidate": load_classifier(args.candidate, device="cpu"),
              "baseline": load_classifier(args.baseline, device="cpu")}
    result = {"command": "python benchmarks/compare_release.py " + " ".join(argv or sys.argv[1:]),
              "candidate": str(args.candidate), "baseline": str(args.baseline)}
    if args.validation:
        result["validation (routes)"] = validation_by_route(models, args.prepared, args.workers, args.n_boot)
    else:
        result.update(score_test_looks(models, args))
        print(json.dumps(result["decision"], indent=1))
    result["seconds"] = round(time.perf_counter() - start, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
