"""The learner as Ray actors: N DeepSpeed ranks reserved together in one placement group.

On a cluster the learner's GPUs must be held for it before the rollout actors start, and
its ranks must share a node (NCCL over NVLink, one filesystem for checkpoints), so
`LearnerGroup` reserves `learner.num_workers` bundles with STRICT_PACK, starts one
`LearnerWorker` per bundle, and has them form one torch.distributed group (rank 0's node
address, a port rank 0 picked).  The driver then talks to the group as it would to an
in-process `PPOLearner`: `update` splits the batch into equal shards (each rank trains
on its own, DeepSpeed all-reduces the gradients), `policy_state_dict`,
`publish_policy`, `broadcast_policy` and the checkpoint calls run on every rank (they
are collective under ZeRO-3) and return rank 0's answer.  With `learner.num_workers: 0` (the laptop default) the learner stays in
the driver process and none of this is used.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from learner.batches import PPOBatch
from learner.config import LearnerConfig
from learner.ppo import PPOLearner, PPOStats, scored

PLACEMENT_TIMEOUT_S = 120.0


class LearnerWorker:
    """One rank.  Ray gives each actor its own GPU (CUDA_VISIBLE_DEVICES holds one id),
    so every rank's local device is 0."""

    def address(self) -> tuple[str, int]:
        from learner.dist import free_port

        return ray.util.get_node_ip_address(), free_port()

    def setup(self, model_dir: str, cfg: LearnerConfig, rank: int, world: int, master: tuple[str, int],
              seed: int = 0) -> int:
        os.environ.update({"RANK": str(rank), "LOCAL_RANK": "0", "WORLD_SIZE": str(world),
                           "MASTER_ADDR": master[0], "MASTER_PORT": str(master[1])})
        self.learner = PPOLearner.from_pretrained(model_dir, cfg, seed)
        return self.learner.rows_per_step

    def update(self, batch: PPOBatch) -> PPOStats:
        return self.learner.update(batch)

    def policy_state_dict(self):
        return self.learner.policy_state_dict()

    def publish_policy(self, version: int, max_bytes: int):
        return self.learner.publish_policy(version, max_bytes)

    def broadcast_policy(self, target):
        return self.learner.broadcast_policy(target)

    def save_checkpoint(self, root: str, step: int, client_state: dict[str, Any] | None) -> Path:
        return self.learner.save_checkpoint(root, step, client_state)

    def load_checkpoint(self, root: str, tag: str | None):
        return self.learner.load_checkpoint(root, tag)

    def policy_digest(self) -> str:
        """A hash of the policy's full parameters as this rank sees them (ranks of one
        group must agree).  Under ZeRO-3 a rank's own tensors are empty placeholders for
        its shards, so they are gathered first (collective: every rank calls this)."""
        import deepspeed

        engine = self.learner.engines.policy
        parameters = list(engine.module.parameters())
        digest = hashlib.sha256()
        with deepspeed.zero.GatheredParameters(parameters, modifier_rank=None,
                                               enabled=bool(engine.zero_optimization_partition_weights())):
            for parameter in parameters:
                digest.update(parameter.detach().float().cpu().numpy().tobytes())
        return digest.hexdigest()


