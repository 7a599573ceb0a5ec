"""The judge: a program and a problem in, an ExecutionResult out.

A Judge owns a few slots (fork servers) on one machine and runs programs on them in
parallel threads (the slots are separate processes, so threads only wait on pipes).
Each program is compiled once in its slot, then every test runs in a fresh fork; the
facts come back and are judged here, outside the sandbox, where expected outputs live.
"""

from __future__ import annotations

import json
import queue
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import Iterable, Iterator

from core.problem import AssertTest, CallTest, Problem, StdioTest, Test
from core.verdict import (COMPILE_ERROR, PASS, RUNTIME_CLASS, SANDBOX_ERROR, SKIPPED, WRONG_ANSWER,
                          ExecutionResult, TestResult)
from executors.config import ExecutorConfig, RewardScale
from executors.sandbox import SandboxPlan, plan_sandbox
from executors.slot import ForkServerSlot, SlotFailure
from executors.static_checks import StaticChecker
from executors.verdicts import classify

REPLY_GRACE_S = 10.0
REFERENCE_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Submission:
    """One program to judge: the problem it answers and its full source; `judged` says
    where the program came from (a sample's `code`, its `completion` after the starter
    code, or the code block a chat `response` gave, with the rule that picked it)."""

    problem: Problem
    program: str
    judged: str = "code"


def program_from_completion(problem: Problem, completion: str) -> str:
    """A completion continues the problem's starter code (HumanEval samples do this)."""
    return problem.starter_code + completion


