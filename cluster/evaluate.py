"""Sampled pass@k: generate n completions per problem, judge them, apply the Codex estimator.

Shared by `execrl eval` and by `execrl train` (held-out and transfer pass@1 before and
after RL), so both report the same number the same way.  A sandbox error is our failure,
not the program's: it is left out of pass@k (a problem is scored on the samples that were
judged, and left out of pass@k where fewer than k were) and counted on the summary line
and in every row, so a run with a flaky sandbox says so instead of reporting a lower score.

Beside pass@k, RLCF's grounding metrics, with the same estimator over the same samples:
compile@k (the program parses and compiles), execute@k (it ran every test's input without
raising, timing out or running out of memory: a wrong answer still executed) and, where
the executors ran the static checks (executor.static_checks), static-clean@k (no finding).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from core.problem import Problem
from core.verdict import COMPILE_ERROR, PASS, SANDBOX_ERROR, WRONG_ANSWER, ExecutionResult
from actors.config import RolloutConfig
from curriculum.prompt import build_prompt
from executors.judge import Submission


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. (2021): 1 - C(n-c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


@dataclass
class EvalReport:
    """Pass@k overall and by difficulty, plus one row per problem (its judged samples
    `n`, `correct`, `sandbox_errors`, pass@k or None where fewer than k were judged)."""

    n: int
    pass_at: dict[int, float]
    by_difficulty: dict[str, dict[int, float]]
    per_problem: list[dict] = field(default_factory=list)
    sandbox_errors: int = 0  # samples left out of pass@k
    unscored: dict[int, int] = field(default_factory=dict)  # per k: problems with fewer than k judged samples
    # compile / execute / static_clean -> k -> value, overall and per difficulty (static_clean
    # only where every judged sample was statically checked)
    grounding_at: dict[str, dict[int, float]] = field(default_factory=dict)
    grounding_by_difficulty: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)

    def summary(self, name: str = "") -> str:
        head = " ".join(f"pass@{k} {v:.3f}" for k, v in sorted(self.pass_at.items()))
        lines = [f"{name}{' ' if name else ''}{len(self.per_problem)} problems x {self.n} samples: {head}"
                 + self._excluded()]
        if self.grounding_at:
            lines.append("  " + _grounding_line(self.grounding_at))
        for level, scores in sorted(self.by_difficulty.items()):
            grounding = self.grounding_by_difficulty.get(level)
            lines.append(f"  {level:<14}" + " ".join(f"pass@{k} {v:.3f}" for k, v in sorted(scores.items()))
                         + (f"  {_grounding_line(grounding)}" if grounding else ""))
        return "\n".join(lines)

    def _excluded(self) -> str:
        if not self.sandbox_errors:
            return ""
        unscored = ", ".join(f"{c} problem(s) without pass@{k}" for k, c in sorted(self.unscored.items()) if c)
        return f" ({self.sandbox_errors} samples excluded: sandbox errors{'; ' + unscored if unscored else ''})"

    def to_dict(self) -> dict:
        """The figures and the per-problem rows, JSON-safe (for a run's saved evaluation):
        the rows are what a comparison of runs resamples (a bootstrap over problems)."""
        return {"n": self.n, "pass_at": {str(k): v for k, v in self.pass_at.items()},
                "by_difficulty": {lvl: {str(k): v for k, v in s.items()} for lvl, s in self.by_difficulty.items()},
                "problems": len(self.per_problem), "sandbox_errors": self.sandbox_errors,
                "unscored": {str(k): v for k, v in self.unscored.items()},
                "grounding_at": {m: {str(k): v for k, v in s.items()} for m, s in self.grounding_at.items()},
                "grounding_by_difficulty": {lvl: {m: {str(k): v for k, v in s.items()} for m, s in g.items()}
                                            for lvl, g in self.grounding_by_difficulty.items()},
                "per_problem": [dict(row) for row in self.per_problem]}


def evaluate(problems: Sequence[Problem], tokenizer, rollout, executors, n: int, ks: Sequence[int],
             sampling: RolloutConfig, seed: int = 0) -> EvalReport:
    """Sample with `rollout` (a RolloutPool) under the rollout config's sampling (the
    training one: temperature, top-p, length, stop strings), judge with `executors` (an
    ExecutorPool); judging starts as soon as each problem's samples come back."""
    fmt = sampling.prompt_style()
    prompts = {p.id: build_prompt(p, tokenizer, fmt=fmt) for p in problems}
    stop = prompts[problems[0].id].stop if problems else ()
    requests = sampling.requests([prompts[p.id].input_ids for p in problems], [p.id for p in problems], seed, n=n,
                                 stop=stop)
    by_id = {p.id: p for p in problems}

    def submissions():
        for result in rollout.stream(requests):
            for completion in result.completions:
                problem = by_id[result.request_id]
                yield Submission(problem, prompts[problem.id].prefix + completion.text)

    return tally(problems, (result for _, result in executors.judge_stream(submissions())), n, ks)


