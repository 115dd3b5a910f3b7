"""The shipped image model: written from a study checkpoint, read back without pickle, used by predict."""
from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from vizecg import shipped_model
from vizecg.contract import LABELS
from vizecg.data.ecg_measurements import MEASUREMENT_TARGETS
from vizecg.data.preprocess import preprocess_batch
from vizecg.data.synthetic import generate
from vizecg.models import create_model, model_entry
from vizecg.predict import load_classifier, main
from vizecg.render.training import TrainingImageRenderer
from vizecg.shipped_model import (META_FILE, WEIGHTS_FILE, ShippedModelError, image_path_keys, load_shipped_model,
                                  save_shipped_model)
from vizecg.training.checkpoint import load_model, save_checkpoint

HEIGHT, WIDTH = 64, 178
IMAGE_THRESHOLDS = [0.11, 0.22, 0.33, 0.44, 0.55, 0.66]
SIGNAL_PREFIXES = ("signal_encoder.", "signal_projection.", "lead_embedding", "cmam.signal.", "smam.signal.",
                   "heads.signal.")


def write_checkpoint(path: Path, name: str = "vizecgnet", *, options: dict | None = None, **changes) -> Path:
    """A ``best.pt`` as the study writes it (scored: ``thresholds`` and ``thresholds_by_path``)."""
    torch.manual_seed(0)
    options = dict(model_entry(name).tiny_options) if options is None else options
    model = create_model(name, **options)
    with torch.no_grad():  # trained-looking BatchNorm statistics, so that buffers matter too
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    payload = {"model_name": name, "model_options": options, "state_dict": model.state_dict(),
               "labels": tuple(LABELS),
               "input": {"decimate": 4, "image_height": HEIGHT, "image_width": WIDTH, "render_style": {}},
               "epoch": 3, "metrics": {"val_loss": 0.5, "val_auroc": float("nan")},
               "params": {"profile": "smoke", "train": {"epochs": 3, "lr": 1e-3}},
               "thresholds": IMAGE_THRESHOLDS,
               "thresholds_by_path": {"signal": [0.9] * 6, "image": IMAGE_THRESHOLDS, "image_skip": [0.8] * 6}}
    payload.update(changes)
    return save_checkpoint(payload, path)


@pytest.fixture(scope="module")
def vizecgnet(tmp_path_factory) -> tuple[Path, Path]:
    """``(best.pt, shipped folder)`` of a tiny VizECGNet."""
    root = tmp_path_factory.mktemp("vizecgnet")
    checkpoint = write_checkpoint(root / "best.pt")
    return checkpoint, save_shipped_model(checkpoint, root / "shipped", extra_meta={"note": "test"})


