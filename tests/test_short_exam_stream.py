"""``input.short_exam_share``: a share of the training stream's records shown as the 7 s exams
CODE-15% stores (centred, zeros around), to the signal and the page alike; a share of 0 changes
nothing."""
from __future__ import annotations

import pytest
import torch

from vizecg.data.preprocess import SHORT_EXAM_SAMPLES
from vizecg.data.stream import SyntheticStreamDataset
from vizecg.render.training import TrainingImageRenderer
from vizecg.study.config import load_params
from vizecg.study.runs import make_dataset


def _stream(share: float, **kwargs) -> SyntheticStreamDataset:
    return SyntheticStreamDataset(40, stream_seed=1, holdout_seed=0, short_exam_share=share,
                                  gain_augment=(0.5, 2.0), **kwargs)


def _flat_ends(signal: torch.Tensor) -> bool:
    pad = (signal.shape[-1] - SHORT_EXAM_SAMPLES) // 2
    return bool(torch.all(signal[:, :pad - 1] == 0) and torch.all(signal[:, -(pad - 1):] == 0))


def test_a_share_of_zero_gives_the_items_of_a_stream_without_the_option() -> None:
    plain = SyntheticStreamDataset(40, stream_seed=1, holdout_seed=0, gain_augment=(0.5, 2.0))
    zero = _stream(0.0)
    for item in (0, 7, 39):
        assert torch.equal(plain[item]["signal"], zero[item]["signal"])


def test_the_chosen_share_of_records_is_short_and_the_rest_untouched() -> None:
    plain, mixed = _stream(0.0), _stream(0.5)
    short = [_flat_ends(mixed[i]["signal"]) for i in range(len(mixed))]
    assert 10 <= sum(short) <= 30  # 40 draws at 0.5
    assert short == [mixed.is_short_exam(mixed.record_index(i), 0) for i in range(len(mixed))]
    for item, is_short in enumerate(short):
        a, b = plain[item], mixed[item]
        assert torch.equal(a["label"], b["label"])
        if not is_short:
            assert torch.equal(a["signal"], b["signal"])
            assert not _flat_ends(a["signal"])
    mixed.set_epoch(1)  # another epoch draws again
    assert [_flat_ends(mixed[i]["signal"]) for i in range(len(mixed))] != short or sum(short) in (0, 40)


def test_the_page_shows_the_short_exam_too() -> None:
    """The signal and the page agree: the page of a short exam has flat ends in every row."""
    renderer = TrainingImageRenderer(64, 178)
    full, short = _stream(0.0, image_renderer=renderer), _stream(1.0, image_renderer=renderer)
    a, b = full[3]["image"].float(), short[3]["image"].float()
    assert a.shape == b.shape
    # 1.6 s of 10.24 s at the left of each row carries no trace: the left tenth of the page is
    # darker on the 10 s page than on the 7 s one
    left = slice(int(0.02 * a.shape[-1]), int(0.12 * a.shape[-1]))
    assert b[..., left].mean() > a[..., left].mean()
    assert not torch.equal(a, b)


def test_short_exam_share_is_checked() -> None:
    with pytest.raises(ValueError, match="short_exam_share"):
        _stream(1.5)
    params = load_params(profile="smoke")
    params["input"]["short_exam_share"] = 0.3
    stream = make_dataset(params, "unused", "train", train=True, with_image=False)
    assert stream.short_exam_share == 0.3
    params["data"]["train_stream"] = None
    with pytest.raises(ValueError, match="train_stream"):
        make_dataset(params, "unused", "train", train=True, with_image=False)
