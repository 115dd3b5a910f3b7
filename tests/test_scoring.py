"""``score_run`` stores a run's validation and test probabilities once: reopening a finished run's
notebook reuses them, while new weights, a lost threshold record or rewritten prepared data are
scored again."""
from __future__ import annotations

import os

import numpy as np
import pytest

from vizecg.study.config import load_params
from vizecg.study.data_prep import prepare_dataset
from vizecg.study.runs import load_predictions, predictions_file, prepared_file, run_dir, score_run, train_run
from vizecg.training.checkpoint import read_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    work = tmp_path_factory.mktemp("scoring")
    params = load_params(profile="smoke")
    params["runs"]["scored"] = {"model": "resnet18", "inference": ["image"], "train": {"epochs": 1}}
    prepare_dataset(params, work, progress=False)
    train_run(params, "scored", work, progress=False)
    score_run(params, "scored", work, progress=False)
    return params, work


def _forbid_prediction(monkeypatch):
    import vizecg.evaluation

    def refuse(*args, **kwargs):
        raise AssertionError("predicted again")

    monkeypatch.setattr(vizecg.evaluation, "predict_probs", refuse)


def test_a_scored_run_is_not_predicted_again(scored, monkeypatch) -> None:
    params, work = scored
    before = load_predictions(work, "scored")
    assert set(before) == {"y_val", "y_test", "val@image", "test@image"}
    _forbid_prediction(monkeypatch)
    score_run(params, "scored", work, progress=False)
    after = load_predictions(work, "scored")
    assert all(np.array_equal(before[key], after[key]) for key in before)


def test_new_weights_lost_thresholds_or_rewritten_data_are_scored_again(scored, monkeypatch) -> None:
    params, work = scored
    best = run_dir(work, "scored") / "best.pt"
    payload = read_checkpoint(best)

    # the thresholds tuned from the stored predictions are gone (as after fit rewrites best.pt)
    save_checkpoint({k: v for k, v in payload.items() if k not in ("thresholds", "thresholds_by_path")}, best)
    with monkeypatch.context() as patch:
        _forbid_prediction(patch)
        with pytest.raises(AssertionError, match="predicted again"):
            score_run(params, "scored", work, progress=False)
    score_run(params, "scored", work, progress=False)
    assert "thresholds_by_path" in read_checkpoint(best)

    # other weights under the same name
    changed = read_checkpoint(best)
    name = next(iter(changed["state_dict"]))
    changed["state_dict"][name] = changed["state_dict"][name] + 0.01
    save_checkpoint(changed, best)
    with monkeypatch.context() as patch:
        _forbid_prediction(patch)
        with pytest.raises(AssertionError, match="predicted again"):
            score_run(params, "scored", work, progress=False)
    score_run(params, "scored", work, progress=False)

    # the prepared file was written again
    prepared = prepared_file(work)
    stat = prepared.stat()
    os.utime(prepared, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with monkeypatch.context() as patch:
        _forbid_prediction(patch)
        with pytest.raises(AssertionError, match="predicted again"):
            score_run(params, "scored", work, progress=False)


def test_predictions_without_a_key_are_scored_again(scored, monkeypatch) -> None:
    """Predictions written before the key existed (or by hand) are not trusted."""
    params, work = scored
    score_run(params, "scored", work, progress=False)
    stored = load_predictions(work, "scored")
    np.savez(predictions_file(work, "scored"), **stored)
    _forbid_prediction(monkeypatch)
    with pytest.raises(AssertionError, match="predicted again"):
        score_run(params, "scored", work, progress=False)
