"""Stage 2: genuine ecg_plot 0.2.8 pages of labelled test records, as files a user would hold.

``write_ecg_plot_pages`` draws the first ``n`` test records with the paper's renderer at its
natural page size and saves each twice: ``png/<record>.png`` (the printout as a file) and
``photo/<record>.jpg`` (the same page through phone-photo artifacts: perspective, rotation,
lighting, blur, noise, JPEG). ``labels.csv`` holds their labels. Stage 6 scores the predict
command on these folders. A rerun skips pages already written; records are drawn in parallel.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from vizecg.contract import LABELS
from vizecg.data.prepared import read_index, read_signals

#: a phone photo of a flat printout: moderate pose, light and optics, JPEG
PHOTO_ARTIFACTS = {"tint": 0.4, "rotation": 0.5, "perspective": 0.5, "crop": 0.3, "lighting": 0.6,
                   "blur": 0.4, "noise": 0.4, "jpeg": 0.6}


def _draw(task: tuple[np.ndarray, Path, Path, int]) -> None:
    from vizecg.render import render_ecg
    from vizecg.render.artifacts import apply_artifacts

    signal, png, photo, seed = task
    page = render_ecg(signal, backend="ecg_plot", style="paper")
    Image.fromarray(page).save(png)
    Image.fromarray(apply_artifacts(page, PHOTO_ARTIFACTS, seed)).save(photo, quality=85)


def write_ecg_plot_pages(prepared: str | Path, out_dir: str | Path, n: int, *, seed: int = 0, workers: int = 2,
                         progress: bool = True) -> pd.DataFrame:
    """Write ``n`` test records as ecg_plot pages (PNG and photo JPEG); return their labels frame."""
    out_dir = Path(out_dir)
    (out_dir / "png").mkdir(parents=True, exist_ok=True)
    (out_dir / "photo").mkdir(parents=True, exist_ok=True)
    index = read_index(prepared)
    rows = index.index[index["split"] == "test"][:n].to_numpy()
    labels = index.loc[rows, ["record_id", *LABELS]].rename(columns={"record_id": "file"})
    tasks = []
    for row, record_id in zip(rows, labels["file"]):
        png, photo = out_dir / "png" / f"{record_id}.png", out_dir / "photo" / f"{record_id}.jpg"
        if not (png.exists() and photo.exists()):
            tasks.append((int(row), png, photo, seed * 1_000_003 + int(row)))
    if tasks:
        signals = read_signals(prepared, [t[0] for t in tasks])
        jobs = [(signals[i], png, photo, s) for i, (_, png, photo, s) in enumerate(tasks)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for _ in tqdm(pool.map(_draw, jobs), total=len(jobs), desc="ecg_plot pages", disable=not progress):
                pass
    labels.to_csv(out_dir / "labels.csv", index=False)
    return labels
