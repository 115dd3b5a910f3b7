"""Read ECG page images from disk and turn real prints, scans and phone photos into model input.

The image models are trained on whole rendered pages (the ``ecg_plot`` 0.2.8 look: a red
millimetre grid filling the page, dark traces, resized to the training size stored in the
checkpoint). A real page differs from that in every way a camera or a scanner can add:
table or background around the paper, perspective, a few degrees of rotation, coloured
paper, uneven light, white margins with printed header text. :func:`prepare_page` removes
what can be removed reliably and leaves the rest to the model's augmentation:

1. :func:`load_image`: any PNG, JPEG, BMP, TIFF, GIF or WebP (first frame, EXIF orientation
   applied, alpha flattened on white, palette/grey/CMYK/16-bit converted) or the first page of
   a PDF -> uint8 RGB, with the decoded size bounded before decoding (decompression bombs).
2. :func:`limit_resolution`: very large scans are shrunk (long side at most
   :data:`WORK_LONG_SIDE` px) because every later step and the model see far fewer pixels.
3. :func:`find_paper_quad` + :func:`warp_quad`: in a photo whose paper does not fill the
   frame, the sheet (the largest bright region where its outline is lighter paper on a darker
   surface all round, else the sheet's four straight edges) is warped to a rectangle (this removes the table and the perspective at once). Pages
   that fill the frame (scans, cropped photos) are left alone.
4. :func:`estimate_skew` + :func:`rotate_page`: the grid and the trace baselines are straight
   lines, so the page angle is the one (within +-:data:`MAX_SKEW_DEG`) that makes the row and
   column profiles of the ink map sharpest; the page is rotated back.
5. :func:`find_grid_box` + :func:`find_plot_area`: printed pages carry header text and margins
   that the training pages do not have; long straight grid lines (morphological opening with
   long line kernels) mark the gridded area and the page is cropped to it when it is a large
   part of the page. A plot printed on a larger sheet (an ecg_plot page on A4 fills half of it)
   and photographed loses its grid lines to defocus first; the plotted area, inked all over
   and at its edge where blank paper is not, is found as well and the crop keeps it.
6. :func:`normalise_paper`: each channel is divided by a smooth estimate of the local paper
   colour (a grey-level closing then a blur), so pink or grey paper, colour casts and uneven
   light all become white paper with dark ink; then the darkest ink is stretched to black.
7. :func:`resize_to_model`: the training renderer draws the whole page at exactly the
   training size, so the page is resized to exactly ``height x width`` (aspect ratio is not
   kept; it is not kept in training either) and returned as float32 ``(3, H, W)`` in [0, 1].

:func:`looks_like_ecg` is the gate before all this: a heuristic that asks for a periodic grid
in both directions with about the same spacing, some thin dark ink (the traces) and a light
paper background, so a natural photo, a blank or a text page, or noise is refused with a
reason instead of being given confident-looking probabilities.
"""
from __future__ import annotations

import io
import math
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".jfif", ".bmp", ".tif", ".tiff", ".gif", ".webp",
                                   ".pdf")
"""File suffixes (lower case) that :func:`load_image` reads and that a folder expands to."""

UNSUPPORTED_IMAGE_SUFFIXES: dict[str, str] = {
    ".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF", ".jp2": "JPEG 2000", ".j2k": "JPEG 2000",
    ".svg": "SVG", ".eps": "EPS", ".dng": "DNG (camera raw)"}
"""Image formats people send that are not read. A folder still lists them, so each gets an
error saying so instead of being skipped without a word."""

READ_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "TIFF", "GIF", "WEBP")
"""Pillow formats :func:`load_image` decodes, whatever the file is called. Only these: Pillow
identifies many more formats by content, some of them through external programs (EPS runs
Ghostscript), which a renamed hostile file must not reach. (Pillow's JPEG opener also returns
the MPO files some cameras write as .jpg.)"""

MIN_PAGE_SIDE: int = 64
"""Smaller images cannot hold a readable 12-lead page (a 10 s lead needs tens of pixels)."""

MAX_ASPECT_RATIO: float = 10.0
"""Longest page side over shortest side. 12-lead pages are about 1.3-2.2 and a single rhythm
strip about 6; longer and thinner images are not pages (and leave nothing of one once shrunk)."""

MAX_IMAGE_PIXELS: int = 40_000_000
"""Largest decoded raster (pixels). An A4 or Letter page scanned at 600 dpi is 35 MP. Checked
from the file header *before* decoding, so a decompression bomb (a few KB claiming a huge
image) costs nothing; decoding one this size needs about 0.3 GB."""

MAX_JPEG_PIXELS: int = 4 * MAX_IMAGE_PIXELS
"""Largest JPEG accepted at all: libjpeg decodes a JPEG over :data:`MAX_IMAGE_PIXELS` at half
size or less directly (DCT scaling), so a 48-108 MP phone photo is read within the same budget."""

WORK_LONG_SIDE: int = 1600
"""Long side (px) above which pages are shrunk before preprocessing; models use far fewer."""

MAX_SKEW_DEG: float = 15.0
"""Largest page rotation :func:`estimate_skew` searches for (degrees, both directions)."""

SKEW_LONG_SIDE: int = 512
"""Long side (px) of the ink map on which :func:`estimate_skew` searches."""

PDF_RENDER_DPI: float = 200.0
"""Resolution at which the first PDF page is rasterised (enough for a 1 mm grid) ..."""

PDF_MAX_PIXELS: int = 16_000_000
"""... unless that raster would exceed this many pixels (an A2 page at 200 dpi): a PDF page can
be any size (up to 200 x 200 inches and more), so a large page is rasterised at the lower
resolution that fits this cap instead of exhausting memory."""


class PageReadError(ValueError):
    """A file that cannot be read as an ECG page image. The message names the file and the problem."""


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

def load_image(path: str | Path) -> np.ndarray:
    """Read an image file (PNG, JPEG, BMP, TIFF, GIF, WebP, or the first page of a PDF) as uint8 RGB ``(H, W, 3)``.

    The content decides the format, not the name (a PNG called .jpg is read; PDFs are
    recognised by their ``%PDF-`` signature). Multi-frame files (multi-page TIFF, animated
    GIF/WebP/PNG) give their first frame. EXIF orientation is applied (phone photos are often
    stored sideways), transparency is flattened on white (the paper colour), palette, grey,
    bilevel, CMYK and 16/32-bit images are converted to 8-bit RGB.

    The work is bounded before decoding: rasters over :data:`MAX_IMAGE_PIXELS` are refused
    from their header (large JPEGs are decoded at reduced size instead, see
    :data:`MAX_JPEG_PIXELS`) and PDF pages are rasterised under :data:`PDF_MAX_PIXELS`.

    Raises :class:`PageReadError` naming the file when it is missing, not a regular file,
    unreadable, empty, not a readable image (corrupt, truncated, text, unsupported format),
    too large, smaller than :data:`MIN_PAGE_SIDE` pixels or more elongated than
    :data:`MAX_ASPECT_RATIO`.
    """
    path = Path(path)
    _check_regular_file(path)
    try:
        with path.open("rb") as handle:
            signature = handle.read(5)
    except OSError as error:
        raise PageReadError(f"{path}: cannot be read ({error.strerror or error})") from None
    rgb = _render_pdf_first_page(path) if signature == b"%PDF-" else _read_raster(path)
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_PAGE_SIDE:
        raise PageReadError(
            f"{path}: image is only {width}x{height} px; an ECG page needs at least "
            f"{MIN_PAGE_SIDE} px per side")
    if max(height, width) > MAX_ASPECT_RATIO * min(height, width):
        raise PageReadError(
            f"{path}: image is {width}x{height} px, {max(height, width) / min(height, width):.0f} times longer "
            f"than wide; an ECG page is at most {MAX_ASPECT_RATIO:g} times")
    return rgb


def _check_regular_file(path: Path) -> None:
    """Refuse what is not a non-empty regular file before opening it: opening a named pipe
    blocks forever and a device (a link to /dev/zero) never ends."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise PageReadError(f"{path}: no such file") from None
    except OSError as error:
        raise PageReadError(f"{path}: cannot be read ({error.strerror or error})") from None
    if stat.S_ISDIR(info.st_mode):
        raise PageReadError(f"{path}: is a directory, not an image file")
    if not stat.S_ISREG(info.st_mode):
        raise PageReadError(f"{path}: is not a regular file (a pipe, socket or device), not an image file")
    if info.st_size == 0:
        raise PageReadError(f"{path}: file is empty (0 bytes)")


def _unreadable_message(path: Path) -> str:
    name = UNSUPPORTED_IMAGE_SUFFIXES.get(path.suffix.lower())
    if name is not None:
        return f"{path}: {name} images are not supported; save the page as PNG, JPEG or PDF"
    return f"{path}: not a readable image (expected PNG, JPEG, BMP, TIFF, GIF, WebP or PDF)"


def _read_raster(path: Path) -> np.ndarray:
    """Decode a raster file with Pillow (first frame), its size checked before any pixel is decoded."""
    Image.init()  # registers every plugin: ``formats=`` fails on one not imported yet (TIFF, WEBP)
    with warnings.catch_warnings():
        # Pillow warns from 89 MP on; the stricter cap below refuses those with a clear message.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(path, formats=READ_FORMATS)
        except UnidentifiedImageError:
            raise PageReadError(_unreadable_message(path)) from None
        except Image.DecompressionBombError as error:
            raise PageReadError(f"{path}: image is implausibly large for a page, refused before decoding "
                                f"({error})") from None
        except Exception as error:  # a malformed header surfaces as many types (struct.error, SyntaxError, ...)
            raise PageReadError(f"{path}: corrupt image header ({_describe(error)})") from None
    with image:
        _bound_decoded_size(path, image)
        try:
            image.load()
        except MemoryError:
            raise PageReadError(f"{path}: ran out of memory decoding the image") from None
        except Exception as error:  # truncated or corrupt data: OSError, SyntaxError, ValueError, EOFError, ...
            if image.format == "TIFF":  # 16-bit or float TIFF variants Pillow refuses; size already checked
                decoded = _read_with_opencv(path)
                if decoded is not None:
                    return decoded
            raise PageReadError(f"{path}: corrupt or truncated image ({_describe(error)})") from None
        try:
            ImageOps.exif_transpose(image, in_place=True)
        except Exception:  # a damaged EXIF block loses the orientation, not the page
            pass
        try:
            return pil_to_rgb8(image)
        except ValueError as error:
            raise PageReadError(f"{path}: colour model {image.mode} cannot be converted to RGB ({error})") from None


def _bound_decoded_size(path: Path, image: Image.Image) -> None:
    """Refuse an image whose header claims more than :data:`MAX_IMAGE_PIXELS`, before decoding.

    A JPEG up to :data:`MAX_JPEG_PIXELS` is instead set to decode at 1/2, 1/4 or 1/8 size
    (``Image.draft``: libjpeg scales while decoding, the full raster never exists).
    """
    width, height = image.size
    pixels = width * height
    if pixels <= MAX_IMAGE_PIXELS:
        return
    if image.format in ("JPEG", "MPO") and pixels <= MAX_JPEG_PIXELS:
        factor = next(f for f in (2, 4, 8) if math.ceil(width / f) * math.ceil(height / f) <= MAX_IMAGE_PIXELS)
        image.draft(image.mode, (width // factor, height // factor))
        if image.size[0] * image.size[1] <= MAX_IMAGE_PIXELS:
            return
    raise PageReadError(
        f"{path}: image is {width}x{height} px ({pixels / 1e6:.0f} MP), more than the {MAX_IMAGE_PIXELS / 1e6:.0f} MP "
        "a page may have (refused before decoding; scan at 600 dpi or less)")


def _describe(error: BaseException) -> str:
    """``Type: first line of the message``, for error messages that must stay on one line."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


