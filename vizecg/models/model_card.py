"""The model card: parameters per model and per inference path, batch-1 latency, training cost.

Parameter counts per *inference path* are measured, not declared: the model
runs a forward pass with only that path's input, the logits are
back-propagated, and every parameter that receives a gradient is counted. So
image-only VizECGNet counts the image encoder, its CMAM/SMAM and head, and
nothing of the signal stream, whatever the architecture code says.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from vizecg.contract import N_LEADS
from vizecg.models._registry import create_model, list_models, model_entry
from vizecg.models.losses import create_loss

#: why a model's parameter count differs from the paper's Table 1 by more than 25 %
PAPER_PARAMETER_NOTES: dict[str, str] = {
    "xresnet1d101": (
        "Depth-101 bottleneck XResNet1D (3, 4, 23, 3) at the published widths has 35.1M parameters with the PTB-XL "
        "benchmark's kernel 5 (30.4M with kernel 3, 25.6M even with kernel 1), so 13.94M is not a full-width "
        "XResNet1D-101; the paper does not say how it was narrowed."),
    "acnet": (
        "262M is not an ACNet-ResNet18 at standard widths (16.1M here, training form). The same 1D layout at "
        "base_width=256 has 256.8M (2% off the paper), so the paper's network was probably ~4x wider; the paper "
        "gives no widths, and ACNet's branches fold into plain convolutions at inference (fuse())."),
    "mobilenetv3": (
        "torchvision MobileNetV3-Large has 4.21M parameters with a 6-class head (5.48M with the ImageNet head), "
        "Small 1.52M; no standard MobileNetV3 has 18.2M, so the paper's figure cannot be traced."),
    "vizecgnet": (
        "The paper's 11.17M equals a torchvision ResNet18 trunk alone (11.18M), i.e. it appears to count only the "
        "image backbone; the full multimodal model (both encoders, CMAM/SMAM, two heads) is larger, and the "
        "image-only inference path adds the projection, image CMAM/SMAM and head to the trunk."),
}


@dataclass(frozen=True)
class CardRow:
    """One inference path of one model on the card."""

    model: str
    path: str
    params_m_total: float
    params_m_path: float
    paper_params_m: float | None
    ms_per_ecg: float
    paper_ms: float | None

    @property
    def relative_difference(self) -> float | None:
        """(ours - paper) / paper for the whole model's parameters (Table 1 gives one figure per model)."""
        if self.paper_params_m is None:
            return None
        return (self.params_m_total - self.paper_params_m) / self.paper_params_m


def inference_paths(model: nn.Module) -> tuple[str, ...]:
    """The single-modality inputs a model can infer from (Table 1 scores multimodal models on both)."""
    return ("signal", "image") if model.input_kind == "multimodal" else (model.input_kind,)


