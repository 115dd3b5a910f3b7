"""CODE-15% (Ribeiro et al., Zenodo record 4916206, CC-BY 4.0): reader and downloader.

Layout (as documented on the Zenodo record, and written by :mod:`vizecg.data.fake_code15`):

* ``exams.csv``: one row per exam; columns include ``exam_id``, ``patient_id`` and the six
  labels ``1dAVb, RBBB, LBBB, SB, AF, ST`` (``True``/``False`` strings, or 0/1), plus
  ``trace_file`` and demographic columns this study does not use.
* ``exams_part{k}.hdf5`` for k = 0..17, each with datasets ``exam_id`` ``(N,)`` and
  ``tracings`` ``(N, 4096, 12)`` float, 400 Hz, mV, leads DI, DII, DIII, AVR, AVL, AVF,
  V1..V6 (the contract order). 7 s exams (2800 samples) and 10 s exams (4000 samples)
  are zero-padded, centred, to 4096 samples. Rows whose ``exam_id`` is 0, or absent
  from ``exams.csv``, are fillers (the parts have a fixed size).

Reading is lazy and streaming: :class:`Code15Reader` holds only paths and the CSV
labels; each iteration opens the parts itself (so every process or DataLoader worker
has its own h5py handle, which h5py requires) and reads ``chunk_size`` rows at a time,
never a whole part. Skipped rows are counted in :class:`Code15Report`.

Download: ``python -m vizecg.data.code15 download DEST [--parts 0-17]``.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import sys
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from vizecg.contract import LABELS, MAX_ABS_MV, N_LEADS, N_SAMPLES, ContractError
from vizecg.data.preprocess import PreprocessReport, preprocess_batch
from vizecg.data.records import RecordChunk

log = logging.getLogger(__name__)

N_PARTS: int = 18
CSV_NAME: str = "exams.csv"
ZENODO_RECORD: str = "4916206"
ZENODO_API_URL: str = f"https://zenodo.org/api/records/{ZENODO_RECORD}"
ZENODO_FILES_URL: str = f"https://zenodo.org/records/{ZENODO_RECORD}/files"
# The CODE-15% label columns are named exactly like the contract labels.
LABEL_COLUMNS: tuple[str, ...] = LABELS
REQUIRED_COLUMNS: tuple[str, ...] = ("exam_id", "patient_id", *LABEL_COLUMNS)

_TRUE_STRINGS = frozenset({"true", "1", "1.0", "t", "yes"})
_FALSE_STRINGS = frozenset({"false", "0", "0.0", "f", "no"})


def part_name(index: int) -> str:
    """File name of part ``index``: ``exams_part{index}.hdf5``."""
    return f"exams_part{index}.hdf5"


def parse_part_range(text: str) -> list[int]:
    """Parse ``"0-17"``, ``"3"`` or ``"0,2,5-7"`` into sorted part indices in 0..17."""
    indices: set[int] = set()
    for piece in text.split(","):
        piece = piece.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", piece)
        if not match:
            raise ValueError(f"part range {text!r}: expected e.g. '0-17', '3' or '0,2,5-7'")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if low > high or high >= N_PARTS:
            raise ValueError(f"part range {text!r}: parts are numbered 0..{N_PARTS - 1}")
        indices.update(range(low, high + 1))
    return sorted(indices)


# ---------------------------------------------------------------------------------------------
# exams.csv


def _label_column_to_uint8(values: pd.Series, column: str, path: Path) -> np.ndarray:
    """Booleans, 0/1 numbers or 'True'/'False' strings -> uint8 0/1; anything else is an error."""
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise ContractError(f"{path}: label column {column!r} has {int(values.isna().sum())} empty values "
                            f"(first at data row {row})")
    if values.dtype == bool:
        return values.to_numpy().astype(np.uint8)
    if pd.api.types.is_numeric_dtype(values):
        arr = values.to_numpy()
        if not np.isin(arr, (0, 1)).all():
            raise ContractError(f"{path}: label column {column!r} must be 0/1, got values "
                                f"{sorted(set(np.unique(arr).tolist()) - {0, 1})[:5]}")
        return arr.astype(np.uint8)
    text = values.astype(str).str.strip().str.lower()
    is_true, is_false = text.isin(_TRUE_STRINGS), text.isin(_FALSE_STRINGS)
    if not (is_true | is_false).all():
        bad = sorted(set(values[~(is_true | is_false)].astype(str)))[:5]
        raise ContractError(f"{path}: label column {column!r} must be True/False or 0/1, got {bad}")
    return is_true.to_numpy().astype(np.uint8)


def read_exams_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``exams.csv`` into a frame indexed by integer ``exam_id`` with columns
    ``patient_id`` (str) and the six labels (uint8), in :data:`~vizecg.contract.LABELS` order.

    Raises :class:`FileNotFoundError` for a missing file and
    :class:`~vizecg.contract.ContractError` naming the file for missing columns (listed),
    unparseable labels, missing ids or duplicated exam ids.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: CODE-15% label file not found (expected {CSV_NAME} beside the parts)")
    try:
        frame = pd.read_csv(path, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ContractError(f"{path}: not a readable CSV file: {error}") from error
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise ContractError(f"{path}: missing column(s) {', '.join(missing)}; CODE-15% exams.csv needs "
                            f"{', '.join(REQUIRED_COLUMNS)}")
    for id_column in ("exam_id", "patient_id"):
        if frame[id_column].isna().any():
            raise ContractError(f"{path}: {int(frame[id_column].isna().sum())} rows without {id_column}")
    try:
        exam_ids = frame["exam_id"].to_numpy().astype(np.int64)
    except (TypeError, ValueError) as error:
        raise ContractError(f"{path}: exam_id must be integers: {error}") from error
    if len(np.unique(exam_ids)) != len(exam_ids):
        duplicated = frame["exam_id"][frame["exam_id"].duplicated()].head(5).tolist()
        raise ContractError(f"{path}: duplicated exam_id values, e.g. {duplicated}")
    patient = frame["patient_id"]
    if pd.api.types.is_float_dtype(patient) and np.all(np.mod(patient.to_numpy(), 1) == 0):
        patient = patient.astype(np.int64)  # ids read as floats print as '12.0' otherwise
    result = pd.DataFrame({"patient_id": patient.astype(str).to_numpy()}, index=pd.Index(exam_ids, name="exam_id"))
    for column in LABEL_COLUMNS:
        result[column] = _label_column_to_uint8(frame[column], column, path)
    return result


# ---------------------------------------------------------------------------------------------
# HDF5 parts


def open_part(path: str | os.PathLike) -> h5py.File:
    """Open one ``exams_part{k}.hdf5`` read-only and check its layout.

    Raises :class:`FileNotFoundError` naming the part if it is missing and
    :class:`~vizecg.contract.ContractError` naming it if it is not an HDF5 file
    (corrupt or truncated), lacks ``exam_id``/``tracings``, or has wrong shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: CODE-15% part not found")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ContractError(f"{path}: not a readable HDF5 file (corrupt or truncated download?): {error}") from error
    try:
        missing = [name for name in ("exam_id", "tracings") if name not in handle]
        if missing:
            raise ContractError(f"{path}: missing dataset(s) {', '.join(missing)}; a CODE-15% part has "
                                f"'exam_id' (N,) and 'tracings' (N, {N_SAMPLES}, {N_LEADS})")
        ids, tracings = handle["exam_id"], handle["tracings"]
        if ids.ndim != 1:
            raise ContractError(f"{path}: 'exam_id' must have shape (N,), got {ids.shape}")
        if tracings.ndim != 3 or tracings.shape[1:] != (N_SAMPLES, N_LEADS):
            raise ContractError(f"{path}: 'tracings' must have shape (N, {N_SAMPLES}, {N_LEADS}), got {tracings.shape}")
        if tracings.shape[0] != ids.shape[0]:
            raise ContractError(f"{path}: 'exam_id' has {ids.shape[0]} rows but 'tracings' has {tracings.shape[0]}")
        if not np.issubdtype(tracings.dtype, np.number):
            raise ContractError(f"{path}: 'tracings' must be numeric, got dtype {tracings.dtype}")
    except Exception:
        handle.close()
        raise
    return handle


