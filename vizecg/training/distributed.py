"""Process-group setup for data-parallel training with ``torchrun``.

:func:`vizecg.training.engine.fit` runs unchanged on one process or many: when
``torch.distributed`` is initialised it wraps the model in DistributedDataParallel,
shards the data with a DistributedSampler, merges validation outputs across
processes and lets rank 0 alone write checkpoints and logs. A training script only
brackets the call::

    from vizecg.training import distributed, fit

    context = distributed.setup()          # reads RANK/WORLD_SIZE/LOCAL_RANK set by torchrun
    try:
        result = fit(model, loss_fn, train_set, val_set, device=context.device, ...)
    finally:
        distributed.teardown()

and is launched, on one machine with 8 GPUs::

    torchrun --standalone --nproc_per_node=8 train_script.py ...

or across 2 machines with 8 GPUs each (run on every node; ``--node_rank`` 0 and 1,
``MASTER`` reachable from all nodes, ``out_dir`` on a shared file system because
resuming reads ``last.pt`` on every rank)::

    torchrun --nnodes=2 --nproc_per_node=8 --node_rank=<0|1> \\
        --rdzv_backend=c10d --rdzv_endpoint=MASTER:29500 --rdzv_id=vizecg train_script.py ...

On CPU the same command with ``--nproc_per_node=2`` uses the gloo backend (this is
what the test suite runs). ``fit(batch_size=...)`` is the *global* batch per
optimizer step, split over processes and gradient-accumulation micro-steps, so
the optimisation (and the paper's batch of 16) does not change with the number of
GPUs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job: its rank, the world size and its device."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """True on the process that writes checkpoints, logs and progress bars."""
        return self.rank == 0


def is_initialized() -> bool:
    """True when a torch.distributed process group is up (i.e. running under torchrun/spawn)."""
    return dist.is_available() and dist.is_initialized()


def setup(backend: str | None = None, device: str | None = None) -> DistributedContext:
    """Initialise the process group from torchrun's environment, or return a single-process context.

    Args:
        backend: "nccl" or "gloo"; default nccl when CUDA is available, else gloo.
        device: "cuda" or "cpu"; default cuda when available. On CUDA each process
            takes the GPU ``cuda:LOCAL_RANK`` and makes it current.

    Without ``WORLD_SIZE`` in the environment (a plain ``python`` run) nothing is
    initialised and the context describes one process.
    """
    use_cuda = torch.cuda.is_available() if device is None else torch.device(device).type == "cuda"
    if "WORLD_SIZE" not in os.environ or is_initialized():
        rank = dist.get_rank() if is_initialized() else 0
        world = dist.get_world_size() if is_initialized() else 1
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        return DistributedContext(rank, local_rank, world, _device_for(use_cuda, local_rank))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device_obj = _device_for(use_cuda, local_rank)
    if device_obj.type == "cuda":
        torch.cuda.set_device(device_obj)
    backend = backend or ("nccl" if device_obj.type == "cuda" else "gloo")
    dist.init_process_group(backend=backend)
    return DistributedContext(dist.get_rank(), local_rank, dist.get_world_size(), device_obj)


def _device_for(use_cuda: bool, local_rank: int) -> torch.device:
    return torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")


def teardown() -> None:
    """Destroy the process group if one is up (safe to call either way)."""
    if is_initialized():
        dist.destroy_process_group()


def current_context(device: torch.device | str) -> DistributedContext:
    """The context of an already initialised job (or a single process) for ``device``.

    Under DDP a bare "cuda" device is mapped to ``cuda:LOCAL_RANK``, so callers may pass
    the same device string on every rank.
    """
    device = torch.device(device)
    if not is_initialized():
        return DistributedContext(0, 0, 1, device)
    local_rank = int(os.environ.get("LOCAL_RANK", dist.get_rank() % max(torch.cuda.device_count(), 1)))
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return DistributedContext(dist.get_rank(), local_rank, dist.get_world_size(), device)


def barrier() -> None:
    """Wait for every process (no-op on one process)."""
    if is_initialized():
        dist.barrier()


def all_gather_objects(obj) -> list:
    """Every rank's ``obj`` in rank order (``[obj]`` on one process). For small picklable results."""
    if not is_initialized():
        return [obj]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank (``obj`` itself on one process)."""
    if not is_initialized():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]
