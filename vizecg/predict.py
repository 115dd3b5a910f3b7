"""Classify printed, scanned or photographed 12-lead ECGs from image files.

Usage::

    python -m vizecg.predict IMAGE_OR_FOLDER [...] [--checkpoint PATH] [--json]
                             [--threshold T] [--no-ecg-check] [--device cpu|cuda]

Every argument is an image file (PNG, JPEG, BMP, TIFF, or PDF: first page) or a folder,
which expands to the image files directly inside it (sorted, suffix case ignored). Each
page is read and checked (:func:`vizecg.page_reader.looks_like_ecg`), prepared as
:func:`vizecg.page_reader.prepare_page` documents (paper found, perspective and rotation
corrected, paper normalised, resized to the checkpoint's training size) and classified by
the image stream alone (``model(image=batch)["logits"]``, sigmoid): no signal is needed.

The checkpoint defaults to ``data/models/vizecgnet/best.pt`` under the current folder, the
VizECGNet that ``dvc repro`` trains. A label is positive when its probability reaches its
threshold: ``--threshold`` if given, else the per-class thresholds stored in the checkpoint
under ``"thresholds"`` (tuned on validation), else 0.5.

Output: a line per file (probabilities in the order 1dAVb, RBBB, LBBB, SB, AF, ST, then
the positive labels), or with ``--json`` a single JSON document on stdout::

    {"labels": [...], "checkpoint": "...", "thresholds": {...},
     "results": [{"file": "...", "probabilities": {"1dAVb": p, ...}, "positive": [...],
                  "error": null}, ...]}

A file that cannot be classified (missing, empty, not an image, corrupt, too small, or not
looking like an ECG page) gets ``"error": "<message>"`` with ``"probabilities": null`` and
``"positive": null``, a message naming it on stderr, and the other files are still
processed. Exit status: 0 when every file was classified, 1 when any file failed, 2 when
nothing could run (bad arguments, missing or unusable checkpoint).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from vizecg.contract import LABELS
from vizecg.page_reader import IMAGE_SUFFIXES, PageReadError, image_files_in, load_image, looks_like_ecg, prepare_page

DEFAULT_CHECKPOINT = Path("data/models/vizecgnet/best.pt")
DEFAULT_THRESHOLD = 0.5

EXIT_OK, EXIT_FILE_FAILED, EXIT_UNUSABLE = 0, 1, 2


class PredictSetupError(RuntimeError):
    """Nothing can be predicted (no usable checkpoint). The message says what to do."""


@dataclass
class FileResult:
    """The outcome for one input file: probabilities in :data:`LABELS` order, or an error."""

    file: str
    probabilities: dict[str, float] | None = None
    positive: list[str] | None = None
    error: str | None = None

    def as_json(self) -> dict:
        return {"file": self.file, "probabilities": self.probabilities,
                "positive": self.positive, "error": self.error}


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

def expand_inputs(paths: Iterable[str | Path]) -> list[Path | FileResult]:
    """The files to classify, in argument order, with an error result for a folder holding none.

    A folder expands to its image files (:func:`vizecg.page_reader.image_files_in`). Files are
    passed through whatever their suffix, so a mislabelled or broken file gets its own clear
    error from the reader.
    """
    items: list[Path | FileResult] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = image_files_in(path)
            if not found:
                suffixes = ", ".join(s.lstrip(".") for s in IMAGE_SUFFIXES)
                items.append(FileResult(str(path), error=f"{path}: folder holds no image files ({suffixes})"))
            items.extend(found)
        else:
            items.append(path)
    return items


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------

@dataclass
class ImageClassifier:
    """A checkpointed model ready for image-only inference, with its input size and thresholds."""

    model: torch.nn.Module
    checkpoint: Path
    image_height: int
    image_width: int
    label_order: list[int]       # position in the model's outputs of each label of LABELS
    thresholds: np.ndarray       # (6,) in LABELS order
    device: torch.device

    @torch.inference_mode()
    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Sigmoid probabilities ``(B, 6)`` in :data:`LABELS` order for images ``(B, 3, H, W)``."""
        images = torch.from_numpy(batch).to(self.device)
        logits = self.model(image=images)["logits"].float()
        return torch.sigmoid(logits).cpu().numpy()[:, self.label_order]