@dataclass
class Code15Report:
    """What a pass over CODE-15% read and skipped; every skip is counted here and logged."""

    rows: int = 0
    exams: int = 0
    filler_zero_id: int = 0
    filler_not_in_csv: int = 0
    duplicate_exams: int = 0
    empty_exams: int = 0
    invalid_exams: int = 0
    preprocess: PreprocessReport = field(default_factory=PreprocessReport)

    def as_dict(self) -> dict[str, int]:
        counts = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "preprocess"}
        counts.update({f"preprocess_{k}": v for k, v in self.preprocess.as_dict().items()})
        return counts


class Code15Reader:
    """Stream CODE-15% exams as preprocessed :class:`~vizecg.data.records.RecordChunk`.

    ``root`` holds ``exams.csv`` and the parts; ``parts`` selects part indices (a list or a
    range string such as ``"0-5"``; default:
    every ``exams_part*.hdf5`` present, or all 18 when ``require_all_parts``). Rows with
    ``exam_id`` 0 or absent from the CSV are fillers, exams seen in an earlier part are
    duplicates, all-zero tracings are empty: all are skipped and counted in
    :attr:`report`. ``invalid="raise"`` (default) stops at the first exam with NaN/inf or
    an amplitude over the contract bound, naming the part and exam id;
    ``invalid="skip"`` counts such exams instead. The reader keeps no file open between
    iterations, so it can be handed to worker processes.
    """

    def __init__(self, root: str | os.PathLike, *, parts: Sequence[int] | str | None = None,
                 csv_path: str | os.PathLike | None = None, chunk_size: int = 256,
                 invalid: str = "raise", max_records: int | None = None,
                 require_all_parts: bool = False, progress: bool = True) -> None:
        if invalid not in ("raise", "skip"):
            raise ValueError(f"invalid must be 'raise' or 'skip', got {invalid!r}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: CODE-15% folder not found")
        self.csv_path = Path(csv_path) if csv_path is not None else self.root / CSV_NAME
        if isinstance(parts, str):
            parts = parse_part_range(parts)
        if parts is None:
            if require_all_parts:
                parts = range(N_PARTS)
            else:
                found = sorted(int(m.group(1)) for p in self.root.glob("exams_part*.hdf5")
                               if (m := re.fullmatch(r"exams_part(\d+)\.hdf5", p.name)))
                if not found:
                    raise FileNotFoundError(f"{self.root}: no exams_part*.hdf5 files (download them with "
                                            f"'python -m vizecg.data.code15 download {self.root}')")
                parts = found
        self.part_paths = [self.root / part_name(int(k)) for k in parts]
        missing = [str(p) for p in self.part_paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"CODE-15% part(s) not found: {', '.join(missing)}")
        self.exams = read_exams_csv(self.csv_path)
        self.chunk_size = int(chunk_size)
        self.invalid = invalid
        self.max_records = max_records
        self.progress = progress
        self.report = Code15Report()

    def __iter__(self) -> Iterator[RecordChunk]:
        self.report = Code15Report()
        seen: set[int] = set()
        emitted = 0
        for path in self.part_paths:
            with open_part(path) as handle:
                exam_ids_all = handle["exam_id"][:].astype(np.int64)  # (N,) ints: small
                tracings = handle["tracings"]
                n_rows = len(exam_ids_all)
                bar = tqdm(total=n_rows, desc=path.name, unit="exam", disable=not self.progress, leave=False)
                for start in range(0, n_rows, self.chunk_size):
                    stop = min(start + self.chunk_size, n_rows)
                    chunk = self._read_rows(path, handle, tracings, exam_ids_all, start, stop, seen)
                    bar.update(stop - start)
                    if chunk is None:
                        continue
                    if self.max_records is not None and emitted + len(chunk) > self.max_records:
                        keep = self.max_records - emitted
                        chunk = RecordChunk(chunk.signals[:keep], chunk.labels[:keep], chunk.record_ids[:keep],
                                            chunk.patient_ids[:keep], chunk.source)
                    emitted += len(chunk)
                    yield chunk
                    if self.max_records is not None and emitted >= self.max_records:
                        bar.close()
                        self._log_report()
                        return
                bar.close()
        self._log_report()

    def _read_rows(self, path: Path, handle: h5py.File, tracings: h5py.Dataset, exam_ids_all: np.ndarray,
                   start: int, stop: int, seen: set[int]) -> RecordChunk | None:
        report = self.report
        ids = exam_ids_all[start:stop]
        report.rows += len(ids)
        zero_id = ids == 0
        csv_rows = self.exams.index.get_indexer(ids)  # -1 where the exam is not in the CSV
        not_in_csv = ~zero_id & (csv_rows < 0)
        report.filler_zero_id += int(zero_id.sum())
        report.filler_not_in_csv += int(not_in_csv.sum())
        keep = ~zero_id & ~not_in_csv
        for offset in np.flatnonzero(keep):
            exam = int(ids[offset])
            if exam in seen:
                keep[offset] = False
                report.duplicate_exams += 1
            else:
                seen.add(exam)
        if not keep.any():
            return None
        source = f"{path} rows {start}-{stop - 1}"
        try:
            raw = np.asarray(tracings[start:stop], dtype=np.float32)[keep]
        except OSError as error:
            raise ContractError(f"{source}: cannot read tracings (corrupt or truncated HDF5): {error}") from error
        ids, csv_rows = ids[keep], csv_rows[keep]
        valid = self._valid_mask(raw, ids, source)
        empty = ~np.any(raw != 0, axis=(1, 2))
        report.empty_exams += int((empty & valid).sum())
        use = valid & ~empty
        if not use.any():
            return None
        signals, pre_report = preprocess_batch(raw[use], 400, source=source, zero_padded=True)
        report.preprocess += pre_report
        ids = ids[use]
        rows = self.exams.iloc[csv_rows[use]]
        report.exams += len(ids)
        return RecordChunk(signals=signals, labels=rows[list(LABEL_COLUMNS)].to_numpy(np.uint8),
                           record_ids=[str(i) for i in ids], patient_ids=rows["patient_id"].tolist(),
                           source=source)

    def _valid_mask(self, raw: np.ndarray, ids: np.ndarray, source: str) -> np.ndarray:
        """Exams without NaN/inf and within the contract's amplitude bound; raise or count the rest."""
        finite = np.isfinite(raw).all(axis=(1, 2))
        in_range = np.ones(len(raw), dtype=bool)
        in_range[finite] = np.abs(raw[finite]).max(axis=(1, 2)) <= MAX_ABS_MV
        valid = finite & in_range
        if not valid.all():
            first = int(np.flatnonzero(~valid)[0])
            problem = "NaN/inf samples" if not finite[first] else f"amplitude over +-{MAX_ABS_MV} mV"
            if self.invalid == "raise":
                raise ContractError(f"{source}: exam_id {int(ids[first])} has {problem} "
                                    f"(pass invalid='skip' to count and skip such exams)")
            self.report.invalid_exams += int((~valid).sum())
            log.warning("%s: skipped %d exams with NaN/inf or out-of-range samples (first exam_id %d: %s)",
                        source, int((~valid).sum()), int(ids[first]), problem)
        return valid

    def _log_report(self) -> None:
        log.info("CODE-15%%: %s", self.report.as_dict())


