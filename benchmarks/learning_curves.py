"""Learning curves of the image stream: per-class validation AUROC against samples seen and wall time.

Chooses the CPU recipe (page size, encoder width) from measurement instead of guesswork.
Each configuration trains the image-only ResNet18 of the study (``vizecg.models``
``resnet18``, torchvision layout with a width knob) through the study's own training
engine on the endless synthetic stream (``vizecg.data.stream``), clean paper-look pages,
plain Adam at a constant learning rate (no schedule, so every point of the curve is the
model a shorter run would have had), and validates on a fixed set of other synthetic
records (seeds disjoint from the study's prepared data) after every ``--records`` pages.

    python benchmarks/learning_curves.py --out reports/metrics/learning_curves.json

The JSON holds one list of points per configuration (``samples_seen``, cumulative
``train_seconds`` and ``wall_seconds``, ``val_auroc`` and ``val_auroc_<label>``), the
machine, the thread count and the command. Notebook 03 plots it.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vizecg.contract import LABELS  # noqa: E402
from vizecg.data.ecg_measurements import MEASUREMENT_TARGETS  # noqa: E402
from vizecg.data.stream import SyntheticStreamDataset  # noqa: E402
from vizecg.models import create_loss, create_model  # noqa: E402
from vizecg.models.losses import needs_measurements  # noqa: E402
from vizecg.render.training import DEFAULT_SHARE_50MM_S, TrainingImageRenderer  # noqa: E402
from vizecg.training.engine import fit  # noqa: E402

@dataclass(frozen=True)
class Curve:
    """One learning curve of the image-only ResNet18: its page, its encoder, its pages' looks, its loss."""

    height: int
    width: int
    base_width: int = 16
    stem_stride: int | tuple[int, int] = 2
    #: clean pages in every layout and style (TrainingImageRenderer's randomize_style) instead of the paper look
    any_style: bool = False
    #: of the styled pages, the share at 50 mm/s
    share_50mm_s: float = DEFAULT_SHARE_50MM_S
    #: (start, full) epochs of TrainingImageRenderer's curriculum: the paper look alone before ``start``, every
    #: style from ``full`` on; validated on every style throughout, as the styled curves
    curriculum: tuple[int, int] | None = None
    #: weight of the auxiliary measurement loss (vizecg.models.losses.MeasurementLoss); 0: no measurement head
    measurement_weight: float = 0.0
    #: a constant learning rate of the curve's own; None: the command's --lr
    lr: float | None = None


