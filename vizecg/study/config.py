"""Read ``params.yaml``, the single source of the study's parameters, and resolve a profile.

``params.yaml`` holds ``profile`` (the active scale: ``smoke``, ``default`` or ``paper``),
the run table shared by all profiles, and one block per profile. A resolved
configuration is a plain dict (no global state): the profile block plus ``profile``,
``labels``, ``runs`` and ``train_runs``.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from vizecg.contract import LABELS

PARAMS_FILE = "params.yaml"


class ConfigError(ValueError):
    """params.yaml is missing, malformed, or asks for something that does not exist."""


def find_repo_root(start: str | Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) holding ``params.yaml`` and ``vizecg/``.

    Notebooks run with their own folder as working directory under nbval and with the
    repository root under papermill; both resolve paths from this root.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PARAMS_FILE).is_file() and (folder / "vizecg").is_dir():
            return folder
    raise ConfigError(f"no {PARAMS_FILE} with a vizecg/ package beside it at or above {here}")


def load_params(path: str | Path | None = None, profile: str | None = None) -> dict[str, Any]:
    """Resolve ``profile`` (default: the file's ``profile`` key) from ``params.yaml``."""
    path = Path(path) if path else find_repo_root() / PARAMS_FILE
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: parameters file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    for key in ("profile", "profiles", "runs", "train_runs"):
        if key not in raw:
            raise ConfigError(f"{path}: missing top-level key '{key}'")
    name = profile or raw["profile"]
    if name not in raw["profiles"]:
        raise ConfigError(f"{path}: unknown profile '{name}'; known: {sorted(raw['profiles'])}")
    resolved = copy.deepcopy(raw["profiles"][name])
    resolved["profile"] = name
    resolved["labels"] = list(raw.get("labels", LABELS))
    if tuple(resolved["labels"]) != LABELS:
        raise ConfigError(f"{path}: labels must be {list(LABELS)} (the record contract), got {resolved['labels']}")
    resolved["runs"] = copy.deepcopy(raw["runs"])
    resolved["train_runs"] = list(raw["train_runs"])
    unknown = [r for r in resolved["train_runs"] if r not in resolved["runs"]]
    if unknown:
        raise ConfigError(f"{path}: train_runs {unknown} have no entry under 'runs'")
    return resolved


def run_entry(params: dict[str, Any], run: str) -> dict[str, Any]:
    """``params["runs"][run]``, or :class:`ConfigError` listing the known runs."""
    if run not in params["runs"]:
        raise ConfigError(f"unknown run '{run}'; known: {sorted(params['runs'])}")
    return params["runs"][run]


def _train_options(params: dict[str, Any], run: str, fine_tune: dict[str, Any]) -> dict[str, Any]:
    """The profile's ``train`` updated by its ``train_by_model`` entry for ``run``'s model, then by
    ``fine_tune``, then by the run's own ``train``: the one merge :func:`fine_tunes` and :func:`run_spec` read."""
    entry = run_entry(params, run)
    train = copy.deepcopy(params.get("train", {}))
    train.update(params.get("train_by_model", {}).get(entry["model"], {}))
    train.update(fine_tune)
    train.update(entry.get("train", {}))
    return train


def fine_tunes(params: dict[str, Any], run: str) -> bool:
    """Whether ``run`` starts from another run's page encoder (``train.image_encoder_from``, wherever its
    training options set it). Such a run is a fine-tune, and the profile's ``fine_tune`` block (``train``
    and ``input`` settings) applies to it: in ``default`` the page encoder has already read 98,304 pages,
    so a fine-tune needs a fraction of a from-scratch budget."""
    return bool(_train_options(params, run, {}).get("image_encoder_from"))


def run_spec(params: dict[str, Any], run: str) -> dict[str, Any]:
    """Model name, model options (profile defaults updated by the run's own), loss options and training
    options (the profile's ``train`` updated by its ``train_by_model`` entry for the model, then, for a
    run that :func:`fine_tunes`, by the profile's ``fine_tune.train``, then by the run's own ``train``)
    for ``run``."""
    entry = run_entry(params, run)
    model = entry["model"]
    options = copy.deepcopy(params.get("model_options", {}).get(model, {}))
    options.update(entry.get("options", {}))
    loss = copy.deepcopy(params.get("loss", {}))
    loss.update(entry.get("loss", {}))
    train = _train_options(params, run, params.get("fine_tune", {}).get("train", {}) if fine_tunes(params, run) else {})
    return {"run": run, "model": model, "model_options": options, "loss_options": loss, "train": train,
            "inference": list(entry.get("inference", [])), "table": entry.get("table", "table1")}


#: ``input`` settings that only a run's own ``input`` sets (the release run's deployed look);
#: the profiles leave them at their defaults
RUN_ONLY_INPUT_SETTINGS = ("page_preparation", "render_scale", "sheet_photo_share", "validation_look",
                           "validation_severity", "clean_style", "paper_share", "short_exam_share")


def params_for_run(params: dict[str, Any], run: str) -> dict[str, Any]:
    """``params`` as ``run`` trains and is scored with: the profile's ``input`` updated, for a run that
    :func:`fine_tunes`, by the profile's ``fine_tune.input``, then by the run's own ``input`` (e.g. the
    release run's deployed page preparation). A copy; ``params`` is unchanged."""
    overrides = {**(params.get("fine_tune", {}).get("input", {}) if fine_tunes(params, run) else {}),
                 **run_entry(params, run).get("input", {})}
    if not overrides:
        return params
    unknown = set(overrides) - set(params["input"]) - set(RUN_ONLY_INPUT_SETTINGS)
    if unknown:
        raise ConfigError(f"run '{run}': unknown input setting(s) {sorted(unknown)}")
    out = copy.deepcopy(params)
    out["input"].update(overrides)
    return out


def real_data_path(params: dict[str, Any], name: str) -> Path | None:
    """``<data.real_data_dir>/<name>`` (``ludb`` or ``real_prints``), or None, with a printed note,
    where it is absent: the real data lives beside the project, so a notebook leaves out what needs
    it and says so instead of failing."""
    path = Path(params["data"]["real_data_dir"]) / name
    if path.is_dir():
        return path
    print(f"{path} is absent: the parts of this notebook that need it are left out "
          f"(set data.real_data_dir in params.yaml to the folder holding {name}/)")
    return None
