"""How well a network with a measurement head reads each class's defining measurement off the page.

    python benchmarks/measurement_readout.py CONFIG_OR_MODEL_DIR [--checkpoint PATH] [--records 500]
                                             [--external data/ludb/dataset.h5]

``CONFIG`` is a configuration of ``benchmarks/learning_curves.py`` trained with the auxiliary
measurement loss (``vizecg.models.losses.MeasurementLoss``); its checkpoint (default: the
``last.pt`` that ``--work-dir data/benchmarks/learning_curves`` keeps) is read image-only on the
learning curves' validation pages (500 synthetic records of a seed the study never uses). For each
measurement (PR interval, QRS duration, heart rate, RR irregularity, P-wave presence), what the
head reads is compared with what :mod:`vizecg.data.ecg_measurements` measures on the record's
signal: Pearson r and the median absolute error in the measurement's own unit, over the records
where the signal measurement exists. A shipped-model folder (``models/...``) whose model has the
head is read the same way, on clean pages of every layout and style through predict's page
preparation: how close what ``predict`` reports as ``"measurements"`` comes. It also times, in this process, what the targets cost a
training-set worker: measuring a record against drawing its page with the configuration's renderer.

``--external`` reads a prepared HDF5 of real ECGs (``dvc repro`` writes LUDB's to
``data/ludb/dataset.h5``) the same way, drawn in the paper look (ecg_plot 0.2.8) and read back by
predict's page preparation: does what the head learnt on synthetic pages hold on real ECGs? For
both sets it also gives, per class, the AUROC of the classifier beside the AUROC of the head's
reading of the class's defining measurement used alone as the score (heart rate for SB and ST,
PR for 1dAVb, RR irregularity for AF). The external set is reported, never used to choose anything.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learning_curves import VAL_SEED, _model_and_pages  # noqa: E402

from vizecg.contract import LABELS, SAMPLE_RATE_HZ  # noqa: E402
from vizecg.data.dataset import ECGDataset  # noqa: E402
from vizecg.data.prepared import open_prepared  # noqa: E402
from vizecg.data.ecg_measurements import MEASUREMENT_TARGETS, measurement_targets  # noqa: E402
from vizecg.data.preprocess import preprocess_batch  # noqa: E402
from vizecg.data.synthetic import generate  # noqa: E402
from vizecg.data.stream import SyntheticStreamDataset  # noqa: E402
from vizecg.evaluation.metrics import per_class_auroc, reading_agreement  # noqa: E402
from vizecg.render.training import TrainingImageRenderer  # noqa: E402
from vizecg.shipped_model import is_shipped_model, load_shipped_model, shipped_meta_path  # noqa: E402
from vizecg.study.shipped_card import DEFINING_MEASUREMENT, card_renderer  # noqa: E402
from vizecg.training import read_checkpoint  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a configuration of learning_curves.py trained with the measurement head, "
                                           "or a shipped-model folder whose model has one")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--cost-records", type=int, default=60, help="records timed for the cost figures")
    parser.add_argument("--external", type=Path, default=None, metavar="HDF5",
                        help="a prepared HDF5 of real ECGs to read as well (e.g. data/ludb/dataset.h5)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here too")
    args = parser.parse_args(argv)

    if is_shipped_model(args.config):  # a shipped model: read on clean pages of every layout and style
        model, meta = load_shipped_model(args.config)
        checkpoint, epoch = shipped_meta_path(args.config), (meta.get("source_checkpoint") or {}).get("epoch")
        renderer = TrainingImageRenderer(meta["input"]["image_height"], meta["input"]["image_width"], seed=0,
                                         page_preparation="predict", render_scale=2.0, randomize_style=True)
    else:
        checkpoint = args.checkpoint or Path("data/benchmarks/learning_curves") / args.config / "last.pt"
        model, _, renderer, _, _, _ = _model_and_pages(args.config, seed=0)
        payload = read_checkpoint(checkpoint)
        model.load_state_dict(payload["state_dict"])
        epoch = payload.get("epoch")
    if not getattr(model, "measurement_outputs", 0):
        parser.error(f"{args.config} has no measurement head")
    model.eval()
    pages = SyntheticStreamDataset(args.records, stream_seed=VAL_SEED, image_renderer=renderer, decimate=4,
                                   distinct_epochs=False, measurement_targets=True)
    figures = {"command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
               "config": args.config, "checkpoint": str(checkpoint), "epoch": epoch,
               "records": args.records,
               **readout(model, pages, "synthetic validation pages", args.num_workers)}
    if args.external is not None:
        height, width = model_input_size(pages)
        external = MeasuredPages(ECGDataset(args.external, decimate=4,
                                            image_renderer=card_renderer(height, width, "paper", 0.0)))
        figures["external"] = {"file": str(args.external), "look": "paper (ecg_plot 0.2.8), read by predict",
                               "records": len(external),
                               **readout(model, external, f"{args.external} pages", args.num_workers)}
    figures["cost_ms_per_record"] = cost_per_record(renderer, args.cost_records)
    print("cost per record: " + ", ".join(f"{k} {v:.1f} ms" for k, v in figures["cost_ms_per_record"].items()))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")


class MeasuredPages(torch.utils.data.Dataset):
    """A prepared-HDF5 dataset's pages with each record's measurement targets, measured up front on
    its full-rate signal as the synthetic stream measures them."""

    def __init__(self, dataset: ECGDataset) -> None:
        self.dataset = dataset
        with open_prepared(dataset.path) as handle:
            signals = handle["signals"]
            self.targets = [measurement_targets(np.asarray(signals[row], dtype=np.float32))
                            for row in tqdm(dataset.rows, desc=f"measuring {dataset.path}")]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: int) -> dict:
        return {**self.dataset[item], "measurements": torch.from_numpy(self.targets[item])}


def model_input_size(pages) -> tuple[int, int]:
    """(height, width) of the pages a dataset draws."""
    return tuple(pages[0]["image"].shape[-2:])


#: class -> (measurement column, sign): the head's reading that defines the class, oriented so that
#: a higher score means the class (SB: slower heart rate): the model card's defining measurements
#: (not the blocks, which share the QRS duration) and the RR irregularity for AF
DEFINING_READING = {**{label: DEFINING_MEASUREMENT[label][:2] for label in ("1dAVb", "SB", "ST")},
                    "AF": ("rr_irregularity", 1)}


def readout(model, pages, what: str, workers: int) -> dict:
    """Per measurement, Pearson r and median |error| of the head against the signal's measurement;
    per class, the classifier's AUROC and that of the head's defining reading alone."""
    read, measured, logits, labels = [], [], [], []
    with torch.inference_mode():
        for batch in tqdm(DataLoader(pages, batch_size=32, num_workers=workers), desc=f"reading {what}"):
            outputs = model(image=batch["image"])
            read.append(outputs["measurements"].numpy())
            logits.append(outputs["logits"].numpy())
            measured.append(batch["measurements"].numpy())
            labels.append(batch["label"].numpy())
    read, measured = np.concatenate(read), np.concatenate(measured)
    logits, labels = np.concatenate(logits), np.concatenate(labels).astype(int)
    names = list(MEASUREMENT_TARGETS)
    print(what)
    figures = {"measurements": {}, "class_auroc": {}}
    for column, (name, (centre, scale)) in enumerate(MEASUREMENT_TARGETS.items()):
        n, r, error = reading_agreement(measured[:, column] * scale + centre, read[:, column] * scale + centre)
        figures["measurements"][name] = {"records": n, "pearson_r": round(r, 3), "median_abs_error": round(error, 3)}
        print(f"  {name:18s} n={n:4d}  r={r:6.3f}  median |error| {error:8.3f}")
    classifier = per_class_auroc(labels, logits)
    for label, (name, sign) in DEFINING_READING.items():
        c = LABELS.index(label)
        reading = per_class_auroc(labels[:, [c]], sign * read[:, [names.index(name)]])[0]
        figures["class_auroc"][label] = {"positives": int(labels[:, c].sum()), "classifier": round(float(classifier[c]), 3),
                                         f"head {name} alone": round(float(reading), 3)}
        print(f"  {label:6s} positives {int(labels[:, c].sum()):4d}  AUROC classifier {classifier[c]:.3f}, "
              f"head {name} alone {reading:.3f}")
    return figures


def cost_per_record(renderer, n: int) -> dict[str, float]:
    """Mean ms to measure a record's targets and to draw its page with ``renderer`` (one after the other,
    in this process, on the same records)."""
    raw, _ = generate(n, VAL_SEED + 1)
    signals, _ = preprocess_batch(raw, SAMPLE_RATE_HZ, source="cost records")
    measurement_targets(signals[0]), renderer(signals[0], 0, 0)  # warm-up: filters, fonts, caches
    start = time.perf_counter()
    for signal in signals:
        measurement_targets(signal)
    measure = (time.perf_counter() - start) / n
    start = time.perf_counter()
    for index, signal in enumerate(signals):
        renderer(signal, index, 0)
    draw = (time.perf_counter() - start) / n
    return {"measure": round(1000 * measure, 1), "draw_page": round(1000 * draw, 1)}


if __name__ == "__main__":
    main()
