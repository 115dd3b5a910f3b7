"""Data sources: CODE-15% (through the fake writer, bad files, download helpers), WFDB, LUDB, synthetic."""
import hashlib
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import wfdb

from vizecg.contract import LABELS, LEADS, N_LEADS, N_SAMPLES, ContractError
from vizecg.data import code15
from vizecg.data.code15 import Code15Reader, RemoteFile, extract_part, fetch_file, parse_part_range, read_exams_csv
from vizecg.data.fake_code15 import write_fake_code15
from vizecg.data.preprocess import SHORT_EXAM_SAMPLES, preprocess_batch
from vizecg.data.sources import iter_source, load_source
from vizecg.data.wfdb_source import challenge_reader, contract_lead_order, ptbxl_reader

REPO_ROOT = Path(__file__).resolve().parents[1]
LUDB_ROOT = REPO_ROOT / "../shared/data/ludb"
N_EXAMS, N_PARTS, FILLERS, ORPHANS = 30, 2, 2, 1


@pytest.fixture(scope="module")
def fake_code15(tmp_path_factory):
    dest = tmp_path_factory.mktemp("code15")
    summary = write_fake_code15(dest, N_EXAMS, N_PARTS, seed=3, short_fraction=0.4, fillers_per_part=FILLERS,
                                orphans=ORPHANS, progress=False)
    return dest, summary


@pytest.fixture
def code15_copy(fake_code15, tmp_path):
    """A private copy to damage."""
    return Path(shutil.copytree(fake_code15[0], tmp_path / "code15"))


def _read_all(reader):
    chunks = list(reader)
    return (np.concatenate([c.signals for c in chunks]), np.concatenate([c.labels for c in chunks]),
            [r for c in chunks for r in c.record_ids], [p for c in chunks for p in c.patient_ids])


# --------------------------------------------------------------------------- CODE-15%


def test_code15_round_trip_through_the_fake_writer(fake_code15):
    dest, summary = fake_code15
    reader = Code15Reader(dest, chunk_size=7, progress=False)
    signals, labels, record_ids, patient_ids = _read_all(reader)

    expected = {str(e): k for k, e in enumerate(summary["exam_ids"])}
    assert sorted(record_ids) == sorted(expected)
    order = [expected[r] for r in record_ids]
    np.testing.assert_array_equal(labels, summary["labels"][order])
    assert patient_ids == [str(p) for p in summary["patient_ids"][order]]
    report = reader.report
    assert report.exams == N_EXAMS
    assert report.filler_zero_id == FILLERS * N_PARTS and report.filler_not_in_csv == ORPHANS
    assert report.rows == N_EXAMS + FILLERS * N_PARTS + ORPHANS

    # Signals are exactly the preprocessed raw tracings; the padding of 7 s exams stays zero.
    raw = {}
    for part in range(N_PARTS):
        with h5py.File(dest / f"exams_part{part}.hdf5", "r") as handle:
            raw.update({str(e): t for e, t in zip(handle["exam_id"][:], handle["tracings"][:])})
    expected_signals, _ = preprocess_batch(np.stack([raw[r] for r in record_ids]), 400, zero_padded=True)
    np.testing.assert_array_equal(signals, expected_signals)
    short = summary["recorded_samples"][order] == SHORT_EXAM_SAMPLES
    assert short.any()
    pad = (N_SAMPLES - SHORT_EXAM_SAMPLES) // 2
    assert not signals[short][:, :pad].any() and not signals[short][:, -pad:].any()


def test_code15_labels_as_numbers_and_max_records(code15_copy):
    table = pd.read_csv(code15_copy / "exams.csv")
    assert table["AF"].dtype == bool  # the official True/False spelling
    table[list(LABELS)] = table[list(LABELS)].astype(int)
    table.to_csv(code15_copy / "exams.csv", index=False)
    frame = read_exams_csv(code15_copy / "exams.csv")
    assert list(frame.columns) == ["patient_id", *LABELS] and frame[list(LABELS)].dtypes.eq(np.uint8).all()
    chunks = list(Code15Reader(code15_copy, parts="0-1", chunk_size=4, max_records=9, progress=False))
    assert sum(len(c) for c in chunks) == 9


