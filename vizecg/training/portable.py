"""Training checkpoints as files that can be committed: safetensors for the tensors, JSON for the rest.

A training run longer than one working session (the release run takes hours on two CPU cores)
must resume from a checkpoint that outlives the machine it ran on. ``last.pt`` is a pickle, and
no pickle goes into the repository, so this module writes a run folder's checkpoints in a form
that can: every tensor of a checkpoint (weights, optimiser moments, step counters) goes into
``<name>.pt.safetensors`` under the path of its place in the checkpoint, and everything else
(options, history, scheduler state) into ``<name>.pt.json``, with tuples, dicts with non-string
keys and tensors marked so that the round trip gives back the same objects, bit for bit.
Small text files of the run folder (``history.csv``, ``run_params.json``) are copied as they are.

    python -m vizecg.training.portable export data/models/vizecgnet_release models/release_run_checkpoint
    python -m vizecg.training.portable import models/release_run_checkpoint data/models/vizecgnet_release

After the import, the run's own command resumes from the epoch the export was taken at: the
engine reads ``last.pt`` as ever, and the synthetic stream and replay pool redraw the pages of
that epoch deterministically.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from vizecg.training.checkpoint import CheckpointError, read_checkpoint, save_checkpoint

FORMAT = "vizecg-portable-checkpoint"
FORMAT_VERSION = 1
TENSORS_SUFFIX = ".safetensors"
META_SUFFIX = ".json"
#: text files of a run folder copied as they are
TEXT_SUFFIXES = (".csv", ".json", ".txt")


def _encode(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``value`` as JSON, its tensors moved to ``tensors`` under their path in the checkpoint."""
    if isinstance(value, torch.Tensor):
        tensors[path] = value.detach().cpu().contiguous().clone()  # clone: safetensors refuses shared storage
        return {"__tensor__": path}
    if isinstance(value, dict):
        plain = type(value) is dict and all(isinstance(k, str) and not k.startswith("__") for k in value)
        if plain:
            return {k: _encode(v, f"{path}/{k}", tensors) for k, v in value.items()}
        # a model's state_dict is an OrderedDict, an optimiser's state is keyed by parameter number
        tag = "__ordered_items__" if isinstance(value, OrderedDict) else "__items__"
        return {tag: [[_encode(k, f"{path}/key{i}", tensors), _encode(v, f"{path}/{k}", tensors)]
                      for i, (k, v) in enumerate(value.items())]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CheckpointError(f"checkpoint entry {path or '/'} is a {type(value).__name__}, which the portable "
                          "format does not hold (tensors, numbers, strings, lists, tuples and dicts only)")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            return tensors[value["__tensor__"]]
        if set(value) == {"__items__"}:
            return {_decode(k, tensors): _decode(v, tensors) for k, v in value["__items__"]}
        if set(value) == {"__ordered_items__"}:
            return OrderedDict((_decode(k, tensors), _decode(v, tensors)) for k, v in value["__ordered_items__"])
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v, tensors) for v in value["__tuple__"])
        return {k: _decode(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    return value


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_portable(checkpoint: str | Path, out_dir: str | Path) -> Path:
    """Write ``checkpoint`` (a ``.pt`` of :mod:`vizecg.training`) as ``<name>.safetensors`` and
    ``<name>.json`` in ``out_dir``; return the JSON's path."""
    from safetensors.torch import save_file

    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    payload = read_checkpoint(checkpoint)
    tensors: dict[str, torch.Tensor] = {}
    encoded = _encode(payload, "", tensors)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors_path = out_dir / (checkpoint.name + TENSORS_SUFFIX)
    save_file(tensors, str(tensors_path))
    meta_path = out_dir / (checkpoint.name + META_SUFFIX)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "checkpoint": checkpoint.name,
            "tensors_file": tensors_path.name, "tensors_sha256": _sha256(tensors_path), "payload": encoded}
    meta_path.write_text(json.dumps(meta, indent=1, allow_nan=True) + "\n")
    return meta_path


def read_portable(meta_path: str | Path) -> dict:
    """The checkpoint dict a :func:`write_portable` JSON describes, with a clear error for a file that
    is not one, a tensors file that is missing or altered, or a tensor that is absent."""
    from safetensors.torch import load_file

    meta_path = Path(meta_path)
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"portable checkpoint {meta_path} cannot be read: {error}") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path} is not a portable checkpoint (format {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{meta_path}: format_version {meta.get('format_version')!r}, this code reads "
                              f"{FORMAT_VERSION}")
    tensors_path = meta_path.with_name(meta["tensors_file"])
    if not tensors_path.is_file():
        raise CheckpointError(f"portable checkpoint {meta_path}: its tensors file {tensors_path} is missing")
    if _sha256(tensors_path) != meta["tensors_sha256"]:
        raise CheckpointError(f"portable checkpoint {meta_path}: {tensors_path} does not match the sha256 recorded "
                              "beside it (altered or from another export)")
    tensors = load_file(str(tensors_path))
    try:
        return _decode(meta["payload"], tensors)
    except KeyError as error:
        raise CheckpointError(f"portable checkpoint {meta_path}: tensor {error} is not in {tensors_path}") from error


def export_run(run_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Every checkpoint of ``run_dir`` in the portable form, and its text files as they are."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    checkpoints = sorted(run_dir.glob("*.pt"))
    if not checkpoints:
        raise CheckpointError(f"{run_dir} holds no checkpoint (*.pt) to export")
    written = [write_portable(path, out_dir) for path in checkpoints]
    for path in sorted(run_dir.iterdir()):
        if path.is_file() and path.suffix in TEXT_SUFFIXES:
            shutil.copyfile(path, out_dir / path.name)
            written.append(out_dir / path.name)
    return written


def import_run(portable_dir: str | Path, run_dir: str | Path) -> list[Path]:
    """The inverse of :func:`export_run`: ``.pt`` checkpoints and the text files back in ``run_dir``."""
    portable_dir, run_dir = Path(portable_dir), Path(run_dir)
    metas = sorted(portable_dir.glob("*.pt" + META_SUFFIX))
    if not metas:
        raise CheckpointError(f"{portable_dir} holds no portable checkpoint (*.pt{META_SUFFIX})")
    run_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for meta_path in metas:
        written.append(save_checkpoint(read_portable(meta_path), run_dir / meta_path.name[:-len(META_SUFFIX)]))
    for path in sorted(portable_dir.iterdir()):
        if path.is_file() and path.suffix in TEXT_SUFFIXES and path not in metas:
            shutil.copyfile(path, run_dir / path.name)
            written.append(run_dir / path.name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vizecg.training.portable", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="a run folder's checkpoints as safetensors + JSON")
    export.add_argument("run_dir", type=Path)
    export.add_argument("out_dir", type=Path)
    restore = sub.add_parser("import", help="write the .pt checkpoints back into a run folder")
    restore.add_argument("portable_dir", type=Path)
    restore.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            written = export_run(args.run_dir, args.out_dir)
        else:
            written = import_run(args.portable_dir, args.run_dir)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
