"""The image path learns: a positive control, its negative controls, the training stream and the curriculum.

The positive control trains a tiny image ResNet18 through the study's own engine on
clean rendered pages to tell sinus bradycardia from sinus tachycardia (beat spacing
differs about twofold on the page). It must score well above chance, and the same
recipe must stay at chance when the labels are shuffled or the pages blank: if images
and labels were misaligned, pages empty or the normalisation broken, the positive
control would fail with them.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch.utils.data import Dataset

from vizecg.contract import LABELS
from vizecg.data.dataset import image_tensor
from vizecg.data.preprocess import preprocess_batch
from vizecg.data.stream import RENDER_INDEX_OFFSET, SyntheticStreamDataset
from vizecg.data.synthetic import generate
from vizecg.evaluation import predict_probs
from vizecg.models import create_loss, create_model
from vizecg.render.training import TrainingImageRenderer
from vizecg.training.engine import fit

SB, ST = LABELS.index("SB"), LABELS.index("ST")
PAGE = (96, 268)
N_TRAIN, N_VAL = 320, 120


class PageSet(Dataset):
    """Pre-rendered pages and labels in memory (the positive control must be fast)."""

    def __init__(self, images: torch.Tensor, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels.astype(np.float32)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": torch.from_numpy(self.labels[i]), "index": i}


@pytest.fixture(scope="module")
def sb_st_pages() -> tuple[torch.Tensor, np.ndarray]:
    """Clean paper-look pages of records that are SB or ST (and nothing else), half each."""
    raw, labels = generate(N_TRAIN + N_VAL, seed=7, prevalence={"SB": 0.5, "ST": 0.5, "1dAVb": 0.0, "RBBB": 0.0,
                                                                 "LBBB": 0.0, "AF": 0.0}, label_noise=0.0)
    signals, _ = preprocess_batch(raw, 400)
    renderer = TrainingImageRenderer(*PAGE)
    images = torch.stack([image_tensor(renderer(signal, i)) for i, signal in enumerate(signals)])
    return images, labels


def train_and_score(images: torch.Tensor, labels: np.ndarray, tmp_path, epochs: int = 8) -> float:
    """Val AUROC of ST against SB after training a width-4 image ResNet18 on the first N_TRAIN pages."""
    torch.manual_seed(0)
    model = create_model("resnet18", base_width=4)
    train, val = PageSet(images[:N_TRAIN], labels[:N_TRAIN]), PageSet(images[N_TRAIN:], labels[N_TRAIN:])
    fit(model, create_loss(model), train, val, out_dir=tmp_path, epochs=epochs, batch_size=16, lr=3e-3,
        lr_min=1e-4, inputs=("image",), progress=False, tensorboard=False)
    probs = predict_probs(model, val, inputs=("image",), batch_size=64, device="cpu", progress=False)
    keep = labels[N_TRAIN:, SB] + labels[N_TRAIN:, ST] == 1
    return float(roc_auc_score(labels[N_TRAIN:][keep, ST], probs[keep, ST]))


def test_positive_control_learns_sb_against_st_from_clean_pages(sb_st_pages, tmp_path) -> None:
    images, labels = sb_st_pages
    rhythm = labels[:, SB] + labels[:, ST]
    assert rhythm.mean() > 0.9, "the generator should make nearly every record SB or ST here"
    assert 0.3 < labels[:, ST].mean() < 0.7
    assert train_and_score(images, labels, tmp_path) > 0.9


def test_negative_control_shuffled_labels_stay_at_chance(sb_st_pages, tmp_path) -> None:
    images, labels = sb_st_pages
    shuffled = labels[np.random.default_rng(0).permutation(len(labels))]
    assert train_and_score(images, shuffled, tmp_path) < 0.75


def test_negative_control_blank_pages_stay_at_chance(sb_st_pages, tmp_path) -> None:
    images, labels = sb_st_pages
    blank = torch.ones_like(images)
    assert train_and_score(blank, labels, tmp_path, epochs=2) < 0.75


# --- the endless training stream ----------------------------------------------------------------

def test_stream_is_deterministic_and_new_every_epoch() -> None:
    renderer = TrainingImageRenderer(64, 178, randomize_style=True, artifact_severity=(0.0, 0.5))
    make = lambda: SyntheticStreamDataset(4, stream_seed=3, holdout_seed=0, image_renderer=renderer,  # noqa: E731
                                          decimate=4, gain_augment=(0.5, 2.0))
    a, b = make(), make()
    first = a[1]
    assert torch.equal(first["image"], b[1]["image"]) and torch.equal(first["signal"], b[1]["signal"])
    assert first["signal"].shape == (12, 1024) and first["image"].shape == (3, 64, 178)
    assert first["index"] == RENDER_INDEX_OFFSET + 1
    a.set_epoch(1)
    assert a.record_index(1) == 5
    assert not torch.equal(a[1]["signal"], first["signal"])
    repeat = SyntheticStreamDataset(4, stream_seed=3, distinct_epochs=False, decimate=4)
    repeat.set_epoch(3)
    assert repeat.record_index(1) == 1


def test_stream_labels_and_signals_are_the_generator_records() -> None:
    stream = SyntheticStreamDataset(6, stream_seed=5, decimate=1)
    raw, labels = generate(6, seed=5)
    signals, _ = preprocess_batch(raw, 400)
    for i in range(6):
        item = stream[i]
        np.testing.assert_array_equal(item["label"].numpy(), labels[i].astype(np.float32))
        np.testing.assert_allclose(item["signal"].numpy(), signals[i].T, atol=1e-6)


def test_stream_refuses_the_holdout_seed_and_bad_sizes() -> None:
    with pytest.raises(ValueError, match="share their patients"):
        SyntheticStreamDataset(8, stream_seed=0, holdout_seed=0)
    with pytest.raises(ValueError, match="records_per_epoch"):
        SyntheticStreamDataset(0, stream_seed=1)
    with pytest.raises(IndexError):
        SyntheticStreamDataset(2, stream_seed=1)[2]


# --- the curriculum -----------------------------------------------------------------------------

def test_curriculum_starts_clean_and_ramps_to_the_full_mix() -> None:
    signal = generate(1, seed=1)[0][0]
    clean = TrainingImageRenderer(64, 178)
    ramped = TrainingImageRenderer(64, 178, randomize_style=True, artifact_severity=(0.2, 0.8), curriculum=(2, 4))
    assert [ramped.broad_fraction(e) for e in range(6)] == [0.0, 0.0, pytest.approx(1 / 3), pytest.approx(2 / 3),
                                                            1.0, 1.0]
    for index in range(5):  # before start_epoch every page is the clean paper look
        np.testing.assert_array_equal(ramped(signal, index, epoch=1), clean(signal, index))
    full = TrainingImageRenderer(64, 178, randomize_style=True, artifact_severity=(0.2, 0.8))
    for index in range(5):  # from full_epoch on, the curriculum is the plain randomised renderer
        np.testing.assert_array_equal(ramped(signal, index, epoch=4), full(signal, index, epoch=4))
    broad_share = np.mean([ramped.style_for(i, 3) != clean.style or ramped._look(i, 3)[1] > 0 for i in range(300)])
    assert 0.5 < broad_share < 0.8  # about 2/3 of the pages are broad at epoch 3
    with pytest.raises(ValueError, match="curriculum"):
        TrainingImageRenderer(64, 178, curriculum=(3, 1))


def test_clean_pages_of_the_curriculum_can_take_every_layout() -> None:
    from vizecg.render.draw import render_ecg
    from vizecg.render.style import LAYOUTS
    from vizecg.render.training import sample_style

    signal = generate(1, seed=1)[0][0]
    options = dict(randomize_style=True, artifact_severity=(0.2, 0.8), curriculum=(2, 4))
    fixed = TrainingImageRenderer(64, 178, **options)
    varied = TrainingImageRenderer(64, 178, clean_style="random", **options)
    looks = [varied._look(i, 1) for i in range(100)]
    assert all(severity == 0.0 for _, severity, _, _ in looks)  # still clean before start_epoch
    assert {style.layout for style, *_ in looks} == set(LAYOUTS)  # in every layout
    assert {fixed.style_for(i, 1) for i in range(100)} == {fixed.style}
    with pytest.raises(ValueError, match="need backend='fast'"):
        TrainingImageRenderer(64, 178, clean_style="random", backend="ecg_plot")
    # the clean page is the sampled style drawn as it is, without artifacts
    style_rng = varied._streams(3, 1)[0]  # the style stream of page 3 at epoch 1
    np.testing.assert_array_equal(varied(signal, 3, epoch=1),
                                  render_ecg(signal, style=sample_style(style_rng, 64, 178)))
    for index in range(5):  # broad pages and pages after the ramp are unchanged by the option
        np.testing.assert_array_equal(varied(signal, index, epoch=4), fixed(signal, index, epoch=4))
    assert varied.config()["clean_style"] == "random" and fixed.config()["clean_style"] == "fixed"
    with pytest.raises(ValueError, match="clean_style"):
        TrainingImageRenderer(64, 178, clean_style="paper")


def test_the_share_of_50mm_s_pages_changes_the_speed_and_nothing_else() -> None:
    mixed = TrainingImageRenderer(64, 178, randomize_style=True)
    slow_only = TrainingImageRenderer(64, 178, randomize_style=True, share_50mm_s=0.0)
    fast_only = TrainingImageRenderer(64, 178, randomize_style=True, share_50mm_s=1.0)
    pages = range(400)
    speeds = [mixed.style_for(i).paper_speed_mm_s for i in pages]
    assert 0.05 < np.mean(np.equal(speeds, 50.0)) < 0.15  # the sampler's 10 %
    assert {slow_only.style_for(i).paper_speed_mm_s for i in pages} == {25.0}
    assert {fast_only.style_for(i).paper_speed_mm_s for i in pages} == {50.0}
    for i in pages:  # every other attribute of each page is drawn alike (a clinical header names the speed)
        style = mixed.style_for(i)
        assert slow_only.style_for(i) == style.replace(paper_speed_mm_s=25.0,
                                                       header=style.header.replace("50mm/s", "25mm/s"))
    assert slow_only.config()["share_50mm_s"] == 0.0
    with pytest.raises(ValueError, match="share_50mm_s"):
        TrainingImageRenderer(64, 178, randomize_style=True, share_50mm_s=1.5)


def test_deployed_page_preparation_reads_the_larger_page_as_predict_does() -> None:
    from vizecg.page_reader import prepare_page
    from vizecg.render.draw import render_ecg

    signal = generate(1, seed=1)[0][0]
    deployed = TrainingImageRenderer(64, 178, page_preparation="predict", render_scale=2.0)
    page = deployed(signal, 0)
    assert page.shape == (64, 178, 3) and page.dtype == np.uint8
    large = render_ecg(signal, style=deployed.style.replace(height=128, width=356))
    expected = np.rint(prepare_page(large, 64, 178).transpose(1, 2, 0) * 255).astype(np.uint8)
    np.testing.assert_array_equal(page, expected)
    # not the direct render: predict crops to the grid and renormalises the page
    assert np.abs(page.astype(float) - TrainingImageRenderer(64, 178)(signal, 0)).mean() > 2.0
    broad = TrainingImageRenderer(64, 178, randomize_style=True, artifact_severity=(0.5, 0.8),
                                  page_preparation="predict", render_scale=2.0)
    np.testing.assert_array_equal(broad(signal, 7, 3), broad(signal, 7, 3))  # deterministic per (index, epoch)
    assert broad.config()["page_preparation"] == "predict" and broad.config()["render_scale"] == 2.0
    with pytest.raises(ValueError, match="page_preparation"):
        TrainingImageRenderer(64, 178, page_preparation="resize")
    with pytest.raises(ValueError, match="render_scale needs"):
        TrainingImageRenderer(64, 178, render_scale=2.0)


def test_clean_renders_skip_the_sheet_and_skew_search_without_changing_a_pixel() -> None:
    """A clean page skips the sheet finder and the skew estimate (4/5 of its cost): exact only while
    both find nothing on clean renders, which this holds for every layout at the release's size."""
    from vizecg.page_reader import prepare_page
    from vizecg.render.draw import render_ecg
    from vizecg.render.training import prepared_page, sample_style

    signals = generate(8, seed=4)[0]
    rng = np.random.default_rng(5)
    styles, layouts = [], set()
    while len(layouts) < 4:  # a page of each layout the training renderer draws, at twice 128 x 357
        style = sample_style(rng, 256, 714)
        if style.layout not in layouts:
            layouts.add(style.layout)
            styles.append(style)
    styles.append(TrainingImageRenderer(256, 714).style)  # the paper look of the curriculum's clean pages
    for signal, style in zip(signals, styles):
        page = render_ecg(signal, style=style)
        full = np.clip(np.rint(prepare_page(page, 128, 357).transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(prepared_page(page, 128, 357, clean_render=True), full, err_msg=style.layout)
    # the renderer takes the shortcut for its clean pages only, and they match predict's reading
    deployed = TrainingImageRenderer(128, 357, page_preparation="predict", render_scale=2.0)
    np.testing.assert_array_equal(deployed(signals[0], 3), prepared_page(
        render_ecg(signals[0], style=deployed.style.replace(height=256, width=714)), 128, 357))


def test_sheet_photos_replace_a_share_of_the_artifact_pages_and_leave_the_rest_unchanged() -> None:
    from vizecg.render.artifacts import photograph_sheet
    from vizecg.render.draw import render_ecg
    from vizecg.render.training import prepared_page

    signal = generate(1, seed=2)[0][0]
    options = dict(randomize_style=True, artifact_severity=(0.3, 0.8), page_preparation="predict", render_scale=2.0)
    plain = TrainingImageRenderer(64, 178, **options)
    mixed = TrainingImageRenderer(64, 178, sheet_photo_share=0.3, **options)
    sheets = [i for i in range(12) if mixed.photographs_sheet(i, 4)]
    assert 0 < len(sheets) < 12
    for i in range(12):
        same = np.array_equal(plain(signal, i, 4), mixed(signal, i, 4))
        assert same != (i in sheets), i  # only the photographed prints differ
    assert 0.25 < np.mean([mixed.photographs_sheet(i, 4) for i in range(2000)]) < 0.35
    # a photographed print is the page on A4, photographed on a desk, then read back as predict reads it
    index = sheets[0]
    style, severity, _, artifact_rng = mixed._look(index, 4)
    expected = prepared_page(photograph_sheet(render_ecg(signal, style=style), artifact_rng, severity), 64, 178)
    np.testing.assert_array_equal(mixed(signal, index, 4), expected)
    assert mixed.config()["sheet_photo_share"] == 0.3
    # clean pages (severity 0: validation, the curriculum's first epochs) are never photographed
    clean = TrainingImageRenderer(64, 178, sheet_photo_share=1.0, page_preparation="predict", render_scale=2.0)
    np.testing.assert_array_equal(clean(signal, 0), TrainingImageRenderer(64, 178, page_preparation="predict",
                                                                          render_scale=2.0)(signal, 0))
    with pytest.raises(ValueError, match="sheet_photo_share must"):
        TrainingImageRenderer(64, 178, sheet_photo_share=1.5, page_preparation="predict", render_scale=2.0)
    with pytest.raises(ValueError, match="needs page_preparation"):
        TrainingImageRenderer(64, 178, sheet_photo_share=0.3)


def test_the_release_run_trains_on_photographed_prints() -> None:
    from vizecg.study.config import load_params, params_for_run
    from vizecg.study.runs import image_renderer

    params = params_for_run(load_params("params.yaml", profile="default"), "vizecgnet_release")
    train = image_renderer(params, train=True)
    assert train.sheet_photo_share > 0 and train.page_preparation == "predict"
    assert image_renderer(params, train=False, split="test").severity_range == (0.0, 0.0)  # test pages stay clean
    # it is selected on validation pages drawn as the three routes to predict
    assert image_renderer(params, train=False, split="val").config()["look"] == "routes"
    table_run = load_params("params.yaml", profile="default")
    assert image_renderer(table_run, train=False, split="val").severity_range == (0.0, 0.0)


def test_route_mix_validation_pages_cycle_through_the_three_routes_to_predict() -> None:
    from vizecg.render.artifacts import photograph_sheet
    from vizecg.render.draw import render_ecg
    from vizecg.render.training import VALIDATION_ROUTES, RouteMixRenderer, prepared_page
    from vizecg.study.rendering import PAGE_VARIANTS
    from vizecg.study.runs import image_renderer

    assert VALIDATION_ROUTES == tuple(PAGE_VARIANTS)  # the routes the release pages are scored on, by name
    signal = generate(1, seed=3)[0][0]
    mix = RouteMixRenderer(64, 178, severity=0.5, seed=5, render_scale=2.0)
    clean = TrainingImageRenderer(64, 178, seed=5, page_preparation="predict", render_scale=2.0)
    pages = [mix(signal, i) for i in range(6)]
    assert [mix.route(i) for i in range(6)] == list(VALIDATION_ROUTES) * 2
    np.testing.assert_array_equal(pages[0], clean(signal, 0))  # index % 3 == 0: the clean page
    np.testing.assert_array_equal(pages[1], mix(signal, 1))  # deterministic per index
    for i in (1, 2, 4, 5):  # the photographed routes differ from the clean page of the same record
        assert np.abs(pages[i].astype(int) - clean(signal, i).astype(int)).mean() > 1.0, i
    # the sheet route is the page on A4, photographed on a desk at the severity, read back as predict reads it
    style, severity, _, artifact_rng = mix.renderers["sheet_photo"]._look(2, 0)
    expected = prepared_page(photograph_sheet(render_ecg(signal, style=style), artifact_rng, severity), 64, 178)
    assert severity == 0.5
    np.testing.assert_array_equal(pages[2], expected)
    assert mix.config()["severity"] == 0.5 and mix.config()["page_preparation"] == "predict"
    with pytest.raises(ValueError, match="severity must"):
        RouteMixRenderer(64, 178, severity=0.0)
    params = {"train": {"seed": 0}, "input": {"image_height": 64, "image_width": 178, "validation_look": "routes"}}
    with pytest.raises(ValueError, match="needs input.page_preparation: predict"):
        image_renderer(params, train=False, split="val")
    params["input"]["validation_look"] = "photos"
    with pytest.raises(ValueError, match="validation_look must be one of"):
        image_renderer(params, train=False, split="val")


def test_a_paper_share_draws_that_share_in_the_paper_look_and_leaves_the_other_pages_unchanged() -> None:
    signal = generate(1, seed=3)[0][0]
    options = dict(randomize_style=True, artifact_severity=(0.0, 0.6), clean_style="random", curriculum=(0, 3))
    plain = TrainingImageRenderer(64, 178, **options)
    mixed = TrainingImageRenderer(64, 178, paper_share=0.6, **options)
    in_paper_look = [mixed.style_for(i, 1) == mixed.style for i in range(500)]
    assert 0.54 < np.mean(in_paper_look) < 0.66
    assert np.mean([plain.style_for(i, 1) == plain.style for i in range(500)]) < 0.05
    assert 0 < sum(in_paper_look[:8]) < 8
    for index in range(8):
        if in_paper_look[index]:  # the paper look, with the severity the page has without the option
            style, severity, _, _ = mixed._look(index, 1)
            assert style == mixed._page_style and severity == plain._look(index, 1)[1], index
        else:  # every other page is the page without the option
            np.testing.assert_array_equal(plain(signal, index, 1), mixed(signal, index, 1))
    assert mixed.config()["paper_share"] == 0.6
    np.testing.assert_array_equal(TrainingImageRenderer(64, 178, paper_share=0.0, **options)(signal, 5, 2),
                                  plain(signal, 5, 2))
    with pytest.raises(ValueError, match="paper_share must"):
        TrainingImageRenderer(64, 178, paper_share=1.5, **options)
    with pytest.raises(ValueError, match="paper_share needs"):
        TrainingImageRenderer(64, 178, paper_share=0.5)
