"""WFDB sources (PTB-XL, PhysioNet/CinC 2020-2021 challenge folders, LUDB, any WFDB folder).

Records are read with the ``wfdb`` package, leads are matched to the contract order by
name (case-insensitive, ``I``/``i``/``DI``/``lead I`` ...), physical units are converted to
mV, and :func:`vizecg.data.preprocess.preprocess_batch` resamples to 400 Hz, crops or
pads (centred) to 4096 samples and detrends. A record lacking one of the 12 leads is an
error naming its header file.

Labels come from a mapper per dataset:

* PTB-XL: SCP codes in ``ptbxl_database.csv`` (``1AVB, CRBBB, CLBBB, SBRAD, AFIB, STACH``).
  A code counts when present, whatever its likelihood: PTB-XL gives rhythm statements
  (SBRAD, AFIB, STACH) likelihood 0, so a likelihood threshold would drop them all.
* Challenge 2020/2021: SNOMED CT codes on the header line ``# Dx:``. Codes outside
  :data:`CHALLENGE_SNOMED` are negatives for all six classes, counted in the report.
  These folders give no patient ids, so each record is its own patient.
* LUDB: the diagnosis text in ``ludb.csv`` (complete bundle branch blocks only,
  "I degree AV block" but not "III degree"); one record per patient.
"""
from __future__ import annotations

import ast
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb
from tqdm.auto import tqdm

from vizecg.contract import LABELS, LEADS, N_LEADS, ContractError, check_signals
from vizecg.data.preprocess import PreprocessReport, preprocess_record
from vizecg.data.records import RecordChunk

log = logging.getLogger(__name__)

DEFAULT_LUDB_ROOT: str = "../shared/data/ludb"

# Normalised lead name (lower case, alphanumerics only, "lead" prefix dropped) -> contract index.
_LEAD_ALIASES: dict[str, int] = {
    **{name.lower(): index for index, name in enumerate(LEADS)},
    "di": 0, "dii": 1, "diii": 2,
}
_UNIT_TO_MV: dict[str, float] = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}

PTBXL_SCP: dict[str, str] = {"1AVB": "1dAVb", "CRBBB": "RBBB", "CLBBB": "LBBB",
                             "SBRAD": "SB", "AFIB": "AF", "STACH": "ST"}
CHALLENGE_SNOMED: dict[str, str] = {
    "270492004": "1dAVb",
    "59118001": "RBBB", "713427006": "RBBB",
    "164909002": "LBBB", "733534002": "LBBB",
    "426177001": "SB",
    "164889003": "AF",
    "427084000": "ST",
}
# LUDB diagnosis text -> label; matched case-insensitively within the named ludb.csv column.
# "\bcomplete" does not match inside "incomplete"; "\bi degree" does not match "iii degree".
LUDB_PATTERNS: dict[str, tuple[str, str]] = {
    "1dAVb": ("Conduction abnormalities", r"\bi\s+degree\s+av[\s-]*block"),
    "RBBB": ("Conduction abnormalities", r"\bcomplete\s+right\s+bundle\s+branch\s+block"),
    "LBBB": ("Conduction abnormalities", r"\bcomplete\s+left\s+bundle\s+branch\s+block"),
    "SB": ("Rhythms", r"\bsinus\s+bradycardia"),
    "AF": ("Rhythms", r"\batrial\s+fibrillation"),
    "ST": ("Rhythms", r"\bsinus\s+tachycardia"),
}


def _normalise_lead_name(name: str) -> str:
    key = re.sub(r"[^0-9a-zµμ]", "", name.strip().lower())
    return key[4:] if key.startswith("lead") and len(key) > 4 else key


