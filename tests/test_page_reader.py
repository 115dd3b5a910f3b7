"""Reading page images and preparing real prints: formats, errors, the ECG heuristic, geometry."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from vizecg.page_reader import (
    GRID_MIN_EVENNESS,
    GRID_MIN_SCORE,
    SIDEWAYS,
    SIDEWAYS_MAX_ROW_RATIO,
    UNEVEN_LINES,
    PageReadError,
    agreeing_grid_score,
    check_page,
    cut_out_sheet,
    ecg_evidence,
    estimate_skew,
    find_grid_box,
    find_paper_quad,
    find_plot_area,
    image_files_in,
    ink_map,
    limit_resolution,
    load_image,
    looks_like_ecg,
    page_grid_score,
    plotted_area,
    prepare_page,
    rotate_page,
    trace_evidence,
    trace_row_ratio,
    _tile_lattice_score,
)
from vizecg.render.non_ecg import NATURAL_IMAGES, drawn_non_ecgs, natural_images

REAL_PRINTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_prints"


def draw_ecg_page(height: int = 760, width: int = 2000, seed: int = 0) -> np.ndarray:
    """A page in the study's look drawn with OpenCV: red mm grid, 2 x 6 leads of beats with noise."""
    rng = np.random.default_rng(seed)
    page = np.full((height, width, 3), 255, np.uint8)
    step = 8
    for x in range(0, width, step):
        cv2.line(page, (x, 0), (x, height - 1), (240, 80, 80) if x % (5 * step) == 0 else (255, 190, 190), 1)
    for y in range(0, height, step):
        cv2.line(page, (0, y), (width - 1, y), (240, 80, 80) if y % (5 * step) == 0 else (255, 190, 190), 1)
    t = np.arange(width // 2)
    for column in range(2):
        for row in range(6):
            baseline = 60 + row * 120
            wave = rng.normal(0, 0.8, t.size) + 4 * np.sin(t / rng.uniform(40, 90))
            for centre in range(int(rng.integers(0, 40)), t.size, int(rng.integers(70, 110))):
                wave += 60 * np.exp(-0.5 * ((t - centre) / 2.5) ** 2) + 12 * np.exp(-0.5 * ((t - centre - 35) / 8) ** 2)
            points = np.stack([t + column * width // 2, baseline - wave], axis=1).astype(np.int32)
            cv2.polylines(page, [points], False, (20, 20, 160), 2, cv2.LINE_AA)
    return page


def paper_page(records: int, seed: int, index: int, height: int | None = None) -> np.ndarray:
    """Record ``index`` of ``generate_chunk(records, seed)`` drawn in the paper look at the ecg_plot page's
    2.79:1, ``height`` px tall; by default as tall as ``benchmarks/ecg_check_acceptance.py`` draws it."""
    from vizecg.data.synthetic import generate_chunk
    from vizecg.render.draw import render_ecg
    from vizecg.render.style import RenderStyle

    if height is None:
        height = int(np.random.default_rng(seed).integers(700, 1100, size=index + 1)[index])
    style = RenderStyle.preset("paper").replace(height=height, width=int(height * 2.79))
    return render_ecg(generate_chunk(records, seed).signals[index], style=style)


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate counter-clockwise by ``degrees`` keeping the canvas (paper colour fills corners)."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def page() -> np.ndarray:
    return draw_ecg_page()


# --- loading ---------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix, pil_format", [(".png", "PNG"), (".jpg", "JPEG"), (".bmp", "BMP"), (".tif", "TIFF")])
def test_load_each_raster_format(tmp_path, page, suffix, pil_format):
    path = tmp_path / f"page{suffix}"
    Image.fromarray(page).save(path, format=pil_format)
    loaded = load_image(path)
    assert loaded.dtype == np.uint8 and loaded.shape == page.shape
    tolerance = 20 if pil_format == "JPEG" else 0
    assert np.abs(loaded.astype(int) - page.astype(int)).mean() <= tolerance


def test_rgba_png_is_flattened_on_white(tmp_path):
    rgba = np.zeros((100, 120, 4), np.uint8)
    rgba[:, :60] = (0, 0, 255, 255)    # opaque blue
    rgba[:, 60:] = (255, 0, 0, 0)      # fully transparent red
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    loaded = load_image(path)
    assert loaded.shape == (100, 120, 3)
    assert (loaded[:, :60] == (0, 0, 255)).all()
    assert (loaded[:, 60:] == 255).all()


def test_16bit_greyscale_tiff(tmp_path):
    grey = np.tile(np.linspace(0, 65535, 200).astype(np.uint16), (80, 1))
    path = tmp_path / "scan16.tif"
    Image.fromarray(grey).save(path)
    assert Image.open(path).mode.startswith("I;16")
    loaded = load_image(path)
    assert loaded.shape == (80, 200, 3) and loaded.dtype == np.uint8
    assert loaded[0, 0, 0] == 0 and loaded[0, -1, 0] == 255
    assert (loaded[..., 0] == loaded[..., 2]).all()


def test_16bit_rgb_tiff(tmp_path):
    rgb16 = np.zeros((70, 90, 3), np.uint16)
    rgb16[..., 0] = 65535  # red in RGB order
    path = tmp_path / "scan16rgb.tif"
    cv2.imwrite(str(path), rgb16[..., ::-1])  # OpenCV writes BGR
    loaded = load_image(path)
    assert loaded.shape == (70, 90, 3)
    assert (loaded[..., 0] == 255).all() and (loaded[..., 1:] == 0).all()


def test_palette_and_grey_pngs(tmp_path, page):
    Image.fromarray(page).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    Image.fromarray(page).convert("L").save(tmp_path / "l.png")
    for name in ("p.png", "l.png"):
        loaded = load_image(tmp_path / name)
        assert loaded.shape == page.shape


def test_exif_orientation_is_applied(tmp_path):
    image = np.full((100, 200, 3), 255, np.uint8)
    image[:, :20] = 0  # dark band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90 degree clockwise turn
    path = tmp_path / "phone.jpg"
    Image.fromarray(image).save(path, exif=exif)
    loaded = load_image(path)
    assert loaded.shape == (200, 100, 3)
    assert loaded[:20].mean() < 60  # the band is now at the top


def test_pdf_first_page(tmp_path, page):
    pytest.importorskip("pypdfium2", reason="pypdfium2 (PDF reader) is not installed")
    path = tmp_path / "ecg.pdf"
    Image.fromarray(page).save(path, format="PDF", resolution=150)
    loaded = load_image(path)
    assert loaded.ndim == 3 and loaded.shape[2] == 3
    assert abs(loaded.shape[1] / loaded.shape[0] - page.shape[1] / page.shape[0]) < 0.05
    assert looks_like_ecg(loaded)[0]


def test_pdf_without_reader_names_the_package(tmp_path, monkeypatch, page):
    import builtins
    real_import = builtins.__import__

    def no_pdfium(name, *args, **kwargs):
        if name == "pypdfium2":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    path = tmp_path / "ecg.pdf"
    path.write_bytes(b"%PDF-1.4\n%fake\n")
    monkeypatch.setattr(builtins, "__import__", no_pdfium)
    with pytest.raises(PageReadError, match="pypdfium2"):
        load_image(path)


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"this is a text file, not an ECG\n" * 20, "not a readable image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "corrupt|not a readable image"),
])
def test_bad_files_raise_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(PageReadError, match=message) as error:
        load_image(path)
    assert str(path) in str(error.value)
    assert isinstance(error.value, ValueError)


def test_truncated_jpeg(tmp_path, page):
    path = tmp_path / "cut.jpg"
    Image.fromarray(page).save(path, format="JPEG")
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(PageReadError, match="cut.jpg"):
        load_image(path)


def test_missing_directory_and_tiny(tmp_path):
    with pytest.raises(PageReadError, match="no such file"):
        load_image(tmp_path / "absent.png")
    with pytest.raises(PageReadError, match="directory"):
        load_image(tmp_path)
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "tiny.png")
    with pytest.raises(PageReadError, match="20 px|30x20"):
        load_image(tmp_path / "tiny.png")


