"""Sampled pass@k: generate n completions per problem, judge them, apply the Codex estimator.

Shared by `execrl eval` and by `execrl train` (held-out pass@1 before and after RL), so
both report the same number the same way.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

from core.problem import Problem
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
    """Pass@k overall and by difficulty, plus one row per problem."""

    n: int
    pass_at: dict[int, float]
    by_difficulty: dict[str, dict[int, float]]
    per_problem: list[dict] = field(default_factory=list)

    def summary(self, name: str = "") -> str:
        head = " ".join(f"pass@{k} {v:.3f}" for k, v in sorted(self.pass_at.items()))
        lines = [f"{name}{' ' if name else ''}{len(self.per_problem)} problems x {self.n} samples: {head}"]
        for level, scores in sorted(self.by_difficulty.items()):
            lines.append(f"  {level:<14}" + " ".join(f"pass@{k} {v:.3f}" for k, v in sorted(scores.items())))
        return "\n".join(lines)


def evaluate(problems: Sequence[Problem], tokenizer, rollout, executors, n: int, ks: Sequence[int],
             sampling: RolloutConfig, seed: int = 0) -> EvalReport:
    """Sample with `rollout` (a RolloutPool) under the rollout config's sampling (the
    training one: temperature, top-p, length, stop strings), judge with `executors` (an
    ExecutorPool); judging starts as soon as each problem's samples come back."""
    prompts = {p.id: build_prompt(p, tokenizer) for p in problems}
    requests = sampling.requests([prompts[p.id].input_ids for p in problems], [p.id for p in problems], seed, n=n)
    by_id = {p.id: p for p in problems}

    def submissions():
        for result in rollout.stream(requests):
            for completion in result.completions:
                problem = by_id[result.request_id]
                yield Submission(problem, prompts[problem.id].prefix + completion.text)

    passed: dict[str, int] = defaultdict(int)
    for _, result in executors.judge_stream(submissions()):
        passed[result.problem_id] += int(result.passed)
    return _report(problems, passed, n, ks)


def _report(problems: Sequence[Problem], passed: dict[str, int], n: int, ks: Sequence[int]) -> EvalReport:
    rows, by_level = [], defaultdict(list)
    for p in problems:
        scores = {k: pass_at_k(n, passed[p.id], k) for k in ks}
        rows.append({"problem_id": p.id, "difficulty": p.difficulty, "n": n, "correct": passed[p.id],
                     **{f"pass@{k}": s for k, s in scores.items()}})
        by_level[p.difficulty].append(scores)
    mean = lambda group: {k: sum(s[k] for s in group) / len(group) for k in ks}  # noqa: E731
    all_scores = [s for group in by_level.values() for s in group]
    return EvalReport(n, mean(all_scores), {lvl: mean(g) for lvl, g in by_level.items()}, rows)
