"""A shipped image model: the image-only inference part of a trained model, without pickle.

A study checkpoint (``best.pt``, :mod:`vizecg.training.checkpoint`) is a ``torch.save``d dict
holding the whole model, signal stream included, plus training state. What ``predict`` needs
from it is much less: the tensors that image-only inference uses, how the model is rebuilt,
its input size and its tuned thresholds. :func:`save_shipped_model` writes exactly that into a
folder of two files:

* ``model.safetensors``: the image-path tensors (:func:`image_path_keys`) in the safetensors
  format, which holds raw tensors and a JSON header, so reading it executes nothing;
* ``model.json``: everything else (see :func:`save_shipped_model` for the fields).

:func:`load_shipped_model` rebuilds the model by name (:func:`vizecg.models.create_model`) and
loads the weights, checking the names and shapes against the model before anything large is
allocated. Only the image path is stored: for VizECGNet the signal encoder, the signal
projection, the lead embedding and the signal stream's CMAM/SMAM/head are dropped (they stay at
their initial values after loading and are never used by ``model(image=...)``); a plain image
model keeps every tensor.

``predict`` uses :data:`SHIPPED_MODEL_DIR` when it exists and no ``--checkpoint`` is given.
This module never unpickles anything on the loading side; :func:`save_shipped_model` reads the
study checkpoint with ``torch.load(weights_only=True)`` (:func:`vizecg.training.checkpoint.read_checkpoint`).
"""
from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch

from vizecg.contract import LABELS

FORMAT = "vizecg-shipped-model"
FORMAT_VERSION = 1
"""Version of the folder layout and of ``model.json``; :func:`load_shipped_model` accepts only this one."""
WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"

STUDY_ROOT = Path(__file__).resolve().parents[1]
"""The study folder (repository) this package lives in."""
SHIPPED_MODEL_DIR = STUDY_ROOT / "models" / "vizecgnet_image"
"""Where the study's shipped VizECGNet image model lives (committed with the code, not trained by ``dvc repro``)."""

MAX_OPTION_INT: int = 65_536
"""Largest integer (or float) a checkpoint's ``model_options`` may hold: 32 times the largest
option of any preset of the study (``feedforward_dim=2048``)."""
MAX_OPTION_ITEMS: int = 64
"""Longest sequence or string in ``model_options``, and deepest nesting is 3 levels."""
MAX_INPUT_SIDE: int = 4096
"""Largest training image side a checkpoint may ask pages to be resized to."""
MIN_INPUT_SIDE: int = 8
MAX_META_BYTES: int = 8 << 20
"""Largest ``model.json`` read (the study's resolved params are a few kB)."""
MAX_UNSTORED_ELEMENTS: int = 64_000_000
"""Most scalars a shipped model may build that its file does not hold (the signal path, left at
init): the paper-size VizECGNet's signal path has about 4 M. Stored tensors are bounded by the
file itself, since their shapes must match it before anything is allocated."""

SIGNAL_PATH_MODULES: Mapping[str, tuple[str, ...]] = {
    "vizecgnet": ("signal_encoder", "signal_projection", "lead_embedding", "cmam.signal", "smam.signal",
                  "heads.signal"),
    "mhm": ("signal_encoder", "embed.signal", "fusion_score"),
}
"""Per multimodal model, the state-dict prefixes that image-only inference (``model(image=...)``)
never reads. ``fusion_score`` of MHM weighs modalities only when both are given."""


class ShippedModelError(RuntimeError):
    """A shipped model that cannot be written or loaded. The message names the file and the problem."""


# ---------------------------------------------------------------------------------------------
# Checks shared with predict (model options from a file are never trusted)
# ---------------------------------------------------------------------------------------------

