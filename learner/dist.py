"""One process group for every learner engine, on CPUs (gloo) or GPUs (NCCL).

Import this module before anything imports deepspeed: DeepSpeed picks its accelerator
once, at import, and on a machine without CUDA we want the CPU accelerator explicitly.

Facts this module encodes (DeepSpeed 0.19):
* Without RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT in the environment
  `deepspeed.init_distributed` goes looking for MPI (mpi4py).  A single process gets
  rank 0 of 1 on a free loopback port; torchrun and the DeepSpeed launcher set them.
  A port picked here leaves the environment once the group is up: this process's store
  holds it, and children inherit the environment.
* On the CPU accelerator, creating DeepSpeed's communication backend JIT-compiles a
  shared-memory all-reduce op (`deepspeed_shm_comm`, 20-60 s on 2 cores, cached under
  TORCH_EXTENSIONS_DIR afterwards).  No environment variable skips it: DS_BUILD_SHM_COMM
  only controls pre-building at install time.  The op is used only by
  `inference_all_reduce` (AutoTP inference), never by training, so we mark it
  incompatible in `deepspeed.ops.__compatible_ops__`, the probe cache DeepSpeed consults
  before building (a module-level dict it keeps so that edits persist).  Training then
  all-reduces through torch.distributed (gloo) as it would anyway.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("DS_ACCELERATOR", "cpu")

import deepspeed  # noqa: E402  (after DS_ACCELERATOR)
from deepspeed.accelerator import get_accelerator  # noqa: E402

SHM_OP = "deepspeed_shm_comm"


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def on_cpu() -> bool:
    return get_accelerator().device_name() == "cpu"


def setup_distributed(verbose: bool = False) -> DistInfo:
    """Initialise torch.distributed through DeepSpeed (idempotent) and describe this rank."""
    if not verbose:
        deepspeed.utils.logger.setLevel(logging.WARNING)
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1")):
        os.environ.setdefault(key, value)
    own_port = "MASTER_PORT" not in os.environ
    if own_port:
        os.environ["MASTER_PORT"] = str(free_port())
    backend = "gloo" if on_cpu() else get_accelerator().communication_backend_name()
    if on_cpu():
        deepspeed.ops.__compatible_ops__[SHM_OP] = False  # see the module docstring
    else:
        get_accelerator().set_device(int(os.environ["LOCAL_RANK"]))
    deepspeed.init_distributed(dist_backend=backend)
    if own_port:
        # the port is bound by this process's store now; a child (subprocess, Ray worker)
        # that inherited it would try to bind it again and fail with EADDRINUSE
        os.environ.pop("MASTER_PORT")
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    return DistInfo(rank, int(os.environ["LOCAL_RANK"]), world, backend, torch.device(get_accelerator().current_device_name()))


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def world_size() -> int:
    """Ranks in the group (1 when not distributed)."""
    return torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1


def barrier() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def all_reduce_mean(value: float) -> float:
    """Mean of a float over ranks (itself when not distributed); every rank must call it."""
    if world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    if torch.distributed.get_backend() == "nccl":
        t = t.cuda()
    torch.distributed.all_reduce(t)
    return float(t.item()) / world_size()
