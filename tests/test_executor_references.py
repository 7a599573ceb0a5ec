"""Every reference solution in every data set passes the executor; broken ones fail right."""

import random

import pytest

from core.problem import CallTest, Problem, StdioTest
from core.verdict import COMPILE_ERROR, PASS, RUNTIME_ERROR, TIMEOUT, WRONG_ANSWER
from executors.config import ExecutorConfig
from executors.judge import Judge, Submission
from problems.bundled import generate_split
from problems.load import load_problems


@pytest.fixture(scope="module")
def judge():
    with Judge(ExecutorConfig(timeout_s=20.0), slots=2) as j:  # references are trusted to finish; CI is noisy
        yield j


def _sandbox(judge) -> str:
    """The layers the fork servers applied, and whether programs could import only what
    the server preloaded (no bwrap, an interpreter the tests' uid cannot read)."""
    info = judge.server_info
    reach = ("only what the fork server loaded (the tests' uid cannot read the interpreter): "
             f"{len(info.get('preloaded', []))} modules at start, numpy once a program names it"
             if info.get("stdlib_unreadable") else "the interpreter's whole library")
    return f"layers {'+'.join(judge.layers)}; programs import {reach}"


def _all_references_pass(judge, problems):
    subs = [Submission(p, p.canonical_solution) for p in problems]
    failures = []
    for i, result in judge.judge_many(subs, coverage=False):
        if not result.passed:
            failures.append((problems[i].id, result.verdict, result.error))
    print(f"{len(problems)} references under {_sandbox(judge)}")
    assert not failures, f"{len(failures)} references failed under {_sandbox(judge)}, e.g. {failures[:3]}"


def test_programs_import_numpy_whatever_the_sandbox_can_read(judge):
    """Without bwrap, with Python under /root (unreadable to the tests' uid), a program
    imports only what the server loaded: numpy (imported when a program names it) and
    the standard modules the data sets' references use must be among it (a separate
    program, judged first: numpy's import loads some of them into the server)."""
    problem = Problem(id="np", source="t", statement="s", tests=(StdioTest("1 2 3\n", "6\n"),))
    numpy_program = ("import numpy as np\nimport numpy.random\n"
                     "print(int(np.array(list(map(int, input().split()))).sum()))\n")
    stdlib_program = ("import types, atexit, secrets, base64, binascii, pickle\n"
                      "print(pickle.loads(pickle.dumps(sum(map(int, input().split())))))\n")
    for program in (stdlib_program, numpy_program):
        result = judge.judge(problem, program)
        assert result.verdict == PASS, f"{result.error} under {_sandbox(judge)}"


@pytest.mark.parametrize("name, count", [
    ("apps_sample/apps_train_sample.jsonl", 105),
    ("taco_examples/taco_test_examples.jsonl", 674),
    ("mbpp/mbpp.jsonl", 974),
    ("mbpp/sanitized-mbpp.json", 427),
])
def test_shared_data_references_pass(judge, shared_data, name, count):
    problems = load_problems(str(shared_data / name)).problems
    assert len(problems) == count
    _all_references_pass(judge, problems)


@pytest.mark.slow
def test_leetcode_references_pass(judge, shared_data):
    problems = load_problems(str(shared_data / "leetcode/leetcodedataset.jsonl")).problems
    assert len(problems) == 1000
    _all_references_pass(judge, problems)


def test_humaneval_references_pass(judge):
    problems = load_problems("humaneval").problems
    assert len(problems) == 164
    _all_references_pass(judge, problems)


def test_bundled_references_pass(judge):
    rng = random.Random(0)
    problems = [p for split in ("sft", "rl", "heldout", "transfer") for p in rng.sample(generate_split(split), 60)]
    _all_references_pass(judge, problems)


def test_coverage_marks_the_branch_taken(judge):
    problem = load_problems("humaneval").problems[0]
    program = problem.canonical_solution + "\n\nif len(str(0)) > 5:\n    print('never')\n"
    result = judge.judge(problem, program)
    assert result.passed
    lines = program.split("\n")
    never = lines.index("    print('never')") + 1
    assert never in result.executable_lines and never not in result.executed_lines
    assert set(result.executed_lines) <= set(result.executable_lines)
    assert result.tests[0].executed_lines == result.executed_lines


def _mutations(problem):
    """(program, expected verdict) pairs that break a reference in known ways."""
    ref = problem.canonical_solution
    yield ref + "\nraise ValueError('boom')\n", RUNTIME_ERROR
    yield ref + "\ndef broken(:\n", COMPILE_ERROR
    yield ref + "\nwhile True:\n    pass\n", TIMEOUT


@pytest.mark.parametrize("split_index", [0, 1, 2])
def test_broken_references_fail_with_the_right_verdict(judge, split_index):
    problems = generate_split("sft")
    stdio = next(p for p in problems[split_index * 7:] if isinstance(p.tests[0], StdioTest))
    call = next(p for p in problems[split_index * 7:] if isinstance(p.tests[0], CallTest))
    for problem in (stdio, call):
        for program, verdict in _mutations(problem):
            result = judge.judge(problem, program)
            assert result.verdict == verdict, (problem.id, program, result)
    wrong_stdio = "print('definitely not the answer')\n"
    assert judge.judge(stdio, wrong_stdio).verdict == WRONG_ANSWER
    fn = call.entry_point
    assert judge.judge(call, f"def {fn}(*args):\n    return 'nope'\n").verdict == WRONG_ANSWER


def test_rewards_follow_stepcoders_scale(judge):
    problem = generate_split("sft")[0]
    cases = {problem.canonical_solution: 1.0, "def f(:\n": -1.0, "raise SystemError('x')\n": -0.6,
             "print('wrong')\n" if problem.entry_point is None else f"def {problem.entry_point}(*a):\n    return 'x'\n": -0.3}
    for program, reward in cases.items():
        assert judge.judge(problem, program).reward == reward, program
