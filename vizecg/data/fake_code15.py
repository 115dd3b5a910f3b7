"""A fake CODE-15% in the official file layout, filled from the synthetic generator.

It lets the whole CODE-15% path (reader, preparation, training at scale) run end to end
without the 345,779-exam download, and it is what the reader's tests read back.
What it reproduces of the official layout (see :mod:`vizecg.data.code15`):

* ``exams.csv`` with the official columns (``exam_id, age, is_male, nn_predicted_age,
  1dAVb, RBBB, LBBB, SB, AF, ST, patient_id, normal_ecg, death, timey, trace_file``),
  labels written as ``True``/``False``, rows in shuffled order, several exams per patient;
* ``exams_part{k}.hdf5`` with ``exam_id`` ``(N,)`` int64 and ``tracings`` ``(N, 4096, 12)``
  float32 in mV at 400 Hz;
* 10 s exams (4000 samples) and 7 s exams (2800 samples) zero-padded, centred, to 4096;
* filler rows: ``exam_id`` 0 with all-zero tracings at the end of every part, and a few
  "orphan" rows whose exam id is absent from ``exams.csv``.

Command line: ``python -m vizecg.data.fake_code15 DEST --n-exams N --parts K``.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from vizecg.contract import LABELS, N_LEADS, N_SAMPLES
from vizecg.data.code15 import CSV_NAME, part_name
from vizecg.data.preprocess import LONG_EXAM_SAMPLES, SHORT_EXAM_SAMPLES, zero_pad_centred


def write_fake_code15(dest: str | os.PathLike, n_exams: int, n_parts: int, seed: int = 0, *,
                      short_fraction: float = 0.2, fillers_per_part: int = 2, orphans: int = 1,
                      exams_per_patient: tuple[int, int] = (1, 3), chunk_size: int = 256,
                      progress: bool = True, **generator_options) -> dict:
    """Write ``exams.csv`` and ``exams_part0..{n_parts-1}.hdf5`` for ``n_exams`` synthetic exams.

    Exams are spread evenly over the parts; each part then gets ``fillers_per_part``
    rows with ``exam_id`` 0, and ``orphans`` rows in total (in the first part) carry exam
    ids missing from the CSV. A ``short_fraction`` of exams is 7 s long, the rest 10 s.
    Patients own 1-3 exams (``exams_per_patient``). ``generator_options`` go to
    :func:`vizecg.data.synthetic.generate`. Deterministic for ``seed``. Returns a summary
    with the written exam ids, patient ids, labels and recorded lengths in CSV order of
    generation, and the counts of fillers and orphans.
    """
    from vizecg.data.synthetic import generate

    if n_exams < 1 or n_parts < 1:
        raise ValueError(f"need at least one exam and one part, got n_exams={n_exams}, n_parts={n_parts}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # Unique positive exam ids in the range of the real ones; orphans draw from the same pool.
    pool = rng.choice(np.arange(1, 10 * (n_exams + orphans) + 10, dtype=np.int64), size=n_exams + orphans,
                      replace=False)
    exam_ids, orphan_ids = pool[:n_exams], pool[n_exams:]
    low, high = exams_per_patient
    per_patient = rng.integers(low, high + 1, size=n_exams)
    patient_of_exam = np.repeat(np.arange(n_exams), per_patient)[:n_exams]
    patient_numbers = rng.permutation(np.arange(1, n_exams + 1, dtype=np.int64) * 7 + 1000)
    patient_ids = patient_numbers[patient_of_exam]
    recorded = np.where(rng.random(n_exams) < short_fraction, SHORT_EXAM_SAMPLES, LONG_EXAM_SAMPLES)
    bounds = np.linspace(0, n_exams, n_parts + 1).astype(int)

    labels = np.zeros((n_exams, len(LABELS)), dtype=np.uint8)
    trace_files = np.empty(n_exams, dtype=object)
    bar = tqdm(total=n_exams, desc="fake CODE-15%", unit="exam", disable=not progress)
    for part in range(n_parts):
        first, last = int(bounds[part]), int(bounds[part + 1])
        n_orphans = orphans if part == 0 else 0
        n_rows = (last - first) + n_orphans + fillers_per_part
        path = dest / part_name(part)
        temporary = path.with_name(path.name + ".writing")
        with h5py.File(temporary, "w") as handle:
            ids_dataset = handle.create_dataset("exam_id", shape=(n_rows,), dtype=np.int64)
            tracings = handle.create_dataset("tracings", shape=(n_rows, N_SAMPLES, N_LEADS), dtype=np.float32)
            for start in range(first, last, chunk_size):
                stop = min(start + chunk_size, last)
                signals, chunk_labels = generate(stop - start, seed, start=start, **generator_options)
                labels[start:stop] = chunk_labels
                tracings[start - first:stop - first] = zero_pad_centred(signals, recorded[start:stop])
                ids_dataset[start - first:stop - first] = exam_ids[start:stop]
                bar.update(stop - start)
            row = last - first
            if n_orphans:
                signals, _ = generate(n_orphans, seed, start=n_exams, **generator_options)
                tracings[row:row + n_orphans] = zero_pad_centred(signals, np.full(n_orphans, LONG_EXAM_SAMPLES))
                ids_dataset[row:row + n_orphans] = orphan_ids
                row += n_orphans
            ids_dataset[row:] = 0  # fillers: exam_id 0, tracings left all zero
            tracings[row:] = 0.0
        temporary.replace(path)
        trace_files[first:last] = path.name
    bar.close()

    table = pd.DataFrame({
        "exam_id": exam_ids,
        "age": rng.integers(18, 95, size=n_exams),
        "is_male": rng.random(n_exams) < 0.4,
        "nn_predicted_age": np.round(rng.normal(55, 15, size=n_exams), 2),
        **{label: labels[:, k].astype(bool) for k, label in enumerate(LABELS)},
        "patient_id": patient_ids,
        "normal_ecg": ~labels.any(axis=1).astype(bool),
        "death": np.where(rng.random(n_exams) < 0.05, "True", "False"),
        "timey": np.round(rng.uniform(0.1, 8.0, size=n_exams), 3),
        "trace_file": trace_files,
    })
    order = rng.permutation(n_exams)
    table.iloc[order].to_csv(dest / CSV_NAME, index=False)
    return {
        "dest": str(dest),
        "exam_ids": exam_ids,
        "patient_ids": patient_ids,
        "labels": labels,
        "recorded_samples": recorded,
        "orphan_ids": orphan_ids,
        "n_parts": n_parts,
        "fillers": fillers_per_part * n_parts,
        "orphans": orphans,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vizecg.data.fake_code15", description=__doc__.splitlines()[0])
    parser.add_argument("dest", help="output folder")
    parser.add_argument("--n-exams", type=int, required=True)
    parser.add_argument("--parts", type=int, default=1, help="number of exams_part*.hdf5 files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--short-fraction", type=float, default=0.2, help="fraction of 7 s exams")
    parser.add_argument("--fillers-per-part", type=int, default=2)
    parser.add_argument("--orphans", type=int, default=1)
    args = parser.parse_args(argv)
    summary = write_fake_code15(args.dest, args.n_exams, args.parts, args.seed, short_fraction=args.short_fraction,
                                fillers_per_part=args.fillers_per_part, orphans=args.orphans)
    print(f"wrote {args.n_exams} exams in {summary['n_parts']} parts to {summary['dest']} "
          f"({summary['fillers']} filler rows, {summary['orphans']} orphan rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