def _read_with_opencv(path: Path) -> np.ndarray | None:
    """Decode with OpenCV (TIFF variants Pillow refuses); ``None`` when it cannot.

    Only called once Pillow has read the header and :func:`_bound_decoded_size` accepted it.
    """
    data = np.fromfile(str(path), dtype=np.uint8)
    try:
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if decoded is None:
        return None
    if decoded.ndim == 2:
        decoded = decoded[:, :, None]
    values = _to_uint8(decoded)
    channels = values.shape[2]
    if channels == 1:
        return np.ascontiguousarray(np.repeat(values, 3, axis=2))
    if channels == 4:
        return _flatten_on_white(values[:, :, 2::-1], values[:, :, 3:])
    return np.ascontiguousarray(values[:, :, 2::-1])


def pil_to_rgb8(image: Image.Image) -> np.ndarray:
    """Convert any Pillow image to uint8 RGB ``(H, W, 3)``, flattening transparency on white.

    Works in 8 bits wherever it can (float copies of a 40 MP page would need gigabytes).
    """
    mode = image.mode
    if mode == "P" or mode == "PA":
        image = image.convert("RGBA" if ("transparency" in image.info or mode == "PA") else "RGB")
        mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        grey = _to_uint8(np.asarray(image))
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if mode in ("RGBA", "LA", "La", "RGBa"):
        if mode == "La":  # premultiplied grey has no direct conversion to RGBA
            image = image.convert("LA")
        rgba = np.asarray(image if image.mode == "RGBA" else image.convert("RGBA"))
        return _flatten_on_white(rgba[:, :, :3], rgba[:, :, 3:])
    rgb = image if mode == "RGB" else image.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


_BLOCK_ROWS: int = 256
"""Rows converted at a time: the wider temporaries of a conversion then take a few MB, not
several times the page (a 40 MP RGBA page would otherwise need ~0.9 GB to flatten)."""


def _flatten_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``rgb * alpha + white * (1 - alpha)`` for uint8 colour ``(H, W, 3)`` and alpha ``(H, W, 1)``, in integers."""
    out = np.empty(rgb.shape, np.uint8)
    for top in range(0, rgb.shape[0], _BLOCK_ROWS):
        rows = slice(top, top + _BLOCK_ROWS)
        weight = alpha[rows].astype(np.uint16)
        out[rows] = (rgb[rows].astype(np.uint16) * weight + 255 * (255 - weight) + 127) // 255
    return out


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Map integer or float pixel values to uint8 by their type's range (data range if unknown)."""
    if values.dtype == np.uint8:
        return values
    if values.dtype.kind == "u" and values.dtype.itemsize == 2:
        # exact rounding of v * 255 / 65535 in integers, by row blocks (no wide copy of the page)
        out = np.empty(values.shape, np.uint8)
        for top in range(0, values.shape[0], _BLOCK_ROWS):
            rows = slice(top, top + _BLOCK_ROWS)
            out[rows] = (values[rows].astype(np.uint32) * 255 + 32767) // 65535
        return out
    return _unit_to_uint8(_scale_to_unit(values))


def _scale_to_unit(values: np.ndarray) -> np.ndarray:
    """Map integer or float pixel values to [0, 1] by their type's range (data max if unknown)."""
    if values.dtype == np.uint8:
        return values.astype(np.float32) / 255.0
    if values.dtype in (np.uint16, np.dtype(">u2"), np.dtype("<u2")):
        return values.astype(np.float32) / 65535.0
    floats = values.astype(np.float32)  # the one copy; everything below works in place
    top = float(np.nanmax(floats)) if floats.size else 0.0
    if not (np.issubdtype(values.dtype, np.floating) and top <= 1.0):
        # 32-bit integer or float images: usually 16-bit data in a wider container.
        floats /= 65535.0 if top <= 65535.0 else max(top, 1e-6)
    np.clip(floats, 0.0, 1.0, out=floats)
    return np.nan_to_num(floats, copy=False)


def _unit_to_uint8(values: np.ndarray) -> np.ndarray:
    scaled = values * 255.0  # one temporary, rounded and clipped in place
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return np.ascontiguousarray(scaled.astype(np.uint8))


def pdf_render_scale(width_pt: float, height_pt: float) -> float:
    """Rasterisation scale (pixels per PDF point) for a page of this size: :data:`PDF_RENDER_DPI`,
    lowered so that the raster stays under :data:`PDF_MAX_PIXELS`."""
    scale = PDF_RENDER_DPI / 72.0
    return min(scale, math.sqrt(PDF_MAX_PIXELS / (width_pt * height_pt)))


def _render_pdf_first_page(path: Path) -> np.ndarray:
    """Rasterise the first PDF page with pypdfium2 at :func:`pdf_render_scale` of its size."""
    try:
        import pypdfium2
    except ImportError:
        raise PageReadError(
            f"{path}: reading PDF files needs the 'pypdfium2' package (pip install pypdfium2)") from None
    try:
        document = pypdfium2.PdfDocument(str(path))
    except Exception as error:  # pypdfium2 raises its own PdfiumError for broken files
        raise PageReadError(f"{path}: corrupt or unreadable PDF ({_describe(error)})") from None
    try:
        if len(document) == 0:
            raise PageReadError(f"{path}: PDF has no pages")
        page = document[0]
        width_pt, height_pt = page.get_size()
        if not (math.isfinite(width_pt) and math.isfinite(height_pt) and width_pt > 0 and height_pt > 0):
            raise PageReadError(f"{path}: first PDF page has no usable size ({width_pt} x {height_pt} pt)")
        bitmap = page.render(scale=pdf_render_scale(width_pt, height_pt))
        return pil_to_rgb8(bitmap.to_pil())
    except PageReadError:
        raise
    except MemoryError:
        raise PageReadError(f"{path}: ran out of memory rasterising the PDF page") from None
    except Exception as error:
        raise PageReadError(f"{path}: cannot rasterise the first PDF page ({_describe(error)})") from None
    finally:
        document.close()


def image_files_in(folder: str | Path) -> list[Path]:
    """Entries directly inside ``folder`` named like images, sorted: a suffix (any case) in
    :data:`IMAGE_SUFFIXES` or :data:`UNSUPPORTED_IMAGE_SUFFIXES`.

    Whatever is named like an image is listed, even a sub-folder, a broken link or an
    unsupported format, so that :func:`load_image` reports each one instead of it being
    skipped without a word. Raises ``OSError`` when the folder cannot be listed.
    """
    folder = Path(folder)
    wanted = set(IMAGE_SUFFIXES) | set(UNSUPPORTED_IMAGE_SUFFIXES)
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in wanted)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 RGB image (used to embed debug panels in reports)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Maps shared by the steps
# ---------------------------------------------------------------------------------------------

def limit_resolution(image: np.ndarray, long_side: int = WORK_LONG_SIDE) -> np.ndarray:
    """Shrink ``image`` (area interpolation) so its long side is at most ``long_side`` px."""
    height, width = image.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def ink_map(image: np.ndarray) -> np.ndarray:
    """How much darker than the surrounding paper each pixel is: float32 ``(H, W)`` in [0, 1].

    Works on the darkest channel, so red grid lines on white, black or blue traces and grey
    grids all count as ink, while the paper tint (pink, grey, yellowed) does not: the local
    paper level is a grey-level closing (a max filter) wider than any line, blurred, and the
    ink is the relative shortfall from it. Uneven light is removed by the same division.
    """
    darkest = darkest_channel(image).astype(np.float32)
    paper = local_paper_level(darkest)
    return np.clip(1.0 - darkest / np.maximum(paper, 1.0), 0.0, 1.0)


