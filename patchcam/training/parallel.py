"""Where training runs: a GPU when there is one, and data parallelism under torchrun.

    rank, world = parallel.rank_world()      # (0, 1) in a plain run
    dev = parallel.device()                  # cuda:LOCAL_RANK, else cpu
    model = parallel.wrap(net, dev, world)   # DistributedDataParallel when world > 1

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; each process then trains on its share of
every batch (`batch[rank::world]`) and DistributedDataParallel averages the gradients (NCCL
on GPUs, gloo on CPUs). Only rank 0 should print and write files.
"""

from __future__ import annotations

import os

import torch
from torch import nn


def rank_world() -> tuple[int, int]:
    """(rank, world size); joins the process group on the first call under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def device() -> torch.device:
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def wrap(net: nn.Module, dev: torch.device, world: int) -> nn.Module:
    """The module to call in the training loop (the network itself in a plain run)."""
    if world == 1:
        return net
    from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(net, device_ids=[dev.index] if dev.index is not None
                                   else None)
