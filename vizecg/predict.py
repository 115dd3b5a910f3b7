"""Classify printed, scanned or photographed 12-lead ECGs from image files.

Usage::

    python -m vizecg.predict IMAGE_OR_FOLDER [...] [--checkpoint PATH_OR_MODEL_DIR] [--json]
                             [--csv FILE] [--explain DIR] [--threshold T] [--no-ecg-check]
                             [--device cpu|cuda] [--file-timeout SECONDS]

Every argument is an image file (PNG, JPEG, BMP, TIFF, GIF, WebP: first frame; PDF: first
page) or a folder, which expands to the entries directly inside it that are named like images
(sorted, suffix case ignored, unsupported formats such as HEIC included so that each gets an
error). Each page is read and checked (:func:`vizecg.page_reader.looks_like_ecg`), prepared as
:func:`vizecg.page_reader.prepare_page` documents (paper found, perspective and rotation
corrected, paper normalised, resized to the model's training size) and classified by
the image stream alone (``model(image=batch)["logits"]``, sigmoid): no signal is needed.

The model is either a *shipped model* (a folder holding ``model.json`` and
``model.safetensors``, :mod:`vizecg.shipped_model`: the image path only, no pickle) or a study
checkpoint (``best.pt``). Without ``--checkpoint`` it is the shipped VizECGNet image model of
the study (:data:`vizecg.shipped_model.SHIPPED_MODEL_DIR`, ``models/vizecgnet_image/``) when
that folder exists, else ``data/models/vizecgnet/best.pt`` under the current folder or the
study folder, the VizECGNet that ``dvc repro`` trains. ``--checkpoint`` takes a ``best.pt``, a
shipped-model folder or its ``model.json``. A label is positive when its probability reaches its
threshold: ``--threshold`` if given, else the per-class thresholds stored with the model
(``"thresholds"``, tuned on validation), else 0.5.

Output: a line per file (probabilities in the order 1dAVb, RBBB, LBBB, SB, AF, ST, then
the positive labels), or with ``--json`` a single JSON document on stdout::

    {"labels": [...], "checkpoint": "<the best.pt or model.json loaded>", "thresholds": {...},
     "results": [{"file": "...", "probabilities": {"1dAVb": p, ...}, "positive": [...],
                  "error": null}, ...]}

A model with a measurement head (``measurement_outputs`` > 0) also reports, per classified file,
``"measurements": {"pr_interval_ms": ..., "qrs_duration_ms": ..., "heart_rate_bpm": ...,
"rr_irregularity": ..., "p_wave_score": ...}``: what its image stream read off the page, in each
measurement's unit (``--csv``: columns ``m_<name>``). They are readings of a network trained on
synthetic records, not measurements of the tracing; ``python benchmarks/measurement_readout.py
MODEL_DIR --external data/ludb/dataset.h5`` measures how close they come, on synthetic pages and
on real ECGs.

Every file given yields exactly one result. A file that cannot be classified (missing, not a
regular file, empty, not an image, an unsupported format, corrupt or truncated, too large,
too small or too elongated, not looking like an ECG page, or one whose reading crashed, ran
out of memory or ran out of time) gets ``"error": "<file>: <cause>"`` with
``"probabilities": null`` and ``"positive": null``, the same message on stderr, and the other
files are still processed.

Hostile files are contained: each file is read and prepared in its own short-lived process
(forked, where the platform can) with a data-size limit (:data:`FILE_MEMORY_LIMIT_BYTES`) and
a wall-clock limit (``--file-timeout``, default :data:`FILE_TIME_LIMIT_S`), so a decoder that
crashes, hangs or exhausts memory costs that file only; the readers also bound the pixels
decoded per file before decoding (:data:`vizecg.page_reader.MAX_IMAGE_PIXELS`,
:data:`vizecg.page_reader.PDF_MAX_PIXELS`).

Exit status: 0 when every file was classified, 1 when any file failed, 2 when nothing could
run (bad arguments, unusable ``--device``, missing or unusable checkpoint), with a one-line
message on stderr.
"""
from __future__ import annotations

import argparse
import faulthandler
import gc
import json
import math
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from vizecg.contract import LABELS
from vizecg.page_reader import (
    IMAGE_SUFFIXES,
    UNSUPPORTED_IMAGE_SUFFIXES,
    PageReadError,
    check_page,
    cut_out_sheet,
    image_files_in,
    load_image,
    prepare_page,
)
from vizecg import shipped_model
# The bounds on what a model file may ask for live with the shipped-model reader, which applies
# them too; predict applies the same ones to checkpoints.
from vizecg.shipped_model import MAX_INPUT_SIDE, MAX_OPTION_INT, MAX_OPTION_ITEMS, ShippedModelError  # noqa: F401

DEFAULT_CHECKPOINT = Path("data/models/vizecgnet/best.pt")
DEFAULT_THRESHOLD = 0.5

EXIT_OK, EXIT_FILE_FAILED, EXIT_UNUSABLE = 0, 1, 2

