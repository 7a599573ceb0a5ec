"""RLCF's compiler feedback: one hand-written program per finding class, clean programs
(and real reference solutions) that must not be flagged, the score's weights, and the
judge returning findings when executor.static_checks is on."""

from __future__ import annotations

import random

import pytest

from core.verdict import Finding
from executors.static_checks import FINDING_CLASSES, StaticChecker, StaticWeights, static_score

CASES = [
    ("syntax", "def f(:\n    return 1\n"),
    ("undefined_name", "def f(x):\n    return x + y\n"),
    ("undefined_name", "import no_such_module_here\nprint(1)\n"),
    ("used_before_assignment", "def f(x):\n    if x:\n        y = 1\n    return y\n"),
    ("used_before_assignment", "def f():\n    print(total)\n    total = 1\n    return total\nf()\n"),
    ("call_arity", "def f(a, b):\n    return a + b\nprint(f(1))\n"),
    ("call_arity", "def f(a, b):\n    return a + b\nprint(f(1, 2, 3))\n"),
    ("call_arity", "def f(a, b):\n    return a + b\nprint(f(1, b=2, c=3))\n"),
    ("invalid_statement", "return 1\n"),
    ("invalid_statement", "def f():\n    return 1\ndef f():\n    return 2\n"),
    ("invalid_statement", "x = 1\nbreak\n"),
    ("no_return_value", "def f(a):\n    a.append(1)\nb = f([])\nprint(b)\n"),
    ("unreachable", "def f(x):\n    return x\n    print(x)\n"),
    ("unused_result", "def f(x):\n    x + 1\n    return x\n"),
]
CLEAN = [
    "def f(a, b=2, *args, **kw):\n    return a + b + len(args) + len(kw)\nprint(f(1), f(1, 2, 3, k=4))\n",
    "import sys\nn = int(sys.stdin.readline())\nfor i in range(n):\n    print(i)\n",
    "def f(x):\n    if x:\n        y = 1\n    else:\n        y = 2\n    return y\n",
    "from collections import Counter\nprint(Counter(input().split()).most_common(1)[0][0])\n",
    "class S:\n    def go(self, n):\n        return [k * k for k in range(n)]\nprint(S().go(3))\n",
    "def g():\n    '''Doc.'''\n    return 1\n",
]


@pytest.fixture(scope="module")
def checker():
    c = StaticChecker()
    yield c
    c.close()


@pytest.mark.parametrize("kind, program", CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)])
def test_each_finding_class_is_reported(checker, kind, program):
    kinds = {f.kind for f in checker.check(program)}
    assert kind in kinds, (kind, checker.check(program))


def test_every_class_has_a_case_and_a_weight():
    assert {k for k, _ in CASES} == set(FINDING_CLASSES)
    assert set(FINDING_CLASSES) == set(vars(StaticWeights()))


@pytest.mark.parametrize("program", CLEAN)
def test_clean_programs_have_no_findings(checker, program):
    assert checker.check(program) == ()


def test_a_syntax_error_is_the_only_finding_with_its_line(checker):
    findings = checker.check("x = 1\ny = (\nprint(q)\n")
    assert [f.kind for f in findings] == ["syntax"] and findings[0].line >= 2


def test_a_program_checked_after_another_is_not_confused_with_it(checker):
    """The linter is reused: the second program is read afresh, not from astroid's cache."""
    assert checker.check("def f():\n    return 1\n") == ()
    assert {f.kind for f in checker.check("def f():\n    return zz\n")} == {"undefined_name"}
    assert checker.check("def f():\n    return 1\n") == ()


def test_bundled_reference_solutions_are_clean(checker):
    """A sample of correct human-style programs: a finding on one is a false positive."""
    from problems.load import load_problems

    problems = [p for split in ("rl", "heldout", "hard-rl") for p in load_problems(f"bundled:{split}").problems]
    sample = random.Random(0).sample(problems, 150)
    flagged = [(p.id, checker.check(p.solutions[0])) for p in sample if checker.check(p.solutions[0])]
    assert flagged == []


def test_the_score_charges_each_finding_its_class_weight():
    weights = StaticWeights(undefined_name=0.5, unreachable=0.1)
    assert static_score((), weights) == 1.0
    two = (Finding("undefined_name", 1, "m"), Finding("unreachable", 3, "m"))
    assert static_score(two, weights) == pytest.approx(0.4)
    assert static_score((Finding("syntax", 1, "m"),), weights) == 0.0
    assert static_score(two * 3, weights) == 0.0  # floored
    assert static_score(two, {"undefined_name": 0.2}) == pytest.approx(0.8)  # a class without weight costs 0


@pytest.mark.slow
def test_the_judge_returns_findings_only_when_asked(tmp_path):
    from core.problem import Problem, StdioTest
    from executors.config import ExecutorConfig
    from executors.judge import Judge

    problem = Problem(id="double", source="t", statement="print 2n", tests=(StdioTest("3\n", "6\n"),))
    program = "def f(n):\n    return 2 * n\n    print(n)\nprint(f(int(input())))\n"
    with Judge(ExecutorConfig(static_checks=True), slots=1) as judge:
        checked = judge.judge(problem, program)
    with Judge(ExecutorConfig(), slots=1) as judge:
        unchecked = judge.judge(problem, program)
    assert checked.passed and [f.kind for f in checked.findings] == ["unreachable"]
    assert unchecked.passed and unchecked.findings is None
    assert list(checked.to_dict()["findings"]) == [{"kind": "unreachable", "line": 3, "message": "Unreachable code"}]


def test_bench_checks_compares_the_analysers(capsys):
    """`execrl bench checks`: pylint flags every planted class and no reference; pyflakes
    (undefined names, syntax, redefinitions only) misses the classes only pylint reports."""
    import json

    from cluster.cli import main

    assert main(["bench", "checks", "--limit", "4", "--analysers", "pylint,pyflakes", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    report = json.loads(lines[-1])
    assert "ms/prog" in lines[1] and report["references"] == 4
    pylint, pyflakes = report["analysers"]
    assert pylint["references_flagged"] == 0.0 and set(pylint["recall"].values()) == {1.0}
    assert pyflakes["recall"]["call_arity"] == 0.0 and pyflakes["recall"]["undefined_name"] == 1.0
    assert main(["bench", "checks", "--analysers", "clang"]) == 2
