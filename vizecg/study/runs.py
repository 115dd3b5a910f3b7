"""Train one run of the study and score it, from the resolved parameters alone.

A *run* is a registered model plus options (``params.yaml: runs``). ``train_run`` builds its
datasets and model, trains it with :func:`vizecg.training.engine.fit` into
``<work_dir>/models/<run>/`` (resuming an interrupted run), then stores the predicted
probabilities of every inference path the run is scored with, so that the evaluation and
ablation notebooks read predictions instead of re-running models.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vizecg.contract import LABELS
from vizecg.data.dataset import ECGDataset
from vizecg.study.config import ConfigError, params_for_run, run_spec

#: inputs each kind of model trains on; multimodal models are selected on image-only inference
TRAIN_INPUTS = {"signal": ("signal",), "image": ("image",), "multimodal": ("signal", "image")}


def prepared_file(work_dir: str | Path) -> Path:
    return Path(work_dir) / "prepared" / "dataset.h5"


def run_dir(work_dir: str | Path, run: str) -> Path:
    return Path(work_dir) / "models" / run


def _rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


#: how validation pages are drawn (``input.validation_look``)
VALIDATION_LOOKS = ("clean", "routes")


def image_renderer(params: dict, *, train: bool, seed: int | None = None, split: str | None = None):
    """The renderer a dataset draws its images with: randomised styles and print/photo
    artifacts for training, the clean paper look (ecg_plot 0.2.8 page) for evaluation.

    ``input.validation_look: routes`` draws the ``"val"`` split as the three routes a file takes
    to predict instead (:class:`vizecg.render.training.RouteMixRenderer`, at
    ``input.validation_severity``), so that the checkpoint is selected, and the thresholds
    tuned, on the pages users send; the test split stays clean, scored per route elsewhere."""
    from vizecg.render.training import DEFAULT_SHARE_50MM_S, RouteMixRenderer, TrainingImageRenderer

    inp = params["input"]
    seed = params["train"]["seed"] if seed is None else seed
    # the deployed path (input.page_preparation: predict) applies to training and evaluation alike
    deployed = {"page_preparation": inp.get("page_preparation", "none"), "render_scale": inp.get("render_scale", 1.0)}
    look = inp.get("validation_look", "clean")
    if look not in VALIDATION_LOOKS:
        raise ValueError(f"input.validation_look must be one of {VALIDATION_LOOKS}, got {look!r}")
    if not train and split == "val" and look == "routes":
        if deployed["page_preparation"] != "predict":
            raise ValueError("input.validation_look: routes needs input.page_preparation: predict (only prepare_page "
                             "reads a photographed print back)")
        return RouteMixRenderer(inp["image_height"], inp["image_width"], severity=inp.get("validation_severity", 0.5),
                                seed=seed, render_scale=deployed["render_scale"])
    if train:
        severity = tuple(inp["train_artifact_severity"])
        curriculum = inp.get("curriculum")
        return TrainingImageRenderer(inp["image_height"], inp["image_width"],
                                     randomize_style=inp["train_style"] == "random",
                                     artifact_severity=severity, seed=seed,
                                     curriculum=None if curriculum is None else tuple(curriculum),
                                     sheet_photo_share=inp.get("sheet_photo_share", 0.0),
                                     clean_style=inp.get("clean_style", "fixed"),
                                     share_50mm_s=inp.get("share_50mm_s", DEFAULT_SHARE_50MM_S),
                                     paper_share=inp.get("paper_share", 0.0), **deployed)
    return TrainingImageRenderer(inp["image_height"], inp["image_width"], randomize_style=False,
                                 artifact_severity=0.0, seed=seed, **deployed)


def make_dataset(params: dict, work_dir: str | Path, split: str, *, train: bool, with_image: bool,
                 records_per_epoch: int | None = None, measurement_targets: bool = False,
                 stream_seed: int | None = None):
    """The dataset of ``split``: the prepared HDF5 file's records, or for training with
    ``data.train_stream`` set, the endless synthetic stream (``records_per_epoch`` and
    ``stream_seed`` override its own; ``measurement_targets`` adds each record's measurements, for
    :class:`~vizecg.models.losses.MeasurementLoss`)."""
    inp = params["input"]
    stream = params["data"].get("train_stream")
    if measurement_targets and not (split == "train" and stream):
        raise ValueError("measurement targets (loss.measurement_weight > 0) are measured on the training stream's "
                         "records; set data.train_stream")
    if split == "train" and stream:
        from vizecg.data.stream import SyntheticStreamDataset

        if params["data"]["source"] != "synthetic":
            raise ValueError("data.train_stream draws synthetic records; it needs data.source: synthetic")
        options = {k: v for k, v in params["data"].get("source_options", {}).items() if k not in ("n_records", "seed")}
        return SyntheticStreamDataset(
            records_per_epoch or stream["records_per_epoch"],
            stream_seed=stream["seed"] if stream_seed is None else int(stream_seed),
            holdout_seed=params["data"].get("source_options", {}).get("seed", 0), generator_options=options,
            decimate=inp["decimate"], image_renderer=image_renderer(params, train=train) if with_image else None,
            gain_augment=tuple(inp["gain_augment"]) if train and inp.get("gain_augment") else None,
            seed=params["train"]["seed"], measurement_targets=measurement_targets,
            short_exam_share=inp.get("short_exam_share", 0.0) if train else 0.0)
    if train and inp.get("short_exam_share", 0.0):
        raise ValueError("input.short_exam_share shortens the training stream's records; it needs data.train_stream")
    return ECGDataset(prepared_file(work_dir), split, decimate=inp["decimate"],
                      image_renderer=image_renderer(params, train=train, split=split) if with_image else None,
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


#: params that do not change the trained weights, left out of a run's fingerprint so that
#: changing them retrains nothing
NOT_IN_FINGERPRINT = {"data": ("real_data_dir",), "train": ("num_workers", "device")}


def _run_fingerprint(params: dict, spec: dict) -> str:
    def without(block: str, values: dict) -> dict:
        return {k: v for k, v in values.items() if k not in NOT_IN_FINGERPRINT.get(block, ())}

    spec = {**spec, "train": without("train", spec["train"])}
    blocks = {k: without(k, params[k]) for k in ("data", "input")}
    return json.dumps({"spec": spec, **blocks}, sort_keys=True, default=str)


#: train options that start a run from another run's weights: its whole model, or its page encoder
SOURCE_RUN_OPTIONS = ("warm_start", "image_encoder_from")


def run_fingerprint(params: dict, run: str, _chain: tuple[str, ...] = ()) -> str:
    """What identifies ``run``'s training: its spec and the profile's data and input blocks, and for a
    run started from another's weights (``train.warm_start``, ``train.image_encoder_from``), the
    source's fingerprint too, so that a run whose source was retrained with other parameters is
    retrained, not skipped as finished. A chain of sources that returns to a run it passed is a
    :class:`ConfigError`."""
    if run in _chain:
        raise ConfigError(f"train.warm_start / train.image_encoder_from run in a circle: "
                          f"{' -> '.join((*_chain, run))}")
    spec = run_spec(params, run)
    fingerprint = _run_fingerprint(params_for_run(params, run), spec)
    for option in SOURCE_RUN_OPTIONS:
        source = spec["train"].get(option)
        if source:
            fingerprint += f"\n{option.replace('_', ' ')}: " + run_fingerprint(params, source, (*_chain, run))
    return fingerprint


def shipped_warm_start_weights(run: str, source: str, spec: dict, model, shipped_dir: str | Path | None = None) -> dict:
    """Load the image path of the shipped model into ``model`` for ``run`` to continue from, where
    ``source``'s own checkpoint is not at hand (``train.warm_start_weights: shipped``: the shipped
    weights are committed, study checkpoints are not). The shipped weights must have been written
    from ``source`` with ``run``'s architecture and options, so they are ``source``'s selected
    weights less its signal stream, which keeps its fresh initialisation here and learns again
    from the signal (a difference from a warm start from ``best.pt``, recorded in the checkpoint)."""
    from vizecg.shipped_model import SHIPPED_MODEL_DIR, image_path_keys, load_shipped_model

    shipped_dir = SHIPPED_MODEL_DIR if shipped_dir is None else Path(shipped_dir)
    shipped, meta = load_shipped_model(shipped_dir)
    where = f"run '{run}': train.warm_start_weights: shipped ({shipped_dir})"
    if meta.get("run") != source:
        raise ConfigError(f"{where} holds the weights of run '{meta.get('run')}', not of train.warm_start "
                          f"'{source}'")
    if meta.get("model_name") != spec["model"] or meta.get("model_options") != spec["model_options"]:
        raise ConfigError(f"{where} is model {meta.get('model_name')!r} with options {meta.get('model_options')}, "
                          f"run '{run}' is {spec['model']!r} with {spec['model_options']}")
    state = shipped.state_dict()
    keys = image_path_keys(spec["model"], spec["model_options"], list(model.state_dict()))
    model.load_state_dict({key: state[key] for key in keys}, strict=False)
    # the source's own record travels with it: its history.csv is not at hand either
    return {"run": source, "epoch": (meta.get("source_checkpoint") or {}).get("epoch"),
            "weights": "shipped image path", "sha256": meta["weights"]["sha256"],
            "git_commit": meta.get("git_commit"), "training": meta.get("training")}


def warm_start_weights(work_dir: str | Path, run: str, source: str, model) -> dict:
    """Load ``source`` run's selected weights (``best.pt``) into ``model`` for ``run`` to continue
    training from (``train.warm_start``), and return where they came from for the checkpoint's meta.

    The source must be a finished run of the same architecture and options: its weights are
    loaded strictly, so a mismatch fails here, naming both runs, instead of training a half-loaded
    model."""
    from vizecg.training.checkpoint import CheckpointError, read_checkpoint

    path = _source_checkpoint(work_dir, run, "warm_start", source)
    payload = read_checkpoint(path)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"run '{run}': the weights of '{source}' ({path}) do not fit its model: "
                              f"{str(exc).splitlines()[0]}") from exc
    return _source_record(source, payload)


def _source_checkpoint(work_dir: str | Path, run: str, option: str, source: str) -> Path:
    """The selected weights (``best.pt``) of the run that ``run``'s ``train.<option>`` names, which must exist."""
    path = run_dir(work_dir, source) / "best.pt"
    if not path.exists():
        raise FileNotFoundError(f"run '{run}': train.{option} names run '{source}', but {path} does not exist; "
                                f"train '{source}' first")
    return path


