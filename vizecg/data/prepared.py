"""The prepared dataset: one HDF5 file holding every record of a source plus its split.

Layout (``format_version`` 1):

* ``signals`` ``(N, 4096, 12)`` float32 mV (or float16 when asked, to halve disk use at
  CODE-15% scale), chunked one record per chunk so that a random-access read touches one
  chunk; compression optional (``gzip``/``lzf``). It is off by default: ECG samples are
  noisy floats that barely compress (gzip saved 7% on synthetic records, lzf nothing)
  while gzip cut random-access reads about five-fold;
* ``labels`` ``(N, 6)`` uint8 in :data:`~vizecg.contract.LABELS` order;
* ``record_id``, ``patient_id`` ``(N,)`` variable-length UTF-8 strings;
* ``split`` ``(N,)`` uint8, 0 train, 1 val, 2 test (:data:`~vizecg.data.splits.SPLIT_NAMES`);
* attributes: ``labels``, ``leads``, ``sample_rate``, ``n_samples``, ``source``, ``seed``,
  ``split_fractions``, ``split_names``, ``extra`` and ``source_report`` (JSON),
  ``format_version`` and ``complete``.

The file is written under a temporary name and renamed only when complete (and carries
``complete=True``), so an interrupted run never leaves a file that looks finished.
Beside it, ``splits.csv`` lists ``record_id, patient_id, split`` and the six labels.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from vizecg.contract import LABELS, LEADS, N_LEADS, N_SAMPLES, SAMPLE_RATE_HZ, ContractError
from vizecg.data.records import RecordChunk
from vizecg.data.splits import SPLIT_NAMES, check_fractions, patient_stratified_split

FORMAT_VERSION: int = 1
_DATASETS: tuple[str, ...] = ("signals", "labels", "record_id", "patient_id", "split")


def _temporary_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.incomplete-{os.getpid()}")


def write_prepared(chunks: Iterable[RecordChunk], path: str | os.PathLike, *,
                   split_fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, source: str = "unknown",
                   compression: str | None = None, signal_dtype: str = "float32",
                   splits_csv: str | os.PathLike | None = None, extra_attrs: Mapping[str, object] | None = None,
                   progress: bool = True) -> dict:
    """Write ``chunks`` to one prepared HDF5 file at ``path`` and ``splits.csv`` beside it.

    Splits are made once all records are in (patient-wise, stratified, seeded: see
    :func:`~vizecg.data.splits.patient_stratified_split`). ``compression`` is ``None``,
    ``"gzip"`` or ``"lzf"``; ``signal_dtype`` ``"float32"`` or ``"float16"``.
    ``splits_csv`` defaults to ``splits.csv`` in the same folder. ``extra_attrs`` (JSON-able)
    are stored under the ``extra`` attribute; when ``chunks`` has a ``report`` (as the
    iterators of :func:`~vizecg.data.sources.iter_source` do), its counts of skipped
    records, flat leads etc. are stored under ``source_report``. Duplicate record ids raise
    :class:`ContractError`. Returns a summary dict (records, patients and label counts per
    split, file size, paths).
    """
    fractions = check_fractions(split_fractions)
    if compression not in (None, "gzip", "lzf"):
        raise ValueError(f"compression must be None, 'gzip' or 'lzf', got {compression!r}")
    if signal_dtype not in ("float32", "float16"):
        raise ValueError(f"signal_dtype must be 'float32' or 'float16', got {signal_dtype!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    splits_csv = Path(splits_csv) if splits_csv is not None else path.parent / "splits.csv"
    temporary = _temporary_path(path)
    string_type = h5py.string_dtype(encoding="utf-8")
    labels_parts: list[np.ndarray] = []
    record_ids: list[str] = []
    patient_ids: list[str] = []
    try:
        with h5py.File(temporary, "w") as handle:
            signals = handle.create_dataset(
                "signals", shape=(0, N_SAMPLES, N_LEADS), maxshape=(None, N_SAMPLES, N_LEADS), dtype=signal_dtype,
                chunks=(1, N_SAMPLES, N_LEADS), compression=compression)
            bar = tqdm(desc=f"prepare {path.name}", unit="record", disable=not progress)
            n = 0
            for chunk in chunks:
                if not isinstance(chunk, RecordChunk):
                    raise TypeError(f"write_prepared expects RecordChunk items, got {type(chunk).__name__}")
                signals.resize(n + len(chunk), axis=0)
                signals[n:n + len(chunk)] = chunk.signals.astype(signal_dtype, copy=False)
                labels_parts.append(chunk.labels)
                record_ids.extend(chunk.record_ids)
                patient_ids.extend(chunk.patient_ids)
                n += len(chunk)
                bar.update(len(chunk))
            bar.close()
            if n == 0:
                raise ContractError(f"{path}: the source yielded no records")
            if len(set(record_ids)) != n:
                seen: set[str] = set()
                duplicates = [r for r in record_ids if r in seen or seen.add(r)][:5]
                raise ContractError(f"{path}: duplicated record ids, e.g. {duplicates}")
            labels = np.concatenate(labels_parts)
            split = patient_stratified_split(patient_ids, labels, fractions=fractions, seed=seed)
            handle.create_dataset("labels", data=labels, dtype=np.uint8)
            handle.create_dataset("record_id", data=np.asarray(record_ids, dtype=object), dtype=string_type)
            handle.create_dataset("patient_id", data=np.asarray(patient_ids, dtype=object), dtype=string_type)
            handle.create_dataset("split", data=split, dtype=np.uint8)
            attrs = handle.attrs
            attrs["labels"] = list(LABELS)
            attrs["leads"] = list(LEADS)
            attrs["sample_rate"] = SAMPLE_RATE_HZ
            attrs["n_samples"] = N_SAMPLES
            attrs["source"] = source
            attrs["seed"] = seed
            attrs["split_fractions"] = fractions
            attrs["split_names"] = list(SPLIT_NAMES)
            attrs["format_version"] = FORMAT_VERSION
            attrs["extra"] = json.dumps(dict(extra_attrs or {}), default=str)
            report = getattr(chunks, "report", None)
            source_report = report.as_dict() if hasattr(report, "as_dict") else {}
            attrs["source_report"] = json.dumps(source_report, default=str)
            attrs["complete"] = True
        index = _index_frame(record_ids, patient_ids, split, labels)
        csv_temporary = _temporary_path(splits_csv)
        index.to_csv(csv_temporary, index=False)
        os.replace(temporary, path)
        os.replace(csv_temporary, splits_csv)
    except BaseException:
        temporary.unlink(missing_ok=True)
        _temporary_path(splits_csv).unlink(missing_ok=True)
        raise
    return summarize(index) | {"path": str(path), "splits_csv": str(splits_csv), "bytes": path.stat().st_size,
                               "source": source, "seed": seed, "source_report": source_report}


def _index_frame(record_ids: Sequence[str], patient_ids: Sequence[str], split: np.ndarray,
                 labels: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({"record_id": list(record_ids), "patient_id": list(patient_ids),
                          "split": pd.Categorical.from_codes(split.astype(np.int64), categories=list(SPLIT_NAMES))})
    for k, label in enumerate(LABELS):
        frame[label] = labels[:, k].astype(np.uint8)
    return frame


def summarize(index: pd.DataFrame) -> dict:
    """Records, patients and positives per label, overall and per split, from :func:`read_index`'s frame."""
    summary: dict = {"records": len(index), "patients": int(index["patient_id"].nunique()), "splits": {}}
    for name in SPLIT_NAMES:
        part = index[index["split"] == name]
        summary["splits"][name] = {"records": len(part), "patients": int(part["patient_id"].nunique()),
                                   **{label: int(part[label].sum()) for label in LABELS}}
    summary["positives"] = {label: int(index[label].sum()) for label in LABELS}
    return summary


