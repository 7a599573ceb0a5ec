"""What `execrl inspect` shows, computed from a run directory (`cluster.run_files`):

  * a problem's history: its stage at each visit and its stage changes (from the
    newest checkpoint's curriculum state), its pass rate per stage, and its latest
    samples line by line (given, ran, masked: `cluster.program_view`);
  * the run's summary: the verdict mix per iteration, the most common failing tests,
    the slowest programs, the reward-hacking counters, and a table of problems.

`until` (`--iteration K`) cuts everything at step K: the samples of steps <= K, the
stage changes made at steps <= K, so a problem's stage "then" is its stage at K.
Steps are metrics.jsonl's (0-based: step 0 is the log's "iter 1").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from cluster.program_view import ProgramLine, program_lines
from cluster.run_files import RunFiles, SampleRecord, StageChangeRecord
from core.verdict import PASS, SANDBOX_ERROR

HACKING_PREFIX = "hacking/"
PROBLEM_ROWS_PER_TOP = 5  # the problems table shows 5 x --top rows


@dataclass(frozen=True)
class Visit:
    """One iteration's samples of a problem."""

    step: int
    stages: tuple[int, ...]
    samples: int
    passed: int
    judged: int
    mean_reward: float | None


@dataclass(frozen=True)
class StageStats:
    stage: int
    samples: int
    judged: int
    passed: int

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.judged if self.judged else None


@dataclass(frozen=True)
class ShownSample:
    """A sample with its program laid out line by line; `copies` samples of the same
    visit wrote the same completion (shown once)."""

    record: SampleRecord
    lines: tuple[ProgramLine, ...]
    copies: int = 1


@dataclass
class ProblemHistory:
    problem_id: str
    num_stages: int | None
    stage: int | None  # at `until` (or at the newest checkpoint)
    changes: list[StageChangeRecord]
    visits: list[Visit]
    per_stage: list[StageStats]
    latest_step: int
    latest: list[ShownSample]
    curriculum_known: bool  # a checkpoint had the problem's curriculum state


@dataclass(frozen=True)
class FailingTestStat:
    problem_id: str
    index: int
    verdict: str
    count: int
    example: dict  # the failing test as the newest sample saw it: input, expected, actual, error


@dataclass(frozen=True)
class ProblemRow:
    problem_id: str
    visits: int
    samples: int
    pass_rate: float | None
    stage: int | None
    num_stages: int | None
    last_verdict: str


@dataclass
class RunSummary:
    run_dir: str
    steps: list[int]
    verdict_mix: list[tuple[int, dict[str, int]]]
    failing_tests: list[FailingTestStat]
    slowest: list[SampleRecord]
    hacking: list[tuple[int, dict[str, int]]]
    hack_examples: list[SampleRecord]
    problems: list[ProblemRow]
    checkpoint: str | None
    position_0: list[tuple[int, float]] = field(default_factory=list)  # fraction of problems at position 0
    problems_shown: int = 50  # rows of the problems table a renderer shows (most visited first)


def upto(run: RunFiles, until: int | None) -> list[SampleRecord]:
    """The run's samples of steps <= `until` (all when None); a K past the run's last
    step or before its first is an error naming the range."""
    if until is None:
        return run.samples
    steps = run.steps
    if not steps[0] <= until <= steps[-1]:
        raise ValueError(f"--iteration {until}: {run.run_dir} has trained steps {steps[0]}..{steps[-1]}")
    return [s for s in run.samples if s.step <= until]


def problem_history(run: RunFiles, problem_id: str, until: int | None = None, latest: int = 4) -> ProblemHistory:
    samples = [s for s in upto(run, until) if s.problem_id == problem_id]
    if not samples:
        raise ValueError(f"problem {problem_id!r} has no trained samples in {run.run_dir}"
                         + (f" up to step {until}" if until is not None else "")
                         + f"; problems there include {', '.join(_some_ids(run))}")
    track = run.curriculum.get(problem_id)
    num_stages = track.num_stages if track else next((s.num_stages for s in samples if s.num_stages), None)
    changes, stage = stage_at(run, track, until, num_stages)
    last = max(s.step for s in samples)
    return ProblemHistory(problem_id, num_stages, stage, changes, _visits(samples), _per_stage(samples), last,
                          shown_samples([s for s in samples if s.step == last], latest), track is not None)


def shown_samples(visit: list[SampleRecord], count: int) -> list[ShownSample]:
    """Up to `count` distinct completions of one visit: those with FGO-masked code first,
    then failures, then passes (identical completions shown once, counted)."""
    distinct: dict[str, list[SampleRecord]] = {}
    for s in visit:
        distinct.setdefault(s.completion, []).append(s)
    groups = sorted(distinct.values(), key=lambda g: (not g[0].masked_spans, g[0].verdict == PASS, g[0].index))
    return [ShownSample(g[0], tuple(lines_of(g[0])), len(g)) for g in groups[:count]]