def image_logits(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(image=images)["logits"]


def random_pages(n: int = 3) -> torch.Tensor:
    return torch.rand(n, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(5))


# --- round trip -------------------------------------------------------------------------------

@pytest.mark.parametrize("name, head", [("vizecgnet", 0), ("resnet18", 0), ("mhm", 0), ("vizecgnet", 5), ("resnet18", 5)])
def test_round_trip_gives_the_same_image_logits(tmp_path, name, head):
    """Every image model ships, with the measurement head the release recipe trains or without it."""
    options = {**model_entry(name).tiny_options, **({"measurement_outputs": head} if head else {})}
    checkpoint = write_checkpoint(tmp_path / "best.pt", name, options=options)
    folder = save_shipped_model(checkpoint, tmp_path / "shipped")
    original, _ = load_model(checkpoint)
    loaded, meta = load_shipped_model(folder)
    assert not loaded.training
    pages = random_pages()
    difference = (image_logits(original, pages) - image_logits(loaded, pages)).abs().max().item()
    print(f"{name}: max abs logit difference after the round trip {difference}")
    assert difference == 0.0
    if head:  # the head is on the image path: shipped, and it reads the same
        assert meta["model_options"]["measurement_outputs"] == head
        assert any(t["name"].startswith("measurement_head.") for t in meta["tensors"])
        with torch.inference_mode():
            assert torch.equal(original(image=pages)["measurements"], loaded(image=pages)["measurements"])
    assert load_shipped_model(folder / META_FILE)[1] == meta  # the folder or its JSON


def test_model_json_describes_the_model(vizecgnet):
    checkpoint, folder = vizecgnet
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["format"] == "vizecg-shipped-model" and meta["format_version"] == shipped_model.FORMAT_VERSION
    assert meta["model_name"] == "vizecgnet"
    assert meta["model_options"] == dict(model_entry("vizecgnet").tiny_options)
    assert meta["labels"] == list(LABELS)
    assert (meta["input"]["image_height"], meta["input"]["image_width"]) == (HEIGHT, WIDTH)
    assert meta["missing_modality"] == "self"
    assert meta["thresholds"] == dict(zip(LABELS, IMAGE_THRESHOLDS))  # the image path's, not the signal's
    assert meta["thresholds_source"] == "thresholds_by_path.image"
    steps = [step["name"] for step in meta["page_preparation"]["steps"]]
    assert steps[-1] == "resize_to_model" and "normalise_paper" in steps and "find_paper_quad" in steps
    assert meta["page_preparation"]["steps"][-1]["params"]["height"] == HEIGHT
    assert meta["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", meta["git_commit"])
    assert meta["params"] == {"profile": "smoke", "train": {"epochs": 3, "lr": 1e-3}}
    assert meta["source_checkpoint"] == {"file": "best.pt", "epoch": 3,
                                         "metrics": {"val_loss": 0.5, "val_auroc": None}}  # strict JSON: no NaN
    assert meta["extra"] == {"note": "test"}
    with safe_open(str(folder / WEIGHTS_FILE), framework="pt") as handle:
        shapes = {key: list(handle.get_slice(key).get_shape()) for key in handle.keys()}
    assert {t["name"]: t["shape"] for t in meta["tensors"]} == shapes


def test_vizecgnet_file_holds_only_the_image_path(vizecgnet):
    checkpoint, folder = vizecgnet
    stored = set(load_file(str(folder / WEIGHTS_FILE)))
    assert not [key for key in stored if key.startswith(SIGNAL_PREFIXES)]
    assert any(key.startswith("image_encoder.") for key in stored)
    assert {"heads.image.mlp.4.weight", "image_projection.weight"} <= stored
    assert any(key.startswith("cmam.image.") for key in stored) and any(key.startswith("smam.image.") for key in stored)
    everything = create_model("vizecgnet", **model_entry("vizecgnet").tiny_options).state_dict()
    assert stored == {key for key in everything if not key.startswith(SIGNAL_PREFIXES)}
    size, whole = (folder / WEIGHTS_FILE).stat().st_size, checkpoint.stat().st_size
    print(f"model.safetensors {size} bytes, best.pt {whole} bytes")
    assert size < whole


def test_image_models_keep_every_tensor(tmp_path):
    checkpoint = write_checkpoint(tmp_path / "best.pt", "resnet18")
    folder = save_shipped_model(checkpoint, tmp_path / "shipped")
    assert set(load_file(str(folder / WEIGHTS_FILE))) == set(torch.load(checkpoint, weights_only=True)["state_dict"])


@pytest.mark.parametrize("name, options", [
    ("vizecgnet", {}),
    ("vizecgnet", {"missing_modality": "skip"}),
    ("vizecgnet", {"use_cmam": False}),
    ("vizecgnet", {"use_smam": False}),
    ("mhm", {}),
    ("resnet18", {}),
])
def test_image_path_rule_is_what_an_image_only_forward_uses(name, options):
    """The kept parameters are exactly those an image-only forward reaches (autograd), so the rule
    can neither drop a used tensor nor ship an unused one."""
    torch.manual_seed(0)
    model = create_model(name, **{**model_entry(name).tiny_options, **options}).eval()
    model(image=random_pages(2))["logits"].sum().backward()
    used = {key for key, p in model.named_parameters() if p.grad is not None}
    parameters = [key for key, _ in model.named_parameters()]
    kept = set(image_path_keys(name, {**model_entry(name).tiny_options, **options}, parameters))
    assert kept == used


# --- refused files ----------------------------------------------------------------------------

def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "copy"))


def edit_json(folder: Path, change) -> None:
    meta = json.loads((folder / META_FILE).read_text())
    change(meta)
    (folder / META_FILE).write_text(json.dumps(meta))


