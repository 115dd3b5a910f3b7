"""Batched inference: probabilities of a model over a dataset.

:func:`predict_probs` is what evaluation and prediction call. :func:`run_inference`
is the loop behind it, shared with the training engine's validation pass (which
also needs the loss and the record indices to merge shards across processes).
"""
from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

INPUT_KINDS = ("signal", "image")


def resolve_autocast_dtype(amp: str | bool, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``, or None for full float32.

    ``amp`` is "auto" (bf16 on a CUDA device that supports it, else fp16 on CUDA,
    nothing on CPU: CPU autocast is slower than float32 for these convolutions),
    "bf16", "fp16", or False/"off"/"none".
    """
    device = torch.device(device)
    if amp in (False, None, "off", "none", "fp32"):
        return None
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError("amp='fp16' needs a CUDA device (fp16 autocast on CPU is not supported here)")
        return torch.float16
    raise ValueError(f"amp must be 'auto', 'bf16', 'fp16' or 'off', got {amp!r}")


def validate_input_names(inputs: Sequence[str]) -> tuple[str, ...]:
    """Validate the model inputs to feed (a non-empty subset of ``("signal", "image")``)."""
    if isinstance(inputs, str):
        inputs = (inputs,)
    inputs = tuple(inputs)
    if not inputs or any(kind not in INPUT_KINDS for kind in inputs) or len(set(inputs)) != len(inputs):
        raise ValueError(f"inputs must be a non-empty subset of {INPUT_KINDS}, got {inputs}")
    return inputs


def model_inputs(batch: dict, inputs: Sequence[str], device: torch.device, *,
                 channels_last: bool = False) -> dict[str, torch.Tensor]:
    """Keyword arguments for ``model(**...)``: the requested inputs of a batch, on ``device``."""
    kwargs = {}
    for kind in inputs:
        if kind not in batch:
            hint = " (give the dataset an image renderer)" if kind == "image" else ""
            raise KeyError(f"the dataset items have no {kind!r} entry but the model is asked to use it{hint}; "
                           f"item keys: {sorted(batch)}")
        tensor = batch[kind].to(device, non_blocking=True)
        if channels_last and tensor.ndim == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        kwargs[kind] = tensor
    return kwargs


def float_outputs(outputs: dict) -> dict:
    """Cast the floating tensors of a model output dict to float32 (losses run outside autocast)."""
    return {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in outputs.items()}


@dataclass
class InferenceOutputs:
    """What one pass over a loader produced, in loader order."""

    indices: np.ndarray            # (N,) dataset indices ("index" item entry, else positions)
    probs: np.ndarray              # (N, C) sigmoid of "logits", float32
    targets: np.ndarray | None     # (N, C) labels when the items carry "label"
    loss_sum: float = 0.0          # sum over records of the loss (when a loss_fn was given)
    loss_parts_sum: dict = field(default_factory=dict)
    n: int = 0
    also_probs: dict = field(default_factory=dict)  # name -> (N, C) probabilities of each further input path


@torch.inference_mode()
def run_inference(model: nn.Module, batches: Iterable[dict], *, inputs: Sequence[str],
                  device: torch.device | str, autocast_dtype: torch.dtype | None = None,
                  channels_last: bool = False, loss_fn: nn.Module | None = None,
                  progress: bool = False, desc: str = "predict", total: int | None = None,
                  also_inputs: dict[str, Sequence[str]] | None = None) -> InferenceOutputs:
    """Run ``model`` in eval mode over ``batches``; collect probabilities (and the loss if asked).

    ``also_inputs`` names further input paths scored on the same batches (``also_probs``), e.g. a
    multimodal model's signal stream beside its image-only output: one pass, so pages drawn on the
    fly are drawn once. The model's train/eval mode is restored afterwards.
    """
    inputs = validate_input_names(inputs)
    also_inputs = {name: validate_input_names(path) for name, path in (also_inputs or {}).items()}
    also_probs: dict[str, list[np.ndarray]] = {name: [] for name in also_inputs}
    device = torch.device(device)
    was_training = model.training
    model.eval()
    indices, probs, targets = [], [], []
    loss_sum, parts_sum, n, position = 0.0, {}, 0, 0
    gc.collect()  # see vizecg.training.engine: no dead loader iterator may reach forked workers
    try:
        def forward(batch: dict, path: Sequence[str]) -> dict:
            kwargs = model_inputs(batch, path, device, channels_last=channels_last)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                return float_outputs(model(**kwargs))

        for batch in tqdm(batches, desc=desc, total=total, disable=not progress, leave=False):
            outputs = forward(batch, inputs)
            logits = outputs["logits"]
            size = logits.shape[0]
            probs.append(torch.sigmoid(logits).cpu().numpy())
            for name, path in also_inputs.items():
                also_probs[name].append(torch.sigmoid(forward(batch, path)["logits"]).cpu().numpy())
            if "index" in batch:
                indices.append(np.asarray(batch["index"]).reshape(-1))
            else:
                indices.append(np.arange(position, position + size))
            position += size
            if "label" in batch:
                labels = batch["label"].to(device, non_blocking=True).float()
                targets.append(labels.cpu().numpy())
                if loss_fn is not None:
                    loss, parts = loss_fn(outputs, labels)
                    loss_sum += float(loss) * size
                    for key, value in parts.items():
                        parts_sum[key] = parts_sum.get(key, 0.0) + float(value) * size
            n += size
    finally:
        model.train(was_training)
    n_classes = probs[0].shape[1] if probs else 0

    def stacked(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, n_classes), np.float32)

    return InferenceOutputs(
        indices=np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64),
        probs=stacked(probs), targets=np.concatenate(targets) if targets else None,
        loss_sum=loss_sum, loss_parts_sum=parts_sum, n=n,
        also_probs={name: stacked(parts) for name, parts in also_probs.items()})


def predict_probs(model: nn.Module, dataset: Dataset, *, inputs: Sequence[str], batch_size: int,
                  device: torch.device | str, num_workers: int = 0, progress: bool = True,
                  amp: str | bool = "auto", channels_last: bool | str = "auto") -> np.ndarray:
    """Probabilities ``(N, C)`` (sigmoid of ``outputs["logits"]``) for every item of ``dataset``, in order.

    Args:
        inputs: which item entries feed the model, e.g. ``("image",)`` for image-only
            inference of a multimodal model.
        amp: autocast on CUDA (see :func:`resolve_autocast_dtype`); probabilities are
            always returned as float32.
        channels_last: "auto" = on CUDA when an image is fed; the model is then converted
            to channels-last too (in place, like the move to ``device``).
    """
    device = torch.device(device)
    inputs = validate_input_names(inputs)
    if channels_last == "auto":
        channels_last = device.type == "cuda" and "image" in inputs
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    result = run_inference(model, loader, inputs=inputs, device=device,
                           autocast_dtype=resolve_autocast_dtype(amp, device),
                           channels_last=bool(channels_last), progress=progress, total=len(loader))
    if len(result.probs) != len(dataset):
        raise RuntimeError(f"predicted {len(result.probs)} records for a dataset of {len(dataset)}")
    return result.probs
