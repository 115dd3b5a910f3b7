"""benchmarks/style_breakdown.py: per-group AUROC only where a group can say something."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vizecg.contract import LABELS


@pytest.fixture
def breakdown(benchmark_script):
    return benchmark_script("style_breakdown")


def test_group_auroc_is_null_where_a_class_has_too_few_positives_or_negatives(breakdown) -> None:
    rng = np.random.default_rng(0)
    labels = np.zeros((100, len(LABELS)), np.float32)
    labels[:30, 0] = 1  # 30 positives of the first class
    labels[:5, 1] = 1  # 5 of the second
    labels[:, 2] = 1  # no negatives of the third
    probs = rng.random((100, len(LABELS)))
    group = breakdown.group_auroc(probs, labels, min_positives=10)
    assert group["n"] == 100
    assert group[LABELS[0]] == {"positives": 30, "auroc": pytest.approx(roc_auc_score(labels[:, 0], probs[:, 0]))}
    assert group[LABELS[1]] == {"positives": 5, "auroc": None}
    assert group[LABELS[2]] == {"positives": 100, "auroc": None}


def test_every_attribute_the_style_sampler_varies_can_be_grouped_by(breakdown) -> None:
    from vizecg.render.training import sample_style

    styles = [sample_style(np.random.default_rng(seed), 64, 178) for seed in range(200)]
    for attribute, value_of in breakdown.STYLE_ATTRIBUTES.items():
        assert len({value_of(style) for style in styles}) > 1, attribute
