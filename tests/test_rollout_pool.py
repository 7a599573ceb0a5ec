"""Ray rollout actors: streaming, weight sync through the object store, dead actors."""

from __future__ import annotations

import collections
import dataclasses

import pytest
import torch
from transformers import AutoModelForCausalLM

from actors.config import RolloutConfig
from actors.consistency import logprob_gap, perturbed_state
from actors.rollout_pool import RolloutPool
from actors.weights import publish
from core.rollout import GenerationRequest, SamplingSettings

# half a CPU each: the module pool and the one a test starts fit the 2-CPU Ray session together
CFG = RolloutConfig(num_actors=2, cpus_per_actor=0.5, batch_size=6, weight_chunk_mb=1, max_restarts=2)
SAMPLED = SamplingSettings(temperature=0.8, top_p=0.9, max_new_tokens=48, seed=0)


def batch(count: int, n: int = 3, sampling: SamplingSettings = SAMPLED, tag: str = "q") -> list[GenerationRequest]:
    return [GenerationRequest(tuple(range(30 + k % 5, 36 + k % 7)), n=n, request_id=f"{tag}{k}",
                              sampling=dataclasses.replace(sampling, seed=k)) for k in range(count)]


@pytest.fixture(scope="module")
def pool(ray_session, tiny_model_dir):
    p = RolloutPool(CFG, str(tiny_model_dir))
    yield p
    p.shutdown()


def test_stream_answers_each_request_once_as_tasks_finish(pool):
    reqs = batch(10)
    stream = pool.stream(reqs)
    first = next(stream)  # available before the rest of the batch has been generated
    rest = list(stream)
    ids = [first.request_id] + [r.request_id for r in rest]
    assert sorted(ids) == sorted(q.request_id for q in reqs) and len(ids) == len(set(ids))
    assert all(len(r.completions) == 3 for r in [first, *rest])
    # seeded requests come out the same whichever actor serves them
    again = {r.request_id: r for r in pool.stream(reqs[::-1])}
    for r in [first, *rest]:
        assert [c.token_ids for c in again[r.request_id].completions] == [c.token_ids for c in r.completions]


def test_weight_sync_through_object_store(pool, tiny_model_dir):
    learner = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    greedy = batch(4, n=1, sampling=SamplingSettings(temperature=0, max_new_tokens=12))
    before = pool.generate(greedy)
    state = perturbed_state(learner, scale=0.1)
    stats = pool.update_weights(state, version=pool.policy_version + 1)
    assert stats.route == "object_store" and stats.num_bytes >= 2_000_000 and stats.seconds > 0
    assert len(pool._latest.chunks) >= 3  # 1 MiB chunks of a ~2.7 MB model
    assert pool.actor_versions() == [stats.version] * 2
    after = pool.generate(greedy)
    assert [r.completions for r in after] != [r.completions for r in before]
    for q, r in zip(greedy, after):
        out = learner.generate(torch.tensor([q.prompt_ids]), max_new_tokens=12, do_sample=False)
        expected = out[0, len(q.prompt_ids):].tolist()
        assert list(r.completions[0].token_ids) == expected
        assert r.completions[0].policy_version == stats.version
    assert logprob_gap(learner, greedy, after).max < 1e-4
    with pytest.raises(ValueError):
        pool.update_weights(state, version=stats.version)
    # Weights a learner already published (a learner group's rank 0 does) are taken as they are.
    handle = publish(learner.state_dict(), stats.version + 1, pool.weight_chunk_bytes)
    with pytest.raises(ValueError, match="holds version"):
        pool.update_weights(handle, version=stats.version + 2)
    synced = pool.update_weights(handle, version=stats.version + 1)
    assert pool._latest is handle and synced.num_bytes == handle.num_bytes
    assert pool.actor_versions() == [synced.version] * 2
    for q, r in zip(greedy, pool.generate(greedy)):
        out = learner.generate(torch.tensor([q.prompt_ids]), max_new_tokens=12, do_sample=False)
        assert list(r.completions[0].token_ids) == out[0, len(q.prompt_ids):].tolist()


