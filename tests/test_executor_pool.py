"""The Ray executor pool: placement by custom resource, streaming, backpressure, retries."""

import os
import signal
import threading
import time

import pytest

from core.problem import Problem, StdioTest
from executors.config import ExecutorConfig
from executors.judge import Submission
from executors.pool import ExecutorPool, PoolCapacityError

PROBLEM = Problem(id="double", source="t", statement="print 2n", tests=(StdioTest("3\n", "6\n"),))


def _submissions(n, slow=0.0):
    """Even indexes right, odd ones wrong: each result is checkable against its index."""
    subs = []
    for i in range(n):
        answer = "int(input()) * 2" if i % 2 == 0 else "0"
        subs.append(Submission(PROBLEM, f"import time\ntime.sleep({slow})\nprint({answer})\n"))
    return subs


@pytest.fixture(scope="module")
def pool(ray_session):
    p = ExecutorPool(ExecutorConfig(num_actors=2, slots_per_actor=1, timeout_s=5.0))
    yield p
    p.close()


def test_results_in_order_and_correct(pool):
    results = pool.judge(_submissions(24))
    assert [r.passed for r in results] == [i % 2 == 0 for i in range(24)], [(r.verdict, r.error) for r in results]
    assert pool.queue_depth == 0
    # Backpressure bounds the depth: 2 actors x 2 chunks in flight x 4 programs.
    depths = pool.take_queue_depths()
    assert depths["max"] == 16 and 4 <= depths["mean"] <= 16
    assert pool.take_queue_depths() == {"mean": 0.0, "max": 0.0}
    assert "rlimits" in pool.layers()


def test_streaming_reads_input_lazily(pool):
    """Backpressure: the pool pulls only what fits in flight before results come back."""
    pulled = []

    def source():
        for i, sub in enumerate(_submissions(40)):
            pulled.append(i)
            yield sub

    stream = pool.judge_stream(source())
    first_index, _ = next(stream)
    assert len(pulled) < 40
    rest = [i for i, _ in stream]
    assert sorted([first_index, *rest]) == list(range(40))


def test_dead_actor_is_replaced_and_nothing_lost_or_duplicated(pool):
    import ray

    pids = ray.get([a.pid.remote() for a in pool.actors])
    subs = _submissions(24, slow=0.2)
    killer = threading.Timer(0.8, lambda: os.kill(pids[0], signal.SIGKILL))
    killer.start()
    seen = [index for index, result in pool.judge_stream(subs)]
    killer.join()
    assert sorted(seen) == list(range(24))
    assert pool.resubmitted >= 1
    # The restarted actor serves again.
    assert all(r.passed == (i % 2 == 0) for i, r in enumerate(pool.judge(_submissions(8))))


def test_missing_resource_fails_fast(ray_session):
    with pytest.raises(PoolCapacityError, match="resource 'gpu-executor'"):
        ExecutorPool(ExecutorConfig(resource="gpu-executor"))
