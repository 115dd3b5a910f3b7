"""Pre-rendered image stores: a prepared dataset's records as uint8 images in HDF5.

Used to render a test subset with the real ecg_plot 0.2.8 backend (about 2 s a
page, so it is done once, in parallel, and survives interruption), so that
evaluation can score models on genuine ecg_plot pages; and for any pre-rendered
training or evaluation set with the fast backend.

Image ``i`` of a store is ``TrainingImageRenderer(..., randomize_style=False)``
applied to prepared row ``source_index[i]`` with ``index=source_index[i]`` and
``epoch=0``, exactly what the on-the-fly path computes for that row, so the two
paths agree image for image whatever the worker count.

Layout of the output HDF5 file:

* ``images`` ``(n, H, W, 3)`` uint8, one chunk per image (lzf-compressed);
* ``source_index`` ``(n,)`` int64: rows of the prepared file;
* ``record_id`` ``(n,)`` str and ``labels`` ``(n, 6)`` uint8, copied for convenience;
* ``shard_done`` ``(n_shards,)`` bool: a rerun renders only unfinished shards;
* attributes ``config`` (JSON of everything that determines the images) and
  ``complete`` (True once every shard is written).
"""
from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np
from tqdm.auto import tqdm

from vizecg.contract import LABELS, ContractError
from vizecg.render.style import RenderStyle
from vizecg.render.training import TrainingImageRenderer

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
STORE_FORMAT_VERSION = 1

# Per-process state of pool workers (set by _init_worker): the renderer and the open prepared file.
_WORKER: dict[str, Any] = {}


def _split_rows(prepared_h5: Path, split: str | int | None, limit: int | None) -> tuple[np.ndarray, list[str], np.ndarray]:
    from vizecg.data.prepared import open_prepared

    with open_prepared(prepared_h5) as handle:
        split_codes = handle["split"][:]
        if split in (None, "all"):
            rows = np.arange(split_codes.shape[0])
        else:
            code = SPLIT_CODES.get(split, split) if isinstance(split, str) else int(split)
            if code not in SPLIT_CODES.values():
                raise ValueError(f"split must be one of {sorted(SPLIT_CODES)}, 'all' or 0/1/2, got {split!r}")
            rows = np.flatnonzero(split_codes == code)
        if limit is not None:
            rows = rows[: int(limit)]
        record_ids = handle["record_id"].asstr()[rows.tolist()] if rows.size else np.array([], dtype=object)
        labels = handle["labels"][rows.tolist()] if rows.size else np.zeros((0, len(LABELS)), np.uint8)
    return rows.astype(np.int64), [str(r) for r in record_ids], np.asarray(labels, np.uint8)


def _init_worker(prepared_h5: str, renderer: TrainingImageRenderer) -> None:
    """Open the prepared file once per worker. Errors are kept and raised by the first task, because a
    pool whose initializer raises silently restarts its workers forever."""
    import cv2

    from vizecg.data.prepared import open_prepared

    cv2.setNumThreads(1)  # parallelism comes from the processes
    _WORKER["renderer"] = renderer
    _WORKER["source"] = prepared_h5
    try:
        _WORKER["handle"] = open_prepared(prepared_h5)
    except Exception as error:  # noqa: BLE001 - re-raised in _render_shard
        _WORKER["error"] = error


def _render_shard(task: tuple[int, np.ndarray]) -> tuple[int, np.ndarray]:
    from vizecg.data.prepared import read_rows

    shard, rows = task
    if "error" in _WORKER:
        raise _WORKER["error"]
    renderer: TrainingImageRenderer = _WORKER["renderer"]
    signals = read_rows(_WORKER["handle"]["signals"], rows, _WORKER["source"])
    images = np.stack([renderer(signal, int(row), 0) for signal, row in zip(signals, rows)])
    return shard, images


