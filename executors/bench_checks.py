"""`execrl bench checks`: which analyser gives RLCF's compiler feedback (the issue asked
for the fastest and most precise of pyflakes, ruff and pylint, measured).

Programs: reference solutions (correct code: any finding is a false positive) and, for
each, one mutant per finding class with a fault of that class planted by a fixed rule
(`MUTATIONS`; the fault is known, so a class an analyser misses is a miss).  The table
reports, per analyser: milliseconds per program (the same programs, in the same process,
pylint through the persistent StaticChecker), the share of references flagged, and the
share of each class's mutants it flags with a finding of any kind.  pyflakes and ruff are
optional; an absent one is reported as skipped, with why.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Callable

from executors.static_checks import StaticChecker

# class -> text appended to a reference: a fault of that class, nothing else
MUTATIONS = {
    "syntax": "\ndef planted(:\n    return 1\n",
    "undefined_name": "\nplanted = undefined_nameplanted + 1\n",
    "used_before_assignment": "\ndef planted(flag):\n    if flag:\n        value = 1\n    return value\n",
    "call_arity": "\ndef planted(a, b):\n    return a + b\n\nplanted(1)\n",
    "invalid_statement": "\ndef planted():\n    return 1\n\ndef planted():\n    return 2\n",
    "no_return_value": "\ndef planted(items):\n    items.append(1)\n\nvalue = planted([])\n",
    "unreachable": "\ndef planted(x):\n    return x\n    x += 1\n",
    "unused_result": "\ndef planted(x):\n    x + 1\n    return x\n",
}


@dataclass
class AnalyserRun:
    name: str
    ms_per_program: float
    references_flagged: float
    recall: dict[str, float]


def pylint_flags() -> Callable[[str], bool]:
    checker = StaticChecker()
    return lambda program: bool(checker.check(program))


def pyflakes_flags() -> Callable[[str], bool]:
    from pyflakes.api import check

    class Collect:
        def __init__(self):
            self.found = False

        def unexpectedError(self, *_):
            self.found = True

        def syntaxError(self, *_):
            self.found = True

        def flake(self, _):
            self.found = True

    def flags(program: str) -> bool:
        reporter = Collect()
        check(program, "program.py", reporter)
        return reporter.found

    return flags


def ruff_flags() -> Callable[[str], bool]:
    ruff = shutil.which("ruff")
    if ruff is None:
        raise ImportError("the ruff executable is not on PATH")

    def flags(program: str) -> bool:
        out = subprocess.run([ruff, "check", "--output-format=json", "--no-cache", "--isolated", "--select",
                              "E9,F,PLE,B018", "-"], input=program, capture_output=True, text=True, timeout=60)
        return bool(json.loads(out.stdout or "[]"))

    return flags


ANALYSERS = {"pylint": pylint_flags, "pyflakes": pyflakes_flags, "ruff": ruff_flags}


def run_bench(references: list[str], analysers: list[str] = list(ANALYSERS)) -> dict:
    """Every analyser on the same references and mutants; skipped ones say why."""
    mutants = {kind: [ref.rstrip("\n") + "\n" + planted for ref in references] for kind, planted in MUTATIONS.items()}
    runs, skipped = [], {}
    for name in analysers:
        try:
            flags = ANALYSERS[name]()
        except (ImportError, OSError) as exc:
            skipped[name] = str(exc)
            continue
        flags(references[0])  # warm-up (imports, caches)
        start = time.perf_counter()
        flagged_refs = [flags(p) for p in references]
        recall = {kind: sum(map(flags, programs)) / len(programs) for kind, programs in mutants.items()}
        programs = len(references) * (1 + len(mutants))
        runs.append(AnalyserRun(name, 1000 * (time.perf_counter() - start) / programs,
                                sum(flagged_refs) / len(references), recall))
    return {"references": len(references), "mutants_per_class": len(references),
            "analysers": [vars(r) for r in runs], "skipped": skipped}


def sample_references(problems, limit: int, seed: int = 0) -> list[str]:
    solutions = [p.solutions[0] for p in problems if p.solutions]
    return random.Random(seed).sample(solutions, min(limit, len(solutions)))


def format_table(report: dict) -> str:
    kinds = list(MUTATIONS)
    lines = [f"static analysers on {report['references']} reference solutions and one planted fault per class "
             f"in each (recall: share of that class's mutants flagged)",
             f"{'analyser':<10} {'ms/prog':>8} {'refs flagged':>13} " + " ".join(f"{k[:12]:>12}" for k in kinds)]
    for r in report["analysers"]:
        lines.append(f"{r['name']:<10} {r['ms_per_program']:>8.2f} {r['references_flagged']:>13.3f} "
                     + " ".join(f"{r['recall'][k]:>12.2f}" for k in kinds))
    for name, why in report["skipped"].items():
        lines.append(f"{name:<10} skipped: {why}")
    return "\n".join(lines)