def iter_code15(root: str | os.PathLike = "data/code15", **options) -> Iterator[RecordChunk]:
    """Iterate CODE-15% as RecordChunks; ``options`` go to :class:`Code15Reader`."""
    yield from Code15Reader(root, **options)


# ---------------------------------------------------------------------------------------------
# Download


@dataclass(frozen=True)
class RemoteFile:
    """One file of the Zenodo record: name, URL, and size/md5 when the API told us."""

    name: str
    url: str
    size: int | None = None
    md5: str | None = None


def zenodo_files(timeout_s: float = 30.0) -> dict[str, RemoteFile]:
    """Names, URLs, sizes and md5 sums of the record's files from the Zenodo API.

    Returns an empty dict (and logs why) when the API cannot be reached, so that the
    caller falls back to the documented file names without checksums.
    """
    import requests

    try:
        response = requests.get(ZENODO_API_URL, timeout=timeout_s)
        response.raise_for_status()
        entries = response.json().get("files", [])
    except (requests.RequestException, ValueError) as error:
        log.warning("Zenodo API %s unreachable (%s): downloading without size/md5 checks", ZENODO_API_URL, error)
        return {}
    if isinstance(entries, dict):  # newer API: {"entries": {name: {...}}}
        entries = list(entries.get("entries", {}).values())
    files = {}
    for entry in entries:
        name = entry.get("key") or entry.get("filename")
        if not name:
            continue
        checksum = str(entry.get("checksum", ""))
        md5 = checksum.split(":", 1)[1] if checksum.startswith("md5:") else None
        files[name] = RemoteFile(name, f"{ZENODO_FILES_URL}/{name}?download=1", entry.get("size"), md5)
    return files


