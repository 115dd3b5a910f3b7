"""The replay pool serves exactly what the stream draws, refreshes on schedule and resumes bit for bit."""
from __future__ import annotations

import pytest
import torch

from vizecg.data.replay_pool import ReplayPool
from vizecg.data.stream import SyntheticStreamDataset
from vizecg.render.training import TrainingImageRenderer


def _stream(with_image: bool = True) -> SyntheticStreamDataset:
    renderer = TrainingImageRenderer(64, 178, randomize_style=True, artifact_severity=(0.0, 0.6), seed=3,
                                     curriculum=(1, 2)) if with_image else None
    return SyntheticStreamDataset(4, stream_seed=5, holdout_seed=0, decimate=4, image_renderer=renderer,
                                  gain_augment=(0.5, 2.0), seed=2)


def test_contents_cycle_through_the_pool_oldest_first():
    pool = ReplayPool(_stream(False), size=5, refresh=2, progress=False)
    assert pool.contents(0) == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0)]
    assert pool.contents(1) == [(5, 1), (6, 1), (2, 0), (3, 0), (4, 0)]
    assert pool.contents(2) == [(5, 1), (6, 1), (7, 2), (8, 2), (4, 0)]
    assert pool.contents(3) == [(10, 3), (6, 1), (7, 2), (8, 2), (9, 3)]
    # far along, only the last epochs remain and every record is distinct
    late = pool.contents(40)
    assert len({index for index, _ in late}) == 5 and min(look for _, look in late) >= 38
    assert ReplayPool(_stream(False), size=3, refresh=0, progress=False).contents(7) == [(0, 0), (1, 0), (2, 0)]


def test_fresh_epochs_redraw_the_whole_pool_before_the_replaying_starts():
    pool = ReplayPool(_stream(False), size=3, refresh=1, fresh_epochs=3, progress=False)
    assert pool.contents(0) == [(0, 0), (1, 0), (2, 0)]
    assert pool.contents(2) == [(6, 2), (7, 2), (8, 2)]  # every fresh epoch holds new records only
    assert pool.contents(3) == [(9, 3), (7, 2), (8, 2)]  # then one slot a turn, oldest first
    assert pool.contents(5) == [(9, 3), (10, 4), (11, 5)]
    # records never repeat across the whole schedule, and one fresh epoch is the plain pool
    seen = [index for epoch in range(9) for index, look in pool.contents(epoch) if look == epoch]
    assert len(seen) == len(set(seen)) == 3 * 3 + 6
    plain, one = (ReplayPool(_stream(False), size=5, refresh=2, progress=False, **kw) for kw in ({}, {"fresh_epochs": 1}))
    assert all(plain.contents(e) == one.contents(e) for e in range(12))
    with pytest.raises(ValueError, match="fresh_epochs"):
        ReplayPool(_stream(False), size=3, refresh=1, fresh_epochs=0)


def test_items_are_what_the_stream_draws():
    stream = _stream()
    pool = ReplayPool(stream, size=4, refresh=2, progress=False)
    pool.set_epoch(0)
    pool.set_epoch(1)
    assert pool.record_indices().tolist() == [4, 5, 2, 3]
    for slot, (index, look) in enumerate(pool.contents(1)):
        expected = stream.draw(index, look)
        item = pool[slot]
        assert torch.equal(item["signal"], expected["signal"])
        assert torch.equal(item["image"], expected["image"])  # uint8 storage is exact
        assert torch.equal(item["label"], expected["label"])
        assert int(item["index"]) == expected["index"]
    # the slots kept from epoch 0 still hold epoch 0's look (clean pages: curriculum starts at 1)
    assert torch.equal(pool[2]["image"], stream.draw(2, 0)["image"])


def test_resume_redraws_the_same_pool_and_leaves_the_global_rng_alone():
    stepped = ReplayPool(_stream(), size=4, refresh=3, progress=False)
    for epoch in range(4):
        stepped.set_epoch(epoch)
    torch.manual_seed(11)
    before = torch.rand(3)
    torch.manual_seed(11)
    resumed = ReplayPool(_stream(), size=4, refresh=3, num_workers=1, progress=False)
    resumed.set_epoch(3)
    assert torch.equal(torch.rand(3), before)
    for slot in range(4):
        for key in ("signal", "image", "label"):
            assert torch.equal(stepped[slot][key], resumed[slot][key])


def test_bad_settings_and_unset_epoch_are_refused():
    with pytest.raises(ValueError, match="refresh"):
        ReplayPool(_stream(False), size=4, refresh=5)
    with pytest.raises(ValueError, match="size"):
        ReplayPool(_stream(False), size=0, refresh=0)
    with pytest.raises(RuntimeError, match="set_epoch"):
        ReplayPool(_stream(False), size=2, refresh=1, progress=False)[0]


def test_a_run_with_a_replay_pool_trains_through_train_run(tmp_path):
    """``train.replay_pool`` in a run's entry reaches the engine: each epoch is the pool, and a
    rerun of the finished run is skipped."""
    from vizecg.study.config import load_params
    from vizecg.study.data_prep import prepare_dataset
    from vizecg.study.runs import train_run

    params = load_params(profile="smoke")
    params["runs"]["pooled"] = {"model": "resnet18", "inference": ["image"],
                                "train": {"epochs": 3, "replay_pool": {"size": 48, "refresh": 16, "fresh_epochs": 2}}}
    prepare_dataset(params, tmp_path, progress=False)
    result = train_run(params, "pooled", tmp_path, progress=False)
    assert [int(s) for s in result.history["samples_seen"]] == [48, 96, 144]
    again = train_run(params, "pooled", tmp_path, progress=False)
    assert again.history["samples_seen"].tolist() == result.history["samples_seen"].tolist()