def example_inputs(path: str, batch: int, signal_samples: int, image_size: tuple[int, int],
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Random ``signal`` (B, 12, T) in mV-like range or ``image`` (B, 3, H, W) in [0, 1] for ``path``."""
    inputs: dict[str, torch.Tensor] = {}
    if path in ("signal", "multimodal"):
        inputs["signal"] = torch.randn(batch, N_LEADS, signal_samples, generator=generator) * 0.5
    if path in ("image", "multimodal"):
        inputs["image"] = torch.rand(batch, 3, *image_size, generator=generator)
    return inputs


def parameters_used(model: nn.Module, inputs: dict[str, torch.Tensor]) -> int:
    """Scalar parameters that the logits depend on for these inputs (measured by one backward pass)."""
    model.zero_grad(set_to_none=True)
    was_training = model.training
    model.eval()
    model(**inputs)["logits"].sum().backward()
    count = sum(p.numel() for p in model.parameters() if p.grad is not None)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return count


@torch.no_grad()
def inference_ms(model: nn.Module, inputs: dict[str, torch.Tensor], repeats: int = 10, warmup: int = 2) -> float:
    """Median wall-clock milliseconds of one eval-mode forward pass with ``inputs`` (batch 1 for the card)."""
    model.eval()
    for _ in range(warmup):
        model(**inputs)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(**inputs)
        if any(t.is_cuda for t in inputs.values()):
            torch.cuda.synchronize()
        timings.append((time.perf_counter() - start) * 1e3)
    return statistics.median(timings)


def train_step_ms_per_sample(model: nn.Module, path: str, batch: int, signal_samples: int,
                             image_size: tuple[int, int], steps: int = 3, warmup: int = 1,
                             autocast_dtype: torch.dtype | None = None, channels_last: bool = False) -> float:
    """Median milliseconds per sample of forward + backward + Adam step on random batches of ``batch``.

    The batch is made on the device the model's parameters are on. ``autocast_dtype`` runs the
    forward under autocast as :func:`vizecg.training.engine.fit` does (loss in float32 outside it);
    ``channels_last`` is the engine's memory layout for image batches on CUDA. On CUDA each step
    is timed to its completion (a synchronize), not to the return of the kernel launches."""
    from vizecg.evaluation.inference import float_outputs, model_inputs

    device = next(model.parameters()).device
    model.train()
    loss_fn = create_loss(model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    batch_inputs = example_inputs(path, batch, signal_samples, image_size, generator)
    inputs = model_inputs(batch_inputs, tuple(batch_inputs), device, channels_last=channels_last)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    targets = (torch.rand(batch, 6, generator=generator) < 0.3).float().to(device)
    timings = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            outputs = model(**inputs)
        loss, _ = loss_fn(float_outputs(outputs), targets)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= warmup:
            timings.append((time.perf_counter() - start) * 1e3 / batch)
    return statistics.median(timings)


def build_model_card(names: list[str] | None = None, *, preset: str = "paper", signal_samples: int = 4096,
                     image_size: tuple[int, int] = (384, 1040), repeats: int = 10,
                     device: torch.device | str = "cpu", progress: bool = True) -> list[CardRow]:
    """Card rows for ``names`` (default: every model) built with the registry's ``preset`` options.

    ``preset`` is ``"paper"``, ``"default"`` or ``"tiny"``; ``signal_samples``
    and ``image_size`` are the inputs timed at batch 1 on ``device``.
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    rows = []
    for name in tqdm(names or list_models(), desc="model card", disable=not progress):
        entry = model_entry(name)
        options = {"paper": entry.paper_options, "default": entry.default_options, "tiny": entry.tiny_options}[preset]
        torch.manual_seed(0)
        model = create_model(name, **options).to(device)
        total = sum(p.numel() for p in model.parameters())
        if hasattr(model, "fuse"):  # ACNet: time and count the deploy form its paper infers with
            model.eval()
            model.fuse()
        for path in inference_paths(model):
            inputs = {k: v.to(device) for k, v in example_inputs(path, 1, signal_samples, image_size).items()}
            rows.append(CardRow(model=name, path=path, params_m_total=total / 1e6,
                                params_m_path=parameters_used(model, inputs) / 1e6,
                                paper_params_m=entry.paper_params_m,
                                ms_per_ecg=inference_ms(model, inputs, repeats=repeats),
                                paper_ms=entry.paper_ms.get(path)))
    return rows


def format_model_card(rows: list[CardRow], device_description: str) -> str:
    """Markdown table of the rows plus the notes for every parameter difference above 25 %."""
    lines = [f"Inference time: batch 1, median of repeated eval-mode forward passes on {device_description}.",
             "Paper times are the paper's own (its GPU); compare orders of magnitude, not values.",
             "'params used': parameters the logits depend on for that inference input (measured by backward);",
             "ACNet is timed and counted in its fused deploy form. 'diff': params total vs the paper.", "",
             "| model | inference | params total (M) | params used (M) | paper (M) | diff | ms / ECG | paper ms |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    flagged = []
    for row in rows:
        diff = row.relative_difference
        diff_text = "" if diff is None else f"{diff:+.0%}"
        if diff is not None and abs(diff) > 0.25 and row.model not in flagged:
            flagged.append(row.model)
        paper_params = "" if row.paper_params_m is None else f"{row.paper_params_m:.2f}"
        paper_ms = "" if row.paper_ms is None else f"{row.paper_ms:.1f}"
        lines.append(f"| {row.model} | {row.path} | {row.params_m_total:.2f} | {row.params_m_path:.2f} | "
                     f"{paper_params} | {diff_text} | {row.ms_per_ecg:.1f} | {paper_ms} |")
    if flagged:
        lines += ["", "Differences above 25 % from the paper's Table 1:"]
        lines += [f"- {name}: {PAPER_PARAMETER_NOTES.get(name, 'no explanation recorded')}" for name in flagged]
    return "\n".join(lines)
