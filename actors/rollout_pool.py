"""`RolloutPool`: N rollout actors behind one call, results streamed as they complete.

Why streaming: execution (the sandboxed tests) can start on the first finished prompts
while the rest are still being sampled, so `stream()` yields (request id, completions)
in completion order rather than waiting for the whole batch.  Requests are cut into tasks
of at most `batch_size` sequences and handed to whichever actor has room (two tasks in
flight per actor: one running, one queued), so a faster actor takes more work.

Failures: actors run with Ray's `max_restarts` and `max_task_retries`, so a task whose
actor dies is re-run by Ray on the restarted actor (which first re-syncs to the newest
weights, see rollout_actor.py).  If an actor is gone for good (restarts used up), its
tasks go to the remaining actors and the pool forgets it (later streams and weight syncs
do not wait on it; they fail only when no actor is left).  Each request is answered
exactly once either way.

Weights: `update_weights(state_dict, version)` publishes the state dict in bounded
chunks to the object store and has every actor load it (or takes the handle of weights
a learner already published); for vLLM on GPUs the NCCL route (vllm_nccl.py) is used
instead when configured.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import torch

from actors.config import RolloutConfig
from actors.rollout_actor import RolloutActor
from actors.weights import WeightsHandle, publish
from core.rollout import GenerationRequest, GenerationResult

TASKS_PER_ACTOR = 2
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncStats:
    """One weight update: version, route, seconds end to end, bytes moved per actor."""

    version: int
    route: str
    seconds: float
    num_bytes: int


class RolloutPool:
    def __init__(self, cfg: RolloutConfig, model_path: str, num_actors: int | None = None,
                 start_timeout_s: float = 600):
        import ray

        self.cfg, self.model_path = cfg, str(model_path)
        self._latest: WeightsHandle | None = None
        self._version = 0
        self._nccl = None
        remote = ray.remote(RolloutActor).options(
            num_cpus=cfg.cpus_per_actor, num_gpus=cfg.gpus_per_actor,
            max_restarts=cfg.max_restarts, max_task_retries=cfg.max_restarts)
        self.actors = [remote.remote(self.model_path, cfg) for _ in range(num_actors or cfg.num_actors)]
        try:  # fail here, clearly, if an actor cannot start or cannot be placed
            ray.get([a.pid.remote() for a in self.actors], timeout=start_timeout_s)
        except ray.exceptions.GetTimeoutError:
            for actor in self.actors:
                ray.kill(actor, no_restart=True)
            raise RuntimeError(f"rollout actors did not start within {start_timeout_s:g} s; does the cluster have "
                               f"{cfg.cpus_per_actor:g} CPUs and {cfg.gpus_per_actor:g} GPUs free per actor?") from None

    @property
    def policy_version(self) -> int:
        return self._version

    # ---- generation ---------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """All results, in request order (a convenience over `stream`)."""
        by_id = {r.request_id: r for r in self.stream(requests)}
        return [by_id[q.request_id] for q in requests]

    def stream(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        """Yield one result per request as soon as its task finishes."""
        import ray
        from ray.exceptions import RayActorError

        ids = [r.request_id for r in requests]
        if len(set(ids)) != len(ids):
            raise ValueError("request ids must be unique within one call")
        pending = deque(self._tasks(requests))
        live = list(self.actors)
        load = {id(a): 0 for a in live}
        running: dict = {}  # ObjectRef -> (actor, task)
        while pending or running:
            for actor in list(live):
                while pending and load[id(actor)] < TASKS_PER_ACTOR:
                    task = pending.popleft()
                    running[actor.generate.remote(task, self._latest)] = (actor, task)
                    load[id(actor)] += 1
            if not running:
                raise RuntimeError("every rollout actor is dead; no one left to generate")
            (ref,), _ = ray.wait(list(running), num_returns=1)
            actor, task = running.pop(ref)
            load[id(actor)] -= 1
            try:
                results = ray.get(ref)
            except RayActorError:
                if actor in live:  # restarts used up: drop it, re-send its work elsewhere
                    live.remove(actor)
                    self._forget(actor)
                pending.appendleft(task)
                continue
            yield from results

    def _forget(self, actor) -> None:
        """An actor whose restarts are used up is gone for good."""
        if actor in self.actors:
            self.actors.remove(actor)
            log.warning("a rollout actor died for good (restarts used up); %d left", len(self.actors))

    def _tasks(self, requests: Sequence[GenerationRequest]) -> list[list[GenerationRequest]]:
        """Consecutive requests grouped into tasks of at most batch_size sequences."""
        tasks: list[list[GenerationRequest]] = []
        size = 0
        for r in requests:
            if not tasks or size + r.n > self.cfg.batch_size:
                tasks.append([])
                size = 0
            tasks[-1].append(r)
            size += r.n
        return tasks

    # ---- weights ------------------------------------------------------------------
    def update_weights(self, weights: Mapping[str, torch.Tensor] | torch.nn.Module | WeightsHandle,
                       version: int) -> SyncStats:
        """Bring every actor to `weights` as `version`: a state dict or module, or a
        handle to weights someone already published (a learner group's rank 0)."""
        import ray

        if version <= self._version:
            raise ValueError(f"weights version must increase: {version} <= {self._version}")
        if isinstance(weights, WeightsHandle) and weights.version != version:
            raise ValueError(f"the weights handle holds version {weights.version}, not {version}")
        start = time.perf_counter()
        if self._route(weights) == "nccl":
            from actors.vllm_nccl import NcclWeightSender

            module = weights if isinstance(weights, torch.nn.Module) else None
            if module is None:
                raise TypeError("the NCCL route sends a module's parameters; pass the learner's module")
            self._nccl = self._nccl or NcclWeightSender(self)
            num_bytes = self._nccl.send(module, version)
            self._version = version
            return SyncStats(version, "nccl", time.perf_counter() - start, num_bytes)
        if isinstance(weights, WeightsHandle):
            handle = weights
        else:
            state = weights.state_dict() if isinstance(weights, torch.nn.Module) else weights
            handle = publish(state, version, self.weight_chunk_bytes)
        for actor, ref in [(a, a.update_weights.remote(handle)) for a in self.actors]:
            try:
                ray.get(ref)
            except ray.exceptions.RayActorError:  # restarts used up
                self._forget(actor)
        if not self.actors:
            raise RuntimeError("every rollout actor is dead; no one left to take the weights")
        self._latest, self._version = handle, version
        return SyncStats(version, "object_store", time.perf_counter() - start, handle.num_bytes)

    def sync_from(self, learner) -> SyncStats:
        """Bring every actor to the learner's current policy as the next version: the
        learner publishes its weights (a learner group from its rank 0, so they never
        pass through the driver) and the actors load that handle."""
        version = self._version + 1
        return self.update_weights(learner.publish_policy(version, self.weight_chunk_bytes), version)

    @property
    def weight_chunk_bytes(self) -> int:
        return self.cfg.weight_chunk_mb * 2**20

    def _route(self, weights) -> str:
        """`auto` broadcasts over NCCL only what it can: a module living in this process
        (the learner in the driver) to vLLM actors on GPUs.  A state dict (what a Ray
        learner group hands over) goes through the object store."""
        if self.cfg.weight_sync != "auto":
            return self.cfg.weight_sync
        gpu = self.cfg.backend == "vllm" and self.cfg.gpus_per_actor > 0 and torch.cuda.is_available()
        return "nccl" if gpu and isinstance(weights, torch.nn.Module) else "object_store"

    def actor_versions(self) -> list[int]:
        import ray

        return ray.get([a.policy_version.remote() for a in self.actors])

    def actor_pids(self) -> list[int]:
        import ray

        return ray.get([a.pid.remote() for a in self.actors])

    def shutdown(self) -> None:
        import ray

        for actor in self.actors:
            try:
                ray.get(actor.close.remote(), timeout=30)
            except Exception:  # already dead or stuck: killing it is all that is left
                pass
            ray.kill(actor, no_restart=True)
        self.actors = []
