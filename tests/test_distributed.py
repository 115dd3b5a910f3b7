"""DDP: two CPU processes (gloo, launched by torchrun) match one process with the same global batch.

This file is also the training script torchrun launches (see ``__main__`` below), so the
test exercises the documented launch path: torchrun environment -> ``distributed.setup``
-> ``fit`` -> ``distributed.teardown``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # when run as a torchrun script
    sys.path.insert(0, str(REPO_ROOT))

from vizecg.training import distributed, fit, read_checkpoint  # noqa: E402

GLOBAL_BATCH = 16
EPOCHS = 2


class ToyRecords(Dataset):
    """Learnable records (class c present when lead c's mean is positive); 100 is not a multiple
    of the batch, so padding and dropped batches are exercised."""

    def __init__(self, n: int, seed: int):
        rng = np.random.default_rng(seed)
        offsets = rng.normal(size=(n, 12, 1)).astype(np.float32)
        self.signals = torch.from_numpy(offsets + rng.normal(size=(n, 12, 48)).astype(np.float32))
        self.labels = torch.from_numpy((offsets[:, :6, 0] > 0).astype(np.float32))

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return {"signal": self.signals[index], "label": self.labels[index], "index": index}


class ToyNet(nn.Module):
    """No BatchNorm and no dropout: per-process statistics or masks would differ by design."""

    input_kind = "signal"

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(12, 8, 5, padding=2)
        self.head = nn.Linear(8, 6)

    def forward(self, signal=None, image=None, return_attention=False):
        return {"logits": self.head(torch.relu(self.conv(signal)).mean(dim=-1))}


class BCELoss(nn.Module):
    def forward(self, outputs, targets):
        loss = nn.functional.binary_cross_entropy_with_logits(outputs["logits"], targets)
        return loss, {"bce": float(loss.detach())}


def train(out_dir: Path, grad_accum_steps: int = 1):
    torch.manual_seed(0)
    model = ToyNet()
    return fit(model, BCELoss(), ToyRecords(100, seed=0), ToyRecords(41, seed=1), out_dir=out_dir, epochs=EPOCHS,
               batch_size=GLOBAL_BATCH, lr=5e-3, lr_min=1e-4, inputs=("signal",), seed=7,
               grad_accum_steps=grad_accum_steps, progress=False, tensorboard=False)


def test_two_gloo_processes_match_one_process(tmp_path):
    """2 processes x 2 accumulated micro-batches of 4 against 1 process with batches of 16."""
    single = train(tmp_path / "single")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(Path(__file__).resolve()), "--out", str(tmp_path / "ddp"), "--grad-accum", "2"]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stderr[-3000:]

    ddp_last = read_checkpoint(tmp_path / "ddp" / "last.pt")
    assert ddp_last["world_size"] == 2 and ddp_last["epoch"] == EPOCHS
    single_weights = read_checkpoint(single.last_path)["state_dict"]
    for key, value in single_weights.items():
        torch.testing.assert_close(ddp_last["state_dict"][key], value, atol=1e-5, rtol=1e-4)
        assert not torch.equal(value, ToyNet().state_dict()[key])  # training moved it
    ddp_history = ddp_last["history"]
    for ddp_row, (_, row) in zip(ddp_history, single.history.iterrows()):
        # training loss: same records per step; validation: each record scored exactly once across ranks
        assert ddp_row["train_loss"] == pytest.approx(row["train_loss"], rel=1e-4)
        assert ddp_row["val_loss"] == pytest.approx(row["val_loss"], rel=1e-4)
        assert ddp_row["val_auroc"] == pytest.approx(row["val_auroc"], abs=1e-6)
    # only rank 0 wrote files
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["best.pt", "history.csv", "last.pt"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="torchrun entry point of the DDP test")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--grad-accum", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    context = distributed.setup(device="cpu")
    try:
        assert context.world_size == 2, context
        train(args.out, grad_accum_steps=args.grad_accum)
    finally:
        distributed.teardown()