def _source_record(source: str, checkpoint: dict) -> dict:
    """What a run started from another records of it: the run, its selected epoch and validation AUROC."""
    metrics = checkpoint.get("metrics") or {}
    return {"run": source, "epoch": int(checkpoint.get("epoch", 0)),
            "val_auroc": None if metrics.get("val_auroc") is None else float(metrics["val_auroc"])}


def page_encoder_runs(params: dict) -> list[str]:
    """The runs that ``train_runs`` start their page encoders from (``train.image_encoder_from``), in the
    order they are first named: not rows of a table themselves, they are trained before any run that
    reads them (the ``page_encoder`` stage of ``dvc.yaml``; notebook 3 with ``run = "all"``)."""
    sources: list[str] = []
    for run in params["train_runs"]:
        source = run_spec(params, run)["train"].get("image_encoder_from")
        if source and source not in sources:
            if source in params["train_runs"]:
                raise ConfigError(f"run '{run}': train.image_encoder_from names '{source}', which is in train_runs; "
                                  "a page encoder is trained before the runs that start from it, not among them")
            sources.append(source)
    return sources


def training_order(params: dict) -> list[str]:
    """Every run the study trains, each after the runs it starts from: the page encoders, then ``train_runs``."""
    return [*page_encoder_runs(params), *params["train_runs"]]


