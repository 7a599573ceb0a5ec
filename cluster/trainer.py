"""One PPO iteration with CCCS and FGO.

curriculum start points -> prompts -> rollouts (streamed) -> sandboxed execution
(starting as each prompt's samples arrive) -> rewards and FGO masks -> learner update
-> weight sync to the rollout actors -> curriculum update.  Optionally one step off
policy: the next batch generates while the learner trains on this one.
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass

from cluster.config import TrainConfig
from core.problem import Problem
from core.verdict import COMPILE_ERROR, SANDBOX_ERROR
from curriculum.fgo import fgo_mask
from curriculum.prompt import build_prompt
from curriculum.state import CurriculumState, StageResult, StartAssignment
from executors.judge import Submission
from learner.batches import PPOBatch


class DataOrder:
    """Problems in a seeded order, reshuffled each epoch; resumable exactly."""

    def __init__(self, ids: list[str], seed: int) -> None:
        self.ids, self.seed, self.epoch, self.position = list(ids), seed, 0, 0
        self._order = self._shuffled()

    def _shuffled(self) -> list[str]:
        order = list(self.ids)
        random.Random(f"{self.seed}/{self.epoch}").shuffle(order)
        return order

    def next(self, count: int) -> list[str]:
        """`count` distinct ids.  A batch that straddles two epochs skips the new epoch's
        occurrence of an id it already holds (that problem was just visited)."""
        if count > len(self.ids):
            raise ValueError(f"a batch of {count} problems needs at least {count} distinct problems, "
                             f"the pool has {len(self.ids)}")
        batch: list[str] = []
        while len(batch) < count:
            if self.position == len(self._order):
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._shuffled()
            pid = self._order[self.position]
            self.position += 1
            if pid not in batch:
                batch.append(pid)
        return batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = state["epoch"], state["position"]
        self._order = self._shuffled()


@dataclass
class Sample:
    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    reward: float
    keep: list[bool] | None
    verdict: str
    problem_id: str
    stage: int
    difficulty: str
    policy_version: int
    logprobs: tuple[float, ...]  # the sampler's, per completion token (learner.old_logprobs: rollout)


@dataclass
class Draw:
    """The problems and start points of one batch, drawn before it is generated."""

    step: int
    ids: list[str]
    assignments: dict[str, StartAssignment]

    def state_dict(self) -> dict:
        return {"step": self.step, "ids": self.ids, "stages": {pid: a.stage for pid, a in self.assignments.items()}}


@dataclass
class Collected:
    """A drawn batch after generation and execution."""

    draw: Draw
    samples: list[Sample]
    overlap: float
    timings: dict[str, float]
    queue: dict[str, float]  # executor queue depth while this batch was judged: mean, max


class PPOIteration:
    """Everything one iteration needs, wired once; `run(step)` returns its metrics.

    On-policy (the default) an iteration generates, judges, learns and syncs in turn.
    With `one_step_off_policy` the next batch is drawn and generated (with the weights
    before this update) while the learner trains on the current one, so generation and
    execution hide behind learning; every sample's staleness (updates between the
    weights that sampled it and the weights it trains) is logged as `policy_lag`, and
    the curriculum sees each batch's results one iteration later."""

    def __init__(self, cfg: TrainConfig, problems: list[Problem], tokenizer, rollout, executors, learner,
                 curriculum: CurriculumState, order: DataOrder) -> None:
        self.cfg, self.tokenizer = cfg, tokenizer
        self.problems = {p.id: p for p in problems}
        self.rollout, self.executors, self.learner = rollout, executors, learner
        self.curriculum, self.order = curriculum, order
        self._untrained: deque[Draw] = deque()  # drawn, not yet trained on (oldest first)
        self._prefetch: Future | None = None  # collecting the newest of them in the background
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")

    @classmethod
    def create(cls, cfg: TrainConfig, problems: list[Problem], tokenizer, rollout, executors,
               learner) -> "PPOIteration":
        """With a fresh curriculum and data order over `problems`, seeded by cfg.seed."""
        curriculum = CurriculumState.from_problems(problems, cfg.curriculum, seed=cfg.seed)
        order = DataOrder([p.id for p in problems], cfg.seed)
        return cls(cfg, problems, tokenizer, rollout, executors, learner, curriculum, order)

    def run(self, step: int) -> dict:
        start = time.perf_counter()
        current = self._current(step)
        if self.cfg.one_step_off_policy and step + 1 < self.cfg.iterations:
            self._prefetch = self._background.submit(self.collect, self.draw(step + 1))
        timings = dict(current.timings)
        t = time.perf_counter()
        batch, dropped = self._batch(current.samples)
        version = self.rollout.policy_version
        stats = self.learner.update(batch)
        timings["learn"] = time.perf_counter() - t
        if self._prefetch is not None:
            t = time.perf_counter()
            self._prefetch.result()  # the next batch's generation must finish on the old weights
            timings["wait_for_next_batch"] = time.perf_counter() - t
        t = time.perf_counter()
        self.rollout.sync_from(self.learner)
        timings["sync"] = time.perf_counter() - t
        self.curriculum.report([StageResult(s.problem_id, s.stage, s.verdict == "pass") for s in current.samples], step)
        self._untrained.popleft()  # trained on and reported: no longer pending
        lag = [version - s.policy_version for s in current.samples]
        metrics = self._metrics(current, stats, timings, time.perf_counter() - start, dropped)
        metrics["policy_lag"] = sum(lag) / max(1, len(lag))
        return metrics

    def _current(self, step: int) -> Collected:
        """This step's batch: prefetched during the last update, or drawn before a
        checkpoint and re-collected now, or drawn and collected now."""
        if self._prefetch is not None:
            collected, self._prefetch = self._prefetch.result(), None
            return collected
        return self.collect(self._untrained[0] if self._untrained else self.draw(step))

    def draw(self, step: int) -> Draw:
        ids = self.order.next(self.cfg.problems_per_iteration)
        drawn = Draw(step, ids, {a.problem_id: a for a in self.curriculum.sample(ids)})
        self._untrained.append(drawn)
        return drawn

    def collect(self, draw: Draw) -> Collected:
        """Generate the batch's completions and judge them (execution starts as each
        prompt's samples arrive)."""
        timings: dict[str, float] = {}
        prompts = {pid: build_prompt(self.problems[pid], self.tokenizer, draw.assignments[pid].start)
                   for pid in draw.ids}
        self.executors.take_queue_depths()  # readings from other work (an evaluation) are not this batch's
        samples, overlap = self._generate_and_judge(draw.step, draw.ids, prompts, draw.assignments, timings)
        return Collected(draw, samples, overlap, timings, self.executors.take_queue_depths())

    def state_dict(self) -> dict:
        """Curriculum, data order, and the batches drawn but not yet trained on (the
        current one when interrupted mid-iteration, the prefetched one off policy): a
        resumed run re-collects those, so data order and curriculum continue exactly."""
        return {"curriculum": self.curriculum.state_dict(), "order": self.order.state_dict(),
                "untrained_draws": [d.state_dict() for d in self._untrained]}

    def load_state_dict(self, state: dict) -> None:
        self.curriculum.load_state_dict(state["curriculum"])
        self.order.load_state_dict(state["order"])
        self._untrained = deque(
            Draw(d["step"], list(d["ids"]), {pid: self.curriculum.assignment(pid, stage)
                                             for pid, stage in d["stages"].items()})
            for d in state["untrained_draws"])

    def close(self) -> None:
        self._background.shutdown(wait=True)

    def _generate_and_judge(self, step, ids, prompts, assignments, timings):
        r = self.cfg.rollout
        requests = r.requests([prompts[pid].input_ids for pid in ids], ids, seed=self.cfg.seed * 1_000_003 + step * 1009)
        pending, gen_done = [], [0.0]
        t0 = time.perf_counter()

        def submissions():
            for result in self.rollout.stream(requests):
                prompt = prompts[result.request_id]
                for completion in result.completions:
                    pending.append((result.request_id, completion))
                    yield Submission(self.problems[result.request_id], prompt.prefix + completion.text)
            gen_done[0] = time.perf_counter() - t0

        judged = dict(self.executors.judge_stream(submissions()))
        total = time.perf_counter() - t0
        timings["generate"], timings["execute_after_generate"] = gen_done[0], total - gen_done[0]
        samples = [self._sample(pid, c, judged[i], prompts[pid], assignments[pid]) for i, (pid, c) in enumerate(pending)]
        overlap = 1.0 - (total - gen_done[0]) / max(total, 1e-9)
        return samples, overlap

    def _sample(self, pid, completion, result, prompt, assignment) -> Sample:
        keep = None
        if self.cfg.learner.fgo and result.verdict != SANDBOX_ERROR:
            keep = list(fgo_mask(self.tokenizer, completion.token_ids, prompt.prefix, result.executed_lines,
                                 result.executable_lines, compiled=result.verdict != COMPILE_ERROR).keep)
        return Sample(tuple(prompt.input_ids), tuple(completion.token_ids), result.reward if result.reward is not None
                      else float("nan"), keep, result.verdict, pid, assignment.stage, self.problems[pid].difficulty,
                      completion.policy_version, tuple(completion.logprobs))

    def _batch(self, samples: list[Sample]) -> tuple[PPOBatch, int]:
        """Drop sandbox errors (our failure, not the policy's) and empty completions, then
        trim to whole optimizer steps; the count dropped is logged."""
        usable = [s for s in samples if s.verdict != SANDBOX_ERROR and s.completion_ids]
        whole = len(usable) - len(usable) % self.learner.rows_per_step
        if whole == 0:
            raise RuntimeError(f"no usable samples this iteration ({Counter(s.verdict for s in samples)})")
        kept = usable[:whole]
        executed = [s.keep for s in kept] if self.cfg.learner.fgo else None
        old = [s.logprobs for s in kept] if self.cfg.learner.old_logprobs == "rollout" else None
        batch = PPOBatch.from_sequences([s.prompt_ids for s in kept], [s.completion_ids for s in kept],
                                        [s.reward for s in kept], self.tokenizer.pad_token_id, executed=executed,
                                        old_logprobs=old, temperature=self.cfg.rollout.scoring_temperature)
        return batch, len(samples) - whole

    def _metrics(self, current: Collected, stats, timings, seconds, dropped) -> dict:
        samples, queue, n = current.samples, current.queue, len(current.samples)
        verdicts = Counter(s.verdict for s in samples)
        masked = [1 - sum(s.keep) / len(s.keep) for s in samples if s.keep]
        tokens = sum(len(s.completion_ids) for s in samples)
        by_level: dict[str, list[bool]] = {}
        for s in samples:
            by_level.setdefault(s.difficulty, []).append(s.verdict == "pass")
        summary = self.curriculum.summary()
        metrics = {
            "reward": sum(s.reward for s in samples if s.reward == s.reward) / max(1, n),
            "pass_rate": verdicts["pass"] / max(1, n),
            **{f"pass_rate/{lvl}": sum(v) / len(v) for lvl, v in by_level.items()},
            **{f"verdict/{v}": c / n for v, c in verdicts.items()},
            "masked_token_fraction": sum(masked) / len(masked) if masked else 0.0,
            "curriculum/fraction_at_position_0": summary["fraction_at_position_0"],
            **{f"curriculum/problems_at_stage_{k}": v for k, v in summary["problems_per_stage"].items()},
            "samples_dropped": dropped,
            "tokens_per_second": tokens / max(timings["generate"], 1e-9),
            "overlap": current.overlap,
            "executor_queue_depth": queue["mean"],
            "executor_queue_depth_max": queue["max"],
            **{f"time/{k}": v for k, v in timings.items()},
            "time/iteration": seconds,
            **{f"learner/{k}": v for k, v in asdict(stats).items()},
        }
        return metrics
