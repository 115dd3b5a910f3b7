"""Stage 1: build the prepared dataset of the chosen source and summarise its labels."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from vizecg.contract import LABELS
from vizecg.data.prepared import read_index, write_prepared
from vizecg.data.sources import iter_source
from vizecg.study.runs import prepared_file

SPLITS = ("train", "val", "test")


def _fingerprint(params: dict) -> str:
    return json.dumps(params["data"], sort_keys=True)


def prepare_dataset(params: dict, work_dir: str | Path, *, progress: bool = True) -> Path:
    """Write ``<work_dir>/prepared/dataset.h5`` for ``params['data']``; a rerun with the same
    data parameters keeps the finished file (the write is atomic, so a file that exists is whole)."""
    data = params["data"]
    path = prepared_file(work_dir)
    stamp = path.with_name("data_params.json")
    if path.exists() and stamp.exists() and stamp.read_text() == _fingerprint(params):
        return path
    split = data["split"]
    chunks = iter_source(data["source"], progress=progress, **data.get("source_options", {}))
    write_prepared(chunks, path, split_fractions=(split["train"], split["val"], split["test"]),
                   seed=data["seed"], source=data["source"], progress=progress)
    stamp.write_text(_fingerprint(params))
    return path


def label_table(index: pd.DataFrame) -> pd.DataFrame:
    """Positives per label and split, plus records and normal (no label) counts."""
    rows = {}
    for split in SPLITS:
        part = index[index["split"] == split]
        counts = {label: int(part[label].sum()) for label in LABELS}
        counts["normal"] = int((part[list(LABELS)].sum(axis=1) == 0).sum())
        counts["records"] = len(part)
        counts["patients"] = int(part["patient_id"].nunique())
        rows[split] = counts
    return pd.DataFrame(rows).T


def cooccurrence(index: pd.DataFrame) -> pd.DataFrame:
    """Records carrying both labels (diagonal: carrying the label)."""
    y = index[list(LABELS)].to_numpy(dtype=np.int64)
    return pd.DataFrame(y.T @ y, index=list(LABELS), columns=list(LABELS))


def write_data_metrics(index: pd.DataFrame, out: str | Path) -> dict:
    """``reports/metrics/data.json``: records, patients and positives per split (for `dvc metrics show`)."""
    table = label_table(index)
    metrics = {split: {k: int(v) for k, v in table.loc[split].items()} for split in SPLITS}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(metrics, indent=2))
    return metrics


def patient_overlap(index: pd.DataFrame) -> int:
    """Patients found in more than one split (must be 0)."""
    return int((index.groupby("patient_id")["split"].nunique() > 1).sum())


def first_of_each_label(index: pd.DataFrame, split: str = "test") -> dict[str, int]:
    """Row of the first record of ``split`` per label, and of the first normal record."""
    part = index[index["split"] == split]
    rows = {label: int(part.index[part[label] == 1][0]) for label in LABELS if part[label].any()}
    normal = part.index[part[list(LABELS)].sum(axis=1) == 0]
    if len(normal):
        rows["normal"] = int(normal[0])
    return rows


__all__ = ["prepare_dataset", "label_table", "cooccurrence", "write_data_metrics", "patient_overlap",
           "first_of_each_label", "read_index"]
