"""Figures the notebooks share: 12-lead traces, label statistics, metric bars and curves."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from vizecg.contract import LABELS, LEADS, SAMPLE_RATE_HZ


def plot_12lead(signal: np.ndarray, *, title: str = "", fs: float = SAMPLE_RATE_HZ, axes=None, color="C0"):
    """Twelve stacked traces of one ``(T, 12)`` record in mV (an analysis view, not a print)."""
    if axes is None:
        _, axes = plt.subplots(12, 1, figsize=(10, 9), sharex=True)
    t = np.arange(signal.shape[0]) / fs
    for lead, ax in enumerate(axes):
        ax.plot(t, signal[:, lead], lw=0.7, color=color)
        ax.set_ylabel(LEADS[lead], rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    axes[-1].set_xlabel("time (s)")
    axes[0].set_title(title)
    return axes


def plot_side_by_side(left: np.ndarray, right: np.ndarray, titles: Sequence[str], fs=(SAMPLE_RATE_HZ, SAMPLE_RATE_HZ)):
    """Two records, lead by lead, in two columns."""
    fig, axes = plt.subplots(12, 2, figsize=(14, 10), sharex="col")
    plot_12lead(left, title=titles[0], fs=fs[0], axes=axes[:, 0])
    plot_12lead(right, title=titles[1], fs=fs[1], axes=axes[:, 1], color="C3")
    fig.tight_layout()
    return fig


def plot_metric_bars(frame, *, value: str, by: str = "model", hue: str = "class", ax=None, title: str = ""):
    """Grouped bars of ``value`` (e.g. per-class F1), one group per ``by``, one bar per ``hue``."""
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(12, 4))
    sns.barplot(data=frame, x=by, y=value, hue=hue, ax=ax, errorbar=None)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    return ax
