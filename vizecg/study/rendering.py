"""Stage 2: genuine ecg_plot 0.2.8 pages of labelled test records, as files a user would hold.

``write_ecg_plot_pages`` draws the first ``n`` test records with the paper's renderer at its
natural page size and saves each three times (:data:`PAGE_VARIANTS`): ``png/<record>.png`` (the
printout as a file), ``photo/<record>.jpg`` (the same page through phone-photo artifacts:
perspective, rotation, lighting, blur, noise, JPEG) and ``sheet_photo/<record>.jpg`` (the page
printed on A4 and photographed lying on a desk, :func:`vizecg.render.artifacts.photograph_sheet`:
half of the sheet is blank paper, the desk shows around it). ``labels.csv`` holds their labels.
Stages 6 and 9 score the predict command on these folders. A rerun skips pages already written;
records are drawn in parallel.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from vizecg.contract import LABELS
from vizecg.data.prepared import read_index, read_signals

#: a phone photo of a flat printout: moderate pose, light and optics, JPEG
PHOTO_ARTIFACTS = {"tint": 0.4, "rotation": 0.5, "perspective": 0.5, "crop": 0.3, "lighting": 0.6,
                   "blur": 0.4, "noise": 0.4, "jpeg": 0.6}


#: severity of :func:`vizecg.render.artifacts.photograph_sheet` for the photographed printed sheets
SHEET_PHOTO_SEVERITY = 0.5

class PageVariant(NamedTuple):
    what: str  # what the folder's files are, as reports name them
    suffix: str  # the suffix they carry


#: folder -> the pages it holds
PAGE_VARIANTS = {"png": PageVariant("ecg_plot 0.2.8 pages (PNG)", ".png"),
                 "photo": PageVariant("photos of those pages (JPEG)", ".jpg"),
                 "sheet_photo": PageVariant("those pages printed on A4, photographed on a desk (JPEG)", ".jpg")}


def page_path(out_dir: str | Path, variant: str, record_id: str) -> Path:
    """Where :func:`write_ecg_plot_pages` puts record ``record_id``'s page of ``variant``."""
    return Path(out_dir) / variant / f"{record_id}{PAGE_VARIANTS[variant].suffix}"


def _draw(task: tuple[np.ndarray, dict[str, Path], int]) -> None:
    from vizecg.render import render_ecg
    from vizecg.render.artifacts import apply_artifacts, photograph_sheet

    signal, paths, seed = task
    page = render_ecg(signal, backend="ecg_plot", style="paper")
    Image.fromarray(page).save(paths["png"])
    Image.fromarray(apply_artifacts(page, PHOTO_ARTIFACTS, seed)).save(paths["photo"], quality=85)
    Image.fromarray(photograph_sheet(page, seed, SHEET_PHOTO_SEVERITY)).save(paths["sheet_photo"], quality=85)


def write_ecg_plot_pages(prepared: str | Path, out_dir: str | Path, n: int | None, *, seed: int = 0, workers: int = 2,
                         progress: bool = True, split: str = "test") -> pd.DataFrame:
    """Write the first ``n`` records of ``split`` (all of them for None) as ecg_plot pages (each of
    :data:`PAGE_VARIANTS`); return their labels frame."""
    out_dir = Path(out_dir)
    for variant in PAGE_VARIANTS:
        (out_dir / variant).mkdir(parents=True, exist_ok=True)
    index = read_index(prepared)
    rows = index.index[index["split"] == split][:n].to_numpy()
    if not rows.size:
        raise ValueError(f"{prepared}: no {split!r} records to draw")
    labels = index.loc[rows, ["record_id", *LABELS]].rename(columns={"record_id": "file"})
    tasks = []
    for row, record_id in zip(rows, labels["file"]):
        paths = {variant: page_path(out_dir, variant, record_id) for variant in PAGE_VARIANTS}
        if not all(path.exists() for path in paths.values()):
            tasks.append((int(row), paths, seed * 1_000_003 + int(row)))
    if tasks:
        signals = read_signals(prepared, [t[0] for t in tasks])
        jobs = [(signals[i], paths, s) for i, (_, paths, s) in enumerate(tasks)]
        # spawn, not fork: this runs inside a Jupyter kernel, whose ZMQ and BLAS threads may hold a lock
        # at the moment of a fork; a forked worker then waits on that lock for ever (seen as a hang in CI).
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for _ in tqdm(pool.map(_draw, jobs), total=len(jobs), desc="ecg_plot pages", disable=not progress):
                pass
    labels.to_csv(out_dir / "labels.csv", index=False)
    return labels


def reference_agreement(pages_dir: str | Path, signals: np.ndarray, records, train_hw: tuple[int, int]):
    """SSIM of the fast renderer's paper look against the genuine ecg_plot pages of the same records,
    at full page size and at the training size ``(width, height)``; one row per record, plus the
    last pair of pages (for display)."""
    import cv2
    import pandas as pd
    from PIL import Image
    from skimage.metrics import structural_similarity

    from vizecg.render import render_ecg

    scores, reference, fast = [], None, None
    for signal, record in zip(signals, records):
        reference = np.asarray(Image.open(Path(pages_dir) / "png" / f"{record}.png").convert("RGB"))
        fast = render_ecg(signal, backend="fast", style="paper")
        if reference.shape != fast.shape:
            raise ValueError(f"{record}: ecg_plot page {reference.shape} and fast page {fast.shape} differ in size")
        gray = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in (reference, fast)]
        small = [cv2.resize(g, train_hw, interpolation=cv2.INTER_AREA) for g in gray]
        scores.append({"record": record, "ssim_full": structural_similarity(*gray, data_range=255),
                       "ssim_train_size": structural_similarity(*small, data_range=255)})
    return pd.DataFrame(scores), reference, fast


def render_timing(signals: np.ndarray, train_style) -> "pd.DataFrame":
    """Milliseconds and pages per second of ecg_plot (2 pages) and the fast renderer (20 pages) at full
    page size and at the training size, with the speed-up over ecg_plot, measured in this process."""
    import time

    import pandas as pd

    from vizecg.render import render_ecg

    def ms_per_page(backend: str, records, style="paper") -> float:
        start = time.perf_counter()
        for signal in records:
            render_ecg(signal, backend=backend, style=style)
        return 1000 * (time.perf_counter() - start) / len(records)

    timing = pd.DataFrame({"ms per page": {
        "ecg_plot, full page": ms_per_page("ecg_plot", signals[:2]),
        "fast, full page": ms_per_page("fast", signals[:20]),
        "fast, training size": ms_per_page("fast", signals[:20], train_style)}})
    timing["pages per second"] = 1000 / timing["ms per page"]
    timing["speed-up vs ecg_plot"] = timing.loc["ecg_plot, full page", "ms per page"] / timing["ms per page"]
    return timing


def write_rendering_metrics(ssim, timing, path: str | Path) -> dict:
    """``rendering.json``: SSIM summary and per-page times."""
    import json

    metrics = {"ssim_full_mean": float(ssim["ssim_full"].mean()), "ssim_full_min": float(ssim["ssim_full"].min()),
               "ssim_train_size_mean": float(ssim["ssim_train_size"].mean()),
               "ssim_train_size_min": float(ssim["ssim_train_size"].min()), "ssim_records": int(len(ssim)),
               "ms_per_page": {k: float(v) for k, v in timing["ms per page"].items()}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
