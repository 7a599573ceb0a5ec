"""CYCLE's data side: feedback text, the refinement template and its token budget, PGM,
the examples built from collected samples, the mixing of refinement and generation rows,
and configs/cycle.yaml."""

from __future__ import annotations

import random

import pytest
from transformers import AutoTokenizer

from core.problem import Problem, StdioTest
from core.verdict import COMPILE_ERROR, PASS, RUNTIME_ERROR, WRONG_ANSWER, ExecutionResult
from core.verdict import TestResult as OneTest
from methods.cycle.config import CycleConfig, DataConfig, TemplateConfig, load_cycle_config
from methods.cycle.data import MixedBatches, Row, Sample, build_examples, refine_rows
from methods.cycle.feedback import Feedback, render, shorten
from methods.cycle.pgm import mask_span, mask_token_id
from methods.cycle.template import FEEDBACK_HEADER, FIX_HEADER, PROGRAM_HEADER, refine_prompt

SOLUTION = "n = int(input())\ntotal = 0\nfor _ in range(n):\n    total += int(input())\nprint(total)\n"
FAULTY = SOLUTION.replace("total += ", "total -= ")


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def problem(pid="p/1", starter="") -> Problem:
    return Problem(id=pid, source="test", difficulty="easy", statement="Read n, then n integers; print their sum.",
                   starter_code=starter, solutions=(starter + SOLUTION[len(starter):],), entry_point=None,
                   tests=(StdioTest("0\n", "0\n"), StdioTest("2\n1\n2\n", "3\n")))


WA = Feedback(WRONG_ANSWER, 2, 2, "2\n1\n2\n", "3\n", "-3\n", "wrong output")


# ---- feedback ----------------------------------------------------------------------

def test_feedback_from_a_real_result_names_the_first_failing_test():
    tests = (OneTest(PASS, 0.0), OneTest(RUNTIME_ERROR, 0.0, error="ValueError (line 2): bad", input="x\n",
                                                expected="1\n", actual=""))
    fb = Feedback.from_result(ExecutionResult("p/1", RUNTIME_ERROR, -0.6, tests))
    assert (fb.failed_test, fb.tests, fb.input, fb.error) == (2, 2, "x\n", "ValueError (line 2): bad")
    text = render(fb)
    assert text.splitlines() == ["# verdict: runtime_error (test 2 of 2 failed)", "# input: x", "# expected: 1",
                                 "# got: ", "# error: ValueError (line 2): bad"]


def test_feedback_of_a_compile_error_is_its_message_only():
    fb = Feedback.from_result(ExecutionResult("p/1", COMPILE_ERROR, -1.0, (), error="SyntaxError (line 1): oops"))
    assert render(fb) == "# verdict: compile_error\n# error: SyntaxError (line 1): oops\n"


def test_feedback_fields_are_cut_by_lines_and_characters():
    assert shorten("a\nb\nc\n", chars=100, lines=2) == "a\\nb..."
    assert shorten("x" * 50, chars=10, lines=4) == "x" * 10 + "..."
    assert shorten("short\n", chars=10, lines=4) == "short"
    fb = Feedback(WRONG_ANSWER, 1, 1, "1\n" * 50, "9" * 500, "0", "wrong output")
    lines = render(fb, field_chars=20, field_lines=3).splitlines()
    assert lines[1] == "# input: 1\\n1\\n1..." and lines[2] == "# expected: " + "9" * 20 + "..."
    assert not any("wrong output" in line for line in lines)  # restates the verdict: not shown


# ---- template ----------------------------------------------------------------------

def test_template_layout_and_the_programs_span(tok):
    p = problem()
    prompt = refine_prompt(p, tok, FAULTY, WA)
    assert prompt.text.startswith("# Read n, then n integers; print their sum.\n\n" + PROGRAM_HEADER + FAULTY)
    assert prompt.text.endswith(FEEDBACK_HEADER + render(WA) + FIX_HEADER)
    lo, hi = prompt.program_span
    assert tok.decode(prompt.input_ids[lo:hi]) == FAULTY
    assert tok.decode(prompt.input_ids) .endswith(FIX_HEADER)
    assert (prompt.cut_program, prompt.cut_feedback) == (0, 0)


def test_template_ends_with_the_starter_code_like_a_one_shot_prompt(tok):
    p = problem(starter="def f(x):\n")
    prompt = refine_prompt(p, tok, "def f(x):\n    return 0\n", WA)
    assert prompt.prefix == "def f(x):\n" and prompt.text.endswith(FIX_HEADER + "def f(x):\n")