def local_paper_level(channel: np.ndarray) -> np.ndarray:
    """Smooth estimate of the paper brightness under ``channel`` (float32, same shape).

    A local maximum over a window of about 1/40 of the long side spans several grid cells,
    so it reaches the paper between lines; a blur then removes the blockiness. Both run on
    a block-maximum copy a fifth of the window per pixel (same result, a fraction of the cost).
    """
    height, width = channel.shape
    window = max(5, (max(height, width) // 40) | 1)
    block = max(1, window // 5)
    padded_height, padded_width = -(-height // block) * block, -(-width // block) * block
    values = np.pad(channel.astype(np.float32), ((0, padded_height - height), (0, padded_width - width)), mode="edge")
    blocks = values.reshape(padded_height // block, block, padded_width // block, block).max(axis=(1, 3))
    reach = max(3, (window // block) | 1)
    paper = cv2.dilate(blocks, cv2.getStructuringElement(cv2.MORPH_RECT, (reach, reach)))
    paper = cv2.GaussianBlur(paper, (2 * reach + 1, 2 * reach + 1), 0)
    paper = cv2.resize(paper, (padded_width, padded_height), interpolation=cv2.INTER_LINEAR)
    return paper[:height, :width]


def darkest_channel(image: np.ndarray) -> np.ndarray:
    """Per-pixel minimum over the RGB channels (uint8 ``(H, W)``)."""
    return np.minimum(np.minimum(image[:, :, 0], image[:, :, 1]), image[:, :, 2])


# ---------------------------------------------------------------------------------------------
# Is it an ECG?
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EcgEvidence:
    """The measurements behind :func:`looks_like_ecg` (kept for reports and threshold checks)."""

    grid_score: float
    grid_period_px: float
    ink_fraction: float
    blob_fraction: float
    trace_column_fraction: float
    skew_deg: float
    sheet_found: bool = False  # measured on the sheet cut out of a photo (find_paper_quad)
    qrs_spikes: int = 0
    grid_evenness: float = 0.0  # the grid score against neighbouring frequencies too (GRID_MIN_EVENNESS)


GRID_MIN_SCORE: float = 4.8
"""Least grid score (log prominence of a square lattice peak, see :func:`grid_score`).
Measured: real prints and renders 5.0-11, natural photos 1.4-3.5, text pages 3.4-4.0."""
GRID_MIN_EVENNESS: float = 3.0
"""Least grid score when each axis peak must also stand out from the neighbouring frequencies along
its own axis (:func:`tile_lattice_scores` with ``evenly_spaced=True``), which a grid passes and a few
straight lines do not. A single line has the same power at every frequency along its axis, so the
lines of a chart, a spreadsheet or a form on blank paper outscore the rest of the ring at *every*
radius and pass :data:`GRID_MIN_SCORE` (a printed line chart 10.0, a ruled table 5.3), while the
evenly spaced lines of a grid concentrate it at one radius and its harmonics. Measured on the 52
real prints: 3.5-8.4 (grid score 6.0-11.0); on the non-ECG set of ``benchmarks/ecg_check_acceptance.py``,
as they are and photographed: at most 2.8, except lattices that other tests refuse (a checkerboard
3.4, graph paper without traces 5.7-8.0)."""
SPARSE_TRACES_MIN_EVENNESS: float = 1.5
"""Least evenness (:data:`GRID_MIN_EVENNESS`) of the grid on a page whose ink is sparse with plain traces
(at most :data:`BLURRED_GRID_MAX_INK`, traces across :data:`BLURRED_GRID_MIN_TRACE_COLUMNS` of the columns).
Perspective and defocus smear a photographed grid's peaks across the neighbouring frequencies: 3 of the
720 photographed prints of ``benchmarks/ecg_check_acceptance.py`` seeds 8, 11 and 13 measure 1.97-2.13
(grid scores 4.3-6.9, ink 0.9-1.4 %, traces 20-42 %). The line chart and the ruled table measure 0.8-1.9
but ink 4-8 % of the page; every non-ECG image with sparse ink has no traces."""
INK_FRACTION_RANGE: tuple[float, float] = (0.003, 0.75)
"""Share of pixels clearly darker than the paper (see :data:`FAINT_INK_FLOOR`): traces plus grid lines."""
BLOB_MAX_FRACTION: float = 0.35
"""Largest share of the ink that may survive a :data:`BLOB_KERNEL` opening: ECG ink is thin lines,
photographs are areas. Measured with ``benchmarks/ecg_check_acceptance.py``: natural photographs
0.53-0.99 (grass and gravel 0.64, caught by the grid test anyway), clean pages about 0, blurred
phone photos of pages 0-0.5."""
BLOB_KERNEL: int = 7
"""Opening diameter (px at :data:`DETECT_LONG_SIDE`) of the thin-strokes test. 7 rather than 5:
a phone photo's defocus widens 1-2 px traces to 3-6 px, which a 5 px opening keeps as "areas"."""
TRACE_MIN_COLUMNS: float = 0.05
"""Least share of page columns crossed by ink that is not a long straight grid line (traces).
Blank graph paper measures 0 %; blurred phone photos of printed pages go down to about 7 %."""
TRACE_MIN_SPIKES: int = 8
"""... or at least this many QRS spikes (see :func:`trace_evidence`): a page whose tall QRS complexes
are its darkest ink. Measured with ``benchmarks/ecg_check_acceptance.py``'s images: blank, tinted
and graph paper, each photographed at four severities, show at most 3; such ECG photos 9-13."""
TRACE_FIXED_LEVEL: float = 0.25
"""Ink level of the second trace test, on a page whose traces fail at the level set by its darkest
line ink (90 % of it, up to 0.4): on phone photos of pages that darkest ink can be the red grid's
major lines or a shadowed edge (0.77-0.88), and the blurred traces stay under it. Measured on the
400 held-out photos of ``benchmarks/threshold_routes.py``: the 6 such refusals cross 85-100 % of
the columns at this level; blank and graph paper, as they are and photographed, 0-0.3 %."""
TRACE_FIXED_MIN_COLUMNS: float = 0.1
"""Least share of columns crossed at :data:`TRACE_FIXED_LEVEL` (twice :data:`TRACE_MIN_COLUMNS`:
the second test is the weaker evidence)."""
QRS_SPIKE_MIN_HEIGHT: int = 12
"""Least height (px at :data:`DETECT_LONG_SIDE`) of a stroke counted as a QRS spike."""
STRONG_GRID_SCORE: float = 6.0
"""A lattice this clear is ECG paper even when parts of the frame are dark areas (the table or
hand around a photographed sheet, shadows): the thin-strokes test is waived above it.
Real prints score 5.9-12, natural photographs 1.7-3.3, a brick wall 5.0."""
FAINT_INK_FLOOR: float = 0.12
"""Least ink level (relative shortfall from the paper) that counts as ink, however faint the page's
darkest ink: the ink test counts pixels darker than 70 % of the page's 99.9th-percentile ink, between
this floor and 0.25. Blank paper's darkest pixels stay under it."""
FAINT_TRACE_FLOOR: float = 0.15
"""Least stroke level of the trace test (90 % of the page's darkest ink, between this and 0.4)."""
GRID_AGREEING_TILES: int = 3
"""A grid that covers only part of the frame (a photographed sheet with wide margins, a small
printout on a large desk) still counts when this many tiles agree on a lattice of the same
period (within :data:`GRID_PERIOD_TOLERANCE`): the grid score is then the weakest of the best such
tiles, where the page-wide score asks three quarters of all tiles for a lattice. Measured with
``benchmarks/ecg_check_acceptance.py``: blurred photos of pages whose grid covers a fifth of the
frame have 3-5 tiles at 5-7 and a page-wide score of 4.2-4.7; natural photos, text pages and noise
have at most one or two tiles over 4.8, at unrelated periods."""
GRID_PERIOD_TOLERANCE: float = 0.2
"""Relative difference of tile periods that still counts as the same grid (perspective and paper
curvature change the period across a photographed sheet)."""
BLURRED_GRID_MIN_SCORE: float = 4.0
"""Least grid score of a page whose grid a camera blurred: below :data:`GRID_MIN_SCORE`, a lattice
counts when the rest of the page is what only an ECG print shows (:data:`BLURRED_GRID_MAX_INK`,
:data:`BLURRED_GRID_MIN_TRACE_COLUMNS`, thin strokes). Defocus and camera shake soften the 1 mm
lines before the traces: photos of prints at severity 0.75-1 score 4.1-4.5 with traces across a
third of the columns. Text pages reach 3.8-4.2 too, but they are ink-heavy."""
BLURRED_GRID_MAX_INK: float = 0.03
"""Most ink (share of pixels, see :data:`INK_FRACTION_RANGE`) on a page accepted by its blurred grid:
traces on ECG paper photographed from a print measure 0.2-1.9 %, printed text pages 7-13 %."""
PLOT_BLURRED_GRID: tuple[float, float, float] = (3.0, 2.0, 0.05)
"""Least grid score, least evenness (:data:`GRID_MIN_EVENNESS`) and most ink of a blurred grid on the
plotted area that :func:`find_plot_area` found on a photographed sheet (a filled rectangle of ink with
blank paper all round: the shape of a printed plot, which no other evidence here needs). There a
camera's defocus at severity 1 leaves grid scores of 3.0-4.6 and evenness 2.2-3.2, with ink 0.9-4 %
(measured on the 20 severity-1 photos of ``benchmarks/ecg_check_acceptance.py --seed 8``); the non-ECG
images whose sheet holds such an area (photographs, text, noise, tinted or graph paper) fail it by
their ink (8-70 %), blobs or traces (graph paper 0 %)."""
BLURRED_GRID_MIN_TRACE_COLUMNS: float = 0.1
"""Least share of columns crossed by traces on a page accepted by its blurred grid (twice
:data:`TRACE_MIN_COLUMNS`: the grid is weaker evidence, so the traces must be plainer)."""
SIDEWAYS_MAX_ROW_RATIO: float = 0.5
"""Most :func:`trace_row_ratio` of a page taller than wide that is refused as turned by 90 degrees
(traces running top to bottom), which the model would read as another ECG: 5 of 6 real prints turned
by 90 degrees were given confident diagnoses other than their upright page's (one print's LBBB 0.97
became SB 0.96). Upright, the ratio measured 0.96-5.2 on the 52 real prints and 0.62-6.8 on 200 clean
synthetic pages of every layout and style (the clinical 3x4 layout, its rows close together, lowest).
Only portrait pages are judged: ECG pages are printed landscape, and three landscape photos of upright
pages in ``benchmarks/ecg_check_acceptance.py`` whose darkest strokes are tall QRS complexes measured
0.40-0.46. Turned by 90 degrees the profiles swap: about 60 % of the real prints fall below 0.5 and are
refused (the benchmark reports the share); the others are classified as they are, as before. A page is
refused rather than turned back: which of the two quarter turns is upright is not told reliably (the QRS
polarity, ink above against below each row's baseline, had the upright sign on 28 of 49 real prints)."""
SIDEWAYS = "the traces run top to bottom, not left to right (the page is turned by 90 degrees?): rotate the image"
DETECT_LONG_SIDE: int = 1024
GRID_TILE: int = 192
UNEVEN_LINES = "straight lines but no evenly spaced ECG grid (a chart, a table or a form?)"


def looks_like_ecg(image: np.ndarray, *, sheet: tuple[np.ndarray, np.ndarray | None] | None = None
                   ) -> tuple[bool, str, float]:
    """Decide whether ``image`` (uint8 RGB) looks like an ECG page: ``(accepted, reason, score)``.

    When the image is a photo of a sheet on a darker surface (:func:`find_paper_quad`), the
    sheet is cut out and straightened first and the evidence is measured on it. Measured on a
    deskewed copy at most :data:`DETECT_LONG_SIDE` px long, on the ink map (:func:`ink_map`),
    four pieces of evidence must all hold:

    * **grid**: ECG paper is a square lattice of thin lines. :func:`grid_score` finds, tile by
      tile, a spectral peak that stands out from everything else at the same spatial
      frequency *along both image axes at the same period*; text (rows only), photographs
      (no lattice) and noise (no peak) fail it, and so do a chart's or a table's few straight lines
      once each peak must also stand out from its neighbouring frequencies along its axis
      (:data:`GRID_MIN_EVENNESS`). Needs :data:`GRID_MIN_SCORE` over three quarters
      of the frame, or over :data:`GRID_AGREEING_TILES` tiles of the same period
      (:func:`agreeing_grid_score`: a sheet that fills only part of a photo); a grid that a camera
      blurred below that (down to :data:`BLURRED_GRID_MIN_SCORE`) counts on a page with little ink and
      plain traces (:data:`BLURRED_GRID_MAX_INK`, :data:`BLURRED_GRID_MIN_TRACE_COLUMNS`);
    * **ink**: between 0.3 % and 75 % of the pixels clearly darker than the paper, "clearly"
      measured against the page's own darkest ink (:data:`FAINT_INK_FLOOR`), so that a faint photo
      counts its ink (a blank page has none, noise or a dark photo has ink everywhere);
    * **thin strokes**: at most :data:`BLOB_MAX_FRACTION` of the ink survives a :data:`BLOB_KERNEL` opening
      (printed lines are 1-3 px wide here; photographs are made of areas, bricks of blocks);
    * **traces**: at least :data:`TRACE_MIN_COLUMNS` of the columns hold ink that is not part
      of a long straight line, or :data:`TRACE_MIN_SPIKES` QRS spikes stand out, or, where the
      page's darkest lines are not its traces, :data:`TRACE_FIXED_MIN_COLUMNS` of the columns at the
      fixed :data:`TRACE_FIXED_LEVEL`; so blank graph paper is refused.

    A page that passes but stands portrait with its traces in columns rather than rows is refused as
    turned by 90 degrees (:data:`SIDEWAYS_MAX_ROW_RATIO`). On the plotted area of a photographed print
    (:func:`check_page`) a grid blurred away entirely is waived for sparse thin traces in rows
    (:data:`PLOT_TRACES`).

    ``score`` is the grid score over :data:`GRID_MIN_SCORE` (>= 1 passes the grid test on its
    own; a blurred grid passes from :data:`BLURRED_GRID_MIN_SCORE` with the other tests). Pages printed without any
    grid are refused: the study's models only ever see gridded pages. ``sheet`` is
    :func:`cut_out_sheet` of ``image`` where the caller has it already (predict shares it with
    :func:`prepare_page`, so a photo's sheet is found once).
    """
    accepted, reason, score, _ = check_page(image, sheet=sheet)
    return accepted, reason, score


def check_page(image: np.ndarray, *, sheet: tuple[np.ndarray, np.ndarray | None] | None = None
               ) -> tuple[bool, str, float, tuple[np.ndarray, np.ndarray | None]]:
    """:func:`looks_like_ecg`, and the sheet :func:`prepare_page` should read: ``(accepted, reason, score, sheet)``.

    The sheet cut out of a photo (:func:`cut_out_sheet`) is judged first. If it is refused and a
    plotted area stands out on it (:func:`plotted_area`: a print on a larger sheet), that area is
    judged; :func:`prepare_page` crops the sheet to it too. If the sheet is still refused, the
    bright region taken for the sheet may be a patch of the page itself (a highlight, the light
    half of a page lying in shadow), so the whole frame is judged too and, if it passes, is the
    page to read.
    """
    sheet = sheet if sheet is not None else cut_out_sheet(image)
    accepted, reason, score, evidence = ecg_evidence(image, sheet=sheet)
    sideways = reason.startswith(SIDEWAYS)  # an area of a sideways page is as sideways: not judged again
    if not accepted and not sideways:
        # A print photographed on a desk: the plot covers half of the sheet and the check's tiles
        # that fall on blank paper outvote it, and printed axis labels (darker than a defocused
        # trace) set the trace test's ink level. The plotted area alone is judged again.
        plot = plotted_area(sheet[0])
        if plot is not None:
            plot_accepted, plot_reason, plot_score, _ = ecg_evidence(image, sheet=(plot, None), plotted_area=True)
            if plot_accepted:
                return True, f"{plot_reason}, on the plotted area of the sheet (the whole sheet was refused: " \
                             f"{reason})", plot_score, sheet
    # Only a "sheet" without a grid is suspect: a sheet refused for what its grid shows (blank or
    # faint graph paper) is judged, and the desk around it would only add clutter.
    if not accepted and not sideways and sheet[1] is not None and evidence.grid_score < GRID_MIN_SCORE:
        whole = (limit_resolution(image), None)
        whole_accepted, whole_reason, whole_score, _ = ecg_evidence(image, sheet=whole)
        if whole_accepted:
            return True, f"{whole_reason}, on the whole frame (the region found as the sheet was refused: " \
                         f"{reason})", whole_score, whole
    return accepted, reason, score, sheet


def ecg_evidence(image: np.ndarray, *, sheet: tuple[np.ndarray, np.ndarray | None] | None = None,
                 plotted_area: bool = False) -> tuple[bool, str, float, EcgEvidence]:
    """:func:`looks_like_ecg` together with its measurements. ``plotted_area``: ``sheet`` is the plotted
    area :func:`find_plot_area` found on a sheet, so a grid blurred further counts (:data:`PLOT_BLURRED_GRID`)."""
    # A photo of a sheet on a table, a hand or a clipboard: judge the sheet, not the frame. The
    # surface around it is "photographic content" by every measure below, and up to half of a
    # phone photo can be surface.
    work, corners = sheet if sheet is not None else cut_out_sheet(image)
    work = limit_resolution(work, DETECT_LONG_SIDE)
    ink = ink_map(work)
    skew = estimate_skew_from_ink(ink)
    if abs(skew) > 0.3:  # rotate the page, not the ink map: one interpolation keeps lines sharp
        ink = ink_map(rotate_page(work, skew))
    (tile_scores, tile_periods), (even_scores, even_periods) = tile_lattice_score_sets(ink)
    page_lattice, period = page_grid_score(tile_scores, tile_periods)
    agreeing_lattice, agreeing_period = agreeing_grid_score(tile_scores, tile_periods)
    lattice = max(page_lattice, agreeing_lattice)
    if agreeing_lattice > page_lattice:
        period = agreeing_period
    evenness = max(page_grid_score(even_scores, even_periods)[0], agreeing_grid_score(even_scores, even_periods)[0])
    dark = (ink > 0.25).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (BLOB_KERNEL, BLOB_KERNEL))
    blobs = cv2.morphologyEx(dark, cv2.MORPH_OPEN, kernel)
    blob_fraction = float(blobs.sum() / max(int(dark.sum()), 1))
    # Dark areas that reach the frame's edge are, on a gridded page, the surface around a sheet
    # that fills most of the photo (no sheet outline to cut along): the desk in the corners.
    surface = _touching_the_edge(blobs)
    interior_blob_fraction = float((blobs & ~surface).sum() / max(int((dark & ~surface).sum()), 1))
    # The ink and trace tests measure against the page's own darkest *line* ink: a defocused, dim
    # or low-contrast photo spreads a trace over several pixels, none of them as dark as on a
    # print, while on a blank page even the darkest pixels are barely darker than the paper.
    # Areas (a strip of table at the sheet's edge, a fold's shadow) are left out of that
    # reference: they are darker than any printed line and would lift the thresholds above the
    # traces.
    lines = cv2.dilate(blobs, kernel) == 0
    line_ink = ink[lines] if int(lines.sum()) >= 0.01 * ink.size else ink.ravel()
    darkest_ink = float(np.percentile(line_ink, 99.9))
    ink_level = float(np.clip(0.7 * darkest_ink, FAINT_INK_FLOOR, 0.25))
    ink_fraction = float((ink > ink_level).mean())
    trace_level = float(np.clip(0.9 * darkest_ink, FAINT_TRACE_FLOOR, 0.4))
    trace_columns, spikes = trace_evidence(ink, threshold=trace_level)
    evidence = EcgEvidence(lattice, period, ink_fraction, blob_fraction, trace_columns, skew, corners is not None,
                           spikes, evenness)
    score = lattice / GRID_MIN_SCORE
    summary = (f"grid {lattice:.1f} (period {period:.1f} px, evenly spaced {evenness:.1f}), ink {ink_fraction:.1%}, "
               f"blobs {blob_fraction:.1%}, trace columns {trace_columns:.0%}, QRS spikes {spikes}"
               + (", on the sheet found in the photo" if corners is not None else ""))

    def accept(why: str, level: float = trace_level) -> tuple[bool, str, float, EcgEvidence]:
        # Everything else says ECG page; one whose traces run in columns is an ECG page turned by
        # 90 degrees, which the model would read as another ECG: refused with what to do. The
        # traces are taken at the level that found them (a fixed level where the page's darkest
        # lines were a shadow's edge, whose strokes say nothing of the traces' direction).
        # Only a page taller than wide is suspect: ECG pages are printed landscape, so one turned by
        # 90 degrees stands portrait, while a landscape page whose darkest strokes are tall QRS
        # complexes (high voltage across the chest leads) can have as low a ratio upright.
        rows = trace_row_ratio(ink, level) if ink.shape[0] > ink.shape[1] else np.inf
        if rows <= SIDEWAYS_MAX_ROW_RATIO:
            return False, f"{SIDEWAYS}: trace rows {rows:.2f}, {summary}", score, evidence
        return True, f"{why}: {summary}", score, evidence

    if ink_fraction < INK_FRACTION_RANGE[0]:
        return False, f"almost no dark ink (blank page?): {summary}", score, evidence
    if ink_fraction > INK_FRACTION_RANGE[1]:
        return False, f"dark content everywhere, not lines on paper: {summary}", score, evidence
    # Only a grid over most of the frame waives the thin-strokes test: a few agreeing tiles do not.
    # A grid that passes its test waives the dark areas at the frame's edge.
    photographic = blob_fraction > BLOB_MAX_FRACTION and page_lattice < STRONG_GRID_SCORE
    if photographic and (lattice < GRID_MIN_SCORE or interior_blob_fraction > BLOB_MAX_FRACTION):
        return False, f"photographic content (dark areas, not thin printed lines): {summary}", score, evidence
    # Sparse ink with plain traces is what a chart or a table is not (their text and rules ink 4-8 %
    # of the page): there a grid whose peaks perspective and defocus have smeared across neighbouring
    # frequencies still counts.
    sparse_traces = ink_fraction <= BLURRED_GRID_MAX_INK and trace_columns >= BLURRED_GRID_MIN_TRACE_COLUMNS
    grid_evenness_needed = SPARSE_TRACES_MIN_EVENNESS if sparse_traces else GRID_MIN_EVENNESS
    if lattice < GRID_MIN_SCORE:
        least_lattice, least_evenness, most_ink = (PLOT_BLURRED_GRID if plotted_area else
                                                   (BLURRED_GRID_MIN_SCORE, grid_evenness_needed, BLURRED_GRID_MAX_INK))
        least_evenness = min(least_evenness, grid_evenness_needed)  # the plotted area's band, or less
        blurred_grid = (lattice >= least_lattice and blob_fraction <= BLOB_MAX_FRACTION
                        and ink_fraction <= most_ink)
        if not blurred_grid:
            if plotted_area and _traces_in_rows(ink, trace_level, ink_fraction, blob_fraction, trace_columns):
                return accept("traces in rows on the plotted area of a print (its grid blurred away)")
            return False, f"no square ECG grid found: {summary}", score, evidence
        if evenness < least_evenness:
            return False, f"{UNEVEN_LINES}: {summary}", score, evidence
        if trace_columns >= BLURRED_GRID_MIN_TRACE_COLUMNS:
            return accept("blurred ECG grid and plain traces")
        # As on a sharp grid below: the page's darkest line ink (a shadowed edge, a strip of desk)
        # can set the trace level above the traces; judged again at the fixed level.
        fixed_columns, _ = trace_evidence(ink, threshold=TRACE_FIXED_LEVEL)
        if fixed_columns < BLURRED_GRID_MIN_TRACE_COLUMNS:
            return False, f"no square ECG grid found: {summary}", score, evidence
        return accept(f"blurred ECG grid and plain traces (across {fixed_columns:.0%} of the columns at ink level "
                      f"{TRACE_FIXED_LEVEL:g}, fainter than the page's darkest lines)", TRACE_FIXED_LEVEL)
    if evenness < grid_evenness_needed:
        return False, f"{UNEVEN_LINES}: {summary}", score, evidence
    if trace_columns < TRACE_MIN_COLUMNS and spikes < TRACE_MIN_SPIKES:
        # The trace level follows the page's darkest line ink, which on a photo can be the grid's
        # major lines or a shadowed edge rather than the traces: judged again at a fixed level.
        fixed_columns, _ = trace_evidence(ink, threshold=TRACE_FIXED_LEVEL)
        if fixed_columns < TRACE_FIXED_MIN_COLUMNS:
            return False, f"grid without traces (blank ECG paper?): {summary}", score, evidence
        return accept(f"ECG grid and traces (across {fixed_columns:.0%} of the columns at ink level "
                      f"{TRACE_FIXED_LEVEL:g}, fainter than the page's darkest lines)", TRACE_FIXED_LEVEL)
    return accept("ECG grid and traces")


PLOT_TRACES: tuple[float, float, float] = (0.03, 0.15, 1.5)
"""Most ink (share of pixels), least share of columns crossed by traces and least :func:`trace_row_ratio`
of a plotted area accepted with no grid left (:func:`_traces_in_rows`). Measured on photographed prints
at severity 1 (seeds 11 and 13 of the acceptance benchmark's photos, 96 of them) whose grid defocus
removed (grid score 2.5-2.9): ink 0.8-2.0 %, traces across 18-38 % of the columns, trace rows 1.8-5.6.
The non-ECG images whose sheet holds a plotted area (photographs, text, a handwritten note, noise)
ink 12-79 % of it; the sideways rule still applies (a column of traces is no row)."""


def _traces_in_rows(ink: np.ndarray, level: float, ink_fraction: float, blob_fraction: float,
                    trace_columns: float) -> bool:
    """Whether a plotted area whose grid a camera blurred away shows what only an ECG print does: sparse
    thin strokes (:data:`PLOT_TRACES`), traces across a good share of the columns, and those traces in
    rows (the leads), each with blank paper between."""
    most_ink, least_columns, least_rows = PLOT_TRACES
    return (ink_fraction <= most_ink and blob_fraction <= BLOB_MAX_FRACTION and trace_columns >= least_columns
            and trace_row_ratio(ink, level) >= least_rows)


def _touching_the_edge(mask: np.ndarray) -> np.ndarray:
    """The parts of a binary mask (uint8) connected to the image border, as a bool mask."""
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    edge = np.zeros(count, dtype=bool)
    edge[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
    edge[0] = False  # the background
    return edge[labels]


def grid_score(ink: np.ndarray, tile: int = GRID_TILE) -> tuple[float, float]:
    """Strength and period (px) of a square lattice of lines that fills most of an ink map.

    The map is cut into square tiles (local, so that perspective and paper curvature, which
    change the grid period across a photo, do not smear the peak). In each tile's 2-D power
    spectrum, every radius (spatial frequency) is compared with its own median over all
    directions, which cancels the 1/f fall-off of natural images; the tile's score is the
    best radius at which *both* axis directions (within +-6 degrees, for residual skew) stand
    out: ``log(min(peak along x, peak along y) / median at that radius)``. The page score is
    the 75th percentile over tiles (margins and header text may hold no grid).
    """
    return page_grid_score(*tile_lattice_scores(ink, tile))


def tile_lattice_scores(ink: np.ndarray, tile: int = GRID_TILE, *, evenly_spaced: bool = False
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Lattice score and period (px) of each tile of ``ink`` (see :func:`grid_score`).

    With ``evenly_spaced`` each axis peak is measured against the larger of its ring's median and
    the frequencies near it along the same axis (see :data:`GRID_MIN_EVENNESS`)."""
    return tile_lattice_score_sets(ink, tile, (evenly_spaced,))[0]


def tile_lattice_score_sets(ink: np.ndarray, tile: int = GRID_TILE, evenly_spaced: tuple[bool, ...] = (False, True)
                            ) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`tile_lattice_scores` for each entry of ``evenly_spaced``, from one spectrum per tile."""
    height, width = ink.shape
    short_side = min(height, width)
    if short_side < 1.5 * tile:  # small images: smaller tiles, still several per page
        tile = min(short_side, max(32, tile // 2))
    rows = np.linspace(0, height - tile, max(1, height // tile)).astype(int)
    columns = np.linspace(0, width - tile, max(1, width // tile)).astype(int)
    per_tile = [_tile_lattice_score_set(ink[top:top + tile, left:left + tile], evenly_spaced=evenly_spaced)
                for top in rows for left in columns]
    return [(np.asarray([scores[k][0] for scores in per_tile]), np.asarray([scores[k][1] for scores in per_tile]))
            for k in range(len(evenly_spaced))]


def page_grid_score(scores: np.ndarray, periods: np.ndarray) -> tuple[float, float]:
    """The 75th percentile of the tile scores, and the period of the tile that holds it."""
    order = int(np.argsort(scores)[int(0.75 * (scores.size - 1))])
    return float(np.percentile(scores, 75)), float(periods[order])


def agreeing_grid_score(scores: np.ndarray, periods: np.ndarray, tiles: int = GRID_AGREEING_TILES,
                        tolerance: float = GRID_PERIOD_TOLERANCE) -> tuple[float, float]:
    """Score of the best group of ``tiles`` tiles that agree on the lattice period, and that period.

    For each tile's period, the tiles within ``tolerance`` of it are the group; the group's
    score is its ``tiles``-th best score, so a single textured patch cannot make a grid.
    ``-inf`` when no group is that large (fewer tiles than that, or no agreement).
    """
    best, best_period = -math.inf, 0.0
    if scores.size < tiles:
        return best, best_period
    for period in periods:
        if period <= 0:
            continue
        group = np.sort(scores[np.abs(periods - period) <= tolerance * period])
        if group.size >= tiles and group[-tiles] > best:
            best, best_period = float(group[-tiles]), float(period)
    return best, best_period


_LATTICE_GEOMETRY: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}


def _lattice_geometry(size: int, wedge_deg: float = 6.0):
    """Per-size constants of :func:`_tile_lattice_score` (pure functions of ``size``, memoised)."""
    if size not in _LATTICE_GEOMETRY:
        frequencies = np.fft.fftfreq(size)
        fy, fx = np.meshgrid(frequencies, frequencies, indexing="ij")
        radius = np.rint(np.hypot(fx, fy) * size).astype(np.int64).ravel()
        angle = np.degrees(np.arctan2(np.abs(fy), np.abs(fx))).ravel()
        order = np.argsort(radius, kind="stable")
        bounds = np.searchsorted(radius[order], np.arange(size + 2))
        along_x = (angle <= wedge_deg)[order]
        along_y = (angle >= 90.0 - wedge_deg)[order]
        window = np.outer(np.hanning(size), np.hanning(size)).astype(np.float32)
        _LATTICE_GEOMETRY[size] = (order, bounds, along_x, along_y, window)
    return _LATTICE_GEOMETRY[size]


#: radii either side of a peak, along its axis, that :func:`_tile_lattice_score` compares it with when
#: ``evenly_spaced``: beyond a peak that perspective and blur spread over +-2 radii, and a quantile low
#: enough that the 5 mm lines' harmonics (every fifth of the 1 mm lines' radius) falling among them do not count
EVENNESS_NEIGHBOURS: tuple[int, int] = (3, 7)
EVENNESS_QUANTILE: float = 25.0


def _tile_lattice_score(tile: np.ndarray, min_period: float = 2.5, max_period: float = 80.0, *,
                        evenly_spaced: bool = False) -> tuple[float, float]:
    return _tile_lattice_score_set(tile, min_period, max_period, evenly_spaced=(evenly_spaced,))[0]


def _tile_lattice_score_set(tile: np.ndarray, min_period: float = 2.5, max_period: float = 80.0, *,
                            evenly_spaced: tuple[bool, ...]) -> list[tuple[float, float]]:
    """``(score, period)`` of :func:`_tile_lattice_score` for each entry of ``evenly_spaced``: the
    spectrum and its rings are computed once."""
    size = tile.shape[0]
    order, bounds, along_x, along_y, window = _lattice_geometry(size)
    centred = tile.astype(np.float32) - float(tile.mean())
    power = (np.abs(np.fft.fft2(centred * window)) ** 2).ravel()[order]
    low = max(2, int(np.ceil(size / max_period)))
    high = int(size / min_period)
    if high < low:  # a tile too small to hold a single grid period (a very thin image): no lattice
        return [(float(np.log(1e-12)), 0.0)] * len(evenly_spaced)
    any_even = any(evenly_spaced)
    last = min(high + 1 + (EVENNESS_NEIGHBOURS[1] if any_even else 0), len(bounds) - 2)
    median = np.zeros(last + 1)
    peak_x = np.zeros(last + 1)
    peak_y = np.zeros(last + 1)
    for radius in range(1 if any_even else low - 1, last + 1):
        start, stop = bounds[radius], bounds[radius + 1]
        ring = power[start:stop]
        median[radius] = np.median(ring)
        peak_x[radius] = ring[along_x[start:stop]].max(initial=0.0)
        peak_y[radius] = ring[along_y[start:stop]].max(initial=0.0)
    # a period between two integer radii spreads over both: look one bin either side
    radii = np.arange(low, high + 1)
    best_x = np.maximum.reduce([peak_x[radii - 1], peak_x[radii], peak_x[radii + 1]])
    best_y = np.maximum.reduce([peak_y[radii - 1], peak_y[radii], peak_y[radii + 1]])
    ring_floor = np.maximum(median[radii], 1e-12)
    results = []
    for even in evenly_spaced:
        floor_x = floor_y = ring_floor
        if even:
            near = np.array([d for k in range(EVENNESS_NEIGHBOURS[0], EVENNESS_NEIGHBOURS[1] + 1) for d in (-k, k)])
            neighbours = np.clip(radii[None, :] + near[:, None], 1, last)
            floor_x = np.maximum(floor_x, np.percentile(peak_x[neighbours], EVENNESS_QUANTILE, axis=0))
            floor_y = np.maximum(floor_y, np.percentile(peak_y[neighbours], EVENNESS_QUANTILE, axis=0))
        prominence = np.minimum(best_x / floor_x, best_y / floor_y)
        best = int(np.argmax(prominence))
        results.append((float(np.log(max(prominence[best], 1e-12))), float(size / radii[best])))
    return results


def trace_evidence(ink: np.ndarray, threshold: float = 0.4) -> tuple[float, int]:
    """Ink strokes that are not grid lines (the traces): ``(share of columns crossed, QRS spikes)``.

    Long straight lines are removed (openings with horizontal and vertical kernels a sixth of
    the page long, longer than a QRS complex is tall). What is left of a grid is thin line
    fragments (a pixel or two across in one direction); a trace leaves curved strokes that
    are at least 3 px in both directions. The columns spanned by such strokes are counted.

    Where the QRS complexes are the darkest ink on the page (tall complexes, a faint baseline),
    only they reach ``threshold``: thin vertical strokes, too short to be grid lines. They are
    counted too: strokes at least :data:`QRS_SPIKE_MIN_HEIGHT` px tall and three times as tall as
    wide, one per 4 px of page width.
    """
    width = ink.shape[1]
    count, _, stats, _ = cv2.connectedComponentsWithStats(_trace_strokes(ink, threshold), connectivity=8)
    covered = np.zeros(width, dtype=bool)
    spike_positions = set()
    for left, _, stroke_width, stroke_height, _ in stats[1:count]:
        if stroke_width >= 3 and stroke_height >= 3:
            covered[left:left + stroke_width] = True
        if stroke_height >= QRS_SPIKE_MIN_HEIGHT and stroke_height >= 3 * stroke_width:
            spike_positions.add(int(left) // 4)
    return float(covered.mean()), len(spike_positions)


def _trace_strokes(ink: np.ndarray, threshold: float) -> np.ndarray:
    """uint8 mask of the ink above ``threshold`` that is not part of a long straight line (a grid line):
    openings with horizontal and vertical kernels a sixth of the page long remove those."""
    height, width = ink.shape
    strong = (ink > threshold).astype(np.uint8)
    horizontal = cv2.morphologyEx(strong, cv2.MORPH_OPEN, np.ones((1, max(width // 6, 15)), np.uint8))
    vertical = cv2.morphologyEx(strong, cv2.MORPH_OPEN, np.ones((max(height // 6, 15), 1), np.uint8))
    return strong & (1 - (horizontal | vertical))


def trace_row_ratio(ink: np.ndarray, threshold: float) -> float:
    """How much more the traces are arranged in rows than in columns: the coefficient of variation
    (std / mean) of the traces' row profile over that of their column profile, each smoothed over a
    hundredth of its length.

    A 12-lead page draws its leads as rows of traces across the page with blank paper between them,
    so the row profile (trace ink per image row) rises and falls with the rows while the column
    profile stays about level: the ratio is well above 1 on an upright page and well below 1 on one
    turned by 90 degrees (the same profiles, swapped). 1.0 where no trace ink is found.
    """
    strokes = _trace_strokes(ink, threshold).astype(np.float32)
    if not strokes.any():
        return 1.0

    def variation(profile: np.ndarray) -> float:
        window = max(3, len(profile) // 100) | 1
        smooth = np.convolve(profile, np.ones(window, np.float32) / window, mode="same")
        return float(smooth.std() / max(float(smooth.mean()), 1e-6))

    return variation(strokes.mean(axis=1)) / max(variation(strokes.mean(axis=0)), 1e-6)


# ---------------------------------------------------------------------------------------------
# Geometry: paper outline, skew, grid area
# ---------------------------------------------------------------------------------------------

SHEET_EDGE_RATIO: float = 1.06
"""How much lighter (darkest RGB channel) a sheet must be than what it lies on, just inside its
edge against a band outside it, for :func:`find_paper_quad` to take an edge as the sheet's."""

SHEET_EDGE_OUTSIDE_PX: tuple[float, ...] = (4.0, 10.0, 16.0)
"""Where, beyond a candidate edge (pixels of the 640-px copy), the surface is sampled. All three
must be darker than the sheet: a surface is a region, while a grid line or a trace on the paper
is darker at only one of them."""


def _sample_at(values: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``values`` at the nearest pixel of each (x, y) point (``points[..., 2]``); NaN outside the image."""
    height, width = values.shape
    x, y = np.round(points[..., 0]).astype(int), np.round(points[..., 1]).astype(int)
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    out = np.full(points.shape[:-1], np.nan, np.float32)
    out[inside] = values[y[inside], x[inside]]
    return out


def _edge_contrast(values: np.ndarray, starts: np.ndarray, ends: np.ndarray, centre: np.ndarray,
                   samples: int = 32) -> np.ndarray:
    """For segments ``starts[k]``-``ends[k]`` (``(n, 2)`` each): per sample point along each, the
    value 4 px inside (towards ``centre``) over the brightest of the values
    :data:`SHEET_EDGE_OUTSIDE_PX` outside; ``(n, samples)``, NaN where a point leaves the image
    (a segment along the frame has no outside)."""
    sides = ends - starts
    normals = np.stack([sides[:, 1], -sides[:, 0]], axis=1) / np.maximum(np.linalg.norm(sides, axis=1), 1e-6)[:, None]
    towards_centre = np.einsum("ij,ij->i", centre[None] - (starts + ends) / 2, normals) >= 0
    normals = np.where(towards_centre[:, None], normals, -normals)[:, None, :]
    points = starts[:, None] + np.linspace(0.1, 0.9, samples, dtype=np.float32)[None, :, None] * sides[:, None]
    inner = _sample_at(values, points + 4.0 * normals)
    outer = np.max([_sample_at(values, points - d * normals) for d in SHEET_EDGE_OUTSIDE_PX], axis=0)
    return (inner + 1.0) / (outer + 1.0)


def _passes_edge_test(ratios: np.ndarray, min_samples: int = 8) -> np.ndarray:
    """Per row of :func:`_edge_contrast`: lighter inside than out by :data:`SHEET_EDGE_RATIO`
    (median), and more than a little lighter at 70 % of the points; ``False`` with too few points."""
    counts = (~np.isnan(ratios)).sum(axis=1)
    lighter = (np.nan_to_num(ratios, nan=0.0) > 1.02).sum(axis=1) / np.maximum(counts, 1)
    return (counts >= min_samples) & (_row_medians(ratios, counts >= min_samples) >= SHEET_EDGE_RATIO) & (lighter >= 0.7)


def _row_medians(ratios: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Median of the usable points of each row selected by ``rows``; -inf for the others (so
    that no all-NaN row reaches ``nanmedian``, which warns about it, from any thread)."""
    medians = np.full(len(ratios), -np.inf, np.float32)
    medians[rows] = np.nanmedian(ratios[rows], axis=1)
    return medians


def _fit_line(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Total-least-squares line through ``points``: ``(a point on it, unit direction)``."""
    mean = points.mean(axis=0)
    return mean, np.linalg.svd(points - mean)[2][0]


def _intersect(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]) -> np.ndarray | None:
    (p, d), (q, e) = first, second
    matrix = np.array([d, -e]).T
    if abs(np.linalg.det(matrix)) < 1e-6:
        return None
    return p + np.linalg.solve(matrix, q - p)[0] * d


def _edge_quad(image: np.ndarray, *, min_area: float = 0.2, max_area: float = 0.92) -> np.ndarray | None:
    """The sheet of :func:`find_paper_quad` found by its edges, not its brightness, or ``None``.

    Where the bright region fails: light falls off across a photo, a
    shadow darkens half the sheet and a light desk can be as bright as the sheet's dim corner,
    so no one threshold separates them, while the sheet's outline stays a sharp straight edge
    (a shadow's is soft). Straight segments (Canny + Hough on the darkest RGB channel, where a
    white sheet stands out from a cream or green desk too) that are the edge of something
    lighter lying on something darker (:func:`_edge_contrast` at least :data:`SHEET_EDGE_RATIO`)
    are sorted into the four sides around the frame's centre; each side is the line through
    the longest such segment and those in line with it. A side with none runs out of the
    frame. The quadrilateral is returned only when at least three of its sides lie in the
    frame and pass the same edge test along their whole length, and it covers between
    ``min_area`` and ``max_area`` of the frame: a page that fills the frame needs no warp, and
    scans and screenshots have no such edges. A printed plot's border is darker inside than
    out, so it is never taken for the sheet.
    """
    small = limit_resolution(image, 640)
    scale = image.shape[1] / small.shape[1]
    paper = cv2.GaussianBlur(darkest_channel(small), (0, 0), 1.5)
    height, width = paper.shape
    segments = cv2.HoughLinesP(cv2.Canny(paper, 15, 45), 1, np.pi / 360, threshold=30,
                               minLineLength=int(0.08 * min(height, width)), maxLineGap=int(0.02 * max(height, width)))
    if segments is None:
        return None
    values = paper.astype(np.float32)
    centre = np.array([width / 2, height / 2], np.float32)
    segments = segments.reshape(-1, 2, 2).astype(np.float32)
    # Only the median matters for a candidate; the 70 % rule is for the sheet's whole sides below.
    ratios = _edge_contrast(values, segments[:, 0], segments[:, 1], centre)
    edges = segments[_row_medians(ratios, (~np.isnan(ratios)).sum(axis=1) >= 8) >= SHEET_EDGE_RATIO]
    sides: dict[str, list[np.ndarray]] = {"top": [], "right": [], "bottom": [], "left": []}
    for segment in edges:
        (x1, y1), (x2, y2) = segment
        middle = segment.mean(axis=0)
        if abs(x2 - x1) >= abs(y2 - y1):
            sides["top" if middle[1] < centre[1] else "bottom"].append(segment)
        else:
            sides["left" if middle[0] < centre[0] else "right"].append(segment)
    frame = {"top": (np.array([0.0, 0.0]), np.array([1.0, 0.0])),
             "right": (np.array([width - 1.0, 0.0]), np.array([0.0, 1.0])),
             "bottom": (np.array([0.0, height - 1.0]), np.array([1.0, 0.0])),
             "left": (np.array([0.0, 0.0]), np.array([0.0, 1.0]))}
    lines = {}
    for name, found in sides.items():
        if not found:
            lines[name] = frame[name]
            continue
        point, direction = _fit_line(max(found, key=lambda s: float(np.linalg.norm(s[1] - s[0]))))
        normal = np.array([-direction[1], direction[0]])
        in_line = [s for s in found if np.abs((s - point) @ normal).max() < 4.0]
        lines[name] = _fit_line(np.concatenate(in_line))
    corners = [_intersect(lines[a], lines[b]) for a, b in
               (("top", "left"), ("top", "right"), ("bottom", "right"), ("bottom", "left"))]
    if any(c is None for c in corners):
        return None
    quad = np.array(corners, np.float32)
    quad[:, 0] = np.clip(quad[:, 0], -0.1 * width, 1.1 * width)
    quad[:, 1] = np.clip(quad[:, 1], -0.1 * height, 1.1 * height)
    area_fraction = cv2.contourArea(quad) / float(height * width)
    if not (min_area <= area_fraction <= max_area) or not cv2.isContourConvex(quad.reshape(-1, 1, 2)):
        return None
    in_frame, edges_pass = _outline_test(values, quad)
    if in_frame < 3 or not edges_pass:
        return None
    return _order_corners(quad) * scale


def _outline_test(values: np.ndarray, quad: np.ndarray) -> tuple[int, bool]:
    """``(sides in the frame, whether each of them passes the edge test)`` for ``quad`` drawn on
    ``values`` (the blurred darkest channel of the 640-px copy); a side along or beyond the
    frame has no outside and is not counted."""
    ratios = _edge_contrast(values, quad, np.roll(quad, -1, axis=0), quad.mean(axis=0))
    in_frame = (~np.isnan(ratios)).sum(axis=1) >= 8
    return int(in_frame.sum()), bool(_passes_edge_test(ratios[in_frame]).all())


def _bright_region_quad(image: np.ndarray, *, min_area: float = 0.2, max_area: float = 0.92) -> np.ndarray | None:
    """The sheet of :func:`find_paper_quad` as the largest bright region, or ``None``.

    The sheet is the largest bright region (Otsu threshold on the blurred grey image, closed so
    that grid lines and traces do not split it). It is returned only when its convex hull is
    close to a quadrilateral and covers between ``min_area`` and ``max_area`` of the frame:
    a page that fills the frame needs no warp, and a small bright blob is not the page.
    """
    small = limit_resolution(image, 640)
    scale = image.shape[1] / small.shape[1]
    grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (5, 5), 0)
    _, bright = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    sheet = max(contours, key=cv2.contourArea)
    area_fraction = cv2.contourArea(sheet) / float(grey.size)
    if not (min_area <= area_fraction <= max_area):
        return None
    hull = cv2.convexHull(sheet)
    corners = cv2.approxPolyDP(hull, 0.03 * cv2.arcLength(hull, True), True)
    if len(corners) != 4:
        return None
    # A sheet's outline is its own convex quadrilateral; the lit part of a shaded page is not.
    quad_area = cv2.contourArea(corners)
    if cv2.contourArea(sheet) < 0.9 * quad_area or cv2.contourArea(hull) > 1.1 * quad_area:
        return None
    inside = np.zeros_like(bright)
    cv2.fillConvexPoly(inside, corners.reshape(-1, 2), 255)
    outside_mean = float(grey[inside == 0].mean()) if (inside == 0).any() else 255.0
    inside_mean = float(grey[inside > 0].mean())
    if outside_mean > 0.75 * inside_mean:
        return None  # the "background" is about as bright as the sheet: shading, not a table
    return _order_corners(corners.reshape(4, 2).astype(np.float32) * scale)


def find_paper_quad(image: np.ndarray, *, min_area: float = 0.2, max_area: float = 0.92) -> np.ndarray | None:
    """Corners (float32 ``(4, 2)``, x/y, clockwise from top-left) of the sheet in a photo, or ``None``.

    First the largest bright region (:func:`_bright_region_quad`), kept when each of its sides
    is a sheet's edge (lighter inside than a band outside, :func:`_outlined_by_edges`); where it
    is not a quadrilateral sheet or fails that test (light falling off across the sheet, a
    shadow, a desk as light as the sheet's dim corner), the sheet's four straight edges
    (:func:`_edge_quad`), and the bright region where those are not found. Both return a
    quadrilateral only when it covers between ``min_area`` and ``max_area`` of the frame: a page
    that fills the frame needs no warp.
    """
    corners = _bright_region_quad(image, min_area=min_area, max_area=max_area)
    if corners is not None and _outlined_by_edges(image, corners):
        return corners
    # No bright sheet, or one whose outline is not a sheet's edge all round (the lit part of a
    # shaded sheet ends in the shadow's soft edge): the sheet's straight edges, where they exist.
    edges = _edge_quad(image, min_area=min_area, max_area=max_area)
    return edges if edges is not None else corners


def _outlined_by_edges(image: np.ndarray, corners: np.ndarray) -> bool:
    """Whether every side of ``corners`` (in ``image``'s pixels) that lies in the frame is the edge
    of something lighter on something darker, by the test :func:`_edge_quad` applies."""
    small = limit_resolution(image, 640)
    quad = corners * (small.shape[1] / image.shape[1])
    values = cv2.GaussianBlur(darkest_channel(small), (0, 0), 1.5).astype(np.float32)
    return _outline_test(values, quad)[1]


def _order_corners(points: np.ndarray) -> np.ndarray:
    """Order 4 points top-left, top-right, bottom-right, bottom-left."""
    sums = points.sum(axis=1)
    differences = points[:, 1] - points[:, 0]
    return np.array([points[np.argmin(sums)], points[np.argmin(differences)],
                     points[np.argmax(sums)], points[np.argmax(differences)]], dtype=np.float32)


def warp_quad(image: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Warp the quadrilateral ``corners`` of ``image`` to an upright rectangle of its mean side lengths."""
    top_left, top_right, bottom_right, bottom_left = corners
    width = int(round((np.linalg.norm(top_right - top_left) + np.linalg.norm(bottom_right - bottom_left)) / 2))
    height = int(round((np.linalg.norm(bottom_left - top_left) + np.linalg.norm(bottom_right - top_right)) / 2))
    width, height = max(width, 2), max(height, 2)
    target = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    return cv2.warpPerspective(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)


def estimate_skew(image: np.ndarray, max_angle: float = MAX_SKEW_DEG) -> float:
    """Page rotation in degrees (counter-clockwise positive, as :func:`rotate_page` undoes it).

    Grid lines and trace baselines are straight and axis-aligned on an upright page, so the
    ink map's row and column profiles are sharpest (largest variance of their first
    differences) at the right angle. Searched coarse-to-fine: 1 degree steps over
    +-``max_angle``, then 0.1 degree steps around the best.
    """
    return estimate_skew_from_ink(ink_map(limit_resolution(image, DETECT_LONG_SIDE)), max_angle)


def estimate_skew_from_ink(ink: np.ndarray, max_angle: float = MAX_SKEW_DEG) -> float:
    """:func:`estimate_skew` on an ink map (float ``(H, W)``); searched on a copy <= 512 px long.

    Half the detection resolution is plenty: a 0.1 degree turn still moves the end of a
    512 px line by ~1 px, and the search costs a quarter.
    """
    ink = limit_resolution(ink.astype(np.float32), SKEW_LONG_SIDE)
    valid = np.ones_like(ink)

    def sharpness(angle: float) -> float:
        rotated = _rotate_map(ink, angle)
        covered = _rotate_map(valid, angle)
        total = 0.0
        for axis in (0, 1):
            weight = covered.sum(axis=1 - axis)
            profile = rotated.sum(axis=1 - axis) / np.maximum(weight, 1.0)
            keep = weight > 0.5 * weight.max()
            differences = np.diff(profile[keep])
            total += float(np.mean(differences ** 2)) if differences.size else 0.0
        return total

    coarse = np.arange(-max_angle, max_angle + 1e-9, 1.0)
    coarse_scores = np.array([sharpness(a) for a in coarse])
    if coarse_scores.max() <= coarse_scores.min() * (1.0 + 1e-6):
        return 0.0  # featureless (blank) page: no angle is better than upright
    best = float(coarse[int(np.argmax(coarse_scores))])
    fine = np.arange(max(best - 1.0, -max_angle), min(best + 1.0, max_angle) + 1e-9, 0.1)
    fine_scores = [sharpness(a) for a in fine]
    return float(np.round(fine[int(np.argmax(fine_scores))], 2))


def _rotate_map(values: np.ndarray, angle: float) -> np.ndarray:
    """Rotate a float map by ``-angle`` degrees about its centre, zero outside (same size)."""
    height, width = values.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), -angle, 1.0)
    return cv2.warpAffine(values, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def rotate_page(image: np.ndarray, angle: float) -> np.ndarray:
    """Undo a page rotation of ``angle`` degrees (as :func:`estimate_skew` reports it).

    The canvas keeps its size; uncovered corners are filled by replicating the border, which
    the grid crop (:func:`find_grid_box`) then mostly removes.
    """
    if abs(angle) < 1e-3:
        return image
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), -angle, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def find_grid_box(image: np.ndarray, *, min_side: float = 0.5) -> tuple[int, int, int, int] | None:
    """Bounding box ``(top, bottom, left, right)`` (pixel rows/columns, end exclusive) of the grid.

    Grid lines are the only long straight lines on a page: the ink map is thresholded and
    opened with horizontal and vertical line kernels a tenth of the page long; the box spans
    the longest run of line positions without a large gap in each direction. ``None`` (use
    the whole page) when the box would keep less than ``min_side`` of the height or width:
    in a photo, blur or glare can hide the lines over part of the page, and cutting that
    part off would lose leads, which is worse than keeping a margin.
    """
    height, width = image.shape[:2]
    ink = ink_map(image)
    binary = (ink > 0.12).astype(np.uint8)
    horizontal = cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((1, max(width // 10, 3)), np.uint8))
    vertical = cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((max(height // 10, 3), 1), np.uint8))
    rows = _grid_span(horizontal.sum(axis=1) >= width // 10, max_gap=0.06 * height)
    columns = _grid_span(vertical.sum(axis=0) >= height // 10, max_gap=0.06 * width)
    if rows is None or columns is None:
        return None
    top, bottom = rows
    left, right = columns
    # Only cut a margin that really has no grid (header text, white border). Where lines were
    # missed (perspective tilts them, glare hides them) the margin still scores as a grid.
    margins = {"top": ink[:top], "bottom": ink[bottom:], "left": ink[:, :left], "right": ink[:, right:]}
    keep = {side: strip.size > 0 and min(strip.shape) >= 24 and grid_score(strip)[0] >= GRID_MIN_SCORE
            for side, strip in margins.items()}
    top, bottom = (0 if keep["top"] else top), (height if keep["bottom"] else bottom)
    left, right = (0 if keep["left"] else left), (width if keep["right"] else right)
    if bottom - top < min_side * height or right - left < min_side * width:
        return None
    if (top, bottom, left, right) == (0, height, 0, width):
        return None
    return top, bottom, left, right


PLOT_AREA_LONG_SIDE: int = 512
"""Long side (px) of the copy on which :func:`find_plot_area` looks for the plotted area."""
PLOT_AREA_NOISE_FLOOR_PERCENTILE: float = 5.0
"""Percentile of the averaged ink map taken as the noise floor that :func:`find_plot_area`'s contrast
test subtracts (blank paper under sensor noise)."""


def find_plot_area(image: np.ndarray, *, min_area: float = 0.12, max_area: float = 0.9,
                   min_contrast: float = 2.5, noise_floor_percentile: float | None = PLOT_AREA_NOISE_FLOOR_PERCENTILE
                   ) -> tuple[int, int, int, int] | None:
    """Bounding box ``(top, bottom, left, right)`` of the plotted ECG area on a sheet with blank margins.

    A plot printed on a larger sheet (an ``ecg_plot`` page, about 2.8:1, printed on A4 landscape
    leaves half the sheet blank) fills only part of a photographed sheet, and the model was
    trained on pages that the plot fills. :func:`find_grid_box` follows the grid lines, the
    first thing a phone camera's defocus removes; what stays, however blurred, is ink
    (:func:`ink_map`) all over the plotted area and along its edge, where the tinted or gridded
    plot meets white paper, and none on the blank margin. So the ink map, averaged over a
    25th of the sheet, is split by Otsu's threshold; the largest region, its holes filled (a
    washed-out plot shows only its edge), is the plot when it is a filled rectangle covering
    ``min_area`` to ``max_area`` of the sheet and the averaged ink outside it is at most
    1 / ``min_contrast`` of the ink inside (printed header text and axis labels are sparse), both
    counted above the sensor-noise floor (``noise_floor_percentile`` of the averaged map; ``None``: no
    floor) where blank paper surrounds the box.
    ``None`` for pages that the plot fills (renders, scans, cropped photos), blank pages, and
    where the inked part is no rectangle (shadows, photographs).
    """
    _, inked, mask, border = _inked_mask(image)
    height, width = mask.shape
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    region = (labels == largest).astype(np.uint8)
    outside = region.copy()
    flood = np.zeros((height + 2, width + 2), np.uint8)
    cv2.floodFill(outside, flood, (0, 0), 1)  # everything reachable from the corner: not a hole
    region = region | (1 - outside)
    left, top, box_width, box_height = cv2.boundingRect(region)
    box_area = box_width * box_height
    if not (min_area <= box_area / float(height * width) <= max_area):
        return None
    if int(region.sum()) < 0.9 * box_area:
        return None  # not a filled rectangle
    box = (top, top + box_height, left, left + box_width)
    # Sensor noise inks blank paper a little everywhere: on a phone photo at severity 1 the blank
    # margin's averaged ink reaches 40-80 % of the plot's. Where a blank margin surrounds the box, the
    # contrast is of the ink above that floor (where the box reaches the frame, the plot fills the page).
    margin_all_round = (top > border and left > border and top + box_height < height - border
                        and left + box_width < width - border)
    floor = (float(np.percentile(inked, noise_floor_percentile))
             if noise_floor_percentile is not None and margin_all_round else 0.0)
    if not _inked_inside(inked, _box_mask(inked.shape, box), floor, min_contrast):
        return None
    return _scaled_box(box, inked.shape, image.shape)


def _inked_mask(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(small copy, its ink map averaged over a 25th of the sheet, Otsu's split of that, border)``:
    what :func:`find_plot_area` and :func:`find_plot_outline` look at. The mask is cleared within
    ``border`` px of the edge (a sliver of desk left at the cut sheet's edge)."""
    small = limit_resolution(image, PLOT_AREA_LONG_SIDE)
    height, width = small.shape[:2]
    smooth = (max(height, width) // 25) | 1
    inked = cv2.blur(ink_map(small), (smooth, smooth))
    level = np.clip(inked * 255.0 / max(float(inked.max()), 1e-6), 0, 255).astype(np.uint8)
    _, mask = cv2.threshold(level, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    border = max(2, max(height, width) // 50)
    mask[:border], mask[-border:], mask[:, :border], mask[:, -border:] = 0, 0, 0, 0
    return small, inked, mask, border


def _box_mask(shape: tuple[int, ...], box: tuple[int, int, int, int]) -> np.ndarray:
    """bool mask of ``shape[:2]``, True inside ``box`` ``(top, bottom, left, right)``."""
    top, bottom, left, right = box
    inside = np.zeros(shape[:2], bool)
    inside[top:bottom, left:right] = True
    return inside


def _inked_inside(inked: np.ndarray, inside: np.ndarray, floor: float, least_contrast: float) -> bool:
    """Whether the averaged ink ``inked`` inside the mask, above ``floor``, is at least ``least_contrast``
    times the ink outside it (the plotted-area contrast test of :func:`find_plot_area` and
    :func:`find_plot_outline`)."""
    return (float(inked[inside].mean()) - floor
            >= least_contrast * max(float(inked[~inside].mean()) - floor, 1e-4))


def _scaled_box(box: tuple[int, int, int, int], small_shape: tuple[int, ...], image_shape: tuple[int, ...]
                ) -> tuple[int, int, int, int]:
    """``box`` ``(top, bottom, left, right)`` found on a copy of ``small_shape`` in the pixels of ``image_shape``."""
    scale_y, scale_x = image_shape[0] / small_shape[0], image_shape[1] / small_shape[1]
    top, bottom, left, right = box
    return (int(round(top * scale_y)), int(round(bottom * scale_y)),
            int(round(left * scale_x)), int(round(right * scale_x)))


PLOT_OUTLINE: tuple[float, float] = (1.5, 0.97)
"""Least ink contrast (inside over outside the box, above the noise floor, as :func:`find_plot_area`
measures it with 2.5) and most tint (darkest RGB channel inside over outside) of a plotted area found
by its outline (:func:`find_plot_outline`). Measured on the 17 photographed prints at severity 0.75
and 1 (of 192, seeds 11 and 13 of the acceptance benchmark's photos) that the check accepts on such
an area: contrast 2.0-4.7, tint 0.84-0.96 (the blurred grid tints the plot). Non-ECG images where
an outline is found measure tints of 0.23-0.94 and are refused by the evidence on the area (ink
12-79 %, blobs)."""


def find_plot_outline(image: np.ndarray, *, min_area: float = 0.12, max_area: float = 0.9
                      ) -> tuple[int, int, int, int] | None:
    """Bounding box ``(top, bottom, left, right)`` of a plotted area found by its outline, or ``None``.

    Where a phone camera's defocus and noise have spread :func:`find_plot_area`'s inked region into
    the margin (Otsu's split of the averaged ink leaks there, so the region is no filled rectangle),
    the plot's edge is still there: the averaged ink map rises along it, where the tinted or gridded
    plot meets white paper (the local paper level, a maximum over a 40th of the sheet, reaches across
    it). The mask's long straight runs (openings a third of the width long and a sixth of the height
    tall) are that outline; the box spans the outermost of them, with blank paper above and below,
    and must be darker than the paper around it (:data:`PLOT_OUTLINE`). The same runs follow the rows
    of traces on a page that the plot fills (real prints, renders), so the box is only ever judged
    by the ECG-page check (:func:`plotted_area`), never used to crop: on 12 of the 52 real prints and
    23 of 100 clean synthetic pages it is found inside the plot.
    """
    small, inked, mask, border = _inked_mask(image)
    height, width = mask.shape
    horizontal = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((1, max(width // 3, 3)), np.uint8))
    vertical = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((max(height // 6, 3), 1), np.uint8))
    rows, columns = np.flatnonzero(horizontal.any(axis=1)), np.flatnonzero(vertical.any(axis=0))
    if len(rows) == 0 or len(columns) == 0:
        return None
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1
    if bottom - top < height // 6 or right - left < width // 3 or top <= border or bottom >= height - border:
        return None
    if not min_area <= (bottom - top) * (right - left) / float(height * width) <= max_area:
        return None
    inside = _box_mask(inked.shape, (top, bottom, left, right))
    least_contrast, most_tint = PLOT_OUTLINE
    if not _inked_inside(inked, inside, float(np.percentile(inked, PLOT_AREA_NOISE_FLOOR_PERCENTILE)), least_contrast):
        return None
    darkest = darkest_channel(small).astype(np.float32)
    if float(darkest[inside].mean()) > most_tint * max(float(darkest[~inside].mean()), 1.0):
        return None
    return _scaled_box((top, bottom, left, right), inked.shape, image.shape)


def plotted_area(page: np.ndarray) -> np.ndarray | None:
    """``page`` deskewed and cropped to the plotted area the ECG-page check judges, or ``None`` where
    none stands out: :func:`find_plot_area` (the crop :func:`prepare_page` uses too), else
    :func:`find_plot_outline`."""
    page = rotate_page(page, estimate_skew(page))
    box = find_plot_area(page)
    if box is None:
        box = find_plot_outline(page)
    if box is None:
        return None
    top, bottom, left, right = box
    return page[top:bottom, left:right]


def _crop_box(grid: tuple[int, int, int, int] | None, plot: tuple[int, int, int, int] | None
              ) -> tuple[int, int, int, int] | None:
    """The part of the page to keep: inside both the grid box and the plot area where both were found."""
    if grid is None or plot is None:
        return grid if plot is None else plot
    top, bottom = max(grid[0], plot[0]), min(grid[1], plot[1])
    left, right = max(grid[2], plot[2]), min(grid[3], plot[3])
    if bottom - top < 0.5 * (plot[1] - plot[0]) or right - left < 0.5 * (plot[3] - plot[2]):
        return plot  # the two disagree: the plot area is the robust one on a photographed sheet
    return top, bottom, left, right


def _grid_span(is_line: np.ndarray, max_gap: float) -> tuple[int, int] | None:
    """Extent (start, end exclusive) of the longest run of line positions with no gap over
    ``max_gap`` px (or three grid spacings, if larger)."""
    positions = np.flatnonzero(is_line)
    if positions.size < 4:
        return None
    # merge adjacent pixels of one thick line into one position
    starts = positions[np.concatenate(([True], np.diff(positions) > 1))]
    if starts.size < 4:
        return None
    gaps = np.diff(starts)
    limit = max(3.0 * float(np.median(gaps)), max_gap)
    best, run_start = (0, 0), 0
    for index, gap in enumerate(np.append(gaps, np.inf)):
        if gap > limit:
            if starts[index] - starts[run_start] > best[1] - best[0]:
                best = (int(starts[run_start]), int(starts[index]))
            run_start = index + 1
    first, last = best
    if last <= first:
        return None
    return first, last + 1


# ---------------------------------------------------------------------------------------------
# Photometry and size
# ---------------------------------------------------------------------------------------------

def normalise_paper(image: np.ndarray, *, black_percentile: float = 0.3) -> np.ndarray:
    """White paper, dark ink: divide each channel by its local paper level, then stretch.

    Dividing by :func:`local_paper_level` per channel makes any paper tint or colour cast
    white and removes uneven light (shadows, vignetting); the ink keeps its own colour
    relative to the paper (red grid stays red, black traces stay dark). The darkest
    ``black_percentile`` % of the luminance is then mapped to black, restoring the contrast
    that a washed-out photo or a faint scan loses.
    """
    values = image.astype(np.float32)
    flattened = np.empty_like(values)
    for channel in range(3):
        paper = local_paper_level(values[:, :, channel])
        flattened[:, :, channel] = values[:, :, channel] / np.maximum(paper, 1.0)
    flattened = np.clip(flattened, 0.0, 1.0)
    luminance = flattened @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    black = float(np.percentile(luminance, black_percentile))
    black = min(black, 0.6)
    stretched = np.clip((flattened - black) / max(1.0 - black, 1e-3), 0.0, 1.0)
    return _unit_to_uint8(stretched)


def resize_to_model(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a uint8 RGB page to exactly ``height x width`` -> float32 ``(3, height, width)`` in [0, 1]."""
    interpolation = cv2.INTER_AREA if image.shape[0] >= height else cv2.INTER_LINEAR
    resized = cv2.resize(image, (int(width), int(height)), interpolation=interpolation)
    return np.ascontiguousarray(resized.transpose(2, 0, 1).astype(np.float32) / 255.0)


# ---------------------------------------------------------------------------------------------
# The whole path
# ---------------------------------------------------------------------------------------------

@dataclass
class PageSteps:
    """Intermediate images (uint8 RGB) and estimates of one :func:`prepare_page` run, for inspection.

    ``paper_corners`` are in the pixels of ``images["input"]`` (the copy shrunk by
    :func:`limit_resolution`); ``skew_deg`` applies to ``images["paper"]`` and ``grid_box``
    to ``images["deskewed"]``.
    """

    images: dict[str, np.ndarray] = field(default_factory=dict)
    paper_corners: np.ndarray | None = None
    skew_deg: float = 0.0
    grid_box: tuple[int, int, int, int] | None = None


def cut_out_sheet(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(page, corners)``: ``image`` shrunk to :data:`WORK_LONG_SIDE` and, where it is a photo of
    a sheet on a darker surface, the sheet cut out and straightened (:func:`find_paper_quad`,
    :func:`warp_quad`); ``corners`` is None where no sheet stands out (scans, screenshots)."""
    page = limit_resolution(image)
    corners = find_paper_quad(page)
    return (warp_quad(page, corners) if corners is not None else page), corners


def prepare_page(image: np.ndarray, height: int, width: int, *, debug: bool = False,
                 correct_geometry: bool = True, sheet: tuple[np.ndarray, np.ndarray | None] | None = None,
                 skew_deg: float | None = None):
    """Turn a uint8 RGB page (print, scan or photo) into model input float32 ``(3, height, width)``.

    Runs the steps listed in the module docstring. With ``correct_geometry=False`` only the
    photometric normalisation and the resize run (for pages that are already clean renders).
    With ``debug=True`` returns ``(array, PageSteps)`` holding every intermediate image.
    ``sheet`` is :func:`cut_out_sheet` of ``image`` and ``skew_deg`` :func:`estimate_skew` of the
    sheet, where the caller has them already (the training renderer knows both of a clean render).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"prepare_page expects uint8 RGB (H, W, 3), got {image.dtype} {image.shape}")
    steps = PageSteps()
    page = limit_resolution(image)
    steps.images["input"] = page
    if correct_geometry:
        page, steps.paper_corners = sheet if sheet is not None else cut_out_sheet(image)
        steps.images["paper"] = page
        steps.skew_deg = estimate_skew(page) if skew_deg is None else float(skew_deg)
        page = rotate_page(page, steps.skew_deg)
        steps.images["deskewed"] = page
        grid, plot = find_grid_box(page), find_plot_area(page)
        box = _crop_box(grid, plot)
        if plot is not None and box == plot:
            # The plotted area holds the figure's axis labels too; its grid, found at the crop's
            # scale (the lines were too short a part of the whole sheet), is what training pages show.
            inner = find_grid_box(page[plot[0]:plot[1], plot[2]:plot[3]])
            if inner is not None:
                box = (plot[0] + inner[0], plot[0] + inner[1], plot[2] + inner[2], plot[2] + inner[3])
        if box is not None:
            top, bottom, left, right = box
            page = page[top:bottom, left:right]
            steps.grid_box = box
        steps.images["grid"] = page
    page = normalise_paper(page)
    steps.images["normalised"] = page
    model_input = resize_to_model(page, height, width)
    if debug:
        steps.images["model_input"] = _unit_to_uint8(model_input.transpose(1, 2, 0))
        return model_input, steps
    return model_input
