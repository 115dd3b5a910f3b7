"""Learning curves of a signal model: per-class validation AUROC against records seen and wall time.

The image curves (``benchmarks/learning_curves.py``) chose the image recipe; this asks the signal
side one question: does a signal model learn 1dAVb if it sees more records than the default run's
6,144? ``benchmarks/label_ceiling.py`` shows that a rule measuring PR from the same 100 Hz signals
ranks 1dAVb at about 0.93 while the default run's signal models reach 0.5-0.67. Same engine, same
endless synthetic stream, same constant learning rate and validation set as the image curves.

    python benchmarks/signal_learning_curves.py --configs inception_time_100hz --epochs 12
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learning_curves import TRAIN_SEED, VAL_SEED, points_from_history  # noqa: E402
from vizecg.data.stream import SyntheticStreamDataset  # noqa: E402
from vizecg.models import create_loss, create_model  # noqa: E402
from vizecg.training.engine import fit  # noqa: E402

#: name -> (registered model, its options, signal decimation from 400 Hz). The options are the
#: ``default`` profile's for that model, with the kernel scaled to keep its span in seconds.
CONFIGS = {
    "inception_time_100hz": ("inception_time", {"n_filters": 32, "depth": 6, "kernel_size": 20}, 4),
    "inception_time_200hz": ("inception_time", {"n_filters": 32, "depth": 6, "kernel_size": 40}, 2),
    "ranet1d_100hz": ("ranet1d", {"stage_widths": [48, 96, 192, 192]}, 4),
}


def run_config(name: str, *, records: int, epochs: int, val_records: int, batch_size: int, lr: float,
               num_workers: int, seed: int) -> list[dict]:
    model_name, options, decimate = CONFIGS[name]
    train = SyntheticStreamDataset(records, stream_seed=TRAIN_SEED, decimate=decimate, gain_augment=(0.5, 2.0),
                                   seed=seed)
    val = SyntheticStreamDataset(val_records, stream_seed=VAL_SEED, decimate=decimate, seed=seed,
                                 distinct_epochs=False)
    torch.manual_seed(seed)
    model = create_model(model_name, **options)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = fit(model, create_loss(model), train, val, out_dir=out, epochs=epochs, batch_size=batch_size,
                     lr=lr, lr_min=lr, inputs=("signal",), num_workers=num_workers, seed=seed, tensorboard=False)
    points = points_from_history(result.history)
    print(f"{name}: {time.perf_counter() - start:.0f} s, final macro AUROC {points[-1]['val_auroc']:.3f}, "
          f"1dAVb {points[-1]['val_auroc_1dAVb']:.3f}", flush=True)
    return points


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["inception_time_100hz"], choices=list(CONFIGS))
    parser.add_argument("--records", type=int, default=2048, help="records between validations")
    parser.add_argument("--epochs", type=int, default=12, help="validations per configuration")
    parser.add_argument("--val-records", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    parser.add_argument("--num-workers", type=int, default=1, help="DataLoader workers drawing records")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("reports/metrics/signal_learning_curves.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {"command": "python benchmarks/signal_learning_curves.py " + " ".join(argv or sys.argv[1:]),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                          "threads": args.threads, "num_workers": args.num_workers},
              "setup": {"records_per_validation": args.records, "val_records": args.val_records,
                        "batch_size": args.batch_size, "lr": args.lr, "optimizer": "Adam, constant lr"},
              "configs": {}}
    if args.out.exists():  # a rerun keeps finished configurations
        result["configs"] = json.loads(args.out.read_text()).get("configs", {})
    for name in args.configs:
        if name in result["configs"]:
            print(f"{name}: already measured, kept", flush=True)
            continue
        model_name, options, decimate = CONFIGS[name]
        points = run_config(name, records=args.records, epochs=args.epochs, val_records=args.val_records,
                            batch_size=args.batch_size, lr=args.lr, num_workers=args.num_workers, seed=args.seed)
        result["configs"][name] = {"model": model_name, "options": options, "sample_rate_hz": 400 // decimate,
                                   "points": points}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
