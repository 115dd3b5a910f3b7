"""Renderer speed and fidelity, in one run on one core.

Prints, for ecg_plot 0.2.8 (the paper's renderer) and the fast renderer at the
same output sizes (ecg_plot's natural 2128 x 763 page and training sizes):
single-core images/s and their ratio; the similarity of the fast page to the
ecg_plot page (SSIM on grayscale, mean and minimum over the records); and the
training renderer's throughput with randomized styles and artifacts.

ecg_plot output at a training size is its natural page resized with area
averaging (what ``render_ecg(backend="ecg_plot", style=...)`` does), so its cost
is the same at every size.

    python benchmarks/bench_render.py                      # 24 synthetic records
    python benchmarks/bench_render.py --records 40 --sizes 763x2128 128x357 192x536 --ludb 20
    python benchmarks/bench_render.py --records 0 --legibility      # size-vs-legibility table only
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from vizecg.data.synthetic import generate  # noqa: E402
from vizecg.render import RenderStyle, check_record  # noqa: E402
from vizecg.render.artifacts import ArtifactConfig, apply_artifacts  # noqa: E402
from vizecg.render.fast import render_fast  # noqa: E402
from vizecg.render.reference import render_ecg_plot  # noqa: E402
from vizecg.render.training import TrainingImageRenderer  # noqa: E402


def _size(text: str) -> tuple[int, int]:
    height, width = text.lower().split("x")
    return int(height), int(width)


def _gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def _beats(qrs_ms: float) -> np.ndarray:
    """A test record: Gaussian QRS complexes of about ``qrs_ms`` (+-2.5 sd) and T waves at 75 bpm, all leads."""
    t = np.arange(4096) / 400.0
    sd = qrs_ms / 1000.0 / 5.0
    signal = np.zeros(4096, np.float64)
    for centre in np.arange(0.5, 10.2, 0.8):
        signal += np.exp(-0.5 * ((t - centre) / sd) ** 2) + 0.25 * np.exp(-0.5 * ((t - centre - 0.3) / 0.04) ** 2)
    return np.repeat(signal[:, None], 12, axis=1).astype(np.float32)


def legibility(sizes: list[tuple[int, int]]) -> None:
    """What survives of the page at each size: grid contrast, trace ink and a QRS-width difference.

    * px/mm: the paper look is 532 mm wide on ecg_plot's page;
    * grid contrast: amplitude (grey levels) of the 1 mm and 5 mm periods along a trace-free row;
    * QRS 90 vs 130 ms: mean grey difference per pixel between pages of narrow and wide complexes,
      relative to the same figure at the natural size (1.0 = as legible as ecg_plot's PNG);
    * ResNet18 ms: train-step cost per sample on the 2-core CPU, 1.9 us per pixel (SPEC section 7).
    """
    narrow, wide = _beats(90), _beats(130)
    print("\nlegibility of the paper look by size (trace 0.5 pt, no labels)")
    print(f"{'size HxW':>10} | {'px/mm':>5} | {'trace px':>8} | {'1mm grid':>8} | {'5mm grid':>8} | "
          f"{'QRS 90 vs 130 ms':>16} | {'ResNet18 ms':>11}")
    natural = None
    for height, width in sorted(set([(763, 2128), *sizes]), key=lambda s: -s[1]):
        style = RenderStyle.paper(height, width).replace(header="", lead_labels=False)
        a, b = (_gray(render_fast(x, style)).astype(np.float64) for x in (narrow, wide))
        per_pixel = np.abs(a - b).mean()
        natural = per_pixel if natural is None else natural
        blank = _gray(render_fast(np.zeros((4096, 12), np.float32), style)).astype(np.float64)
        row = blank[int(height * 0.15), int(width * 0.1):int(width * 0.45)]
        spectrum = np.abs(np.fft.rfft(row - row.mean())) * 2 / row.size
        px_per_mm = width / 532.0

        def amplitude(period_mm: float) -> float:
            k = int(round(row.size / (period_mm * px_per_mm)))
            return float(spectrum[max(k - 1, 0):k + 2].max()) if k + 1 < spectrum.size else 0.0

        print(f"{height:>4}x{width:<5} | {px_per_mm:5.2f} | {0.5 * 100 / 72 * width / 2128:8.2f} | {amplitude(1):8.2f} | "
              f"{amplitude(5):8.2f} | {per_pixel / natural:16.2f} | {1.9e-3 * height * width:11.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=24, help="synthetic records (each costs one ecg_plot page)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--sizes", type=_size, nargs="+", default=[(763, 2128), (192, 536), (128, 357)],
                        help="output sizes HxW (paper look)")
    parser.add_argument("--repeats", type=int, default=5, help="passes over the records when timing fast renders")
    parser.add_argument("--ludb", type=int, default=0,
                        help="also report SSIM on the first N LUDB records (real ECGs; ../shared/data/ludb)")
    parser.add_argument("--ludb-root", default="../shared/data/ludb")
    parser.add_argument("--legibility", type=_size, nargs="*", default=None,
                        help="also print the legibility-vs-size table for these sizes (default list if none)")
    args = parser.parse_args()

    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass

    if args.legibility is not None:
        legibility(args.legibility or [(384, 1064), (256, 714), (192, 536), (160, 446), (128, 357), (96, 268)])

    signals, _ = generate(args.records, seed=args.seed)
    signals = [check_record(s, "benchmark") for s in signals]
    if not signals:
        return

    natural = RenderStyle.paper()
    pages, ecg_plot_seconds = [], []
    for signal in tqdm(signals, desc="ecg_plot 0.2.8 pages", unit="page"):
        start = time.perf_counter()
        pages.append(render_ecg_plot(signal, natural))
        ecg_plot_seconds.append(time.perf_counter() - start)
    ecg_plot_rate = len(signals) / sum(ecg_plot_seconds)

    print(f"\nsingle core; {len(signals)} synthetic records (seed {args.seed}); "
          f"ecg_plot 0.2.8: {np.mean(ecg_plot_seconds) * 1e3:.0f} ms/page (median "
          f"{np.median(ecg_plot_seconds) * 1e3:.0f} ms)")
    header = f"{'size HxW':>10} | {'ecg_plot img/s':>14} | {'fast img/s':>10} | {'speed-up':>8} | {'SSIM mean':>9} | {'SSIM min':>8}"
    print(header)
    print("-" * len(header))
    for height, width in args.sizes:
        style = RenderStyle.paper(height, width)
        render_fast(signals[0], style)  # draws and caches the static page layer once
        start = time.perf_counter()
        for _ in range(args.repeats):
            for signal in signals:
                render_fast(signal, style)
        fast_rate = args.repeats * len(signals) / (time.perf_counter() - start)
        scores = []
        for signal, page in zip(signals, pages):
            reference = page if (height, width) == page.shape[:2] else cv2.resize(
                page, (width, height), interpolation=cv2.INTER_AREA)
            scores.append(structural_similarity(_gray(reference), _gray(render_fast(signal, style))))
        print(f"{height:>4}x{width:<5} | {ecg_plot_rate:14.2f} | {fast_rate:10.1f} | {fast_rate / ecg_plot_rate:7.0f}x | "
              f"{np.mean(scores):9.4f} | {np.min(scores):8.4f}")

    if args.ludb > 0:
        from vizecg.data.wfdb_source import ludb_reader

        real: list[np.ndarray] = []
        for chunk in ludb_reader(args.ludb_root):
            real.extend(chunk.signals)
            if len(real) >= args.ludb:
                break
        real = real[: args.ludb]
        real_pages = [render_ecg_plot(signal, natural) for signal in tqdm(real, desc="ecg_plot LUDB pages")]
        print(f"\nSSIM on {len(real)} LUDB records (real ECGs, amplitudes normalised per lead):")
        for height, width in args.sizes:
            style = RenderStyle.paper(height, width)
            scores = []
            for signal, page in zip(real, real_pages):
                reference = page if (height, width) == page.shape[:2] else cv2.resize(
                    page, (width, height), interpolation=cv2.INTER_AREA)
                scores.append(structural_similarity(_gray(reference), _gray(render_fast(signal, style))))
            print(f"  {height}x{width}: mean {np.mean(scores):.4f}, min {np.min(scores):.4f}")

    print("\ntraining renderer (fast backend), single core, images/s:")
    for height, width in args.sizes[1:]:
        page = render_fast(signals[0], RenderStyle.paper(height, width))
        start = time.perf_counter()
        for i in range(20 * args.repeats):
            apply_artifacts(page, ArtifactConfig.photo(0.6), i)
        artifact_ms = (time.perf_counter() - start) / (20 * args.repeats) * 1e3
        for label, renderer in (
                ("paper look, clean", TrainingImageRenderer(height, width, seed=0)),
                ("paper look, photo artifacts 0.6", TrainingImageRenderer(height, width, artifact_severity=0.6, seed=0)),
                ("random styles, artifacts U(0,1)", TrainingImageRenderer(height, width, randomize_style=True,
                                                                          artifact_severity=(0.0, 1.0), seed=0))):
            n = 0
            for i in range(200):  # warm the per-process static-layer caches (as a long-lived worker would)
                renderer(signals[i % len(signals)], i, 0)
            start = time.perf_counter()
            for i in range(200, 200 + 20 * args.repeats):
                renderer(signals[i % len(signals)], i, 1)
                n += 1
            elapsed = time.perf_counter() - start
            print(f"  {height}x{width} {label:<34} {n / elapsed:7.1f} img/s ({elapsed / n * 1e3:.1f} ms)")
        print(f"  {height}x{width} artifacts alone (photo 0.6)         {artifact_ms:.1f} ms")


if __name__ == "__main__":
    main()