def test_folder_listing_is_sorted_and_case_insensitive(tmp_path):
    for name in ("b.PNG", "a.jpeg", "c.TiF", "notes.txt", "d.pdf"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in image_files_in(tmp_path)] == ["a.jpeg", "b.PNG", "c.TiF", "d.pdf"]


# --- is it an ECG? ---------------------------------------------------------------------------

def test_drawn_and_rotated_pages_are_accepted(page):
    for angle in (0.0, 6.0, -11.0):
        accepted, reason, score = looks_like_ecg(rotate(page, angle))
        assert accepted, f"rotation {angle}: {reason}"
        assert score >= 1.0


@pytest.mark.parametrize("turns", [1, 3])
def test_a_page_turned_by_90_degrees_is_refused_as_sideways(page, turns):
    # The model reads a sideways page as another ECG (a real print's LBBB 0.97 became SB 0.96), so
    # the check must say so, and what to do, instead of passing it on.
    turned = np.ascontiguousarray(np.rot90(page, turns))
    accepted, reason, _ = looks_like_ecg(turned)
    assert not accepted
    assert reason.startswith(SIDEWAYS) and "rotate the image" in reason
    ink = ink_map(page)
    assert trace_row_ratio(ink, 0.4) > 1 / SIDEWAYS_MAX_ROW_RATIO  # upright: the rows stand out
    assert trace_row_ratio(np.ascontiguousarray(np.rot90(ink, turns)), 0.4) < SIDEWAYS_MAX_ROW_RATIO