STUDY_ROOT = Path(__file__).resolve().parent.parent
"""The study folder this package lives in; its default checkpoint is used from any working directory."""


def _study_checkpoint() -> Path:
    """The default checkpoint of the study this package belongs to, when run from another folder."""
    candidate = STUDY_ROOT / DEFAULT_CHECKPOINT
    return candidate if candidate.is_file() else DEFAULT_CHECKPOINT


def load_classifier(checkpoint: str | Path, *, device: str | torch.device | None = None,
                    threshold: float | None = None) -> ImageClassifier:
    """Load ``checkpoint`` for image-only prediction; :class:`PredictSetupError` when unusable."""
    from vizecg.training.checkpoint import CheckpointError, load_model

    checkpoint = Path(checkpoint)
    if checkpoint == DEFAULT_CHECKPOINT and not checkpoint.is_file():
        checkpoint = _study_checkpoint()
    if not checkpoint.is_file():
        hint = ("run `dvc repro` in the study folder to train it, or pass --checkpoint PATH"
                if checkpoint == DEFAULT_CHECKPOINT else "pass an existing --checkpoint PATH")
        raise PredictSetupError(f"checkpoint {checkpoint} not found: {hint}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        model, meta = load_model(checkpoint, map_location=device)
    except CheckpointError as error:
        raise PredictSetupError(str(error)) from None
    if getattr(model, "input_kind", "image") == "signal":
        raise PredictSetupError(
            f"checkpoint {checkpoint} holds the signal-only model {meta.get('model_name')!r}; "
            "prediction from images needs an image or multimodal model")
    size = dict(meta.get("input") or {})
    if not size.get("image_height") or not size.get("image_width"):
        raise PredictSetupError(f"checkpoint {checkpoint} does not record the training image size "
                                "(input.image_height / input.image_width)")
    model_labels = list(meta.get("labels") or LABELS)
    if sorted(model_labels) != sorted(LABELS):
        raise PredictSetupError(f"checkpoint {checkpoint} predicts labels {model_labels}, expected {list(LABELS)}")
    label_order = [model_labels.index(label) for label in LABELS]
    return ImageClassifier(model, checkpoint, int(size["image_height"]), int(size["image_width"]),
                           label_order, resolve_thresholds(meta, threshold, checkpoint), device)


def resolve_thresholds(meta: dict, override: float | None, source: Path | str = "checkpoint") -> np.ndarray:
    """Per-class thresholds in :data:`LABELS` order: ``override``, else ``meta["thresholds"]``
    (a ``{label: t}`` dict or a sequence in the checkpoint's label order), else 0.5."""
    if override is not None:
        return np.full(len(LABELS), float(override))
    stored = meta.get("thresholds")
    if stored is None:
        return np.full(len(LABELS), DEFAULT_THRESHOLD)
    if isinstance(stored, dict):
        missing = [label for label in LABELS if label not in stored]
        if missing:
            raise PredictSetupError(f"{source}: stored thresholds lack labels {missing}")
        return np.array([float(stored[label]) for label in LABELS])
    values = [float(v) for v in stored]
    model_labels = list(meta.get("labels") or LABELS)
    if len(values) != len(model_labels):
        raise PredictSetupError(f"{source}: {len(values)} stored thresholds for {len(model_labels)} labels")
    return np.array([values[model_labels.index(label)] for label in LABELS])


# ---------------------------------------------------------------------------------------------
# Prediction
# ---------------------------------------------------------------------------------------------

def _prepare_file(path: Path, height: int, width: int, ecg_check: bool) -> np.ndarray | str:
    """Model input for one file, or the error message (naming the file) why there is none."""
    try:
        image = load_image(path)
    except PageReadError as error:
        return str(error)
    if ecg_check:
        accepted, reason, _ = looks_like_ecg(image)
        if not accepted:
            return f"{path}: does not look like an ECG page ({reason}); use --no-ecg-check to classify it anyway"
    try:
        return prepare_page(image, height, width)
    except (ValueError, MemoryError) as error:  # cv2.error is not raised by these steps on valid RGB
        return f"{path}: preprocessing failed ({error})"


def predict_files(files: Sequence[Path], classifier: ImageClassifier, *, ecg_check: bool = True,
                  batch_size: int = 16, workers: int | None = None, progress: bool | None = None) -> list[FileResult]:
    """Classify ``files`` in order; a failing file gets an error result and does not stop the rest.

    Pages are read and prepared in a small thread pool (OpenCV and Pillow release the GIL)
    while the model runs batches of ``batch_size``.
    """
    workers = workers or min(4, os.cpu_count() or 1)
    results: list[FileResult] = [FileResult(str(path)) for path in files]
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        if not pending:
            return
        batch = np.stack([array for _, array in pending])
        probabilities = classifier.probabilities(batch)
        for (index, _), row in zip(pending, probabilities):
            results[index].probabilities = {label: float(p) for label, p in zip(LABELS, row)}
            results[index].positive = [label for label, p, t in zip(LABELS, row, classifier.thresholds) if p >= t]
        pending.clear()

    def prepared() -> Iterator[np.ndarray | str]:
        if workers <= 1:
            for path in files:
                yield _prepare_file(path, classifier.image_height, classifier.image_width, ecg_check)
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            yield from pool.map(lambda p: _prepare_file(p, classifier.image_height, classifier.image_width,
                                                        ecg_check), files)

    bar = tqdm(prepared(), total=len(files), desc="predict", unit="file", file=sys.stderr,
               disable=(not progress) if progress is not None else None)
    for index, outcome in enumerate(bar):
        if isinstance(outcome, str):
            results[index].error = outcome
        else:
            pending.append((index, outcome))
            if len(pending) >= batch_size:
                flush()
    flush()
    return results


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vizecg.predict",
        description="Per-disease probabilities (1dAVb, RBBB, LBBB, SB, AF, ST) from images of printed 12-lead ECGs.",
        epilog="Exit status: 0 all files classified, 1 some file failed (others still processed), "
               "2 nothing could run (arguments, checkpoint).")
    parser.add_argument("inputs", nargs="+", metavar="IMAGE",
                        help="image files (PNG, JPEG, BMP, TIFF, PDF) or folders of them")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT,
                        help=f"model checkpoint (default: {DEFAULT_CHECKPOINT}, written by `dvc repro`)")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.add_argument("--threshold", type=float, default=None,
                        help="one probability threshold for all labels (default: the checkpoint's "
                             "per-class thresholds, else 0.5)")
    parser.add_argument("--no-ecg-check", action="store_true",
                        help="classify every readable image, even if it does not look like an ECG page")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per model call (default 16)")
    parser.add_argument("--workers", type=int, default=None,
                        help="threads reading and preparing pages (default: min(4, CPUs))")
    return parser