CONFIGS = {
    "w8_128x357": Curve(128, 357, base_width=8),
    "w16_128x357": Curve(128, 357),
    "w16_96x268": Curve(96, 268),
    "w16_160x446": Curve(160, 446),
    "w16_128x357_stem21": Curve(128, 357, stem_stride=(2, 1)),
    # twice the horizontal pixels: a PR interval 40 ms longer is 0.67 px more at 357 wide
    "w16_128x714": Curve(128, 714),
    # twice the vertical pixels: on the paper look a 0.15 mV P wave is 1 px tall at 128 (6.7 px per mV)
    "w16_256x357": Curve(256, 357),
    # the same pages in every layout and style (still clean), drawn directly at the input size: beside
    # resnet18_deployed_any_style_256x357 (those pages drawn at 2x and read back by predict's prepare_page)
    # it says which of the two, the styles or the page preparation, holds 1dAVb back
    "w16_256x357_any_style": Curve(256, 357, any_style=True),
    # the same pages with none at 50 mm/s (every other attribute of each page drawn alike): at 50 mm/s a
    # normal PR interval covers the paper of a first-degree block at 25, so if the network reads the PR
    # interval in pixels, one page in ten teaches it that a long PR means nothing
    "w16_256x357_any_style_25mm_s": Curve(256, 357, any_style=True, share_50mm_s=0.0),
    # the paper look first, then every style: on the mixture from the start 1dAVb rises about a quarter as
    # fast as on the paper look; does a PR reader learnt on the paper look survive the mixture?
    "w16_256x357_paper_then_any_style": Curve(256, 357, any_style=True, curriculum=(30, 33)),
    # the paper look with the measurement head: on the paper look 1dAVb stays near chance for about 40,000
    # pages and is learnt after; does asking for the PR interval itself (a target on every sinus record
    # rather than a label on one record in eight) bring it sooner?
    "w16_256x357_measurements": Curve(256, 357, measurement_weight=1.0),
    # three times the step: the classes other than 1dAVb are learnt by about 20,000 pages, after which
    # 1dAVb's gradient is nearly all there is; does a larger step find the PR interval in fewer pages?
    "w16_128x357_lr3e-3": Curve(128, 357, lr=3e-3),
}
#: The shipped model's network on the deployed path: VizECGNet as the release run builds it (its
#: model and loss options from params.yaml, the teacher distilling into the image stream), clean
#: paper-look pages drawn at twice the input and read back by predict's prepare_page, validated
#: image-only on pages read the same way.
#: name -> (image height, image width, params.yaml run or None for the width-16 ResNet18 image-only,
#: clean pages in every layout and style, weight of the auxiliary measurement loss or 0)
DEPLOYED_CONFIGS = {
    "vizecgnet_release_deployed_128x357": (128, 357, "vizecgnet_release", False, 0.0),
    # the same clean pages in randomised styles (every layout, grid and ink), still without artifacts:
    # a release run whose clean phase was the paper look alone read the 3x4 and 12x1 layouts at 0.73
    # and 0.69 macro AUROC (reports/metrics/release_candidate.json)
    "vizecgnet_release_deployed_any_style_128x357": (128, 357, "vizecgnet_release", True, 0.0),
    # the plain ResNet18 on those pages: which of the two differences from the ResNet18 curves, the
    # network (with its distillation) or the pages, keeps VizECGNet from learning 1dAVb
    "resnet18_deployed_any_style_128x357": (128, 357, None, True, 0.0),
    # the same at twice the height, against the clean paper-look ResNet18 at 256 x 357 (1dAVb 0.94 after
    # 81,920 pages) and the shipped VizECGNet (1dAVb about 0.70 on the paper look after 131,072 broad pages):
    # do the deployed pages in every style hold 1dAVb back, or the network?
    "resnet18_deployed_any_style_256x357": (256, 357, None, True, 0.0),
    # VizECGNet asked to read each class's defining measurement off the page as well (PR, QRS,
    # heart rate, RR irregularity, P waves; vizecg.models.losses.MeasurementLoss)
    "vizecgnet_release_deployed_any_style_measurements_128x357": (128, 357, "vizecgnet_release", True, 1.0),
    # twice the height: at 128 px the head reads every measurement but the PR interval (r 0.09 after
    # 81,920 pages, benchmarks/measurement_readout.py), a P wave being about a pixel tall
    "vizecgnet_release_deployed_any_style_measurements_256x357": (256, 357, "vizecgnet_release", True, 1.0),
}
TRAIN_SEED, VAL_SEED = 11, 12  # not the study's data seed (0), so nothing here sees its val/test records


