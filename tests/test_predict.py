"""The predict command end to end: a tiny checkpoint, a folder of good and bad files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vizecg.contract import LABELS
from vizecg.models import create_model
from vizecg.predict import main
from vizecg.training.checkpoint import save_checkpoint

from test_page_reader import draw_ecg_page

REPO = Path(__file__).resolve().parents[1]


def write_checkpoint(path: Path, **extra) -> Path:
    torch.manual_seed(0)
    options = {"variant": "small", "width_mult": 0.25}
    model = create_model("mobilenetv3", **options)
    with torch.no_grad():  # distinct per-class outputs, so label order and thresholds are visible
        model.net.classifier[-1].bias.copy_(torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 2.0]))
    payload = {"model_name": "mobilenetv3", "model_options": options, "state_dict": model.state_dict(),
               "labels": tuple(LABELS),
               "input": {"decimate": 4, "image_height": 64, "image_width": 128, "render_style": {}},
               "epoch": 1, "metrics": {}, "params": {}, **extra}
    return save_checkpoint(payload, path)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.pt")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    from skimage import data
    root = tmp_path_factory.mktemp("pages")
    Image.fromarray(draw_ecg_page(seed=1)).save(root / "a_page.png")
    Image.fromarray(draw_ecg_page(seed=2)).save(root / "b_page.JPG", quality=90)
    (root / "c_empty.png").write_bytes(b"")
    (root / "d_notes.jpg").write_text("not an image\n" * 10)
    Image.fromarray(data.coffee()).save(root / "e_coffee.png")
    (root / "readme.txt").write_text("ignored: not an image suffix")
    return root


def run_json(capsys, *args) -> tuple[int, dict]:
    status = main([*map(str, args), "--json"])
    captured = capsys.readouterr()
    return status, json.loads(captured.out)


def test_json_document_for_a_mixed_folder(capsys, checkpoint, folder):
    status, document = run_json(capsys, folder, "--checkpoint", checkpoint)
    assert status == 1
    assert document["labels"] == list(LABELS)
    assert document["checkpoint"] == str(checkpoint)
    results = {Path(r["file"]).name: r for r in document["results"]}
    assert list(results) == ["a_page.png", "b_page.JPG", "c_empty.png", "d_notes.jpg", "e_coffee.png"]
    for name in ("a_page.png", "b_page.JPG"):
        result = results[name]
        assert result["error"] is None
        assert list(result["probabilities"]) == list(LABELS)
        values = np.array(list(result["probabilities"].values()))
        assert ((values > 0) & (values < 1)).all()
        assert np.all(np.diff(values) > 0)  # follows the per-class biases: the label order is kept
        assert result["positive"] == [label for label, p in result["probabilities"].items() if p >= 0.5]
    assert "empty" in results["c_empty.png"]["error"] and "c_empty.png" in results["c_empty.png"]["error"]
    assert "not a readable image" in results["d_notes.jpg"]["error"]
    assert "does not look like an ECG" in results["e_coffee.png"]["error"]
    for name in ("c_empty.png", "d_notes.jpg", "e_coffee.png"):
        assert results[name]["probabilities"] is None and results[name]["positive"] is None


def test_errors_go_to_stderr_and_all_good_exits_zero(capsys, checkpoint, folder):
    status = main([str(folder / "a_page.png"), str(folder / "c_empty.png"), "--checkpoint", str(checkpoint)])
    captured = capsys.readouterr()
    assert status == 1
    assert "c_empty.png" in captured.err and "c_empty.png" not in captured.out
    assert "a_page.png" in captured.out and "positive:" in captured.out
    assert main([str(folder / "a_page.png"), "--checkpoint", str(checkpoint)]) == 0


def test_thresholds_from_option_and_checkpoint(capsys, tmp_path, checkpoint, folder):
    page = folder / "a_page.png"
    _, everything = run_json(capsys, page, "--checkpoint", checkpoint, "--threshold", "0")
    assert everything["results"][0]["positive"] == list(LABELS)
    tuned = write_checkpoint(tmp_path / "tuned.pt", thresholds={label: 0.99 for label in LABELS} | {"1dAVb": 0.01})
    _, document = run_json(capsys, page, "--checkpoint", tuned)
    assert document["thresholds"]["1dAVb"] == 0.01
    assert document["results"][0]["positive"] == ["1dAVb"]


def test_no_ecg_check_classifies_any_readable_image(capsys, checkpoint, folder):
    status, document = run_json(capsys, folder / "e_coffee.png", "--checkpoint", checkpoint, "--no-ecg-check")
    assert status == 0 and document["results"][0]["probabilities"] is not None


def test_missing_checkpoint_and_empty_folder(capsys, tmp_path, monkeypatch, checkpoint):
    monkeypatch.chdir(tmp_path)
    # the study folder may hold a trained model after `dvc repro`; this test needs none anywhere
    monkeypatch.setattr("vizecg.predict.STUDY_ROOT", tmp_path)
    status = main([str(tmp_path)])
    assert status == 2
    assert "dvc repro" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    status, document = run_json(capsys, empty, "--checkpoint", checkpoint)
    assert status == 1 and "no image files" in document["results"][0]["error"]


def test_signal_checkpoint_is_refused(capsys, tmp_path):
    model = create_model("inception_time")
    path = save_checkpoint({"model_name": "inception_time", "model_options": {}, "state_dict": model.state_dict(),
                            "labels": tuple(LABELS), "input": {"decimate": 1}, "epoch": 0, "metrics": {},
                            "params": {}}, tmp_path / "signal.pt")
    assert main([str(tmp_path), "--checkpoint", str(path)]) == 2
    assert "signal" in capsys.readouterr().err


def test_command_line_module(checkpoint, folder):
    """``python -m vizecg.predict`` prints clean JSON on stdout and exits 1 with a bad file in the folder."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    completed = subprocess.run([sys.executable, "-m", "vizecg.predict", str(folder), "--checkpoint", str(checkpoint),
                                "--json"], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert completed.returncode == 1, completed.stderr
    document = json.loads(completed.stdout)
    assert sum(r["error"] is None for r in document["results"]) == 2
    assert "c_empty.png" in completed.stderr


