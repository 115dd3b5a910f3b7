"""Print, scan and phone-photo artifacts for rendered ECG pages.

The study's images at test time are ecg_plot pages *and phone photos of
printouts* (see the real prints beside the project: tinted and faded paper,
creases, pages shot at an angle on a desk, shadows of the phone, soft focus,
sensor noise, JPEG). A model that only saw clean pages reads the grid and
trace through none of that, so training draws them here.

Each artifact has a severity in [0, 1] (0: off, 1: the worst we still expect a
reader to cope with); :class:`ArtifactConfig` holds one per artifact and
:func:`apply_artifacts` applies them in the physical order of a photo of a
printout: paper (tint, creases) -> camera pose (rotation, perspective,
crop/padding) -> light -> optics (blur) -> sensor (noise) -> file (JPEG).

Sizes scale with the image (a fraction of its diagonal), so a severity looks
the same at 128 x 357 and at 763 x 2128. Randomness comes from the caller's
``numpy.random.Generator``; every artifact draws from its own child stream, so
the result is a deterministic function of (image, config, seed), and raising one
artifact's severity does not reshuffle the others (a severity ladder shows the
same page getting worse).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any, Mapping

import cv2
import numpy as np

ARTIFACTS: tuple[str, ...] = ("tint", "crease", "rotation", "perspective", "crop", "lighting", "blur", "noise", "jpeg")

# Paper under different light and age, RGB: cream, grey, cold white, yellowed, warm indoor.
_PAPER_TINTS = np.array([[250, 242, 222], [226, 226, 220], [232, 238, 248], [242, 228, 190], [248, 228, 205]], np.float32)
# What lies around a photographed page: dark desk, wood, white desk, black, grey fabric.
_BACKGROUNDS = np.array([[60, 60, 62], [120, 85, 55], [235, 235, 230], [15, 15, 15], [150, 150, 155]], np.float32)


@dataclass(frozen=True)
class ArtifactConfig:
    """Severity in [0, 1] of each artifact (0 = off)."""

    tint: float = 0.0
    crease: float = 0.0
    rotation: float = 0.0
    perspective: float = 0.0
    crop: float = 0.0
    lighting: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    jpeg: float = 0.0

    def __post_init__(self) -> None:
        for name in ARTIFACTS:
            value = float(getattr(self, name))
            if not (0.0 <= value <= 1.0) or math.isnan(value):
                raise ValueError(f"ArtifactConfig.{name} severity must be in [0, 1], got {value}")
            object.__setattr__(self, name, value)

    @classmethod
    def uniform(cls, severity: float) -> "ArtifactConfig":
        """Every artifact at ``severity``."""
        return cls(**{name: severity for name in ARTIFACTS})

    @classmethod
    def photo(cls, severity: float) -> "ArtifactConfig":
        """A phone photo of a printout: pose, light and JPEG dominate."""
        weights = {"tint": 0.8, "crease": 0.5, "rotation": 1.0, "perspective": 1.0, "crop": 0.8,
                   "lighting": 1.0, "blur": 0.7, "noise": 0.7, "jpeg": 1.0}
        return cls(**{name: min(1.0, severity * w) for name, w in weights.items()})

    @classmethod
    def scan(cls, severity: float) -> "ArtifactConfig":
        """A flatbed scan of a printout: little pose or light, some tint, creases and blur."""
        weights = {"tint": 0.6, "crease": 0.7, "rotation": 0.3, "perspective": 0.0, "crop": 0.4,
                   "lighting": 0.2, "blur": 0.5, "noise": 0.4, "jpeg": 0.6}
        return cls(**{name: min(1.0, severity * w) for name, w in weights.items()})

    @classmethod
    def random(cls, rng: np.random.Generator, severity: float, keep_probability: float = 0.75) -> "ArtifactConfig":
        """Each artifact kept with ``keep_probability`` at severity * U(0, 1): varied, never worse than ``severity``."""
        keep = rng.random(len(ARTIFACTS)) < keep_probability
        amount = rng.random(len(ARTIFACTS))
        return cls(**{name: float(severity * amount[i] * keep[i]) for i, name in enumerate(ARTIFACTS)})

    @classmethod
    def from_value(cls, value: "ArtifactConfig | Mapping[str, float] | float | None") -> "ArtifactConfig":
        """A config from itself, a dict of severities, one severity for all (float), or None (none)."""
        if value is None:
            return cls()
        if isinstance(value, ArtifactConfig):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - set(ARTIFACTS)
            if unknown:
                raise ValueError(f"unknown artifact(s) {sorted(unknown)}; known: {ARTIFACTS}")
            return cls(**dict(value))
        return cls.uniform(float(value))

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    @property
    def active(self) -> bool:
        return any(getattr(self, name) > 0 for name in ARTIFACTS)


@functools.lru_cache(maxsize=16)
def _pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Read-only float32 pixel coordinates (x, y) of an h x w image, cached per size."""
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    grid_x.setflags(write=False)
    grid_y.setflags(write=False)
    return grid_x, grid_y


