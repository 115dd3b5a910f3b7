"""Splits, the prepared HDF5 file and ECGDataset."""
import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from vizecg.contract import LABELS, N_LEADS, N_SAMPLES, ContractError
from vizecg.data.dataset import ECGDataset
from vizecg.data.prepared import read_attrs, read_index, read_signals, write_prepared
from vizecg.data.records import RecordChunk
from vizecg.data.sources import load_source
from vizecg.data.splits import SPLIT_NAMES, patient_stratified_split

N_RECORDS = 48


@pytest.fixture(scope="module")
def synthetic_chunk():
    return load_source("synthetic", n_records=N_RECORDS, seed=11, chunk_size=16, progress=False)


def _chunks(chunk: RecordChunk, size: int = 16):
    for start in range(0, len(chunk), size):
        stop = start + size
        yield RecordChunk(chunk.signals[start:stop], chunk.labels[start:stop], chunk.record_ids[start:stop],
                          chunk.patient_ids[start:stop], chunk.source)


@pytest.fixture(scope="module")
def prepared(synthetic_chunk, tmp_path_factory):
    path = tmp_path_factory.mktemp("prepared") / "synthetic.h5"
    summary = write_prepared(_chunks(synthetic_chunk), path, split_fractions=(0.5, 0.25, 0.25), seed=2,
                             source="synthetic", extra_attrs={"generator_seed": 11}, progress=False)
    return path, summary


# --------------------------------------------------------------------------- splits


def _random_cohort(n_records=3000, n_patients=1200, seed=0):
    rng = np.random.default_rng(seed)
    patients = np.array([f"p{i}" for i in rng.integers(0, n_patients, n_records)])
    prevalence = np.array([0.04, 0.05, 0.02, 0.06, 0.05, 0.04])
    labels = (rng.random((n_records, 6)) < prevalence).astype(np.uint8)
    return patients, labels


def test_splits_are_patient_disjoint_deterministic_and_order_free():
    patients, labels = _random_cohort()
    split = patient_stratified_split(patients, labels, fractions=(0.7, 0.15, 0.15), seed=4)
    assert split.dtype == np.uint8 and set(np.unique(split)) == {0, 1, 2}
    frame = pd.DataFrame({"patient": patients, "split": split})
    assert frame.groupby("patient")["split"].nunique().max() == 1
    np.testing.assert_array_equal(split, patient_stratified_split(patients, labels, fractions=(0.7, 0.15, 0.15),
                                                                  seed=4))
    assert (split != patient_stratified_split(patients, labels, fractions=(0.7, 0.15, 0.15), seed=5)).any()
    perm = np.random.default_rng(1).permutation(len(patients))
    shuffled = patient_stratified_split(patients[perm], labels[perm], fractions=(0.7, 0.15, 0.15), seed=4)
    np.testing.assert_array_equal(shuffled, split[perm])


def test_splits_are_stratified_per_label():
    patients, labels = _random_cohort(seed=2)
    fractions = np.array([0.7, 0.15, 0.15])
    split = patient_stratified_split(patients, labels, fractions=fractions, seed=0)
    records = np.bincount(split, minlength=3) / len(split)
    np.testing.assert_allclose(records, fractions, atol=0.02)
    for k in range(labels.shape[1]):
        positives = np.bincount(split, weights=labels[:, k], minlength=3)
        expected = fractions * labels[:, k].sum()
        # within 2 records or 15% of the expected count, for every split and label
        assert np.all(np.abs(positives - expected) <= np.maximum(2, 0.15 * expected)), (LABELS[k], positives, expected)


def test_split_fractions_are_validated_and_zero_fraction_is_empty():
    patients, labels = _random_cohort(n_records=200, n_patients=100)
    with pytest.raises(ValueError, match="sum"):
        patient_stratified_split(patients, labels, fractions=(0.8, 0.3, 0.1))
    split = patient_stratified_split(patients, labels, fractions=(0.8, 0.2, 0.0))
    assert not (split == 2).any()