def format_result(result: FileResult) -> str:
    """One human-readable line for a classified file."""
    assert result.probabilities is not None
    values = "  ".join(f"{label} {result.probabilities[label]:.3f}" for label in LABELS)
    positive = ", ".join(result.positive or []) or "none"
    return f"{result.file}: {values}  positive: {positive}"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        print(f"error: --threshold must be in [0, 1], got {args.threshold}", file=sys.stderr)
        return EXIT_UNUSABLE
    if args.batch_size < 1:
        print(f"error: --batch-size must be at least 1, got {args.batch_size}", file=sys.stderr)
        return EXIT_UNUSABLE
    try:
        classifier = load_classifier(args.checkpoint, device=args.device, threshold=args.threshold)
    except PredictSetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    items = expand_inputs(args.inputs)
    files = [item for item in items if isinstance(item, Path)]
    predicted = iter(predict_files(files, classifier, ecg_check=not args.no_ecg_check,
                                   batch_size=args.batch_size, workers=args.workers))
    results = [next(predicted) if isinstance(item, Path) else item for item in items]
    for result in results:
        if result.error:
            print(f"error: {result.error}", file=sys.stderr)
    if args.json:
        document = {"labels": list(LABELS), "checkpoint": str(args.checkpoint),
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


if __name__ == "__main__":
    sys.exit(main())