def _md5(path: Path, block: int = 1 << 22) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        while chunk := stream.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def _is_complete(path: Path, remote: RemoteFile, verify_md5: bool) -> bool:
    if not path.is_file():
        return False
    if remote.size is not None and path.stat().st_size != remote.size:
        return False
    if verify_md5 and remote.md5 is not None and _md5(path) != remote.md5:
        log.warning("%s: md5 mismatch, downloading again", path)
        path.unlink()
        return False
    return True


def fetch_file(remote: RemoteFile, dest: Path, *, verify_md5: bool = True, timeout_s: float = 60.0) -> Path:
    """Download ``remote`` to ``dest/remote.name``, resuming a partial ``.part`` file with an
    HTTP Range request; the final name appears only once the file is complete (and its
    size/md5 match when known)."""
    import requests

    target = dest / remote.name
    if remote.size is not None and _is_complete(target, remote, verify_md5):
        log.info("%s: complete, skipped", target)
        return target
    if remote.size is None and target.is_file():
        log.info("%s: present (size unknown), skipped", target)
        return target
    partial = target.with_name(target.name + ".part")
    done = partial.stat().st_size if partial.is_file() else 0
    headers = {"Range": f"bytes={done}-"} if done else {}
    with requests.get(remote.url, stream=True, headers=headers, timeout=timeout_s) as response:
        if done and response.status_code != 206:  # server ignored the range: start over
            done = 0
        response.raise_for_status()
        total = remote.size or (int(response.headers.get("Content-Length", 0)) + done) or None
        with open(partial, "ab" if done else "wb") as stream, \
                tqdm(total=total, initial=done, unit="B", unit_scale=True, desc=remote.name) as bar:
            for block in response.iter_content(chunk_size=1 << 20):
                stream.write(block)
                bar.update(len(block))
    if remote.size is not None and partial.stat().st_size != remote.size:
        raise OSError(f"{partial}: got {partial.stat().st_size} bytes, expected {remote.size}; rerun to resume")
    if verify_md5 and remote.md5 is not None and _md5(partial) != remote.md5:
        partial.unlink()
        raise OSError(f"{target}: md5 mismatch after download (expected {remote.md5}); removed, rerun to retry")
    partial.replace(target)
    return target