class Judge:
    def __init__(self, cfg: ExecutorConfig, slots: int | None = None, plan: SandboxPlan | None = None) -> None:
        """`plan` overrides the layers chosen from the config (tests and benchmarks use
        it to measure or exercise one layer at a time)."""
        self.cfg = cfg
        self.plan = plan or plan_sandbox(cfg.sandbox, cfg.allow_unsandboxed)
        count = slots or cfg.slots_per_actor
        self._slots = [ForkServerSlot(self.plan, base_uid=cfg.base_uid, preload=tuple(cfg.preload), python=cfg.python,
                                      allow_missing=tuple(cfg.allow_missing_layers)) for _ in range(count)]
        try:
            for slot in self._slots:
                slot.start()  # fail here, clearly, rather than on the first program (LayersMissing too)
        except BaseException:
            self.close()
            raise
        self._free: queue.Queue[ForkServerSlot] = queue.Queue()
        for slot in self._slots:
            self._free.put(slot)
        self._reference_times: dict[str, float] = {}
        self._calibrations: dict[str, threading.Event] = {}  # set once a problem's reference is timed
        self._lock = threading.Lock()
        self._checker = StaticChecker() if cfg.static_checks else None

    @property
    def layers(self) -> tuple[str, ...]:
        """The sandbox layers the fork servers reported applying (not the plan's)."""
        return self._slots[0].layers if self._slots else ()

    @property
    def server_info(self) -> dict:
        """What the first fork server reported at start (layers, coverage, preloads)."""
        return dict(self._slots[0].info) if self._slots else {}

    @property
    def coverage_mode(self) -> str | None:
        """How the slots collect line coverage (their fork servers report it at start):
        "self-removing probes", "slipcover copy per test", or None without slipcover."""
        return self._slots[0].info.get("coverage") if self._slots else None

    def judge(self, problem: Problem, program: str, coverage: bool | None = None) -> ExecutionResult:
        if self.cfg.time_scale_to_reference > 0:
            self._calibrate_once(problem)  # before taking a slot: calibrating needs one
        result = self._run_on_free_slot(problem, program, coverage)[0]
        if self._checker is not None:
            result = replace(result, findings=self._checker.check(program))
        return result

    def _run_on_free_slot(self, problem: Problem, program: str, coverage: bool | None,
                          timeout_s: float | None = None) -> tuple[ExecutionResult, list[dict]]:
        slot = self._free.get()
        try:
            return self._run_on(slot, problem, program, self.cfg.coverage if coverage is None else coverage,
                                timeout_s)
        finally:
            self._free.put(slot)

    def judge_many(self, submissions: Iterable[Submission], coverage: bool | None = None
                   ) -> Iterator[tuple[int, ExecutionResult]]:
        """Yield (index, result) as programs finish, keeping every slot busy."""
        with ThreadPoolExecutor(max_workers=len(self._slots)) as pool:
            futures = {}
            for i, sub in enumerate(submissions):
                futures[pool.submit(self.judge, sub.problem, sub.program, coverage)] = i
            for future in as_completed(futures):
                yield futures[future], future.result()

    def _run_on(self, slot: ForkServerSlot, problem: Problem, program: str, coverage: bool,
                timeout_s: float | None = None) -> tuple[ExecutionResult, list[dict]]:
        """The result and the server's facts per test that ran (calibration reads CPU times)."""
        limits = self._limits(problem, timeout_s)
        request = {"op": "judge", "program": program, "coverage": coverage, "limits": limits,
                   "tests": [test_request(t, problem) for t in problem.tests]}
        budget = REPLY_GRACE_S + limits["wall_timeout_s"] * len(problem.tests)
        try:
            reply = slot.request(request, budget)
        except SlotFailure as exc:
            return self._result(problem, SANDBOX_ERROR, (), (), slot, error=str(exc), coverage_known=False), []
        if not reply["ok"]:
            known = coverage and self.coverage_mode is not None  # nothing ran: nothing was missed
            return self._result(problem, COMPILE_ERROR, (), (), slot, error=reply["compile_error"],
                                coverage_known=known), []
        runs = reply["runs"]
        tests = [classify(t, facts, self.cfg.float_tolerance) for t, facts in zip(problem.tests, runs)]
        tests += [TestResult(SKIPPED, 0.0)] * (len(problem.tests) - len(tests))
        # Known only if every test that ran left a line record (a test killed before its
        # coverage began, or a slipcover copy's killed test, has none).
        known = bool(reply.get("coverage")) and all(run.get("lines") is not None for run in runs)
        result = self._result(problem, program_verdict(tuple(tests)), tuple(tests), tuple(reply["executable_lines"]),
                              slot, coverage_known=known)
        return result, runs

    def _limits(self, problem: Problem, timeout_s: float | None = None) -> dict:
        timeout = timeout_s or self.cfg.timeout_s
        reference = self._reference_times.get(problem.id)
        if self.cfg.time_scale_to_reference > 0 and reference is not None:
            timeout = max(timeout, self.cfg.time_scale_to_reference * reference)
        return {"timeout_s": timeout, "wall_timeout_s": self.cfg.wall_limit(timeout), "memory_mb": self.cfg.memory_mb,
                "max_output_bytes": self.cfg.max_output_bytes, "processes": self.cfg.max_processes}

    def _calibrate_once(self, problem: Problem) -> None:
        """The first time a problem is judged, time its reference solution (if it has
        one) so that time limits scale with it; later programs reuse the figure."""
        with self._lock:
            done = self._calibrations.get(problem.id)
            first = done is None
            if first:
                done = self._calibrations[problem.id] = threading.Event()
        if not first:
            done.wait()  # another thread is timing it: its programs get the same limit
            return
        try:
            self.calibrate(problem)
        finally:
            done.set()

    def calibrate(self, problem: Problem) -> float | None:
        """Time the canonical solution (trusted: it gets a generous limit, since a slow
        reference is the reason to scale); later CPU-time limits scale with its slowest
        test's CPU time."""
        if problem.canonical_solution is None:
            return None
        result, runs = self._run_on_free_slot(problem, problem.canonical_solution, coverage=False,
                                              timeout_s=max(self.cfg.timeout_s, REFERENCE_TIMEOUT_S))
        if not result.passed:
            return None
        slowest = max(run.get("cpu_s") or 0.0 for run in runs)
        with self._lock:
            self._reference_times[problem.id] = slowest
        return slowest

    def _result(self, problem: Problem, verdict: str, tests, executable, slot: ForkServerSlot,
                error: str | None = None, coverage_known: bool = False) -> ExecutionResult:
        executed = sorted(set().union(*(t.executed_lines for t in tests)) & set(executable)) if tests else []
        failing = next((t for t in tests if t.verdict not in (PASS, SKIPPED)), None)
        return ExecutionResult(
            problem_id=problem.id, verdict=verdict, reward=reward_for(verdict, self.cfg.reward),
            tests=tuple(tests), executed_lines=tuple(executed), executable_lines=tuple(executable),
            error=error or (failing.error if failing else None), coverage_known=coverage_known,
            sandbox_layers=slot.layers)

    def close(self) -> None:
        for slot in self._slots:
            slot.close()
        if getattr(self, "_checker", None) is not None:
            self._checker.close()

    def __enter__(self) -> "Judge":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def test_request(test: Test, problem: Problem) -> dict:
    """What the sandbox is told about a test: never the expected output."""
    if isinstance(test, StdioTest):
        return {"kind": "stdio", "input": test.input}
    if isinstance(test, CallTest):
        return {"kind": "call", "entry_point": problem.entry_point, "args": json.dumps(list(test.args))}
    if isinstance(test, AssertTest):
        return {"kind": "assert", "code": test.code, "setup": test.setup, "entry_point": problem.entry_point}
    raise TypeError(f"unknown test type {type(test).__name__}")


def program_verdict(tests: tuple[TestResult, ...]) -> str:
    """Our failure first; then the first runtime-class failure; then a wrong answer."""
    verdicts = [t.verdict for t in tests]
    if SANDBOX_ERROR in verdicts:
        return SANDBOX_ERROR
    runtime = next((v for v in verdicts if v in RUNTIME_CLASS), None)
    if runtime:
        return runtime
    return WRONG_ANSWER if WRONG_ANSWER in verdicts else PASS


def reward_for(verdict: str, scale: RewardScale) -> float | None:
    """StepCoder's reward; None for sandbox_error (our failure: train on nothing)."""
    if verdict == SANDBOX_ERROR:
        return None
    if verdict == PASS:
        return scale.all_pass
    if verdict == COMPILE_ERROR:
        return scale.compile_error
    if verdict in RUNTIME_CLASS:
        return scale.runtime_error
    return scale.failed_test
