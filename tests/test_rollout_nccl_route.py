"""The rollout pool's side of the NCCL weight route, on CPU with transformers actors.

NCCL itself cannot run here, so a loopback learner stands in for the learner's
`broadcast_policy`: it records every target the pool hands it and delivers those weights
through the object store, which is what the broadcast would have delivered.  What is
checked is the pool's part: which route a sync takes, who is asked, with which actors,
pids, ranks and version, and how a restarted actor is caught up."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
import torch
from transformers import AutoModelForCausalLM

from actors.config import RolloutConfig
from actors.consistency import perturbed_state
from actors.rollout_pool import RolloutPool, choose_route
from actors.weights import publish
from core.rollout import GenerationRequest, SamplingSettings
from learner.broadcast import BroadcastStats

# a quarter CPU each: other modules' pools may still be alive in the 2-CPU Ray session
CFG = RolloutConfig(num_actors=2, cpus_per_actor=0.25, batch_size=4, max_restarts=2, weight_sync="nccl",
                    vllm_tensor_parallel_size=2)
GREEDY = SamplingSettings(temperature=0, max_new_tokens=8)


def batch(count: int, tag: str, n: int = 1, sampling: SamplingSettings = GREEDY) -> list[GenerationRequest]:
    return [GenerationRequest(tuple(range(30 + k, 40 + k)), n=n, request_id=f"{tag}{k}", sampling=sampling)
            for k in range(count)]


class LoopbackLearner:
    """A learner on the NCCL route, as far as the pool can tell."""

    device = torch.device("cpu")

    def __init__(self, model_dir):
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        self.targets = []

    def broadcast_policy(self, target):
        import ray

        self.targets.append(target)
        handle = publish(self.model.state_dict(), target.version)
        ray.get([a.update_weights.remote(handle) for a in target.actors])
        return BroadcastStats(target.version, handle.num_tensors, handle.num_bytes, 0.0, True)

    def publish_policy(self, version, max_bytes):
        raise AssertionError("the NCCL route must not go through the object store")


@pytest.fixture(scope="module")
def pool(ray_session, tiny_model_dir):
    p = RolloutPool(CFG, str(tiny_model_dir), start_timeout_s=120)
    yield p
    p.shutdown()


def test_auto_picks_nccl_only_for_vllm_on_gpus_with_a_learner_on_gpus():
    gpu = RolloutConfig(backend="vllm", gpus_per_actor=1.0)
    assert choose_route(gpu, learner_on_gpu=True) == "nccl"
    assert choose_route(gpu, learner_on_gpu=False) == "object_store"
    assert choose_route(RolloutConfig(backend="vllm"), learner_on_gpu=True) == "object_store"  # vLLM on CPUs
    assert choose_route(RolloutConfig(gpus_per_actor=1.0), learner_on_gpu=True) == "object_store"  # transformers
    assert choose_route(dataclasses.replace(gpu, weight_sync="object_store"), True) == "object_store"
    assert choose_route(RolloutConfig(weight_sync="nccl"), False) == "nccl"  # as configured


def test_a_sync_asks_the_learner_to_broadcast_to_every_actor(pool, tiny_model_dir):
    learner = LoopbackLearner(tiny_model_dir)
    perturbed_state(learner.model, scale=0.1, seed=3)
    stats = pool.sync_from(learner)
    assert stats.route == "nccl" and stats.version == pool.policy_version == 1
    (target,) = learner.targets
    assert target.actors == tuple(pool.actors) and target.actor_pids == tuple(pool.actor_pids())
    assert target.version == 1 and target.tensor_parallel_size == 2 and target.dtype == "float32"
    assert target.rank_offsets() == [1, 3] and target.world_size == 5  # learner rank 0, 2 workers per actor
    assert stats.num_bytes == sum(t.numel() * 4 for t in learner.model.state_dict().values())
    assert pool._latest is None  # nothing of this route is in the object store for generation tasks
    reqs = batch(4, "s")
    for q, r in zip(reqs, pool.generate(reqs)):
        expected = learner.model.generate(torch.tensor([q.prompt_ids]), max_new_tokens=8, do_sample=False)
        assert list(r.completions[0].token_ids) == expected[0, len(q.prompt_ids):].tolist()
        assert r.completions[0].policy_version == 1
    assert len(learner.targets) == 1  # no actor restarted: generating asked nothing more


@pytest.mark.slow
def test_a_restarted_actor_is_caught_up_before_it_samples(ray_session, pool, tiny_model_dir):
    import ray

    learner = LoopbackLearner(tiny_model_dir)
    perturbed_state(learner.model, scale=0.1, seed=4)
    version = pool.sync_from(learner).version
    pids = pool.actor_pids()
    ray.kill(pool.actors[0], no_restart=False)
    _await_new_pid(pool, 0, pids[0])
    # a stream beside the learner (another thread, as one step off policy prefetches) may not
    # ask it for weights: the restarted actor's answers keep the version that made them
    seen = {}
    worker = threading.Thread(target=lambda: seen.update(
        {r.request_id: r for r in pool.stream(batch(8, "t", n=2, sampling=SamplingSettings(1.0, 1.0, 8, seed=1)))}))
    worker.start()
    worker.join()
    assert len(learner.targets) == 1 and {c.policy_version for r in seen.values() for c in r.completions} == {0, version}
    # on the syncing thread the pool notices the new pid and has the learner send the current version again,
    # before it dispatches anything: no task has to be answered twice
    resent = pool.stale_resent
    results = pool.generate(batch(8, "u"))
    assert pool.stale_resent == resent
    assert len(learner.targets) == 2
    refresh = learner.targets[-1]
    assert refresh.version == version and refresh.actor_pids == tuple(pool.actor_pids()) != tuple(pids)
    assert {c.policy_version for r in results for c in r.completions} == {version}
    assert pool.actor_versions() == [version, version]


@pytest.mark.slow
def test_an_actor_dying_mid_stream_has_its_stale_answers_resent(ray_session, pool, tiny_model_dir):
    import ray

    learner = LoopbackLearner(tiny_model_dir)
    version = pool.sync_from(learner).version
    calls = len(learner.targets)
    reqs = batch(16, "m", n=2, sampling=SamplingSettings(1.0, 1.0, 24, seed=2))
    stream = pool.stream(reqs)
    seen = [next(stream)]
    ray.kill(pool.actors[1], no_restart=False)  # holds tasks in flight: Ray re-runs them on the new process
    seen += list(stream)
    assert sorted(r.request_id for r in seen) == sorted(q.request_id for q in reqs)
    assert {c.policy_version for r in seen for c in r.completions} == {version}
    assert len(learner.targets) == calls + 1 and learner.targets[-1].version == version
    assert pool.stale_resent > 0  # the re-run tasks' answers from the start-up weights were dropped


def _await_new_pid(pool, index: int, old: int, timeout_s: float = 60) -> None:
    import ray

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if ray.get(pool.actors[index].pid.remote(), timeout=timeout_s) != old:
                return
        except ray.exceptions.RayActorError:
            pass
        time.sleep(0.2)
    raise AssertionError("the killed actor did not come back")
