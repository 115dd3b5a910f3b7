"""Where VizECGNet looks: its attention maps reduced to what a reader can see on the page.

The model returns per-head weights ``(B, heads, Lq, Lk)`` for ``cmam_signal`` (signal queries,
image keys), ``cmam_image`` (the image stream's deployed pass: image queries, image keys under the
missing-modality rule), ``cmam_image_fused`` (its cross-modal pass, signal keys; only with both
inputs), ``smam_signal``, ``smam_image`` and ``smam_image_fused``.
Signal tokens are lead-major over a ``(12, T')`` grid, image tokens row-major over ``(H', W')``.
A map is reduced to the attention each *key* token receives, averaged over queries (and over
heads unless one is chosen), then laid out on the key grid: over the image for keys from the
image stream, over leads x time for keys from the signal stream.

``python -m vizecg.predict --explain DIR`` draws the image-path maps over each page
(:func:`write_explanation`); notebook 7 explores all of them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

#: reader-facing name -> (attention key in the model's outputs, stream its keys come from)
MODULES = {
    "CMAM signal<-image": ("cmam_signal", "image"),
    "CMAM image (deployed, image-only)": ("cmam_image", "image"),
    "CMAM image<-signal (training pass)": ("cmam_image_fused", "signal"),
    "SMAM signal": ("smam_signal", "signal"),
    "SMAM image": ("smam_image", "image"),
}
#: the maps image-only inference computes (what predict can show)
IMAGE_PATH_MODULES = ("CMAM image (deployed, image-only)", "SMAM image")


@torch.no_grad()
def attention_maps(model, signal: torch.Tensor | None, image: torch.Tensor | None) -> dict:
    """Run ``model`` once (eval mode) on one record or a batch; return outputs with ``attention``
    and ``token_grid``."""
    model.eval()
    batch = {}
    if signal is not None:
        batch["signal"] = signal[None] if signal.ndim == 2 else signal
    if image is not None:
        batch["image"] = image[None] if image.ndim == 3 else image
    return model(**batch, return_attention=True)


def key_attention(outputs: dict, module: str, head: int | None = None,
                  item: int = 0) -> tuple[np.ndarray, str] | None:
    """Attention received per key token of batch item ``item`` on its grid (``(12, T')`` or
    ``(H', W')``) and the stream the keys came from, or None when the module did not run
    (ablated, or its context was missing)."""
    name, key_stream = MODULES[module]
    weights = outputs.get("attention", {}).get(name)
    if weights is None:
        return None
    w = weights[item].float()                   # (heads, Lq, Lk)
    w = w.mean(0) if head is None else w[head]  # (Lq, Lk)
    received = w.mean(0).cpu().numpy()          # (Lk,)
    # With one modality absent, CMAM follows the image-only rule and attends to its own stream.
    if name.startswith("cmam") and not name.endswith("_fused"):
        context = outputs.get("cmam_context", {}).get(name.split("_")[1]) or key_stream
    else:
        context = key_stream
    rows, cols = outputs["token_grid"][context]
    return received.reshape(rows, cols), context


def upsample_to(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a token grid to the image size, for overlays."""
    import cv2

    return cv2.resize(grid.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def image_path_maps(outputs: dict, item: int = 0) -> dict[str, np.ndarray]:
    """The image-key maps of batch item ``item`` that ran (CMAM on the page's own tokens, SMAM)."""
    maps = {}
    for module in IMAGE_PATH_MODULES:
        found = key_attention(outputs, module, item=item)
        if found is not None and found[1] == "image":
            maps[module] = found[0]
    return maps


def write_explanation(path: str | Path, page: np.ndarray, maps: dict[str, np.ndarray],
                      probabilities: dict[str, float], positive: list[str], title: str) -> Path:
    """A PNG at ``path``: the page as the model saw it (float ``(3, H, W)`` in [0, 1]), then each
    map over it, with the probabilities and positive labels in the title."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    image = np.clip(page.transpose(1, 2, 0), 0.0, 1.0)
    height, width = image.shape[:2]
    rows = 1 + len(maps)
    fig, axes = plt.subplots(rows, 1, figsize=(12, 12 * height / width * rows + 0.9 * rows), squeeze=False)
    scores = "  ".join(f"{label} {p:.2f}" for label, p in probabilities.items())
    axes[0, 0].imshow(image)
    axes[0, 0].set_title(f"{title}\n{scores}   positive: {', '.join(positive) or 'none'}", fontsize=9)
    for ax, (module, grid) in zip(axes[1:, 0], maps.items()):
        ax.imshow(image)
        ax.imshow(upsample_to(grid / max(float(grid.max()), 1e-12), height, width), cmap="jet", alpha=0.45,
                  vmin=0.0, vmax=1.0)
        ax.set_title(f"{module}: attention each page region receives (mean over heads and queries)", fontsize=9)
    for ax in axes[:, 0]:
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