def test_csv_holds_one_row_per_file_like_the_json(capsys, tmp_path, checkpoint, folder):
    import csv

    table = tmp_path / "out" / "results.csv"
    status, document = run_json(capsys, folder, "--checkpoint", checkpoint, "--csv", table)
    assert status == 1
    rows = list(csv.DictReader(table.open(newline="")))
    assert [r["file"] for r in rows] == [r["file"] for r in document["results"]]
    for row, result in zip(rows, document["results"]):
        if result["error"] is None:
            assert [float(row[f"p_{label}"]) for label in LABELS] == pytest.approx(
                list(result["probabilities"].values()), abs=1e-6)
            assert row["positive"].split(";") == result["positive"] and row["error"] == ""
        else:
            assert row["error"] == result["error"] and row["p_AF"] == "" and row["positive"] == ""
    assert main([str(folder), "--checkpoint", str(checkpoint), "--csv", str(tmp_path)]) == 2  # a folder
    assert "--csv" in capsys.readouterr().err


def test_explain_draws_the_attention_over_each_classified_page(capsys, tmp_path):
    from vizecg.explain import image_path_maps, attention_maps
    from vizecg.models import create_model as build

    torch.manual_seed(0)
    model = build("vizecgnet", signal_width=4, image_width=4, embed_dim=16, head_hidden=16, num_heads=2)
    outputs = attention_maps(model, None, torch.rand(2, 3, 64, 178))
    maps = image_path_maps(outputs, item=1)
    assert set(maps) == {"CMAM image (deployed, image-only)", "SMAM image"}
    for grid in maps.values():  # attention each key token receives, averaged over queries: sums to 1
        assert grid.shape == outputs["token_grid"]["image"] and grid.sum() == pytest.approx(1.0, abs=1e-5)

    pages = tmp_path / "pages"
    (pages / "sub").mkdir(parents=True)
    Image.fromarray(draw_ecg_page(seed=1)).save(pages / "a.png")
    Image.fromarray(draw_ecg_page(seed=2)).save(pages / "sub" / "a.png")  # same stem, other folder
    (pages / "b.png").write_bytes(b"")
    shipped = REPO / "models" / "vizecgnet_image"
    if not (shipped / "model.json").is_file():
        pytest.skip("no shipped model in this checkout")
    out = tmp_path / "explain"
    status, document = run_json(capsys, pages / "a.png", pages / "sub" / "a.png", pages / "b.png",
                                "--checkpoint", shipped, "--explain", out)
    assert status == 1
    written = [r.get("explanation") for r in document["results"]]
    assert written[2] is None and len(set(written[:2])) == 2
    for path in written[:2]:
        image = Image.open(path)
        assert image.format == "PNG" and image.height > image.width  # the page and two maps under it
    assert sorted(p.name for p in out.iterdir()) == ["a.0.attention.png", "a.1.attention.png"]