def image_encoder_weights(work_dir: str | Path, run: str, source: str, model) -> dict:
    """Start ``model``'s page encoder from the encoder of ``source`` run's selected weights
    (``train.image_encoder_from``), and return where it came from for the checkpoint's meta.

    Every 2D encoder of the study is one module (:class:`vizecg.models.resnet2d.ResNet2dFeatures`,
    ``image_encoder`` on the image ResNet18, VizECGNet and MHM), so a run that has learnt to read
    pages can hand that to a model of another kind: the rest of ``model`` (signal stream, attention,
    heads) keeps its fresh initialisation. Both encoders must have the same width and stem; a
    mismatch fails here, naming both runs, instead of training a half-loaded model."""
    from vizecg.models.resnet2d import ResNet2dFeatures
    from vizecg.training.checkpoint import CheckpointError, load_model

    target = getattr(model, "image_encoder", None)
    if not isinstance(target, ResNet2dFeatures):
        raise ConfigError(f"run '{run}': train.image_encoder_from needs a model with a 2D page encoder "
                          f"(resnet18, mhm, vizecgnet), not {type(model).__name__}")
    path = _source_checkpoint(work_dir, run, "image_encoder_from", source)
    trained, meta = load_model(path)
    encoder = getattr(trained, "image_encoder", None)
    if not isinstance(encoder, ResNet2dFeatures):
        raise ConfigError(f"run '{run}': train.image_encoder_from names run '{source}', whose model "
                          f"{meta.get('model_name')!r} has no 2D page encoder")
    try:
        target.load_state_dict(encoder.state_dict())
    except RuntimeError as exc:
        raise CheckpointError(f"run '{run}': the page encoder of '{source}' ({path}) does not fit its own: "
                              f"{str(exc).splitlines()[0]}") from exc
    return _source_record(source, meta)