def check_option_value(name: str, value: Any, depth: int = 0) -> None:
    """Refuse ``model_options`` values a constructor should never be handed from a file (``ValueError``)."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > MAX_OPTION_INT:
            raise ValueError(f"{name}={value} is beyond +-{MAX_OPTION_INT}")
        return
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) > MAX_OPTION_INT:
            raise ValueError(f"{name}={value} is not a finite number within +-{MAX_OPTION_INT}")
        return
    if isinstance(value, str):
        if len(value) > MAX_OPTION_ITEMS:
            raise ValueError(f"{name} is a string of {len(value)} characters")
        return
    if isinstance(value, (list, tuple)):
        if depth >= 2 or len(value) > MAX_OPTION_ITEMS:
            raise ValueError(f"{name} is nested deeper than 3 levels or longer than {MAX_OPTION_ITEMS} items")
        for item in value:
            check_option_value(name, item, depth + 1)
        return
    raise ValueError(f"{name} has type {type(value).__name__}")


def check_model_options(options: Any, source: Path | str) -> dict:
    """``options`` as a dict of small plain values, else :class:`ShippedModelError` naming ``source``."""
    options = {} if options is None else options
    if not isinstance(options, dict) or not all(isinstance(key, str) for key in options):
        raise ShippedModelError(f"{source}: 'model_options' is not a dict of named options")
    try:
        for key, value in options.items():
            check_option_value(key, value)
    except ValueError as error:
        raise ShippedModelError(f"{source}: refusing model option {error}") from None
    return dict(options)


def check_input_size(height: Any, width: Any, source: Path | str) -> tuple[int, int]:
    """The page size the model was trained on, bounded (pages are resized to it)."""
    if not all(isinstance(v, int) and not isinstance(v, bool) and MIN_INPUT_SIDE <= v <= MAX_INPUT_SIDE
               for v in (height, width)):
        raise ShippedModelError(f"{source}: training image size {height!r} x {width!r} is not two whole numbers "
                                f"between {MIN_INPUT_SIDE} and {MAX_INPUT_SIDE}")
    return height, width


def image_model_entry(name: Any, source: Path | str):
    """The registry entry of an image or multimodal model ``name``, else :class:`ShippedModelError` naming ``source``."""
    from vizecg.models import model_entry

    if not isinstance(name, str) or not name:
        raise ShippedModelError(f"{source} has no 'model_name'; the model cannot be rebuilt by name")
    try:
        entry = model_entry(name)
    except KeyError as error:
        raise ShippedModelError(f"{source}: {error.args[0]}") from None
    if entry.input_kind == "signal":
        raise ShippedModelError(f"{source} holds the signal-only model {name!r}; "
                                "prediction from images needs an image or multimodal model")
    return entry


def _skeleton(name: str, options: dict, source: Path | str) -> torch.nn.Module:
    """The model built on the ``meta`` device: names and shapes, no memory, no compute."""
    from vizecg.models import create_model

    try:
        with torch.device("meta"):
            return create_model(name, **options)
    except Exception as error:
        raise ShippedModelError(f"{source}: cannot create model {name!r} with options {options} "
                                f"({type(error).__name__}: {error})") from None


# ---------------------------------------------------------------------------------------------
# What the image path uses
# ---------------------------------------------------------------------------------------------

def _under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ".")


def unused_prefixes(name: str, options: Mapping[str, Any]) -> tuple[str, ...]:
    """State-dict prefixes of model ``name`` (built with ``options``) that image-only inference never reads.

    Empty for image models. For VizECGNet the signal stream (:data:`SIGNAL_PATH_MODULES`), and
    with ``missing_modality="skip"`` also the image stream's CMAM (the identity without a signal).
    """
    from vizecg.models import model_entry

    entry = model_entry(name)
    if entry.input_kind == "image":
        return ()
    if entry.input_kind != "multimodal" or name not in SIGNAL_PATH_MODULES:
        raise ShippedModelError(f"model {name!r} ({entry.input_kind}) has no image-path rule; "
                                f"add its signal-only modules to vizecg.shipped_model.SIGNAL_PATH_MODULES")
    prefixes = SIGNAL_PATH_MODULES[name]
    if name == "vizecgnet" and _missing_modality(name, options) == "skip":
        prefixes = (*prefixes, "cmam.image")
    return prefixes


def image_path_keys(name: str, options: Mapping[str, Any], keys) -> list[str]:
    """The entries of ``keys`` (state-dict names, in order) that ``model(image=...)`` uses."""
    dropped = unused_prefixes(name, options)
    return [key for key in keys if not any(_under(key, prefix) for prefix in dropped)]


def _missing_modality(name: str, options: Mapping[str, Any]) -> str | None:
    """The model's missing-modality rule (its option, else its constructor's default), or None."""
    from vizecg.models import model_entry

    parameter = inspect.signature(model_entry(name).model_class.__init__).parameters.get("missing_modality")
    if parameter is None:
        return None
    return options.get("missing_modality", parameter.default)


# ---------------------------------------------------------------------------------------------
# Descriptions written into model.json
# ---------------------------------------------------------------------------------------------

def _keyword_defaults(function) -> dict[str, Any]:
    """The JSON-scalar defaults of ``function``'s parameters after the image (what predict leaves as is)."""
    out = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.default is inspect.Parameter.empty or name == "debug":
            continue
        value = parameter.default
        if isinstance(value, (bool, int, float, str)) or value is None:
            out[name] = value
    return out


