"""A training set that never repeats: synthetic records generated per ``(seed, epoch, item)``.

A fixed prepared set of a thousand records is what starved the image models: a
network that must learn where a QRS complex sits on a page needs tens of thousands
of pages, and the generator makes about 400 records per second per core, cheaper
than storing them. :class:`SyntheticStreamDataset` therefore draws epoch ``e``'s
item ``i`` as record ``e * records_per_epoch + i`` of the synthetic dataset
``stream_seed``, preprocessed exactly as the prepared file's records are
(:func:`vizecg.data.preprocess.preprocess_batch`), and yields the same item dicts
as :class:`vizecg.data.dataset.ECGDataset`.

Why this keeps the study sound:

* **Deterministic.** A record is a pure function of ``(stream_seed, index)``
  (:func:`vizecg.data.synthetic.generate`), the augmentation of ``(seed, index,
  epoch)``; any worker count, visiting order or resume sees the same items.
* **Patient-wise split.** Synthetic patient ids carry the dataset seed, so the
  stream's patients (seed ``stream_seed``) can never be the validation or test
  patients of the prepared file (seed ``data.source_options.seed``); the
  constructor refuses equal seeds.
* **One pipeline.** Gain augmentation and the image renderer are the ones
  :class:`~vizecg.data.dataset.ECGDataset` applies, through the same helpers.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch.utils.data import Dataset

from vizecg.contract import SAMPLE_RATE_HZ, ContractError
from vizecg.data.dataset import ImageRenderer, decimate_signal, gain_augmented, image_tensor
from vizecg.data.ecg_measurements import measurement_targets
from vizecg.data.preprocess import as_short_exam, preprocess_batch
from vizecg.data.synthetic import generate

#: Offset between the stream's record indices and the renderer's index space, so that a
#: stream record never shares its page look with a prepared record of the same number.
RENDER_INDEX_OFFSET = 1 << 40
#: entropy that sets the short-exam decision's generator apart from the gain augmentation's
SHORT_EXAM_STREAM = 7


class SyntheticStreamDataset(Dataset):
    """``records_per_epoch`` fresh synthetic records per epoch (call :meth:`set_epoch` each epoch).

    Args:
        records_per_epoch: items per epoch (``len(self)``).
        stream_seed: the synthetic dataset the records come from; must differ from
            ``holdout_seed``.
        holdout_seed: seed of the prepared validation/test records (to refuse overlap).
        generator_options: prevalence and :class:`~vizecg.data.synthetic.SyntheticOptions` fields.
        decimate, image_renderer, gain_augment, seed: as in :class:`~vizecg.data.dataset.ECGDataset`.
        distinct_epochs: ``True`` draws new records every epoch (an endless stream);
            ``False`` repeats the same ``records_per_epoch`` records with new augmentation.
        measurement_targets: add ``"measurements"``, the record's standardised PR, QRS, heart
            rate, RR irregularity and P-wave presence measured on its signal
            (:func:`vizecg.data.ecg_measurements.measurement_targets`), for
            :class:`vizecg.models.losses.MeasurementLoss`.
        short_exam_share: the share of records shown as the 7 s exam CODE-15% would store of them
            (:func:`vizecg.data.preprocess.as_short_exam`: the centred 7 s kept, zeros around), to
            both streams alike, so that signal and page still agree. Why: the paper's data holds
            7 s exams beside 10 s ones, and a model that only saw 10 s pages read 7 s pages 0.011
            macro AUROC lower (``reports/metrics/short_exams.json``). The labels do not change: a
            rate, a PR interval or a block is the same over 7 s. The decision has a stream of its
            own, so a share of 0 gives the same items as before the option existed.
    """

    def __init__(self, records_per_epoch: int, *, stream_seed: int, holdout_seed: int | None = None,
                 generator_options: Mapping | None = None, decimate: int = 1,
                 image_renderer: ImageRenderer | None = None, gain_augment: tuple[float, float] | None = None,
                 seed: int = 0, distinct_epochs: bool = True, measurement_targets: bool = False,
                 short_exam_share: float = 0.0) -> None:
        if records_per_epoch < 1:
            raise ValueError(f"records_per_epoch must be >= 1, got {records_per_epoch}")
        if holdout_seed is not None and int(stream_seed) == int(holdout_seed):
            raise ValueError(f"stream_seed {stream_seed} equals the seed of the prepared validation/test records; "
                             "the training stream would share their patients")
        self.records_per_epoch = int(records_per_epoch)
        self.stream_seed = int(stream_seed)
        self.generator_options = dict(generator_options or {})
        self.decimate = int(decimate)
        self.image_renderer = image_renderer
        self.gain_augment = None if gain_augment is None else (float(gain_augment[0]), float(gain_augment[1]))
        self.seed = int(seed)
        self.distinct_epochs = bool(distinct_epochs)
        self.measurement_targets = bool(measurement_targets)
        if not 0.0 <= float(short_exam_share) <= 1.0:
            raise ValueError(f"short_exam_share must lie in [0, 1], got {short_exam_share!r}")
        self.short_exam_share = float(short_exam_share)
        self.epoch = 0

    def __len__(self) -> int:
        return self.records_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Select epoch ``epoch``'s records (when ``distinct_epochs``) and augmentation."""
        self.epoch = int(epoch)

    def record_index(self, item: int) -> int:
        """Index in the synthetic dataset ``stream_seed`` of ``item`` in the current epoch."""
        return (self.epoch * self.records_per_epoch if self.distinct_epochs else 0) + int(item)

    def __getitem__(self, item: int) -> dict:
        if not 0 <= item < len(self):
            raise IndexError(f"synthetic stream: item {item} out of range for {len(self)} records")
        return self.draw(self.record_index(item), self.epoch)

    def is_short_exam(self, index: int, epoch: int) -> bool:
        """Whether record ``index`` is shown as a 7 s exam in epoch ``epoch``."""
        if self.short_exam_share == 0.0:
            return False
        rng = np.random.default_rng([self.seed, RENDER_INDEX_OFFSET + int(index), int(epoch), SHORT_EXAM_STREAM])
        return bool(rng.random() < self.short_exam_share)

    def draw(self, index: int, epoch: int) -> dict:
        """Record ``index`` of the stream with epoch ``epoch``'s augmentation and page look (what
        item ``i`` of epoch ``epoch`` is when ``record_index(i) == index``)."""
        raw, labels = generate(1, self.stream_seed, start=index, **self.generator_options)
        source = f"synthetic stream (seed={self.stream_seed}, record {index})"
        signals, _ = preprocess_batch(raw, SAMPLE_RATE_HZ, source=source)
        signal = signals[0]  # (4096, 12) mV
        render_index = RENDER_INDEX_OFFSET + index
        # measured before the gain augmentation: intervals and rates do not depend on lead gains
        measurements = measurement_targets(signal) if self.measurement_targets else None
        if self.is_short_exam(index, epoch):
            signal = as_short_exam(signal)
        if self.gain_augment is not None:
            signal = gain_augmented(signal, self.gain_augment, np.random.default_rng([self.seed, render_index, epoch]))
        out = {"signal": torch.from_numpy(np.ascontiguousarray(decimate_signal(signal.T, self.decimate), np.float32)),
               "label": torch.from_numpy(labels[0].astype(np.float32)), "index": render_index}
        if measurements is not None:
            out["measurements"] = torch.from_numpy(measurements)
        if self.image_renderer is not None:
            try:
                out["image"] = image_tensor(self.image_renderer(signal, render_index, epoch))
            except ContractError as error:
                raise ContractError(f"{source}: {error}") from error
        return out
