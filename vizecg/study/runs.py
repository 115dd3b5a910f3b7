"""Train one run of the study and score it, from the resolved parameters alone.

A *run* is a registered model plus options (``params.yaml: runs``). ``train_run`` builds its
datasets and model, trains it with :func:`vizecg.training.engine.fit` into
``<work_dir>/models/<run>/`` (resuming an interrupted run), then stores the predicted
probabilities of every inference path the run is scored with, so that the evaluation and
ablation notebooks read predictions instead of re-running models.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vizecg.contract import LABELS
from vizecg.data.dataset import ECGDataset
from vizecg.study.config import run_spec

#: inputs each kind of model trains on; multimodal models are selected on image-only inference
TRAIN_INPUTS = {"signal": ("signal",), "image": ("image",), "multimodal": ("signal", "image")}


def prepared_file(work_dir: str | Path) -> Path:
    return Path(work_dir) / "prepared" / "dataset.h5"


def run_dir(work_dir: str | Path, run: str) -> Path:
    return Path(work_dir) / "models" / run


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def image_renderer(params: dict, *, train: bool, seed: int | None = None):
    """The renderer a dataset draws its images with: randomised styles and print/photo
    artifacts for training, the clean paper look (ecg_plot 0.2.8 page) for evaluation."""
    from vizecg.render import TrainingImageRenderer

    inp = params["input"]
    seed = params["train"]["seed"] if seed is None else seed
    if train:
        severity = tuple(inp["train_artifact_severity"])
        return TrainingImageRenderer(inp["image_height"], inp["image_width"],
                                     randomize_style=inp["train_style"] == "random",
                                     artifact_severity=severity, seed=seed)
    return TrainingImageRenderer(inp["image_height"], inp["image_width"], randomize_style=False,
                                 artifact_severity=0.0, seed=seed)


def make_dataset(params: dict, work_dir: str | Path, split: str, *, train: bool, with_image: bool) -> ECGDataset:
    inp = params["input"]
    return ECGDataset(prepared_file(work_dir), split, decimate=inp["decimate"],
                      image_renderer=image_renderer(params, train=train) if with_image else None,
                      gain_augment=tuple(inp["gain_augment"]) if train and inp.get("gain_augment") else None,
                      seed=params["train"]["seed"])


def build_run_model(params: dict, run: str):
    """(model, loss_fn, spec) for ``run`` with the profile's options."""
    from vizecg.models import create_loss, create_model

    spec = run_spec(params, run)
    torch.manual_seed(params["train"]["seed"])
    model = create_model(spec["model"], num_classes=len(LABELS), **spec["model_options"])
    loss_fn = create_loss(model, **spec["loss_options"])
    return model, loss_fn, spec


def _run_fingerprint(params: dict, spec: dict) -> str:
    keys = ("data", "input", "train")
    return json.dumps({"spec": spec, **{k: params[k] for k in keys}}, sort_keys=True, default=str)


def train_run(params: dict, run: str, work_dir: str | Path, *, progress: bool = True):
    """Train ``run`` (resuming or skipping finished work) and return the engine's FitResult.

    A checkpoint left by different parameters is not resumed: the folder is cleared,
    since continuing it would mix two experiments.
    """
    from vizecg.training.engine import fit

    model, loss_fn, spec = build_run_model(params, run)
    out = run_dir(work_dir, run)
    fingerprint = _run_fingerprint(params, spec)
    stamp = out / "run_params.json"
    if out.exists() and (not stamp.exists() or stamp.read_text() != fingerprint):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint)

    inputs = TRAIN_INPUTS[model.input_kind]
    with_image = "image" in inputs
    train_set = make_dataset(params, work_dir, "train", train=True, with_image=with_image)
    val_set = make_dataset(params, work_dir, "val", train=False, with_image=with_image)
    tr = params["train"]
    meta = {"model_name": spec["model"], "model_options": spec["model_options"], "labels": LABELS,
            "run": run, "input": {**params["input"], "render_style": "paper"}, "params": params}
    return fit(model, loss_fn, train_set, val_set, out_dir=out, epochs=tr["epochs"],
               batch_size=tr["batch_size"], lr=tr["lr"], lr_min=tr["lr_min"],
               weight_decay=tr.get("weight_decay", 0.0), inputs=inputs,
               val_inputs=("image",) if model.input_kind == "multimodal" else inputs,
               num_workers=tr.get("num_workers", 0), device=resolve_device(tr.get("device", "auto")),
               seed=tr["seed"], checkpoint_meta=meta, progress=progress)
