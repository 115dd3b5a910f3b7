"""One interface over every data source: ``iter_source(name, **options)`` -> RecordChunks.

=============  ===================================================================================
name           options (besides ``chunk_size``, ``progress``)
=============  ===================================================================================
``synthetic``  ``n_records``, ``seed``, and the generator's options (``prevalence``, ...)
``code15``     ``root`` (folder with exams.csv and parts), ``parts``, ``max_records``, ``invalid``
``ptbxl``      ``root`` (folder with ptbxl_database.csv), ``sample_rate`` (500 or 100),
               ``max_records``, ``on_error``
``challenge``  ``root`` (PhysioNet 2020/2021 training folder), ``max_records``, ``on_error``
``ludb``       ``root`` (default ``../shared/data/ludb``), ``max_records``, ``on_error``
``wfdb``       ``root`` (any WFDB folder, unlabelled unless ``labeler`` is given), ...
=============  ===================================================================================

Every chunk follows the record contract and has been through the same preprocessing
(:mod:`vizecg.data.preprocess`), the synthetic one included, so that no source differs
from another by a processing step.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from vizecg.data.preprocess import PreprocessReport, preprocess_batch
from vizecg.data.records import RecordChunk

SOURCE_NAMES: tuple[str, ...] = ("synthetic", "code15", "ptbxl", "challenge", "ludb", "wfdb")


class SourceIterator(Iterator[RecordChunk]):
    """An iterator over a reader's chunks that also exposes the reader's ``report`` (counts of
    records read and skipped), complete once the iterator is exhausted.
    :func:`~vizecg.data.prepared.write_prepared` stores it in the prepared file."""

    def __init__(self, reader: Iterable[RecordChunk]) -> None:
        self.reader = reader
        self._chunks = iter(reader)

    def __next__(self) -> RecordChunk:
        return next(self._chunks)

    @property
    def report(self):
        return getattr(self.reader, "report", None)


class SyntheticReader:
    """Synthetic records ``0 .. n_records - 1`` of dataset ``seed``, preprocessed like real ones."""

    def __init__(self, *, n_records: int = 1000, seed: int = 0, chunk_size: int = 256, progress: bool = True,
                 **generator_options) -> None:
        if n_records < 1 or chunk_size < 1:
            raise ValueError(f"n_records and chunk_size must be positive, got {n_records}, {chunk_size}")
        self.n_records, self.seed, self.chunk_size = int(n_records), int(seed), int(chunk_size)
        self.progress = progress
        self.generator_options = generator_options
        self.report = PreprocessReport()

    def __iter__(self) -> Iterator[RecordChunk]:
        from tqdm.auto import tqdm

        from vizecg.data.synthetic import generate_chunk

        self.report = PreprocessReport()
        with tqdm(total=self.n_records, desc="synthetic", unit="record", disable=not self.progress,
                  leave=False) as bar:
            for start in range(0, self.n_records, self.chunk_size):
                n = min(self.chunk_size, self.n_records - start)
                chunk = generate_chunk(n, self.seed, start=start, **self.generator_options)
                signals, report = preprocess_batch(chunk.signals, 400, source=chunk.source)
                self.report += report
                bar.update(n)
                yield RecordChunk(signals, chunk.labels, chunk.record_ids, chunk.patient_ids, chunk.source)


def iter_source(name: str, **options) -> SourceIterator:
    """Iterate source ``name`` (one of :data:`SOURCE_NAMES`) as contract RecordChunks.

    The returned iterator has a ``report`` attribute with the source's counts (records,
    skips, flat leads, unknown codes), final once the iteration is over.
    """
    if name == "synthetic":
        return SourceIterator(SyntheticReader(**options))
    if name == "code15":
        from vizecg.data.code15 import Code15Reader

        root = options.pop("root", "data/code15")
        return SourceIterator(Code15Reader(root, **options))
    from vizecg.data import wfdb_source

    readers = {"ptbxl": wfdb_source.ptbxl_reader, "challenge": wfdb_source.challenge_reader,
               "ludb": wfdb_source.ludb_reader, "wfdb": wfdb_source.folder_reader}
    if name not in readers:
        raise ValueError(f"unknown data source {name!r}; expected one of {', '.join(SOURCE_NAMES)}")
    if name != "ludb" and "root" not in options:
        raise ValueError(f"data source {name!r} needs a 'root' folder option")
    return SourceIterator(readers[name](**options))


def load_source(name: str, **options) -> RecordChunk:
    """All records of source ``name`` in one RecordChunk (for small sources such as LUDB)."""
    chunks = list(iter_source(name, **options))
    if not chunks:
        raise ValueError(f"data source {name!r} yielded no records")
    return RecordChunk(signals=np.concatenate([c.signals for c in chunks]),
                       labels=np.concatenate([c.labels for c in chunks]),
                       record_ids=[r for c in chunks for r in c.record_ids],
                       patient_ids=[p for c in chunks for p in c.patient_ids],
                       source=name)
