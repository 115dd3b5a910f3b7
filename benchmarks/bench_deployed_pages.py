"""What a training page costs on the deployed path (drawn at 2x, read back by predict's prepare_page), per look.

    python benchmarks/bench_deployed_pages.py [--pages 40] [--height 128 --width 357]

One thread, one process. For clean paper-look pages it times both readings in the same process,
the full ``prepare_page`` and the clean-render shortcut (sheet finder and skew estimate skipped,
:func:`vizecg.render.training.prepared_page`), checks that they give the same pixels, and prints
the ratio; then the release run's broad look with artifacts and the photographed A4 print, for
scale. Rendering the page is included in every figure.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from vizecg.data.synthetic import generate  # noqa: E402
from vizecg.render.draw import render_ecg  # noqa: E402
from vizecg.render.training import TrainingImageRenderer, prepared_page  # noqa: E402


def per_page_ms(draw, signals: np.ndarray) -> tuple[float, list[np.ndarray]]:
    pages = [draw(signal, i) for i, signal in enumerate(signals[:2])]  # warm-up: caches, imports
    start = time.perf_counter()
    pages = [draw(signal, i) for i, signal in enumerate(signals)]
    return 1000.0 * (time.perf_counter() - start) / len(signals), pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=357)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    signals = generate(args.pages, seed=args.seed)[0]
    size = (args.height, args.width)
    clean = TrainingImageRenderer(*size, page_preparation="predict", render_scale=2.0)
    large = clean.style.replace(height=2 * args.height, width=2 * args.width)

    def full(signal, index):
        return prepared_page(render_ecg(signal, style=large), *size)

    def shortcut(signal, index):
        return prepared_page(render_ecg(signal, style=large), *size, clean_render=True)

    full_ms, full_pages = per_page_ms(full, signals)
    short_ms, short_pages = per_page_ms(shortcut, signals)
    same = sum(np.array_equal(a, b) for a, b in zip(full_pages, short_pages))
    print(f"clean paper page, {args.pages} pages at 2x {size}, one thread:")
    print(f"  full prepare_page      {full_ms:7.1f} ms/page")
    print(f"  clean-render shortcut  {short_ms:7.1f} ms/page   ({full_ms / short_ms:.1f}x faster; "
          f"identical pixels on {same} of {args.pages} pages)")
    broad = TrainingImageRenderer(*size, randomize_style=True, artifact_severity=(0.4, 0.8), page_preparation="predict",
                                  render_scale=2.0)
    sheets = TrainingImageRenderer(*size, artifact_severity=0.5, sheet_photo_share=1.0, page_preparation="predict",
                                   render_scale=2.0)
    for name, renderer in (("broad look with artifacts (severity 0.4-0.8)", broad),
                           ("A4 print photographed on a desk (severity 0.5)", sheets)):
        ms, _ = per_page_ms(lambda signal, index, r=renderer: r(signal, index, 0), signals)
        print(f"  {name:<47} {ms:7.1f} ms/page")


if __name__ == "__main__":
    main()
