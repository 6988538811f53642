"""Data parallelism with PyTorch's own tools: one process per device, started by ``torchrun``.

    torchrun --nproc_per_node 8 -m instructpt pretrain ... --train.parallel fsdp
    torchrun --nnodes 4 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 -m instructpt pretrain ...

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) everything runs in this one process. Backends: NCCL on
GPUs, gloo on CPU (the tests run two CPU processes). ``ddp`` replicates the model; ``fsdp`` shards parameters,
gradients and optimizer state with FSDP2's ``fully_shard``, one unit per decoder layer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

_OWN_GROUP = False  # init() created the process group (so shutdown() may destroy it)


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int
    device: Any

    @property
    def main(self) -> bool:
        return self.rank == 0


def init(device: str = "auto") -> World:
    """Join the process group ``torchrun`` set up (if any) and pick this process's device."""
    import torch
    import torch.distributed as dist

    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    dev = (
        torch.device(f"cuda:{local}")
        if cuda
        else torch.device("cpu" if device in ("auto", "cuda") else device)
    )
    if cuda:
        torch.cuda.set_device(dev)
    global _OWN_GROUP
    if size > 1 and not dist.is_initialized():
        # a generous timeout: one rank may prepare data (tokenize a collection) while the others wait at a barrier
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(hours=2))
        _OWN_GROUP = True
    return World(rank, size, local, dev)


def wrap(model: Any, world: World, strategy: str) -> Any:
    """``model`` made data-parallel over ``world`` (returned unchanged in a single process)."""
    if world.size == 1:
        return model
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for layer in _layers(model):
            fully_shard(layer)
        fully_shard(model)
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [world.device.index] if world.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def _layers(model: Any) -> list[Any]:
    inner = getattr(model, "model", model)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise ValueError(f"cannot find the decoder layers of {type(model).__name__} to shard")
    return list(layers)


def unwrap(model: Any) -> Any:
    return getattr(model, "module", model)


def all_mean(value: float, world: World) -> float:
    """The mean of ``value`` over every rank."""
    if world.size == 1:
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=world.device)
    dist.all_reduce(t)
    return float(t.item()) / world.size


def barrier(world: World) -> None:
    """Wait for every rank (nothing to wait for in one process)."""
    if world.size > 1:
        import torch.distributed as dist

        dist.barrier()


def shutdown() -> None:
    """Leave the process group, if :func:`init` joined it (one that someone else set up in this process stays)."""
    import torch.distributed as dist

    global _OWN_GROUP
    if _OWN_GROUP and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _OWN_GROUP = False