def render_to_store(prepared_h5: str | os.PathLike, out_h5: str | os.PathLike, *, split: str | int | None = "test",
                    backend: str = "fast", style: RenderStyle | Mapping[str, Any] | str | None = None,
                    artifact_severity: float = 0.0, seed: int = 0, workers: int = 1, shard_size: int = 64,
                    limit: int | None = None, artifact_mix: str | None = None, progress: bool = True) -> Path:
    """Render ``split`` of a prepared HDF5 file into ``out_h5``, resumably and in parallel.

    ``style``: the look (default: the paper look at ecg_plot's natural size);
    ``artifact_severity``: fixed severity of the ``artifact_mix`` (default "photo")
    artifacts, 0 for clean pages; ``limit``: only the first ``limit`` rows of the
    split. A rerun with the same arguments renders only shards not yet written;
    different arguments on an existing store raise ``ValueError`` (delete it or
    choose another path). Returns the output path.
    """
    prepared_h5, out_h5 = Path(prepared_h5), Path(out_h5)
    if shard_size < 1 or workers < 1:
        raise ValueError(f"shard_size and workers must be >= 1, got {shard_size}, {workers}")
    resolved = RenderStyle.preset(style) if isinstance(style, str) else RenderStyle.from_dict(style)
    renderer = TrainingImageRenderer(resolved.height, resolved.width, randomize_style=False,
                                     artifact_severity=float(artifact_severity), seed=seed, style=resolved,
                                     backend=backend, artifact_mix=artifact_mix)
    rows, record_ids, labels = _split_rows(prepared_h5, split, limit)
    n = rows.size
    n_shards = (n + shard_size - 1) // shard_size
    config = {"format_version": STORE_FORMAT_VERSION, "renderer": renderer.config(), "split": split,
              "limit": limit, "shard_size": shard_size, "prepared": prepared_h5.name, "n": int(n)}
    config_json = json.dumps(config, sort_keys=True)

    out_h5.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(out_h5, "a") as out:
        if "config" in out.attrs:
            if out.attrs["config"] != config_json:
                raise ValueError(f"{out_h5}: holds images rendered with another configuration; delete it or "
                                 f"write elsewhere.\n  stored:    {out.attrs['config']}\n  requested: {config_json}")
            if not np.array_equal(out["source_index"][:], rows):
                raise ValueError(f"{out_h5}: its source rows differ from {prepared_h5}'s {split} split (prepared file rebuilt?)")
        else:
            for name in list(out.keys()):  # a start interrupted before its config was written
                del out[name]
            out.create_dataset("images", shape=(n, resolved.height, resolved.width, 3), dtype=np.uint8,
                               chunks=(1, resolved.height, resolved.width, 3) if n else None, compression="lzf")
            out.create_dataset("source_index", data=rows)
            out.create_dataset("record_id", data=np.asarray(record_ids, dtype=object), dtype=h5py.string_dtype())
            out.create_dataset("labels", data=labels)
            out.create_dataset("shard_done", data=np.zeros(n_shards, bool))
            out.attrs["labels"] = list(LABELS)
            out.attrs["complete"] = False
            out.attrs["config"] = config_json  # last: a file without it is started afresh by h5py "a"
        done = out["shard_done"][:]
        todo = [(int(s), rows[s * shard_size:(s + 1) * shard_size]) for s in np.flatnonzero(~done)]
        remaining = int(sum(len(r) for _, r in todo))
        bar = tqdm(total=n, initial=n - remaining, desc=f"render {split} ({backend})", unit="img", disable=not progress)

        def write(shard: int, images: np.ndarray) -> None:
            out["images"][shard * shard_size: shard * shard_size + len(images)] = images
            out["shard_done"][shard] = True
            out.flush()
            bar.update(len(images))

        if workers == 1 or len(todo) <= 1:
            _init_worker(str(prepared_h5), renderer)
            try:
                for task in todo:
                    write(*_render_shard(task))
            finally:
                handle = _WORKER.pop("handle", None)
                if handle is not None:
                    handle.close()
                _WORKER.pop("error", None)
        else:
            # The platform's default start method (fork on Linux). Under spawn (macOS, Windows) the calling
            # script needs an ``if __name__ == "__main__":`` guard, as for any multiprocessing code.
            with multiprocessing.get_context().Pool(workers, initializer=_init_worker, initargs=(str(prepared_h5), renderer)) as pool:
                for shard, images in pool.imap_unordered(_render_shard, todo):
                    write(shard, images)
        bar.close()
        out.attrs["complete"] = bool(out["shard_done"][:].all())
    return out_h5


def open_image_store(path: str | os.PathLike) -> h5py.File:
    """Open a finished store read-only; ``ContractError`` naming the file if it is unfinished or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image store not found (run render_to_store first)")
    handle = h5py.File(path, "r")
    try:
        if not bool(handle.attrs.get("complete", False)):
            raise ContractError(f"{path}: image store is unfinished; rerun render_to_store to complete it")
        for name in ("images", "source_index", "record_id", "labels"):
            if name not in handle:
                raise ContractError(f"{path}: image store lacks dataset {name!r}")
        images = handle["images"]
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ContractError(f"{path}: images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    except Exception:
        handle.close()
        raise
    return handle


def store_config(path: str | os.PathLike) -> dict[str, Any]:
    """The configuration a store was rendered with (renderer dict, split, ...)."""
    with open_image_store(path) as handle:
        return json.loads(handle.attrs["config"])
