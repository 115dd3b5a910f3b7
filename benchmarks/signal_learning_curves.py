"""Learning curves of a signal model: per-class validation AUROC against records seen and wall time.

The image curves (``benchmarks/learning_curves.py``) chose the image recipe; this asks the signal
side one question: does a signal model learn 1dAVb if it sees more records than the default run's
6,144? ``benchmarks/label_ceiling.py`` shows that a rule measuring PR from the same 100 Hz signals
ranks 1dAVb at about 0.93 while the default run's signal models reach 0.5-0.67. Same engine, same
endless synthetic stream, same constant learning rate and validation set as the image curves.

    python benchmarks/signal_learning_curves.py --configs inception_time_100hz --epochs 12
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learning_curves import TRAIN_SEED, VAL_SEED, curve_parser, measure_configs, points_from_history  # noqa: E402
from vizecg.data.stream import SyntheticStreamDataset  # noqa: E402
from vizecg.models import create_loss, create_model  # noqa: E402
from vizecg.training.engine import fit  # noqa: E402

VIZECGNET_DEFAULT = {"signal_width": 8, "image_width": 16, "embed_dim": 64, "num_heads": 4}

#: name -> (registered model, its options, signal decimation from 400 Hz). The options are the
#: ``default`` profile's for that model, with the kernel scaled to keep its span in seconds.
CONFIGS = {
    "inception_time_100hz": ("inception_time", {"n_filters": 32, "depth": 6, "kernel_size": 20}, 4),
    "inception_time_200hz": ("inception_time", {"n_filters": 32, "depth": 6, "kernel_size": 40}, 2),
    "ranet1d_100hz": ("ranet1d", {"stage_widths": [48, 96, 192, 192]}, 4),
    # VizECGNet's signal stream alone (the teacher; its image stream is built but never fed), at
    # the default profile's sizes, then with one thing changed each: a wider per-lead encoder, a
    # longer block kernel (3 samples at 100 Hz span 30 ms; a PR interval is 120-300 ms).
    "vizecgnet_signal_stream_100hz": ("vizecgnet", VIZECGNET_DEFAULT, 4),
    "vizecgnet_signal_stream_width16": ("vizecgnet", {**VIZECGNET_DEFAULT, "signal_width": 16}, 4),
    "vizecgnet_signal_stream_kernel7": ("vizecgnet", {**VIZECGNET_DEFAULT, "signal_kernel_size": 7}, 4),
}


def run_config(name: str, *, records: int, epochs: int, val_records: int, batch_size: int, lr: float,
               num_workers: int, seed: int, work_dir: Path | None = None) -> list[dict]:
    model_name, options, decimate = CONFIGS[name]
    train = SyntheticStreamDataset(records, stream_seed=TRAIN_SEED, decimate=decimate, gain_augment=(0.5, 2.0),
                                   seed=seed)
    val = SyntheticStreamDataset(val_records, stream_seed=VAL_SEED, decimate=decimate, seed=seed,
                                 distinct_epochs=False)
    torch.manual_seed(seed)
    model = create_model(model_name, **options)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(work_dir) / name if work_dir else scratch
        result = fit(model, create_loss(model), train, val, out_dir=out, epochs=epochs, batch_size=batch_size,
                     lr=lr, lr_min=lr, inputs=("signal",), num_workers=num_workers, seed=seed, tensorboard=False)
    points = points_from_history(result.history)
    print(f"{name}: {time.perf_counter() - start:.0f} s, final macro AUROC {points[-1]['val_auroc']:.3f}, "
          f"1dAVb {points[-1]['val_auroc_1dAVb']:.3f}", flush=True)
    return points


def main(argv: list[str] | None = None) -> None:
    parser = curve_parser(__doc__.split("\n\n")[0], list(CONFIGS), ["inception_time_100hz"], epochs=12,
                          out=Path("reports/metrics/signal_learning_curves.json"), unit="records")
    args = parser.parse_args(argv)

    def describe(name: str) -> dict:
        model_name, options, decimate = CONFIGS[name]
        return {"model": model_name, "options": options, "sample_rate_hz": 400 // decimate}

    measure_configs(args, "python benchmarks/signal_learning_curves.py " + " ".join(argv or sys.argv[1:]), {},
                    run_config, describe)


if __name__ == "__main__":
    main()
