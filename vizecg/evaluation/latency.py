"""Model size and inference time per ECG, with the device they were measured on.

Table 1 reports parameters (M) and inference time per ECG at batch 1; a time means
nothing without its device, so :func:`describe_device` names the CPU model and the
thread count, or the GPU.
"""
from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from vizecg.evaluation.inference import resolve_autocast_dtype


def parameters_millions(model: nn.Module, *, trainable_only: bool = False) -> float:
    """Number of parameters in millions (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only) / 1e6


def _cpu_model_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def describe_device(device: torch.device | str) -> str:
    """Human-readable device for result tables, e.g. ``"NVIDIA H100 80GB HBM3"`` or
    ``"CPU: Intel(R) Xeon(R) ... (2 threads)"``."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return f"CPU: {_cpu_model_name()} ({torch.get_num_threads()} threads)"
    return str(device)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def inference_ms_per_ecg(model: nn.Module, example_inputs: dict[str, torch.Tensor], *,
                         device: torch.device | str, batch_size: int = 1, warmup: int = 5, iters: int = 20,
                         amp: str | bool = "off", channels_last: bool = False) -> float:
    """Median wall time of one forward pass divided by ``batch_size``, in milliseconds.

    Args:
        model: put in eval mode for the measurement (its mode is restored afterwards).
        example_inputs: model keyword inputs for one ECG, e.g. ``{"image": (1, 3, H, W)}``
            (a leading batch dimension of 1 is optional); they are repeated to
            ``batch_size``. Only the given modalities run, so image-only inference of a
            multimodal model is measured by passing only ``"image"``.
        warmup: untimed passes first (allocator, cuDNN autotuning, lazy init).
        iters: timed passes; the median is robust to a stray slow pass.
        amp: autocast setting (see :func:`vizecg.evaluation.inference.resolve_autocast_dtype`);
            "off" by default so the stated figure is plain float32 unless asked.

    The time covers the forward pass on tensors already on the device (no data
    loading, no host-device copy); on CUDA every pass is synchronised.
    """
    if batch_size < 1 or iters < 1 or warmup < 0:
        raise ValueError("batch_size and iters must be >= 1 and warmup >= 0")
    device = torch.device(device)
    batch = {}
    for name, tensor in example_inputs.items():
        one = tensor if tensor.ndim in (3, 4) and tensor.shape[0] == 1 else tensor.unsqueeze(0)
        if one.ndim not in (3, 4) or one.shape[0] != 1:
            raise ValueError(f"example input {name!r} must be one ECG, got shape {tuple(tensor.shape)}")
        many = one.expand(batch_size, *one.shape[1:]).contiguous().to(device)
        if channels_last and many.ndim == 4:
            many = many.contiguous(memory_format=torch.channels_last)
        batch[name] = many
    dtype = resolve_autocast_dtype(amp, device)
    was_training = model.training
    model.eval().to(device)
    timings = []
    try:
        for step in range(warmup + iters):
            _synchronize(device)
            start = time.perf_counter()
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                model(**batch)
            _synchronize(device)
            if step >= warmup:
                timings.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return 1000.0 * statistics.median(timings) / batch_size
