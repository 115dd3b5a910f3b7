"""Checkpoint files: atomic writes, safe reads with clear errors, and model rebuilding.

A checkpoint is a ``torch.save``d dict. Every checkpoint carries what is needed to
rebuild and use the model without the code that trained it:

* ``model_name``, ``model_options``: ``vizecg.models.create_model(model_name, **model_options)``;
* ``state_dict``: the bare model's weights (never DDP/compile wrapper prefixes);
* ``labels`` (tuple of class names), ``input`` (``decimate``, ``image_height``,
  ``image_width``, ``render_style``), ``params`` (the resolved profile);
* ``epoch`` (epochs completed) and ``metrics`` (that epoch's history row).

``last.pt`` adds ``optimizer``, ``scheduler``, ``scaler``, ``history``, ``best`` and
``fit_config`` so an interrupted run resumes exactly; ``best.pt`` leaves them out.

Files are read with ``torch.load(weights_only=True)``: checkpoints hold only tensors
and plain Python containers, so loading one cannot execute code.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn

# Keys that hold training state rather than a description of the model.
TRAINING_STATE_KEYS = ("state_dict", "optimizer", "scheduler", "scaler")
META_KEYS = ("model_name", "model_options", "labels", "input", "params")


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read or does not hold what is needed. Names the file."""


def save_checkpoint(payload: dict, path: str | Path) -> Path:
    """Write ``payload`` to ``path`` atomically (temp file in the same folder, then rename).

    A run killed mid-write therefore leaves the previous checkpoint intact, which is
    what makes resuming after an interruption safe.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint dict, raising :class:`CheckpointError` naming the file when it is
    missing, truncated/corrupt, or not a checkpoint dict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a damaged file surfaces as many exception types (EOF, Unpickling, Index...)
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch checkpoint "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise CheckpointError(f"checkpoint {path} holds no 'state_dict' entry; it was not written by vizecg.training")
    return payload


def checkpoint_meta(payload: dict) -> dict:
    """Everything in a checkpoint except the weights and the optimiser/scheduler/scaler state."""
    return {k: v for k, v in payload.items() if k not in TRAINING_STATE_KEYS}


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model stored in a checkpoint, in eval mode, and return ``(model, meta)``.

    The model is created with ``vizecg.models.create_model(meta["model_name"],
    **meta["model_options"])`` and its weights loaded strictly, so a checkpoint from
    another architecture or option set fails loudly instead of half-loading.
    """
    payload = read_checkpoint(path, map_location=map_location)
    meta = checkpoint_meta(payload)
    if not meta.get("model_name"):
        raise CheckpointError(f"checkpoint {path} has no 'model_name'; it was trained without checkpoint_meta "
                              "and cannot be rebuilt by name")
    from vizecg.models import create_model  # imported here: models import nothing from training

    try:
        model = create_model(meta["model_name"], **dict(meta.get("model_options") or {}))
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path}: cannot create model {meta['model_name']!r} with options "
                              f"{meta.get('model_options')}: {exc}") from exc
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path}: weights do not fit model {meta['model_name']!r}: "
                              f"{str(exc).splitlines()[0]}") from exc
    model.to(map_location).eval()
    return model, meta
