"""ONNX export of the image-only model: onnxruntime gives torch's logits on rendered pages."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from vizecg import export, shipped_model
from vizecg.contract import LABELS
from vizecg.data.preprocess import preprocess_batch
from vizecg.data.synthetic import generate
from vizecg.models import create_model, model_entry
from vizecg.predict import load_classifier
from vizecg.render.training import TrainingImageRenderer
from vizecg.shipped_model import save_shipped_model
from vizecg.training.checkpoint import load_model, save_checkpoint

HEIGHT, WIDTH = 64, 178
TOLERANCE = 1e-4


def write_checkpoint(path: Path, name: str, labels=LABELS, **options) -> Path:
    torch.manual_seed(0)
    options = {**model_entry(name).tiny_options, **options}
    payload = {"model_name": name, "model_options": options, "state_dict": create_model(name, **options).state_dict(),
               "labels": tuple(labels),
               "input": {"decimate": 4, "image_height": HEIGHT, "image_width": WIDTH, "render_style": {}},
               "epoch": 1, "metrics": {}, "params": {}, "thresholds": [0.3] * 6}
    return save_checkpoint(payload, path)


@pytest.fixture(scope="module")
def pages() -> np.ndarray:
    """Three rendered pages of synthetic records as model input: float32 ``(3, 3, H, W)`` in [0, 1]."""
    raw, _ = generate(3, seed=11)
    signals, _ = preprocess_batch(raw, 400)
    renderer = TrainingImageRenderer(HEIGHT, WIDTH)
    images = np.stack([renderer(signals[i], i) for i in range(3)])
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)


def torch_logits(checkpoint: Path, images: np.ndarray) -> np.ndarray:
    model, meta = load_model(checkpoint)
    with torch.inference_mode():
        logits = model(image=torch.from_numpy(images))["logits"].numpy()
    order = [list(meta["labels"]).index(label) for label in LABELS]
    return logits[:, order]


def onnx_logits(path: Path, images: np.ndarray) -> np.ndarray:
    (logits,) = export.onnx_session(path, threads=1).run(["logits"], {"image": images})
    return logits


@pytest.mark.parametrize("name, head", [("vizecgnet", 0), ("resnet18", 0), ("vizecgnet", 5)])
def test_onnxruntime_matches_torch_on_rendered_pages(tmp_path, pages, name, head):
    """The logits export alike with or without the measurement head the release recipe trains."""
    checkpoint = write_checkpoint(tmp_path / "best.pt", name, **({"measurement_outputs": head} if head else {}))
    report = export.export_onnx(tmp_path / "model.onnx", checkpoint)
    assert (report.image_height, report.image_width) == (HEIGHT, WIDTH)
    assert report.max_abs_diff is not None and report.max_abs_diff < TOLERANCE
    expected = torch_logits(checkpoint, pages)
    batched = onnx_logits(report.onnx, pages)                                            # batch 3
    single = np.concatenate([onnx_logits(report.onnx, pages[i:i + 1]) for i in range(3)])  # batch 1
    assert batched.shape == (3, len(LABELS))
    difference = max(np.abs(batched - expected).max(), np.abs(single - expected).max())
    print(f"{name}: max abs logit difference onnxruntime vs torch on 3 rendered pages {difference:.3g}")
    assert difference < TOLERANCE
    if head:  # the readings come out as predict reports them
        classifier = load_classifier(checkpoint, device="cpu")
        _, readings = classifier.read(pages)
        (got,) = export.onnx_session(report.onnx, threads=1).run(["measurements"], {"image": pages})
        assert np.abs(got - readings).max() < 1e-3


def test_graph_has_a_dynamic_batch_and_the_model_metadata(tmp_path):
    checkpoint = write_checkpoint(tmp_path / "best.pt", "resnet18")
    export.export_onnx(tmp_path / "model.onnx", checkpoint, verify=False)
    graph = onnx.load(str(tmp_path / "model.onnx"))
    (image,) = graph.graph.input
    dims = image.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [3, HEIGHT, WIDTH]
    assert image.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    (output,) = graph.graph.output
    assert output.name == "logits" and output.type.tensor_type.shape.dim[1].dim_value == len(LABELS)
    props = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(props["labels"]) == list(LABELS)
    assert json.loads(props["thresholds"]) == {label: 0.3 for label in LABELS}
    assert (props["image_height"], props["image_width"]) == (str(HEIGHT), str(WIDTH))


def test_output_follows_labels_whatever_the_model_order(tmp_path, pages):
    order = list(reversed(LABELS))
    checkpoint = write_checkpoint(tmp_path / "best.pt", "resnet18", labels=order)
    report = export.export_onnx(tmp_path / "model.onnx", checkpoint)
    model, _ = load_model(checkpoint)
    with torch.inference_mode():
        raw = model(image=torch.from_numpy(pages))["logits"].numpy()
    assert np.abs(onnx_logits(report.onnx, pages) - raw[:, ::-1]).max() < TOLERANCE


def test_shipped_model_and_default_are_exported(capsys, monkeypatch, tmp_path, pages):
    checkpoint = write_checkpoint(tmp_path / "best.pt", "vizecgnet")
    folder = save_shipped_model(checkpoint, tmp_path / "shipped")
    monkeypatch.setattr(shipped_model, "SHIPPED_MODEL_DIR", folder)
    assert export.main(["--onnx", str(tmp_path / "default.onnx")]) == 0  # predict's default: the shipped model
    out = capsys.readouterr().out
    assert f"from {folder / 'model.json'}" in out and f"(batch, 3, {HEIGHT}, {WIDTH})" in out
    assert np.abs(onnx_logits(tmp_path / "default.onnx", pages) - torch_logits(checkpoint, pages)).max() < TOLERANCE


def test_unusable_model_exits_2(capsys, tmp_path):
    assert export.main(["--onnx", str(tmp_path / "m.onnx"), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "none.pt not found" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
