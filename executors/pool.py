"""The Ray executor pool: judges programs on executor actors, streaming results back.

Executor actors are placed by a custom Ray resource (`executor.resource`, "executor"
by default) and ask for no CPUs of Ray's own: nodes advertise how many executors they
host (`ray start --resources '{"executor": 16}'`), so CPU-only worker nodes add judging
capacity without touching the GPUs' scheduling.

Guarantees the training loop relies on:
- results stream back as each chunk of programs finishes (`judge_stream`);
- backpressure: at most `max_in_flight` chunks per actor are submitted; the rest of
  the input is not even read until a chunk comes back;
- an actor that dies mid-chunk is restarted by Ray and its chunk re-sent (to the
  least-loaded actor); each submission's result is yielded exactly once.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Iterable, Iterator

import ray
from ray.exceptions import RayActorError, WorkerCrashedError

from core.verdict import ExecutionResult
from executors.config import ExecutorConfig
from executors.judge import Judge, Submission
from core.settings import from_dict

CHUNK_SIZE = 4
MAX_RESUBMITS = 5


class PoolCapacityError(RuntimeError):
    """The cluster lacks the custom resource the executor actors need."""


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class ExecutorActor:
    """One machine's share of judging: a Judge with `slots_per_actor` fork servers."""

    def __init__(self, cfg: dict) -> None:
        self._judge = Judge(from_dict(ExecutorConfig, cfg))

    def judge_chunk(self, chunk: list[tuple[int, Submission]], coverage: bool | None) -> list[tuple[int, ExecutionResult]]:
        results = dict(self._judge.judge_many([sub for _, sub in chunk], coverage))
        return [(index, results[i]) for i, (index, _) in enumerate(chunk)]

    def layers(self) -> tuple[str, ...]:
        return self._judge.layers

    def pid(self) -> int:
        return os.getpid()


class ExecutorPool:
    def __init__(self, cfg: ExecutorConfig, num_actors: int | None = None, max_in_flight: int = 2) -> None:
        self.cfg = cfg
        count = num_actors or cfg.num_actors
        _check_capacity(cfg.resource, count)
        options = {"resources": {cfg.resource: 1}}
        self.actors = [ExecutorActor.options(**options).remote(asdict(cfg)) for _ in range(count)]
        self.max_in_flight = max_in_flight
        self.queue_depth = 0  # submissions handed to the pool and not yet answered
        self.resubmitted = 0
        self._depths: list[int] = []  # queue_depth seen each time a chunk came back

    def layers(self) -> tuple[str, ...]:
        return ray.get(self.actors[0].layers.remote())

    def judge(self, submissions: list[Submission], coverage: bool | None = None) -> list[ExecutionResult]:
        """All results, in input order."""
        results: list[ExecutionResult | None] = [None] * len(submissions)
        for index, result in self.judge_stream(submissions, coverage):
            results[index] = result
        return results  # type: ignore[return-value]

    def judge_stream(self, submissions: Iterable[Submission], coverage: bool | None = None
                     ) -> Iterator[tuple[int, ExecutionResult]]:
        """Yield (input index, result) as chunks complete, reading the input lazily."""
        chunks = _chunks(enumerate(submissions), CHUNK_SIZE)
        in_flight: dict[ray.ObjectRef, tuple[int, list, int]] = {}  # ref -> (actor, chunk, attempts)
        load = [0] * len(self.actors)
        done: set[int] = set()
        exhausted = False
        while True:
            while not exhausted and min(load) < self.max_in_flight:
                chunk = next(chunks, None)
                if chunk is None:
                    exhausted = True
                    break
                self.queue_depth += len(chunk)
                self._submit(chunk, 0, in_flight, load, coverage)
            if not in_flight:
                return
            [ref], _ = ray.wait(list(in_flight), num_returns=1)
            self._depths.append(self.queue_depth)
            actor, chunk, attempts = in_flight.pop(ref)
            load[actor] -= 1
            try:
                answered = ray.get(ref)
            except (RayActorError, WorkerCrashedError) as exc:
                if attempts >= MAX_RESUBMITS:
                    raise RuntimeError(f"executor chunk failed {attempts + 1} times: {exc}") from exc
                self.resubmitted += 1
                self._submit(chunk, attempts + 1, in_flight, load, coverage)
                continue
            for index, result in answered:
                if index not in done:
                    done.add(index)
                    self.queue_depth -= 1
                    yield index, result

    def take_queue_depths(self) -> dict[str, float]:
        """Mean and peak queue depth over the chunks answered since the last call (the
        depth at the end of a batch is always 0, so it is sampled while streaming)."""
        depths, self._depths = self._depths, []
        return {"mean": sum(depths) / len(depths) if depths else 0.0, "max": float(max(depths, default=0))}

    def _submit(self, chunk, attempts, in_flight, load, coverage) -> None:
        actor = min(range(len(self.actors)), key=load.__getitem__)
        ref = self.actors[actor].judge_chunk.remote(chunk, coverage)
        in_flight[ref] = (actor, chunk, attempts)
        load[actor] += 1

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check_capacity(resource: str, count: int) -> None:
    """Fail at once, not by hanging forever on unplaceable actors."""
    available = ray.cluster_resources().get(resource, 0)
    if available < count:
        raise PoolCapacityError(
            f"the Ray cluster offers {available:g} units of resource {resource!r} but the executor pool needs "
            f"{count}; start nodes with --resources '{{\"{resource}\": N}}' (or lower executor.num_actors)")