def stage_at(run: RunFiles, track, until: int | None, num_stages: int | None
             ) -> tuple[list[StageChangeRecord], int | None]:
    """A problem's stage changes up to `until` and its stage then (None: unknown, no
    checkpoint); with the curriculum off, position 0 (the last stage) throughout."""
    if not run.curriculum_enabled:
        return [], None if num_stages is None else num_stages - 1
    changes = [c for c in (track.changes if track else ()) if until is None or c.step <= until]
    return changes, changes[-1].to_stage if changes else (0 if track else None)


def lines_of(record: SampleRecord) -> list[ProgramLine]:
    return program_lines(record.prefix, record.completion, record.masked_spans, record.executed_lines,
                         record.prefix_first_line, coverage=bool(record.executed_lines))


def run_summary(run: RunFiles, until: int | None = None, top: int = 10) -> RunSummary:
    samples = upto(run, until)
    mix: dict[int, Counter] = defaultdict(Counter)
    for s in samples:
        mix[s.step][s.verdict] += 1
    timed = sorted((s for s in samples if s.judge_s), key=lambda s: -s.judge_s)  # no tests ran: not slow
    metrics = [r for r in (run.metrics.iterations if run.metrics else []) if until is None or r["step"] <= until]
    hacking = [(r["step"], {k[len(HACKING_PREFIX):]: int(v) for k, v in r.items() if k.startswith(HACKING_PREFIX)})
               for r in metrics if any(k.startswith(HACKING_PREFIX) for k in r)]
    return RunSummary(
        run_dir=str(run.run_dir), steps=sorted(mix), verdict_mix=[(k, dict(mix[k])) for k in sorted(mix)],
        failing_tests=_failing_tests(samples)[:top], slowest=timed[:top], hacking=hacking,
        hack_examples=[s for s in reversed(samples) if s.hacks][:top], problems=_problem_rows(run, samples, until),
        problems_shown=PROBLEM_ROWS_PER_TOP * top,
        checkpoint=str(run.checkpoint) if run.checkpoint else None,
        position_0=[(r["step"], r["curriculum/fraction_at_position_0"]) for r in metrics
                    if "curriculum/fraction_at_position_0" in r])


def _visits(samples: list[SampleRecord]) -> list[Visit]:
    by_step: dict[int, list[SampleRecord]] = defaultdict(list)
    for s in samples:
        by_step[s.step].append(s)
    out = []
    for step in sorted(by_step):
        group = by_step[step]
        judged = [s for s in group if s.verdict != SANDBOX_ERROR]
        rewards = [s.reward for s in judged if s.reward is not None]
        out.append(Visit(step, tuple(sorted({s.stage for s in group})), len(group),
                         sum(s.verdict == PASS for s in judged), len(judged),
                         sum(rewards) / len(rewards) if rewards else None))
    return out


def _per_stage(samples: list[SampleRecord]) -> list[StageStats]:
    by_stage: dict[int, list[SampleRecord]] = defaultdict(list)
    for s in samples:
        by_stage[s.stage].append(s)
    return [StageStats(k, len(v), sum(s.verdict != SANDBOX_ERROR for s in v), sum(s.verdict == PASS for s in v))
            for k, v in sorted(by_stage.items())]


def _failing_tests(samples: list[SampleRecord]) -> list[FailingTestStat]:
    """(problem, test, verdict) by how many samples failed there first, newest example."""
    counts: Counter = Counter()
    example: dict = {}
    for s in samples:
        if s.failing is not None:
            key = (s.problem_id, int(s.failing["index"]), s.failing["verdict"])
            counts[key] += 1
            example[key] = s.failing
    return [FailingTestStat(pid, index, verdict, n, example[(pid, index, verdict)])
            for (pid, index, verdict), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _problem_rows(run: RunFiles, samples: list[SampleRecord], until: int | None) -> list[ProblemRow]:
    by_problem: dict[str, list[SampleRecord]] = defaultdict(list)
    for s in samples:
        by_problem[s.problem_id].append(s)
    rows = []
    for pid, group in by_problem.items():
        judged = [s for s in group if s.verdict != SANDBOX_ERROR]
        track = run.curriculum.get(pid)
        num_stages = track.num_stages if track else group[-1].num_stages
        rows.append(ProblemRow(pid, len({s.step for s in group}), len(group),
                               sum(s.verdict == PASS for s in judged) / len(judged) if judged else None,
                               stage_at(run, track, until, num_stages)[1], num_stages, group[-1].verdict))
    return sorted(rows, key=lambda r: (-r.visits, r.problem_id))


def _some_ids(run: RunFiles, count: int = 5) -> list[str]:
    return list(dict.fromkeys(s.problem_id for s in run.samples))[:count]
