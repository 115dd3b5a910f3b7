"""The training engine: one function, :func:`fit`, for every model of the study.

What it does, and the choices behind it:

* **Optimiser and schedule.** Adam (fused kernel on CUDA) with cosine annealing from
  ``lr`` to ``lr_min``, stepped per optimizer step over the whole run
  (``T_max = epochs * steps_per_epoch``). Per-step annealing gives the same curve as
  the paper's per-epoch form for long runs and a smooth one for the few-epoch CPU
  profiles, where a per-epoch staircase would be coarse.
* **Batch.** ``batch_size`` is the *global* batch of one optimizer step. It is split
  over the DDP processes and ``grad_accum_steps`` micro-batches, so scaling from one
  device to eight (or accumulating on a small GPU) keeps the optimisation the same.
  Training drops the incomplete last batch of an epoch (a batch of one breaks
  BatchNorm); validation sees every record exactly once.
* **Precision and layout (CUDA only).** ``amp="auto"`` uses bf16 autocast where the
  GPU supports it, else fp16 with a GradScaler; losses are computed in float32 outside
  autocast. ``channels_last="auto"`` switches the model and image batches to
  channels-last when an image is fed. ``compile_model=True`` wraps the model in
  ``torch.compile`` (measure before relying on it). On CPU everything stays float32.
* **Checkpoints.** After every epoch rank 0 writes ``last.pt`` (weights, optimizer,
  scheduler, scaler, history, best-so-far, fit configuration and the caller's
  ``checkpoint_meta``) and, when ``select_metric`` improves, a compact ``best.pt``
  (weights and metadata only). Writes are atomic. Rerunning with the same ``out_dir``
  resumes from ``last.pt``; a finished run returns at once; a rerun whose
  configuration differs from the checkpoint's raises instead of silently mixing runs.
* **Determinism.** At the start of every epoch Python, NumPy and torch (CPU and CUDA)
  are reseeded from ``(seed, epoch, rank)``, the DistributedSampler permutation comes
  from ``(seed, epoch)`` and the DataLoader's generator (which seeds each worker's
  torch/random/NumPy) from the epoch seed; ``dataset.set_epoch(epoch)`` is called when
  the dataset has it. The random state at an epoch boundary is therefore a function of
  ``(seed, epoch, rank)`` alone, so no RNG state needs saving and a resumed run
  reproduces an uninterrupted one bit for bit on CPU. Workers are not persistent, so
  each epoch's workers see the dataset after ``set_epoch``.
* **Logs.** ``history.csv`` (one row per epoch: lr, train loss and its parts, val loss,
  val macro AUROC/AUPRC/F1, seconds, samples/s and ``data_wait_frac``: the fraction of
  the training-loop wall time spent blocked waiting for the DataLoader, measured, max
  over ranks), TensorBoard scalars under ``out_dir/tensorboard`` and tqdm progress.
* **DDP.** When ``torch.distributed`` is initialised (see
  :mod:`vizecg.training.distributed`) the model is wrapped in
  DistributedDataParallel, the training data sharded by a DistributedSampler, the
  validation set split by stride and the outputs gathered, and only rank 0 writes files.
  Single-process runs use the same sampler with one replica, so a 2-process run and a
  1-process run with the same global batch see the same records in every step.
"""
from __future__ import annotations

import contextlib
import gc
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm.auto import tqdm

from vizecg.contract import LABELS
from vizecg.evaluation.inference import (validate_input_names, float_outputs, model_inputs, resolve_autocast_dtype,
                                         run_inference)
from vizecg.evaluation.metrics import macro_auprc, macro_auroc, macro_f1, per_class_auroc
from vizecg.training import distributed
from vizecg.training.checkpoint import CheckpointError, read_checkpoint, save_checkpoint

LAST_NAME = "last.pt"
BEST_NAME = "best.pt"
HISTORY_NAME = "history.csv"
SELECTABLE_METRICS = ("val_auroc", "val_auprc", "val_f1", "val_loss")
RESERVED_KEYS = ("state_dict", "optimizer", "scheduler", "scaler", "epoch", "metrics", "history", "best",
                 "fit_config")


