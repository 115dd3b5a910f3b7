"""Auxiliary measurement targets: what the records carry, the loss that reads them, the heads that
predict them and the training loop that passes them."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vizecg.contract import LABELS
from vizecg.data.ecg_measurements import MEASUREMENT_TARGETS, measure_records, measurement_targets
from vizecg.data.stream import SyntheticStreamDataset
from vizecg.data.synthetic import generate
from vizecg.models import create_loss, create_model
from vizecg.models.losses import MeasurementLoss, MultiLabelBCELoss
from vizecg.render.training import TrainingImageRenderer
from vizecg.training import fit

TINY = {"resnet18": {"base_width": 4},
        "vizecgnet": {"signal_width": 4, "image_width": 4, "embed_dim": 16, "head_hidden": 16, "num_heads": 2}}


def _records(n: int, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    from vizecg.data.preprocess import preprocess_batch

    raw, labels = generate(n, seed)
    signals, _ = preprocess_batch(raw, 400, source="test records")
    return signals, labels


def test_targets_are_the_records_own_measurements_standardised() -> None:
    signals, labels = _records(40)
    measured = measure_records(signals)
    targets = np.stack([measurement_targets(signal) for signal in signals])
    assert targets.shape == (40, len(MEASUREMENT_TARGETS)) and targets.dtype == np.float32
    for column, (name, (centre, scale)) in enumerate(MEASUREMENT_TARGETS.items()):
        expected = (measured[name].to_numpy() - centre) / scale
        if name == "rr_irregularity":
            expected = (np.minimum(measured[name].to_numpy(), 0.5) - centre) / scale
        np.testing.assert_allclose(targets[:, column], expected, rtol=1e-5, atol=1e-5, equal_nan=True)
    pr = targets[:, list(MEASUREMENT_TARGETS).index("pr_interval_ms")]
    af = labels[:, LABELS.index("AF")] == 1
    assert af.any() and np.isnan(pr[af]).mean() > 0.5, "fibrillation has no P wave, so mostly no PR"
    avb = labels[:, LABELS.index("1dAVb")] == 1
    assert avb.any() and np.nanmean(pr[avb]) > np.nanmean(pr[~avb & ~af]), "1dAVb means a longer PR"


def test_measurement_loss_adds_a_weighted_huber_over_the_measurable_entries() -> None:
    torch.manual_seed(0)
    logits, predicted = torch.randn(3, 6), torch.randn(3, 5, requires_grad=True)
    labels = torch.randint(0, 2, (3, 6)).float()
    targets = torch.randn(3, 5)
    targets[0, 0] = targets[2, 4] = float("nan")
    outputs = {"logits": logits, "measurements": predicted}
    loss = MeasurementLoss(MultiLabelBCELoss(), weight=0.5)

    total, parts = loss(outputs, labels, measurements=targets)
    known = torch.isfinite(targets)
    expected_term = F.huber_loss(predicted[known], targets[known])
    expected = F.binary_cross_entropy_with_logits(logits, labels) + 0.5 * expected_term
    assert torch.isclose(total, expected) and math.isclose(parts["measurement"], float(expected_term.detach()), rel_tol=1e-6)
    total.backward()
    assert torch.all(predicted.grad[~known] == 0) and torch.all(predicted.grad[known] != 0)

    # validation passes no measurements: the classification loss alone
    base_total, base_parts = loss(outputs, labels)
    assert torch.isclose(base_total, F.binary_cross_entropy_with_logits(logits, labels))
    assert "measurement" not in base_parts
    # nothing measurable: a zero term that keeps the graph
    nothing, parts = loss(outputs, labels, measurements=torch.full((3, 5), float("nan")))
    assert parts["measurement"] == 0.0 and nothing.requires_grad


def test_measurement_loss_needs_a_measurement_head() -> None:
    plain = create_model("resnet18", **TINY["resnet18"])
    with pytest.raises(ValueError, match="measurement_outputs"):
        create_loss(plain, measurement_weight=1.0)
    assert isinstance(create_loss(plain, measurement_weight=0.0), MultiLabelBCELoss)
    loss = MeasurementLoss(MultiLabelBCELoss())
    with pytest.raises(ValueError, match="no 'measurements'"):
        loss({"logits": torch.zeros(2, 6)}, torch.zeros(2, 6), measurements=torch.zeros(2, 5))
    with pytest.raises(ValueError, match="do not match"):
        loss({"logits": torch.zeros(2, 6), "measurements": torch.zeros(2, 4)}, torch.zeros(2, 6),
             measurements=torch.zeros(2, 5))


@pytest.mark.parametrize("name", ["resnet18", "vizecgnet"])
def test_measurement_head_reads_the_image_stream_and_leaves_the_logits_alone(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, **TINY[name], measurement_outputs=5)
    image, signal = torch.rand(2, 3, 64, 178), torch.randn(2, 12, 1024)
    inputs = {"image": image, "signal": signal} if name == "vizecgnet" else {"image": image}
    outputs = model(**inputs)
    assert outputs["measurements"].shape == (2, 5) and torch.isfinite(outputs["measurements"]).all()
    outputs["measurements"].sum().backward()
    encoder = model.image_encoder if name == "vizecgnet" else model.features
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters()), \
        "the measurement loss must reach the image encoder"
    if name == "vizecgnet":  # image-only inference predicts them too, from the deployed pass
        model.eval()
        assert model(image=image)["measurements"].shape == (2, 5)
    # the head is an addition: without it the same seed builds the same classifier
    torch.manual_seed(0)
    plain = create_model(name, **TINY[name])
    missing = set(model.state_dict()) - set(plain.state_dict())
    assert missing and all(key.startswith("measurement_head.") for key in missing)


def test_the_stream_carries_measurements_and_training_without_them_is_a_named_error(tmp_path) -> None:
    renderer = TrainingImageRenderer(64, 178, seed=0)
    measured = SyntheticStreamDataset(4, stream_seed=5, holdout_seed=0, decimate=4, measurement_targets=True)
    signal = SyntheticStreamDataset(4, stream_seed=5, holdout_seed=0, decimate=1)[1]["signal"].numpy().T
    np.testing.assert_array_equal(measured[1]["measurements"].numpy(), measurement_targets(signal))
    plain = SyntheticStreamDataset(16, stream_seed=6, holdout_seed=0, image_renderer=renderer, decimate=4)
    assert "measurements" not in plain[0]
    torch.manual_seed(0)
    model = create_model("resnet18", **TINY["resnet18"], measurement_outputs=5)
    with pytest.raises(KeyError, match="measurement targets"):
        fit(model, create_loss(model, measurement_weight=1.0), plain, plain, out_dir=tmp_path / "plain", epochs=1,
            batch_size=8, lr=1e-3, inputs=("image",), seed=0, progress=False, tensorboard=False)


def test_a_run_asks_for_measurements_in_params_and_its_replay_pool_carries_them(tmp_path) -> None:
    """``options: {measurement_outputs}`` and ``loss: {measurement_weight}`` in a run's entry reach the
    model, the loss and the stream (through the replay pool); without the stream it is a clear error."""
    from vizecg.study.config import load_params
    from vizecg.study.data_prep import prepare_dataset
    from vizecg.study.runs import train_run

    params = load_params(profile="smoke")
    params["runs"]["measured"] = {"model": "resnet18", "inference": ["image"],
                                  "options": {"measurement_outputs": len(MEASUREMENT_TARGETS)},
                                  "loss": {"measurement_weight": 1.0},
                                  "train": {"epochs": 1, "replay_pool": {"size": 32, "refresh": 16}}}
    prepare_dataset(params, tmp_path, progress=False)
    result = train_run(params, "measured", tmp_path, progress=False)
    assert result.history["train_measurement"].iloc[0] > 0
    params["data"]["train_stream"] = None
    params["runs"]["measured"]["train"].pop("replay_pool")
    with pytest.raises(ValueError, match="train_stream"):
        train_run(params, "measured", tmp_path, progress=False)


def test_learning_curve_configurations_hold_the_head_they_name(benchmark_script) -> None:
    """The release recipe now carries the head; the curves measured without it must still build without
    it, or rerunning a committed configuration would measure another network."""
    curves = benchmark_script("learning_curves")
    for name, (*_, measurement_weight) in curves.DEPLOYED_CONFIGS.items():
        model, loss, *_ = curves._model_and_pages(name, 0)
        assert bool(model.measurement_outputs) == bool(measurement_weight), name
        assert isinstance(loss, MeasurementLoss) == bool(measurement_weight), name
