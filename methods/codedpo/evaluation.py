"""The evaluation: pass@1 of a model and, against a baseline model (the one training
started from), the speed of their programs on the problems both solve.

pass@1: n samples per problem under the base's rollout sampling, judged by the executor
pool, tallied by cluster/evaluate.py (the same estimator and sandbox-error handling as
`execrl eval`).  The programs are kept (samples rows), so the speed comparison needs no
second sampling.

Speed (the paper's efficiency figures): for each problem that both models solve, the
first passing sample of each is timed on the problem's real tests on one idle slot
(timing.py: CPU time, coverage off, the median of `repeats` runs); speed-up =
baseline time / trained time.  Reported: the problems compared, the mean speed-up and
the share of problems whose program got at least 10% faster (speed-up >= 1.1).
"""

from __future__ import annotations

from typing import Sequence

from actors.config import RolloutConfig
from cluster.evaluate import tally
from core.problem import Problem
from core.verdict import PASS
from curriculum.prompt import build_prompt
from executors.config import ExecutorConfig
from executors.judge import Submission

from .timing import idle_judge, time_program

FASTER = 1.1


def sample_and_judge(problems: Sequence[Problem], tokenizer, rollout, executors, n: int, sampling: RolloutConfig,
                     seed: int) -> tuple[dict, list[dict]]:
    """(the pass@1 report as a dict, one row per problem with its programs and verdicts)."""
    fmt = sampling.prompt_style()
    prompts = {p.id: build_prompt(p, tokenizer, fmt=fmt) for p in problems}
    stop = prompts[problems[0].id].stop if problems else ()
    requests = sampling.requests([prompts[p.id].input_ids for p in problems], [p.id for p in problems], seed, n=n,
                                 stop=stop)
    programs = {r.request_id: [prompts[r.request_id].prefix + c.text for c in r.completions]
                for r in rollout.generate(requests)}
    subs = [Submission(p, program) for p in problems for program in programs[p.id]]
    results = executors.judge(subs)
    report = tally(problems, results, n, [1])
    rows, at = [], 0
    for p in problems:
        got = results[at:at + len(programs[p.id])]
        at += len(programs[p.id])
        rows.append({"problem_id": p.id, "programs": programs[p.id], "verdicts": [r.verdict for r in got]})
    return report.to_dict(), rows


def first_passing(row: dict) -> str | None:
    return next((prog for prog, v in zip(row["programs"], row["verdicts"]) if v == PASS), None)


def speed_comparison(problems: Sequence[Problem], before: Sequence[dict], after: Sequence[dict],
                     executor: ExecutorConfig, repeats: int) -> dict:
    """Per problem solved by both: each model's first passing program timed on the real
    tests; the mean speed-up and the share >= 1.1."""
    by_id = {p.id: p for p in problems}
    old = {r["problem_id"]: first_passing(r) for r in before}
    rows = []
    judge = idle_judge(executor)
    try:
        for r in after:
            new, prev = first_passing(r), old.get(r["problem_id"])
            if new is None or prev is None:
                continue
            problem = by_id[r["problem_id"]]
            t_old = time_program(judge, problem, prev, repeats).median_s
            t_new = time_program(judge, problem, new, repeats).median_s
            if t_old and t_new:
                rows.append({"problem_id": problem.id, "before_s": t_old, "after_s": t_new, "speedup": t_old / t_new,
                             "same_program": prev.strip() == new.strip()})
    finally:
        judge.close()
    speedups = [row["speedup"] for row in rows]
    return {"compared": len(rows), "mean_speedup": sum(speedups) / len(speedups) if speedups else None,
            "faster_share": sum(s >= FASTER for s in speedups) / len(speedups) if speedups else None,
            "same_program_share": sum(r["same_program"] for r in rows) / len(rows) if rows else None,
            "rows": rows}
