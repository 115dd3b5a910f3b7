"""Training engine and checkpoints: learning, determinism, resume, skip, accumulation, errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

import vizecg.models
from vizecg.contract import LABELS
from vizecg.training import CheckpointError, fit, load_model, read_checkpoint
from vizecg.training.checkpoint import save_checkpoint

SIGNAL_LENGTH = 64


class TinyECGSet(Dataset):
    """Learnable toy records: class c is present when lead c's mean is positive.

    Items follow the dataset contract (signal (12, T), label (6,), index, optional image).
    Training items get noise from torch's global RNG, so the engine's reseeding matters.
    ``fail_at_epoch`` raises from ``set_epoch`` to simulate a run killed mid-way.
    """

    def __init__(self, n: int, *, seed: int = 0, with_image: bool = False, augment: bool = True,
                 fail_at_epoch: int | None = None, length: int = SIGNAL_LENGTH):
        rng = np.random.default_rng(seed)
        offsets = rng.normal(0.0, 1.0, size=(n, 12, 1)).astype(np.float32)
        self.signals = torch.from_numpy(offsets + rng.normal(0.0, 1.0, (n, 12, length)).astype(np.float32))
        self.labels = torch.from_numpy((offsets[:, :6, 0] > 0).astype(np.float32))
        self.with_image, self.augment, self.fail_at_epoch = with_image, augment, fail_at_epoch
        self.epochs_seen: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        if self.fail_at_epoch is not None and epoch >= self.fail_at_epoch:
            raise KeyboardInterrupt(f"simulated interruption at epoch {epoch}")
        self.epochs_seen.append(epoch)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        signal = self.signals[index]
        if self.augment:
            signal = signal + 0.1 * torch.randn_like(signal)
        item = {"signal": signal, "label": self.labels[index], "index": index}
        if self.with_image:
            item["image"] = torch.sigmoid(signal[:3, :64]).unsqueeze(-1).expand(3, 64, 64).contiguous()
        return item


class TinyNet(nn.Module):
    """A small signal model following the model contract (with dropout to exercise the RNG)."""

    input_kind = "signal"

    def __init__(self, dropout: float = 0.2, width: int = 8):
        super().__init__()
        self.conv = nn.Conv1d(12, width, 5, padding=2)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width + 12, 6)

    def forward(self, signal=None, image=None, return_attention=False):
        features = torch.relu(self.conv(signal)).mean(dim=-1)
        return {"logits": self.head(self.dropout(torch.cat([features, signal.mean(dim=-1)], dim=1)))}


class BCELoss(nn.Module):
    """The loss contract: (outputs, targets) -> (loss, {part: float})."""

    def forward(self, outputs, targets):
        loss = nn.functional.binary_cross_entropy_with_logits(outputs["logits"], targets)
        return loss, {"bce": float(loss.detach())}


def _fit(out_dir, *, epochs=3, train=None, dropout=0.2, **overrides):
    torch.manual_seed(0)
    model = TinyNet(dropout=dropout)
    options = dict(out_dir=out_dir, epochs=epochs, batch_size=16, lr=1e-2, lr_min=1e-4, inputs=("signal",),
                   seed=3, progress=False, checkpoint_meta={"model_name": "tiny", "model_options": {"width": 8},
                                                            "params": {"profile": "test"}})
    options.update(overrides)
    result = fit(model, BCELoss(), train if train is not None else TinyECGSet(96), TinyECGSet(48, seed=1, augment=False),
                 **options)
    return model, result


def _weights(path):
    return read_checkpoint(path)["state_dict"]


def _assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_fit_learns_and_writes_checkpoints_and_logs(tmp_path):
    train = TinyECGSet(96)
    _, result = _fit(tmp_path / "run", epochs=4, train=train)
    history = result.history
    assert list(history["epoch"]) == [1, 2, 3, 4]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert history["val_loss"].iloc[-1] < history["val_loss"].iloc[0]
    assert history["val_auroc"].iloc[-1] > 0.7
    assert train.epochs_seen == [0, 1, 2, 3]
    # cosine annealing starts at lr and decreases
    assert history["lr"].iloc[0] == pytest.approx(1e-2)
    assert history["lr"].is_monotonic_decreasing
    assert ((history["data_wait_frac"] >= 0) & (history["data_wait_frac"] <= 1)).all()
    for column in ("train_bce", "val_bce", "val_auprc", "val_f1", "seconds", "samples_per_s"):
        assert column in history
    on_disk = pd.read_csv(result.out_dir / "history.csv")
    assert np.allclose(on_disk["train_loss"], history["train_loss"])
    assert any((result.out_dir / "tensorboard").iterdir())

    last = read_checkpoint(result.last_path)
    best = read_checkpoint(result.best_path)
    assert last["epoch"] == 4 and "optimizer" in last and "scheduler" in last
    assert "optimizer" not in best and "history" not in best
    assert best["epoch"] == result.best_epoch
    assert result.best_value == pytest.approx(history["val_auroc"].max())
    for payload in (last, best):
        assert payload["model_name"] == "tiny" and payload["model_options"] == {"width": 8}
        assert tuple(payload["labels"]) == LABELS and payload["params"] == {"profile": "test"}


def test_same_seed_gives_identical_weights(tmp_path):
    _, first = _fit(tmp_path / "a", epochs=2)
    _, second = _fit(tmp_path / "b", epochs=2)
    _assert_same_weights(_weights(first.last_path), _weights(second.last_path))
    assert first.history["train_loss"].tolist() == second.history["train_loss"].tolist()
    _, other_seed = _fit(tmp_path / "c", epochs=2, seed=4)
    assert other_seed.history["train_loss"].tolist() != first.history["train_loss"].tolist()


def test_worker_processes_are_seeded_deterministically(tmp_path):
    _, first = _fit(tmp_path / "a", epochs=1, num_workers=2)
    _, second = _fit(tmp_path / "b", epochs=1, num_workers=2)
    _assert_same_weights(_weights(first.last_path), _weights(second.last_path))


def test_autocast_path_runs(tmp_path):
    """bf16 autocast (the CUDA default) exercised on CPU: losses stay finite and float32 weights are saved."""
    _, result = _fit(tmp_path / "bf16", epochs=1, amp="bf16")
    assert np.isfinite(result.history["train_loss"]).all()
    assert all(v.dtype == torch.float32 for v in _weights(result.last_path).values())


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    _, straight = _fit(tmp_path / "straight", epochs=3)
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "resumed", epochs=3, train=TinyECGSet(96, fail_at_epoch=2))
    assert read_checkpoint(tmp_path / "resumed" / "last.pt")["epoch"] == 2
    model, resumed = _fit(tmp_path / "resumed", epochs=3)
    assert resumed.resumed_from_epoch == 2 and not resumed.skipped
    _assert_same_weights(_weights(straight.last_path), _weights(resumed.last_path))
    _assert_same_weights(_weights(straight.best_path), _weights(resumed.best_path))
    _assert_same_weights(_weights(straight.last_path), model.state_dict())
    columns = ["epoch", "lr", "train_loss", "val_loss", "val_auroc", "val_f1"]
    pd.testing.assert_frame_equal(straight.history[columns], resumed.history[columns])


def test_a_run_carried_as_safetensors_and_json_resumes_as_if_never_moved(tmp_path):
    """A run stopped on one machine, exported to committable files (no pickle), imported into an empty
    folder elsewhere, finishes with the weights and history of a run that was never interrupted."""
    import json

    from vizecg.training.portable import export_run, import_run, main, read_portable

    _, straight = _fit(tmp_path / "straight", epochs=3)
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "stopped", epochs=3, train=TinyECGSet(96, fail_at_epoch=2))
    carried = tmp_path / "carried"
    export_run(tmp_path / "stopped", carried)
    assert not list(carried.glob("*.pt")) and (carried / "last.pt.safetensors").is_file()
    assert (carried / "history.csv").read_bytes() == (tmp_path / "stopped" / "history.csv").read_bytes()
    original = read_checkpoint(tmp_path / "stopped" / "last.pt")
    restored = read_portable(carried / "last.pt.json")
    assert type(restored["state_dict"]) is type(original["state_dict"])
    assert restored["optimizer"]["state"].keys() == original["optimizer"]["state"].keys()  # integer keys stay ints
    assert restored["optimizer"]["param_groups"][0]["betas"] == original["optimizer"]["param_groups"][0]["betas"]
    assert main(["import", str(carried), str(tmp_path / "elsewhere")]) == 0
    model, resumed = _fit(tmp_path / "elsewhere", epochs=3)
    assert resumed.resumed_from_epoch == 2
    _assert_same_weights(_weights(straight.last_path), _weights(resumed.last_path))
    _assert_same_weights(_weights(straight.best_path), _weights(resumed.best_path))
    # an altered tensors file or a missing one is named, never half-loaded
    meta = json.loads((carried / "last.pt.json").read_text())
    (carried / "last.pt.safetensors").write_bytes(b"x" + (carried / "last.pt.safetensors").read_bytes()[1:])
    with pytest.raises(CheckpointError, match="sha256"):
        read_portable(carried / "last.pt.json")
    (carried / "last.pt.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        import_run(carried, tmp_path / "again")
    assert meta["format"] == "vizecg-portable-checkpoint"
    assert main(["export", str(tmp_path / "empty"), str(tmp_path / "out")]) == 2


def test_monitored_paths_are_scored_on_the_validation_pass_itself(tmp_path):
    """A monitored input path (a multimodal model's teacher) is scored on the batches the validation
    already draws: every validation record is read once per epoch, and the path scores what its own
    pass over the same records would."""

    class CountingSet(TinyECGSet):
        reads = 0

        def __getitem__(self, index: int) -> dict:
            CountingSet.reads += 1
            return super().__getitem__(index)

    val = CountingSet(48, seed=1, augment=False)
    torch.manual_seed(0)
    result = fit(TinyNet(), BCELoss(), TinyECGSet(96), val, out_dir=tmp_path, epochs=2, batch_size=16, lr=1e-2,
                 inputs=("signal",), monitor_inputs={"again": ("signal",)}, seed=3, progress=False)
    assert CountingSet.reads == 2 * len(val)
    np.testing.assert_allclose(result.history["val_auroc_again"], result.history["val_auroc"], rtol=0, atol=0)


def test_finished_run_is_skipped_and_changed_config_refused(tmp_path):
    _, first = _fit(tmp_path / "run", epochs=2)
    stamp = first.last_path.stat().st_mtime_ns
    train = TinyECGSet(96)
    model, again = _fit(tmp_path / "run", epochs=2, train=train)
    assert again.skipped and train.epochs_seen == []
    _assert_same_weights(model.state_dict(), _weights(first.last_path))
    assert first.last_path.stat().st_mtime_ns == stamp
    assert again.best_epoch == first.best_epoch
    pd.testing.assert_frame_equal(again.history, first.history)
    with pytest.raises(CheckpointError, match="lr"):
        _fit(tmp_path / "run", epochs=2, lr=5e-3)


def test_a_constant_rate_run_goes_on_to_more_epochs_as_if_it_had_been_longer(tmp_path):
    _, straight = _fit(tmp_path / "straight", epochs=4, lr=1e-2, lr_min=1e-2)
    _fit(tmp_path / "carried", epochs=2, lr=1e-2, lr_min=1e-2)
    model, carried = _fit(tmp_path / "carried", epochs=4, lr=1e-2, lr_min=1e-2)
    assert carried.resumed_from_epoch == 2 and list(carried.history["epoch"]) == [1, 2, 3, 4]
    assert (carried.history["lr"] == 1e-2).all()
    _assert_same_weights(_weights(straight.last_path), _weights(carried.last_path))
    # a scheduled run's length is its schedule: carrying it further is refused
    _fit(tmp_path / "scheduled", epochs=2)
    with pytest.raises(CheckpointError, match="epochs"):
        _fit(tmp_path / "scheduled", epochs=4)


def test_gradient_accumulation_keeps_the_effective_batch(tmp_path):
    _, whole = _fit(tmp_path / "whole", epochs=2, dropout=0.0)
    _, accumulated = _fit(tmp_path / "accum", epochs=2, dropout=0.0, grad_accum_steps=2)
    a, b = _weights(whole.last_path), _weights(accumulated.last_path)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="divisible"):
        _fit(tmp_path / "bad", epochs=1, grad_accum_steps=3)


def test_missing_and_corrupt_checkpoints_name_the_file(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="nope.pt"):
        read_checkpoint(missing)
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="last.pt.*corrupt"):
        _fit(run, epochs=1)
    _, result = _fit(tmp_path / "ok", epochs=1)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(result.best_path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_model(truncated)


def test_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(KeyError, match="image"):
        _fit(tmp_path / "run", epochs=1, inputs=("signal", "image"))


def test_load_model_rebuilds_through_the_registry(tmp_path, monkeypatch):
    _, result = _fit(tmp_path / "run", epochs=1)
    monkeypatch.setattr(vizecg.models, "create_model", lambda name, **options: TinyNet(**options), raising=False)
    model, meta = load_model(result.best_path)
    assert not model.training and meta["model_name"] == "tiny" and "state_dict" not in meta
    _assert_same_weights(model.state_dict(), _weights(result.best_path))


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"state_dict": {"w": torch.ones(2)}}, path)

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", explode)
    with pytest.raises(OSError):
        save_checkpoint({"state_dict": {"w": torch.zeros(2)}}, path)
    assert torch.equal(read_checkpoint(path)["state_dict"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_registered_model_trains_two_epochs_and_reloads(tmp_path):
    """VizECGNet at its tiny size: trained on both inputs, selected and reloaded for image-only inference."""
    from vizecg.evaluation import predict_probs
    from vizecg.models import create_loss, create_model, model_info

    options = dict(model_info("vizecgnet")["tiny_options"])
    torch.manual_seed(0)
    model = create_model("vizecgnet", **options)
    train = TinyECGSet(32, with_image=True, length=256)
    val = TinyECGSet(16, seed=1, with_image=True, augment=False, length=256)
    result = fit(model, create_loss(model), train, val, out_dir=tmp_path / "vizecgnet", epochs=2, batch_size=16,
                 lr=1e-3, lr_min=1e-5, inputs=("signal", "image"), val_inputs=("image",), seed=0, progress=False,
                 tensorboard=False, checkpoint_meta={"model_name": "vizecgnet", "model_options": options})
    assert len(result.history) == 2 and np.isfinite(result.history["train_loss"]).all()
    assert any(column.startswith("train_") and column != "train_loss" and column != "train_seconds"
               for column in result.history)  # the distillation loss reports its parts
    reloaded, meta = load_model(result.best_path)
    assert meta["model_name"] == "vizecgnet" and meta["epoch"] == result.best_epoch
    probs = predict_probs(reloaded, val, inputs=("image",), batch_size=8, device="cpu", progress=False)
    assert probs.shape == (16, 6) and ((probs >= 0) & (probs <= 1)).all()
    np.testing.assert_allclose(probs, predict_probs(reloaded, val, inputs=("image",), batch_size=5,
                                                    device="cpu", progress=False), rtol=1e-4, atol=1e-6)
