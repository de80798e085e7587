"""Several processes (``torchrun``): who this process is, and the few collectives that training
(lmrescore/training/trainer.py) and sharded rescoring (lmrescore/rescoring/sharded.py) need. In a
single process every operation is the identity, so one-process runs run exactly the code they
ran before.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the process group uses ``nccl`` on GPUs, ``gloo`` on
CPU; small CPU-side exchanges (losses, random states, carried states) always go over ``gloo``.
A process that dies closes its connections, so the others fail in their next collective instead
of waiting, and ``torchrun`` ends the job with an error.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Dist:
    """This process's place in the job.

    Attributes:
        rank: 0 .. world-1; rank 0 writes every file.
        world: processes in the job.
        local_rank: index on this machine (its GPU).
        group: the ``gloo`` group for CPU-side exchanges (None in one process).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    group: Any = None

    @classmethod
    def from_env(cls, device: str, timeout: timedelta | None = None) -> "Dist":
        """Join the job ``torchrun`` started (its environment), or a single process.

        Args:
            device: ``cuda``: gradients go over ``nccl``; else everything over ``gloo``.
            timeout: how long a collective waits for the slowest process before it fails
                (default: torch's).
        """
        world = world_size()
        if world == 1:
            return cls()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = device.startswith("cuda")
        if cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
        group = dist.new_group(backend="gloo") if cuda else dist.group.WORLD
        return cls(dist.get_rank(), world, local_rank, group)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: str) -> str:
        """This process's device: ``cuda`` becomes ``cuda:<local rank>``."""
        return f"cuda:{self.local_rank}" if device == "cuda" and self.world > 1 else device

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` whose gradients are averaged over the processes (DDP), or itself.

        Unused parameters are allowed (an adaptive output layer skips clusters no target hits).
        """
        if self.world == 1:
            return module
        device_ids = [self.local_rank] if next(module.parameters()).is_cuda else None
        return nn.parallel.DistributedDataParallel(module, device_ids=device_ids,
                                                   find_unused_parameters=True)

    def sum(self, value: float) -> float:
        """``value`` summed over the processes (float64)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t, group=self.group)
        return float(t[0])

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` in every process (picklable plain data and CPU tensors)."""
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def collect(self, obj: Any) -> list[Any] | None:
        """Every process's ``obj``, in rank order, in rank 0; None in the others."""
        if self.world == 1:
            return [obj]
        out: list[Any] | None = [None] * self.world if self.is_main else None
        dist.gather_object(obj, out, dst=0, group=self.group)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier(group=self.group)

    def close(self) -> None:
        """Tear the process group down while the interpreter is whole.

        DDP's reducer holds the group; a wrapped module left to the interpreter's exit frees
        it (and joins gloo's threads) in the middle of finalisation, which can abort the
        process (SIGABRT, "terminate called without an active exception") after a good run.
        So the garbage (a finished ``Trainer`` is a reference cycle) goes first.
        """
        if self.world > 1 and dist.is_initialized():
            gc.collect()
            dist.destroy_process_group()


def world_size() -> int:
    """The number of processes ``torchrun`` started (``WORLD_SIZE``; 1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))
