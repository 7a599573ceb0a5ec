"""CCCS per-problem state: the current stage, its moving pass rate, and its history.

One `CurriculumState` is the single source of truth for a run.  The driver owns it (or
a `CurriculumActor` wraps it so many rollout actors can report concurrently); every
method that changes it handles one whole batch, so a report batch is applied
atomically.  Rules:

  * `sample` hands out start points: the problem's current stage, or with
    `sample_around_stage` sometimes a neighbouring stage (seeded RNG, part of the
    checkpoint).  With `enabled=False` it always hands out position 0 (vanilla PPO).
  * `report` takes (problem, stage, passed) results.  Only results generated at the
    problem's *current* stage count toward its pass rate; results from a neighbour
    stage or from a stage the problem already left (rollouts still in flight when it
    advanced) are counted as off-stage and otherwise ignored.
  * The pass rate is the mean of the last `window` counted results.  Once the window
    is full and the rate exceeds rho (strictly), the problem moves one stage toward
    position 0, the window empties, and the change is recorded with the step.

`state_dict()` is JSON-safe and includes the RNG state, so a resumed run hands out
exactly the start points the uninterrupted run would have.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from .config import CurriculumConfig
from .stages import ProblemPlan
from .start_points import StartPoint

STATE_VERSION = 1


@dataclass(frozen=True)
class StartAssignment:
    """A start point handed out for one rollout; report its result with the same stage."""

    problem_id: str
    stage: int
    num_stages: int
    start: StartPoint


@dataclass(frozen=True)
class StageResult:
    """Did the code generated from `stage` of `problem_id` pass all tests?"""

    problem_id: str
    stage: int
    passed: bool


@dataclass(frozen=True)
class StageChange:
    step: int
    from_stage: int
    to_stage: int
    pass_rate: float


@dataclass(frozen=True)
class ReportOutcome:
    counted: int
    off_stage: int
    advanced: tuple[str, ...]


@dataclass
class _Track:
    stage: int
    window: list[int] = field(default_factory=list)
    results: int = 0
    history: list[StageChange] = field(default_factory=list)


class CurriculumState:
    """All problems' curriculum state; see the module docstring for the rules."""

    def __init__(self, plans: Iterable[ProblemPlan], config: CurriculumConfig, seed: int = 0):
        self.config = config
        self.plans = {p.problem_id: p for p in plans}
        self._tracks = {pid: _Track(stage=0) for pid in self.plans}
        self._rng = random.Random(seed)
        self._samples_per_stage: Counter[int] = Counter()
        self._results = 0
        self._off_stage = 0

    # -- sampling ---------------------------------------------------------------
    def sample(self, problem_ids: Sequence[str]) -> list[StartAssignment]:
        """One start point per id (repeat an id for several rollouts)."""
        self._check_known(problem_ids)
        out = []
        for pid in problem_ids:
            plan = self.plans[pid]
            last = len(plan.stages) - 1
            stage = self._draw_stage(self._tracks[pid].stage, last) if self.config.enabled else last
            self._samples_per_stage[stage] += 1
            out.append(StartAssignment(pid, stage, last + 1, plan.stages[stage]))
        return out

    def assignment(self, problem_id: str, stage: int, count: bool = True) -> StartAssignment:
        """The assignment `sample` drew earlier for `problem_id` at `stage` (a resumed run
        re-collects a batch drawn before its checkpoint).  `count=False` when the draw was
        already counted in the state restored with it (a checkpoint saves the counts after
        the draw): counting it again would make a resumed run's statistics differ."""
        self._check_known([problem_id])
        plan = self.plans[problem_id]
        if not 0 <= stage < len(plan.stages):
            raise ValueError(f"stage {stage} of problem {problem_id!r} is out of range 0..{len(plan.stages) - 1}")
        if count:
            self._samples_per_stage[stage] += 1
        return StartAssignment(problem_id, stage, len(plan.stages), plan.stages[stage])

    def _draw_stage(self, current: int, last: int) -> int:
        if not self.config.sample_around_stage:
            return current
        neighbours = [s for s in (current - 1, current + 1) if 0 <= s <= last]
        if not neighbours or self._rng.random() >= self.config.neighbour_prob:
            return current
        return self._rng.choice(neighbours)

    # -- reporting --------------------------------------------------------------
    def report(self, results: Sequence[StageResult], step: int) -> ReportOutcome:
        """Apply a batch of results (validated first, so a bad batch changes nothing)."""
        results = [r if isinstance(r, StageResult) else StageResult(*r) for r in results]
        self._check_known([r.problem_id for r in results])
        for r in results:
            if not 0 <= r.stage < len(self.plans[r.problem_id].stages):
                raise ValueError(f"problem {r.problem_id!r} has no stage {r.stage}")
        counted = off = 0
        advanced = []
        for r in results:
            track = self._tracks[r.problem_id]
            track.results += 1
            if r.stage != track.stage:
                off += 1
                continue
            counted += 1
            track.window.append(1 if r.passed else 0)
            del track.window[: -self.config.window]
            if self._should_advance(r.problem_id, track):
                rate = sum(track.window) / len(track.window)
                track.history.append(StageChange(step, track.stage, track.stage + 1, rate))
                track.stage += 1
                track.window.clear()
                advanced.append(r.problem_id)
        self._results += len(results)
        self._off_stage += off
        return ReportOutcome(counted=counted, off_stage=off, advanced=tuple(advanced))

    def _should_advance(self, pid: str, track: _Track) -> bool:
        if not self.config.enabled or track.stage >= len(self.plans[pid].stages) - 1:
            return False
        full = len(track.window) >= self.config.window
        return full and sum(track.window) / len(track.window) > self.config.rho

    def _check_known(self, problem_ids: Iterable[str]) -> None:
        unknown = sorted({pid for pid in problem_ids if pid not in self.plans})
        if unknown:
            raise KeyError(f"unknown problem id(s) for the curriculum: {', '.join(map(repr, unknown[:5]))}")

    # -- reading ----------------------------------------------------------------
    def current_stage(self, problem_id: str) -> int:
        if not self.config.enabled:
            return len(self.plans[problem_id].stages) - 1
        return self._tracks[problem_id].stage

    def pass_rate(self, problem_id: str) -> float | None:
        window = self._tracks[problem_id].window
        return sum(window) / len(window) if window else None

    def history(self, problem_id: str) -> list[StageChange]:
        return list(self._tracks[problem_id].history)

    def summary(self) -> dict[str, Any]:
        """For logging: samples handed out per stage, problems per current stage, the
        fraction of problems at position 0, and result counts."""
        at_stage = Counter(self.current_stage(pid) for pid in self.plans)
        at_zero = sum(self.current_stage(pid) == len(p.stages) - 1 for pid, p in self.plans.items())
        return {
            "samples_per_stage": {str(k): v for k, v in sorted(self._samples_per_stage.items())},
            "problems_per_stage": {str(k): v for k, v in sorted(at_stage.items())},
            "fraction_at_position_0": at_zero / len(self.plans) if self.plans else 1.0,
            "results": self._results,
            "results_off_stage": self._off_stage,
            "stage_changes": sum(len(t.history) for t in self._tracks.values()),
        }

    # -- checkpointing ----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        return {
            "version": STATE_VERSION,
            "rng": [version, list(internal), gauss],
            "samples_per_stage": {str(k): v for k, v in self._samples_per_stage.items()},
            "results": self._results,
            "results_off_stage": self._off_stage,
            "problems": {
                pid: {
                    "stage_offsets": [s.offset for s in self.plans[pid].stages],
                    "stage": t.stage,
                    "window": list(t.window),
                    "results": t.results,
                    "history": [[c.step, c.from_stage, c.to_stage, c.pass_rate] for c in t.history],
                }
                for pid, t in self._tracks.items()
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from `state_dict()`; the problems and their stage plans must match."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"curriculum state version {state.get('version')!r} is not {STATE_VERSION}")
        saved = state["problems"]
        if set(saved) != set(self.plans):
            missing, extra = sorted(set(self.plans) - set(saved)), sorted(set(saved) - set(self.plans))
            raise ValueError(f"curriculum state is for other problems (missing {missing[:3]}, unexpected {extra[:3]})")
        tracks = {}
        for pid, s in saved.items():
            offsets = [p.offset for p in self.plans[pid].stages]
            if s["stage_offsets"] != offsets:
                raise ValueError(f"problem {pid!r}: saved stage plan {s['stage_offsets']} differs from {offsets}")
            history = [StageChange(int(a), int(b), int(c), float(d)) for a, b, c, d in s["history"]]
            window = [int(v) for v in s["window"]][-self.config.window:]
            tracks[pid] = _Track(stage=int(s["stage"]), window=window, results=int(s["results"]), history=history)
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self._tracks = tracks
        self._samples_per_stage = Counter({int(k): v for k, v in state["samples_per_stage"].items()})
        self._results = int(state["results"])
        self._off_stage = int(state["results_off_stage"])

    @classmethod
    def from_problems(cls, problems: Iterable, config: CurriculumConfig, seed: int = 0) -> "CurriculumState":
        from .stages import plan_problem

        return cls([plan_problem(p) for p in problems], config, seed)
