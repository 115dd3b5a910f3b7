"""A training set that replays drawn pages: a fixed-size pool, part of it redrawn every epoch.

On the deployed path (a page drawn at twice the input size, photographed, then read back by
``prepare_page``) one training page costs about 150 ms of CPU to make and 20-40 ms to learn
from, so a model fed fresh pages waits on its data: the release run fed fresh pages saw
36,864 pages in 77 minutes on two cores. Image models keep improving far past that many
samples, and a page seen several times still teaches (the image-learning issue reports a
ResNet18 at 0.96 validation AUROC after replaying 6,000 records 13 times). :class:`ReplayPool` therefore spends the
CPU where it buys accuracy: it draws ``size`` items from a
:class:`~vizecg.data.stream.SyntheticStreamDataset` once, replaces ``refresh`` of them with
new records every epoch, and serves the pool (an epoch is ``size`` items).

* **A curriculum for free.** Each redrawn item takes the look of the epoch that drew it, so
  with the stream's renderer ramping from clean pages to the broad look, the pool's share of
  broad pages ramps with it, ``refresh / size`` per epoch.
* **Fresh pages while they are cheap.** ``fresh_epochs`` redraws the whole pool for that many
  epochs before the replaying starts: with the curriculum's clean pages (about 30 ms each on
  the deployed path, against 150-400 ms with artifacts) the network sees that many epochs of
  distinct pages, which is what the slowest class needs (the learning curves learn 1dAVb only
  beyond about 50,000 distinct pages), and replays only the costly broad look.
* **Deterministic and resumable.** Which record a slot holds after epoch ``e`` is a function
  of ``(size, refresh, e)`` alone (:meth:`ReplayPool.contents`), and each record of the
  stream is a pure function of its index and epoch, so a resumed run redraws exactly the
  pool it left (only what it needs: at epoch 0 all of it).
* **Patient-wise split.** Every item comes from the stream, which refuses the seed of the
  validation and test records.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from vizecg.data.stream import SyntheticStreamDataset


class _Draws(Dataset):
    """``(slot, record index, look epoch)`` triples drawn from the stream (what the pool's workers run)."""

    def __init__(self, stream: SyntheticStreamDataset, draws: list[tuple[int, int, int]]) -> None:
        self.stream, self.draws = stream, draws

    def __len__(self) -> int:
        return len(self.draws)

    def __getitem__(self, item: int) -> dict:
        slot, index, epoch = self.draws[item]
        out = self.stream.draw(index, epoch)
        out["slot"] = slot
        if "image" in out:  # back to the renderer's bytes: a quarter of the memory, and exact
            out["image"] = out["image"].mul(255.0).round_().to(torch.uint8)
        return out


class ReplayPool(Dataset):
    """``size`` items of ``stream``, ``refresh`` of them redrawn at the start of every epoch.

    Args:
        stream: where items come from (:meth:`SyntheticStreamDataset.draw`); its own
            ``records_per_epoch`` is not used.
        size: items in the pool, and per epoch.
        refresh: items redrawn per epoch once the fresh epochs are over (0 replays the last fresh
            pool forever).
        fresh_epochs: the first epochs, each of which draws the whole pool anew (1: only the
            first epoch fills it).
        num_workers: DataLoader workers that draw the items (rendering is the costly part).
        progress: a tqdm bar while drawing.
    """

    def __init__(self, stream: SyntheticStreamDataset, size: int, refresh: int, *, fresh_epochs: int = 1,
                 num_workers: int = 0, progress: bool = True) -> None:
        if size < 1:
            raise ValueError(f"pool size must be >= 1, got {size}")
        if not 0 <= refresh <= size:
            raise ValueError(f"refresh must lie in [0, size={size}], got {refresh}")
        if int(fresh_epochs) < 1:
            raise ValueError(f"fresh_epochs must be >= 1 (the first epoch fills the pool), got {fresh_epochs}")
        self.stream = stream
        self.size, self.refresh = int(size), int(refresh)
        self.fresh_epochs = int(fresh_epochs)
        self.num_workers = int(num_workers)
        self.progress = progress
        self.epoch = -1
        self._held: list[tuple[int, int] | None] = [None] * self.size  # (record index, look epoch) per slot
        self._items: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return self.size

    def contents(self, epoch: int) -> list[tuple[int, int]]:
        """``(record index, look epoch)`` of every slot once epoch ``epoch`` has been drawn.

        A fresh epoch ``e < F`` (``F = fresh_epochs``) fills slots ``0..size-1`` with records
        ``e*size ... (e+1)*size - 1``; a later epoch ``e >= F`` puts records ``F*size + (e-F)*refresh ...``
        into the next ``refresh`` slots, cycling through the pool, so the oldest items leave first.
        """
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        fresh = min(int(epoch), self.fresh_epochs - 1)
        held = [(fresh * self.size + slot, fresh) for slot in range(self.size)]
        if epoch < self.fresh_epochs or self.refresh == 0:
            return held
        # only the last size/refresh epochs can still be in the pool
        first = max(self.fresh_epochs, epoch - (self.size + self.refresh - 1) // self.refresh)
        for e in range(first, epoch + 1):
            for j in range(self.refresh):
                draw = (e - self.fresh_epochs) * self.refresh + j
                held[draw % self.size] = (self.fresh_epochs * self.size + draw, e)
        return held

    def set_epoch(self, epoch: int) -> None:
        """Redraw what epoch ``epoch``'s pool holds that this one does not (all of it after a resume)."""
        target = self.contents(int(epoch))
        draws = [(slot, index, look) for slot, (index, look) in enumerate(target) if self._held[slot] != (index, look)]
        if draws:
            self._draw(draws, int(epoch))
        self._held = target
        self.epoch = int(epoch)

    def _draw(self, draws: list[tuple[int, int, int]], epoch: int) -> None:
        # An explicit generator: drawing must not consume the global torch RNG that training uses
        # (a resumed run draws more items than an uninterrupted one at the same epoch).
        loader = DataLoader(_Draws(self.stream, draws), batch_size=32, num_workers=self.num_workers,
                            generator=torch.Generator().manual_seed(0))
        bar = tqdm(total=len(draws), desc=f"drawing pool, epoch {epoch + 1}", disable=not self.progress,
                   leave=False)
        for batch in loader:
            slots = batch.pop("slot")
            if not self._items:
                self._items = {key: torch.empty((self.size, *value.shape[1:]), dtype=value.dtype)
                               for key, value in batch.items()}
            for key, value in batch.items():
                self._items[key][slots] = value
            bar.update(len(slots))
        bar.close()

    def __getitem__(self, item: int) -> dict:
        if not 0 <= item < self.size:
            raise IndexError(f"replay pool: item {item} out of range for {self.size} items")
        if self.epoch < 0:
            raise RuntimeError("ReplayPool: call set_epoch(epoch) before reading items")
        out = {key: value[item] for key, value in self._items.items()}
        if "image" in out:
            out["image"] = out["image"].float().div_(255.0)
        return out

    def record_indices(self) -> np.ndarray:
        """The stream record index each slot holds now."""
        return np.array([index for index, _ in self._held], dtype=np.int64)
