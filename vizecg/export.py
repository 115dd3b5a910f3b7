"""Export the image-only model that ``predict`` uses to ONNX.

Usage::

    python -m vizecg.export --onnx model.onnx [--checkpoint PATH] [--opset 17] [--no-verify]

``--checkpoint`` takes what ``python -m vizecg.predict --checkpoint`` takes (a study ``best.pt``,
a shipped-model folder or its ``model.json``) and defaults to the same model as predict
(:func:`vizecg.predict.default_model`). The ONNX graph has

* input ``image``: float32 ``(batch, 3, H, W)`` in [0, 1] (a page prepared by
  :func:`vizecg.page_reader.prepare_page` at the model's training size ``H x W``, which the
  command prints; ImageNet normalisation is inside the graph), ``batch`` dynamic;
* output ``logits``: float32 ``(batch, 6)``, pre-sigmoid, in the order of
  :data:`vizecg.contract.LABELS` (1dAVb, RBBB, LBBB, SB, AF, ST) whatever the model's own order;
* for a model with a measurement head, output ``measurements``: float32 ``(batch, M)``, what
  predict reports as ``"measurements"`` (in each measurement's unit; names in the metadata).

The model's labels, per-class thresholds and input size are also stored in the ONNX
``metadata_props``. The exporter is torch's TorchScript-based one (``dynamo=False``): the
torch.export-based exporter needs the ``onnxscript`` package, which the study does not install;
the graph is traced at a batch of 2 and, unless ``--no-verify``, checked against torch with
onnxruntime at batches 1 and 3.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from vizecg.contract import LABELS
from vizecg.predict import ImageClassifier, PredictSetupError, load_classifier

DEFAULT_OPSET = 17
"""ONNX opset of the export: the first with a LayerNormalization operator; torch 2.14's
TorchScript exporter and onnxruntime 1.32 both support it."""
VERIFY_TOLERANCE = 1e-4
"""Largest absolute logit difference between onnxruntime and torch that verification accepts."""


class ImageLogits(nn.Module):
    """``image (B, 3, H, W) in [0, 1] -> logits (B, 6)`` in :data:`LABELS` order: the traced graph.
    With ``measurements`` (``(name, centre, scale)`` per output of the model's measurement head) it
    returns ``(logits, measurements (B, M))``, the readings in their units as predict reports them."""

    def __init__(self, model: nn.Module, label_order: Sequence[int],
                 measurements: Sequence[tuple[str, float, float]] = ()) -> None:
        super().__init__()
        self.model = model
        self.reorder = list(label_order) != list(range(len(label_order)))
        self.register_buffer("label_order", torch.tensor(list(label_order), dtype=torch.long), persistent=False)
        self.measured = bool(measurements)
        self.register_buffer("centre", torch.tensor([c for _, c, _ in measurements]), persistent=False)
        self.register_buffer("scale", torch.tensor([s for _, _, s in measurements]), persistent=False)

    def forward(self, image: torch.Tensor):
        outputs = self.model(image=image)
        logits = outputs["logits"][:, self.label_order] if self.reorder else outputs["logits"]
        if not self.measured:
            return logits
        return logits, outputs["measurements"] * self.scale + self.centre


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote."""

    onnx: Path
    source: Path               # the best.pt or model.json exported
    image_height: int
    image_width: int
    opset: int
    max_abs_diff: float | None  # onnxruntime vs torch on random pages; None when not verified


def export_classifier(classifier: ImageClassifier, onnx_path: str | Path, *, opset: int = DEFAULT_OPSET,
                      verify: bool = True) -> ExportReport:
    """Export a loaded :class:`vizecg.predict.ImageClassifier` (on the CPU) to ``onnx_path``."""
    onnx_path = Path(onnx_path)
    height, width = classifier.image_height, classifier.image_width
    wrapper = ImageLogits(classifier.model.to("cpu").eval(), classifier.label_order, classifier.measurements).eval()
    outputs = ["logits", "measurements"] if classifier.measurements else ["logits"]
    example = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(0))
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{onnx_path.name}.", suffix=".tmp", dir=onnx_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        fastpath = torch.backends.mha.get_fastpath_enabled()
        try:
            # Inference runs nn.MultiheadAttention's fused kernel, which has no ONNX form; the
            # traced graph must hold the plain attention ops (same values).
            torch.backends.mha.set_fastpath_enabled(False)
            with warnings.catch_warnings():
                # The legacy exporter's deprecation notice, and tracer notes about the input checks
                # (shape tests in Python, fixed at the traced size): expected for this graph.
                warnings.simplefilter("ignore")
                torch.onnx.export(wrapper, (example,), str(tmp), dynamo=False, opset_version=opset,
                                  input_names=["image"], output_names=outputs,
                                  dynamic_axes={name: {0: "batch"} for name in ["image", *outputs]},
                                  do_constant_folding=True)
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
        _add_metadata(tmp, classifier)
        report = ExportReport(onnx_path, classifier.checkpoint, height, width, opset, None)
        if verify:
            report.max_abs_diff = max_abs_diff(tmp, wrapper, height, width)
            if not report.max_abs_diff <= VERIFY_TOLERANCE:
                raise RuntimeError(f"{onnx_path}: onnxruntime and torch logits differ by {report.max_abs_diff:g} "
                                   f"(tolerance {VERIFY_TOLERANCE:g}); the graph was not written")
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp creates 0600
        os.replace(tmp, onnx_path)
    finally:
        tmp.unlink(missing_ok=True)
    return report