def open_prepared(path: str | os.PathLike) -> h5py.File:
    """Open a prepared file read-only after checking it is complete and consistent.

    Raises :class:`FileNotFoundError` naming a missing file and :class:`ContractError`
    naming the file for a non-HDF5/corrupt file, an unfinished write, missing datasets or
    inconsistent shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: prepared dataset not found (run the data-prep stage first)")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ContractError(f"{path}: not a readable HDF5 file (corrupt or truncated): {error}") from error
    try:
        if not bool(handle.attrs.get("complete", False)):
            raise ContractError(f"{path}: prepared dataset is incomplete (its writing was interrupted); rebuild it")
        missing = [name for name in _DATASETS if name not in handle]
        if missing:
            raise ContractError(f"{path}: missing dataset(s) {', '.join(missing)}")
        n = handle["signals"].shape[0]
        if handle["signals"].shape[1:] != (N_SAMPLES, N_LEADS):
            raise ContractError(f"{path}: signals must be (N, {N_SAMPLES}, {N_LEADS}), got {handle['signals'].shape}")
        if handle["labels"].shape != (n, len(LABELS)):
            raise ContractError(f"{path}: labels must be ({n}, {len(LABELS)}), got {handle['labels'].shape}")
        for name in ("record_id", "patient_id", "split"):
            if handle[name].shape != (n,):
                raise ContractError(f"{path}: {name} must be ({n},), got {handle[name].shape}")
        stored_labels = [str(x) for x in handle.attrs.get("labels", [])]
        if stored_labels != list(LABELS):
            raise ContractError(f"{path}: label order {stored_labels} differs from the contract {list(LABELS)}")
    except Exception:
        handle.close()
        raise
    return handle


def read_index(path: str | os.PathLike) -> pd.DataFrame:
    """``record_id, patient_id, split`` (categorical train/val/test) and the six label columns;
    the frame's row number is the record's row in the HDF5 file."""
    with open_prepared(path) as handle:
        return _index_frame(handle["record_id"].asstr()[:].tolist(), handle["patient_id"].asstr()[:].tolist(),
                            handle["split"][:], handle["labels"][:])


def read_attrs(path: str | os.PathLike) -> dict:
    """The file's attributes as plain Python values (``extra`` decoded from JSON)."""
    with open_prepared(path) as handle:
        attrs = {}
        for key, value in handle.attrs.items():
            if isinstance(value, np.ndarray):
                value = [v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v for v in value]
            elif isinstance(value, np.generic):
                value = value.item()
            attrs[key] = value
        attrs["extra"] = json.loads(attrs.get("extra", "{}"))
        attrs["source_report"] = json.loads(attrs.get("source_report", "{}"))
        return attrs


def read_signals(path: str | os.PathLike, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """Signals ``(len(indices), 4096, 12)`` float32 for the given rows, in the given order."""
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    with open_prepared(path) as handle:
        return read_rows(handle["signals"], indices, str(path))


def read_rows(signals: h5py.Dataset, indices: np.ndarray, source: str) -> np.ndarray:
    """Rows of an open ``signals`` dataset in the requested order, as float32.

    h5py needs increasing unique indices for a fancy read, so rows are read sorted and
    put back in the caller's order.
    """
    n = signals.shape[0]
    if indices.size and (indices.min() < -n or indices.max() >= n):
        raise IndexError(f"{source}: row index out of range for {n} records")
    indices = np.where(indices < 0, indices + n, indices)
    unique, inverse = np.unique(indices, return_inverse=True)
    try:
        rows = signals[unique] if len(unique) else np.zeros((0, *signals.shape[1:]), signals.dtype)
    except OSError as error:
        raise ContractError(f"{source}: cannot read signals (corrupt file?): {error}") from error
    return np.asarray(rows, dtype=np.float32)[inverse.reshape(-1)]