@dataclass
class FitResult:
    """Outcome of :func:`fit`."""

    out_dir: Path
    best_path: Path
    last_path: Path
    history: pd.DataFrame      # one row per completed epoch (the content of history.csv)
    best_epoch: int            # 1-based epoch whose weights are in best.pt
    best_value: float          # its select_metric value
    select_metric: str
    resumed_from_epoch: int    # epochs already done when this call started (0 for a fresh run)
    skipped: bool              # True when the run was already finished and nothing was trained


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of one epoch on one rank (independent streams via NumPy's SeedSequence)."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, dtype=np.uint32)[0])


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _resolve_channels_last(channels_last: bool | str, device: torch.device, inputs: Sequence[str]) -> bool:
    if channels_last == "auto":
        return device.type == "cuda" and "image" in inputs
    return bool(channels_last)


def _make_meta(checkpoint_meta: dict | None) -> dict:
    meta = {"model_name": None, "model_options": {}, "labels": tuple(LABELS), "input": {}, "params": {}}
    for key, value in (checkpoint_meta or {}).items():
        if key in RESERVED_KEYS:
            raise ValueError(f"checkpoint_meta key {key!r} is written by fit itself; choose another name")
        meta[key] = value
    meta["labels"] = tuple(meta["labels"])
    return meta


def _is_better(value: float, best: float | None, lower_is_better: bool) -> bool:
    if best is None:
        return True
    if math.isnan(value):
        return False
    if math.isnan(best):
        return True
    return value < best if lower_is_better else value > best


def _write_history(history: list[dict], path: Path) -> pd.DataFrame:
    frame = pd.DataFrame(history)
    frame.to_csv(path, index=False)
    return frame


def _open_tensorboard(log_dir: Path, purge_step: int | None):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional; history.csv has the same numbers
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


def fit(model: nn.Module, loss_fn: nn.Module, train_set: Dataset, val_set: Dataset, *,
        out_dir: str | Path, epochs: int, batch_size: int, lr: float, lr_min: float = 0.0,
        weight_decay: float = 0.0, inputs: Sequence[str] = ("signal", "image"),
        val_inputs: Sequence[str] | None = None, monitor_inputs: dict[str, Sequence[str]] | None = None,
        num_workers: int = 0, device: str | torch.device = "cpu",
        amp: str | bool = "auto", channels_last: bool | str = "auto", compile_model: bool = False,
        grad_accum_steps: int = 1, seed: int = 0, select_metric: str = "val_auroc",
        checkpoint_meta: dict | None = None, find_unused_parameters: bool | str = "auto",
        progress: bool = True, tensorboard: bool = True) -> FitResult:
    """Train ``model`` with ``loss_fn``, validating every epoch; see the module docstring.

    Args:
        model: follows the model contract (``forward(signal=None, image=None) -> {"logits", ...}``).
            It is moved to ``device`` and trained in place; at the end it holds the
            *last* epoch's weights (``best.pt`` holds the selected ones).
        loss_fn: ``loss_fn(outputs, targets) -> (loss, {part: float})``.
        train_set, val_set: datasets yielding item dicts with the ``inputs`` entries and
            ``"label"``. ``train_set.set_epoch(epoch)`` is called each epoch if it exists.
        out_dir: where ``last.pt``, ``best.pt``, ``history.csv`` and ``tensorboard/`` go;
            an existing ``last.pt`` there is resumed (or, if finished, only loaded into ``model``).
        epochs: total epochs of the run (not "more epochs").
        batch_size: global batch per optimizer step (divisible by world size x grad_accum_steps).
        lr, lr_min: cosine annealing from ``lr`` to ``lr_min`` over all steps.
        weight_decay: Adam's L2 weight decay.
        inputs: model inputs during training; ``val_inputs`` (default: ``inputs``) during
            validation, e.g. ``("image",)`` to select a multimodal model on image-only inference.
        monitor_inputs: further inference paths validated every epoch for the log only, by name,
            e.g. ``{"signal": ("signal",)}`` adds ``val_auroc_signal`` (a multimodal model's teacher).
        num_workers: DataLoader worker processes per rank.
        device: "cpu", "cuda" (mapped to ``cuda:LOCAL_RANK`` under DDP) or a torch.device.
        amp: "auto" | "bf16" | "fp16" | "off" (autocast on CUDA only when "auto").
        channels_last: "auto" (CUDA with images) or a bool.
        compile_model: wrap the training model in ``torch.compile``.
        grad_accum_steps: micro-batches accumulated per optimizer step.
        seed: the run's seed (see the module docstring for how it is used).
        select_metric: history column choosing ``best.pt``, one of
            ``val_auroc``, ``val_auprc``, ``val_f1`` (higher is better) or ``val_loss``.
        checkpoint_meta: ``model_name``, ``model_options``, ``labels``, ``input``, ``params``
            (and any extra plain keys) stored in every checkpoint.
        find_unused_parameters: for DDP; "auto" = True for models whose ``input_kind`` is
            "multimodal" (a stream may sit out a step, e.g. under modality dropout).
        progress: tqdm bars and one summary line per epoch (rank 0).
        tensorboard: write TensorBoard scalars (rank 0, when tensorboard is installed).
    """
    inputs = validate_input_names(inputs)
    val_inputs = validate_input_names(val_inputs) if val_inputs is not None else inputs
    context = distributed.current_context(device)
    device = context.device
    micro_batch = _check_arguments(select_metric, epochs, batch_size, grad_accum_steps, lr, lr_min,
                                   context.world_size, val_set)
    out_dir = Path(out_dir)
    last_path, best_path = out_dir / LAST_NAME, out_dir / BEST_NAME
    fit_config = {"epochs": int(epochs), "batch_size": int(batch_size), "lr": float(lr),
                  "lr_min": float(lr_min), "weight_decay": float(weight_decay),
                  "grad_accum_steps": int(grad_accum_steps), "seed": int(seed),
                  "select_metric": select_metric, "inputs": list(inputs), "val_inputs": list(val_inputs),
                  "train_size": len(train_set), "val_size": len(val_set)}
    meta = _make_meta(checkpoint_meta)

    resume = _read_resume(last_path, best_path, fit_config, epochs)
    if resume is not None and int(resume["epoch"]) >= epochs:
        model.load_state_dict(resume["state_dict"])  # the caller's model ends with the last weights either way
        return FitResult(out_dir, best_path, last_path, pd.DataFrame(resume["history"]),
                         int(resume["best"]["epoch"]), float(resume["best"]["value"]), select_metric,
                         int(resume["epoch"]), skipped=True)

    use_channels_last = _resolve_channels_last(channels_last, device, inputs + val_inputs)
    autocast_dtype = resolve_autocast_dtype(amp, device)
    _place(model, loss_fn, device, use_channels_last)
    loaders = _make_loaders(train_set, val_set, context, micro_batch=micro_batch, batch_size=batch_size,
                            grad_accum_steps=grad_accum_steps, num_workers=num_workers, seed=seed, device=device)
    optimizer, scheduler, scaler = _make_optimisation(model, lr=lr, lr_min=lr_min, weight_decay=weight_decay,
                                                      total_steps=epochs * loaders.steps_per_epoch,
                                                      device=device, autocast_dtype=autocast_dtype)
    history, best, start_epoch = _restore(resume, model, optimizer, scheduler, scaler, select_metric)
    del resume
    train_model, ddp_model, eval_model = _wrap_for_training(model, context, device, find_unused_parameters,
                                                            compile_model)
    show = progress and context.is_main
    lower_is_better = select_metric.endswith("loss")

    with _epoch_log(out_dir, context, tensorboard, start_epoch) as writer:
        for epoch in range(start_epoch, epochs):
            row = _run_epoch(
                epoch=epoch, epochs=epochs, seed=seed, context=context, model=train_model, ddp_model=ddp_model,
                eval_model=eval_model, loss_fn=loss_fn, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                train_set=train_set, train_loader=loaders.train, train_sampler=loaders.sampler,
                loader_generator=loaders.generator, steps_per_epoch=loaders.steps_per_epoch,
                grad_accum_steps=grad_accum_steps, val_loader=loaders.val, inputs=inputs, val_inputs=val_inputs,
                device=device, autocast_dtype=autocast_dtype, channels_last=use_channels_last, show=show,
                monitor_inputs={k: validate_input_names(v) for k, v in (monitor_inputs or {}).items()})
            history.append(row)
            improved = _is_better(row[select_metric], best["value"], lower_is_better)
            if improved:
                best = {"epoch": row["epoch"], "value": row[select_metric], "metric": select_metric}
            if context.is_main:
                _save_epoch(out_dir, meta, model, row, improved, history, best, fit_config, context,
                            optimizer, scheduler, scaler)
                _log_epoch(writer, row, epochs, improved, show)
            distributed.barrier()

    return FitResult(out_dir, best_path, last_path, pd.DataFrame(history), int(best["epoch"]),
                     float(best["value"]), select_metric, start_epoch, skipped=False)


# The steps of fit, in the order it takes them ---------------------------------------------------

def _check_arguments(select_metric, epochs, batch_size, grad_accum_steps, lr, lr_min, world_size, val_set) -> int:
    """Refuse a configuration that cannot train; return the per-process micro-batch."""
    if select_metric not in SELECTABLE_METRICS:
        raise ValueError(f"select_metric must be one of {SELECTABLE_METRICS}, got {select_metric!r}")
    if epochs < 1 or batch_size < 1 or grad_accum_steps < 1:
        raise ValueError(f"epochs, batch_size and grad_accum_steps must be >= 1, "
                         f"got {epochs}, {batch_size}, {grad_accum_steps}")
    if not 0 <= lr_min <= lr:
        raise ValueError(f"need 0 <= lr_min <= lr, got lr={lr}, lr_min={lr_min}")
    if batch_size % (world_size * grad_accum_steps):
        raise ValueError(f"batch_size {batch_size} is not divisible by world size {world_size} x "
                         f"grad_accum_steps {grad_accum_steps}")
    if len(val_set) == 0:
        raise ValueError("val_set is empty: validation selects the best epoch")
    return batch_size // (world_size * grad_accum_steps)


def _read_resume(last_path: Path, best_path: Path, fit_config: dict, epochs: int) -> dict | None:
    """``last.pt`` of an earlier call with the same configuration, or None for a fresh run.

    A checkpoint written with another configuration is refused rather than resumed: continuing
    it would mix two runs in one set of weights. One change is not another configuration: more
    epochs of a constant-rate run (``lr == lr_min``)."""
    if not last_path.exists():
        return None
    resume = read_checkpoint(last_path)
    saved = resume.get("fit_config", {})
    changed = {k: (saved.get(k), v) for k, v in fit_config.items() if saved.get(k) != v}
    if set(changed) == {"epochs"} and fit_config["lr"] == fit_config["lr_min"] and saved["epochs"] < epochs:
        # At a constant learning rate the schedule does not depend on the run's length, and every
        # epoch's data and order depend only on (seed, epoch): the shorter run is the longer one's
        # first epochs, so it may go on (a learning curve carried further).
        changed = {}
    if changed:
        details = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
        raise CheckpointError(f"{last_path} was written by a run with a different configuration ({details}); "
                              f"use a new out_dir or delete {last_path.parent} to start over")
    if int(resume["epoch"]) >= epochs and not best_path.exists():
        raise CheckpointError(f"{last_path} marks the run finished but {best_path} is missing")
    return resume


def _place(model: nn.Module, loss_fn, device: torch.device, channels_last: bool) -> None:
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if isinstance(loss_fn, nn.Module):  # a loss with buffers or a teacher of its own
        loss_fn.to(device)


@dataclass
class _Loaders:
    train: DataLoader
    sampler: DistributedSampler
    generator: torch.Generator  # reseeded every epoch: it seeds the workers
    steps_per_epoch: int
    val: DataLoader


def _make_loaders(train_set, val_set, context, *, micro_batch, batch_size, grad_accum_steps, num_workers, seed,
                  device) -> _Loaders:
    # One replica outside DDP too, so a 1-process and a 2-process run see the same records per step.
    sampler = DistributedSampler(train_set, num_replicas=context.world_size, rank=context.rank,
                                 shuffle=True, seed=seed, drop_last=False)
    generator = torch.Generator()
    pin = device.type == "cuda"
    train = DataLoader(train_set, batch_size=micro_batch, sampler=sampler, num_workers=num_workers,
                       pin_memory=pin, drop_last=True, generator=generator,
                       prefetch_factor=4 if num_workers > 0 else None)
    steps_per_epoch = len(train) // grad_accum_steps
    if steps_per_epoch == 0:
        raise ValueError(f"train_set has {len(train_set)} records, fewer than one global batch of {batch_size}")
    val_shard = Subset(val_set, range(context.rank, len(val_set), context.world_size))
    val = DataLoader(val_shard, batch_size=max(batch_size // context.world_size, 1), shuffle=False,
                     num_workers=num_workers, pin_memory=pin)
    return _Loaders(train, sampler, generator, steps_per_epoch, val)


def _make_optimisation(model, *, lr, lr_min, weight_decay, total_steps, device, autocast_dtype):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay,
                                 fused=device.type == "cuda")
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=lr_min)
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype == torch.float16)
    return optimizer, scheduler, scaler