# --------------------------------------------------------------------------- prepared file


def test_prepared_layout_and_readers(prepared, synthetic_chunk, tmp_path):
    path, summary = prepared
    with h5py.File(path, "r") as handle:
        assert handle["signals"].shape == (N_RECORDS, N_SAMPLES, N_LEADS) and handle["signals"].dtype == np.float32
        assert handle["signals"].chunks == (1, N_SAMPLES, N_LEADS)
        assert handle["labels"].dtype == np.uint8 and handle["split"].dtype == np.uint8
    attrs = read_attrs(path)
    assert attrs["labels"] == list(LABELS) and attrs["sample_rate"] == 400 and attrs["source"] == "synthetic"
    assert attrs["seed"] == 2 and attrs["extra"] == {"generator_seed": 11} and attrs["complete"]

    index = read_index(path)
    assert list(index.columns) == ["record_id", "patient_id", "split", *LABELS]
    assert index["record_id"].tolist() == synthetic_chunk.record_ids
    np.testing.assert_array_equal(index[list(LABELS)].to_numpy(), synthetic_chunk.labels)
    assert index.groupby("patient_id")["split"].nunique().max() == 1
    assert summary["records"] == N_RECORDS
    assert sum(summary["splits"][s]["records"] for s in SPLIT_NAMES) == N_RECORDS

    csv = pd.read_csv(path.parent / "splits.csv", dtype={"record_id": str, "patient_id": str})
    assert csv["record_id"].tolist() == index["record_id"].tolist()
    assert csv["split"].tolist() == index["split"].astype(str).tolist()

    rows = [7, 2, 40, 2]
    np.testing.assert_array_equal(read_signals(path, rows), synthetic_chunk.signals[rows])


def test_prepared_float16_and_gzip(synthetic_chunk, tmp_path):
    path = tmp_path / "small.h5"
    write_prepared(_chunks(synthetic_chunk), path, signal_dtype="float16", compression="gzip", progress=False)
    signals = read_signals(path, range(5))
    assert signals.dtype == np.float32
    np.testing.assert_allclose(signals, synthetic_chunk.signals[:5], atol=5e-3)


def test_interrupted_write_leaves_no_finished_looking_file(synthetic_chunk, tmp_path):
    path = tmp_path / "prepared.h5"

    def failing():
        yield next(_chunks(synthetic_chunk))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_prepared(failing(), path, progress=False)
    assert list(tmp_path.iterdir()) == []

    write_prepared(_chunks(synthetic_chunk), path, progress=False)
    before = path.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        write_prepared(failing(), path, progress=False)
    assert path.read_bytes() == before  # the finished file survives a failed rewrite


def test_duplicate_record_ids_are_rejected(synthetic_chunk, tmp_path):
    twice = [next(_chunks(synthetic_chunk)), next(_chunks(synthetic_chunk))]
    with pytest.raises(ContractError, match="duplicated record ids"):
        write_prepared(iter(twice), tmp_path / "dup.h5", progress=False)


