"""A lazy torch ``Dataset`` over a prepared HDF5 file (:mod:`vizecg.data.prepared`).

Only the split's row numbers and labels are read up front. The HDF5 file itself is
opened on first access in each process: h5py handles must not cross ``fork``, so every
DataLoader worker opens its own (the handle is dropped when the dataset is pickled, and
a handle from another process id is never reused).

Items are dicts: ``"signal"`` float32 ``(12, 4096 // decimate)``, ``"label"`` float32
``(6,)``, ``"index"`` (row in the HDF5 file) and, with an ``image_renderer``, ``"image"``
float32 ``(3, H, W)`` in [0, 1].

Augmentation is a deterministic function of ``(seed, index, epoch)``: the same item in
the same epoch is identical whatever the worker count or visiting order, and
:meth:`ECGDataset.set_epoch` changes it between epochs. Call ``set_epoch`` before
iterating a DataLoader each epoch; with ``persistent_workers=True`` the workers keep the
epoch they were started with, so use non-persistent workers (the default) or pass the
epoch through a sampler.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch
from scipy.signal import resample_poly
from torch.utils.data import Dataset

from vizecg.contract import N_SAMPLES, ContractError
from vizecg.data.prepared import open_prepared
from vizecg.data.splits import split_code

ImageRenderer = Callable[[np.ndarray, int, int], np.ndarray]

#: The largest amplitude gain augmentation may produce (mV).
GAIN_PEAK_LIMIT_MV = 18.0


def decimate_signal(signal: np.ndarray, factor: int) -> np.ndarray:
    """Anti-aliased downsampling of ``(12, T)`` by an integer ``factor`` along time.

    Uses a polyphase FIR (:func:`scipy.signal.resample_poly`): linear phase, so QRS and
    P-wave timing is not shifted, and stable for any factor (``scipy.signal.decimate``'s
    IIR needs chaining beyond a factor of 13).
    """
    if factor == 1:
        return signal
    return resample_poly(signal, 1, factor, axis=-1)


def gain_augmented(signal: np.ndarray, gain_range: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """``(T, 12)`` signal with each lead multiplied by its own gain, log-uniform in ``gain_range``.

    A gain is capped so that no lead leaves :data:`GAIN_PEAK_LIMIT_MV` (inside the contract's
    +-20 mV): a 2x gain on a 15 mV lead would otherwise make a record no real ECG is.
    """
    low, high = gain_range
    gains = np.exp(rng.uniform(np.log(low), np.log(high), size=signal.shape[1]))
    peaks = np.abs(signal).max(axis=0)
    gains = np.minimum(gains, GAIN_PEAK_LIMIT_MV / np.maximum(peaks, 1e-6))
    return signal * gains.astype(np.float32)


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """A renderer's uint8 ``(H, W, 3)`` page as the float ``(3, H, W)`` [0, 1] tensor models take."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ContractError(f"image_renderer must return uint8 (H, W, 3), got {image.dtype} {image.shape}")
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


class ECGDataset(Dataset):
    """Records of one split (or all with ``split=None``) of a prepared HDF5 file.

    ``decimate`` must divide 4096. ``gain_augment=(low, high)`` multiplies each lead by its
    own gain drawn log-uniformly from ``[low, high]`` (per-lead amplitude must not carry a
    label: LUDB normalises every lead to 1 mV peak-to-peak); the image is rendered from the
    augmented signal so both modalities agree. ``image_renderer(signal (4096, 12) mV,
    index, epoch) -> uint8 (H, W, 3)`` draws the image; it owns its per-epoch style.
    """

    def __init__(self, path: str | os.PathLike, split: str | None = None, *, decimate: int = 1,
                 image_renderer: ImageRenderer | None = None, gain_augment: tuple[float, float] | None = None,
                 seed: int = 0) -> None:
        if decimate < 1 or N_SAMPLES % decimate:
            raise ValueError(f"decimate must be a positive divisor of {N_SAMPLES}, got {decimate}")
        if gain_augment is not None:
            low, high = gain_augment
            if not 0 < low <= high:
                raise ValueError(f"gain_augment must be (low, high) with 0 < low <= high, got {gain_augment}")
        self.path = Path(path)
        self.split = split
        self.decimate = int(decimate)
        self.image_renderer = image_renderer
        self.gain_augment = None if gain_augment is None else (float(gain_augment[0]), float(gain_augment[1]))
        self.seed = int(seed)
        self.epoch = 0
        with open_prepared(self.path) as handle:
            splits = handle["split"][:]
            rows = np.arange(len(splits)) if split is None else np.flatnonzero(splits == split_code(split))
            #: Row numbers in the HDF5 file of this dataset's items.
            self.rows: np.ndarray = rows.astype(np.int64)
            #: ``(len(self), 6)`` uint8 labels of the split, for metrics without reading signals.
            self.labels: np.ndarray = handle["labels"][:][self.rows]
        self._handle: h5py.File | None = None
        self._handle_pid: int | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation of ``epoch`` (gains and the renderer's style)."""
        self.epoch = int(epoch)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handle"], state["_handle_pid"] = None, None
        return state

    def _signals(self) -> h5py.Dataset:
        if self._handle is None or self._handle_pid != os.getpid():
            self._handle = open_prepared(self.path)
            self._handle_pid = os.getpid()
        return self._handle["signals"]

    def close(self) -> None:
        """Close this process's file handle (it is reopened on the next access)."""
        if self._handle is not None and self._handle_pid == os.getpid():
            self._handle.close()
        self._handle, self._handle_pid = None, None

    def augmentation_rng(self, row: int) -> np.random.Generator:
        """The random generator of ``(seed, row, epoch)``."""
        return np.random.default_rng([self.seed, int(row), self.epoch])

    def __getitem__(self, item: int) -> dict:
        if not -len(self) <= item < len(self):
            raise IndexError(f"{self.path}: item {item} out of range for {len(self)} records")
        row = int(self.rows[item])
        try:
            signal = np.asarray(self._signals()[row], dtype=np.float32)  # (4096, 12)
        except OSError as error:
            raise ContractError(f"{self.path}: cannot read record row {row}: {error}") from error
        if self.gain_augment is not None:
            signal = gain_augmented(signal, self.gain_augment, self.augmentation_rng(row))
        out = {
            "signal": torch.from_numpy(np.ascontiguousarray(decimate_signal(signal.T, self.decimate), np.float32)),
            "label": torch.from_numpy(self.labels[item].astype(np.float32)),
            "index": row,
        }
        if self.image_renderer is not None:
            out["image"] = image_tensor(self.image_renderer(signal, row, self.epoch))
        return out