def _restore(resume, model, optimizer, scheduler, scaler, select_metric) -> tuple[list[dict], dict, int]:
    """``(history, best, start_epoch)``: from ``last.pt`` when resuming (weights and optimiser state
    loaded into place), else a fresh start."""
    if resume is None:
        return [], {"epoch": 0, "value": None, "metric": select_metric}, 0
    model.load_state_dict(resume["state_dict"])
    optimizer.load_state_dict(resume["optimizer"])
    scheduler.load_state_dict(resume["scheduler"])
    scaler.load_state_dict(resume["scaler"])
    return list(resume["history"]), dict(resume["best"]), int(resume["epoch"])


def _wrap_for_training(model, context, device, find_unused_parameters, compile_model):
    """``(train_model, ddp_model, eval_model)``: DDP and torch.compile wrappers where asked for."""
    ddp_model = None
    train_model: nn.Module = model
    if distributed.is_initialized():
        if find_unused_parameters == "auto":
            find_unused_parameters = getattr(model, "input_kind", None) == "multimodal"
        ddp_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                            find_unused_parameters=bool(find_unused_parameters))
        train_model = ddp_model
    if compile_model:
        train_model = torch.compile(train_model)
    # Validation runs the bare (or compiled) model on each rank's shard; DDP adds nothing there.
    eval_model = train_model if ddp_model is None else model
    return train_model, ddp_model, eval_model


