"""Does a shipped model read 7 s exams, stored zero-padded as CODE-15% stores them, as well as 10 s ones?

    python benchmarks/short_exams.py [--model models/vizecgnet_image] [--test-records 500]
                                     [--out reports/metrics/short_exams.json]

CODE-15% (the paper's data) keeps its 7 s exams (2,800 samples at 400 Hz) centred in 4,096
samples with zeros on both sides, so an ecg_plot page of such an exam shows every lead flat for
1.6 s at both ends of its row. Each synthetic test record (and each LUDB record, external, where
``data/ludb/dataset.h5`` exists) is drawn twice in the paper look, read back by predict's page
preparation: as it is (10.24 s) and cut to its centred 7 s with the rest zeroed
(:func:`vizecg.data.preprocess.as_short_exam`). The labels do not change: a heart rate, a PR
interval or a bundle-branch block is the same over 7 s. Per look: the model's macro and per-class
AUROC, and the paired bootstrap interval of the difference (7 s minus 10 s) in macro AUROC.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compare_release import drawn_pages  # noqa: E402

from vizecg.contract import LABELS  # noqa: E402
from vizecg.data.preprocess import SHORT_EXAM_SAMPLES  # noqa: E402
from vizecg.evaluation.bootstrap import AUROCMetric, bootstrap_ci, paired_difference_ci  # noqa: E402
from vizecg.evaluation.metrics import per_class_auroc  # noqa: E402
from vizecg.predict import load_classifier  # noqa: E402
from vizecg.render.training import ShortExamRenderer  # noqa: E402
from vizecg.shipped_model import weights_provenance  # noqa: E402
from vizecg.study.shipped_card import card_renderer  # noqa: E402


def scored(classifier, pages: dict, n_boot: int) -> dict:
    """Per look: macro AUROC with its interval and per-class AUROC; the paired 7 s - 10 s difference."""
    macro = AUROCMetric()
    probs, row = {}, {}
    for look, (images, labels) in pages.items():
        probs[look] = np.concatenate([classifier.probabilities(images[i:i + 64].numpy())
                                      for i in range(0, len(images), 64)])
        low, high = bootstrap_ci(labels, probs[look], macro, n_boot=n_boot)
        row[look] = {"macro_auroc": round(macro(labels, probs[look]), 4), "ci": [round(low, 4), round(high, 4)],
                     "per_class_auroc": dict(zip(LABELS, np.round(per_class_auroc(labels, probs[look]), 4).tolist()))}
    (_, labels), *_ = pages.values()
    full, short = pages
    row["difference (7 s - 10 s)"] = paired_difference_ci(labels, probs[short], probs[full], macro, n_boot=n_boot)
    return {"n": int(len(labels)), "positives": dict(zip(LABELS, labels.sum(0).astype(int).tolist())), **row}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/vizecgnet_image"),
                        help="a shipped-model folder or best.pt (default: the shipped model)")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared/dataset.h5"))
    parser.add_argument("--ludb", type=Path, default=Path("data/ludb/dataset.h5"))
    parser.add_argument("--test-records", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-boot", type=int, default=500)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    classifier = load_classifier(args.model, device="cpu")
    height, width = classifier.image_height, classifier.image_width
    paper = card_renderer(height, width, "paper", 0.0)
    looks = {"10.24 s exam": paper, "7 s exam, zero-padded": ShortExamRenderer(paper)}
    sets = {"synthetic test": (args.prepared, args.test_records)}
    if args.ludb.is_file():
        sets["LUDB (real ECGs, external)"] = (args.ludb, None)
    result = {"command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
              "model": str(args.model), "weights": weights_provenance(args.model),
              "short_exam_samples": SHORT_EXAM_SAMPLES}
    for name, (path, n) in sets.items():
        pages = {}
        for look, renderer in looks.items():
            images, labels, _ = drawn_pages(path, renderer, n, args.workers)
            pages[look] = (images, labels)
        result[name] = row = scored(classifier, pages, args.n_boot)
        for look in looks:
            print(f"{name}, {look}: macro {row[look]['macro_auroc']:.3f} {row[look]['per_class_auroc']}", flush=True)
        difference = row["difference (7 s - 10 s)"]
        print(f"{name}: 7 s - 10 s {difference['difference']:+.3f} {difference['ci']}", flush=True)
    result["seconds"] = round(time.perf_counter() - start, 1)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
