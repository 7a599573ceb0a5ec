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

Weights, two routes (`sync_from(learner)` picks one, `rollout.weight_sync`):
- object store (everywhere): the learner publishes its weights in bounded chunks
  (`publish_policy`; a learner group from its rank 0) and every actor loads that handle;
  `update_weights(state_dict | handle, version)` does the same for weights at hand.
  The pool checks at start that a sync can fit in the object store (actors/weights.py).
- NCCL (vLLM on GPUs): the learner broadcasts (`broadcast_policy`): every rank gathers,
  rank 0 sends straight into the vLLM workers (learner/broadcast.py, vllm_nccl.py).

A restarted actor comes back with the weights it was started from.  On the object-store
route every generation task carries the newest handle and the actor re-syncs itself.
On the NCCL route the weights exist only on the learner, so the pool catches up instead:
before dispatching a stream it compares the actors' pids with the last broadcast's, and
a restarted one makes it ask the learner to send the current version again (into a
fresh NCCL group, since the restarted actor's membership died with it).  A result that
still comes back older than the current version (an actor that died mid-stream: Ray
re-ran its task on the restarted process) is dropped and its task re-sent after the
same catch-up.  Catching up needs the learner idle, so it happens only on the thread
that syncs (the trainer's main thread, which also runs the updates); a stream on another
thread (one step off policy prefetches while the learner trains) keeps such results,
labelled with the version that made them, and logs it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import torch

from actors.config import RolloutConfig
from actors.rollout_actor import RolloutActor
from actors.vllm_nccl import BroadcastTarget
from actors.weights import WeightsHandle, checkpoint_bytes, ensure_fits, publish, roomiest_store
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
        self._learner = None  # set by a sync over NCCL: who can send the current weights again
        self._sync_thread: int | None = None
        self._pids: tuple[int, ...] = ()  # the actors' pids at the last broadcast
        self._broadcasts = 0  # broadcasts so far: a task sent before the latest one may hold stale answers
        self.stale_resent = 0  # tasks answered from older weights and sent again (NCCL route)
        if self._expected_route() == "object_store":
            self._check_store()
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
        if self._learner is not None:
            self._catch_up()
        live = list(self.actors)
        load = {id(a): 0 for a in live}
        running: dict = {}  # ObjectRef -> (actor, task, broadcasts when it was sent)
        resent = 0
        while pending or running:
            for actor in list(live):
                while pending and load[id(actor)] < TASKS_PER_ACTOR:
                    task = pending.popleft()
                    running[actor.generate.remote(task, self._latest)] = (actor, task, self._broadcasts)
                    load[id(actor)] += 1
            if not running:
                raise RuntimeError("every rollout actor is dead; no one left to generate")
            (ref,), _ = ray.wait(list(running), num_returns=1)
            actor, task, sent_at = running.pop(ref)
            load[id(actor)] -= 1
            try:
                results = ray.get(ref)
            except RayActorError:
                if actor in live:  # restarts used up: drop it, re-send its work elsewhere
                    live.remove(actor)
                    self._forget(actor)
                pending.appendleft(task)
                continue
            if self._stale(results, sent_at):
                resent += 1
                self.stale_resent += 1
                if resent > self.cfg.max_restarts * max(1, len(self.actors)) + 1:
                    raise RuntimeError(f"rollout actors keep answering with weights older than version "
                                       f"{self._version} after being sent it again")
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
        """Bring every actor to `weights` as `version` through the object store: a state
        dict or module (published here), or a handle to weights someone already
        published (a learner group's rank 0)."""
        import ray

        self._check_next(version)
        if isinstance(weights, WeightsHandle) and weights.version != version:
            raise ValueError(f"the weights handle holds version {weights.version}, not {version}")
        start = time.perf_counter()
        self._latest = None  # let the old version leave the store before the new one arrives
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
        """Bring every actor to the learner's current policy as the next version, by the
        route `route_for(learner)` names: the learner publishes its weights into the
        object store (a learner group from its rank 0, so they never pass through the
        driver) and the actors load that handle, or it broadcasts them by NCCL."""
        version = self._version + 1
        if self.route_for(learner) == "object_store":
            self._latest = None  # the old version leaves the store before the learner writes the new one
            return self.update_weights(learner.publish_policy(version, self.weight_chunk_bytes), version)
        self._check_next(version)
        start = time.perf_counter()
        stats = self._broadcast(learner, version)
        self._latest, self._version = None, version
        return SyncStats(version, "nccl", time.perf_counter() - start, stats.num_bytes)

    def route_for(self, learner) -> str:
        """The route a sync from `learner` takes (`choose_route`)."""
        return choose_route(self.cfg, _learner_on_gpu(learner))

    @property
    def weight_chunk_bytes(self) -> int:
        return self.cfg.weight_chunk_mb * 2**20

    def _expected_route(self) -> str | None:
        """The route known before any learner is seen (None: auto decides at the first sync)."""
        routes = {choose_route(self.cfg, True), choose_route(self.cfg, False)}
        return routes.pop() if len(routes) == 1 else None

    def _check_store(self) -> None:
        """Refuse at start a job whose syncs can never fit the object store."""
        need = checkpoint_bytes(self.model_path, self.cfg.dtype)
        if need is not None:
            ensure_fits(need, self.weight_chunk_bytes, f"at least one {self.cfg.dtype} copy of the policy in "
                        f"{self.model_path}", space_of=roomiest_store)

    def _check_next(self, version: int) -> None:
        if version <= self._version:
            raise ValueError(f"weights version must increase: {version} <= {self._version}")

    # ---- the NCCL route: broadcasts, and catching restarted actors up ----------------
    def _broadcast(self, learner, version: int):
        """Have `learner` send its weights as `version` to every live actor."""
        pids = self._live_pids()
        target = BroadcastTarget(tuple(self.actors), self.cfg.vllm_tensor_parallel_size, version, pids,
                                 self.cfg.dtype)
        stats = learner.broadcast_policy(target)
        self._learner, self._sync_thread, self._pids = learner, threading.get_ident(), pids
        self._broadcasts += 1
        return stats

    def _catch_up(self) -> bool:
        """Re-send the current version if an actor restarted since the last broadcast;
        True if it did.  Only on the syncing thread (see the module docstring)."""
        if self._live_pids() == self._pids:
            return False
        if threading.get_ident() != self._sync_thread:
            log.warning("a rollout actor restarted; it samples with its start-up weights until the next sync "
                        "(this stream runs beside the learner, which cannot send version %d now)", self._version)
            return False
        log.warning("a rollout actor restarted; sending it version %d again", self._version)
        self._broadcast(self._learner, self._version)
        return True

    def _stale(self, results: list[GenerationResult], sent_at: int) -> bool:
        """On the NCCL route: results from weights older than the current version, which
        the pool has brought up to date since (it then re-sends their task): just now, or
        by a catch-up after the task was sent (a restarted actor ran it before that)."""
        if self._learner is None:
            return False
        versions = {c.policy_version for r in results for c in r.completions}
        if min(versions, default=self._version) >= self._version:
            return False
        if self._catch_up() or self._broadcasts > sent_at:
            return True
        log.warning("keeping results sampled with weights version %s (the current one is %d)",
                    sorted(versions), self._version)
        return False

    def _live_pids(self) -> tuple[int, ...]:
        """The actors' pids; an actor whose restarts are used up is forgotten."""
        import ray

        pids = []
        for actor, ref in [(a, a.pid.remote()) for a in list(self.actors)]:
            try:
                pids.append(ray.get(ref))
            except ray.exceptions.RayActorError:
                self._forget(actor)
        if not self.actors:
            raise RuntimeError("every rollout actor is dead; no one left to take the weights")
        return tuple(pids)

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


def choose_route(cfg: RolloutConfig, learner_on_gpu: bool) -> str:
    """`rollout.weight_sync`; `auto` broadcasts by NCCL what it can (vLLM actors on GPUs
    and a learner on GPUs, whose rank 0 is the sender) and uses the object store otherwise."""
    if cfg.weight_sync != "auto":
        return cfg.weight_sync
    gpu_vllm = cfg.backend == "vllm" and cfg.gpus_per_actor > 0
    return "nccl" if gpu_vllm and learner_on_gpu else "object_store"


def _learner_on_gpu(learner) -> bool:
    """A learner group says so (learner.gpus_per_worker); an in-process learner by its device."""
    on_gpu = getattr(learner, "on_gpu", None)
    if on_gpu is not None:
        return bool(on_gpu)
    device = getattr(learner, "device", None)
    return device is not None and torch.device(device).type == "cuda"
