"""The committed shipped model reads ECG pages: full-size paper-look pages through the deployed path.

Pages are drawn at ecg_plot's natural size, saved as PNG and read back through
:func:`vizecg.predict.predict_files` (page check, grid crop, normalisation, resize), exactly as
a user's files are. Sinus tachycardia against sinus bradycardia is the clearest image feature;
a shipped model that cannot rank those, or a page preparation that broke its input, fails here.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from vizecg.contract import LABELS
from vizecg.data.preprocess import preprocess_batch
from vizecg.data.synthetic import generate
from vizecg.predict import load_classifier, predict_files
from vizecg.render import render_ecg
from vizecg.shipped_model import SHIPPED_MODEL_DIR

pytestmark = pytest.mark.skipif(not (SHIPPED_MODEL_DIR / "model.json").is_file(), reason="no shipped model committed")


def test_shipped_model_ranks_tachycardia_above_bradycardia_on_full_size_pages(tmp_path) -> None:
    raw, labels = generate(24, seed=21, prevalence={"SB": 0.5, "ST": 0.5, "1dAVb": 0.0, "RBBB": 0.0, "LBBB": 0.0,
                                                    "AF": 0.0}, label_noise=0.0)
    signals, _ = preprocess_batch(raw, 400)
    files = []
    for i, signal in enumerate(signals):
        path = tmp_path / f"page_{i:02d}.png"
        Image.fromarray(render_ecg(signal)).save(path)
        files.append(path)
    results = predict_files(files, load_classifier(None, device="cpu"), progress=False)
    assert all(r.error is None for r in results), [r.error for r in results if r.error]
    st, sb = LABELS.index("ST"), LABELS.index("SB")
    keep = labels[:, st] + labels[:, sb] == 1
    p_st = np.array([r.probabilities["ST"] for r in results])
    assert roc_auc_score(labels[keep, st], p_st[keep]) > 0.9


def test_weights_provenance_names_the_shipped_run_and_commit(tmp_path) -> None:
    """A benchmark records which weights it measured: the shipped folder's run and commit, whether it is given
    the folder or a file in it; a study checkpoint's folder has none."""
    from vizecg.shipped_model import read_shipped_meta, weights_provenance

    meta = read_shipped_meta(SHIPPED_MODEL_DIR)
    expected = {"run": meta["run"], "git_commit": meta["git_commit"]}
    assert expected["run"] and expected["git_commit"]
    assert weights_provenance(SHIPPED_MODEL_DIR) == expected
    assert weights_provenance(SHIPPED_MODEL_DIR / "model.safetensors") == expected
    (tmp_path / "best.pt").write_bytes(b"")
    assert weights_provenance(tmp_path / "best.pt") is None
