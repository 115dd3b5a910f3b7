"""Attention plots for notebook 7 (the attention explorer).

The maps themselves (what each module attends to, reduced to a grid a reader can look at)
are computed by :mod:`vizecg.explain`, which ``predict --explain`` uses too.
"""
from __future__ import annotations

import numpy as np

from vizecg.explain import MODULES, attention_maps, key_attention, upsample_to

__all__ = ["MODULES", "attention_maps", "key_attention", "plot_attention", "upsample_to"]


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