def test_bad_prepared_files_give_clear_errors(prepared, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        read_index(tmp_path / "missing.h5")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5" * 100)
    with pytest.raises(ContractError, match="garbage.h5: not a readable HDF5"):
        read_index(garbage)
    unfinished = tmp_path / "unfinished.h5"
    unfinished.write_bytes(prepared[0].read_bytes())
    with h5py.File(unfinished, "r+") as handle:
        handle.attrs["complete"] = False
    with pytest.raises(ContractError, match="unfinished.h5: prepared dataset is incomplete"):
        ECGDataset(unfinished)
    with h5py.File(unfinished, "r+") as handle:
        handle.attrs["complete"] = True
        del handle["labels"]
    with pytest.raises(ContractError, match=r"unfinished.h5: missing dataset\(s\) labels"):
        read_signals(unfinished, [0])


# --------------------------------------------------------------------------- ECGDataset


def style_renderer(signal: np.ndarray, index: int, epoch: int) -> np.ndarray:
    """A stand-in renderer: the trace of lead II as a bar image, tinted by (index, epoch)."""
    rng = np.random.default_rng([index, epoch])
    image = np.zeros((16, 32, 3), dtype=np.uint8)
    image[..., 0] = np.clip(np.abs(signal[::128, 1]) * 100, 0, 255).astype(np.uint8)[None, :]
    image[..., 2] = rng.integers(0, 256)
    return image


def test_dataset_items(prepared):
    path, _ = prepared
    index = read_index(path)
    dataset = ECGDataset(path, "train", decimate=4, image_renderer=style_renderer)
    assert len(dataset) == int((index["split"] == "train").sum())
    np.testing.assert_array_equal(dataset.labels, index.loc[index["split"] == "train", list(LABELS)].to_numpy())
    item = dataset[0]
    assert item["signal"].dtype == torch.float32 and item["signal"].shape == (12, 1024)
    assert item["label"].dtype == torch.float32 and item["label"].shape == (6,)
    assert isinstance(item["index"], int) and index.loc[item["index"], "split"] == "train"
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 16, 32)
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    full = ECGDataset(path, None)
    assert len(full) == len(index) and full[3]["signal"].shape == (12, N_SAMPLES)
    np.testing.assert_array_equal(full[3]["signal"].numpy(), read_signals(path, [3])[0].T)
    with pytest.raises(ValueError, match="divisor"):
        ECGDataset(path, "train", decimate=3)
    with pytest.raises(ValueError, match="unknown split"):
        ECGDataset(path, "validation")


def test_dataset_augmentation_is_deterministic_per_seed_index_epoch(prepared):
    path, _ = prepared
    make = lambda seed: ECGDataset(path, "train", gain_augment=(0.5, 2.0), image_renderer=style_renderer, seed=seed)
    first, second, other_seed = make(0), make(0), make(1)
    a, b = first[2], second[2]
    assert torch.equal(a["signal"], b["signal"]) and torch.equal(a["image"], b["image"])
    assert not torch.equal(a["signal"], other_seed[2]["signal"])
    first.set_epoch(1)
    c = first[2]
    assert not torch.equal(a["signal"], c["signal"]) and not torch.equal(a["image"], c["image"])
    second.set_epoch(1)
    assert torch.equal(c["signal"], second[2]["signal"])
    # Gains are per lead: the ratio to the raw signal is constant within a lead, different across leads.
    plain = ECGDataset(path, "train")[2]["signal"]
    ratio = (a["signal"] / plain)[:, 2000]
    assert 0.5 <= ratio.min() and ratio.max() <= 2.0 and ratio.std() > 0


def test_dataset_with_two_workers_matches_direct_access(prepared):
    path, _ = prepared
    dataset = ECGDataset(path, "train", decimate=2, gain_augment=(0.5, 2.0), seed=3)
    dataset.set_epoch(4)
    dataset[0]  # a handle opened in the parent must not be reused by the workers
    loader = DataLoader(dataset, batch_size=5, num_workers=2, shuffle=False)
    batches = list(loader)
    signals = torch.cat([b["signal"] for b in batches])
    indices = torch.cat([b["index"] for b in batches]).tolist()
    assert indices == dataset.rows.tolist()
    expected = torch.stack([dataset[i]["signal"] for i in range(len(dataset))])
    assert torch.equal(signals, expected)
    dataset.close()


def test_source_report_is_stored(tmp_path):
    from vizecg.data.sources import iter_source

    path = tmp_path / "tiny.h5"
    summary = write_prepared(iter_source("synthetic", n_records=6, seed=1, chunk_size=4, progress=False), path,
                             progress=False)
    assert summary["source_report"]["records"] == 6
    assert read_attrs(path)["source_report"] == summary["source_report"]