FILE_TIME_LIMIT_S: float = 120.0
"""Default wall-clock limit for reading and preparing one file. A good page takes about a
second; the limit only stops a pathological file (a PDF page of millions of drawing operations,
a decoder loop) from holding up the run."""

FILE_MEMORY_LIMIT_BYTES: int = 1 << 30
"""Memory a reading process may allocate beyond what it inherits. The pixel caps of
:mod:`vizecg.page_reader` keep a page under about 0.3 GB; this limit turns anything that escapes
them into a clean "ran out of memory" for that file instead of the machine swapping."""


class PredictSetupError(RuntimeError):
    """Nothing can be predicted (unusable device or checkpoint). The message says what to do."""


@dataclass
class FileResult:
    """The outcome for one input file: probabilities in :data:`LABELS` order, or an error."""

    file: str
    probabilities: dict[str, float] | None = None
    positive: list[str] | None = None
    error: str | None = None
    explanation: str | None = None  # the --explain PNG, when one was written
    #: what the model's measurement head read off the page (name -> value in its unit, None where
    #: not finite); None without a head or when the file failed
    measurements: dict[str, float | None] | None = None

    def as_json(self) -> dict:
        entry = {"file": self.file, "probabilities": self.probabilities,
                 "positive": self.positive, "error": self.error}
        if self.measurements is not None:
            entry["measurements"] = self.measurements
        if self.explanation is not None:
            entry["explanation"] = self.explanation
        return entry


def _one_line(error: BaseException | str) -> str:
    """An exception or text as one short line (messages go to a terminal and into JSON)."""
    text = " ".join(str(error).split())
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if len(text) <= 400 else text[:397] + "..."


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

def expand_inputs(paths: Iterable[str | Path]) -> list[Path | FileResult]:
    """The files to classify, in argument order, with an error result for a folder holding none.

    A folder expands to its entries named like images (:func:`vizecg.page_reader.image_files_in`).
    Files are passed through whatever their suffix, so a mislabelled or broken file gets its own
    clear error from the reader.
    """
    items: list[Path | FileResult] = []
    for raw in paths:
        if str(raw) == "":  # Path("") is the current folder, which nobody means by an empty argument
            items.append(FileResult("", error="'': empty file name"))
            continue
        path = Path(raw)
        if not path.is_dir():
            items.append(path)
            continue
        try:
            found = image_files_in(path)
        except OSError as error:
            items.append(FileResult(str(path), error=f"{path}: folder cannot be listed ({error.strerror or error})"))
            continue
        if not found:
            suffixes = ", ".join(s.lstrip(".") for s in (*IMAGE_SUFFIXES, *UNSUPPORTED_IMAGE_SUFFIXES))
            items.append(FileResult(str(path), error=f"{path}: folder holds no image files ({suffixes})"))
        items.extend(found)
    return items


# ---------------------------------------------------------------------------------------------
# Device and model
# ---------------------------------------------------------------------------------------------

@dataclass
class ImageClassifier:
    """A checkpointed or shipped model ready for image-only inference, with its input size and thresholds."""

    model: torch.nn.Module
    checkpoint: Path             # the best.pt or the shipped model's model.json that was loaded
    image_height: int
    image_width: int
    label_order: list[int]       # position in the model's outputs of each label of LABELS
    thresholds: np.ndarray       # (6,) in LABELS order
    device: torch.device
    #: (name, centre, scale) per output of the model's measurement head; empty without one
    measurements: tuple[tuple[str, float, float], ...] = ()

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Sigmoid probabilities ``(B, 6)`` in :data:`LABELS` order for images ``(B, 3, H, W)``."""
        return self.read(batch)[0]

    @torch.inference_mode()
    def read(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(probabilities ``(B, 6)``, the measurement head's readings in their units ``(B, M)`` or
        ``None`` without a head) for images ``(B, 3, H, W)``."""
        outputs = self.model(image=torch.from_numpy(batch).to(self.device))
        probabilities = torch.sigmoid(outputs["logits"].float()).cpu().numpy()[:, self.label_order]
        if not self.measurements:
            return probabilities, None
        centre, scale = (np.array([column[k] for column in self.measurements]) for k in (1, 2))
        return probabilities, outputs["measurements"].float().cpu().numpy() * scale + centre


STUDY_ROOT = Path(__file__).resolve().parent.parent
"""The study folder this package lives in; its default checkpoint is used from any working directory."""


def _study_checkpoint() -> Path:
    """The default checkpoint of the study this package belongs to, when run from another folder."""
    candidate = STUDY_ROOT / DEFAULT_CHECKPOINT
    return candidate if candidate.is_file() else DEFAULT_CHECKPOINT


def shipped_model_dir() -> Path:
    """Where predict looks for the shipped model: :data:`vizecg.shipped_model.SHIPPED_MODEL_DIR`,
    taken in :data:`STUDY_ROOT` (the two name the same folder unless one of them is pointed elsewhere)."""
    shipped = shipped_model.SHIPPED_MODEL_DIR
    try:
        return STUDY_ROOT / shipped.relative_to(shipped_model.STUDY_ROOT)
    except ValueError:  # pointed outside the study folder: used as it is
        return shipped