def refused(path: Path) -> str:
    with pytest.raises(ShippedModelError) as caught:
        load_shipped_model(path)
    return str(caught.value)


def test_weights_of_another_shape_are_refused(vizecgnet, tmp_path):
    folder = copy_of(vizecgnet[1], tmp_path)
    tensors = load_file(str(folder / WEIGHTS_FILE))
    tensors["image_projection.weight"] = torch.zeros(3, 3)
    save_file(tensors, str(folder / WEIGHTS_FILE))
    message = refused(folder)
    assert str(folder / WEIGHTS_FILE) in message and "image_projection.weight is [3, 3] float32" in message


def test_options_that_do_not_fit_the_weights_are_refused(vizecgnet, tmp_path):
    folder = copy_of(vizecgnet[1], tmp_path)
    edit_json(folder, lambda meta: meta["model_options"].update(embed_dim=32))
    message = refused(folder)
    assert str(folder / META_FILE) in message and "of another shape" in message and "expected [32]" in message


def test_missing_tensors_are_refused(vizecgnet, tmp_path):
    folder = copy_of(vizecgnet[1], tmp_path)
    tensors = load_file(str(folder / WEIGHTS_FILE))
    del tensors["heads.image.mlp.4.bias"]
    save_file(tensors, str(folder / WEIGHTS_FILE))
    message = refused(folder)
    assert str(folder / WEIGHTS_FILE) in message and "missing from model.safetensors (heads.image.mlp.4.bias)" in message
    # the same tensor gone from both files: the model still needs it
    edit_json(folder, lambda meta: meta.update(tensors=[t for t in meta["tensors"]
                                                         if t["name"] != "heads.image.mlp.4.bias"]))
    message = refused(folder)
    assert str(folder / META_FILE) in message and "image-path tensors not listed" in message
    assert "heads.image.mlp.4.bias" in message


def test_wrong_format_version_is_refused(vizecgnet, tmp_path):
    folder = copy_of(vizecgnet[1], tmp_path)
    edit_json(folder, lambda meta: meta.update(format_version=2))
    message = refused(folder)
    assert str(folder / META_FILE) in message and "format_version 2 is not supported" in message


@pytest.mark.parametrize("text", ['{"format": "vizecg-shipped-model", "format_version": 1,', "", "[1, 2]"])
def test_corrupt_json_is_refused(vizecgnet, tmp_path, text):
    folder = copy_of(vizecgnet[1], tmp_path)
    (folder / META_FILE).write_text(text)
    message = refused(folder)
    assert str(folder / META_FILE) in message and ("not valid JSON" in message or "not an object" in message)