def describe_page_preparation(height: int, width: int) -> dict:
    """How ``predict`` turns a file into model input, with the parameters this code applies.

    The steps of :func:`vizecg.page_reader.prepare_page` in order (``correct_geometry=True``),
    with the reader first and the ECG check where predict runs it (on the sheet cut out of a
    photo, which the check and the preparation share); recorded so that a shipped model documents
    the preprocessing it was used with (and a change of it can be noticed by comparing).
    """
    from vizecg import page_reader as pr

    steps = [
        ("load_image", {"max_image_pixels": pr.MAX_IMAGE_PIXELS, "max_jpeg_pixels": pr.MAX_JPEG_PIXELS,
                        "pdf_render_dpi": pr.PDF_RENDER_DPI, "pdf_max_pixels": pr.PDF_MAX_PIXELS,
                        "min_image_side": pr.MIN_PAGE_SIDE, "max_aspect_ratio": pr.MAX_ASPECT_RATIO}),
        ("limit_resolution", {"long_side": pr.WORK_LONG_SIDE}),
        ("find_paper_quad", {**_keyword_defaults(pr.find_paper_quad), "found_by": "bright region if edged all round, else straight edges",
                             "edge_ratio": pr.SHEET_EDGE_RATIO, "edge_outside_px": list(pr.SHEET_EDGE_OUTSIDE_PX)}),
        ("warp_quad", {}),
        ("looks_like_ecg", {"grid_min_score": pr.GRID_MIN_SCORE, "strong_grid_score": pr.STRONG_GRID_SCORE,
                            "ink_fraction_range": list(pr.INK_FRACTION_RANGE),
                            "blob_max_fraction": pr.BLOB_MAX_FRACTION, "blob_kernel": pr.BLOB_KERNEL,
                            "trace_min_columns": pr.TRACE_MIN_COLUMNS, "trace_min_spikes": pr.TRACE_MIN_SPIKES,
                            "qrs_spike_min_height": pr.QRS_SPIKE_MIN_HEIGHT, "faint_ink_floor": pr.FAINT_INK_FLOOR,
                            "faint_trace_floor": pr.FAINT_TRACE_FLOOR,
                            "grid_agreeing_tiles": pr.GRID_AGREEING_TILES,
                            "grid_period_tolerance": pr.GRID_PERIOD_TOLERANCE,
                            "blurred_grid_min_score": pr.BLURRED_GRID_MIN_SCORE,
                            "blurred_grid_max_ink": pr.BLURRED_GRID_MAX_INK,
                            "blurred_grid_min_trace_columns": pr.BLURRED_GRID_MIN_TRACE_COLUMNS,
                            "trace_fixed_level": pr.TRACE_FIXED_LEVEL,
                            "trace_fixed_min_columns": pr.TRACE_FIXED_MIN_COLUMNS,
                            "detect_long_side": pr.DETECT_LONG_SIDE, "grid_tile": pr.GRID_TILE,
                            "skipped_with": "--no-ecg-check"}),
        ("estimate_skew", _keyword_defaults(pr.estimate_skew)),
        ("rotate_page", {}),
        ("find_grid_box", _keyword_defaults(pr.find_grid_box)),
        ("find_plot_area", {**_keyword_defaults(pr.find_plot_area), "long_side": pr.PLOT_AREA_LONG_SIDE,
                            "crop": "inside both boxes where both are found"}),
        ("normalise_paper", _keyword_defaults(pr.normalise_paper)),
        ("resize_to_model", {"height": int(height), "width": int(width), "interpolation": "area when shrinking, "
                             "else linear", "output": "float32 (3, height, width) in [0, 1]"}),
    ]
    return {"function": "vizecg.page_reader.prepare_page", "correct_geometry": True,
            "steps": [{"name": name, "params": params} for name, params in steps]}


def measurement_output_spec(options: Mapping[str, Any]) -> dict | None:
    """What a model's measurement head outputs (``options["measurement_outputs"]``), for
    ``model.json``: one column per :data:`vizecg.data.ecg_measurements.MEASUREMENT_TARGETS` entry,
    with the constants that turn an output into the measurement's unit (``output * scale + centre``).
    They are stored with the weights, so a later change of the constants cannot mis-read them.
    ``None`` for a model without a head; :class:`ShippedModelError` for a head of another size,
    whose columns nothing names."""
    from vizecg.data.ecg_measurements import MEASUREMENT_TARGETS

    outputs = int(options.get("measurement_outputs") or 0)
    if not outputs:
        return None
    if outputs != len(MEASUREMENT_TARGETS):
        raise ShippedModelError(f"a measurement head of {outputs} outputs matches no known measurement list "
                                f"({len(MEASUREMENT_TARGETS)}: {list(MEASUREMENT_TARGETS)})")
    return {"name": "measurements", "shape": ["batch", outputs], "decode": "output * scale + centre",
            "source": "read off the page by the image stream, trained on the record's signal measured by "
                      "vizecg.data.ecg_measurements",
            "columns": [{"name": key, "centre": centre, "scale": scale}
                        for key, (centre, scale) in MEASUREMENT_TARGETS.items()]}