def _model_and_pages(name: str, seed: int):
    """(model, loss, renderer, train inputs, validation inputs, monitored inputs) of configuration ``name``."""
    if name in DEPLOYED_CONFIGS:
        from vizecg.study.config import load_params, params_for_run, run_spec

        height, width, run, any_style, measurement_weight = DEPLOYED_CONFIGS[name]
        renderer = TrainingImageRenderer(height, width, seed=seed, page_preparation="predict", render_scale=2.0,
                                         randomize_style=any_style)
        # the configuration, not the run's params, says whether the head is there: the same name
        # measures the same network whatever the release recipe holds now
        head = {"measurement_outputs": len(MEASUREMENT_TARGETS) if measurement_weight else 0}
        if run is None:
            torch.manual_seed(seed)
            model = create_model("resnet18", base_width=16, stem_stride=2, **head)
            return (model, create_loss(model, measurement_weight=measurement_weight), renderer, ("image",),
                    ("image",), None)
        params = params_for_run(load_params(profile="default"), run)
        spec = run_spec(params, run)
        torch.manual_seed(params["train"]["seed"])
        model = create_model(spec["model"], num_classes=len(LABELS), **{**spec["model_options"], **head})
        loss_fn = create_loss(model, **{**spec["loss_options"], "measurement_weight": measurement_weight})
        return model, loss_fn, renderer, ("signal", "image"), ("image",), {"signal": ("signal",)}
    curve = CONFIGS[name]
    torch.manual_seed(seed)
    model = create_model("resnet18", base_width=curve.base_width, stem_stride=curve.stem_stride,
                         measurement_outputs=len(MEASUREMENT_TARGETS) if curve.measurement_weight else 0)
    # clean pages: the ecg_plot paper look, or every layout and style
    renderer = TrainingImageRenderer(curve.height, curve.width, seed=seed, randomize_style=curve.any_style,
                                     share_50mm_s=curve.share_50mm_s, curriculum=curve.curriculum)
    return (model, create_loss(model, measurement_weight=curve.measurement_weight), renderer, ("image",),
            ("image",), None)


def run_config(name: str, *, records: int, epochs: int, val_records: int, batch_size: int, lr: float,
               num_workers: int, seed: int, work_dir: Path | None = None) -> list[dict]:
    model, loss_fn, renderer, inputs, val_inputs, monitor = _model_and_pages(name, seed)
    if name in CONFIGS and CONFIGS[name].lr is not None:
        lr = CONFIGS[name].lr
    train = SyntheticStreamDataset(records, stream_seed=TRAIN_SEED, image_renderer=renderer, decimate=4,
                                   gain_augment=(0.5, 2.0), seed=seed,
                                   measurement_targets=needs_measurements(loss_fn))
    # validation pages are drawn at epoch 0, where a curriculum has not yet begun: validate on its full look
    val_renderer = copy.copy(renderer)
    val_renderer.curriculum = None
    val = SyntheticStreamDataset(val_records, stream_seed=VAL_SEED, image_renderer=val_renderer, decimate=4,
                                 seed=seed, distinct_epochs=False)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        # a kept work dir lets a long configuration be read while it runs and resume where it stopped
        out = Path(work_dir) / name if work_dir else scratch
        result = fit(model, loss_fn, train, val, out_dir=out, epochs=epochs, batch_size=batch_size,
                     lr=lr, lr_min=lr, inputs=inputs, val_inputs=val_inputs, monitor_inputs=monitor,
                     num_workers=num_workers, seed=seed, tensorboard=False)
    wall = time.perf_counter() - start
    points = points_from_history(result.history)
    print(f"{name}: {wall:.0f} s, final macro AUROC {points[-1]['val_auroc']:.3f}", flush=True)
    return points


def points_from_history(history) -> list[dict]:
    """One point per epoch of a :func:`fit` history: pages seen, cumulative seconds, per-class AUROC."""
    points = []
    train_seconds = history["train_seconds"].cumsum()
    wall_seconds = history["seconds"].cumsum()
    for i, row in history.iterrows():
        point = {"epoch": int(row["epoch"]), "samples_seen": int(row["samples_seen"]),
                 "train_seconds": float(train_seconds[i]), "wall_seconds": float(wall_seconds[i]),
                 "val_auroc": float(row["val_auroc"])}
        point.update({f"val_auroc_{label}": float(row[f"val_auroc_{label}"]) for label in LABELS})
        if "val_auroc_signal" in row:  # a multimodal model's teacher, validated on the signal alone
            point["val_auroc_signal"] = float(row["val_auroc_signal"])
        points.append(point)
    return points