def test_code15_csv_without_label_columns_names_them(code15_copy):
    table = pd.read_csv(code15_copy / "exams.csv").drop(columns=["AF", "ST"])
    table.to_csv(code15_copy / "exams.csv", index=False)
    with pytest.raises(ContractError, match=r"exams.csv: missing column\(s\) AF, ST"):
        Code15Reader(code15_copy)


def test_code15_csv_with_bad_label_values(code15_copy):
    table = pd.read_csv(code15_copy / "exams.csv")
    table["RBBB"] = table["RBBB"].astype(str)
    table.loc[0, "RBBB"] = "maybe"
    table.to_csv(code15_copy / "exams.csv", index=False)
    with pytest.raises(ContractError, match="RBBB.*maybe"):
        read_exams_csv(code15_copy / "exams.csv")


def test_code15_missing_part_is_named(code15_copy):
    with pytest.raises(FileNotFoundError, match="exams_part5.hdf5"):
        Code15Reader(code15_copy, parts=[0, 5])
    (code15_copy / "exams_part1.hdf5").unlink()
    with pytest.raises(FileNotFoundError, match="exams_part1.hdf5"):
        Code15Reader(code15_copy, require_all_parts=True)


def test_code15_corrupt_and_truncated_parts_are_named(code15_copy):
    part = code15_copy / "exams_part1.hdf5"
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 3])  # an interrupted download
    with pytest.raises(ContractError, match="exams_part1.hdf5"):
        list(Code15Reader(code15_copy, progress=False))
    part.write_bytes(b"<html>rate limited</html>" * 50)  # not HDF5 at all
    with pytest.raises(ContractError, match="exams_part1.hdf5: not a readable HDF5 file"):
        list(Code15Reader(code15_copy, progress=False))


def test_code15_missing_dataset_and_wrong_shape(code15_copy):
    part = code15_copy / "exams_part0.hdf5"
    with h5py.File(part, "w") as handle:
        handle["tracings"] = np.zeros((3, N_SAMPLES, N_LEADS), np.float32)
    with pytest.raises(ContractError, match="exams_part0.hdf5: missing dataset.*exam_id"):
        list(Code15Reader(code15_copy, progress=False))
    with h5py.File(part, "w") as handle:
        handle["exam_id"] = np.arange(1, 4)
        handle["tracings"] = np.zeros((3, 4000, N_LEADS), np.float32)
    with pytest.raises(ContractError, match=r"exams_part0.hdf5: 'tracings' must have shape .*4000"):
        list(Code15Reader(code15_copy, progress=False))


def test_code15_nan_exam_raises_or_is_counted(code15_copy, fake_code15):
    part = code15_copy / "exams_part0.hdf5"
    with h5py.File(part, "r+") as handle:
        bad_exam = int(handle["exam_id"][2])
        handle["tracings"][2, 2000, 5] = np.nan
    with pytest.raises(ContractError, match=f"exams_part0.hdf5.*exam_id {bad_exam} has NaN"):
        list(Code15Reader(code15_copy, progress=False))
    reader = Code15Reader(code15_copy, invalid="skip", progress=False)
    _, _, record_ids, _ = _read_all(reader)
    assert reader.report.invalid_exams == 1 and str(bad_exam) not in record_ids
    assert len(record_ids) == N_EXAMS - 1


def test_code15_duplicate_and_empty_exams_are_counted(code15_copy):
    with h5py.File(code15_copy / "exams_part0.hdf5", "r+") as handle:
        first_id = int(handle["exam_id"][0])
        handle["tracings"][1] = 0.0  # an exam without any signal
    with h5py.File(code15_copy / "exams_part1.hdf5", "r+") as handle:
        handle["exam_id"][0] = first_id  # the same exam again in a later part
    reader = Code15Reader(code15_copy, progress=False)
    _, _, record_ids, _ = _read_all(reader)
    assert reader.report.duplicate_exams == 1 and reader.report.empty_exams == 1
    assert len(record_ids) == len(set(record_ids)) == N_EXAMS - 2