def tally(problems: Sequence[Problem], results: Iterable[ExecutionResult], n: int, ks: Sequence[int]) -> EvalReport:
    """Pass@k (and the grounding metrics) from every sample's result (n per problem);
    sandbox errors are not samples."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    errors: dict[str, int] = defaultdict(int)
    for result in results:
        if result.verdict == SANDBOX_ERROR:
            errors[result.problem_id] += 1
            continue
        for metric, ok in grounding_flags(result).items():
            counts[result.problem_id][metric] += int(ok)
    checked = all(c["checked"] == n - errors[pid] for pid, c in counts.items()) and bool(counts)
    metrics = ("compile", "execute") + (("static_clean",) if checked else ())
    rows, by_level, grounding = [], defaultdict(list), defaultdict(list)
    for p in problems:
        judged, c = n - errors[p.id], counts[p.id]
        scores = _scores(judged, c["pass"], ks)
        rows.append({"problem_id": p.id, "difficulty": p.difficulty, "n": judged, "correct": c["pass"],
                     "sandbox_errors": errors[p.id], **{f"pass@{k}": s for k, s in scores.items()},
                     **{metric: c[metric] for metric in metrics}})
        by_level[p.difficulty].append(scores)
        grounding[p.difficulty].append({m: _scores(judged, c[m], ks) for m in metrics})
    all_scores = [s for group in by_level.values() for s in group]
    unscored = {k: sum(s[k] is None for s in all_scores) for k in ks}
    every = [g for group in grounding.values() for g in group]
    return EvalReport(n, _mean(all_scores, ks), {lvl: _mean(g, ks) for lvl, g in by_level.items()}, rows,
                      sum(errors.values()), unscored, _grounding_means(every, metrics, ks),
                      {lvl: _grounding_means(g, metrics, ks) for lvl, g in grounding.items()})


def grounding_flags(result: ExecutionResult) -> dict[str, bool]:
    """What one judged program achieved: passed, compiled, executed (every test's input ran
    without raising or a limit: a wrong answer executed), statically clean (when checked)."""
    return {"pass": result.verdict == PASS, "compile": result.verdict != COMPILE_ERROR,
            "execute": result.verdict in (PASS, WRONG_ANSWER), "checked": result.findings is not None,
            "static_clean": result.findings == ()}


def _scores(judged: int, correct: int, ks: Sequence[int]) -> dict[int, float | None]:
    return {k: pass_at_k(judged, correct, k) if judged >= k else None for k in ks}


def _grounding_means(per_problem: list[dict[str, dict]], metrics: Sequence[str], ks: Sequence[int]) -> dict:
    return {m: _mean([g[m] for g in per_problem], ks) for m in metrics}


def _grounding_line(grounding: dict[str, dict[int, float]]) -> str:
    names = {"compile": "compile", "execute": "execute", "static_clean": "static-clean"}
    return " ".join(f"{names[m]}@{k} {v:.3f}" for m, scores in grounding.items() for k, v in sorted(scores.items()))


def _mean(scores: list[dict], ks: Sequence[int]) -> dict[int, float]:
    """Mean pass@k over the problems that have one (NaN where none has)."""
    out = {}
    for k in ks:
        values = [s[k] for s in scores if s[k] is not None]
        out[k] = sum(values) / len(values) if values else float("nan")
    return out