@contextlib.contextmanager
def _epoch_log(out_dir: Path, context, tensorboard: bool, start_epoch: int):
    """The TensorBoard writer of rank 0 (None elsewhere or without tensorboard), closed at the end."""
    writer = None
    if context.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            writer = _open_tensorboard(out_dir / "tensorboard", purge_step=start_epoch + 1 if start_epoch else None)
    try:
        yield writer
    finally:
        if writer is not None:
            writer.close()


def _save_epoch(out_dir, meta, model, row, improved, history, best, fit_config, context, optimizer, scheduler,
                scaler) -> None:
    """``best.pt`` when the epoch improved, ``last.pt`` (all a resume needs) and ``history.csv``."""
    state = model.state_dict()
    if improved:
        save_checkpoint({**meta, "state_dict": state, "epoch": row["epoch"], "metrics": row}, out_dir / BEST_NAME)
    save_checkpoint({**meta, "state_dict": state, "epoch": row["epoch"], "metrics": row,
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "scaler": scaler.state_dict(), "history": history, "best": best,
                     "fit_config": fit_config, "world_size": context.world_size}, out_dir / LAST_NAME)
    _write_history(history, out_dir / HISTORY_NAME)


def _log_epoch(writer, row: dict, epochs: int, improved: bool, show: bool) -> None:
    if writer is not None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                writer.add_scalar(key, value, row["epoch"])
        writer.flush()
    if show:
        tqdm.write(f"epoch {row['epoch']}/{epochs}: train_loss {row['train_loss']:.4f} "
                   f"val_loss {row['val_loss']:.4f} val_auroc {row['val_auroc']:.4f} "
                   f"val_f1 {row['val_f1']:.4f} ({row['seconds']:.1f} s, "
                   f"data wait {100 * row['data_wait_frac']:.1f}%)" + (" *best*" if improved else ""))