def extract_part(archive: Path, dest: Path) -> Path:
    """Extract the ``.hdf5`` inside ``exams_part{k}.zip`` to ``dest`` (via a temporary name, so
    a crash never leaves a half part under the final name) and check that it opens."""
    with zipfile.ZipFile(archive) as bundle:
        members = [m for m in bundle.infolist() if m.filename.endswith(".hdf5")]
        if len(members) != 1:
            raise ContractError(f"{archive}: expected one .hdf5 file inside, found "
                                f"{[m.filename for m in bundle.infolist()]}")
        target = dest / Path(members[0].filename).name
        temporary = target.with_name(target.name + ".extracting")
        with bundle.open(members[0]) as source, open(temporary, "wb") as sink, \
                tqdm(total=members[0].file_size, unit="B", unit_scale=True, desc=f"unzip {archive.name}") as bar:
            while block := source.read(1 << 22):
                sink.write(block)
                bar.update(len(block))
    temporary.replace(target)
    open_part(target).close()
    return target


def download(dest: str | os.PathLike, parts: Sequence[int] = tuple(range(N_PARTS)), *, include_csv: bool = True,
             keep_archives: bool = False, verify_md5: bool = True) -> list[Path]:
    """Fetch CODE-15% from Zenodo record 4916206 into ``dest``: ``exams.csv`` and the
    requested parts, unzipping ``exams_part{k}.zip`` to ``exams_part{k}.hdf5``.

    Resumable: parts whose ``.hdf5`` already opens are skipped, complete archives are not
    fetched again, and interrupted downloads continue from their ``.part`` file. Sizes and
    md5 sums come from the Zenodo API when it is reachable. Returns the local paths.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    remote = zenodo_files()

    def describe(name: str) -> RemoteFile:
        return remote.get(name, RemoteFile(name, f"{ZENODO_FILES_URL}/{name}?download=1"))

    paths = []
    if include_csv:
        paths.append(fetch_file(describe(CSV_NAME), dest, verify_md5=verify_md5))
    for k in parts:
        hdf5 = dest / part_name(k)
        if hdf5.is_file():
            try:
                open_part(hdf5).close()
                log.info("%s: present and readable, skipped", hdf5)
                paths.append(hdf5)
                continue
            except ContractError:
                log.warning("%s: unreadable, fetching again", hdf5)
                hdf5.unlink()
        names = [f"exams_part{k}.zip", part_name(k)]
        name = next((n for n in names if n in remote), names[0])  # the record holds zips
        fetched = fetch_file(describe(name), dest, verify_md5=verify_md5)
        if fetched.suffix == ".zip":
            extract_part(fetched, dest)
            if not keep_archives:
                fetched.unlink()
        paths.append(hdf5)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vizecg.data.code15", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("download", help="download CODE-15%% from Zenodo (resumable)")
    fetch.add_argument("dest", help="folder for exams.csv and exams_part*.hdf5")
    fetch.add_argument("--parts", default=f"0-{N_PARTS - 1}", help="part indices, e.g. 0-17, 0,3 or 2-4 (default all)")
    fetch.add_argument("--no-csv", action="store_true", help="skip exams.csv")
    fetch.add_argument("--keep-archives", action="store_true", help="keep the .zip files after extracting")
    fetch.add_argument("--no-md5", action="store_true", help="skip md5 verification (size is still checked)")
    check = commands.add_parser("check", help="read every exam once and print the counts")
    check.add_argument("root")
    check.add_argument("--parts", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.command == "download":
        import requests

        try:
            paths = download(args.dest, parse_part_range(args.parts), include_csv=not args.no_csv,
                             keep_archives=args.keep_archives, verify_md5=not args.no_md5)
        except (requests.RequestException, OSError) as error:
            print(f"download from Zenodo record {ZENODO_RECORD} failed: {error}\n"
                  f"Partial files are kept; rerun the same command to resume.", file=sys.stderr)
            return 1
        print("\n".join(str(p) for p in paths))
    else:
        reader = Code15Reader(args.root, parts=parse_part_range(args.parts) if args.parts else None, invalid="skip")
        for _ in reader:
            pass
        for key, value in reader.report.as_dict().items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
