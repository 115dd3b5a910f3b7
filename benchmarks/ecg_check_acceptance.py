"""How often predict's ECG-page check accepts phone photos of whole ECG pages, and refuses images
that are not ECGs, on images generated here (not the 52 real prints its thresholds were set on).

    python benchmarks/ecg_check_acceptance.py [--pages 200] [--out reports/metrics/ecg_check_acceptance.json]

ECG photos: synthetic records drawn in the paper's ecg_plot look at full page size, then
photographed by :func:`vizecg.render.artifacts.photograph_sheet` (the sheet covering 55-90 % of the
frame on a desk, wood or fabric, tilted up to 10 degrees, perspective, shadow, blur, noise,
JPEG) at four severities, plus the training artifacts (:func:`apply_artifacts`, photo mix).
The same clean pages turned by 90 degrees (alternately either way) should be refused as sideways
(:data:`vizecg.page_reader.SIDEWAYS_MAX_ROW_RATIO`), and so should the real prints of ``--real-prints``
turned by 90 degrees, while the upright prints are accepted. Non-ECGs: :mod:`vizecg.render.non_ecg` (scikit-image's natural and document images, noise, blank,
tinted and graph paper, text pages, a ruled table; the set the tests use), each as it is and
photographed on a desk the same way.
"""
from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from vizecg.data.synthetic import generate_chunk
from vizecg.page_reader import image_files_in, load_image, looks_like_ecg
from vizecg.render.artifacts import ArtifactConfig, apply_artifacts, photograph_sheet
from vizecg.render.draw import render_ecg
from vizecg.render.non_ecg import drawn_non_ecgs, natural_images
from vizecg.render.style import RenderStyle

SEVERITIES = (0.25, 0.5, 0.75, 1.0)


def ecg_pages(n: int, seed: int):
    records = generate_chunk(n, seed)
    rng = np.random.default_rng(seed)
    for i, signal in enumerate(records.signals):
        height = int(rng.integers(700, 1100))
        style = RenderStyle.preset("paper").replace(height=height, width=int(height * 2.79))
        yield i, render_ecg(signal, style=style)


def non_ecg_images() -> dict[str, np.ndarray]:
    return {**natural_images(), **drawn_non_ecgs()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200, help="ECG photos per severity of photograph_sheet / 4")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("reports/metrics/ecg_check_acceptance.json"))
    parser.add_argument("--real-prints", type=Path, default=Path("../shared/data/real_prints"),
                        help="real printed or photographed ECGs, judged upright and turned by 90 degrees "
                             "(skipped when the folder is absent)")
    parser.add_argument("--save-refused", type=Path, default=None, metavar="DIR",
                        help="write every refused ECG photo here as JPEG (its group and reason in the name)")
    args = parser.parse_args()

    start = time.perf_counter()
    groups: dict[str, list[bool]] = collections.defaultdict(list)
    reasons: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    blurred: collections.Counter = collections.Counter()

    def record(group: str, image: np.ndarray) -> None:
        accepted, reason, _ = looks_like_ecg(image)
        groups[group].append(accepted)
        if not accepted:
            reasons[group][reason.split(":")[0]] += 1
            if args.save_refused is not None and group.startswith("ECG") and "turned" not in group:
                args.save_refused.mkdir(parents=True, exist_ok=True)
                name = f"{group}_{len(groups[group]):04d}_{reason.split(':')[0]}"
                name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:150]
                cv2.imwrite(str(args.save_refused / f"{name}.jpg"), image[..., ::-1])
        elif reason.startswith("blurred"):  # accepted on the weaker, blurred-grid evidence
            blurred[group] += 1

    for i, page in tqdm(ecg_pages(args.pages, args.seed), total=args.pages, desc="ECG pages"):
        rng = np.random.default_rng([args.seed, i])
        severity = SEVERITIES[i % len(SEVERITIES)]
        record("ECG page, clean", page)
        record(f"ECG photo on a surface, severity {severity:g}", photograph_sheet(page, rng, severity))
        record(f"ECG page, training photo artifacts {severity:g}", apply_artifacts(page, ArtifactConfig.photo(severity), rng))
        record("ECG page turned by 90 degrees", np.ascontiguousarray(np.rot90(page, 1 if i % 2 else 3)))
    if args.real_prints.is_dir():
        for path in tqdm(image_files_in(args.real_prints), desc="real prints"):
            image = load_image(path)
            record("real print", image)
            for turns in (1, 3):
                record("real print turned by 90 degrees", np.ascontiguousarray(np.rot90(image, turns)))
    for name, image in tqdm(non_ecg_images().items(), desc="non-ECG images"):
        record("non-ECG image", image)
        for k, severity in enumerate((0.25, 0.75)):
            record("non-ECG image photographed on a surface", photograph_sheet(image, k, severity))

    summary = {}
    for group in sorted(groups):
        values = groups[group]
        summary[group] = {"images": len(values), "accepted": int(sum(values)),
                          "accepted_fraction": round(float(np.mean(values)), 4),
                          "accepted_by_blurred_grid": blurred[group],
                          "refusal_reasons": dict(reasons[group])}
        print(f"{group:55s} accepted {sum(values):4d} / {len(values):4d} ({np.mean(values):6.1%}), "
              f"{blurred[group]} by a blurred grid"
              + (f"   refused: {dict(reasons[group])}" if reasons[group] else ""))
    print(f"{time.perf_counter() - start:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": "python benchmarks/ecg_check_acceptance.py "
                                    f"--pages {args.pages} --seed {args.seed}", "groups": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