class LearnerGroup:
    def __init__(self, model_dir: str | Path, cfg: LearnerConfig, seed: int = 0) -> None:
        if cfg.num_workers < 1:
            raise ValueError(f"learner.num_workers must be at least 1 for a learner group, got {cfg.num_workers}")
        self.cfg = cfg
        bundle = {"CPU": cfg.cpus_per_worker, **({"GPU": cfg.gpus_per_worker} if cfg.gpus_per_worker else {})}
        _check_fits(bundle, cfg.num_workers)
        self.placement = placement_group([dict(bundle) for _ in range(cfg.num_workers)], strategy="STRICT_PACK")
        ready, _ = ray.wait([self.placement.ready()], timeout=PLACEMENT_TIMEOUT_S)
        if not ready:
            remove_placement_group(self.placement)
            raise RuntimeError(f"the cluster cannot place the learner: {cfg.num_workers} x {bundle} on one node "
                               f"(learner.num_workers, learner.cpus_per_worker, learner.gpus_per_worker); "
                               f"available: {ray.available_resources()}")
        worker = ray.remote(LearnerWorker)
        self.workers = [worker.options(num_cpus=cfg.cpus_per_worker, num_gpus=cfg.gpus_per_worker,
                                       scheduling_strategy=PlacementGroupSchedulingStrategy(
                                           self.placement, placement_group_bundle_index=i)).remote()
                        for i in range(cfg.num_workers)]
        master = ray.get(self.workers[0].address.remote())
        rows = ray.get([w.setup.remote(str(model_dir), cfg, rank, cfg.num_workers, master, seed)
                        for rank, w in enumerate(self.workers)])
        self.rows_per_step = rows[0] * cfg.num_workers  # whole optimizer steps on every rank

    @property
    def world_size(self) -> int:
        return len(self.workers)

    def update(self, batch: PPOBatch) -> PPOStats:
        """Equal shards, one per rank; the ranks' statistics averaged (token counts summed)."""
        if len(batch) % self.rows_per_step:
            raise ValueError(f"a batch of {len(batch)} sequences does not split into whole optimizer steps on "
                             f"{self.world_size} ranks (a multiple of {self.rows_per_step} is needed)")
        batch = scored(batch, self.cfg)  # before sharding: a shard may cut a group
        share = len(batch) // self.world_size
        stats = ray.get([w.update.remote(batch.select(slice(r * share, (r + 1) * share)))
                         for r, w in enumerate(self.workers)])
        return _combine(stats)

    def policy_state_dict(self):
        return ray.get([w.policy_state_dict.remote() for w in self.workers])[0]

    def publish_policy(self, version: int, max_bytes: int):
        """Rank 0's handle to the weights it put into the object store (the chunks never
        pass through the driver)."""
        return ray.get([w.publish_policy.remote(version, max_bytes) for w in self.workers])[0]

    def broadcast_policy(self, target):
        """Every rank gathers, rank 0 broadcasts to `target`'s rollout actors by NCCL
        (learner/broadcast.py); returns rank 0's `BroadcastStats`.  The weights go from
        rank 0's GPU to the actors' GPUs, never through the driver or the object store."""
        return ray.get([w.broadcast_policy.remote(target) for w in self.workers])[0]

    @property
    def on_gpu(self) -> bool:
        """Whether the ranks hold GPUs (learner.gpus_per_worker): the NCCL route needs them."""
        return self.cfg.gpus_per_worker > 0

    def save_checkpoint(self, root: str | Path, step: int, client_state: dict[str, Any] | None = None) -> Path:
        return ray.get([w.save_checkpoint.remote(str(root), step, client_state) for w in self.workers])[0]

    def load_checkpoint(self, root: str | Path, tag: str | None = None):
        resumed = ray.get([w.load_checkpoint.remote(str(root), tag) for w in self.workers])[0]
        digests = self.policy_digests()
        if len(set(digests)) != 1:
            raise RuntimeError(f"learner ranks disagree after loading {root}: policy digests {digests}")
        return resumed

    def policy_digests(self) -> list[str]:
        """Per rank; data-parallel ranks hold identical weights, so all entries are equal."""
        return ray.get([w.policy_digest.remote() for w in self.workers])

    def close(self) -> None:
        for w in self.workers:
            ray.kill(w)
        remove_placement_group(self.placement)


def _check_fits(bundle: dict[str, float], count: int) -> None:
    """Fail at once when no node of the cluster could ever hold the whole group."""
    need = {k: v * count for k, v in bundle.items()}
    for node in ray.nodes():
        if node.get("Alive") and all(node["Resources"].get(k, 0) >= v for k, v in need.items()):
            return
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    raise RuntimeError(f"no node can hold the learner: {count} x {bundle} on one node is {need} "
                       f"(learner.num_workers, learner.cpus_per_worker, learner.gpus_per_worker); "
                       f"nodes have {[{k: v for k, v in r.items() if k in need} for r in nodes]}")


def _combine(stats: list[PPOStats]) -> PPOStats:
    summed = {"action_tokens", "policy_tokens"}
    values = {}
    for f in fields(PPOStats):
        column = [getattr(s, f.name) for s in stats]
        values[f.name] = sum(column) if f.name in summed else sum(column) / len(column)
    return PPOStats(**values)


def make_learner(model_dir: str | Path, cfg: LearnerConfig, seed: int = 0):
    """In the driver (num_workers 0) or as a placement-grouped Ray actor group."""
    return LearnerGroup(model_dir, cfg, seed) if cfg.num_workers else PPOLearner.from_pretrained(model_dir, cfg, seed)