def test_fake_code15_command_line(tmp_path):
    from vizecg.data.fake_code15 import main

    assert main([str(tmp_path), "--n-exams", "5", "--parts", "2", "--seed", "1"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exams.csv", "exams_part0.hdf5", "exams_part1.hdf5"]
    assert sum(len(c) for c in Code15Reader(tmp_path, progress=False)) == 5


def test_part_range_parsing():
    assert parse_part_range("0-17") == list(range(18))
    assert parse_part_range("3") == [3]
    assert parse_part_range("0,2,5-6") == [0, 2, 5, 6]
    with pytest.raises(ValueError, match="0..17"):
        parse_part_range("0-18")


class _FakeResponse:
    """Enough of requests.Response for fetch_file: honours a Range header with 206."""

    def __init__(self, payload: bytes, headers: dict):
        start = int(headers["Range"].split("=")[1].rstrip("-")) if "Range" in headers else 0
        self.status_code = 206 if start else 200
        self.body = payload[start:]
        self.headers = {"Content-Length": str(len(self.body))}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def raise_for_status(self):
        pass

    def iter_content(self, chunk_size):
        for i in range(0, len(self.body), 7):
            yield self.body[i:i + 7]


def test_download_resumes_a_partial_file_and_checks_md5(tmp_path, monkeypatch):
    import requests

    payload = bytes(range(200)) * 3
    requested = []

    def fake_get(url, stream=True, headers=None, timeout=None):
        requested.append(dict(headers or {}))
        return _FakeResponse(payload, headers or {})

    monkeypatch.setattr(requests, "get", fake_get)
    remote = RemoteFile("exams.csv", "https://example.invalid/exams.csv", len(payload),
                        hashlib.md5(payload).hexdigest())
    (tmp_path / "exams.csv.part").write_bytes(payload[:100])
    path = fetch_file(remote, tmp_path)
    assert path.read_bytes() == payload and requested == [{"Range": "bytes=100-"}]
    assert not (tmp_path / "exams.csv.part").exists()
    fetch_file(remote, tmp_path)  # complete: not fetched again
    assert len(requested) == 1
    wrong = RemoteFile("other.bin", "https://example.invalid/other.bin", len(payload), "0" * 32)
    with pytest.raises(OSError, match="md5 mismatch"):
        fetch_file(wrong, tmp_path)


def test_extract_part_from_zip(fake_code15, tmp_path):
    archive = tmp_path / "exams_part0.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(fake_code15[0] / "exams_part0.hdf5", "exams_part0.hdf5")
    out = tmp_path / "out"
    out.mkdir()
    assert extract_part(archive, out) == out / "exams_part0.hdf5"
    assert (out / "exams_part0.hdf5").read_bytes() == (fake_code15[0] / "exams_part0.hdf5").read_bytes()


# --------------------------------------------------------------------------- WFDB


def _write_wfdb(folder: Path, name: str, lead_names, *, rate=500, seconds=10, units="mV", comments=(), seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(rate * seconds) / rate
    signal = np.sin(2 * np.pi * 1.1 * t)[:, None] * rng.uniform(0.5, 1.5, len(lead_names))
    if units == "uV":
        signal = signal * 1000
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(name, fs=rate, units=[units] * len(lead_names), sig_name=list(lead_names), p_signal=signal,
                fmt=["16"] * len(lead_names), comments=list(comments), write_dir=str(folder))
    return signal


def test_lead_names_map_case_insensitively():
    names = ["V6", "v5", "V4", "v3", "V2", "V1", "AVF", "aVL", "avr", "DIII", "Lead II", "i", "resp"]
    order = contract_lead_order(names, "x.hea")
    assert [names[i] for i in order] == ["i", "Lead II", "DIII", "avr", "aVL", "AVF",
                                         "V1", "V2", "v3", "V4", "v5", "V6"]
    with pytest.raises(ContractError, match=r"x.hea: missing lead\(s\) aVF, V3"):
        contract_lead_order([n for n in LEADS if n not in ("aVF", "V3")], "x.hea")


def test_challenge_folder_labels_units_and_unknown_codes(tmp_path):
    folder = tmp_path / "training" / "georgia"
    _write_wfdb(folder, "E0001", LEADS, comments=["Age: 60", "Sex: Male", "Dx: 164889003,59118001,251146004"])
    raw = _write_wfdb(folder, "E0002", [n.upper() for n in LEADS], rate=250, units="uV",
                      comments=["Dx: 426177001"], seed=1)
    reader = challenge_reader(tmp_path, progress=False)
    chunk = list(reader)[0]
    assert chunk.record_ids == ["training/georgia/E0001", "training/georgia/E0002"]
    assert chunk.patient_ids == chunk.record_ids
    np.testing.assert_array_equal(chunk.labels[0], [0, 1, 0, 0, 1, 0])  # RBBB, AF
    np.testing.assert_array_equal(chunk.labels[1], [0, 0, 0, 1, 0, 0])  # SB
    assert reader.report.unknown_codes == {"251146004": 1}
    # uV were converted to mV: amplitudes stay in the millivolt range of the source signal.
    assert 0.3 < np.abs(chunk.signals[1]).max() < 2 * np.abs(raw / 1000).max()


def test_wfdb_missing_lead_names_the_header(tmp_path):
    _write_wfdb(tmp_path, "A1", [n for n in LEADS if n != "V4"], comments=["Dx: 426177001"])
    with pytest.raises(ContractError, match=r"A1.hea: missing lead\(s\) V4"):
        list(challenge_reader(tmp_path, progress=False))
    reader = challenge_reader(tmp_path, progress=False, on_error="skip")
    assert list(reader) == [] and reader.report.skipped == 1


def test_ptbxl_scp_codes(tmp_path):
    for ecg_id in (1, 2, 3):
        _write_wfdb(tmp_path / "records500" / "00000", f"{ecg_id:05d}_hr", LEADS, seed=ecg_id)
    pd.DataFrame({
        "ecg_id": [1, 2, 3],
        "patient_id": [15709.0, 15709.0, 20372.0],
        "scp_codes": ["{'NORM': 100.0, 'SR': 0.0}", "{'1AVB': 80.0, 'CLBBB': 100.0, 'SBRAD': 0.0}",
                      "{'AFIB': 0.0, 'CRBBB': 100.0, 'STACH': 0.0}"],
        "filename_lr": [f"records100/00000/{i:05d}_lr" for i in (1, 2, 3)],
        "filename_hr": [f"records500/00000/{i:05d}_hr" for i in (1, 2, 3)],
    }).to_csv(tmp_path / "ptbxl_database.csv", index=False)
    chunk = list(ptbxl_reader(tmp_path, progress=False))[0]
    np.testing.assert_array_equal(chunk.labels, [[0, 0, 0, 0, 0, 0], [1, 0, 1, 1, 0, 0], [0, 1, 0, 0, 1, 1]])
    assert chunk.patient_ids == ["ptbxl-15709", "ptbxl-15709", "ptbxl-20372"]
    assert chunk.signals.shape == (3, N_SAMPLES, N_LEADS)


def test_ludb_label_counts_and_contract():
    chunk = load_source("ludb", root=LUDB_ROOT, progress=False)
    counts = dict(zip(LABELS, chunk.labels.sum(axis=0).tolist()))
    assert counts == {"1dAVb": 10, "RBBB": 4, "LBBB": 4, "SB": 25, "AF": 15, "ST": 4}
    assert len(chunk) == 200 and len(set(chunk.patient_ids)) == 200
    assert chunk.signals.shape == (200, N_SAMPLES, N_LEADS)
    assert not chunk.signals[:, :48].any() and not chunk.signals[:, 4048:].any()  # 10 s at 400 Hz, centred


def test_synthetic_source_and_unknown_source():
    chunks = list(iter_source("synthetic", n_records=10, seed=5, chunk_size=4, progress=False))
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert len({r for c in chunks for r in c.record_ids}) == 10
    with pytest.raises(ValueError, match="unknown data source 'mimic'"):
        iter_source("mimic")
    with pytest.raises(ValueError, match="needs a 'root'"):
        iter_source("ptbxl")


def test_code15_through_the_common_interface(fake_code15):
    chunk = load_source("code15", root=fake_code15[0], progress=False)
    assert len(chunk) == N_EXAMS and code15.N_PARTS == 18


@pytest.mark.skipif(not LUDB_ROOT.is_dir(), reason="../shared/data/ludb is not present")
def test_prepared_ludb_is_rebuilt_when_its_setting_changes(tmp_path):
    from vizecg.data.prepared import read_index
    from vizecg.study.external import prepare_ludb

    params = {"data": {"real_data_dir": str(LUDB_ROOT.parent)}, "real_prints": {"ludb_max_records": 3}}
    path = prepare_ludb(params, tmp_path)
    assert len(read_index(path)) == 3
    built = path.stat().st_mtime_ns
    assert prepare_ludb(params, tmp_path) == path and path.stat().st_mtime_ns == built  # reused
    params["real_prints"]["ludb_max_records"] = 5
    assert len(read_index(prepare_ludb(params, tmp_path))) == 5
