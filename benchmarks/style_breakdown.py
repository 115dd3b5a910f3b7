"""Per-class AUROC of a learning-curve model by page style: which part of the look costs a class.

A model trained on pages of every layout and style reads 1dAVb far worse than the same network
trained on the paper look alone (notebook 8). This reads one such model's checkpoint on other
synthetic records, each drawn in its randomised style, and splits the scores by what the style
sampler chose (paper speed, layout, gain, trace width, grid), beside the same records drawn in the
paper look:

    python benchmarks/style_breakdown.py --config w16_256x357_any_style \\
        --out reports/metrics/style_breakdown.json

The JSON holds one entry per configuration and epoch under ``configs``. A group's AUROC is only given where it holds at least ``--min-positives`` positives and as many
negatives of the class; otherwise it is null (too few to say anything).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # learning_curves, also when imported from elsewhere

from learning_curves import _model_and_pages  # noqa: E402
from vizecg.contract import LABELS  # noqa: E402
from vizecg.data.stream import SyntheticStreamDataset  # noqa: E402
from vizecg.evaluation.inference import run_inference  # noqa: E402
from vizecg.render.training import TrainingImageRenderer  # noqa: E402
from vizecg.training.checkpoint import read_checkpoint  # noqa: E402

#: another stream than the curves' training (11) and validation (12) records
BREAKDOWN_SEED = 13

#: style attribute -> how a page's RenderStyle gives it
STYLE_ATTRIBUTES = {
    "paper_speed_mm_s": lambda style: f"{style.paper_speed_mm_s:g} mm/s",
    "layout": lambda style: style.layout,
    "gain_mm_mv": lambda style: f"{style.gain_mm_mv:g} mm/mV",
    "line_width_pt": lambda style: f"{style.line_width_pt:g} pt",
    "grid_colour": lambda style: str(style.grid_colour),
}


def group_auroc(probs: np.ndarray, labels: np.ndarray, min_positives: int) -> dict:
    """n, positives and AUROC per class of one group of pages (AUROC null when too few to say)."""
    out = {"n": int(len(labels))}
    for k, label in enumerate(LABELS):
        positives = int(labels[:, k].sum())
        negatives = len(labels) - positives
        auroc = (float(roc_auc_score(labels[:, k], probs[:, k]))
                 if min(positives, negatives) >= min_positives else None)
        out[label] = {"positives": positives, "auroc": auroc}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="w16_256x357_any_style",
                        help="a learning-curve configuration of benchmarks/learning_curves.py")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="default: data/benchmarks/learning_curves/CONFIG/last.pt")
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--min-positives", type=int, default=15)
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    checkpoint = args.checkpoint or Path("data/benchmarks/learning_curves") / args.config / "last.pt"
    model, _, renderer, _, _, _ = _model_and_pages(args.config, seed=0)
    payload = read_checkpoint(checkpoint)
    model.load_state_dict(payload["state_dict"])
    if not renderer.randomize_style:
        parser.error(f"{args.config} trains on the paper look alone; there are no styles to break down")
    # the same pages whatever the configuration trained on: the style sampler's own mix (10 % at 50 mm/s)
    # and the paper look, drawn and prepared as the configuration draws its pages
    common = {"seed": renderer.seed, "page_preparation": renderer.page_preparation,
              "render_scale": renderer.render_scale}
    renderer = TrainingImageRenderer(renderer.height, renderer.width, randomize_style=True, **common)
    paper = TrainingImageRenderer(renderer.height, renderer.width, **common)

    figures = {"command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
               "config": args.config, "checkpoint": str(checkpoint), "epoch": payload.get("epoch"),
               "records": args.records, "stream_seed": BREAKDOWN_SEED, "min_positives": args.min_positives}
    for look, pages_renderer in (("randomised style", renderer), ("paper look", paper)):
        pages = SyntheticStreamDataset(args.records, stream_seed=BREAKDOWN_SEED, image_renderer=pages_renderer,
                                       decimate=4, distinct_epochs=False)
        scored = run_inference(model, DataLoader(pages, batch_size=32, num_workers=args.num_workers),
                               inputs=("image",), device="cpu", progress=True, desc=look)
        probs, labels, indices = scored.probs, scored.targets, scored.indices
        figures[look] = {"all": group_auroc(probs, labels, args.min_positives)}
        if look != "randomised style":
            continue
        styles = [renderer.style_for(int(index), 0) for index in indices]
        for attribute, value_of in STYLE_ATTRIBUTES.items():
            groups = defaultdict(list)
            for row, style in enumerate(styles):
                groups[value_of(style)].append(row)
            figures[look][attribute] = {value: group_auroc(probs[rows], labels[rows], args.min_positives)
                                        for value, rows in sorted(groups.items())}
    print_table(figures)
    if args.out:  # one entry per configuration, the others kept
        held = json.loads(args.out.read_text()) if args.out.exists() else {"configs": {}}
        held["configs"][f"{args.config} (epoch {figures['epoch']})"] = figures
        args.out.write_text(json.dumps(held, indent=1) + "\n")


def print_table(figures: dict) -> None:
    print(f"{'look / group':40s} {'n':>5s} " + " ".join(f"{label:>6s}" for label in LABELS))

    def row(name: str, group: dict) -> None:
        cells = [("  -  " if group[label]["auroc"] is None else f"{group[label]['auroc']:.3f}") for label in LABELS]
        print(f"{name:40s} {group['n']:5d} " + " ".join(f"{cell:>6s}" for cell in cells))

    for look in ("paper look", "randomised style"):
        row(f"{look}, all", figures[look]["all"])
    for attribute in STYLE_ATTRIBUTES:
        for value, group in figures["randomised style"][attribute].items():
            row(f"  {attribute} = {value}", group)


if __name__ == "__main__":
    main()