def measurement_columns(meta: Mapping[str, Any], options: Mapping[str, Any],
                        source: Path | str) -> list[tuple[str, float, float]] | None:
    """``[(name, centre, scale), ...]`` of a shipped model's measurement head as its ``model.json``
    lists them, checked against the head its options build; ``None`` without a head."""
    outputs = options.get("measurement_outputs") or 0
    spec = meta.get("measurements")
    if not outputs:
        if spec is not None:
            raise ShippedModelError(f"{source}: 'measurements' listed for a model without a measurement head")
        return None
    columns = spec.get("columns") if isinstance(spec, Mapping) else None
    if not isinstance(columns, list) or len(columns) != outputs:
        raise ShippedModelError(f"{source}: the model has a measurement head of {outputs} outputs, and "
                                f"'measurements' does not list {outputs} columns to read them by")
    out = []
    for index, column in enumerate(columns):
        name, centre, scale = (column.get(key) if isinstance(column, Mapping) else None
                               for key in ("name", "centre", "scale"))
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                      for v in (centre, scale))
        if not (isinstance(name, str) and re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name) and numbers):
            raise ShippedModelError(f"{source}: measurement column {index} is not {{name, centre, scale}} "
                                    f"with a lower-case name and finite numbers")
        out.append((name, float(centre), float(scale)))
    return out


