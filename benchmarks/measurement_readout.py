"""How well a network with a measurement head reads each class's defining measurement off the page.

    python benchmarks/measurement_readout.py CONFIG [--checkpoint PATH] [--records 500]

``CONFIG`` is a configuration of ``benchmarks/learning_curves.py`` trained with the auxiliary
measurement loss (``vizecg.models.losses.MeasurementLoss``); its checkpoint (default: the
``last.pt`` that ``--work-dir data/benchmarks/learning_curves`` keeps) is read image-only on the
learning curves' validation pages (500 synthetic records of a seed the study never uses). For each
measurement (PR interval, QRS duration, heart rate, RR irregularity, P-wave presence), what the
head reads is compared with what :mod:`vizecg.data.ecg_measurements` measures on the record's
signal: Pearson r and the median absolute error in the measurement's own unit, over the records
where the signal measurement exists. It also times, in this process, what the targets cost a
training-set worker: measuring a record against drawing its page with the configuration's renderer.
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

from vizecg.contract import SAMPLE_RATE_HZ  # noqa: E402
from vizecg.data.ecg_measurements import MEASUREMENT_TARGETS, measurement_targets  # noqa: E402
from vizecg.data.preprocess import preprocess_batch  # noqa: E402
from vizecg.data.synthetic import generate  # noqa: E402
from vizecg.data.stream import SyntheticStreamDataset  # noqa: E402
from vizecg.training import read_checkpoint  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--cost-records", type=int, default=60, help="records timed for the cost figures")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here too")
    args = parser.parse_args(argv)

    checkpoint = args.checkpoint or Path("data/benchmarks/learning_curves") / args.config / "last.pt"
    model, _, renderer, _, _, _ = _model_and_pages(args.config, seed=0)
    if not getattr(model, "measurement_outputs", 0):
        parser.error(f"{args.config} has no measurement head")
    payload = read_checkpoint(checkpoint)
    model.load_state_dict(payload["state_dict"])
    model.eval()
    pages = SyntheticStreamDataset(args.records, stream_seed=VAL_SEED, image_renderer=renderer, decimate=4,
                                   distinct_epochs=False, measurement_targets=True)
    read, measured = [], []
    with torch.inference_mode():
        for batch in tqdm(DataLoader(pages, batch_size=32, num_workers=args.num_workers), desc="reading pages"):
            read.append(model(image=batch["image"])["measurements"].numpy())
            measured.append(batch["measurements"].numpy())
    read, measured = np.concatenate(read), np.concatenate(measured)

    figures = {"config": args.config, "checkpoint": str(checkpoint), "epoch": payload.get("epoch"),
               "records": args.records, "measurements": {}}
    for column, (name, (centre, scale)) in enumerate(MEASUREMENT_TARGETS.items()):
        known = np.isfinite(measured[:, column])
        truth = measured[known, column] * scale + centre
        guess = read[known, column] * scale + centre
        r = float(np.corrcoef(truth, guess)[0, 1]) if known.sum() > 2 else float("nan")
        error = float(np.median(np.abs(truth - guess)))
        figures["measurements"][name] = {"records": int(known.sum()), "pearson_r": round(r, 3),
                                         "median_abs_error": round(error, 3)}
        print(f"{name:18s} n={int(known.sum()):4d}  r={r:6.3f}  median |error| {error:8.3f}")
    figures["cost_ms_per_record"] = cost_per_record(renderer, args.cost_records)
    print("cost per record: " + ", ".join(f"{k} {v:.1f} ms" for k, v in figures["cost_ms_per_record"].items()))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")


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
