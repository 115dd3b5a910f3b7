"""Attention maps of VizECGNet, reduced to what a reader can look at.

The model returns per-head weights ``(B, heads, Lq, Lk)`` for ``cmam_signal`` (signal queries,
image keys), ``cmam_image`` (the image stream's deployed pass: image queries, image keys under the
missing-modality rule), ``cmam_image_fused`` (its cross-modal pass, signal keys; only with both
inputs), ``smam_signal``, ``smam_image`` and ``smam_image_fused``.
Signal tokens are lead-major over a ``(12, T')`` grid, image tokens row-major over ``(H', W')``.
A map is reduced to the attention each *key* token receives, averaged over queries (and over
heads unless one is chosen), then laid out on the key grid: over the image for keys from the
image stream, over leads x time for keys from the signal stream.
"""
from __future__ import annotations

import numpy as np
import torch

MODULES = {
    "CMAM signal<-image": ("cmam_signal", "image"),
    "CMAM image (deployed, image-only)": ("cmam_image", "image"),
    "CMAM image<-signal (training pass)": ("cmam_image_fused", "signal"),
    "SMAM signal": ("smam_signal", "signal"),
    "SMAM image": ("smam_image", "image"),
}


@torch.no_grad()
def attention_maps(model, signal: torch.Tensor | None, image: torch.Tensor | None) -> dict:
    """Run ``model`` once (eval mode) on one record; return outputs with ``attention`` and ``token_grid``."""
    model.eval()
    batch = {}
    if signal is not None:
        batch["signal"] = signal[None] if signal.ndim == 2 else signal
    if image is not None:
        batch["image"] = image[None] if image.ndim == 3 else image
    return model(**batch, return_attention=True)


def key_attention(outputs: dict, module: str, head: int | None = None) -> tuple[np.ndarray, str] | None:
    """Attention received per key token on its grid (``(12, T')`` or ``(H', W')``) and the stream
    the keys came from, or None when the module did not run (ablated, or its context was missing)."""
    name, key_stream = MODULES[module]
    weights = outputs.get("attention", {}).get(name)
    if weights is None:
        return None
    w = weights[0].float()                      # (heads, Lq, Lk)
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


def plot_attention(outputs: dict, image: np.ndarray | None, module: str, head: int | None = None, ax=None,
                   title: str = ""):
    """Heatmap over the page (image keys) or over leads x time (signal keys)."""
    import matplotlib.pyplot as plt

    from vizecg.contract import LEADS

    found = key_attention(outputs, module, head)
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.5))
    if found is None:
        ax.text(0.5, 0.5, f"{module}: not in this model", ha="center", va="center")
        ax.axis("off")
        return ax
    grid, key_stream = found
    if key_stream == "signal":
        ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_yticks(range(len(LEADS)), LEADS, fontsize=7)
        ax.set_xlabel("time (token)")
    elif image is not None:
        ax.imshow(image)
        ax.imshow(upsample_to(grid, *image.shape[:2]), cmap="jet", alpha=0.45)
        ax.axis("off")
    else:
        ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_title(title or module)
    return ax