def test_changed_or_damaged_weights_are_refused(vizecgnet, tmp_path):
    folder = copy_of(vizecgnet[1], tmp_path)
    data = bytearray((folder / WEIGHTS_FILE).read_bytes())
    data[-1] ^= 0xFF  # one value changed: header intact, hash not
    (folder / WEIGHTS_FILE).write_bytes(bytes(data))
    message = refused(folder)
    assert str(folder / WEIGHTS_FILE) in message and "SHA-256" in message
    (folder / WEIGHTS_FILE).write_bytes(bytes(data[: len(data) // 2]))
    message = refused(folder)
    assert str(folder / WEIGHTS_FILE) in message and "not a readable safetensors file" in message


def test_missing_files_are_refused(vizecgnet, tmp_path):
    folder = copy_of(vizecgnet[1], tmp_path)
    (folder / WEIGHTS_FILE).unlink()
    assert f"{folder / WEIGHTS_FILE} not found" in refused(folder)
    (folder / META_FILE).unlink()
    assert f"{folder / META_FILE} not found" in refused(folder)
    assert "not found" in refused(tmp_path / "nowhere")


@pytest.mark.parametrize("change, fragment", [
    (lambda meta: meta["model_options"].update(image_width=10**9), "refusing model option image_width"),
    (lambda meta: meta["model_options"].update(signal_width=60_000), "values the file does not hold"),
    (lambda meta: meta.update(model_name="gpt5"), "unknown model 'gpt5'"),
    (lambda meta: meta.update(model_name="inception_time"), "signal-only model"),
    (lambda meta: meta["input"].update(image_height=10**6), "training image size"),
    (lambda meta: meta.update(labels=["a"] * 6), "predicts labels"),
    (lambda meta: meta.update(thresholds={label: 2.0 for label in LABELS}), "not all in [0, 1]"),
    (lambda meta: meta.update(missing_modality="skip"), "missing_modality"),
])
def test_hostile_metadata_is_refused_before_building(vizecgnet, tmp_path, change, fragment):
    folder = copy_of(vizecgnet[1], tmp_path)
    edit_json(folder, change)
    message = refused(folder)
    assert str(folder / META_FILE) in message and fragment in message


def test_unusable_checkpoints_are_not_shipped(tmp_path):
    with pytest.raises(ShippedModelError, match="does not exist"):
        save_shipped_model(tmp_path / "none.pt", tmp_path / "out")
    signal = write_checkpoint(tmp_path / "signal.pt", "inception_time", options={})
    with pytest.raises(ShippedModelError, match="signal-only"):
        save_shipped_model(signal, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_command_line_ships_a_checkpoint(tmp_path, capsys):
    checkpoint = write_checkpoint(tmp_path / "best.pt", "resnet18")
    assert shipped_model.main([str(checkpoint), str(tmp_path / "out"), "--extra", "trained_by=test"]) == 0
    assert "resnet18 on 64 x 178 pages" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / META_FILE).read_text())["extra"] == {"trained_by": "test"}


# --- predict ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """A rendered page of a synthetic record, saved as a PNG the ECG check accepts."""
    raw, _ = generate(1, seed=3)
    signals, _ = preprocess_batch(raw, 400)
    path = tmp_path_factory.mktemp("page") / "page.png"
    Image.fromarray(TrainingImageRenderer(400, 1100)(signals[0], 0)).save(path)
    return path


def run_json(capsys, *args) -> tuple[int, dict]:
    status = main([*map(str, args), "--json"])
    captured = capsys.readouterr()
    return status, json.loads(captured.out)


def test_predict_without_flags_uses_the_shipped_model(capsys, monkeypatch, tmp_path, vizecgnet, page):
    checkpoint, folder = vizecgnet
    monkeypatch.setattr(shipped_model, "SHIPPED_MODEL_DIR", folder)
    monkeypatch.chdir(tmp_path)  # no data/models/vizecgnet/best.pt here either way
    status, document = run_json(capsys, page)
    assert status == 0, document
    assert document["checkpoint"] == str(folder / META_FILE)
    assert document["thresholds"] == dict(zip(LABELS, IMAGE_THRESHOLDS))
    (result,) = document["results"]
    assert result["error"] is None
    # the same probabilities as the study checkpoint it was shipped from
    _, from_checkpoint = run_json(capsys, page, "--checkpoint", checkpoint)
    assert np.allclose(list(result["probabilities"].values()),
                       list(from_checkpoint["results"][0]["probabilities"].values()), rtol=0, atol=1e-6)
    classifier = load_classifier(device="cpu")
    assert (classifier.image_height, classifier.image_width) == (HEIGHT, WIDTH)


@pytest.mark.parametrize("given", ["folder", "json"])
def test_predict_checkpoint_option_takes_a_shipped_model(capsys, vizecgnet, page, given):
    folder = vizecgnet[1]
    status, document = run_json(capsys, page, "--checkpoint", folder if given == "folder" else folder / META_FILE)
    assert status == 0 and document["checkpoint"] == str(folder / META_FILE)
    assert document["results"][0]["probabilities"] is not None
    _, overridden = run_json(capsys, page, "--checkpoint", folder, "--threshold", "0")
    assert overridden["results"][0]["positive"] == list(LABELS)


def test_predict_refuses_a_broken_shipped_model(capsys, monkeypatch, tmp_path, vizecgnet, page):
    folder = copy_of(vizecgnet[1], tmp_path)
    edit_json(folder, lambda meta: meta.update(format_version=99))
    monkeypatch.setattr(shipped_model, "SHIPPED_MODEL_DIR", folder)
    assert main([str(page)]) == 2
    assert str(folder / META_FILE) in capsys.readouterr().err
    assert main([str(page), "--checkpoint", str(tmp_path / "none" / META_FILE)]) == 2
    assert f"{tmp_path / 'none' / META_FILE} not found" in capsys.readouterr().err
    assert main([str(page), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert f"{tmp_path / 'none.pt'} not found" in capsys.readouterr().err


@pytest.fixture(scope="module")
def with_head(tmp_path_factory) -> tuple[Path, Path]:
    """``(best.pt, shipped folder)`` of a tiny VizECGNet with the measurement head."""
    root = tmp_path_factory.mktemp("with_head")
    options = {**model_entry("vizecgnet").tiny_options, "measurement_outputs": len(MEASUREMENT_TARGETS)}
    checkpoint = write_checkpoint(root / "best.pt", options=options)
    return checkpoint, save_shipped_model(checkpoint, root / "shipped")


def test_predict_reports_what_the_measurement_head_reads(capsys, tmp_path, with_head, vizecgnet, page):
    """The head's outputs reach the JSON and the CSV in each measurement's unit, decoded by the constants
    stored in model.json; a study checkpoint decodes them alike; a model without a head reports none."""
    checkpoint, folder = with_head
    meta = json.loads((folder / META_FILE).read_text())
    assert [c["name"] for c in meta["measurements"]["columns"]] == list(MEASUREMENT_TARGETS)
    table = tmp_path / "out.csv"
    status, document = run_json(capsys, page, "--checkpoint", folder, "--csv", table)
    assert status == 0
    (result,) = document["results"]
    assert list(result["measurements"]) == list(MEASUREMENT_TARGETS)
    model, _ = load_shipped_model(folder)
    image = torch.from_numpy(_prepared(page))
    with torch.inference_mode():
        raw = model(image=image)["measurements"][0].numpy()
    expected = [v * scale + centre for v, (centre, scale) in zip(raw, MEASUREMENT_TARGETS.values())]
    assert np.allclose(list(result["measurements"].values()), expected, atol=1e-3)
    rows = list(csv.DictReader(table.open()))
    assert np.allclose([float(rows[0][f"m_{name}"]) for name in MEASUREMENT_TARGETS], expected, atol=1e-3)
    _, from_checkpoint = run_json(capsys, page, "--checkpoint", checkpoint)
    assert from_checkpoint["results"][0]["measurements"] == result["measurements"]
    _, without = run_json(capsys, page, "--checkpoint", vizecgnet[1])
    assert "measurements" not in without["results"][0]
    assert main([str(page), "--checkpoint", str(folder)]) == 0  # the text line too
    assert f"read: pr_interval_ms {result['measurements']['pr_interval_ms']:g}," in capsys.readouterr().out


def _prepared(page: Path) -> np.ndarray:
    from vizecg.page_reader import load_image, prepare_page

    return prepare_page(load_image(page), HEIGHT, WIDTH)[None]


def test_measurement_columns_must_match_the_head(with_head, vizecgnet, tmp_path):
    folder = copy_of(with_head[1], tmp_path / "a")
    edit_json(folder, lambda meta: meta["measurements"]["columns"].pop())
    assert "does not list 5 columns" in refused(folder)
    edit_json(folder, lambda meta: meta.update(measurements=None))
    assert "does not list 5 columns" in refused(folder)
    folder = copy_of(with_head[1], tmp_path / "b")
    edit_json(folder, lambda meta: meta["measurements"]["columns"][0].update(scale=float("nan")))
    assert "measurement column 0" in refused(folder)
    spec = json.loads((with_head[1] / META_FILE).read_text())["measurements"]
    folder = copy_of(vizecgnet[1], tmp_path / "c")
    edit_json(folder, lambda meta: meta.update(measurements=spec))
    assert "without a measurement head" in refused(folder)


def test_predict_with_no_model_anywhere_says_how_to_get_one(capsys, monkeypatch, tmp_path, page):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("vizecg.predict.STUDY_ROOT", tmp_path)
    monkeypatch.setattr(shipped_model, "SHIPPED_MODEL_DIR", tmp_path / "no_shipped_model")
    assert main([str(page)]) == 2
    err = capsys.readouterr().err
    assert "no shipped model in" in err and "dvc repro" in err and "python -m vizecg.shipped_model" in err


def test_the_card_says_how_the_training_records_were_drawn() -> None:
    from vizecg.study.config import load_params
    from vizecg.study.shipped_card import _records_seen

    params = load_params(profile="smoke")
    params["runs"]["pooled"] = {"model": "vizecgnet", "train": {"replay_pool": {"size": 100, "refresh": 25}}}
    assert _records_seen(params, "vizecgnet", {"epochs": 3}) == "fresh records every epoch"
    assert _records_seen(params, None, {"epochs": 3}) == "fresh records every epoch"  # an older model.json
    text = _records_seen(params, "pooled", {"epochs": 5})
    assert "replay pool of 100 pages" in text and "200 distinct records in 5 epochs" in text
    from vizecg.study.shipped_card import _stream_seed

    assert _stream_seed(params, "pooled") == params["data"]["train_stream"]["seed"]
    params["runs"]["pooled"]["train"]["stream_seed"] = 7  # a continued run's own stream
    assert _stream_seed(params, "pooled") == 7 and _stream_seed(params, None) == params["data"]["train_stream"]["seed"]
    params["runs"]["pooled"]["train"]["replay_pool"]["fresh_epochs"] = 3  # drawn anew for 3 epochs, then refreshed
    assert "350 distinct records in 5 epochs" in _records_seen(params, "pooled", {"epochs": 5})


def test_a_continued_model_records_and_states_the_training_it_started_from(tmp_path) -> None:
    """A warm-started run's shipped model.json carries its source run's training, and the card states it:
    its own few epochs are not all the training its weights had."""
    import torch

    from vizecg.models import create_model
    from vizecg.shipped_model import run_training_record, save_shipped_model
    from vizecg.study.shipped_card import _warm_start_lines

    runs = tmp_path / "models"
    for run, rows in (("source", 12), ("continued", 4)):
        (runs / run).mkdir(parents=True)
        lines = ["epoch,samples_seen,train_seconds,seconds,samples_per_s"]
        lines += [f"{e},{e * 100},60,90,10" for e in range(1, rows + 1)]
        (runs / run / "history.csv").write_text("\n".join(lines) + "\n")
    options = {"signal_width": 4, "image_width": 4, "embed_dim": 16, "head_hidden": 16, "num_heads": 2}
    model = create_model("vizecgnet", num_classes=6, **options)
    checkpoint = runs / "continued" / "best.pt"
    torch.save({"model_name": "vizecgnet", "model_options": options, "labels": list(LABELS), "run": "continued",
                "input": {"image_height": 64, "image_width": 178}, "params": {}, "epoch": 3,
                "warm_start": {"run": "source", "epoch": 11, "val_auroc": 0.9}, "state_dict": model.state_dict()},
               checkpoint)
    record = run_training_record(checkpoint, {"warm_start": {"run": "source", "epoch": 11}})
    assert record["epochs"] == 4 and record["warm_start"]["run"] == "source"
    assert record["warm_start"]["training"]["epochs"] == 12 and record["warm_start"]["training"]["samples_seen"] == 1200
    assert run_training_record(checkpoint, {}) == {k: v for k, v in record.items() if k != "warm_start"}
    out = save_shipped_model(checkpoint, tmp_path / "shipped")
    shipped = json.loads((out / "model.json").read_text())
    assert shipped["training"]["warm_start"]["training"]["samples_seen"] == 1200
    line = " ".join(_warm_start_lines(shipped["training"]))
    assert "Continued from run `source`" in line and "epoch 11" in line and "12 epochs, 1,200 pages" in line
    assert _warm_start_lines({"epochs": 4}) == []
    # continued from shipped weights (no history.csv of the source at hand): the source's record travels in the
    # checkpoint's warm_start entry, and a chain of continuations gives one line per run
    (runs / "third").mkdir()
    (runs / "third" / "history.csv").write_text((runs / "source" / "history.csv").read_text())
    third = runs / "third" / "best.pt"
    carried = {"run": "continued", "epoch": 3, "training": {"epochs": 99}}
    chained = run_training_record(third, {"warm_start": carried})
    assert chained["warm_start"]["training"]["epochs"] == 4  # the source's own history.csv wins where it exists
    carried = {"run": "shipped_only", "epoch": 3, "training": shipped["training"]}
    chained = run_training_record(third, {"warm_start": carried})
    assert chained["warm_start"]["training"] == shipped["training"]
    lines = _warm_start_lines(chained)
    assert len(lines) == 2 and "run `shipped_only`" in lines[0] and "run `source`" in lines[1]


def test_the_card_says_where_the_records_ranked_highest_contradict_the_definition() -> None:
    """A model that reads heart rate ranks fast records highest for ST whatever the labels say; one
    whose top-ranked records are slow does not read it, and the card says so."""
    import pandas as pd

    from vizecg.study.shipped_card import _measurement_findings, criteria_table, top_ranked_median

    rate = np.linspace(40, 130, 200)
    reads_rate = 1 / (1 + np.exp(-(rate - 100) / 3))
    reads_other = np.exp(-((rate - 60) / 4) ** 2)
    assert top_ranked_median(reads_rate, rate) > 100 > top_ranked_median(reads_other, rate)

    def criteria(top: float) -> pd.DataFrame:
        return pd.DataFrame([{"class": "ST", "measurement": "heart_rate_bpm", "positives": 4,
                              "positives measured": [101, 104, 110, 120], "AUROC of the measurement alone": 1.0,
                              "AUROC of the model (page)": 0.9, "Spearman (model, measurement)": 0.5,
                              "median of the 10 ranked highest": top}])
    assert _measurement_findings(criteria(top_ranked_median(reads_rate, rate))) == []
    finding = _measurement_findings(criteria(top_ranked_median(reads_other, rate)))
    assert len(finding) == 1 and "does not follow the heart rate" in finding[0] and "median 60 bpm" in finding[0]
    assert criteria_table(criteria(60.4)).splitlines()[-1].endswith("| 60 |")


def test_the_card_measures_the_heads_readings_against_the_signals(tmp_path, with_head, vizecgnet):
    """head_readings compares what predict would report with the signals' measurements, record by
    record; the card gets a section for a model with the head and none for a model without."""
    from vizecg.data.ecg_measurements import measure_records
    from vizecg.data.prepared import read_index, read_signals, write_prepared
    from vizecg.data.sources import load_source
    from vizecg.render.training import TrainingImageRenderer
    from vizecg.study.shipped_card import head_readings, readings_section

    path = tmp_path / "prepared.h5"
    write_prepared([load_source("synthetic", n_records=24, seed=5, progress=False)], path,
                   split_fractions=(0.25, 0.25, 0.5), progress=False)
    classifier = load_classifier(with_head[1], device="cpu")
    frame = head_readings(classifier, path, decimate=4, records=6, batch_size=4)
    assert list(frame["measurement"]) == list(MEASUREMENT_TARGETS)
    # the same numbers by hand: the first 6 test records, paper look at twice the size, read back
    rows = read_index(path).query("split == 'test'").index.to_numpy()[:6]
    signals = read_signals(path, rows)
    renderer = TrainingImageRenderer(HEIGHT, WIDTH, page_preparation="predict", render_scale=2.0)
    pages = np.stack([renderer(signal, int(row), 0) for signal, row in zip(signals, rows)])
    _, read = classifier.read(np.ascontiguousarray(pages.transpose(0, 3, 1, 2), np.float32) / 255.0)
    truth = measure_records(signals)
    heart = frame.set_index("measurement").loc["heart_rate_bpm"]
    assert heart["records"] == 6
    column = list(MEASUREMENT_TARGETS).index("heart_rate_bpm")
    assert np.isclose(heart["median |error|"], np.median(np.abs(truth["heart_rate_bpm"] - read[:, column])),
                      atol=1e-3)
    meta = json.loads((with_head[1] / META_FILE).read_text())
    section = "\n".join(readings_section(meta, {"synthetic test": frame}))
    assert "| synthetic test | heart_rate_bpm | 6 |" in section
    assert readings_section(json.loads((vizecgnet[1] / META_FILE).read_text()), None) == []
    assert head_readings(load_classifier(vizecgnet[1], device="cpu"), path, decimate=4) is None