@pytest.mark.slow
def test_killed_actor_is_restarted_resynced_and_its_requests_resent(ray_session, pool, tiny_model_dir):
    import ray

    learner = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    version = pool.policy_version + 1
    pool.update_weights(perturbed_state(learner, seed=5), version=version)
    pids = pool.actor_pids()
    reqs = batch(16, tag="k")
    stream = pool.stream(reqs)
    seen = [next(stream).request_id]
    ray.kill(pool.actors[0], no_restart=False)  # mid-batch: it holds tasks in flight
    seen += [r.request_id for r in stream]
    assert collections.Counter(seen) == collections.Counter(q.request_id for q in reqs)
    new_pids = pool.actor_pids()
    assert new_pids[0] != pids[0] and new_pids[1] == pids[1]
    # the restarted actor came back with the start-up weights and re-synced before sampling
    results = pool.generate(batch(4, tag="after"))
    assert {c.policy_version for r in results for c in r.completions} == {version}
    assert pool.actor_versions() == [version, version]


@pytest.mark.slow
def test_actor_gone_for_good_its_work_moves_to_the_others(ray_session, tiny_model_dir):
    import ray

    # A quarter CPU each: the module's `pool` (2 x 0.5) is alive too, on a 2-CPU Ray.
    p = RolloutPool(dataclasses.replace(CFG, num_actors=3, cpus_per_actor=0.25, max_restarts=0), str(tiny_model_dir),
                    start_timeout_s=120)
    try:
        reqs = batch(12, tag="g")
        stream = p.stream(reqs)
        seen = [next(stream).request_id]
        ray.kill(p.actors[2], no_restart=True)  # mid-stream: it holds tasks in flight
        seen += [r.request_id for r in stream]
        assert collections.Counter(seen) == collections.Counter(q.request_id for q in reqs)
        assert len(p.actors) == 2  # forgotten by the pool, not only by that stream
        gone = p.actors[1]
        ray.kill(gone, no_restart=True)  # between calls: the weight sync finds out
        _await_death(gone)
        state = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
        p.update_weights(state, 1)
        assert len(p.actors) == 1 and p.actor_versions() == [1]
        again = batch(4, tag="h")
        assert sorted(r.request_id for r in p.stream(again)) == sorted(q.request_id for q in again)
    finally:
        p.shutdown()


def _await_death(actor, timeout_s: float = 30) -> None:
    """ray.kill is asynchronous: wait until calls to the actor fail."""
    import time

    import ray

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ray.get(actor.pid.remote(), timeout=timeout_s)
        except ray.exceptions.RayActorError:
            return
        time.sleep(0.1)
    raise AssertionError("the killed actor still answers")


def test_the_old_version_leaves_the_store_before_the_new_one_is_written(pool, tiny_model_dir, monkeypatch):
    """A sync needs room for one copy of the policy, not two: the pool lets go of the
    version the actors hold before the next one is published."""
    import actors.rollout_pool as rollout_pool

    held_while_publishing = []
    real = rollout_pool.publish

    def recording_publish(state, version, max_bytes):
        held_while_publishing.append(pool._latest)
        return real(state, version, max_bytes)

    monkeypatch.setattr(rollout_pool, "publish", recording_publish)
    state = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).state_dict()
    pool.update_weights(state, pool.policy_version + 1)
    assert pool._latest is not None
    pool.update_weights(state, pool.policy_version + 1)

    class Learner:  # publishes as a learner group's rank 0 would
        def publish_policy(self, version, max_bytes):
            held_while_publishing.append(pool._latest)
            return real(state, version, max_bytes)

    pool.sync_from(Learner())
    assert held_while_publishing == [None, None, None]