def _run_epoch(*, epoch, epochs, seed, context, model, ddp_model, eval_model, loss_fn, optimizer, scheduler,
               scaler, train_set, train_loader, train_sampler, loader_generator, steps_per_epoch,
               grad_accum_steps, val_loader, inputs, val_inputs, device, autocast_dtype, channels_last,
               show, monitor_inputs) -> dict:
    """Train one epoch and validate; return the history row (the same on every rank but for timings)."""
    epoch_start = time.perf_counter()
    this_seed = epoch_seed(seed, epoch, context.rank)
    seed_everything(this_seed)
    loader_generator.manual_seed(this_seed)
    train_sampler.set_epoch(epoch)
    if hasattr(train_set, "set_epoch"):
        train_set.set_epoch(epoch)
    lr_at_start = optimizer.param_groups[0]["lr"]

    model.train()
    loss_sum, parts_sum, n_seen = 0.0, {}, 0
    bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}", disable=not show, leave=False)
    loop_start = time.perf_counter()
    # A finished loader iterator still waiting for the collector would be inherited by the workers
    # forked next and collected there, where its __del__ fails loudly ("can only test a child
    # process"): collect it here first.
    gc.collect()
    batches = iter(train_loader)  # starts the workers: counted as waiting for data
    wait = time.perf_counter() - loop_start
    try:
        for step in range(steps_per_epoch):
            for micro in range(grad_accum_steps):
                fetch_start = time.perf_counter()
                batch = next(batches)
                wait += time.perf_counter() - fetch_start
                kwargs = model_inputs(batch, inputs, device, channels_last=channels_last)
                if "label" not in batch:
                    raise KeyError(f"training items need a 'label' entry; item keys: {sorted(batch)}")
                targets = batch["label"].to(device, non_blocking=True).float()
                # targets beyond the labels that a loss asks for by name (MeasurementLoss's measurements)
                wanted = getattr(loss_fn, "extra_targets", ())
                if any(key not in batch for key in wanted):
                    raise KeyError(f"{type(loss_fn).__name__} needs the training items' {list(wanted)}; item keys: "
                                   f"{sorted(batch)} (build the training set with measurement targets)")
                extra = {key: batch[key].to(device, non_blocking=True) for key in wanted}
                sync = (ddp_model.no_sync() if ddp_model is not None and micro < grad_accum_steps - 1
                        else contextlib.nullcontext())
                with sync:
                    with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                        outputs = model(**kwargs)
                    loss, parts = loss_fn(float_outputs(outputs), targets, **extra)
                    scaler.scale(loss / grad_accum_steps).backward()
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    raise FloatingPointError(f"loss is {loss_value} at epoch {epoch + 1}, step {step + 1}; "
                                             "lower the learning rate or check the inputs")
                size = targets.shape[0]
                loss_sum += loss_value * size
                for key, value in parts.items():
                    parts_sum[key] = parts_sum.get(key, 0.0) + float(value) * size
                n_seen += size
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / n_seen:.4f}")
    finally:
        bar.close()
        del batches  # shuts the epoch's workers down (unused trailing micro-batches included)
    train_seconds = time.perf_counter() - loop_start

    # the monitored paths ride on the same pass: validation pages drawn on the fly are drawn once
    val = run_inference(eval_model, val_loader, inputs=val_inputs, device=device, autocast_dtype=autocast_dtype,
                        channels_last=channels_last, loss_fn=loss_fn, progress=show, desc="validate",
                        total=len(val_loader), also_inputs=monitor_inputs)
    monitored = {name: (val.also_probs[name], val.targets) for name in monitor_inputs}
    shards = distributed.all_gather_objects({"monitored": monitored,
        "loss_sum": loss_sum, "parts_sum": parts_sum, "n": n_seen, "wait": wait, "train_seconds": train_seconds,
        "val_probs": val.probs, "val_targets": val.targets, "val_loss_sum": val.loss_sum,
        "val_parts_sum": val.loss_parts_sum, "val_n": val.n})
    n_train = sum(s["n"] for s in shards)
    n_val = sum(s["val_n"] for s in shards)
    probs = np.concatenate([s["val_probs"] for s in shards])
    if any(s["val_targets"] is None for s in shards):
        raise KeyError("validation items need a 'label' entry")
    targets = np.concatenate([s["val_targets"] for s in shards])

    row = {"epoch": epoch + 1, "lr": float(lr_at_start),
           "train_loss": sum(s["loss_sum"] for s in shards) / n_train}
    for key in sorted(parts_sum):
        row[f"train_{key}"] = sum(s["parts_sum"].get(key, 0.0) for s in shards) / n_train
    row["val_loss"] = sum(s["val_loss_sum"] for s in shards) / n_val
    for key in sorted(val.loss_parts_sum):
        row[f"val_{key}"] = sum(s["val_parts_sum"].get(key, 0.0) for s in shards) / n_val
    row["val_auroc"] = macro_auroc(targets, probs)
    # Per-class AUROC in every row: the learning curves that choose a recipe are read per class
    # (1dAVb learns last and slowest; a macro mean hides it).
    for label, value in zip(LABELS, per_class_auroc(targets, probs)):
        row[f"val_auroc_{label}"] = float(value)
    for name in monitor_inputs:
        row[f"val_auroc_{name}"] = macro_auroc(np.concatenate([s["monitored"][name][1] for s in shards]),
                                               np.concatenate([s["monitored"][name][0] for s in shards]))
    row["val_auprc"] = macro_auprc(targets, probs)
    row["val_f1"] = macro_f1(targets, probs, 0.5)
    slowest = max(s["train_seconds"] for s in shards)
    row["train_seconds"] = slowest
    row["samples_per_s"] = n_train / slowest if slowest > 0 else float("nan")
    row["samples_seen"] = n_train * (epoch + 1)
    row["data_wait_frac"] = max(s["wait"] / s["train_seconds"] if s["train_seconds"] > 0 else 0.0 for s in shards)
    row["seconds"] = time.perf_counter() - epoch_start
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in row.items()}
