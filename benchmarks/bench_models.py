"""Model card and training-cost benchmark for every registered model.

Card (parameters per model and per inference path, batch-1 inference ms per ECG):

    python benchmarks/bench_models.py --preset paper --threads 1

Training cost of the CPU ``default`` options (forward + backward + Adam, batch 16,
ms per sample, signal T=1024, image 128 x 348):

    python benchmarks/bench_models.py --train-cost --preset default --threads 2

Both print the device they ran on; on a machine with CUDA pass ``--device cuda``. There the
training cost is also timed as ``fit`` trains on CUDA (bf16 autocast, channels_last image
batches: ``--amp bf16``), beside float32 in the same process:

    python benchmarks/bench_models.py --train-cost --preset paper --device cuda --amp bf16 \
        --image-size 384 1064 --signal-samples 4096
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vizecg.evaluation import describe_device  # noqa: E402
from vizecg.models import create_model, list_models, model_entry  # noqa: E402
from vizecg.models.model_card import (build_model_card, format_model_card, inference_paths,  # noqa: E402
                                      train_step_ms_per_sample)
from vizecg.models.resnet1d import ResNet1dFeatures  # noqa: E402


#: SPEC section 7: 1D ResNet18, base width 16, shared over 12 leads, T=1024, 2 threads, batch 16, per sample
REFERENCE_MS_PER_SAMPLE = 16.0


class LeadSharedResNet18Reference(torch.nn.Module):
    """The SPEC's timing reference: a 1D ResNet18 (width 16) applied to each lead, mean-pooled, one linear layer."""

    input_kind = "signal"

    def __init__(self) -> None:
        super().__init__()
        self.encoder = ResNet1dFeatures(1, 16)
        self.classifier = torch.nn.Linear(self.encoder.out_channels, 6)

    def forward(self, signal: torch.Tensor | None = None, image: torch.Tensor | None = None) -> dict:
        batch, leads, samples = signal.shape
        features = self.encoder(signal.reshape(batch * leads, 1, samples)).mean(dim=-1)
        return {"logits": self.classifier(features.reshape(batch, leads, -1).mean(dim=1))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=("paper", "default", "tiny"), default="paper",
                        help="registry option preset the models are built with")
    parser.add_argument("--models", nargs="*", default=None, help=f"subset of {list_models()}")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for CPU runs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--signal-samples", type=int, default=None,
                        help="signal length T (default 4096 for the card, 1024 for --train-cost)")
    parser.add_argument("--image-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                        help="image size (default 384 1040 for the card, 128 348 for --train-cost)")
    parser.add_argument("--repeats", type=int, default=10, help="timed repetitions (median is reported)")
    parser.add_argument("--train-cost", action="store_true",
                        help="measure training ms/sample (batch 16) instead of the inference card")
    parser.add_argument("--batch", type=int, default=16, help="batch size for --train-cost")
    parser.add_argument("--amp", choices=("off", "bf16", "fp16"), default="off",
                        help="--train-cost: also time each model under this autocast (channels_last images, "
                             "as fit on CUDA)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = args.models or list_models()
    device_line = f"{describe_device(device)}, torch {torch.__version__}"
    print(f"device: {device_line}")

    if not args.train_cost:
        samples = args.signal_samples or 4096
        size = tuple(args.image_size or (384, 1040))
        print(f"preset: {args.preset}; signal (1, 12, {samples}); image (1, 3, {size[0]}, {size[1]})\n")
        rows = build_model_card(names, preset=args.preset, signal_samples=samples, image_size=size,
                                repeats=args.repeats, device=device)
        print(format_model_card(rows, device_line))
        return

    samples = args.signal_samples or 1024
    size = tuple(args.image_size or (128, 348))
    print(f"training cost: preset {args.preset}, batch {args.batch}, forward+backward+Adam, "
          f"signal T={samples}, image {size[0]}x{size[1]}; ms per sample (median of {args.repeats} steps)\n")
    print("Each model is timed right after a reference network, the SPEC's 1D ResNet18 (width 16) shared over the\n"
          f"12 leads, which costs {REFERENCE_MS_PER_SAMPLE:g} ms/sample on a quiet 2-core CPU at T=1024; 'x ref' is the\n"
          "ratio, which survives a busy machine better than the raw time.\n")
    amp = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.amp]
    amp_columns = f" {args.amp} ms / sample | {args.amp} speed-up |" if amp is not None else ""
    print(f"| model | trains on | params (M) | ms / sample | reference ms / sample | x ref |{amp_columns}")
    print("|---|---|---:|---:|---:|---:|" + ("---:|---:|" if amp is not None else ""))
    reference = LeadSharedResNet18Reference().to(device)
    for name in names:
        reference_ms = train_step_ms_per_sample(reference, "signal", args.batch, samples, size, steps=args.repeats)
        entry = model_entry(name)
        options = {"paper": entry.paper_options, "default": entry.default_options, "tiny": entry.tiny_options}[args.preset]
        torch.manual_seed(0)
        model = create_model(name, **options).to(device)
        path = "multimodal" if model.input_kind == "multimodal" else inference_paths(model)[0]
        ms = train_step_ms_per_sample(model, path, args.batch, samples, size, steps=args.repeats)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        row = f"| {name} | {path} | {params:.2f} | {ms:.1f} | {reference_ms:.1f} | {ms / reference_ms:.2f} |"
        if amp is not None:
            amp_ms = train_step_ms_per_sample(model, path, args.batch, samples, size, steps=args.repeats,
                                              autocast_dtype=amp, channels_last=path != "signal")
            row += f" {amp_ms:.2f} | {ms / amp_ms:.2f}x |"
        print(row, flush=True)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
