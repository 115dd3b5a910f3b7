"""The unit every data source yields: a chunk of records in the contract of :mod:`vizecg.contract`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vizecg.contract import ContractError, check_labels, check_signals


@dataclass
class RecordChunk:
    """``len(record_ids)`` records: signals ``(n, 4096, 12)`` float32 mV at 400 Hz,
    labels ``(n, 6)`` uint8, and one record id and patient id (str) per record."""

    signals: np.ndarray
    labels: np.ndarray
    record_ids: list[str]
    patient_ids: list[str]
    source: str = "<chunk>"

    def __post_init__(self) -> None:
        self.signals = check_signals(self.signals, self.source)
        self.labels = check_labels(self.labels, self.source)
        if self.signals.ndim != 3 or self.labels.ndim != 2:
            raise ContractError(f"{self.source}: a chunk needs batched signals (n, 4096, 12) and labels (n, 6)")
        n = len(self.signals)
        if not (len(self.labels) == len(self.record_ids) == len(self.patient_ids) == n):
            raise ContractError(
                f"{self.source}: chunk lengths disagree: signals {n}, labels {len(self.labels)}, "
                f"record_ids {len(self.record_ids)}, patient_ids {len(self.patient_ids)}")

    def __len__(self) -> int:
        return len(self.record_ids)
