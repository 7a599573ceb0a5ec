"""A rollout actor and an executor actor die mid-iteration: Ray restarts them, their work
is redone, and the iteration completes with every sample exactly once."""

import collections
import os
import signal
import threading
import time

import pytest

from cluster.config import load_config
from cluster.trainer import PPOIteration
from problems.load import load_problems

SAMPLES = 4


@pytest.mark.slow
def test_actors_killed_mid_iteration_lose_and_duplicate_nothing(ray_session, tiny_model_dir):
    import ray
    from transformers import AutoTokenizer

    from actors.rollout_pool import RolloutPool
    from executors.pool import ExecutorPool
    from learner.group import make_learner

    cfg = load_config(None, ["problems_per_iteration=8", f"rollout.samples_per_prompt={SAMPLES}",
                             "rollout.max_new_tokens=48", "rollout.batch_size=8", "learner.minibatch_size=16",
                             "learner.micro_batch_size=8", "executor.num_actors=2", "executor.slots_per_actor=1"])
    problems = load_problems("bundled:rl:0").problems[:64]
    rollout = RolloutPool(cfg.rollout, str(tiny_model_dir))
    executors = ExecutorPool(cfg.executor)
    learner = make_learner(tiny_model_dir, cfg.learner)
    iteration = PPOIteration.create(cfg, problems, AutoTokenizer.from_pretrained(tiny_model_dir), rollout,
                                    executors, learner)
    try:
        rollout_pid = rollout.actor_pids()[0]
        executor_pids = ray.get([a.pid.remote() for a in executors.actors])

        def kill_once_results_flow() -> None:
            # The first completions are being judged: 3 of the 4 rollout tasks are still
            # to come, and the executors are busy.
            deadline = time.monotonic() + 60
            while executors.queue_depth == 0 and time.monotonic() < deadline:
                time.sleep(0.002)
            os.kill(executor_pids[0], signal.SIGKILL)
            os.kill(rollout_pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_once_results_flow)
        killer.start()
        collected = iteration.collect(iteration.draw(0))
        killer.join()
        per_problem = collections.Counter(s.problem_id for s in collected.samples)
        assert sorted(per_problem) == sorted(collected.draw.ids)
        assert set(per_problem.values()) == {SAMPLES}
        assert rollout.actor_pids()[0] != rollout_pid
        assert ray.get(executors.actors[0].pid.remote()) != executor_pids[0]
        # The loop goes on with the replaced actors (the restarted rollout actor re-synced).
        metrics = iteration.run(1)
        assert metrics["policy_lag"] == 0 and 0.0 <= metrics["pass_rate"] <= 1.0
    finally:
        iteration.close()
        learner.close()
        rollout.shutdown()
        executors.close()