def test_an_upright_landscape_page_whose_darkest_strokes_are_tall_qrs_is_not_taken_for_sideways():
    """A landscape photo of an upright page (training photo artifacts at severity 0.75, found among
    the acceptance benchmark's seed-8 pages) whose darkest strokes are tall chest-lead QRS complexes:
    its trace rows measured 0.42, below the sideways cut, and only a portrait page is judged sideways."""
    from vizecg.render.artifacts import ArtifactConfig, apply_artifacts, photograph_sheet

    page = paper_page(80, 8, 46)
    rng = np.random.default_rng([8, 46])
    photograph_sheet(page, rng, 0.75)  # the benchmark draws its photo from the same stream first
    photo = apply_artifacts(page, ArtifactConfig.photo(0.75), rng)
    accepted, reason, _ = looks_like_ecg(photo)
    assert accepted, reason


def test_trace_row_ratio_without_traces_is_neutral():
    assert trace_row_ratio(np.zeros((200, 300), np.float32), 0.4) == 1.0


def test_rendered_page_is_accepted():
    render = pytest.importorskip("vizecg.render")
    t = np.arange(4096) / 400.0
    beats = sum(np.exp(-0.5 * ((t - c) / 0.012) ** 2) + 0.25 * np.exp(-0.5 * ((t - c - 0.25) / 0.05) ** 2)
                for c in np.arange(0.3, 10.2, 0.8))
    signal = (np.repeat(beats[:, None], 12, axis=1) + 0.05 * np.sin(2 * np.pi * 0.3 * t)[:, None]).astype(np.float32)
    accepted, reason, _ = looks_like_ecg(render.render_ecg(signal))
    assert accepted, reason


REAL_SAMPLE = ("ecg00001.png", "ecg00005.jpg", "ecg00008.jpg", "ecg00019.bmp", "ecg00030.jpg",
               "ecg00038.jpg", "ecg00047.jpg", "ecg00053.png")


@pytest.mark.skipif(not REAL_PRINTS.is_dir(), reason="../shared/data/real_prints is not present")
@pytest.mark.parametrize("name", REAL_SAMPLE)
def test_real_prints_are_accepted(name):
    accepted, reason, _ = looks_like_ecg(load_image(REAL_PRINTS / name))
    assert accepted, f"{name}: {reason}"


# The check is held to the whole shared set of non-ECG images (vizecg.render.non_ecg), the same the
# acceptance benchmark reports on.
def _natural_images() -> dict[str, np.ndarray]:
    return natural_images(NATURAL_IMAGES[:7])


def test_non_ecg_images_are_rejected():
    for name, image in {**_natural_images(), **drawn_non_ecgs()}.items():
        accepted, reason, _ = looks_like_ecg(image)
        assert not accepted, f"{name} accepted: {reason}"
        assert reason


@pytest.mark.parametrize("name", ["line_chart", "ruled_table"])
def test_straight_lines_that_are_not_a_grid_are_refused_for_that(name):
    """A chart's or a table's few straight lines outscore every other direction at every frequency,
    so they pass the plain lattice score; measured against the neighbouring frequencies they do not."""
    accepted, reason, _, evidence = ecg_evidence(drawn_non_ecgs()[name])
    assert not accepted
    assert evidence.grid_score >= GRID_MIN_SCORE, "no longer a test of the evenness rule"
    assert evidence.grid_evenness < GRID_MIN_EVENNESS and reason.startswith(UNEVEN_LINES)


def _lines_tile(positions, size: int = 192) -> np.ndarray:
    tile = np.zeros((size, size), np.float32)
    tile[list(positions), :] = 1.0
    tile[:, list(positions)] = 1.0
    return tile


def test_evenly_spaced_lines_pass_the_evenness_score_and_a_chart_s_axes_do_not():
    grid, axes, two_lines = _lines_tile(range(0, 192, 4)), _lines_tile([90]), _lines_tile([70, 130])
    for tile in (grid, axes, two_lines):  # all stand out from the rest of their ring
        assert _tile_lattice_score(tile)[0] >= GRID_MIN_SCORE
    assert _tile_lattice_score(grid, evenly_spaced=True)[0] >= GRID_MIN_EVENNESS
    assert _tile_lattice_score(axes, evenly_spaced=True)[0] < GRID_MIN_EVENNESS
    assert _tile_lattice_score(two_lines, evenly_spaced=True)[0] < GRID_MIN_EVENNESS