def _diag(img: np.ndarray) -> float:
    return math.hypot(img.shape[0], img.shape[1])


def _tint(img: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    """Paper colour and faded ink: white becomes the paper tint, contrast drops."""
    paper = _PAPER_TINTS[rng.integers(len(_PAPER_TINTS))]
    strength, fade = rng.uniform(0.5, 1.0), rng.uniform(0.0, 1.0)
    if s <= 0:
        return img
    f = img.astype(np.float32)
    f = 255.0 - (255.0 - f) * (1.0 - 0.3 * s * fade)  # faded toner / thermal print
    f *= (1.0 - s * strength) + s * strength * paper / 255.0
    return f


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: tuple[int, int]) -> np.ndarray:
    """A smooth random field in about [-1, 1]: a coarse random grid upsampled with cubic interpolation."""
    coarse = rng.uniform(-1.0, 1.0, size=cells).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def _crease(img: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    """Folds (a sharp light/dark ridge along a line) and wrinkles (a smooth displacement of the paper)."""
    h, w = img.shape[:2]
    n_folds = int(rng.integers(1, 4))
    lines = rng.uniform(0, 1, size=(3, 3))  # per fold: point x, point y, angle
    wrinkle_x = _smooth_field(rng, h, w, (4, 7))
    wrinkle_y = _smooth_field(rng, h, w, (4, 7))
    if s <= 0:
        return img
    f = img.astype(np.float32) if img.dtype != np.float32 else img
    diag = _diag(img)
    amp = np.float32(0.004 * diag * s)
    grid_x, grid_y = _pixel_grid(h, w)
    f = cv2.remap(f, grid_x + amp * wrinkle_x, grid_y + amp * wrinkle_y, cv2.INTER_LINEAR,
                  borderMode=cv2.BORDER_REFLECT)
    shade = np.ones((h, w), np.float32)
    width = max(0.6, 0.006 * diag)
    for px, py, angle in lines[:n_folds]:
        theta = angle * math.pi
        nx, ny = np.float32(math.cos(theta) / width), np.float32(math.sin(theta) / width)
        z = (grid_x - np.float32(px * w)) * nx + (grid_y - np.float32(py * h)) * ny  # distance in fold widths
        near = np.abs(z) < 12.0  # the fold's shading vanishes beyond a few widths
        zn = z[near]
        # derivative of a Gaussian (one side lit, one in shade) and a dark groove
        shade[near] *= 1.0 + np.float32(0.25 * s) * zn * np.exp(-0.5 * zn * zn) \
            - np.float32(0.08 * s) * np.exp(-0.5 * (zn / 3.0) ** 2)
    return f * shade[..., None]


def _pose(img: np.ndarray, cfg: ArtifactConfig, rng: np.random.Generator) -> np.ndarray:
    """Rotation, perspective and crop/padding as one homography; the desk shows where the page ends."""
    h, w = img.shape[:2]
    angle_u, zoom_u, shift_u = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1, size=2)
    corner_u = rng.uniform(-1, 1, size=(4, 2))
    background = _BACKGROUNDS[rng.integers(len(_BACKGROUNDS))] + rng.uniform(-10, 10, size=3)
    if cfg.rotation <= 0 and cfg.perspective <= 0 and cfg.crop <= 0:
        return img
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    centre = np.array([w / 2, h / 2], np.float32)
    theta = math.radians(6.0 * cfg.rotation * angle_u)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]], np.float32)
    zoom = 1.0 + 0.15 * cfg.crop * zoom_u  # > 1 crops into the page, < 1 shows the desk around it
    dst = (src - centre) @ rot.T * zoom + centre
    dst += 0.07 * cfg.perspective * corner_u * np.array([w, h], np.float32)
    dst += 0.04 * cfg.crop * shift_u * np.array([w, h], np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    f = img.astype(np.float32) if img.dtype != np.float32 else img
    return cv2.warpPerspective(f, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=tuple(float(c) for c in np.clip(background, 0, 255)))


def _lighting(img: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    """Uneven light: a gradient, a vignette, a soft-edged shadow (of the phone or a hand) and a colour cast."""
    h, w = img.shape[:2]
    gx, gy, gain = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.3, 1.0)
    shadow_angle, shadow_offset, shadow_depth = rng.uniform(0, 2 * math.pi), rng.uniform(0.2, 0.8), rng.uniform(0.3, 1.0)
    has_shadow = rng.random() < 0.6
    cast = rng.uniform(-1, 1, size=3)
    if s <= 0:
        return img
    # The light field is smooth: compute it on a coarse grid and upsample.
    ch, cw = max(2, h // 4), max(2, w // 4)
    v, u = np.meshgrid(np.linspace(-0.5, 0.5, ch, dtype=np.float32), np.linspace(-0.5, 0.5, cw, dtype=np.float32),
                       indexing="ij")
    field = 1.0 + 0.35 * s * gain * (gx * u + gy * v)
    field -= 0.35 * s * gain * (u * u + v * v)  # vignette
    if has_shadow:
        d = (u * math.cos(shadow_angle) + v * math.sin(shadow_angle)) - (shadow_offset - 0.5)
        soft = 0.5 * (1.0 + np.tanh(d / 0.06))
        field *= 1.0 - 0.45 * s * shadow_depth * soft
    field = cv2.resize(field.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    light = field[..., None] * (1.0 + 0.08 * s * cast).astype(np.float32)
    f = img.astype(np.float32) if img.dtype != np.float32 else img
    return f * light


def _blur(img: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    """Defocus (Gaussian) and, half the time, a little camera shake (motion blur)."""
    sigma_u, motion, motion_angle = rng.uniform(0.3, 1.0), rng.random() < 0.5, rng.uniform(0, math.pi)
    if s <= 0:
        return img
    sigma = 0.002 * _diag(img) * s * sigma_u
    f = img.astype(np.float32) if img.dtype != np.float32 else img
    if sigma > 0.15:
        f = cv2.GaussianBlur(f, (0, 0), sigmaX=sigma)
    length = int(round(0.004 * _diag(img) * s))
    if motion and length >= 2:
        kernel = np.zeros((length, length), np.float32)
        c = (length - 1) / 2
        dx, dy = math.cos(motion_angle) * c, math.sin(motion_angle) * c
        cv2.line(kernel, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1)
        f = cv2.filter2D(f, -1, kernel / max(kernel.sum(), 1e-6))
    return f


_NOISE_TILE = 1024


@functools.lru_cache(maxsize=1)
def _noise_tile() -> np.ndarray:
    """A fixed 1024 x 1024 field of unit Gaussian noise (luma + 3 chroma channels at half resolution).

    Drawing fresh normals for every training image costs more than all other
    artifacts together; a random window into one fixed field (random offset and
    flips per image) is just as random for a network and costs nothing. The field
    is a constant (fixed seed), identical in every process.
    """
    rng = np.random.default_rng(20240531)
    luma = rng.standard_normal((_NOISE_TILE, _NOISE_TILE, 1), dtype=np.float32)
    chroma = rng.standard_normal((_NOISE_TILE // 2, _NOISE_TILE // 2, 3), dtype=np.float32)
    chroma = cv2.resize(chroma, (_NOISE_TILE, _NOISE_TILE), interpolation=cv2.INTER_LINEAR)  # blotchier
    tile = np.concatenate([luma, chroma * np.float32(0.35)], axis=2)
    tile.setflags(write=False)
    return tile


def _noise(img: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise: luminance noise plus weaker, blotchier per-channel (chroma) noise, in 0-255 units."""
    seed = int(rng.integers(2**31))
    level = rng.uniform(0.5, 1.0)
    if s <= 0:
        return img
    h, w = img.shape[:2]
    sigma = np.float32(10.0 * s * level)
    f = img.astype(np.float32) if img.dtype != np.float32 else img.copy()
    window_rng = np.random.default_rng(seed)
    if h <= _NOISE_TILE and w <= _NOISE_TILE:
        y0, x0 = (int(v) for v in window_rng.integers(0, [_NOISE_TILE - h + 1, _NOISE_TILE - w + 1]))
        flip_y, flip_x = (1 if v else -1 for v in window_rng.random(2) < 0.5)
        window = _noise_tile()[y0:y0 + h, x0:x0 + w][::flip_y, ::flip_x]
        f += window[..., :1] * sigma
        f += window[..., 1:] * sigma
        return f
    f += window_rng.standard_normal((h, w, 1), dtype=np.float32) * sigma
    chroma = window_rng.standard_normal((max(1, h // 2), max(1, w // 2), 3), dtype=np.float32)
    f += cv2.resize(chroma, (w, h), interpolation=cv2.INTER_LINEAR) * (np.float32(0.35) * sigma)
    return f


def _jpeg(img: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    """JPEG round trip: quality 95 at severity 0+ down to about 15 at 1."""
    q_u = rng.uniform(0.6, 1.0)
    u8 = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if s <= 0:
        return u8
    quality = int(round(95 - 80 * s * q_u))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(u8, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 image
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def apply_artifacts(image: np.ndarray, config: ArtifactConfig | Mapping[str, float] | float | None,
                    rng: np.random.Generator | int) -> np.ndarray:
    """Apply print/scan/photo artifacts to an RGB uint8 ``(H, W, 3)`` page; returns uint8 of the same shape.

    ``config``: an :class:`ArtifactConfig`, a dict of severities, one severity for
    every artifact, or None. ``rng``: a Generator or an int seed.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"apply_artifacts needs an RGB uint8 image (H, W, 3), got {img.dtype} {img.shape}")
    cfg = ArtifactConfig.from_value(config)
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(int(rng))
    streams = generator.spawn(6)
    if not cfg.active:
        return img.copy()
    out: np.ndarray = img
    out = _tint(out, cfg.tint, streams[0])
    out = _crease(out, cfg.crease, streams[1])
    out = _pose(out, cfg, streams[2])
    out = _lighting(out, cfg.lighting, streams[3])
    out = _blur(out, cfg.blur, streams[4])
    noise_and_file = streams[5].spawn(2)
    out = _noise(out, cfg.noise, noise_and_file[0])
    return _jpeg(out, cfg.jpeg, noise_and_file[1])


def _surface(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """What a sheet lies on when photographed: one of the desk colours with texture (wood grain,
    fabric, or smooth), lit unevenly. Float32 ``(h, w, 3)`` in 0-255."""
    colour = _BACKGROUNDS[rng.integers(len(_BACKGROUNDS))] + rng.uniform(-12, 12, size=3)
    kind = rng.integers(3)
    texture = np.zeros((h, w), np.float32)
    if kind == 0:  # wood: stretched smooth noise along one axis
        texture = _smooth_field(rng, h, w, (int(rng.integers(20, 60)), 2)) * 18.0
    elif kind == 1:  # fabric / stone: fine grain
        texture = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 1.2) * 10.0
    return np.clip(colour[None, None, :] + texture[..., None], 0, 255).astype(np.float32)


def on_a4_sheet(page: np.ndarray, margin: float = 0.05) -> np.ndarray:
    """``page`` printed on an A4 landscape sheet: white margins (``margin`` of the sheet's width at
    least) that bring it to the sheet's 1.414 aspect ratio, the plot centred."""
    h, w = page.shape[:2]
    sheet_w = int(round(w / (1.0 - 2 * margin)))
    sheet_h = max(int(round(sheet_w / math.sqrt(2.0))), int(round(h + 2 * margin * sheet_w)))
    sheet_w = max(sheet_w, int(round(sheet_h * math.sqrt(2.0))))
    sheet = np.full((sheet_h, sheet_w, 3), 255, np.uint8)
    top, left = (sheet_h - h) // 2, (sheet_w - w) // 2
    sheet[top:top + h, left:left + w] = page
    return sheet


def photograph_sheet(page: np.ndarray, rng: np.random.Generator | int, severity: float = 0.5, *,
                     fill: tuple[float, float] = (0.55, 0.9), return_corners: bool = False):
    """A phone photo of a whole printed ``page`` lying on a surface (uint8 RGB in, uint8 RGB out).

    Unlike :func:`apply_artifacts` (whose pose crops or pads the page by at most 15 %), the
    sheet here covers only ``fill`` (a range, drawn per photo) of the frame's width, on a desk,
    wood or fabric, tilted by up to 10 degrees with perspective, then photographed: uneven
    light and shadow, defocus, sensor noise, JPEG, at ``severity``. The frame keeps the page's
    aspect ratio plus a margin. The page is first put on an A4 landscape sheet
    (:func:`on_a4_sheet`), as a printer does. This is the photo people take of a printout on a table.
    With ``return_corners=True`` returns ``(photo, corners)``: where the sheet's corners (float32
    ``(4, 2)``, x/y, top-left first, clockwise) lie in the photo, to measure a sheet finder by.
    """
    img = np.asarray(page)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"photograph_sheet needs an RGB uint8 image (H, W, 3), got {img.dtype} {img.shape}")
    if not 0.0 <= severity <= 1.0:
        raise ValueError(f"severity must be in [0, 1], got {severity}")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(int(rng))
    pose, paper, light, optics = generator.spawn(4)
    img = on_a4_sheet(img, paper.uniform(0.03, 0.08))
    h, w = img.shape[:2]
    frame_w = int(round(w / pose.uniform(*fill)))
    frame_h = int(round(frame_w * pose.uniform(0.62, 0.8)))  # a landscape phone frame
    frame_h = max(frame_h, int(h * 1.08))
    sheet = _tint(img, 0.6 * severity, paper)
    sheet = sheet.astype(np.float32) if sheet.dtype != np.float32 else sheet
    centre = np.array([frame_w / 2, frame_h / 2], np.float32) + pose.uniform(-0.06, 0.06, 2).astype(np.float32) * [frame_w, frame_h]
    theta = math.radians(pose.uniform(-10, 10))
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]], np.float32)
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    dst = (src - np.array([w / 2, h / 2], np.float32)) @ rot.T + centre
    dst += pose.uniform(-0.05, 0.05, size=(4, 2)).astype(np.float32) * np.array([w, h], np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    frame = _surface(pose, frame_h, frame_w)
    warped = cv2.warpPerspective(sheet, matrix, (frame_w, frame_h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    mask = cv2.warpPerspective(np.ones((h, w), np.float32), matrix, (frame_w, frame_h), flags=cv2.INTER_LINEAR)
    out = warped + frame * (1.0 - mask[..., None])
    out = _lighting(out, max(0.3, severity), light)
    blur_rng, noise_rng, jpeg_rng = optics.spawn(3)
    out = _blur(out, severity, blur_rng)
    out = _noise(out, severity, noise_rng)
    photo = _jpeg(out, max(0.2, severity), jpeg_rng)
    return (photo, dst.astype(np.float32)) if return_corners else photo