def git_commit(root: Path | str = STUDY_ROOT) -> str | None:
    """``git rev-parse HEAD`` of ``root``, or None where git or the repository is not there."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", commit) else None


def _json_safe(value: Any, depth: int = 0) -> Any:
    """``value`` as strict JSON: containers and scalars kept, numpy scalars converted, non-finite
    floats as null, anything else as its text."""
    if depth > 32:
        return str(value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, depth + 1) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalar
        return _json_safe(value.item(), depth + 1)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def _threshold_dict(stored: Any, model_labels: list[str], source: Path | str) -> dict[str, float] | None:
    """Thresholds (a ``{label: t}`` dict or a sequence in the model's label order) as ``{label: t}`` in LABELS order."""
    if stored is None:
        return None
    try:
        if isinstance(stored, Mapping):
            values = {label: float(stored[label]) for label in LABELS}
        else:
            stored = [float(v) for v in stored]
            if len(stored) != len(model_labels):
                raise ValueError(f"{len(stored)} thresholds for {len(model_labels)} labels")
            values = {label: stored[model_labels.index(label)] for label in LABELS}
    except (KeyError, TypeError, ValueError) as error:
        raise ShippedModelError(f"{source}: stored thresholds are not one number per label ({error})") from None
    if not all(math.isfinite(t) and 0.0 <= t <= 1.0 for t in values.values()):
        raise ShippedModelError(f"{source}: stored thresholds {values} are not all in [0, 1]")
    return values


def _model_labels(stored: Any, source: Path | str) -> list[str]:
    labels = list(stored) if isinstance(stored, (list, tuple)) else None
    if labels is None or sorted(map(str, labels)) != sorted(LABELS):
        raise ShippedModelError(f"{source} predicts labels {stored}, expected {list(LABELS)}")
    return [str(label) for label in labels]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, write) -> None:
    """Call ``write(temp_path)`` then rename over ``path``, so a reader never sees a half-written file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would make a shipped model private to its writer
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

def training_record(history_csv: Path) -> dict | None:
    """Epochs, samples seen, training and wall seconds of a run from its ``history.csv`` (None if absent)."""
    import csv

    if not history_csv.is_file():
        return None
    with history_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return None

    def total(column: str) -> float | None:
        values = [float(r[column]) for r in rows if r.get(column) not in (None, "")]
        return round(sum(values), 1) if values else None

    last = rows[-1]
    return {"epochs": int(float(last["epoch"])),
            "samples_seen": int(float(last["samples_seen"])) if last.get("samples_seen") else None,
            "train_seconds": total("train_seconds"), "wall_seconds": total("seconds"),
            "samples_per_s_last_epoch": round(float(last["samples_per_s"]), 1) if last.get("samples_per_s") else None}


def run_training_record(checkpoint_path: Path, meta: Mapping[str, Any]) -> dict | None:
    """:func:`training_record` of the run that wrote ``checkpoint_path``, and where that run was
    warm-started from another (``train.warm_start``), the source run's record under ``"warm_start"``
    (its run, the epoch whose weights it took, and its own training): a continued run's four epochs
    are not all the training its weights had."""
    record = training_record(checkpoint_path.parent / "history.csv")
    source = meta.get("warm_start")
    if record is None or not source:
        return record
    source_dir = checkpoint_path.parent.parent / str(source["run"])
    # a run continued from shipped weights (train.warm_start_weights: shipped) carries its source's record
    prior = training_record(source_dir / "history.csv") or source.get("training")
    return {**record, "warm_start": {"run": source["run"], "epoch": source.get("epoch"), "training": prior}}


def save_shipped_model(checkpoint_path: str | Path, out_dir: str | Path, *,
                       extra_meta: Mapping[str, Any] | None = None, verify: bool = True) -> Path:
    """Write the image-only part of study checkpoint ``checkpoint_path`` to ``out_dir``; returns ``out_dir``.

    ``out_dir/model.safetensors`` holds the image-path tensors (:func:`image_path_keys`);
    ``out_dir/model.json`` holds::

        format            "vizecg-shipped-model"
        format_version    1 (FORMAT_VERSION)
        model_name        registry name, e.g. "vizecgnet"
        model_options     create_model(model_name, **model_options)
        input_kind        the registry's kind ("image" or "multimodal")
        labels            the model's output order (a permutation of vizecg.contract.LABELS)
        input             {"image_height", "image_width", "channels": 3, "dtype": "float32",
                           "value_range": [0, 1], "layout": "NCHW", ...}
        output            {"name": "logits", "shape": ["batch", 6], "activation": "sigmoid"}
        page_preparation  describe_page_preparation(height, width)
        measurements      the measurement head's outputs (:func:`measurement_output_spec`), or null
        missing_modality  "self" | "skip" (VizECGNet's rule), null for image models
        thresholds        {label: t} (the image path's, tuned on validation) or null (then 0.5)
        thresholds_source where they came from in the checkpoint, or null
        weights           {"file", "sha256", "bytes", "dropped_prefixes"}
        tensors           [{"name", "shape", "dtype"}, ...] as stored in model.safetensors
        git_commit        commit of the code that wrote this folder, or null
        params            the resolved params the model was trained with (checkpoint "params")
        source_checkpoint {"file", "epoch", "metrics"}
        training          what the run cost, from history.csv beside the checkpoint (or null); a
                          warm-started run adds its source run's under "warm_start"
        extra             ``extra_meta`` (JSON-safe), {} by default

    With ``verify`` the folder is loaded back and must give the checkpoint model's image-only
    logits exactly on a random page. :class:`ShippedModelError` for an unusable checkpoint.
    """
    from safetensors.torch import save_file

    from vizecg.training.checkpoint import CheckpointError, checkpoint_meta, read_checkpoint

    checkpoint_path, out_dir = Path(checkpoint_path), Path(out_dir)
    try:
        payload = read_checkpoint(checkpoint_path, map_location="cpu")
    except CheckpointError as error:
        raise ShippedModelError(str(error)) from None
    meta = checkpoint_meta(payload)
    source = f"checkpoint {checkpoint_path}"
    name = meta.get("model_name")
    entry = image_model_entry(name, source)
    options = check_model_options(meta.get("model_options"), source)
    size = meta.get("input") if isinstance(meta.get("input"), Mapping) else {}
    height, width = check_input_size(size.get("image_height"), size.get("image_width"), source)
    labels = _model_labels(meta.get("labels") or LABELS, source)
    by_path = meta.get("thresholds_by_path")
    if isinstance(by_path, Mapping) and by_path.get("image") is not None:
        thresholds_source, stored = "thresholds_by_path.image", by_path["image"]
    elif meta.get("thresholds") is not None:
        thresholds_source, stored = "thresholds", meta["thresholds"]
    else:
        thresholds_source, stored = None, None
    thresholds = _threshold_dict(stored, labels, source)

    state_dict = payload["state_dict"]
    if not isinstance(state_dict, Mapping):
        raise ShippedModelError(f"{source}: 'state_dict' is not a mapping of tensors")
    expected = {k: tuple(v.shape) for k, v in _skeleton(name, options, source).state_dict().items()}
    stored_shapes = {k: tuple(v.shape) for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    if stored_shapes != expected:
        differ = sorted(expected.keys() ^ stored_shapes.keys()) or sorted(
            k for k in expected if expected[k] != stored_shapes[k])
        raise ShippedModelError(f"{source}: weights do not fit model {name!r} with options {options} "
                                f"(e.g. {differ[:3]})")
    keys = image_path_keys(name, options, list(state_dict))
    tensors = {key: state_dict[key].detach().to("cpu").contiguous().clone() for key in keys}

    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / WEIGHTS_FILE
    _atomic_write(weights, lambda tmp: save_file(tensors, str(tmp), metadata={
        "format": FORMAT, "format_version": str(FORMAT_VERSION), "model_name": name}))
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": name,
        "model_options": _json_safe(options),
        "input_kind": entry.input_kind,
        "labels": labels,
        "input": {"image_height": height, "image_width": width, "channels": 3, "dtype": "float32",
                  "value_range": [0.0, 1.0], "layout": "NCHW",
                  "normalisation": "inside the model (ImageNet mean and std)",
                  "render_style": _json_safe(size.get("render_style"))},
        "output": {"name": "logits", "shape": ["batch", len(labels)], "order": "labels",
                   "activation": "sigmoid"},
        "page_preparation": describe_page_preparation(height, width),
        "measurements": measurement_output_spec(options),
        "missing_modality": _missing_modality(name, options),
        "thresholds": thresholds,
        "thresholds_source": thresholds_source,
        "weights": {"file": WEIGHTS_FILE, "sha256": _sha256(weights), "bytes": weights.stat().st_size,
                    "dropped_prefixes": list(unused_prefixes(name, options))},
        "tensors": [{"name": key, "shape": list(value.shape), "dtype": str(value.dtype).removeprefix("torch.")}
                    for key, value in tensors.items()],
        "git_commit": git_commit(),
        "params": _json_safe(meta.get("params")),
        "run": meta.get("run"),
        "source_checkpoint": {"file": checkpoint_path.name, "epoch": _json_safe(meta.get("epoch")),
                              "metrics": _json_safe(meta.get("metrics"))},
        "training": run_training_record(checkpoint_path, meta),
        "extra": _json_safe(dict(extra_meta or {})),
    }
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    _atomic_write(out_dir / META_FILE, lambda tmp: tmp.write_text(text))

    if verify:
        from vizecg.models import create_model

        reference = create_model(name, **options)
        reference.load_state_dict(state_dict)
        reference.eval()
        loaded, _ = load_shipped_model(out_dir)
        page = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            difference = (reference(image=page)["logits"] - loaded(image=page)["logits"]).abs().max().item()
        if difference != 0.0:
            raise ShippedModelError(f"{out_dir}: the shipped model's logits differ from {checkpoint_path}'s "
                                    f"by {difference:g}; its image-path rule drops a tensor the image path uses")
    return out_dir


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------

def shipped_meta_path(path: str | Path) -> Path:
    """``path/model.json`` for a folder, ``path`` itself for a ``.json`` file."""
    path = Path(path)
    return path if path.suffix.lower() == ".json" and not path.is_dir() else path / META_FILE


def is_shipped_model(path: str | Path) -> bool:
    """Whether ``path`` names a shipped model (a folder, or a ``.json`` file) rather than a checkpoint file."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() == ".json"


def weights_provenance(path: str | Path) -> dict | None:
    """Which shipped weights ``path`` names (a shipped folder, its ``model.json``, or a file beside it): the
    run that trained them and the commit they were written at, for a benchmark to record beside its
    figures; None where ``path`` is not in a shipped folder (a study checkpoint)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if not shipped_meta_path(folder).is_file():
        return None
    meta = read_shipped_meta(folder)
    return {"run": meta.get("run"), "git_commit": meta.get("git_commit")}


def read_shipped_meta(path: str | Path) -> dict:
    """The checked ``model.json`` of shipped model ``path`` (a folder or its JSON file)."""
    meta_path = shipped_meta_path(path)
    if not meta_path.is_file():
        folder = meta_path.parent
        hint = ""
        if folder.is_dir() and (folder / "best.pt").is_file():
            hint = f"; {folder} holds a study checkpoint: pass {folder / 'best.pt'}"
        raise ShippedModelError(f"shipped model {meta_path} not found{hint}")
    try:
        if meta_path.stat().st_size > MAX_META_BYTES:
            raise ShippedModelError(f"shipped model {meta_path} is larger than {MAX_META_BYTES >> 20} MiB; "
                                    "it is not a model.json")
        meta = json.loads(meta_path.read_bytes())
    except ShippedModelError:
        raise
    except (OSError, ValueError, RecursionError) as error:
        raise ShippedModelError(f"shipped model {meta_path} is not valid JSON ({type(error).__name__}: "
                                f"{' '.join(str(error).split())[:200]})") from None
    if not isinstance(meta, dict):
        raise ShippedModelError(f"shipped model {meta_path} holds a JSON {type(meta).__name__}, not an object")
    if meta.get("format") != FORMAT:
        raise ShippedModelError(f"shipped model {meta_path}: 'format' is {meta.get('format')!r}, expected {FORMAT!r}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise ShippedModelError(f"shipped model {meta_path}: format_version {version!r} is not supported "
                                f"(this code reads version {FORMAT_VERSION}); use the vizecg version that wrote it "
                                "or export it again")
    return meta


#: the fields of model.json that describe the weights file: never changed after it is written
WEIGHT_FIELDS = ("format", "format_version", "model_name", "model_options", "labels", "input", "weights", "tensors")


def update_shipped_meta(path: str | Path, changes: Mapping[str, Any]) -> dict:
    """Replace top-level fields of shipped model ``path``'s ``model.json`` (e.g. its thresholds) and
    return the new document; the weights stay as they are, so the fields that describe them
    (:data:`WEIGHT_FIELDS`) cannot be changed. Stored thresholds are checked like on loading."""
    meta_path = shipped_meta_path(path)
    meta = read_shipped_meta(meta_path)
    fixed = sorted(set(changes) & set(WEIGHT_FIELDS))
    if fixed:
        raise ShippedModelError(f"{meta_path}: {fixed} describe the weights and are written only with them "
                                "(python -m vizecg.shipped_model)")
    meta.update(_json_safe(dict(changes)))
    _threshold_dict(meta.get("thresholds"), _model_labels(meta.get("labels") or LABELS, meta_path), meta_path)
    text = json.dumps(meta, indent=2, allow_nan=False) + "\n"
    _atomic_write(meta_path, lambda tmp: tmp.write_text(text))
    return meta


def _stored_tensor_list(meta: dict, source: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    listed = meta.get("tensors")
    out: dict[str, tuple[tuple[int, ...], str]] = {}
    try:
        for item in listed:
            name, shape, dtype = item["name"], item["shape"], item["dtype"]
            if not (isinstance(name, str) and isinstance(dtype, str) and isinstance(shape, list)
                    and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
                raise TypeError
            if name in out:
                raise ValueError(f"{name} is listed twice")
            out[name] = (tuple(shape), dtype)
    except ValueError as error:
        raise ShippedModelError(f"shipped model {source}: 'tensors' is malformed ({error})") from None
    except (TypeError, KeyError):
        raise ShippedModelError(f"shipped model {source}: 'tensors' is not a list of "
                                "{name, shape, dtype}") from None
    return out


def _describe_mismatch(what: str, expected: Mapping, found: Mapping, *, missing: str, extra: str) -> str | None:
    """One line naming the tensors (name -> (shape, dtype)) that ``found`` lacks, adds or holds
    differently from ``expected``, or None when they agree."""
    absent = sorted(expected.keys() - found.keys())
    added = sorted(found.keys() - expected.keys())
    differ = sorted(k for k in expected.keys() & found.keys() if expected[k] != found[k])
    if not (absent or added or differ):
        return None
    parts = []
    if absent:
        parts.append(f"{len(absent)} {missing} ({', '.join(absent[:5])}{', ...' if len(absent) > 5 else ''})")
    if added:
        parts.append(f"{len(added)} {extra} ({', '.join(added[:5])}{', ...' if len(added) > 5 else ''})")
    if differ:
        shown = "; ".join(f"{key} is {_fmt(found[key])}, expected {_fmt(expected[key])}" for key in differ[:5])
        parts.append(f"{len(differ)} of another shape or dtype ({shown}{'; ...' if len(differ) > 5 else ''})")
    return f"{what}: " + ", ".join(parts)


def _fmt(entry) -> str:
    shape, dtype = entry
    return f"{list(shape)} {dtype}"


def load_shipped_model(dir_or_json: str | Path, *, map_location: str | torch.device = "cpu"
                       ) -> tuple[torch.nn.Module, dict]:
    """Rebuild a shipped model for image-only inference: ``(model in eval mode, meta)``.

    ``dir_or_json`` is the folder :func:`save_shipped_model` wrote or its ``model.json``.
    Before anything large is allocated, the model is built on the ``meta`` device and its
    image-path tensors (:func:`image_path_keys`) are compared with the ``tensors`` list of
    ``model.json`` and with the header of ``model.safetensors``: every stored name must exist
    in the model with the same shape and dtype and every image-path tensor must be stored;
    the file's SHA-256 must be the one recorded. Tensors the image path does not use stay at
    their initial values. :class:`ShippedModelError`, naming the file, otherwise.
    ``meta`` is the JSON document with ``"input"`` holding ``image_height``/``image_width``.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    from vizecg.models import create_model

    meta_path = shipped_meta_path(dir_or_json)
    meta = read_shipped_meta(meta_path)
    source = f"shipped model {meta_path}"
    name = meta.get("model_name")
    image_model_entry(name, source)
    options = check_model_options(meta.get("model_options"), source)
    size = meta.get("input") if isinstance(meta.get("input"), dict) else {}
    check_input_size(size.get("image_height"), size.get("image_width"), source)
    _model_labels(meta.get("labels"), source)
    _threshold_dict(meta.get("thresholds"), list(LABELS), source)
    measurement_columns(meta, options, source)
    rule = meta.get("missing_modality")
    if rule != _missing_modality(name, options):
        raise ShippedModelError(f"{source}: missing_modality {rule!r} disagrees with the model options "
                                f"({_missing_modality(name, options)!r})")

    skeleton = {k: (tuple(v.shape), str(v.dtype).removeprefix("torch."))
                for k, v in _skeleton(name, options, source).state_dict().items()}
    image_keys = image_path_keys(name, options, list(skeleton))
    listed = _stored_tensor_list(meta, meta_path)
    expected = {key: skeleton[key] for key in image_keys}
    expected.update({key: skeleton[key] for key in listed if key in skeleton})  # signal-path extras may be stored
    problem = _describe_mismatch(f"{source}: its tensors do not fit model {name!r} with options {options}",
                                 expected, listed, missing=f"image-path tensors not listed in {META_FILE}",
                                 extra="listed tensors the model does not have")
    if problem:
        raise ShippedModelError(problem)
    unstored = sum(math.prod(shape) for key, (shape, _) in skeleton.items() if key not in listed)
    if unstored > MAX_UNSTORED_ELEMENTS:
        raise ShippedModelError(f"{source}: model {name!r} with options {options} would build {unstored:,} "
                                f"values the file does not hold (limit {MAX_UNSTORED_ELEMENTS:,})")

    weights_info = meta.get("weights") if isinstance(meta.get("weights"), dict) else {}
    weights_name = weights_info.get("file", WEIGHTS_FILE)
    if weights_name != WEIGHTS_FILE:
        raise ShippedModelError(f"{source}: weights file {weights_name!r} is not {WEIGHTS_FILE!r}")
    weights = meta_path.parent / WEIGHTS_FILE
    if not weights.is_file():
        raise ShippedModelError(f"shipped model weights {weights} not found (listed by {meta_path})")
    try:
        with safe_open(str(weights), framework="pt") as handle:
            header = {key: (tuple(handle.get_slice(key).get_shape()), _dtype_name(handle.get_slice(key).get_dtype()))
                      for key in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        with open(weights, "rb") as handle:
            lfs = handle.read(64).startswith(b"version https://git-lfs")
        hint = "; it is a Git LFS pointer: run `git lfs pull`" if lfs else ""
        raise ShippedModelError(f"shipped model weights {weights} are not a readable safetensors file "
                                f"({type(error).__name__}: {' '.join(str(error).split())[:200]}){hint}") from None
    problem = _describe_mismatch(f"shipped model weights {weights} do not match {meta_path}", listed, header,
                                 missing=f"listed tensors missing from {WEIGHTS_FILE}",
                                 extra=f"tensors not listed in {META_FILE}")
    if problem:
        raise ShippedModelError(problem)
    recorded = weights_info.get("sha256")
    if recorded is not None and recorded != _sha256(weights):
        raise ShippedModelError(f"shipped model weights {weights}: SHA-256 differs from the one in {meta_path} "
                                "(the file was changed or damaged after it was written)")
    try:
        tensors = load_file(str(weights), device="cpu")
        model = create_model(name, **options)
        missing, unexpected = model.load_state_dict(tensors, strict=False)
    except Exception as error:
        raise ShippedModelError(f"shipped model weights {weights}: cannot load into model {name!r} "
                                f"({type(error).__name__}: {' '.join(str(error).split())[:200]})") from None
    not_loaded = sorted(set(image_keys) & set(missing))
    if not_loaded or unexpected:  # cannot happen after the checks above; never run a half-loaded model
        raise ShippedModelError(f"shipped model weights {weights}: {len(not_loaded)} image-path tensors not loaded, "
                                f"{len(unexpected)} unexpected ({(not_loaded or list(unexpected))[:3]})")
    return model.to(map_location).eval(), meta


_SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
                       "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def _dtype_name(dtype: str) -> str:
    """A safetensors dtype code (``F32``) as the torch dtype name (``float32``)."""
    return _SAFETENSORS_DTYPES.get(str(dtype), str(dtype).lower())


def main(argv: list[str] | None = None) -> int:
    """``python -m vizecg.shipped_model CHECKPOINT OUT_DIR [--extra KEY=VALUE ...]``: ship a trained model."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m vizecg.shipped_model",
                                     description="Write the image-only part of a study checkpoint (best.pt) as "
                                                 "model.safetensors + model.json, the folder predict loads.")
    parser.add_argument("checkpoint", type=Path, help="study checkpoint, e.g. data/models/vizecgnet/best.pt")
    parser.add_argument("out_dir", type=Path, nargs="?", default=SHIPPED_MODEL_DIR,
                        help=f"folder to write (default: {SHIPPED_MODEL_DIR})")
    parser.add_argument("--extra", action="append", default=[], metavar="KEY=VALUE",
                        help="a text field for model.json's 'extra' (repeatable)")
    args = parser.parse_args(argv)
    extra = {}
    for item in args.extra:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--extra {item!r} is not KEY=VALUE")
        extra[key] = value
    try:
        out = save_shipped_model(args.checkpoint, args.out_dir, extra_meta=extra)
    except ShippedModelError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    meta = read_shipped_meta(out)
    print(f"wrote {out / WEIGHTS_FILE} ({meta['weights']['bytes']:,} bytes, {len(meta['tensors'])} tensors) "
          f"and {out / META_FILE}: {meta['model_name']} on {meta['input']['image_height']} x "
          f"{meta['input']['image_width']} pages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