def train_run(params: dict, run: str, work_dir: str | Path, *, progress: bool = True):
    """Train ``run`` (resuming or skipping finished work) and return the engine's FitResult.

    A checkpoint left by different parameters is not resumed: the folder is cleared,
    since continuing it would mix two experiments. ``train.warm_start: <run>`` starts from that
    run's selected weights (a fresh optimizer and learning-rate schedule: a warm restart), and
    ``train.stream_seed`` draws its records from another synthetic stream than the profile's,
    so that a continued run learns from records its source never saw.
    """
    from vizecg.models.losses import needs_measurements
    from vizecg.training.engine import LAST_NAME, fit

    profile_params, params = params, params_for_run(params, run)
    model, loss_fn, spec = build_run_model(params, run)
    tr = spec["train"]
    if tr.get("warm_start_weights") not in (None, "checkpoint", "shipped"):
        raise ConfigError(f"run '{run}': train.warm_start_weights must be 'checkpoint' or 'shipped', "
                          f"got {tr['warm_start_weights']!r}")
    if tr.get("image_encoder_from") and tr.get("warm_start"):
        raise ConfigError(f"run '{run}': train.warm_start loads every weight, train.image_encoder_from only the "
                          "page encoder; give one of them")
    if tr.get("warm_start_weights") and not tr.get("warm_start"):
        raise ConfigError(f"run '{run}': train.warm_start_weights says where train.warm_start's weights come "
                          "from, and the run has no train.warm_start")
    if tr.get("threads"):
        # A fixed thread count: CPU kernels may split reductions by thread, so the count is part
        # of what makes two runs bit-identical (and one thread leaves the other core to the
        # DataLoader worker that draws and renders the records).
        torch.set_num_threads(int(spec["train"]["threads"]))
    out = run_dir(work_dir, run)
    fingerprint = run_fingerprint(profile_params, run)
    stamp = out / "run_params.json"
    if _rank() == 0:
        if out.exists() and (not stamp.exists() or stamp.read_text() != fingerprint):
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        stamp.write_text(fingerprint)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()  # no rank reads the folder before rank 0 has reset it

    inputs = TRAIN_INPUTS[model.input_kind]
    with_image = "image" in inputs
    train_set = make_dataset(params, work_dir, "train", train=True, with_image=with_image,
                             records_per_epoch=spec["train"].get("records_per_epoch"),
                             measurement_targets=needs_measurements(loss_fn),
                             stream_seed=spec["train"].get("stream_seed"))
    pool = spec["train"].get("replay_pool")
    if pool:
        from vizecg.data.replay_pool import ReplayPool

        if not hasattr(train_set, "draw"):
            raise ValueError(f"run '{run}': train.replay_pool draws from the synthetic stream; "
                             "it needs data.train_stream")
        train_set = ReplayPool(train_set, pool["size"], pool["refresh"], fresh_epochs=pool.get("fresh_epochs", 1),
                               num_workers=spec["train"].get("num_workers", 0), progress=progress)
    val_set = make_dataset(params, work_dir, "val", train=False, with_image=with_image)
    meta = {"model_name": spec["model"], "model_options": spec["model_options"], "labels": LABELS,
            "run": run, "input": {**params["input"], "render_style": "paper"}, "params": params}
    sources = [option for option in SOURCE_RUN_OPTIONS if tr.get(option)]
    if sources and (out / LAST_NAME).exists():
        # A run with a checkpoint resumes from it, or, finished, only loads it: the source's weights are
        # not needed, and may no longer be where they were (the shipped file written from a later run,
        # a source checkpoint removed). Where it started from is what its checkpoint recorded.
        from vizecg.training.checkpoint import read_checkpoint

        resumed = read_checkpoint(out / LAST_NAME)
        meta.update({option: resumed.get(option) for option in sources})
    elif tr.get("warm_start"):
        # read before fit: a resumed run's last.pt then replaces these weights, as it should
        from_shipped = (tr.get("warm_start_weights") == "shipped"
                        and not (run_dir(work_dir, tr["warm_start"]) / "best.pt").exists())
        meta["warm_start"] = (shipped_warm_start_weights(run, tr["warm_start"], spec, model) if from_shipped
                              else warm_start_weights(work_dir, run, tr["warm_start"], model))
    elif tr.get("image_encoder_from"):
        meta["image_encoder_from"] = image_encoder_weights(work_dir, run, tr["image_encoder_from"], model)
    return fit(model, loss_fn, train_set, val_set, out_dir=out, epochs=tr["epochs"],
               batch_size=tr["batch_size"], lr=tr["lr"], lr_min=tr["lr_min"],
               weight_decay=tr.get("weight_decay", 0.0), inputs=inputs,
               val_inputs=("image",) if model.input_kind == "multimodal" else inputs,
               monitor_inputs={"signal": ("signal",)} if model.input_kind == "multimodal" else None,
               num_workers=tr.get("num_workers", 0), device=resolve_device(tr.get("device", "auto")),
               seed=tr["seed"], checkpoint_meta=meta, progress=progress)


