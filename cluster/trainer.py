"""One PPO iteration with CCCS and FGO.

curriculum start points -> prompts -> rollouts (streamed) -> sandboxed execution
(starting as each prompt's samples arrive) -> rewards and FGO masks -> learner update
-> weight sync to the rollout actors -> curriculum update.  Optionally one step off
policy: the next batch generates while the learner trains on this one.  What a judged
sample is, and how sandbox errors and unknown coverage are treated, is in
cluster/samples.py; how Ctrl-C waits for a clean boundary, in cluster/interrupts.py.
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from cluster.config import TrainConfig
from cluster.distributions import batch_distributions
from cluster.hacking import hacking_counts
from cluster.interrupts import Torn, deferred_interrupt
from cluster.samples import Sample, judged_sample, sample_metrics, stage_results
from core.problem import Problem
from core.rollout import LENGTH
from curriculum.prompt import build_prompt
from curriculum.state import CurriculumState, StageResult, StartAssignment
from executors.judge import Submission
from learner.batches import PPOBatch
from learner.ppo_math import overlong_penalty


class DataOrder:
    """Problems in a seeded order, reshuffled each epoch; resumable exactly."""

    def __init__(self, ids: list[str], seed: int) -> None:
        self.ids, self.seed, self.epoch, self.position = list(ids), seed, 0, 0
        self._order = self._shuffled()

    def _shuffled(self) -> list[str]:
        order = list(self.ids)
        random.Random(f"{self.seed}/{self.epoch}").shuffle(order)
        return order

    def next(self, count: int, exclude: frozenset[str] = frozenset()) -> list[str]:
        """`count` distinct ids, none in `exclude` (the batch's problems so far, when
        dynamic sampling draws replacements).  A batch that straddles two epochs skips
        the new epoch's occurrence of an id it already holds (that problem was just visited)."""
        available = len(set(self.ids) - exclude)
        if count > available:
            raise ValueError(f"a batch of {count} problems needs at least {count} distinct problems, "
                             f"the pool has {available}" + (f" beyond the {len(exclude)} drawn" if exclude else ""))
        batch: list[str] = []
        while len(batch) < count:
            if self.position == len(self._order):
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._shuffled()
            pid = self._order[self.position]
            self.position += 1
            if pid not in batch and pid not in exclude:
                batch.append(pid)
        return batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = state["epoch"], state["position"]
        self._order = self._shuffled()


@dataclass
class Draw:
    """The problems and start points of one batch, drawn before it is generated; with
    dynamic sampling, the replacement problems drawn in each extra round (`rounds`), so
    a resumed run generates them in the same rounds, with the same seeds."""

    step: int
    ids: list[str]
    assignments: dict[str, StartAssignment]
    rounds: list[list[str]] = field(default_factory=list)

    @property
    def all_ids(self) -> list[str]:
        return [*self.ids, *(pid for extra in self.rounds for pid in extra)]

    def state_dict(self) -> dict:
        return {"step": self.step, "ids": self.ids, "rounds": self.rounds,
                "stages": {pid: a.stage for pid, a in self.assignments.items()}}


@dataclass
class Collected:
    """A drawn batch after generation and execution."""

    draw: Draw
    samples: list[Sample]
    overlap: float
    timings: dict[str, float]
    queue: dict[str, float]  # executor queue depth while this batch was judged: mean, max

    def state_dict(self) -> dict:
        return {"samples": [s.to_json() for s in self.samples], "overlap": self.overlap,
                "timings": self.timings, "queue": self.queue}

    @classmethod
    def from_state(cls, draw: Draw, state: dict) -> "Collected":
        return cls(draw, [Sample.from_json(row) for row in state["samples"]], state["overlap"],
                   dict(state["timings"]), dict(state["queue"]))