def contract_lead_order(names: Sequence[str], source: str) -> list[int]:
    """Column indices of ``names`` that give the contract leads in order ``I, II, ... V6``.

    Raises :class:`ContractError` naming ``source`` when a lead is missing or appears twice.
    Extra channels (e.g. a rhythm strip or respiration) are ignored.
    """
    found: dict[int, int] = {}
    for column, name in enumerate(names):
        lead = _LEAD_ALIASES.get(_normalise_lead_name(str(name)))
        if lead is None:
            continue
        if lead in found:
            raise ContractError(f"{source}: lead {LEADS[lead]} appears twice (channels {names[found[lead]]!r} "
                                f"and {name!r})")
        found[lead] = column
    missing = [LEADS[i] for i in range(N_LEADS) if i not in found]
    if missing:
        raise ContractError(f"{source}: missing lead(s) {', '.join(missing)}; channels are {list(names)}")
    return [found[i] for i in range(N_LEADS)]


def read_wfdb_raw(record_path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Read one WFDB record (path without extension) -> ``(samples (T, 12) mV in contract order, fs)``."""
    record_path = Path(record_path)
    header = record_path.with_suffix(".hea")
    if not header.is_file():
        raise FileNotFoundError(f"{header}: WFDB header not found")
    try:
        record = wfdb.rdrecord(str(record_path))
    except Exception as error:  # wfdb raises bare ValueError/OSError/... for broken files
        raise ContractError(f"{header}: unreadable WFDB record: {type(error).__name__}: {error}") from error
    if record.p_signal is None:
        raise ContractError(f"{header}: WFDB record has no physical signal")
    order = contract_lead_order(record.sig_name, str(header))
    signal = record.p_signal[:, order].astype(np.float64)
    for target, column in enumerate(order):
        unit = (record.units[column] or "mV").strip().lower()
        if unit not in _UNIT_TO_MV:
            raise ContractError(f"{header}: lead {LEADS[target]} has unit {record.units[column]!r}; "
                                f"expected one of mV, uV, V")
        signal[:, target] *= _UNIT_TO_MV[unit]
    return signal, float(record.fs)


# ---------------------------------------------------------------------------------------------
# Label mappers


def ptbxl_labels(scp_codes: Mapping[str, float] | str, source: str = "ptbxl_database.csv") -> np.ndarray:
    """Six labels from a PTB-XL ``scp_codes`` dict (or its string form)."""
    if isinstance(scp_codes, str):
        try:
            scp_codes = ast.literal_eval(scp_codes)
        except (ValueError, SyntaxError) as error:
            raise ContractError(f"{source}: unparseable scp_codes {scp_codes!r}") from error
    labels = np.zeros(len(LABELS), dtype=np.uint8)
    for code in scp_codes:
        if code in PTBXL_SCP:
            labels[LABELS.index(PTBXL_SCP[code])] = 1
    return labels


def challenge_dx_codes(comments: Sequence[str]) -> list[str]:
    """SNOMED codes on the ``Dx:`` line of a challenge header's comments (empty if none)."""
    for line in comments:
        match = re.match(r"\s*Dx\s*:\s*(.*)$", line)
        if match:
            return [code.strip() for code in match.group(1).split(",") if code.strip()]
    return []


def challenge_labels(codes: Sequence[str], unknown: Counter | None = None) -> np.ndarray:
    """Six labels from challenge SNOMED codes; codes not mapped are negatives, counted in ``unknown``."""
    labels = np.zeros(len(LABELS), dtype=np.uint8)
    for code in codes:
        label = CHALLENGE_SNOMED.get(code)
        if label is None:
            if unknown is not None:
                unknown[code] += 1
        else:
            labels[LABELS.index(label)] = 1
    return labels


def ludb_labels(row: Mapping[str, object]) -> np.ndarray:
    """Six labels from one ``ludb.csv`` row (its ``Rhythms`` and ``Conduction abnormalities`` text)."""
    labels = np.zeros(len(LABELS), dtype=np.uint8)
    for label, (column, pattern) in LUDB_PATTERNS.items():
        text = row.get(column)
        if isinstance(text, str) and re.search(pattern, text, flags=re.IGNORECASE):
            labels[LABELS.index(label)] = 1
    return labels


# ---------------------------------------------------------------------------------------------
# Record lists per dataset


@dataclass(frozen=True)
class WfdbRecordRef:
    """Where one record lives and what it is: path without extension, ids, labels."""

    path: Path
    record_id: str
    patient_id: str
    labels: np.ndarray


@dataclass
class WfdbReport:
    """What a pass over a WFDB source read and skipped; unknown challenge codes are counted here."""

    records: int = 0
    skipped: int = 0
    unknown_codes: Counter = field(default_factory=Counter)
    preprocess: PreprocessReport = field(default_factory=PreprocessReport)

    def as_dict(self) -> dict:
        return {"records": self.records, "skipped": self.skipped, "unknown_codes": dict(self.unknown_codes),
                **{f"preprocess_{k}": v for k, v in self.preprocess.as_dict().items()}}


def ludb_records(root: str | os.PathLike = DEFAULT_LUDB_ROOT) -> list[WfdbRecordRef]:
    """LUDB records with labels parsed from ``ludb.csv``; one patient per record."""
    root = Path(root)
    table_path = root / "ludb.csv"
    if not table_path.is_file():
        raise FileNotFoundError(f"{table_path}: LUDB diagnosis table not found (is {root} an LUDB 1.0.1 folder?)")
    table = pd.read_csv(table_path)
    missing = [c for c in ("ID", *{column for column, _ in LUDB_PATTERNS.values()}) if c not in table.columns]
    if missing:
        raise ContractError(f"{table_path}: missing column(s) {', '.join(missing)}")
    refs = []
    for row in table.to_dict("records"):
        record = str(int(row["ID"]))
        refs.append(WfdbRecordRef(root / "data" / record, f"ludb-{record}", f"ludb-{record}", ludb_labels(row)))
    return refs


def ptbxl_records(root: str | os.PathLike, *, sample_rate: int = 500) -> list[WfdbRecordRef]:
    """PTB-XL records from ``ptbxl_database.csv`` at 500 Hz (``filename_hr``) or 100 Hz (``filename_lr``)."""
    root = Path(root)
    table_path = root / "ptbxl_database.csv"
    if not table_path.is_file():
        raise FileNotFoundError(f"{table_path}: PTB-XL database table not found")
    column = {500: "filename_hr", 100: "filename_lr"}.get(sample_rate)
    if column is None:
        raise ValueError(f"PTB-XL comes at 500 or 100 Hz, got sample_rate={sample_rate}")
    table = pd.read_csv(table_path)
    missing = [c for c in ("ecg_id", "patient_id", "scp_codes", column) if c not in table.columns]
    if missing:
        raise ContractError(f"{table_path}: missing column(s) {', '.join(missing)}")
    refs = []
    for row in table.to_dict("records"):
        patient = row["patient_id"]
        patient = str(int(patient)) if isinstance(patient, float) and float(patient).is_integer() else str(patient)
        refs.append(WfdbRecordRef(root / row[column], f"ptbxl-{int(row['ecg_id'])}", f"ptbxl-{patient}",
                                  ptbxl_labels(row["scp_codes"], str(table_path))))
    return refs


def _headers_under(root: Path) -> list[Path]:
    records_file = root / "RECORDS"
    if records_file.is_file():
        names = [line.strip() for line in records_file.read_text().splitlines() if line.strip()]
        return [root / name for name in names]
    return sorted(p.with_suffix("") for p in root.rglob("*.hea"))


def challenge_records(root: str | os.PathLike, unknown: Counter | None = None) -> list[WfdbRecordRef]:
    """Every record under ``root`` (recursively) labelled from its ``# Dx:`` header line."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: challenge data folder not found")
    refs = []
    for path in sorted(p.with_suffix("") for p in root.rglob("*.hea")):
        try:
            header = wfdb.rdheader(str(path))
        except Exception as error:
            raise ContractError(f"{path}.hea: unreadable WFDB header: {error}") from error
        codes = challenge_dx_codes(header.comments or [])
        if not codes:
            log.warning("%s.hea: no '# Dx:' line; labelled all negative", path)
        record_id = str(path.relative_to(root))
        refs.append(WfdbRecordRef(path, record_id, record_id, challenge_labels(codes, unknown)))
    if not refs:
        raise FileNotFoundError(f"{root}: no WFDB headers (*.hea) found")
    return refs


def folder_records(root: str | os.PathLike,
                   labeler: Callable[[wfdb.Record], np.ndarray] | None = None) -> list[WfdbRecordRef]:
    """Any WFDB folder (``RECORDS`` file, or every ``*.hea`` under it). ``labeler(header)`` gives
    the six labels from a header; without one, records are unlabelled (all zeros)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: WFDB folder not found")
    refs = []
    for path in _headers_under(root):
        labels = np.zeros(len(LABELS), dtype=np.uint8)
        if labeler is not None:
            labels = np.asarray(labeler(wfdb.rdheader(str(path))), dtype=np.uint8)
        record_id = str(path.relative_to(root))
        refs.append(WfdbRecordRef(path, record_id, record_id, labels))
    return refs


# ---------------------------------------------------------------------------------------------
# Reading


class WfdbReader:
    """Read :class:`WfdbRecordRef` lists as preprocessed :class:`RecordChunk` of ``chunk_size``.

    ``on_error="raise"`` (default) stops at the first unreadable record or missing lead with
    an error naming its file; ``"skip"`` logs, counts (``report.skipped``) and goes on.
    """

    def __init__(self, refs: Sequence[WfdbRecordRef], *, name: str, chunk_size: int = 256,
                 max_records: int | None = None, on_error: str = "raise", progress: bool = True,
                 report: WfdbReport | None = None) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.refs = list(refs)[:max_records] if max_records is not None else list(refs)
        self.name = name
        self.chunk_size = int(chunk_size)
        self.on_error = on_error
        self.progress = progress
        self.report = report if report is not None else WfdbReport()

    def __len__(self) -> int:
        return len(self.refs)

    def __iter__(self) -> Iterator[RecordChunk]:
        batch: list[tuple[np.ndarray, WfdbRecordRef]] = []
        for ref in tqdm(self.refs, desc=self.name, unit="record", disable=not self.progress, leave=False):
            try:
                raw, rate = read_wfdb_raw(ref.path)
                signal, pre_report = preprocess_record(raw, rate, source=f"{ref.path}.hea")
                check_signals(signal, f"{ref.path}.hea")  # amplitude bound, per record so a skip is possible
            except (ContractError, FileNotFoundError) as error:
                if self.on_error == "raise":
                    raise
                log.warning("skipped: %s", error)
                self.report.skipped += 1
                continue
            self.report.preprocess += pre_report
            self.report.records += 1
            batch.append((signal, ref))
            if len(batch) == self.chunk_size:
                yield self._chunk(batch)
                batch = []
        if batch:
            yield self._chunk(batch)
        if self.report.unknown_codes:
            log.info("%s: %d distinct label codes outside the six classes (counted as negatives): %s",
                     self.name, len(self.report.unknown_codes), dict(self.report.unknown_codes.most_common(10)))

    def _chunk(self, batch: list[tuple[np.ndarray, WfdbRecordRef]]) -> RecordChunk:
        return RecordChunk(signals=np.stack([signal for signal, _ in batch]),
                           labels=np.stack([ref.labels for _, ref in batch]),
                           record_ids=[ref.record_id for _, ref in batch],
                           patient_ids=[ref.patient_id for _, ref in batch],
                           source=f"{self.name}: {batch[0][1].path} .. {batch[-1][1].path}")


def ludb_reader(root: str | os.PathLike = DEFAULT_LUDB_ROOT, **options) -> WfdbReader:
    """LUDB (default ``../shared/data/ludb``, relative to the working directory)."""
    return WfdbReader(ludb_records(root), name="ludb", **options)


def ptbxl_reader(root: str | os.PathLike, *, sample_rate: int = 500, **options) -> WfdbReader:
    return WfdbReader(ptbxl_records(root, sample_rate=sample_rate), name="ptbxl", **options)


def challenge_reader(root: str | os.PathLike, **options) -> WfdbReader:
    report = WfdbReport()
    return WfdbReader(challenge_records(root, report.unknown_codes), name="challenge", report=report, **options)


def folder_reader(root: str | os.PathLike, *, labeler: Callable[[wfdb.Record], np.ndarray] | None = None,
                  **options) -> WfdbReader:
    return WfdbReader(folder_records(root, labeler), name=f"wfdb:{Path(root).name}", **options)