def test_long_program_and_feedback_are_cut_to_the_budget(tok):
    budget = TemplateConfig(program_tokens=24, feedback_tokens=16)
    long_program = FAULTY * 20
    long_feedback = Feedback(WRONG_ANSWER, 1, 1, "1 2 3 4 5 6 7 8 9\n" * 4, "7" * 160, "8" * 160)
    prompt = refine_prompt(problem(), tok, long_program, long_feedback, budget)
    lo, hi = prompt.program_span
    assert hi - lo == 24
    assert prompt.cut_program == len(tok(long_program, add_special_tokens=False).input_ids) - 24
    assert f"# [{prompt.cut_program} more tokens of the program cut]\n" in prompt.text
    assert prompt.cut_feedback > 0 and "# [feedback cut]\n" + FIX_HEADER in prompt.text
    short = refine_prompt(problem(), tok, FAULTY, WA, budget)
    extra = len(prompt.input_ids) - len(short.input_ids)
    # at most the budgets' worth of tokens more than a short prompt, plus the two cut markers
    assert extra <= (24 - (short.program_span[1] - short.program_span[0])) + 16 + 30
    full = refine_prompt(problem(), tok, long_program, long_feedback)
    assert len(full.input_ids) > len(prompt.input_ids) + 100


# ---- PGM ---------------------------------------------------------------------------

def test_pgm_masks_the_asked_fraction_inside_the_span_only():
    ids = list(range(1000, 1400))
    out, masked = mask_span(ids, (100, 300), 0.25, 7, random.Random(0))
    assert len(masked) == 50 and all(100 <= i < 300 for i in masked)
    assert [i for i, (a, b) in enumerate(zip(ids, out)) if a != b] == masked
    assert all(out[i] == 7 for i in masked)
    for fraction in (0.05, 0.1, 0.33):
        _, m = mask_span(ids, (0, 237), fraction, 7, random.Random(1))
        assert abs(len(m) / 237 - fraction) <= 0.5 / 237 + 1e-9


def test_pgm_is_seeded():
    ids = list(range(200))
    a = mask_span(ids, (10, 190), 0.1, 0, random.Random(3))
    assert a == mask_span(ids, (10, 190), 0.1, 0, random.Random(3))
    assert a[1] != mask_span(ids, (10, 190), 0.1, 0, random.Random(4))[1]
    assert mask_span(ids, (10, 190), 0.0, 0, random.Random(3)) == (ids, [])


def test_mask_token_falls_back_to_pad_and_a_named_one_must_be_one_token(tok):
    assert mask_token_id(tok) == tok.pad_token_id  # the tiny tokenizer has no mask or unk token
    assert mask_token_id(tok, "<|pad|>") == tok.pad_token_id
    with pytest.raises(ValueError, match="data.mask_token 'hello world' is"):
        mask_token_id(tok, "hello world")


def test_rows_mask_the_faulty_program_never_the_target(tok):
    p = problem()
    samples = [Sample(p.id, FAULTY, WRONG_ANSWER, False, WA.to_dict())]
    examples, _ = build_examples(samples, {p.id: p}, DataConfig(), seed=0)
    cfg = DataConfig(pgm_fraction=0.5)
    (row,) = refine_rows(examples, {p.id: p}, tok, cfg, seed=0)
    prompt = refine_prompt(p, tok, FAULTY, WA)
    lo, hi = prompt.program_span
    assert len(row.masked) == round(0.5 * (hi - lo)) and all(lo <= i < hi for i in row.masked)
    assert [i for i, (a, b) in enumerate(zip(prompt.input_ids, row.prompt)) if a != b] == list(row.masked)
    assert row.target == tok(SOLUTION, add_special_tokens=False).input_ids + [tok.eos_token_id]
    assert tok.pad_token_id not in row.target
    assert refine_rows(examples, {p.id: p}, tok, cfg, seed=0) == [row]  # reproducible
    (plain,) = refine_rows(examples, {p.id: p}, tok, DataConfig(pgm_fraction=0.0), seed=0)
    assert plain.prompt == list(prompt.input_ids) and plain.masked == ()


# ---- examples ----------------------------------------------------------------------

