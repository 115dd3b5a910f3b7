"""Rendering: styles, both backends, their agreement, artifacts, the training renderer and the image store."""
from __future__ import annotations

import json
import pickle

import cv2
import h5py
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from vizecg.contract import ContractError
from vizecg.data.synthetic import generate_chunk
from vizecg.render import LAYOUTS, RenderStyle, render_ecg
from vizecg.render.artifacts import ARTIFACTS, ArtifactConfig, apply_artifacts
from vizecg.render.fast import static_layer
from vizecg.render.layout import page_geometry
from vizecg.render.store import open_image_store, render_to_store, store_config
from vizecg.render.style import GRID_COLOURS, PAPER_HEIGHT_PX, PAPER_WIDTH_PX, STYLE_PRESETS
from vizecg.render.training import TrainingImageRenderer

# Measured (benchmarks/bench_render.py, 24 synthetic records): mean SSIM 0.986 at 2128x763 and 0.984-0.989
# at 128x357 and 192x536, minimum 0.977; 0.989-0.993 on LUDB records. The bound leaves room for font
# rendering differences between machines.
SSIM_BOUND = 0.95
SMALL = (128, 357)


def _gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


@pytest.fixture(scope="module")
def records() -> np.ndarray:
    return generate_chunk(4, seed=11).signals


@pytest.fixture(scope="module")
def ecg_plot_pages(records) -> list[np.ndarray]:
    """ecg_plot 0.2.8 pages at natural size for three records (about 2 s each: keep them few)."""
    return [render_ecg(r, backend="ecg_plot") for r in records[:3]]


# -- styles -------------------------------------------------------------------
def test_style_dict_round_trip_and_presets():
    style = RenderStyle(layout="3x4", paper_speed_mm_s=50, gain_mm_mv=20, grid_colour="green",
                        trace_colour=(10, 20, 30), line_width_pt=1.2, height=100, width=300, lead_labels=False,
                        header="hello")
    as_dict = style.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert RenderStyle.from_dict(as_dict) == style
    assert RenderStyle.paper(50, 140) == RenderStyle(height=50, width=140)
    for name in STYLE_PRESETS:
        preset = RenderStyle.preset(name, 64, 180)
        assert (preset.height, preset.width) == (64, 180)
        assert RenderStyle.from_dict(preset.to_dict()) == preset


@pytest.mark.parametrize("changes", [{"layout": "4x3"}, {"gain_mm_mv": 7}, {"paper_speed_mm_s": 30},
                                     {"grid_colour": "purple"}, {"trace_colour": (0, 0, 300)}, {"height": 4},
                                     {"line_width_pt": 0}, {"layout": "3x4", "axis_ticks": True},
                                     {"calibration_pulse": True}])
def test_style_rejects_invalid_values(changes):
    with pytest.raises(ValueError):
        RenderStyle(**changes)


def test_style_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown render style key"):
        RenderStyle.from_dict({"colour": "red"})
    with pytest.raises(ValueError, match="unknown render style preset"):
        RenderStyle.preset("fancy")


# -- backends agree ---------------------------------------------------------------
def test_ecg_plot_page_has_the_measured_natural_size_and_closes_its_figures(ecg_plot_pages):
    import matplotlib.pyplot as plt

    for page in ecg_plot_pages:
        assert page.shape == (PAPER_HEIGHT_PX, PAPER_WIDTH_PX, 3) and page.dtype == np.uint8
    assert plt.get_fignums() == []


@pytest.mark.parametrize("style", [RenderStyle.paper(*SMALL),
                                   RenderStyle.preset("paper_bw", 200, 560).replace(gain_mm_mv=5.0, header="",
                                                                                     lead_labels=False)])
def test_backends_return_the_same_shape(records, style):
    fast = render_ecg(records[0], backend="fast", style=style)
    reference = render_ecg(records[0], backend="ecg_plot", style=style)
    assert fast.shape == reference.shape == (style.height, style.width, 3)
    assert fast.dtype == reference.dtype == np.uint8
    assert structural_similarity(_gray(fast), _gray(reference)) > SSIM_BOUND


def test_fast_matches_ecg_plot_at_full_and_training_size(records, ecg_plot_pages):
    full = RenderStyle.paper()
    small = RenderStyle.paper(*SMALL)
    for record, reference in zip(records, ecg_plot_pages):
        fast_full = render_ecg(record, style=full)
        assert structural_similarity(_gray(fast_full), _gray(reference)) > SSIM_BOUND
        reference_small = cv2.resize(reference, (small.width, small.height), interpolation=cv2.INTER_AREA)
        fast_small = render_ecg(record, style=small)
        assert structural_similarity(_gray(fast_small), _gray(reference_small)) > SSIM_BOUND


def test_fast_grid_is_pixel_exact_with_ecg_plot(ecg_plot_pages, records):
    """Away from traces and text, the fast page equals ecg_plot's pixel for pixel (same snapped grid)."""
    fast = render_ecg(records[0])
    reference = ecg_plot_pages[0]
    # a block inside the lower-right lead row, between baseline wander extremes: rows of the grid only
    band = (slice(700, 725), slice(1200, 2000))
    trace_free = (np.abs(fast[band].astype(int) - reference[band]).sum(-1) < 3).mean()
    assert trace_free > 0.9


