"""How often predict finds the sheet in a phone photo of a print, and how well: the bright-region
finder alone, the straight-edge finder alone, and the two as ``find_paper_quad`` chains them.

    python benchmarks/sheet_finder.py [--pages 80] [--seed 11] [--out reports/metrics/sheet_finder.json]

The photos are those of ``ecg_check_acceptance.py`` (ecg_plot-look pages printed on A4 and
photographed on a desk, wood or fabric by :func:`vizecg.render.artifacts.photograph_sheet`, a
quarter at each severity 0.25 / 0.5 / 0.75 / 1), which also says where the sheet's corners lie.
A finder's quadrilateral counts as the sheet when its intersection over union with the true one
is at least 0.9 (a wrong one is the lit half of a shaded sheet, or a desk stripe joined to it);
"none" leaves the desk in the page that the check and the model read.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ecg_check_acceptance import SEVERITIES, ecg_pages
from vizecg import page_reader
from vizecg.render.artifacts import photograph_sheet

FINDERS = {"bright region": page_reader._bright_region_quad, "straight edges": page_reader._edge_quad,
           "find_paper_quad (both)": page_reader.find_paper_quad}
RIGHT_IOU = 0.9


def overlap(found: np.ndarray, truth: np.ndarray, shape: tuple[int, int]) -> float:
    """Intersection over union of two quadrilaterals rasterised on an image of ``shape``."""
    masks = []
    for quad in (found, truth):
        mask = np.zeros(shape, np.uint8)
        cv2.fillConvexPoly(mask, np.round(quad).astype(np.int32), 1)
        masks.append(mask.astype(bool))
    return float((masks[0] & masks[1]).sum() / max((masks[0] | masks[1]).sum(), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=80)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=Path("reports/metrics/sheet_finder.json"))
    args = parser.parse_args()

    rows = []
    for i, page in tqdm(ecg_pages(args.pages, args.seed), total=args.pages, desc="photos"):
        severity = SEVERITIES[i % len(SEVERITIES)]
        photo, corners = photograph_sheet(page, np.random.default_rng([args.seed, i]), severity, return_corners=True)
        small = page_reader.limit_resolution(photo)  # the copy predict works on
        truth = corners * (small.shape[1] / photo.shape[1])
        row = {"severity": severity}
        for name, finder in FINDERS.items():
            start = time.perf_counter()
            found = finder(small)
            row[name] = None if found is None else overlap(found, truth, small.shape[:2])
            row[name + " ms"] = 1000 * (time.perf_counter() - start)
        rows.append(row)

    summary = {}
    for name in FINDERS:
        summary[name] = {}
        for severity in SEVERITIES:
            values = [r[name] for r in rows if r["severity"] == severity]
            summary[name][f"{severity:g}"] = {
                "photos": len(values), "right": sum(v is not None and v >= RIGHT_IOU for v in values),
                "wrong": sum(v is not None and v < RIGHT_IOU for v in values), "none": sum(v is None for v in values)}
        summary[name]["median_ms"] = round(float(np.median([r[name + " ms"] for r in rows])), 1)
        counts = summary[name]
        print(f"{name:24s} right / wrong / none per severity "
              + "  ".join(f"{s:g}: {counts[f'{s:g}']['right']}/{counts[f'{s:g}']['wrong']}/{counts[f'{s:g}']['none']}"
                          for s in SEVERITIES)
              + f"   median {counts['median_ms']} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": f"python benchmarks/sheet_finder.py --pages {args.pages} --seed {args.seed}",
                                    "right_iou": RIGHT_IOU, "finders": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