def default_model() -> Path:
    """What predict loads without ``--checkpoint``: the shipped model folder when it exists, else
    the study's checkpoint (``data/models/vizecgnet/best.pt`` here, else in the study folder)."""
    shipped = shipped_model_dir()
    if shipped.is_dir():
        return shipped
    return DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.is_file() else _study_checkpoint()


def resolve_device(requested: str | torch.device | None) -> torch.device:
    """The torch device to run on: ``requested``, else cuda if available, else cpu.

    Checked before the checkpoint is read, so that a device that does not exist (``tpu9``), is
    not there (``cuda`` on a machine without a usable GPU) or does not work says so, instead of
    surfacing later as a "corrupt checkpoint" or a traceback.
    """
    with warnings.catch_warnings():  # a broken driver warns here; the outcome is reported in one line below
        warnings.simplefilter("ignore")
        cuda_available = torch.cuda.is_available()
    if requested is None or str(requested) == "":
        return torch.device("cuda" if cuda_available else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError, TypeError):
        raise PredictSetupError(f"--device {str(requested)!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not cuda_available:
            built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
            raise PredictSetupError(f"--device {requested}: no usable CUDA GPU on this machine "
                                    f"(torch {torch.__version__} {built}); use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise PredictSetupError(f"--device {requested}: this machine has {count} CUDA device(s), "
                                    f"numbered 0 to {count - 1}")
    try:  # any other kind (mps, xpu, meta, ...) must hold and return a tensor to be usable
        torch.zeros(1, device=device).add_(1).cpu()
    except Exception as error:
        raise PredictSetupError(f"--device {requested}: cannot be used here ({_one_line(error)})") from None
    return device


def _check_weights_fit(name: str, options: dict, state_dict: Mapping, checkpoint: Path) -> None:
    """Build the model on the ``meta`` device (no memory, no compute) and compare its tensor
    shapes with the stored weights, so that options that would build a different or huge model
    are refused before anything is allocated."""
    from vizecg.models import create_model

    try:
        with torch.device("meta"):
            skeleton = create_model(name, **options)
    except Exception as error:
        raise PredictSetupError(f"checkpoint {checkpoint}: cannot create model {name!r} with options {options} "
                                f"({_one_line(error)})") from None
    expected = {key: tuple(value.shape) for key, value in skeleton.state_dict().items()}
    stored = {key: tuple(value.shape) for key, value in state_dict.items() if isinstance(value, torch.Tensor)}
    missing = sorted(expected.keys() - stored.keys())
    unexpected = sorted(stored.keys() - expected.keys())
    reshaped = sorted(key for key in expected.keys() & stored.keys() if expected[key] != stored[key])
    if missing or unexpected or reshaped:
        example = (f"{reshaped[0]} is {stored[reshaped[0]]} in the file, {expected[reshaped[0]]} in the model"
                   if reshaped else f"e.g. {(missing or unexpected)[0]}")
        raise PredictSetupError(
            f"checkpoint {checkpoint}: weights do not fit model {name!r} with options {options}: "
            f"{len(missing)} missing, {len(unexpected)} unexpected, {len(reshaped)} of another shape ({example})")


def load_checkpoint_model(checkpoint: Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild an image or multimodal model from ``checkpoint`` on the CPU, in eval mode: ``(model, meta)``.

    Like :func:`vizecg.training.checkpoint.load_model`, but nothing from the file reaches a
    constructor unchecked: the model name must be registered and take images, the options must
    be small plain values, and the shapes they give (:func:`_check_weights_fit`) must match the
    stored weights. :class:`PredictSetupError` otherwise.
    """
    from vizecg.models import create_model
    from vizecg.training.checkpoint import CheckpointError, checkpoint_meta, read_checkpoint

    try:
        payload = read_checkpoint(checkpoint, map_location="cpu")  # moved to the device once checked
    except CheckpointError as error:
        raise PredictSetupError(_one_line(str(error))) from None
    meta = checkpoint_meta(payload)
    name = meta.get("model_name")
    source = f"checkpoint {checkpoint}"
    try:
        # The same checks a shipped model's JSON goes through, so both kinds of file are bounded alike.
        shipped_model.image_model_entry(name, source)
        options = shipped_model.check_model_options(meta.get("model_options") or {}, source)
    except ShippedModelError as error:
        raise PredictSetupError(_one_line(str(error))) from None
    state_dict = payload["state_dict"]
    if not isinstance(state_dict, Mapping):
        raise PredictSetupError(f"checkpoint {checkpoint}: 'state_dict' is not a mapping of tensors")
    _check_weights_fit(name, options, state_dict, checkpoint)
    try:
        model = create_model(name, **options)
        model.load_state_dict(state_dict)
    except Exception as error:
        raise PredictSetupError(f"checkpoint {checkpoint}: cannot rebuild model {name!r} "
                                f"({_one_line(error)})") from None
    return model.eval(), meta


def _checked_input_size(meta: dict, checkpoint: Path) -> tuple[int, int]:
    """The training image size recorded in the checkpoint, bounded (pages are resized to it)."""
    size = meta.get("input") if isinstance(meta.get("input"), dict) else {}
    height, width = size.get("image_height"), size.get("image_width")
    if not height or not width:
        raise PredictSetupError(f"checkpoint {checkpoint} does not record the training image size "
                                "(input.image_height / input.image_width)")
    try:
        return shipped_model.check_input_size(height, width, f"checkpoint {checkpoint}")
    except ShippedModelError as error:
        raise PredictSetupError(_one_line(str(error))) from None


def load_shipped(path: Path) -> tuple[torch.nn.Module, dict, Path]:
    """A shipped model (folder or ``model.json``) on the CPU, in eval mode: ``(model, meta, model.json)``."""
    meta_path = shipped_model.shipped_meta_path(path)
    try:
        model, meta = shipped_model.load_shipped_model(meta_path)
    except ShippedModelError as error:
        raise PredictSetupError(_one_line(str(error))) from None
    return model, meta, meta_path


def load_classifier(checkpoint: str | Path | None = None, *, device: str | torch.device | None = None,
                    threshold: float | None = None) -> ImageClassifier:
    """Load a model for image-only prediction; :class:`PredictSetupError` when unusable.

    ``checkpoint``: a study checkpoint (``best.pt``), a shipped-model folder or its
    ``model.json``; ``None`` for :func:`default_model`.
    """
    default = checkpoint is None
    checkpoint = default_model() if default else Path(checkpoint)
    if shipped_model.is_shipped_model(checkpoint):
        meta_path = shipped_model.shipped_meta_path(checkpoint)
        if not meta_path.is_file():  # checked before the device, like a missing checkpoint
            if default:
                raise PredictSetupError(
                    f"shipped model folder {checkpoint} holds no {shipped_model.META_FILE}: write one with "
                    f"`python -m vizecg.shipped_model data/models/vizecgnet/best.pt {checkpoint}`, remove the "
                    f"folder to use {DEFAULT_CHECKPOINT}, or pass --checkpoint PATH")
            load_shipped(checkpoint)  # raises, naming the file (and a best.pt beside it, if any)
        device = resolve_device(device)
        model, meta, checkpoint = load_shipped(checkpoint)
        return _classifier(model, meta, checkpoint, device, threshold)
    if checkpoint == DEFAULT_CHECKPOINT and not checkpoint.is_file():
        checkpoint = _study_checkpoint()
    if not checkpoint.is_file():
        if default:
            hint = (f"no shipped model in {shipped_model_dir()} either; run `dvc repro` in the study folder "
                    "to train one (then `python -m vizecg.shipped_model data/models/vizecgnet/best.pt "
                    f"{shipped_model_dir()}` ships it), or pass --checkpoint PATH")
        elif checkpoint == DEFAULT_CHECKPOINT:
            hint = "run `dvc repro` in the study folder to train it, or pass --checkpoint PATH"
        else:
            hint = "pass an existing --checkpoint PATH (a best.pt, a shipped-model folder or its model.json)"
        raise PredictSetupError(f"checkpoint {checkpoint} not found: {hint}")
    device = resolve_device(device)
    model, meta = load_checkpoint_model(checkpoint)
    return _classifier(model, meta, checkpoint, device, threshold)


def _classifier(model: torch.nn.Module, meta: dict, checkpoint: Path, device: torch.device,
                threshold: float | None) -> ImageClassifier:
    """The checks shared by checkpoints and shipped models, then the model on ``device``."""
    height, width = _checked_input_size(meta, checkpoint)
    stored_labels = meta.get("labels") or LABELS
    model_labels = list(stored_labels) if isinstance(stored_labels, (list, tuple)) else None
    if model_labels is None or sorted(map(str, model_labels)) != sorted(LABELS):
        raise PredictSetupError(f"checkpoint {checkpoint} predicts labels {stored_labels}, expected {list(LABELS)}")
    label_order = [model_labels.index(label) for label in LABELS]
    thresholds = resolve_thresholds(meta, threshold, checkpoint)
    try:
        model.to(device)
    except Exception as error:  # e.g. the GPU is out of memory
        raise PredictSetupError(f"cannot move the model to {device} ({_one_line(error)})") from None
    return ImageClassifier(model, checkpoint, height, width, label_order, thresholds, device,
                           tuple(_measurement_columns(model, meta, checkpoint)))


def _measurement_columns(model: torch.nn.Module, meta: dict, checkpoint: Path) -> list[tuple[str, float, float]]:
    """How to read the model's measurement head: as a shipped model's ``model.json`` lists it, or for
    a study checkpoint the constants it was trained with (:data:`MEASUREMENT_TARGETS`)."""
    options = {"measurement_outputs": getattr(model, "measurement_outputs", 0)}
    shipped = meta.get("format") == shipped_model.FORMAT
    try:
        if not shipped:  # a study checkpoint: read as the shipped folder written from it would say
            meta = {"measurements": shipped_model.measurement_output_spec(options)}
        return shipped_model.measurement_columns(meta, options, checkpoint) or []
    except ShippedModelError as error:  # the shipped model's message names its file already
        raise PredictSetupError(_one_line(str(error) if shipped else f"checkpoint {checkpoint}: {error}")) from None


def resolve_thresholds(meta: dict, override: float | None, source: Path | str = "checkpoint") -> np.ndarray:
    """Per-class thresholds in :data:`LABELS` order: ``override``, else ``meta["thresholds"]``
    (a ``{label: t}`` dict or a sequence in the checkpoint's label order), else 0.5."""
    if override is not None:
        return np.full(len(LABELS), float(override))
    stored = meta.get("thresholds")
    if stored is None:
        return np.full(len(LABELS), DEFAULT_THRESHOLD)
    try:
        if isinstance(stored, dict):
            missing = [label for label in LABELS if label not in stored]
            if missing:
                raise PredictSetupError(f"{source}: stored thresholds lack labels {missing}")
            values = np.array([float(stored[label]) for label in LABELS])
        else:
            stored_values = [float(v) for v in stored]
            model_labels = list(meta.get("labels") or LABELS)
            if len(stored_values) != len(model_labels):
                raise PredictSetupError(f"{source}: {len(stored_values)} stored thresholds "
                                        f"for {len(model_labels)} labels")
            values = np.array([stored_values[model_labels.index(label)] for label in LABELS])
    except (TypeError, ValueError) as error:
        raise PredictSetupError(f"{source}: stored thresholds are not numbers per label ({_one_line(error)})") from None
    if not np.all((values >= 0.0) & (values <= 1.0)):
        raise PredictSetupError(f"{source}: stored thresholds {values.tolist()} are not all in [0, 1]")
    return values


# ---------------------------------------------------------------------------------------------
# Reading and preparing one file
# ---------------------------------------------------------------------------------------------

def _prepare_file(path: Path, height: int, width: int, ecg_check: bool) -> np.ndarray | str:
    """Model input for one file, or the error message (naming the file) why there is none. Never raises."""
    stage = "reading"
    try:
        image = load_image(path)
        stage = "finding the sheet"
        sheet = cut_out_sheet(image)  # shared by the check and the preparation: found once
        if ecg_check:
            stage = "checking the page"
            accepted, reason, _, sheet = check_page(image, sheet=sheet)
            if not accepted:
                return f"{path}: does not look like an ECG page ({reason}); use --no-ecg-check to classify it anyway"
        stage = "preprocessing"
        array = prepare_page(image, height, width, sheet=sheet)
    except PageReadError as error:
        return str(error)
    except MemoryError:
        return f"{path}: ran out of memory while {stage}"
    except cv2.error as error:
        return f"{path}: {stage} failed in OpenCV ({_one_line(str(error))})"
    except Exception as error:
        return f"{path}: {stage} failed ({_one_line(error)})"
    if not np.isfinite(array).all():
        return f"{path}: preprocessing gave non-finite pixel values"
    return array


@dataclass(frozen=True)
class _Job:
    """A file being prepared in its own process."""

    index: int
    path: Path
    process: Any  # multiprocessing.Process (fork context)
    deadline: float


def _data_segment_bytes() -> int | None:
    """This process's data segment (``VmData``, the size RLIMIT_DATA limits), or ``None`` off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _limit_memory(extra_bytes: int) -> None:
    """Let this (reading) process allocate at most ``extra_bytes`` beyond what it inherited:
    allocations past it fail as MemoryError / cv2 "Insufficient memory" and become that file's error."""
    try:
        import resource
    except ImportError:
        return
    current = _data_segment_bytes()
    if current is None:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = current + extra_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    except (ValueError, OSError):
        pass


def _reader_process_main(sender: Connection, path: Path, height: int, width: int, ecg_check: bool,
                         memory_bytes: int) -> None:
    """Body of a reading process: prepare one file, send its outcome, never raise.

    Standard output and error point to /dev/null: image and PDF libraries may print (libtiff
    warnings), which must not mix into the JSON on stdout; the outcome travels on ``sender``.
    A crash is reported by the parent from the exit signal, so no fault handler dumps a stack
    here; Ctrl-C is left to the parent, which stops its readers.
    """
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        faulthandler.disable()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        _limit_memory(memory_bytes)
        outcome: np.ndarray | str = _prepare_file(path, height, width, ecg_check)
    except MemoryError:
        outcome = f"{path}: ran out of memory (limit {memory_bytes / 2**30:.1f} GiB per file)"
    except BaseException as error:  # noqa: BLE001 - the process must report, not print a traceback
        outcome = f"{path}: reading failed ({_one_line(error)})"
    try:
        sender.send(outcome)
    except BaseException:  # noqa: BLE001 - the parent reports a process that sent nothing
        pass
    finally:
        sender.close()


def _finished_outcome(job: _Job, receiver: Connection) -> np.ndarray | str:
    """What a reading process sent, or why it sent nothing (a crash: signal or exit code)."""
    try:
        outcome = receiver.recv()
    except (EOFError, OSError):
        outcome = None
    finally:
        receiver.close()
    job.process.join(timeout=10)
    if job.process.is_alive():  # sent its outcome but does not exit: do not wait for it
        job.process.kill()
        job.process.join()
    if outcome is not None:
        return outcome
    code = job.process.exitcode
    if code is not None and code < 0:
        try:
            cause = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            cause = f"killed by signal {-code}"
        if -code == signal.SIGKILL:
            cause += " (out of memory?)"
    else:
        cause = f"exit status {code}"
    return f"{job.path}: the image reader crashed on this file ({cause})"


def _prepared_in_processes(files: Sequence[Path], height: int, width: int, ecg_check: bool, workers: int,
                           seconds: float, memory_bytes: int) -> Iterator[tuple[int, np.ndarray | str]]:
    """``(index, outcome)`` of every file as each finishes, each prepared in a forked process.

    At most ``workers`` processes run at once; one past ``seconds`` is killed and its file gets
    a time-limit error. A process forked per file costs ~10 ms and gives each file a fresh
    address space, so no file can take the run, or another file's result, down with it.
    """
    context = multiprocessing.get_context("fork")
    # Garbage the caller left (e.g. a finished DataLoader iterator in a reference cycle) would be
    # inherited by every reader and collected there, where a loader iterator's __del__ fails loudly
    # ("can only test a child process"): collect it once here, before the first fork.
    gc.collect()
    waiting = deque(enumerate(files))
    running: dict[Connection, _Job] = {}
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                index, path = waiting.popleft()
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(target=_reader_process_main, daemon=True,
                                          args=(sender, path, height, width, ecg_check, memory_bytes))
                process.start()
                sender.close()  # only the child writes: its exit then shows here as end of file
                running[receiver] = _Job(index, path, process, time.monotonic() + seconds)
            timeout = max(0.0, min(job.deadline for job in running.values()) - time.monotonic())
            for receiver in wait(list(running), timeout=timeout):
                job = running.pop(receiver)
                yield job.index, _finished_outcome(job, receiver)
            now = time.monotonic()
            for receiver, job in list(running.items()):
                if now >= job.deadline:
                    del running[receiver]
                    job.process.kill()
                    job.process.join()
                    receiver.close()
                    yield job.index, (f"{job.path}: gave up after {seconds:g} s (the per-file time limit, "
                                      "--file-timeout)")
    finally:  # interrupted (Ctrl-C, an error in the caller): leave no reader behind
        for receiver, job in running.items():
            job.process.kill()
            job.process.join()
            receiver.close()


def _prepared_in_threads(files: Sequence[Path], height: int, width: int, ecg_check: bool,
                         workers: int) -> Iterator[tuple[int, np.ndarray | str]]:
    """``(index, outcome)`` in file order, prepared in a thread pool of this process: where
    processes cannot be forked. No time or memory limit beyond the readers' pixel caps."""
    if workers <= 1:
        for index, path in enumerate(files):
            yield index, _prepare_file(path, height, width, ecg_check)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:  # OpenCV and Pillow release the GIL
        yield from enumerate(pool.map(lambda p: _prepare_file(p, height, width, ecg_check), files))


def can_isolate_files() -> bool:
    """Whether files can be read in forked processes (POSIX) rather than threads."""
    return "fork" in multiprocessing.get_all_start_methods()


# ---------------------------------------------------------------------------------------------
# Prediction
# ---------------------------------------------------------------------------------------------

def predict_files(files: Sequence[Path], classifier: ImageClassifier, *, ecg_check: bool = True,
                  batch_size: int = 16, workers: int | None = None, progress: bool | None = None,
                  file_timeout: float = FILE_TIME_LIMIT_S, isolate: bool | None = None,
                  explain_dir: str | Path | None = None) -> list[FileResult]:
    """Classify ``files``: one result per file, in order; a failing file gets an error result
    and does not stop the rest. Never raises for a file's sake.

    With ``explain_dir`` each classified page also gets ``explain_dir/<name>.attention.png``:
    the page as the model saw it with the image stream's CMAM and SMAM maps over it
    (:func:`vizecg.explain.write_explanation`); a map that cannot be drawn costs the picture
    only, never the probabilities.

    Pages are read and prepared by ``workers`` readers (default ``min(4, CPUs)``) while the
    model runs batches of ``batch_size``. With ``isolate`` (the default where the platform can
    fork) each file is read in its own process limited to ``file_timeout`` seconds and
    :data:`FILE_MEMORY_LIMIT_BYTES`; otherwise in threads of this process.
    """
    workers = max(1, workers or min(4, os.cpu_count() or 1))
    isolate = can_isolate_files() if isolate is None else isolate
    results: list[FileResult] = [FileResult(str(path)) for path in files]
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        if not pending:
            return
        try:
            probabilities, measurements = classifier.read(np.stack([array for _, array in pending]))
        except Exception as error:  # the model or device failed (e.g. GPU out of memory): these files only
            for index, _ in pending:
                results[index].error = f"{files[index]}: the model failed on this batch ({_one_line(error)})"
            pending.clear()
            return
        for (index, _), row in zip(pending, probabilities):
            if not np.isfinite(row).all():
                results[index].error = f"{files[index]}: the model returned non-finite probabilities"
                continue
            results[index].probabilities = {label: float(p) for label, p in zip(LABELS, row)}
            results[index].positive = [label for label, p, t in zip(LABELS, row, classifier.thresholds) if p >= t]
        if measurements is not None:
            names = [name for name, _, _ in classifier.measurements]
            for (index, _), row in zip(pending, measurements):
                if results[index].probabilities is not None:
                    results[index].measurements = {name: round(float(v), 3) if np.isfinite(v) else None
                                                   for name, v in zip(names, row)}
        if explain_dir is not None:
            explain([(index, array) for index, array in pending if results[index].error is None])
        pending.clear()

    names = explanation_names(files) if explain_dir is not None else []

    def explain(batch: list[tuple[int, np.ndarray]]) -> None:
        from vizecg.explain import attention_maps, image_path_maps, write_explanation

        if not batch:
            return
        try:
            outputs = attention_maps(classifier.model, None, torch.from_numpy(np.stack([a for _, a in batch]))
                                     .to(classifier.device))
        except Exception as error:  # e.g. a model without attention maps: the pictures only
            for index, _ in batch:
                print(f"warning: {files[index]}: no attention picture ({_one_line(error)})", file=sys.stderr)
            return
        for item, (index, array) in enumerate(batch):
            try:
                target = Path(explain_dir) / names[index]
                write_explanation(target, array, image_path_maps(outputs, item), results[index].probabilities,
                                  results[index].positive, title=str(files[index]))
                results[index].explanation = str(target)
            except Exception as error:
                print(f"warning: {files[index]}: no attention picture ({_one_line(error)})", file=sys.stderr)

    size = (classifier.image_height, classifier.image_width)
    if isolate:
        outcomes = _prepared_in_processes(files, *size, ecg_check, workers, file_timeout, FILE_MEMORY_LIMIT_BYTES)
    else:
        outcomes = _prepared_in_threads(files, *size, ecg_check, workers)
    # The model's output for a page does not depend on its batch (eval mode), so pages are
    # batched in the order they finish; results stay in file order through their index.
    with tqdm(total=len(files), desc="predict", unit="file", file=sys.stderr,
              disable=(not progress) if progress is not None else None) as bar:
        for index, outcome in outcomes:
            bar.update()
            if isinstance(outcome, str):
                results[index].error = outcome
            else:
                pending.append((index, outcome))
                if len(pending) >= batch_size:
                    flush()
    flush()
    return results


def explanation_names(files: Sequence[Path]) -> list[str]:
    """``<stem>.attention.png`` per file, with the file's position added where two stems clash
    (``scans/a.png`` and ``photos/a.jpg``)."""
    from collections import Counter

    stems = [Path(f).stem for f in files]
    counts = Counter(stems)
    return [f"{stem}.attention.png" if counts[stem] == 1 else f"{stem}.{i}.attention.png"
            for i, stem in enumerate(stems)]


CSV_COLUMNS = ("file", *(f"p_{label}" for label in LABELS), "positive", "error")


def write_csv(results: Sequence[FileResult], path: str | Path) -> Path:
    """One row per file for spreadsheets: probabilities (empty when it failed), the positive labels
    joined by ``;`` and the error; then, for a model with a measurement head, one column per
    measurement (``m_<name>``)."""
    import csv

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    measured = next((list(r.measurements) for r in results if r.measurements is not None), [])
    with path.open("w", newline="", encoding="utf-8", errors="backslashreplace") as handle:
        writer = csv.writer(handle)
        writer.writerow([*CSV_COLUMNS, *(f"m_{name}" for name in measured)])
        for result in results:
            probabilities, measurements = result.probabilities or {}, result.measurements or {}
            writer.writerow([result.file, *(f"{probabilities[label]:.6f}" if label in probabilities else ""
                                            for label in LABELS),
                             ";".join(result.positive) if result.positive is not None else "", result.error or "",
                             *("" if measurements.get(name) is None else f"{measurements[name]:g}"
                               for name in measured)])
    return path


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vizecg.predict",
        description="Per-disease probabilities (1dAVb, RBBB, LBBB, SB, AF, ST) from images of printed 12-lead ECGs.",
        epilog="Exit status: 0 all files classified, 1 some file failed (others still processed), "
               "2 nothing could run (arguments, device, model).")
    parser.add_argument("inputs", nargs="+", metavar="IMAGE",
                        help="image files (PNG, JPEG, BMP, TIFF, GIF, WebP, PDF) or folders of them")
    parser.add_argument("--checkpoint", type=Path, default=None, metavar="PATH",
                        help="a study checkpoint (best.pt), a shipped-model folder or its model.json (default: "
                             f"the shipped model {shipped_model_dir()} if it exists, else {DEFAULT_CHECKPOINT}, "
                             "written by `dvc repro`)")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.add_argument("--csv", type=Path, default=None, metavar="FILE",
                        help="also write one CSV row per file (probabilities, positive labels, error) to FILE")
    parser.add_argument("--explain", type=Path, default=None, metavar="DIR",
                        help="also write DIR/<name>.attention.png per classified page: the page as the model "
                             "saw it with the image stream's attention (CMAM, SMAM) over it")
    parser.add_argument("--threshold", type=float, default=None,
                        help="one probability threshold for all labels (default: the checkpoint's "
                             "per-class thresholds, else 0.5)")
    parser.add_argument("--no-ecg-check", action="store_true",
                        help="classify every readable image, even if it does not look like an ECG page")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per model call (default 16)")
    parser.add_argument("--workers", type=int, default=None,
                        help="files read and prepared at once (default: min(4, CPUs))")
    parser.add_argument("--file-timeout", type=float, default=FILE_TIME_LIMIT_S, metavar="SECONDS",
                        help=f"give up on a file after this long (default {FILE_TIME_LIMIT_S:g} s)")
    return parser


def _printable(text: str) -> str:
    """``text`` safe for any terminal encoding: a file name that is not valid UTF-8 holds lone
    surrogates, which are shown as escapes instead of stopping the output."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def format_result(result: FileResult) -> str:
    """One human-readable line for a classified file."""
    assert result.probabilities is not None
    values = "  ".join(f"{label} {result.probabilities[label]:.3f}" for label in LABELS)
    positive = ", ".join(result.positive or []) or "none"
    read = "  read: " + ", ".join(f"{name} {value:g}" for name, value in result.measurements.items()
                                  if value is not None) if result.measurements else ""
    return f"{_printable(result.file)}: {values}  positive: {positive}{read}"


def _argument_error(args: argparse.Namespace) -> str | None:
    """The one-line complaint about an option value, if any."""
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        return f"--threshold must be in [0, 1], got {args.threshold}"
    if args.batch_size < 1:
        return f"--batch-size must be at least 1, got {args.batch_size}"
    if args.workers is not None and args.workers < 1:
        return f"--workers must be at least 1, got {args.workers}"
    if not (args.file_timeout > 0 and math.isfinite(args.file_timeout)):
        return f"--file-timeout must be a positive number of seconds, got {args.file_timeout}"
    if args.csv is not None and args.csv.is_dir():
        return f"--csv {args.csv} is a folder; give a file name"
    if args.explain is not None and args.explain.exists() and not args.explain.is_dir():
        return f"--explain {args.explain} is a file; give a folder"
    return None


def run(args: argparse.Namespace) -> int:
    """The command once its arguments are parsed (see :func:`main`)."""
    problem = _argument_error(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_UNUSABLE
    try:
        classifier = load_classifier(args.checkpoint, device=args.device, threshold=args.threshold)
    except PredictSetupError as error:
        print(f"error: {_one_line(str(error))}", file=sys.stderr)
        return EXIT_UNUSABLE
    items = expand_inputs(args.inputs)
    files = [item for item in items if isinstance(item, Path)]
    predicted = iter(predict_files(files, classifier, ecg_check=not args.no_ecg_check, batch_size=args.batch_size,
                                   workers=args.workers, file_timeout=args.file_timeout,
                                   explain_dir=args.explain))
    results = [next(predicted) if isinstance(item, Path) else item for item in items]
    if args.csv is not None:
        try:
            write_csv(results, args.csv)
        except OSError as error:
            print(f"error: cannot write --csv {args.csv}: {_one_line(error)}", file=sys.stderr)
            return EXIT_UNUSABLE
    for result in results:
        if result.error:
            print(f"error: {_printable(result.error)}", file=sys.stderr)
    if args.json:
        document = {"labels": list(LABELS), "checkpoint": str(classifier.checkpoint),
                    "thresholds": {label: float(t) for label, t in zip(LABELS, classifier.thresholds)},
                    "results": [result.as_json() for result in results]}
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for result in results:
            if result.error is None:
                print(format_result(result))
    failed = sum(result.error is not None for result in results)
    if failed and not args.json:
        print(f"{failed} of {len(results)} file(s) could not be classified", file=sys.stderr)
    return EXIT_FILE_FAILED if failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status. Prints a one-line error, never a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except Exception as error:  # a bug, not a bad file: still one line and a status the caller can act on
        print(f"error: internal error, please report it ({_one_line(error)})", file=sys.stderr)
        return EXIT_UNUSABLE


if __name__ == "__main__":
    sys.exit(main())