def test_ecg_plot_backend_rejects_styles_it_cannot_draw(records):
    with pytest.raises(ValueError, match="ecg_plot 0.2.8 cannot draw"):
        render_ecg(records[0], backend="ecg_plot", style=RenderStyle.preset("clinical_3x4", 64, 180))
    with pytest.raises(ValueError, match="unknown render backend"):
        render_ecg(records[0], backend="svg")


# -- the fast renderer's styles -----------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_and_grid_renders(records, layout):
    for grid in GRID_COLOURS:
        style = RenderStyle(layout=layout, grid_colour=grid, trace_colour=(0, 0, 0), height=90, width=250)
        img = render_ecg(records[1], style=style)
        assert img.shape == (90, 250, 3) and img.dtype == np.uint8
        darker = img.astype(int).sum(-1) < static_layer(style).astype(int).sum(-1) - 30
        assert darker.sum() > 100, "traces missing"
        if grid != "none":
            assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20


def test_gain_speed_labels_and_line_width_change_the_page(records):
    base = RenderStyle(layout="3x4", height=120, width=330)
    reference = render_ecg(records[0], style=base)
    for change in ({"gain_mm_mv": 20.0}, {"paper_speed_mm_s": 50.0}, {"lead_labels": False},
                   {"line_width_pt": 2.0}, {"header": "another header"}):
        assert not np.array_equal(render_ecg(records[0], style=base.replace(**change)), reference), change


def test_rendering_is_deterministic(records):
    style = RenderStyle.preset("clinical_6x2", 100, 280)
    assert np.array_equal(render_ecg(records[2], style=style, seed=1), render_ecg(records[2], style=style, seed=1))


# -- bad input ------------------------------------------------------------------------
@pytest.mark.parametrize("make_bad, message", [
    (lambda s: np.where(np.arange(4096)[:, None] == 5, np.nan, s), "NaN/inf"),
    (lambda s: np.where(np.arange(4096)[:, None] == 5, np.inf, s), "NaN/inf"),
    (lambda s: s.T, "leads first"),
    (lambda s: s[:, :11], "shape"),
    (lambda s: s[:4000], "shape"),
    (lambda s: s * 1000.0, "millivolts"),
    (lambda s: (s * 1000).astype(np.int32), "floating point"),
])
def test_bad_input_raises_contract_error(records, make_bad, message):
    with pytest.raises(ContractError, match=message):
        render_ecg(make_bad(records[0].copy()))


def test_flat_clipped_and_off_page_leads_render_inside_the_frame(records):
    signal = records[0].copy()
    signal[:, 0] = 0.0  # flat lead
    signal[:, 1] = np.clip(signal[:, 1], -0.2, 0.2)  # saturated amplifier
    signal[1000:1010, 6] = 19.0  # within the contract, far beyond the page
    style = RenderStyle.paper(*SMALL)
    img = render_ecg(signal, style=style)
    geom = page_geometry(style)
    sy = style.height / geom.height
    top = int(np.floor(geom.clip[1] * sy))
    # nothing above the page frame (the title band) is drawn by traces: equal to the static page there
    assert np.array_equal(img[:max(top - 1, 0)], static_layer(style)[:max(top - 1, 0)])


# -- artifacts --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clean_page(records) -> np.ndarray:
    return render_ecg(records[0], style=RenderStyle.paper(*SMALL))


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_each_artifact_runs_and_changes_the_page(clean_page, artifact):
    out = apply_artifacts(clean_page, {artifact: 1.0}, 3)
    assert out.shape == clean_page.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - clean_page).mean() > 0.2
    assert np.array_equal(out, apply_artifacts(clean_page, {artifact: 1.0}, 3))


def test_artifacts_are_seeded_and_off_at_zero(clean_page):
    photo = ArtifactConfig.photo(0.7)
    assert np.array_equal(apply_artifacts(clean_page, photo, np.random.default_rng(5)),
                          apply_artifacts(clean_page, photo, np.random.default_rng(5)))
    assert not np.array_equal(apply_artifacts(clean_page, photo, 5), apply_artifacts(clean_page, photo, 6))
    assert np.array_equal(apply_artifacts(clean_page, 0.0, 5), clean_page)
    # more severity, further from the clean page (same random draws)
    distances = [np.abs(apply_artifacts(clean_page, ArtifactConfig.photo(s), 9).astype(int) - clean_page).mean()
                 for s in (0.2, 0.6, 1.0)]
    assert distances[0] < distances[2]


def test_artifact_config_validation(clean_page):
    with pytest.raises(ValueError):
        ArtifactConfig(blur=1.5)
    with pytest.raises(ValueError, match="unknown artifact"):
        ArtifactConfig.from_value({"smudge": 0.3})
    with pytest.raises(ValueError, match="RGB uint8"):
        apply_artifacts(clean_page.astype(np.float32), 0.5, 0)