class PPOIteration:
    """Everything one iteration needs, wired once; `run(step)` returns its metrics.

    On-policy (the default) an iteration generates, judges, learns and syncs in turn.
    With `one_step_off_policy` the next batch is drawn and generated (with the weights
    before this update) while the learner trains on the current one, so generation and
    execution hide behind learning; every sample's staleness (updates between the
    weights that sampled it and the weights it trains) is logged as `policy_lag`, and
    the curriculum sees each batch's results one iteration later.

    A batch goes drawn -> collected -> trained -> synced and reported, and the state
    (`state_dict`) says where each one is, so a run stopped anywhere resumes to exactly
    the state an uninterrupted run reaches: drawn batches are re-collected with the same
    weights and seeds; collected ones (the prefetched batch, sampled with the weights
    before the last update) are saved with their samples; a trained batch (the update is
    uninterruptible, `cluster.interrupts`) is never trained again, and what it still owed
    (weight sync, curriculum report, its metrics) is done by `resume`.
    `sink(step, metrics)` receives each iteration's metrics exactly once, as its report
    is applied; `sample_sink(step, samples)` each trained batch.  `on_phase(phase,
    step)`, if set, is called at "start", "judging" (after each judged sample), "update",
    "updated", "sync" and "synced": progress hooks, and where tests inject Ctrl-C."""

    def __init__(self, cfg: TrainConfig, problems: list[Problem], tokenizer, rollout, executors, learner,
                 curriculum: CurriculumState, order: DataOrder) -> None:
        self.cfg, self.tokenizer = cfg, tokenizer
        self.problems = {p.id: p for p in problems}
        self.rollout, self.executors, self.learner = rollout, executors, learner
        self.curriculum, self.order = curriculum, order
        self._untrained: deque[Draw] = deque()  # drawn, not yet trained on (oldest first)
        self._collected: dict[int, Collected] = {}  # the untrained ones already generated and judged, by step
        self._pending: dict | None = None  # trained, not yet synced and reported: step, results, metrics
        self._prefetch: Future | None = None  # collecting the newest of them in the background
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
        self._version_offset = 0  # rollout policy versions restart at a resume; samples count updates
        self.interrupt = Torn()
        self.on_phase = None
        self.sink = None  # called with (step, metrics) when an iteration is complete (the metrics logger)
        self.sample_sink = None  # called with (step, samples) once the learner has trained on them
        self.log = print
        self.last_batch: Collected | None = None  # the batch the last update trained on
        self.rewarder = None  # cluster.grounding.Rewarder when the reward is not StepCoder's alone
        self.next_step = 0  # the first step whose batch the learner has not trained on

    @classmethod
    def create(cls, cfg: TrainConfig, problems: list[Problem], tokenizer, rollout, executors,
               learner) -> "PPOIteration":
        """With a fresh curriculum and data order over `problems`, seeded by cfg.seed."""
        curriculum = CurriculumState.from_problems(problems, cfg.curriculum, seed=cfg.seed)
        order = DataOrder([p.id for p in problems], cfg.seed)
        return cls(cfg, problems, tokenizer, rollout, executors, learner, curriculum, order)

    def run(self, step: int) -> dict:
        start = time.perf_counter()
        self._phase("start", step)
        current = self._current(step)
        if self.cfg.one_step_off_policy and step + 1 < self.cfg.iterations:
            self._prefetch_next(step + 1)
        timings = dict(current.timings)
        t = time.perf_counter()
        batch, dropped = self._batch(current.samples)
        version = self.rollout.policy_version + self._version_offset
        with deferred_interrupt(self.interrupt, self.log):  # a Ctrl-C lands after the update, not inside it
            self._phase("update", step)
            stats = self.learner.update(batch)
            timings["learn"] = time.perf_counter() - t
            self._trained(step, current, stats, timings, dropped, version)
            self._phase("updated", step)
        if self._prefetch is not None:
            t = time.perf_counter()
            self._prefetch.result()  # the next batch's generation must finish on the old weights
            self._prefetch = None
            self._pending["metrics"]["time/wait_for_next_batch"] = time.perf_counter() - t
        return self._sync_and_report(step, start)

    def _trained(self, step: int, current: Collected, stats, timings: dict, dropped: int, version: int) -> None:
        """The update has run: the batch is no longer untrained; the sync, the curriculum
        report and the metrics it still owes are pending (and saved in a checkpoint)."""
        self._untrained.popleft()
        self._collected.pop(current.draw.step, None)
        self.next_step = step + 1
        lag = [version - s.policy_version for s in current.samples]
        metrics = self._metrics(current, stats, timings, dropped)
        metrics["policy_lag"] = sum(lag) / max(1, len(lag))
        if self.rewarder is not None:  # term means; the discriminator learns from this batch
            metrics.update(self.rewarder.after_update(step, current.samples, self._programs(current)))
        self._pending = {"step": step, "results": [[r.problem_id, r.stage, r.passed]
                                                   for r in stage_results(current.samples)], "metrics": metrics}
        self.last_batch = current
        if self.sample_sink is not None:
            self.sample_sink(step, current.samples)

    def _sync_and_report(self, step: int, started: float) -> dict:
        t = time.perf_counter()
        self._phase("sync", step)
        self.rollout.sync_from(self.learner)
        sync_seconds = time.perf_counter() - t
        self._phase("synced", step)
        return self._report({"time/sync": sync_seconds, "time/iteration": time.perf_counter() - started})

    def _report(self, timings: dict) -> dict:
        """The curriculum learns the trained batch's results, and its metrics go to `sink`,
        together and uninterruptibly: a resumed run neither repeats nor loses either."""
        with deferred_interrupt(self.interrupt, self.log, "the curriculum report"):
            pending = self._pending
            self.curriculum.report([StageResult(*r) for r in pending["results"]], pending["step"])
            summary = self.curriculum.summary()
            metrics = {**pending["metrics"], **timings,
                       "curriculum/fraction_at_position_0": summary["fraction_at_position_0"],
                       **{f"curriculum/problems_at_stage_{k}": v for k, v in summary["problems_per_stage"].items()}}
            self._pending = None
            if self.sink is not None:
                self.sink(pending["step"], metrics)
        return metrics

    def resume(self, state: dict, step: int) -> int | None:
        """Continue from a checkpoint's state saved at `step`: the rollout actors get the
        learner's weights, and a batch trained before the interrupt gets its curriculum
        report and its metrics (to `sink`); returns that batch's step, or None."""
        self.load_state_dict(state)
        self.next_step = step
        t = time.perf_counter()
        self.rollout.sync_from(self.learner)
        self._version_offset = step - self.rollout.policy_version
        if self._pending is None:
            return None
        finished = self._pending["step"]
        self._report({"time/sync": time.perf_counter() - t})
        return finished

    def _current(self, step: int) -> Collected:
        """This step's batch: the oldest untrained one (prefetched during the last update,
        or saved in a checkpoint) or, with none pending, drawn now; collected if need be."""
        if self._prefetch is not None:
            self._prefetch.result()
            self._prefetch = None
        draw = self._untrained[0] if self._untrained else self.draw(step)
        return self._collected.get(draw.step) or self.collect(draw)

    def _prefetch_next(self, step: int) -> None:
        draw = self._untrained[1] if len(self._untrained) > 1 else self.draw(step)
        if draw.step not in self._collected:
            self._prefetch = self._background.submit(self.collect, draw)

    def settle(self) -> None:
        """Before the checkpoint written on Ctrl-C: let a prefetch in flight finish, so its
        samples (drawn with the weights before this update, which a resumed run no longer
        has) are saved with it.  A second Ctrl-C skips the wait; the batch is then saved as
        drawn and a resumed run generates it with the weights after the update."""
        if self._prefetch is None:
            return
        self.log("interrupt: letting the prefetched batch finish so the checkpoint keeps it (Ctrl-C to skip)")
        try:
            self._prefetch.result()
        except KeyboardInterrupt:
            self.log("interrupt: the prefetched batch is saved as drawn; a resumed run regenerates it")
        except Exception as exc:  # noqa: BLE001 - its failure belongs to the run that resumes it
            self.log(f"interrupt: the prefetched batch failed ({exc}); a resumed run regenerates it")

    def draw(self, step: int) -> Draw:
        with deferred_interrupt(self.interrupt, self.log, "drawing the batch"):  # order, RNG and draws agree
            ids = self.order.next(self.cfg.problems_per_iteration)
            drawn = Draw(step, ids, {a.problem_id: a for a in self.curriculum.sample(ids)})
            self._untrained.append(drawn)
        return drawn

    def collect(self, draw: Draw) -> Collected:
        """Generate the batch's completions and judge them (execution starts as each
        prompt's samples arrive); kept until the batch is trained on.  With dynamic
        sampling, rounds of replacement problems follow (those recorded in the draw
        first, as a resumed run must) while the batch lacks informative groups."""
        timings: dict[str, float] = {"generate": 0.0, "execute_after_generate": 0.0}
        self.executors.take_queue_depths()  # readings from other work (an evaluation) are not this batch's
        samples, overlap = self._generate_and_judge(draw, draw.ids, 0, timings)
        for k, extra in enumerate(draw.rounds, start=1):
            samples += self._generate_and_judge(draw, extra, k, timings)[0]
        lc = self.cfg.learner
        max_rounds = lc.dynamic_sampling_max_rounds if lc.dynamic_sampling else 0
        while self._short_of_signal(samples) and len(draw.rounds) < max_rounds:
            extra = self._draw_replacements(draw, samples)
            if not extra:
                break
            samples += self._generate_and_judge(draw, extra, len(draw.rounds), timings)[0]
        collected = Collected(draw, samples, overlap, timings, self.executors.take_queue_depths())
        self._collected[draw.step] = collected
        return collected

    def _short_of_signal(self, samples: list[Sample]) -> bool:
        """Dynamic sampling is on and fewer than problems_per_iteration groups have
        rewards that differ (a group whose rewards are all equal gives no signal)."""
        if not self.cfg.learner.dynamic_sampling:
            return False
        return len(informative_groups(samples)) < self.cfg.problems_per_iteration

    def _draw_replacements(self, draw: Draw, samples: list[Sample]) -> list[str]:
        """One replacement problem per missing informative group, from the data order
        (none already in the batch), recorded in the draw with its start point."""
        missing = self.cfg.problems_per_iteration - len(informative_groups(samples))
        with deferred_interrupt(self.interrupt, self.log, "drawing replacement problems"):
            exclude = frozenset(draw.all_ids)
            count = min(missing, len(set(self.order.ids) - exclude))
            if count <= 0:
                return []
            extra = self.order.next(count, exclude)
            draw.assignments.update({a.problem_id: a for a in self.curriculum.sample(extra)})
            draw.rounds.append(extra)
        return extra

    def state_dict(self) -> dict:
        """Curriculum, data order, the batches drawn but not yet trained on (the current
        one when interrupted before its update, the prefetched one off policy) with the
        samples of those already collected, and what a trained batch still owes."""
        collected = dict(self._collected)  # one snapshot: a prefetch may land meanwhile
        return {"curriculum": self.curriculum.state_dict(), "order": self.order.state_dict(),
                "untrained_draws": [d.state_dict() for d in self._untrained],
                "collected": {str(d.step): collected[d.step].state_dict() for d in self._untrained
                              if d.step in collected},
                "pending": self._pending}

    def load_state_dict(self, state: dict) -> None:
        self.curriculum.load_state_dict(state["curriculum"])
        self.order.load_state_dict(state["order"])
        self._untrained = deque(
            Draw(d["step"], list(d["ids"]), {pid: self.curriculum.assignment(pid, stage, count=False)
                                             for pid, stage in d["stages"].items()},
                 [list(extra) for extra in d.get("rounds", [])])
            for d in state["untrained_draws"])
        draws = {d.step: d for d in self._untrained}
        self._collected = {int(k): Collected.from_state(draws[int(k)], v) for k, v in state.get("collected", {}).items()}
        self._pending = state.get("pending")

    def close(self) -> None:
        self._background.shutdown(wait=True)

    def _phase(self, phase: str, step: int) -> None:
        if self.on_phase is not None:
            self.on_phase(phase, step)

    def _generate_and_judge(self, draw: Draw, ids: list[str], round_: int, timings) -> tuple[list[Sample], float]:
        """Samples of problems `ids` (round 0: the draw's; later rounds: replacements) in
        a fixed order (problem, then completion index) whatever order the actors answer
        in: the batch, its trimming and the update's shuffle are then the same in every
        run with the same seeds.  Each round has its own seeds."""
        r, step = self.cfg.rollout, draw.step
        fmt = r.prompt_style()
        prompts = {pid: build_prompt(self.problems[pid], self.tokenizer, draw.assignments[pid].start, fmt=fmt)
                   for pid in ids}
        seed = self.cfg.seed * 1_000_003 + step * 1009 + round_ * 7_919_993
        requests = r.requests([prompts[pid].input_ids for pid in ids], ids, seed=seed, stop=prompts[ids[0]].stop)
        pending, gen_done = [], [0.0]
        t0 = time.perf_counter()

        def submissions():
            for result in self.rollout.stream(requests):
                prompt = prompts[result.request_id]
                for index, completion in enumerate(result.completions):
                    pending.append((result.request_id, index, completion))
                    yield Submission(self.problems[result.request_id], prompt.prefix + completion.text)
            gen_done[0] = time.perf_counter() - t0

        judged = {}
        for i, result in self.executors.judge_stream(submissions()):
            judged[i] = result
            self._phase("judging", step)
        total = time.perf_counter() - t0
        timings["generate"] += gen_done[0]
        timings["execute_after_generate"] += total - gen_done[0]
        position = {pid: k for k, pid in enumerate(ids)}
        order = sorted(range(len(pending)), key=lambda i: (position[pending[i][0]], pending[i][1]))
        samples = [judged_sample(self.tokenizer, self.problems[pending[i][0]], prompts[pending[i][0]],
                                 draw.assignments[pending[i][0]], pending[i][2], judged[i], self.cfg.learner.fgo,
                                 self._version_offset, self._overlong(pending[i][2])) for i in order]
        if self.rewarder is not None:
            self.rewarder.assign(samples, [judged[i] for i in order],
                                 [prompts[pending[i][0]].prefix + pending[i][2].text for i in order])
        overlap = 1.0 - (total - gen_done[0]) / max(total, 1e-9)
        return samples, overlap

    def _programs(self, current: Collected) -> list[str]:
        """Each sample's program as judged (its start point's canonical prefix + completion)."""
        fmt, prefixes = self.cfg.rollout.prompt_style(), {}
        for pid in dict.fromkeys(s.problem_id for s in current.samples):
            start = current.draw.assignments[pid].start
            prefixes[pid] = build_prompt(self.problems[pid], self.tokenizer, start, fmt=fmt).prefix
        return [prefixes[s.problem_id] + s.text for s in current.samples]

    def _overlong(self, completion) -> float:
        """DAPO's over-length penalty for this completion (0 with learner.overlong_penalty 0)."""
        lc = self.cfg.learner
        return overlong_penalty(len(completion.token_ids), self.cfg.rollout.max_new_tokens,
                                completion.finish_reason == LENGTH, lc.overlong_penalty, lc.overlong_buffer)

    def _batch(self, samples: list[Sample]) -> tuple[PPOBatch, int]:
        """Drop sandbox errors (our failure, not the policy's) and empty completions, keep
        (with dynamic sampling) problems_per_iteration groups, informative ones first,
        then trim to whole optimizer steps; the count dropped is logged.  Each sample's
        group is its problem (one start point per problem and batch)."""
        usable = [s for s in samples if not s.sandbox_error and s.completion_ids]
        if self.cfg.learner.dynamic_sampling:
            usable = dynamic_selection(usable, self.cfg.problems_per_iteration)
        whole = len(usable) - len(usable) % self.learner.rows_per_step
        if whole == 0:
            raise RuntimeError(f"no usable samples this iteration ({Counter(s.verdict for s in samples)})")
        kept = usable[:whole]
        executed = [s.keep for s in kept] if self.cfg.learner.fgo else None
        old = [s.logprobs for s in kept] if self.cfg.learner.old_logprobs == "rollout" else None
        group = {pid: k for k, pid in enumerate(dict.fromkeys(s.problem_id for s in kept))}
        batch = PPOBatch.from_sequences([s.prompt_ids for s in kept], [s.completion_ids for s in kept],
                                        [s.reward for s in kept], self.tokenizer.pad_token_id, executed=executed,
                                        old_logprobs=old, temperature=self.cfg.rollout.scoring_temperature,
                                        groups=[group[s.problem_id] for s in kept])
        return batch, len(samples) - whole

    def _metrics(self, current: Collected, stats, timings, dropped) -> dict:
        samples, queue = current.samples, current.queue
        tokens = sum(len(s.completion_ids) for s in samples)
        return {
            **sample_metrics(samples),
            **batch_distributions(samples),
            **hacking_counts(samples, self.cfg.observe.identical_min_problems),
            **self._dynamic_sampling_metrics(current),
            "samples_dropped": dropped,
            "tokens_per_second": tokens / max(timings["generate"], 1e-9),
            "overlap": current.overlap,
            "executor_queue_depth": queue["mean"],
            "executor_queue_depth_max": queue["max"],
            **{f"time/{k}": v for k, v in timings.items()},
            **{f"learner/{k}": v for k, v in asdict(stats).items()},
        }

    def _dynamic_sampling_metrics(self, current: Collected) -> dict:
        if not self.cfg.learner.dynamic_sampling:
            return {}
        judged = [s for s in current.samples if not s.sandbox_error and s.completion_ids]
        groups = len(dict.fromkeys(s.problem_id for s in judged))
        informative = len(informative_groups(judged))
        return {"dynamic_sampling/rounds": len(current.draw.rounds),
                "dynamic_sampling/extra_problems": sum(len(r) for r in current.draw.rounds),
                "dynamic_sampling/uninformative_groups": groups - informative,
                "dynamic_sampling/informative_groups": informative,
                "dynamic_sampling/filled_uninformative": max(0, min(groups, self.cfg.problems_per_iteration)
                                                             - informative)}


def informative_groups(samples: list[Sample]) -> list[str]:
    """Problems whose judged samples' rewards differ (DAPO keeps only these): under a
    group baseline a group of equal rewards scores 0 everywhere and trains nothing."""
    rewards: dict[str, set[float]] = {}
    for s in samples:
        if not s.sandbox_error and s.completion_ids:
            rewards.setdefault(s.problem_id, set()).add(s.reward)
    return [pid for pid, values in rewards.items() if len(values) > 1]


def dynamic_selection(samples: list[Sample], groups: int) -> list[Sample]:
    """The samples of `groups` problems: the informative ones first (in batch order),
    then, when the extra rounds ran out, uninformative ones to keep the batch's size."""
    informative = informative_groups(samples)
    rest = [pid for pid in dict.fromkeys(s.problem_id for s in samples) if pid not in set(informative)]
    chosen = (informative + rest)[:groups]
    rank = {pid: k for k, pid in enumerate(chosen)}
    return sorted((s for s in samples if s.problem_id in rank), key=lambda s: rank[s.problem_id])