def export_onnx(onnx_path: str | Path, checkpoint: str | Path | None = None, *, opset: int = DEFAULT_OPSET,
                verify: bool = True) -> ExportReport:
    """Export the image-only model of ``checkpoint`` (default: predict's default model) to ``onnx_path``.

    :class:`vizecg.predict.PredictSetupError` when the model cannot be loaded.
    """
    classifier = load_classifier(checkpoint, device="cpu")
    return export_classifier(classifier, onnx_path, opset=opset, verify=verify)


def _add_metadata(path: Path, classifier: ImageClassifier) -> None:
    import onnx

    model = onnx.load(str(path))
    fields = {"labels": json.dumps(list(LABELS)),
              "thresholds": json.dumps({label: float(t) for label, t in zip(LABELS, classifier.thresholds)}),
              "image_height": str(classifier.image_height), "image_width": str(classifier.image_width),
              "input": "image: float32 (batch, 3, image_height, image_width) in [0, 1], from "
                       "vizecg.page_reader.prepare_page",
              "output": "logits: float32 (batch, 6) pre-sigmoid, in the order of 'labels'",
              "source": Path(classifier.checkpoint).name}
    if classifier.measurements:
        fields["measurements"] = json.dumps([name for name, _, _ in classifier.measurements])
        fields["output"] += ("; measurements: float32 (batch, M), what the measurement head reads off the page, "
                             "in each unit, in the order of 'measurements'")
    for key, value in fields.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "vizecg.export"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def onnx_session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU session for ``path`` (``threads`` intra-op threads, default onnxruntime's)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def max_abs_diff(onnx_path: str | Path, wrapper: nn.Module, height: int, width: int,
                 batches: Sequence[int] = (1, 3)) -> float:
    """Largest |onnxruntime - torch| output (logits, and measurements where exported) over random
    pages at each batch size in ``batches``."""
    session = onnx_session(onnx_path)
    generator = torch.Generator().manual_seed(1)
    worst = 0.0
    for batch in batches:
        images = torch.rand(batch, 3, height, width, generator=generator)
        with torch.inference_mode():
            expected = wrapper(images)
        expected = [t.numpy() for t in (expected if isinstance(expected, tuple) else (expected,))]
        got = session.run(None, {"image": images.numpy()})
        if [g.shape for g in got] != [e.shape for e in expected]:
            return float("inf")
        worst = max(worst, *(float(np.abs(g - e).max()) for g, e in zip(got, expected)))
    return worst


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vizecg.export",
                                     description="Export predict's image-only model to ONNX (dynamic batch).")
    parser.add_argument("--onnx", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument("--checkpoint", type=Path, default=None, metavar="PATH",
                        help="a study checkpoint (best.pt), a shipped-model folder or its model.json "
                             "(default: the model predict uses by default)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument("--no-verify", action="store_true",
                        help="do not compare onnxruntime with torch after exporting")
    args = parser.parse_args(argv)
    try:
        report = export_onnx(args.onnx, args.checkpoint, opset=args.opset, verify=not args.no_verify)
    except PredictSetupError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except (RuntimeError, ImportError, ValueError) as error:
        print(f"error: {type(error).__name__}: {' '.join(str(error).split())[:400]}", file=sys.stderr)
        return 1
    print(f"wrote {report.onnx} from {report.source} (opset {report.opset})")
    print(f"input: image float32 (batch, 3, {report.image_height}, {report.image_width}) in [0, 1]; "
          f"output: logits (batch, {len(LABELS)}) in order {', '.join(LABELS)}")
    if report.max_abs_diff is not None:
        print(f"onnxruntime vs torch: max abs logit difference {report.max_abs_diff:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
