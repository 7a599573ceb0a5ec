"""CYCLE's iterative self-refinement: the loop (stops at the first pass, and after R
rounds), real executors' feedback in the next prompt, and the figures (pass@1 by round,
exact-copy rate, fixed share) on hand-built cases."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from core.problem import Problem, StdioTest
from core.verdict import SANDBOX_ERROR
from executors.config import ExecutorConfig
from executors.judge import Judge
from methods.cycle.refine import Attempt, Chain, exact_copy, report, rows, run_refinement
from methods.cycle.template import PROGRAM_HEADER

SOLUTION = "n = int(input())\ntotal = 0\nfor _ in range(n):\n    total += int(input())\nprint(total)\n"
FAULTY = SOLUTION.replace("total += ", "total -= ")


def problem(pid: str, difficulty: str) -> Problem:
    return Problem(id=pid, source="test", difficulty=difficulty, statement=f"Task {pid}: print the sum of n numbers.",
                   starter_code="", solutions=(SOLUTION,), entry_point=None,
                   tests=(StdioTest("0\n", "0\n"), StdioTest("2\n1\n2\n", "3\n")))


EASY, FIXABLE, STUBBORN = problem("easy", "easy"), problem("fixable", "hard"), problem("stubborn", "hard")


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def judge():
    with Judge(ExecutorConfig(timeout_s=2.0), slots=1) as j:
        yield lambda subs: [j.judge(s.problem, s.program) for s in subs]


class Scripted:
    """A stand-in for the model: `easy` is solved at once; `fixable` is wrong at first
    and fixed when asked to refine; `stubborn` copies its faulty program back.  Every
    batch of prompts it was given is kept."""

    def __init__(self, tok):
        self.tok, self.calls = tok, []

    def __call__(self, requests):
        texts = [self.tok.decode(ids) for ids, _, _ in requests]
        self.calls.append(texts)
        out = []
        for text, (_, n, _) in zip(texts, requests):
            refining = PROGRAM_HEADER in text
            if "Task easy" in text or ("Task fixable" in text and refining):
                out.append([SOLUTION] * n)
            else:
                out.append([FAULTY] * n)
        return out


def test_loop_stops_at_the_first_pass_and_after_r_rounds(tok, judge):
    model = Scripted(tok)
    chains = run_refinement([EASY, FIXABLE, STUBBORN], tok, model, judge, samples=2, rounds=3)
    assert len(model.calls) == 4  # round 0, then three refinement rounds
    assert [len(c) for c in model.calls] == [3, 4, 2, 2]  # fixable's chains leave after round 1
    by_problem = {pid: [c for c in chains if c.problem_id == pid] for pid in ("easy", "fixable", "stubborn")}
    assert all(len(c.attempts) == 1 and c.passed_round == 0 for c in by_problem["easy"])
    assert all(len(c.attempts) == 2 and c.passed_round == 1 for c in by_problem["fixable"])
    assert all(len(c.attempts) == 4 and c.passed_round is None for c in by_problem["stubborn"])
    assert [a.exact_copy for a in by_problem["stubborn"][0].attempts] == [None, True, True, True]
    assert by_problem["fixable"][0].attempts[1].exact_copy is False


def test_refinement_prompt_carries_the_programs_real_feedback(tok, judge):
    model = Scripted(tok)
    run_refinement([FIXABLE], tok, model, judge, samples=1, rounds=1)
    (prompt,) = model.calls[1]
    assert PROGRAM_HEADER + FAULTY in prompt
    assert "# verdict: wrong_answer (test 2 of 2 failed)\n# input: 2\\n1\\n2\n# expected: 3\n# got: -3\n" in prompt


def test_each_round_shows_the_latest_program_and_its_own_feedback(tok, judge):
    """Round 2's prompt holds round 1's program and round 1's feedback, not round 0's."""
    broken = "print(\n"
    calls = []

    def model(requests):
        texts = [tok.decode(ids) for ids, _, _ in requests]
        calls.append(texts)
        return [[broken if PROGRAM_HEADER + FAULTY in t else FAULTY] * n for t, (_, n, _) in zip(texts, requests)]

    chains = run_refinement([FIXABLE], tok, model, judge, samples=1, rounds=2)
    assert [a.verdict for a in chains[0].attempts] == ["wrong_answer", "compile_error", "wrong_answer"]
    (second,) = calls[2]
    assert PROGRAM_HEADER + broken in second and PROGRAM_HEADER + FAULTY not in second
    assert "# verdict: compile_error\n# error: SyntaxError" in second and "# expected: 3" not in second


def test_zero_rounds_is_one_shot_generation(tok, judge):
    model = Scripted(tok)
    chains = run_refinement([FIXABLE], tok, model, judge, samples=3, rounds=0)
    assert len(model.calls) == 1 and all(len(c.attempts) == 1 for c in chains)
    assert report(chains, 0, 3).pass_at_1 == [0.0]


def test_report_figures_by_round_and_difficulty(tok, judge):
    chains = run_refinement([EASY, FIXABLE, STUBBORN], tok, Scripted(tok), judge, samples=2, rounds=2)
    rep = report(chains, rounds=2, samples=2)
    assert rep.pass_at_1 == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert rep.exact_copy == [None, 0.5, 1.0] and rep.fixed == [None, 0.5, 0.0]
    assert rep.refinements == [0, 4, 2] and rep.empty == [None, 0.0, 0.0]
    assert rep.by_difficulty["hard"]["pass_at_1"] == [0.0, 0.5, 0.5]
    assert rep.by_difficulty["easy"]["pass_at_1"] == [1.0, 1.0, 1.0]
    lines = rows(chains)
    stubborn = next(r for r in lines if r["problem_id"] == "stubborn")
    assert [a["round"] for a in stubborn["chains"][0]["rounds"]] == [0, 1, 2]
    assert stubborn["chains"][0]["rounds"][2]["feedback"].startswith("# verdict: wrong_answer")
    assert "round  pass@1  exact-copy  fixed  empty" in rep.summary()


def test_an_empty_refinement_is_counted_as_such(tok, judge):
    def model(requests):  # one-shot: a wrong program; asked to refine: nothing at all
        return [["" if PROGRAM_HEADER in tok.decode(ids) else FAULTY] * n for ids, n, _ in requests]

    chains = run_refinement([FIXABLE], tok, model, judge, samples=1, rounds=2)
    assert [a.empty for a in chains[0].attempts] == [False, True, True]
    assert [a.exact_copy for a in chains[0].attempts] == [None, False, True]  # empty twice: a copy
    rep = report(chains, 2, 1)
    assert rep.empty == [None, 1.0, 1.0] and rep.exact_copy == [None, 0.0, 1.0]


def test_exact_copy_is_token_for_token(tok):
    assert exact_copy(tok, FAULTY, FAULTY)
    assert not exact_copy(tok, FAULTY, SOLUTION)  # one operator changed
    assert not exact_copy(tok, FAULTY, FAULTY + "\n")  # a trailing blank line is a change
    assert not exact_copy(tok, FAULTY, FAULTY.replace("    ", "  "))  # so is indentation


def test_pass_at_1_weighs_problems_equally_and_leaves_out_sandbox_errors():
    def chain(pid, level, *verdicts, copies=()):
        c = Chain(pid, level)
        for r, v in enumerate(verdicts):
            c.attempts.append(Attempt(r, f"p{r}", v, exact_copy=(copies[r - 1] if r else None)))
        return c

    chains = [chain("a", "x", "wrong_answer", "pass", copies=(False,)),
              chain("a", "x", "wrong_answer", "wrong_answer", copies=(True,)),
              chain("a", "x", "pass"), chain("a", "x", "pass"),
              chain("b", "y", "wrong_answer", SANDBOX_ERROR, copies=(False,)),
              chain("b", "y", "wrong_answer", "pass", copies=(False,))]
    rep = report(chains, rounds=1, samples=4)
    # a: 2 of 4 then 3 of 4; b: its sandboxed chain is left out, 0 of 1 then 1 of 1
    assert rep.pass_at_1 == pytest.approx([(0.5 + 0.0) / 2, (0.75 + 1.0) / 2])
    assert rep.sandbox_errors == 1 and rep.refinements == [0, 3]
    assert rep.exact_copy[1] == pytest.approx(1 / 3) and rep.fixed[1] == pytest.approx(2 / 3)