# -- training renderer -------------------------------------------------------------------
def test_training_renderer_is_deterministic_and_picklable(records):
    renderer = TrainingImageRenderer(*SMALL, randomize_style=True, artifact_severity=(0.0, 1.0), seed=4)
    clone = pickle.loads(pickle.dumps(renderer))
    first = renderer(records[0], 17, 2)
    assert first.shape == (*SMALL, 3) and first.dtype == np.uint8
    assert np.array_equal(first, clone(records[0], 17, 2))
    assert not np.array_equal(first, renderer(records[0], 17, 3))
    other_seed = TrainingImageRenderer(*SMALL, randomize_style=True, artifact_severity=(0.0, 1.0), seed=5)
    assert not np.array_equal(first, other_seed(records[0], 17, 2))


def test_randomized_styles_favour_the_paper_look():
    renderer = TrainingImageRenderer(*SMALL, randomize_style=True, seed=0)
    layouts = [renderer.style_for(i, 0).layout for i in range(200)]
    counts = {layout: layouts.count(layout) for layout in LAYOUTS}
    assert counts["2x6"] == max(counts.values()) and all(counts[layout] > 0 for layout in LAYOUTS)


def test_fixed_renderer_uses_one_style_and_fixed_severity(records):
    renderer = TrainingImageRenderer(*SMALL, seed=1)
    assert renderer.style_for(3, 9) == RenderStyle.paper(*SMALL)
    assert np.array_equal(renderer(records[0], 3, 9), render_ecg(records[0], style=RenderStyle.paper(*SMALL)))
    with pytest.raises(ValueError):
        TrainingImageRenderer(*SMALL, artifact_severity=(0.8, 0.2))
    with pytest.raises(ValueError):
        TrainingImageRenderer(*SMALL, randomize_style=True, backend="ecg_plot")


# -- pre-rendered store -------------------------------------------------------------------
@pytest.fixture(scope="module")
def prepared_file(tmp_path_factory):
    """A small file in the prepared layout (signals, labels, record_id, patient_id, split)."""
    path = tmp_path_factory.mktemp("prepared") / "prepared.h5"
    chunk = generate_chunk(10, seed=21)
    with h5py.File(path, "w") as handle:
        handle.create_dataset("signals", data=chunk.signals)
        handle.create_dataset("labels", data=chunk.labels)
        handle.create_dataset("record_id", data=np.asarray(chunk.record_ids, dtype=object), dtype=h5py.string_dtype())
        handle.create_dataset("patient_id", data=np.asarray(chunk.patient_ids, dtype=object),
                              dtype=h5py.string_dtype())
        handle.create_dataset("split", data=np.array([0, 2, 2, 1, 2, 2, 0, 2, 2, 2], np.uint8))
        handle.attrs["labels"] = ["1dAVb", "RBBB", "LBBB", "SB", "AF", "ST"]
        handle.attrs["complete"] = True
    return path


def test_store_matches_on_the_fly_and_resumes(prepared_file, tmp_path):
    style = RenderStyle.paper(48, 134)
    out = tmp_path / "test_images.h5"
    kwargs = dict(split="test", backend="fast", style=style, artifact_severity=0.4, seed=3, shard_size=3,
                  progress=False)
    render_to_store(prepared_file, out, workers=1, **kwargs)
    renderer = TrainingImageRenderer(48, 134, artifact_severity=0.4, seed=3, style=style)
    with h5py.File(prepared_file, "r") as prepared:
        signals = prepared["signals"][:]
    with open_image_store(out) as store:
        rows = store["source_index"][:]
        assert rows.tolist() == [1, 2, 4, 5, 7, 8, 9]
        images = store["images"][:]
    for row, image in zip(rows, images):
        assert np.array_equal(image, renderer(signals[row], int(row), 0))
    assert store_config(out)["renderer"]["style"] == style.to_dict()

    # an interrupted run: shard 1 lost; the rerun redraws only it
    with h5py.File(out, "a") as handle:
        handle["shard_done"][1] = False
        handle["images"][3:6] = 0
        handle["images"][0] = 7  # a finished shard must be left alone
        handle.attrs["complete"] = False
    render_to_store(prepared_file, out, workers=1, **kwargs)
    with open_image_store(out) as store:
        assert np.array_equal(store["images"][3:6], images[3:6])
        assert (store["images"][0] == 7).all()

    with pytest.raises(ValueError, match="another configuration"):
        render_to_store(prepared_file, out, workers=1, **{**kwargs, "seed": 4})


def test_store_is_the_same_with_parallel_workers(prepared_file, tmp_path):
    style = RenderStyle.preset("clinical_3x4", 40, 112)
    kwargs = dict(split="all", style=style, artifact_severity=0.5, seed=8, shard_size=4, progress=False)
    serial = render_to_store(prepared_file, tmp_path / "serial.h5", workers=1, **kwargs)
    parallel = render_to_store(prepared_file, tmp_path / "parallel.h5", workers=2, **kwargs)
    with open_image_store(serial) as a, open_image_store(parallel) as b:
        assert np.array_equal(a["images"][:], b["images"][:])