def test_a_grid_on_a_few_tiles_of_one_period_counts_and_scattered_tiles_do_not():
    background = [2.0, 2.1, 2.2, 2.0, 1.9, 2.3, 2.0, 2.1, 2.2]
    scores = np.array([6.5, 6.4, 6.2] + background)
    grid = np.array([7.0, 7.4, 6.8] + [3, 4, 3, 5, 3, 9, 3, 3, 4], float)
    assert page_grid_score(scores, grid)[0] < GRID_MIN_SCORE  # a quarter of the frame is not "most"
    score, period = agreeing_grid_score(scores, grid)
    assert score == pytest.approx(6.2) and 6.8 <= period <= 7.4
    scattered = np.array([3.0, 7.0, 14.0] + [3, 4, 3, 5, 3, 9, 3, 3, 4], float)  # textures at unrelated periods
    assert agreeing_grid_score(scores, scattered)[0] < GRID_MIN_SCORE
    assert agreeing_grid_score(scores[:2], grid[:2])[0] == -np.inf  # fewer tiles than a group


def test_a_page_covering_a_fifth_of_the_frame_is_accepted(page):
    """A printout photographed small on a large white sheet (the grid covers about a fifth of
    the frame, slightly defocused): most tiles hold no grid, the ones that do agree."""
    small = cv2.resize(page, (page.shape[1] * 2 // 5, page.shape[0] * 2 // 5), interpolation=cv2.INTER_AREA)
    frame = np.full((small.shape[0] * 3, int(small.shape[1] * 1.7), 3), 246, np.uint8)
    top, left = small.shape[0], small.shape[1] // 3
    frame[top:top + small.shape[0], left:left + small.shape[1]] = small
    frame = cv2.GaussianBlur(frame, (0, 0), 0.8)
    accepted, reason, _ = looks_like_ecg(frame)
    assert accepted, reason


def test_qrs_spikes_count_as_traces_and_blank_grid_paper_has_none():
    """Tall QRS complexes that are the page's darkest ink are thin vertical strokes, too short for
    grid lines; a page that shows only them is still traced paper. Blank grid paper shows none."""
    height, width = 400, 1000
    ink = np.zeros((height, width), np.float32)
    ink[:, ::8] = ink[::8, :] = 0.9  # a grid as dark as the strokes, removed as long lines
    assert trace_evidence(ink, threshold=0.5) == (0.0, 0)
    ink *= 0.4  # a printed grid is lighter than the traces: under the stroke threshold
    rng = np.random.default_rng(0)
    for x in rng.choice(np.arange(20, 980, 10), size=12, replace=False):
        top = int(rng.integers(20, 300))
        ink[top:top + 40, x + 3] = 1.0  # between grid lines, 1 px wide, 40 px tall
    columns, spikes = trace_evidence(ink, threshold=0.5)
    assert columns < 0.05 and spikes == 12


def test_a_bright_patch_taken_for_the_sheet_falls_back_to_the_whole_frame(page):
    """A page in shadow with a blank white card lying on it: the card is the brightest quadrilateral,
    so it is cut out as "the sheet" and holds no ink; the whole frame is the page to read."""
    image = (page.astype(np.float32) * 0.62).astype(np.uint8)
    height, width = image.shape[:2]
    image[height // 6: height - height // 6, width // 2: width - width // 12] = 250
    sheet = cut_out_sheet(image)
    assert sheet[1] is not None and not ecg_evidence(image, sheet=sheet)[0]
    accepted, reason, _, chosen = check_page(image)
    assert accepted and "on the whole frame" in reason, reason
    assert chosen[1] is None and chosen[0].shape[:2] == limit_resolution(image).shape[:2]
    assert looks_like_ecg(image)[0]


def test_dark_areas_at_the_frame_edge_are_told_from_dark_areas_inside():
    from vizecg.page_reader import _touching_the_edge

    mask = np.zeros((50, 80), np.uint8)
    mask[:10, :15] = 1      # the desk in a corner
    mask[20:30, 30:40] = 1  # a dark area inside the page
    edge = _touching_the_edge(mask)
    assert edge[:10, :15].all() and not edge[20:30, 30:40].any() and edge.sum() == 150


# --- geometry and the whole path -------------------------------------------------------------

@pytest.mark.parametrize("angle", [7.3, -4.0, 12.5])
def test_skew_is_recovered_within_one_degree(page, angle):
    assert abs(estimate_skew(rotate(page, angle)) - angle) <= 1.0


def test_grid_box_cuts_header_text_only(page):
    sheet = np.full((page.shape[0] + 300, page.shape[1], 3), 255, np.uint8)
    sheet[300:] = page
    for y in range(40, 260, 30):
        cv2.putText(sheet, "Vent rate 80 BPM  PR interval 160 ms", (40, y), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
    box = find_grid_box(sheet)
    assert box is not None
    top, bottom, left, right = box
    assert 250 <= top <= 320 and bottom >= sheet.shape[0] - 20
    assert left <= 20 and right >= sheet.shape[1] - 20


def test_prepare_page_shape_range_and_steps(page):
    photo = rotate(page, 5.0)
    photo = (photo.astype(np.float32) * np.linspace(0.6, 1.0, photo.shape[1])[None, :, None]).astype(np.uint8)
    model_input, steps = prepare_page(photo, 96, 256, debug=True)
    assert model_input.shape == (3, 96, 256) and model_input.dtype == np.float32
    assert 0.0 <= model_input.min() and model_input.max() <= 1.0
    assert abs(steps.skew_deg - 5.0) <= 1.0
    for name in ("input", "paper", "deskewed", "grid", "normalised", "model_input"):
        assert steps.images[name].dtype == np.uint8
    # uneven light is gone: left and right paper are equally white after normalisation
    normalised = steps.images["normalised"].astype(np.float32)
    left, right = normalised[:, : normalised.shape[1] // 5], normalised[:, -normalised.shape[1] // 5:]
    assert abs(np.median(left) - np.median(right)) < 10
    assert np.array_equal(prepare_page(photo, 96, 256), model_input)  # deterministic


def test_prepare_page_warps_a_photographed_sheet(page):
    background = np.full((1400, 2600, 3), (60, 45, 40), np.uint8)
    corners = np.float32([[0, 0], [page.shape[1], 0], [page.shape[1], page.shape[0]], [0, page.shape[0]]])
    target = np.float32([[330, 260], [2300, 330], [2250, 1150], [300, 1080]])
    matrix = cv2.getPerspectiveTransform(corners, target)
    photo = cv2.warpPerspective(page, matrix, (2600, 1400), dst=background, borderMode=cv2.BORDER_TRANSPARENT)
    _, steps = prepare_page(photo, 96, 256, debug=True)
    assert steps.paper_corners is not None
    scale = steps.images["input"].shape[1] / photo.shape[1]  # corners are in the working copy's pixels
    assert np.abs(steps.paper_corners - target * scale).max() < 15
    sheet = steps.images["paper"]
    assert abs(sheet.shape[1] / sheet.shape[0] - page.shape[1] / page.shape[0]) < 0.25
    assert sheet.mean() > 150  # the dark table is gone


def _sheet_on_a_light_desk_in_uneven_light(page: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A4-like sheet (white margins round ``page``) on a light, slightly warm desk, lit from the
    right so strongly that the sheet's left edge is darker than the desk at the right: no one
    brightness threshold separates sheet from desk. Returns the photo and the sheet's corners."""
    sheet = cv2.copyMakeBorder(page, 120, 120, 90, 90, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    height, width = 1500, 2700
    desk = np.full((height, width, 3), (205, 200, 185), np.float32)
    desk += np.random.default_rng(3).normal(0, 3, desk.shape).astype(np.float32)
    corners = np.float32([[0, 0], [sheet.shape[1], 0], [sheet.shape[1], sheet.shape[0]], [0, sheet.shape[0]]])
    target = np.float32([[260, 210], [2420, 300], [2380, 1290], [300, 1220]])
    matrix = cv2.getPerspectiveTransform(corners, target)
    warped = cv2.warpPerspective(sheet.astype(np.float32), matrix, (width, height))
    mask = cv2.warpPerspective(np.ones(sheet.shape[:2], np.float32), matrix, (width, height))[..., None]
    photo = warped * mask + desk * (1 - mask)
    light = np.linspace(0.62, 1.0, width, dtype=np.float32)[None, :, None]  # falls off to the left
    photo = cv2.GaussianBlur(photo * light, (0, 0), 1.2)
    return np.clip(photo, 0, 255).astype(np.uint8), target


def test_the_sheet_is_found_by_its_edges_where_light_falls_off_on_a_light_desk(page):
    """The sheet's left margin (255 x 0.62 = 158) is darker than the desk on the right (up to
    205): the largest bright region is not the sheet. Its four straight edges still are."""
    photo, target = _sheet_on_a_light_desk_in_uneven_light(page)
    small = limit_resolution(photo)
    corners = find_paper_quad(small)
    assert corners is not None
    scale = small.shape[1] / photo.shape[1]
    assert np.abs(corners - target * scale).max() < 0.01 * small.shape[1]


@pytest.mark.parametrize("seed", [1, 10])
def test_a_shaded_sheet_whose_bright_part_is_not_the_sheet_is_found_by_its_edges(page, seed):
    """photograph_sheet at severity 0.5 with these seeds: the bright region is a sheet-shaped
    quadrilateral 2-5 % of the frame off the sheet (its shaded side ends in the shadow, not at
    the paper's edge), which fails the edge test; the straight edges give the corners within 1 %."""
    from vizecg.page_reader import _bright_region_quad
    from vizecg.render.artifacts import photograph_sheet

    photo, corners = photograph_sheet(page, seed, 0.5, return_corners=True)
    small = limit_resolution(photo)
    truth = corners * (small.shape[1] / photo.shape[1])
    assert np.abs(_bright_region_quad(small) - truth).max() > 0.02 * small.shape[1]
    assert np.abs(find_paper_quad(small) - truth).max() < 0.01 * small.shape[1]


def test_no_sheet_is_cut_out_of_pages_that_fill_the_frame(page):
    """A scan or screenshot (the page is the frame) and the page with a dark line across it: the
    plot's border is darker inside than out, grid lines and traces are dark lines, not surfaces."""
    ruled = page.copy()
    cv2.line(ruled, (0, page.shape[0] // 3), (page.shape[1] - 1, page.shape[0] // 3), (30, 30, 30), 3)
    framed = cv2.copyMakeBorder(page, 60, 60, 60, 60, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    for image in (page, ruled, framed):
        assert find_paper_quad(limit_resolution(image)) is None


def test_a_photographed_print_is_cropped_to_its_plot(page):
    """A 2.8:1 plot printed on A4 leaves half of the sheet blank; photographed at severities
    that blur the grid lines away (find_grid_box finds none), the crop still keeps the plot
    and not the blank paper, which the model never saw."""
    from vizecg.render.artifacts import on_a4_sheet, photograph_sheet

    sheet = on_a4_sheet(page)
    top = (sheet.shape[0] - page.shape[0]) / 2 / sheet.shape[0]  # where the plot lies on the sheet
    for seed, severity in ((0, 0.25), (1, 0.5), (2, 0.5)):
        _, steps = prepare_page(photograph_sheet(page, seed, severity), 96, 256, debug=True)
        assert steps.paper_corners is not None and steps.grid_box is not None
        height, width = steps.images["deskewed"].shape[:2]
        box_top, box_bottom, box_left, box_right = steps.grid_box
        assert abs(box_top / height - top) < 0.06 and abs(box_bottom / height - (1 - top)) < 0.06, steps.grid_box
        assert box_left / width < 0.12 and box_right / width > 0.88, steps.grid_box


def test_plot_area_is_none_where_the_plot_fills_the_page(page):
    """Renders, scans and cropped photos: nothing to cut, and a blank page has no plot."""
    assert find_plot_area(page) is None
    assert find_plot_area(rotate(page, 3.0)) is None
    assert find_plot_area(np.full((700, 1000, 3), 250, np.uint8)) is None


def test_plot_area_ignores_real_prints():
    """The real prints beside the project fill their images: the plot-area crop (find_plot_area on the
    deskewed sheet, as prepare_page runs it) must leave them alone. (plotted_area, which only the check
    judges, may also find a plot outline inside them: find_plot_outline is never used to crop.)"""
    if not REAL_PRINTS.is_dir():
        pytest.skip(f"{REAL_PRINTS} not present")
    files = image_files_in(REAL_PRINTS)
    cut = []
    for f in files:
        sheet = cut_out_sheet(load_image(f))[0]
        if find_plot_area(rotate_page(sheet, estimate_skew(sheet))) is not None:
            cut.append(f.name)
    assert len(files) >= 50 and not cut, cut


def test_a_plotted_area_with_no_grid_left_passes_on_traces_in_rows_and_not_once_they_run_in_columns(monkeypatch):
    """The same photo's plotted area: with the blurred-grid band out of reach it passes on its traces alone
    (sparse thin strokes in rows); its lead rows are what the rule reads, so with the rows turned into
    columns (the area turned by 90 degrees) it is refused."""
    from vizecg import page_reader
    from vizecg.render.artifacts import photograph_sheet

    photo = photograph_sheet(paper_page(8, 11, 7, height=711), np.random.default_rng([11, 7]), 0.75)
    plot = plotted_area(cut_out_sheet(photo)[0])
    monkeypatch.setattr(page_reader, "PLOT_BLURRED_GRID", (page_reader.GRID_MIN_SCORE, *page_reader.PLOT_BLURRED_GRID[1:]))
    accepted, reason, _, evidence = ecg_evidence(plot, sheet=(plot, None), plotted_area=True)
    assert accepted and reason.startswith("traces in rows"), reason
    assert evidence.ink_fraction <= page_reader.PLOT_TRACES[0]
    turned = np.ascontiguousarray(np.rot90(plot))
    assert not ecg_evidence(turned, sheet=(turned, None), plotted_area=True)[0]


def test_prepare_page_never_crops_to_the_plot_outline(page, monkeypatch):
    """The outline finder fires inside pages the plot fills; prepare_page must not consult it."""
    from vizecg import page_reader
    expected = prepare_page(page, 128, 357)
    monkeypatch.setattr(page_reader, "find_plot_outline", lambda image, **kwargs: (0, 10, 0, 10))
    assert np.array_equal(prepare_page(page, 128, 357), expected)


def test_a_print_photographed_at_severity_1_is_accepted_on_its_plot_outline(monkeypatch):
    """A print photographed at severity 1 (seed 11, record 7 of the acceptance benchmark's photos):
    defocus and noise spread find_plot_area's inked region into the margin, so no filled rectangle is
    found; its outline still is, and on that area the blurred grid and plain traces pass."""
    from vizecg import page_reader
    from vizecg.render.artifacts import photograph_sheet

    photo = photograph_sheet(paper_page(48, 11, 7), np.random.default_rng([11, 7, 100]), 1.0)
    sheet = cut_out_sheet(photo)[0]
    assert find_plot_area(rotate_page(sheet, estimate_skew(sheet))) is None
    accepted, reason, _ = looks_like_ecg(photo)
    assert accepted and "on the plotted area" in reason, reason
    monkeypatch.setattr(page_reader, "find_plot_outline", lambda image, **kwargs: None)
    assert not looks_like_ecg(photo)[0]


def test_prepare_page_rejects_wrong_input():
    with pytest.raises(ValueError, match="uint8 RGB"):
        prepare_page(np.zeros((100, 100), np.uint8), 64, 64)


def test_phone_photos_of_whole_sheets_are_accepted_and_photographed_non_ecgs_refused():
    """Photos the tests make (a sheet on a desk, wood or fabric, tilted, in perspective, shadowed,
    blurred, JPEG) rather than the real prints the thresholds were first set on."""
    from vizecg.render.artifacts import photograph_sheet
    from vizecg.render.draw import render_ecg
    from vizecg.render.style import RenderStyle
    from vizecg.data.synthetic import generate_chunk

    signals = generate_chunk(10, seed=11).signals
    refused = []
    for i, (signal, severity) in enumerate(zip(signals, (0.25, 0.5) * 5)):
        page = render_ecg(signal, style=RenderStyle.preset("paper").replace(height=760, width=2120))
        photo = photograph_sheet(page, i, severity)
        assert photo.shape[0] > page.shape[0] and photo.shape[1] > page.shape[1]  # the surface shows around it
        accepted, reason, _ = looks_like_ecg(photo)
        if not accepted:
            refused.append(f"photo {i} (severity {severity}): {reason}")
    # Pages 760 px tall, photographed small, are the hard case: the grid covers a minority of the
    # frame's tiles, which the page-wide lattice test refused (2 of these 10) before the tiles that
    # agree on one period counted (agreeing_grid_score). All 10 pass now; any refusal is a regression.
    assert not refused, refused
    non_ecgs = {**_natural_images(), **drawn_non_ecgs()}
    for name in ("astronaut", "brick", "text_page", "graph_paper_without_traces"):
        accepted, reason, _ = looks_like_ecg(photograph_sheet(non_ecgs[name], 0, 0.5))
        assert not accepted, f"photographed {name} accepted: {reason}"


def test_a_photo_whose_darkest_lines_are_not_its_traces_is_accepted_by_the_fixed_level_trace_test(monkeypatch):
    """On a phone photo of a page the darkest line ink can be the grid's major lines or a shadowed
    edge, and the trace test's level (90 % of it) then lies above the blurred traces: judged again
    at a fixed ink level, the traces cross most columns; graph paper without traces still does not."""
    from vizecg import page_reader
    from vizecg.render.artifacts import apply_artifacts, photograph_sheet
    from vizecg.study.rendering import PHOTO_ARTIFACTS

    page = paper_page(40, 3, 6, height=763)
    photo = apply_artifacts(page, PHOTO_ARTIFACTS, 600)  # found among such photos of 40 records
    accepted, reason, _ = looks_like_ecg(photo)
    assert accepted and "at ink level 0.25" in reason, reason
    monkeypatch.setattr(page_reader, "TRACE_FIXED_MIN_COLUMNS", 1.01)  # the fixed-level test disabled
    accepted, reason, _ = looks_like_ecg(photo)
    assert not accepted and reason.startswith("grid without traces"), reason
    monkeypatch.undo()
    graph_paper = drawn_non_ecgs()["graph_paper_without_traces"]
    for image in (graph_paper, photograph_sheet(graph_paper, 0, 0.25), photograph_sheet(graph_paper, 1, 0.75)):
        assert not looks_like_ecg(image)[0]


def test_a_print_photographed_out_of_focus_is_accepted_by_its_blurred_grid_and_plain_traces(monkeypatch):
    """Defocus softens the 1 mm grid below the lattice test before it hides the traces: such a photo
    passes on a weaker grid when its ink is sparse thin traces; a text page in the same grid band
    does not (too much ink)."""
    from vizecg import page_reader
    from vizecg.render.artifacts import photograph_sheet

    page = paper_page(8, 11, 7, height=711)
    photo = photograph_sheet(page, np.random.default_rng([11, 7]), 0.75)  # found among photos at 0.75
    accepted, reason, score = looks_like_ecg(photo)
    assert accepted and reason.startswith("blurred ECG grid"), reason
    assert page_reader.BLURRED_GRID_MIN_SCORE / page_reader.GRID_MIN_SCORE <= score < 1.0
    monkeypatch.setattr(page_reader, "BLURRED_GRID_MIN_SCORE", page_reader.GRID_MIN_SCORE)
    monkeypatch.setattr(page_reader, "PLOT_BLURRED_GRID", (page_reader.GRID_MIN_SCORE, *page_reader.PLOT_BLURRED_GRID[1:]))
    monkeypatch.setattr(page_reader, "PLOT_TRACES", (0.0, 1.0, np.inf))  # nor on its traces alone
    accepted, reason, _ = looks_like_ecg(photo)
    assert not accepted and reason.startswith("no square ECG grid"), reason
    monkeypatch.undo()
    text = drawn_non_ecgs()["text_page"]
    _, _, _, evidence = page_reader.ecg_evidence(photograph_sheet(text, 0, 0.25))
    assert evidence.grid_score >= page_reader.BLURRED_GRID_MIN_SCORE  # in the band ...
    assert evidence.ink_fraction > page_reader.BLURRED_GRID_MAX_INK  # ... but ink-heavy
    assert not looks_like_ecg(photograph_sheet(text, 0, 0.25))[0]


def test_a_print_photographed_at_severity_1_is_accepted_on_its_plotted_area(monkeypatch):
    """Sensor noise inks the blank margin of this A4 sheet to 40 % of the plot's averaged ink, which hid
    the plotted area from the contrast test until the noise floor was subtracted; on that area a grid
    blurred to 4.6 with 3.5 % ink passes the plotted-area band and no other."""
    from vizecg import page_reader
    from vizecg.render.artifacts import photograph_sheet

    page = paper_page(80, 8, 71, height=846)
    photo = photograph_sheet(page, np.random.default_rng([8, 71]), 1.0)  # found among photos at severity 1
    accepted, reason, _ = looks_like_ecg(photo)
    assert accepted and "on the plotted area" in reason, reason
    sheet = cut_out_sheet(photo)[0]
    sheet = page_reader.rotate_page(sheet, page_reader.estimate_skew(sheet))
    assert find_plot_area(sheet) is not None
    assert find_plot_area(sheet, noise_floor_percentile=None) is None
    monkeypatch.setattr(page_reader, "PLOT_BLURRED_GRID", (page_reader.BLURRED_GRID_MIN_SCORE, GRID_MIN_EVENNESS,
                                                           page_reader.BLURRED_GRID_MAX_INK))
    assert not looks_like_ecg(photo)[0]


def test_a_photographed_grid_smeared_by_perspective_counts_on_a_page_of_sparse_traces(monkeypatch):
    """Perspective and defocus spread this photographed grid's peaks over the neighbouring frequencies
    (evenness 1.97, under the 3.0 a chart's lines are held to); its ink is sparse plain traces, which
    a chart or a table is not, so it is accepted, and refused without that allowance."""
    from vizecg import page_reader
    from vizecg.render.artifacts import photograph_sheet

    page = paper_page(80, 13, 47, height=915)
    photo = photograph_sheet(page, np.random.default_rng([13, 47]), 1.0)  # found among photos at severity 1
    accepted, reason, _, evidence = ecg_evidence(photo)
    assert accepted, reason
    assert page_reader.SPARSE_TRACES_MIN_EVENNESS <= evidence.grid_evenness < GRID_MIN_EVENNESS
    monkeypatch.setattr(page_reader, "SPARSE_TRACES_MIN_EVENNESS", GRID_MIN_EVENNESS)
    accepted, reason, _, _ = ecg_evidence(photo)
    assert not accepted and reason.startswith(UNEVEN_LINES), reason


def test_an_out_of_focus_print_whose_darkest_lines_are_not_its_traces_passes_on_the_fixed_level(monkeypatch):
    """The blurred-grid rule judges the traces at the fixed ink level too, as the sharp-grid rule does:
    on this print photographed at severity 1 a shadowed edge sets the page's trace level above the
    traces (0 % of the columns), which cross 30 % of them at the fixed level."""
    from vizecg import page_reader
    from vizecg.render.artifacts import photograph_sheet

    page = paper_page(80, 11, 51, height=936)
    photo = photograph_sheet(page, np.random.default_rng([11, 51]), 1.0)  # found among photos at severity 1
    accepted, reason, _ = looks_like_ecg(photo)
    assert accepted and reason.startswith("blurred ECG grid") and "at ink level 0.25" in reason, reason
    monkeypatch.setattr(page_reader, "TRACE_FIXED_LEVEL", 0.6)  # a fixed level no trace here reaches
    monkeypatch.setattr(page_reader, "plotted_area", lambda page: None)  # its plotted area passes on its own
    accepted, reason, _ = looks_like_ecg(photo)
    assert not accepted and reason.startswith("no square ECG grid"), reason
