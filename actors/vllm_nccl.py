"""GPU only: policy weights from the learner's rank 0 into vLLM rollout engines by NCCL
broadcast, with vLLM's own weight-transfer engine (the route of vLLM's RLHF examples).

Two halves meet here:
- `BroadcastTarget` is what the rollout pool hands the learner for one broadcast: the
  rollout actors' Ray handles, their tensor-parallel size, the version, and the actors'
  process ids (a changed pid is a restarted actor, whose NCCL group is gone).  It lives
  on this side of the boundary so that the pool never imports the learner.
- `NcclWeightSender` runs in the learner's rank 0: it adapts our rollout actors to the
  client protocol vLLM's `NCCLTrainerWeightTransferEngine` drives
  (`init_weight_transfer_engine`, `start_weight_update`, `update_weights`,
  `finish_weight_update`) and lets that engine do the rendezvous, the packed broadcast
  and the worker-side load.  The weights come from a *source* with vLLM's WeightSource
  protocol (`metadata()` and a fresh iteration of (name, tensor) pairs per round);
  learner/broadcast.py supplies one that gathers ZeRO-3 parameters module by module.

One thing vLLM's Ray client cannot do for us: our actors are independent engines, not
data-parallel ranks of one engine, so each actor's workers need their own rank offset in
the shared NCCL group (the learner is rank 0, actor i's workers start at
1 + i * tensor_parallel_size; `BroadcastTarget.rank_offsets`).

Kept thin on purpose: nothing here can run without CUDA and vLLM, so it holds no logic a
CPU test could not reach through the target (offsets, world size) and the client (which
actor gets which call).  Written against vLLM's trainer-side weight-transfer API
(`NCCLTrainerInitInfo`, `NCCLTrainerWeightTransferEngine.trainer_init(info, client=,
source=)`, `send_weights()`); not yet run on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BroadcastTarget:
    """The rollout side of one NCCL broadcast.

    actors                 Ray handles of the vLLM rollout actors, in pool order
    tensor_parallel_size   vLLM workers per actor (rollout.vllm_tensor_parallel_size)
    version                the policy version the actors take on when it lands
    actor_pids             the actors' process ids when the target was made: the NCCL
                           group is re-formed whenever they differ from the last
                           broadcast's (an actor restarted and lost its group)
    dtype                  what goes over the wire: the rollout's dtype (rollout.dtype,
                           which follows model.dtype)
    transport              "nccl" (vLLM's engine), or "dry_run" (every learner rank
                           gathers as for NCCL; rank 0 hashes the tensors instead of
                           sending them: CPU tests, and a learner's side checked before
                           any vLLM actor exists)
    """

    actors: tuple[Any, ...]
    tensor_parallel_size: int
    version: int
    actor_pids: tuple[int, ...]
    dtype: str = "bfloat16"
    transport: str = "nccl"

    def __post_init__(self) -> None:
        if self.tensor_parallel_size < 1:
            raise ValueError(f"tensor_parallel_size must be at least 1, got {self.tensor_parallel_size}")
        if len(self.actor_pids) != len(self.actors):
            raise ValueError(f"{len(self.actors)} actors but {len(self.actor_pids)} pids")

    @property
    def world_size(self) -> int:
        """The learner's rank 0 plus every vLLM worker of every actor."""
        return 1 + self.tensor_parallel_size * len(self.actors)

    def rank_offsets(self) -> list[int]:
        """NCCL rank of each actor's first worker (its workers follow it)."""
        return [1 + i * self.tensor_parallel_size for i in range(len(self.actors))]


class ActorsClient:
    """vLLM's `VLLMWeightSyncClient` protocol over our rollout actors: every call goes to
    every actor (`RolloutActor.nccl_call`) and waits for all of them."""

    def __init__(self, target: BroadcastTarget):
        self.actors, self.offsets = list(target.actors), target.rank_offsets()
        self.version: int | None = None

    def _all(self, method: str, payloads: list[Any] | None = None, version: int | None = None) -> None:
        import ray

        payloads = payloads or [None] * len(self.actors)
        ray.get([a.nccl_call.remote(method, p, version) for a, p in zip(self.actors, payloads)])

    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        self._all("init_weight_transfer_engine",
                  [{"init_info": {**init_info, "rank_offset": offset}} for offset in self.offsets])

    def start_weight_update(self) -> None:
        self._all("start_weight_update")

    def update_weights(self, update_info: Any) -> None:
        self._all("update_weights", [{"update_info": update_info}] * len(self.actors))

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        self._all("finish_weight_update", version=self.version)


class NcclWeightSender:
    """Learner rank 0: one NCCL group with the target's actors; `send(version)` pushes one
    round of the source through it.  A new target (other actors or pids) needs a new
    sender: the caller closes this one and opens another."""

    def __init__(self, target: BroadcastTarget, source: Any):
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("rollout.weight_sync nccl needs CUDA in the learner's rank 0 process; "
                               "use rollout.weight_sync: object_store on CPUs")
        from vllm.distributed.weight_transfer.nccl_engine import NCCLTrainerInitInfo, NCCLTrainerWeightTransferEngine
        from vllm.utils.network_utils import get_ip, get_open_port

        self.client = ActorsClient(target)
        info = NCCLTrainerInitInfo(master_address=get_ip(), master_port=get_open_port(),
                                   world_size=target.world_size, rank=0)
        self.engine = NCCLTrainerWeightTransferEngine.trainer_init(info, client=self.client, source=source)

    def send(self, version: int) -> dict[str, Any]:
        self.client.version = version
        self.engine.send_weights()
        return {}

    def close(self) -> None:
        self.engine.shutdown()