def inference_paths(spec: dict, model) -> list[str]:
    """How a run is scored: its ``inference`` list, else its own input kind.

    ``image`` on a multimodal model is image-only inference (no signal, the paper's use);
    ``image_skip`` is the same checkpoint with the ``missing_modality="skip"`` CMAM rule,
    which the evaluation compares with the trained rule.
    """
    paths = spec["inference"] or ([model.input_kind] if model.input_kind != "multimodal" else ["image"])
    if model.input_kind == "multimodal" and "image" in paths and getattr(model, "missing_modality", None) == "self":
        paths = [*paths, "image_skip"]
    return paths


def predictions_file(work_dir: str | Path, run: str) -> Path:
    return run_dir(work_dir, run) / "predictions.npz"


def scoring_key(params: dict, run: str, work_dir: str | Path, state_dict: dict, paths: list[str]) -> str:
    """What ``run``'s stored predictions depend on: the run's fingerprint (its spec and the data and
    input blocks, which fix how evaluation pages are drawn), the evaluation block, the selected
    weights themselves, the inference paths, and the prepared file they were read from (its size and
    modification time: a prepared set written again is scored again, even if its records are the same,
    because a stale reuse would be silent and a needless rescore only costs time)."""
    digest = hashlib.sha256()
    prepared = prepared_file(work_dir)
    stat = prepared.stat() if prepared.exists() else None
    digest.update(json.dumps({"run": run_fingerprint(params, run), "evaluation": params["evaluation"], "paths": paths,
                              "prepared": [prepared.name, stat.st_size, stat.st_mtime_ns] if stat else None},
                             sort_keys=True, default=str).encode())
    for key in sorted(state_dict):
        digest.update(key.encode())
        digest.update(state_dict[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def score_run(params: dict, run: str, work_dir: str | Path, *, progress: bool = True) -> Path:
    """Predict validation and test probabilities of ``run``'s best checkpoint for every inference
    path, tune per-class thresholds on validation (stored in the checkpoint for ``predict``),
    and save everything in ``predictions.npz``: ``y_val``, ``y_test``, ``val@<path>``, ``test@<path>``
    and ``scoring_key`` (:func:`scoring_key`).

    A run whose stored predictions carry the key of its current checkpoint, data and parameters,
    and whose checkpoint holds the thresholds tuned from them, is not scored again: a release run
    predicts thousands of pages per path, and reopening its notebook should not cost that again."""
    from vizecg.evaluation import predict_probs, tune_thresholds
    from vizecg.training.checkpoint import load_model, read_checkpoint, save_checkpoint

    params = params_for_run(params, run)
    spec = run_spec(params, run)
    best = run_dir(work_dir, run) / "best.pt"
    model, meta = load_model(best)
    out = predictions_file(work_dir, run)
    paths = inference_paths(spec, model)
    key = scoring_key(params, run, work_dir, model.state_dict(), paths)
    if out.exists() and "thresholds_by_path" in meta and _stored_scoring_key(out) == key:
        return out
    device = resolve_device(params["train"].get("device", "auto"))
    batch = params["evaluation"]["batch_size"]
    arrays: dict[str, np.ndarray] = {}
    datasets = {}
    for split in ("val", "test"):
        datasets[split] = make_dataset(params, work_dir, split, train=False, with_image=model.input_kind != "signal")
        arrays[f"y_{split}"] = datasets[split].labels.astype(np.uint8)
    thresholds = {}
    for path in paths:
        inputs = ("signal",) if path == "signal" else ("image",)
        if model.input_kind == "multimodal":
            model.missing_modality = "skip" if path == "image_skip" else meta["model_options"].get("missing_modality", "self")
        for split in ("val", "test"):
            arrays[f"{split}@{path}"] = predict_probs(model, datasets[split], inputs=inputs, batch_size=batch,
                                                      device=device, progress=progress)
        thresholds[path] = tune_thresholds(arrays["y_val"], arrays[f"val@{path}"]).tolist()
    np.savez(out, **arrays, scoring_key=np.array(key))
    payload = read_checkpoint(best)
    payload["thresholds"] = thresholds.get("image", next(iter(thresholds.values())))
    payload["thresholds_by_path"] = thresholds
    save_checkpoint(payload, best)
    return out


def _stored_scoring_key(path: Path) -> str | None:
    try:
        with np.load(path) as data:
            return str(data["scoring_key"]) if "scoring_key" in data.files else None
    except (OSError, ValueError):  # a damaged file is scored again, not trusted
        return None


def load_predictions(work_dir: str | Path, run: str) -> dict[str, np.ndarray]:
    with np.load(predictions_file(work_dir, run)) as data:
        return {key: data[key] for key in data.files if key != "scoring_key"}


def main(argv: list[str] | None = None) -> None:
    """Train and score one run outside the notebooks, e.g. on several GPUs::

        torchrun --standalone --nproc_per_node=8 -m vizecg.study.runs --profile paper --run vizecgnet

    Under torchrun every process trains its shard (DistributedDataParallel); rank 0 writes the
    checkpoints and then scores the run. The notebook stage ``train@<run>`` then finds the
    finished run and only reports it.
    """
    import argparse

    from vizecg.study.config import load_params
    from vizecg.training import distributed

    parser = argparse.ArgumentParser(description="train and score one run of params.yaml")
    parser.add_argument("--profile", default=None, help="profile of params.yaml (default: its 'profile' key)")
    parser.add_argument("--run", required=True, help="an entry of params.yaml: runs")
    parser.add_argument("--work-dir", default="data")
    args = parser.parse_args(argv)
    params = load_params(profile=args.profile)
    launched = "WORLD_SIZE" in __import__("os").environ
    if launched:
        distributed.setup()
    try:
        train_run(params, args.run, args.work_dir)
        if _rank() == 0:
            score_run(params, args.run, args.work_dir)
    finally:
        if launched:
            distributed.teardown()


if __name__ == "__main__":
    main()