def curve_parser(description: str, configs: list[str], default_configs: list[str], *, epochs: int, out: Path,
                 unit: str) -> argparse.ArgumentParser:
    """The command line both learning-curve benchmarks share; ``unit`` names what a record is there."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--configs", nargs="+", default=default_configs, choices=configs)
    parser.add_argument("--records", type=int, default=2048, help=f"{unit} between validations")
    parser.add_argument("--epochs", type=int, default=epochs, help="validations per configuration")
    parser.add_argument("--val-records", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    parser.add_argument("--num-workers", type=int, default=1, help=f"DataLoader workers drawing {unit}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--carry-on", action="store_true",
                        help="carry configurations measured with fewer than --epochs points on to --epochs")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="keep each configuration's checkpoints and history here (resumable) instead of a temp dir")
    return parser


def measure_configs(args: argparse.Namespace, command: str, setup: dict, run, describe) -> None:
    """Measure each of ``args.configs`` with ``run(name, **settings) -> points`` and write the JSON after each,
    ``describe(name)`` beside its points. A rerun keeps the configurations ``args.out`` already holds;
    with ``args.carry_on`` one that holds fewer than ``args.epochs`` points is carried on to ``args.epochs``
    (from its checkpoint in ``args.work_dir`` when there is one: a constant-rate run goes on where it stopped)."""
    torch.set_num_threads(args.threads)
    result = {"command": command,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                          "threads": args.threads, "num_workers": args.num_workers},
              "setup": {"records_per_validation": args.records, "val_records": args.val_records,
                        "batch_size": args.batch_size, "lr": args.lr, "optimizer": "Adam, constant lr", **setup},
              "configs": {}}
    if args.out.exists():
        result["configs"] = json.loads(args.out.read_text()).get("configs", {})
    for name in args.configs:
        measured = result["configs"].get(name)
        if measured is not None and not (args.carry_on and len(measured["points"]) < args.epochs):
            print(f"{name}: already measured, kept", flush=True)
            continue
        points = run(name, records=args.records, epochs=args.epochs, val_records=args.val_records,
                     batch_size=args.batch_size, lr=args.lr, num_workers=args.num_workers, seed=args.seed,
                     work_dir=args.work_dir)
        # configurations measured by other commands (more epochs, other settings) keep their own
        result["configs"][name] = {**describe(name), "command": command, "points": points}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


def main(argv: list[str] | None = None) -> None:
    parser = curve_parser(__doc__.split("\n\n")[0], [*CONFIGS, *DEPLOYED_CONFIGS], list(CONFIGS), epochs=10,
                          out=Path("reports/metrics/learning_curves.json"), unit="pages")
    args = parser.parse_args(argv)

    def describe(name: str) -> dict:
        if name in DEPLOYED_CONFIGS:
            height, width, run, any_style, measurement_weight = DEPLOYED_CONFIGS[name]
            look = "clean pages in randomised styles (every layout)" if any_style else "clean paper look"
            network = {"model": "vizecgnet", "run": run} if run else {"model": "resnet18", "base_width": 16}
            if measurement_weight:
                network["measurement_weight"] = measurement_weight
            return {"height": height, "width": width, **network,
                    "pages": f"{look} drawn at 2x, read back by prepare_page; image-only validation"}
        curve = CONFIGS[name]
        look = {"pages": "clean pages in randomised styles (every layout), drawn directly"} if curve.any_style else {}
        if curve.any_style and curve.share_50mm_s != DEFAULT_SHARE_50MM_S:
            look["share_50mm_s"] = curve.share_50mm_s
        if curve.curriculum:
            look["curriculum"] = {"paper look until epoch": curve.curriculum[0],
                                  "every style from epoch": curve.curriculum[1]}
        if curve.measurement_weight:
            look["measurement_weight"] = curve.measurement_weight
        if curve.lr is not None:
            look["lr"] = curve.lr
        return {"height": curve.height, "width": curve.width, "base_width": curve.base_width,
                "stem_stride": curve.stem_stride, **look}

    measure_configs(args, "python benchmarks/learning_curves.py " + " ".join(argv or sys.argv[1:]),
                    {"pages": "clean ecg_plot paper look", "model": "resnet18"}, run_config, describe)


if __name__ == "__main__":
    main()
