"""The shipped thresholds: tuned on validation pages through predict, pooled over PNG and photo routes."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import torch

from vizecg.contract import LABELS
from vizecg.data.prepared import write_prepared
from vizecg.data.sources import load_source
from vizecg.evaluation.metrics import tune_thresholds
from vizecg.models import create_model, model_entry
from vizecg.predict import load_classifier
from vizecg.shipped_model import META_FILE, ShippedModelError, load_shipped_model, save_shipped_model, update_shipped_meta
from vizecg.study import release_thresholds
from vizecg.study.rendering import PAGE_VARIANTS, page_path
from vizecg.training.checkpoint import save_checkpoint

IMAGE_THRESHOLDS = [0.11, 0.22, 0.33, 0.44, 0.55, 0.66]


def route_frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """Per-file predict output for two routes: on ``photo`` every probability is halved, as the
    bundle-branch blocks' are on photographed pages; one photo is refused."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(LABELS))) < 0.3).astype(int)
    p = np.clip(0.6 * y + 0.4 * rng.random(y.shape), 0, 1)
    rows = []
    for variant, scale in (("png", 1.0), ("photo", 0.5)):
        for i in range(n):
            refused = variant == "photo" and i == 0
            rows.append({"variant": variant, "file": f"r{i}", "error": "not an ECG" if refused else None,
                         **dict(zip(LABELS, y[i])),
                         **{f"p_{label}": np.nan if refused else scale * p[i, c] for c, label in enumerate(LABELS)}})
    return pd.DataFrame(rows)


def test_each_route_and_the_pool_get_their_own_cuts():
    frame = route_frame()
    routes = release_thresholds.tuned_by_route(frame)
    assert set(routes) == {"png", "photo", release_thresholds.POOLED}
    # a route whose probabilities are halved gets cuts near half as high; the pool lies between
    assert np.all(routes["photo"] < routes["png"])
    assert np.all(routes["photo"] <= routes[release_thresholds.POOLED] + 1e-12)
    assert np.all(routes[release_thresholds.POOLED] <= routes["png"] + 1e-12)
    # refused files take no part in tuning
    y, p = release_thresholds.scored(frame[frame["variant"] == "photo"])
    assert len(y) == 59 and not np.isnan(p).any()
    np.testing.assert_array_equal(routes["photo"], tune_thresholds(y, p))


@pytest.fixture()
def shipped(tmp_path):
    """A tiny VizECGNet shipped from a checkpoint whose image path was tuned to IMAGE_THRESHOLDS."""
    torch.manual_seed(0)
    options = dict(model_entry("vizecgnet").tiny_options)
    payload = {"model_name": "vizecgnet", "model_options": options,
               "state_dict": create_model("vizecgnet", **options).state_dict(), "labels": tuple(LABELS),
               "input": {"decimate": 4, "image_height": 64, "image_width": 178, "render_style": {}},
               "epoch": 1, "metrics": {}, "params": {}, "thresholds_by_path": {"image": IMAGE_THRESHOLDS}}
    return save_shipped_model(save_checkpoint(payload, tmp_path / "best.pt"), tmp_path / "shipped")


def test_pooled_thresholds_reach_predict_and_the_release_runs_are_kept(shipped):
    frame = route_frame()
    pooled = release_thresholds.tuned_by_route(frame)[release_thresholds.POOLED]
    tuning = release_thresholds.write_release_thresholds(shipped, frame)["threshold_tuning"]
    np.testing.assert_allclose(load_classifier(shipped, device="cpu").thresholds, pooled)
    assert tuning["records"] == 60
    assert tuning["routes"]["photo"]["refused"] == 1 and tuning["routes"]["png"]["files"] == 60
    assert tuning["release_run"]["thresholds"] == dict(zip(LABELS, IMAGE_THRESHOLDS))
    # a second tuning (another frame) still names the release run's own cuts, not the first tuning's
    again = release_thresholds.write_release_thresholds(shipped, route_frame(seed=1))["threshold_tuning"]
    assert again["release_run"]["thresholds"] == dict(zip(LABELS, IMAGE_THRESHOLDS))
    assert json.loads((shipped / META_FILE).read_text())["threshold_tuning"] == again
    load_shipped_model(shipped)  # the weights still match their recorded hash


@pytest.mark.parametrize("changes, fragment", [
    ({"tensors": []}, "describe the weights"),
    ({"model_options": {}}, "describe the weights"),
    ({"thresholds": {label: 1.5 for label in LABELS}}, "not all in [0, 1]"),
    ({"thresholds": [0.5, 0.5]}, "not one number per label"),
])
def test_meta_updates_cannot_break_the_model(shipped, changes, fragment):
    before = (shipped / META_FILE).read_bytes()
    with pytest.raises(ShippedModelError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        update_shipped_meta(shipped, changes)
    assert (shipped / META_FILE).read_bytes() == before


def test_command_draws_the_validation_pages_once_and_tunes_on_them(tmp_path, shipped, capsys):
    chunk = load_source("synthetic", n_records=16, seed=4, chunk_size=16, progress=False)
    prepared = tmp_path / "prepared.h5"
    write_prepared([chunk], prepared, split_fractions=(0.5, 0.25, 0.25), seed=0, source="synthetic", progress=False)
    validation = release_thresholds.split_labels(prepared)
    assert 0 < len(validation) < 16
    pages, probabilities = tmp_path / "pages", tmp_path / "probabilities.csv"
    argv = [str(shipped), "--prepared", str(prepared), "--pages", str(pages), "--probabilities", str(probabilities),
            "--workers", "1"]
    assert release_thresholds.main(argv) == 0
    assert "validation records x 3 routes" in capsys.readouterr().out
    frame = pd.read_csv(probabilities)
    assert len(frame) == len(PAGE_VARIANTS) * len(validation)
    assert set(frame["file"]) == set(validation["file"])
    written = {path: path.stat().st_mtime_ns for path in pages.rglob("*.*")}
    # the rerun reuses every page; a missing page makes them stale
    assert release_thresholds.main(argv) == 0
    assert {path: path.stat().st_mtime_ns for path in pages.rglob("*.*") if path.name != "labels.csv"} == {
        path: mtime for path, mtime in written.items() if path.name != "labels.csv"}
    assert release_thresholds.pages_match(pages, validation)
    page_path(pages, "photo", validation["file"][0]).unlink()
    assert not release_thresholds.pages_match(pages, validation)
    # pages listed with other labels (another prepared set) are all redrawn, not kept because they exist
    stale = validation.copy()
    stale.loc[0, "SB"] = 1 - stale.loc[0, "SB"]
    stale.to_csv(pages / "labels.csv", index=False)
    release_thresholds.ensure_pages(prepared, pages, workers=1)
    assert release_thresholds.pages_match(pages, validation)
    kept = page_path(pages, "png", validation["file"][1])
    assert kept.stat().st_mtime_ns != written[kept]