def test_examples_dedupe_cap_per_problem_and_pick_targets():
    p, q = problem("p/1"), problem("p/2")
    wrong = lambda k: FAULTY.replace("0\n", f"{k}\n", 1)  # noqa: E731
    samples = [Sample(p.id, wrong(k), WRONG_ANSWER, False, WA.to_dict()) for k in (1, 1, 2, 3, 4, 5, 6)]
    samples += [Sample(p.id, "own passing\n", PASS, True), Sample(q.id, wrong(9), WRONG_ANSWER, False, WA.to_dict())]
    problems = {p.id: p, q.id: q}
    examples, counts = build_examples(samples, problems, DataConfig(max_faulty_per_problem=4), seed=0)
    assert [e.problem_id for e in examples] == [p.id] * 4 + [q.id]
    assert len({e.faulty for e in examples[:4]}) == 4 and counts["distinct_faulty"] == 7
    assert all(e.target == SOLUTION and e.target_source == "reference" for e in examples)
    own, counts = build_examples(samples, problems, DataConfig(target="own"), seed=0)
    assert {e.target for e in own if e.problem_id == p.id} == {"own passing\n"}
    assert [e.target_source for e in own if e.problem_id == q.id] == ["reference (fallback)"]
    again, _ = build_examples(samples, problems, DataConfig(max_faulty_per_problem=4), seed=0)
    assert again == examples


# ---- mixing ------------------------------------------------------------------------

def _rows(tag: int, n: int) -> list[Row]:
    return [Row([tag, i], [i]) for i in range(n)]


@pytest.mark.parametrize("share,refine", [(0.5, 16), (0.25, 8), (1.0, 32), (0.0, 0), (0.3, 10)])
def test_every_batch_holds_the_asked_share_of_refinement_rows(share, refine):
    batches = MixedBatches(_rows(1, 50), _rows(2, 50), share, 32, seed=0)
    for _ in range(5):
        rows = batches.next()
        assert len(rows) == 32 and sum(r.prompt[0] == 1 for r in rows) == refine
        assert len({tuple(r.prompt) for r in rows}) == 32  # distinct while the pools allow


def test_mixing_is_seeded_and_refuses_a_missing_side():
    first = [MixedBatches(_rows(1, 9), _rows(2, 9), 0.5, 8, seed=1).next() for _ in range(2)]
    assert first[0] == first[1]
    assert MixedBatches(_rows(1, 9), _rows(2, 9), 0.5, 8, seed=2).next() != first[0]
    with pytest.raises(ValueError, match="no refinement examples"):
        MixedBatches([], _rows(2, 3), 0.5, 8, seed=0)
    with pytest.raises(ValueError, match="refine_share < 1 needs generation"):
        MixedBatches(_rows(1, 3), [], 0.5, 8, seed=0)
    assert len(MixedBatches(_rows(1, 3), [], 1.0, 8, seed=0).next()) == 8  # drawn again past the pool


# ---- config ------------------------------------------------------------------------

def test_shipped_config_is_the_defaults_and_routes_overrides():
    from core.settings import to_dict

    cycle, base = load_cycle_config()
    assert to_dict(cycle) == to_dict(CycleConfig())
    assert base.data.rl == "bundled:hard-rl" and base.rollout.max_new_tokens == 160  # tiny-hard.yaml
    cycle, base = load_cycle_config(None, ["seed=3", "data.pgm_fraction=0", "base.rollout.max_new_tokens=64"])
    assert (base.seed, base.data.seed, base.rollout.max_new_tokens, cycle.data.pgm_fraction) == (3, 3, 64, 0.0)


def test_bad_cycle_settings_fail_naming_the_key():
    from core.settings import ConfigError

    with pytest.raises(ConfigError, match="data.pgm_fraction"):
        load_cycle_config(None, ["data.pgm_fraction=1.5"])
    with pytest.raises(ConfigError, match="data.target"):
        load_cycle_config(None, ["data.target=mine"])
    with pytest.raises(ConfigError, match="base.seed"):
        load_cycle_config(None, ["base.seed=1"])
    with pytest.raises(ConfigError, match="'nope.yaml'"):
        load_cycle_config(None, ["base=nope.yaml"])


def test_a_held_out_set_never_builds_refinement_data(tmp_path):
    from methods.cycle.pipeline import Run, collection_set

    cycle, base = load_cycle_config(None, ["collect.problems=bundled:hard-heldout"])
    with pytest.raises(ValueError, match="shares problem .* with data.heldout"):
        collection_set(Run(cycle, base, tmp_path, "cycle"))
    cycle, base = load_cycle_config(None, ["collect.problems=humaneval", "eval.sets=[humaneval]"])
    with pytest.raises(ValueError, match=r"with eval.sets\[0\] \(humaneval\)"):
        collection_set(Run(cycle, base, tmp_path, "cycle"))
    cycle, base = load_cycle_config(None, ["collect.max_problems=5"])
    assert len(collection_set(Run(cycle, base, tmp_path, "cycle"))) == 5  # hard-rl: disjoint
