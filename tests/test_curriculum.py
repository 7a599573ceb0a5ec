"""CCCS: start points, stage plans, the per-problem state machine, its Ray actor, prompts, CLI."""

from __future__ import annotations

import json
import random

import pytest

from cluster.cli import main
from core.problem import AssertTest, Problem
from curriculum import (
    CurriculumConfig, CurriculumState, ProblemPlan, StageResult, StartPoint, build_prompt,
    find_start_points, plan_problem, stage_indices,
)
from curriculum.stages import num_stages
from curriculum.start_points import WHOLE_PROGRAM
from models.tokenizer import stdlib_source_sample, train_tokenizer

# Every conditional kind, plus the things that must NOT count (docstring text, a
# comprehension filter, a conditional expression, `with`).  Worked out by hand:
#   line 8 for, 9 while, 11 else (of the while), 13 try, 14 match, 15 case, 17 case,
#   19 except, 21 finally.  E = 9 -> K = 3, stage_indices(9) = [6, 3, 0]:
#   stages = c_6 (line 15 case), c_3 (line 11 else), position 0.
ALL_KINDS = '''import sys


def classify(values, mode):
    """Return labels; if/for/while in this docstring do not count."""
    labels = [v for v in values if v > 0]
    sign = 1 if mode else -1
    for v in values:
        while v > 10:
            v -= 10
        else:
            pass
    try:
        match mode:
            case "a":
                labels.append(sign)
            case _:
                pass
    except ValueError:
        pass
    finally:
        labels.append(0)
    with open(sys.argv[0]) as f:
        pass
    return labels
'''


def problem(solution: str | None, starter: str = "", statement: str = "Do the thing.", pid: str = "p") -> Problem:
    return Problem(id=pid, source="test", statement=statement, tests=(AssertTest("assert True"),),
                   solutions=(solution,) if solution is not None else (), starter_code=starter)


def lines_kinds(points) -> list[tuple[int, str]]:
    return [(p.line, p.kind) for p in points]


def check_offsets(solution: str, points) -> None:
    """Each offset is the statement's first character: its line's indentation is in the prefix."""
    for p in points:
        line_start = solution.rfind("\n", 0, p.offset) + 1
        assert solution.count("\n", 0, p.offset) + 1 == p.line
        assert solution[line_start:p.offset].strip(" \t") == ""
        assert solution[p.offset:].startswith(p.kind)


# -- start points ------------------------------------------------------------------
def test_start_points_of_every_kind_and_what_does_not_count():
    points = find_start_points(ALL_KINDS)
    assert lines_kinds(points.conditionals) == [
        (8, "for"), (9, "while"), (11, "else"), (13, "try"), (14, "match"),
        (15, "case"), (17, "case"), (19, "except"), (21, "finally")]
    check_offsets(ALL_KINDS, points.conditionals)
    assert points.all[-1] == WHOLE_PROGRAM == StartPoint(line=1, offset=0, kind="program")
    plan = plan_problem(problem(ALL_KINDS))
    assert lines_kinds(plan.stages) == [(15, "case"), (11, "else"), (1, "program")]


def test_prefix_keeps_the_indentation_tabs_included():
    solution = "def f(x):\n\tif x:\n\t\treturn 1\n\treturn 0\n"
    (point,) = find_start_points(solution).conditionals
    assert (point.line, point.offset, point.kind) == (2, 11, "if")
    assert solution[: point.offset] == "def f(x):\n\t"


def test_start_points_never_inside_starter_code():
    starter = "def f(x):\n    if x is None:\n        return 0\n"
    solution = starter + "    for i in range(x):\n        if i > 3:\n            return i\n    return -1\n"
    points = find_start_points(solution, starter)
    assert points.starter_end == len(starter)
    # The `for` on the first line after the starter would be cut before the starter's
    # last line break, repeating position 0: excluded, like one right where it ends.
    assert lines_kinds(points.conditionals) == [(5, "if")]
    starter = "def f(x):\n    "
    points = find_start_points(starter + "if x:\n        return 1\n    return 0\n", starter)
    assert points.conditionals == () and points.starter_end == 14


def test_unparsable_solution_offers_only_position_0():
    plan = plan_problem(problem("def f(:\n    if x: pass\n"))
    assert plan.stages == (WHOLE_PROGRAM,) and "does not parse" in plan.error
    plan = plan_problem(problem(None))
    assert plan.stages == (WHOLE_PROGRAM,) and plan.error == "no canonical solution"


def test_humaneval_hand_worked():
    from problems.load import load_problems

    problems = {p.id: p for p in load_problems("humaneval").problems}
    p = problems["HumanEval/0"]
    # Lines 1-11 are the prompt (starter code, 348 characters); the body is
    # 12 for / 13 for / 14 if / 15 distance = ... / 16 if / 17 return True / 19 return False.
    # The line-12 `for` would be cut before the prompt's last line break (position 0 again).
    plan = plan_problem(p)
    assert plan.starter_end == len(p.starter_code) == 348
    assert [(s.line, s.offset, s.kind) for s in plan.start_points] == [
        (13, 397, "for"), (14, 448, "if"), (16, 525, "if"), (1, 0, "program")]
    assert lines_kinds(plan.stages) == [(14, "if"), (1, "program")]  # E = 3 -> K = 2 -> c_2
    for q in problems.values():  # no start point ever falls inside HumanEval's prompt
        assert all(s.offset > len(q.starter_code) for s in plan_problem(q).start_points[:-1])


def test_mbpp_hand_worked(shared_data):
    from problems.load import load_problems

    problems = {p.id: p for p in load_problems(shared_data / "mbpp" / "mbpp.jsonl").problems}
    # mbpp/34: 4 while, 7 if, 9 elif, 11 else; line 4 starts at 49 -> `while` at 53,
    # line 7 starts at 121 -> `if` at 129.  E = 4 -> stages [c_2 = line 7 if, 0].
    plan = plan_problem(problems["mbpp/34"])
    assert lines_kinds(plan.start_points) == [(4, "while"), (7, "if"), (9, "elif"), (11, "else"), (1, "program")]
    assert [s.offset for s in plan.start_points[:2]] == [53, 129]
    assert lines_kinds(plan.stages) == [(7, "if"), (1, "program")]
    # mbpp/417 (tab-indented): 3 for (offset 38), 4 try (offset 60), 6 except; the
    # comprehension's `for` on line 8 does not count.  E = 3 -> [c_2 = try, 0].
    plan = plan_problem(problems["mbpp/417"])
    assert [(s.line, s.offset, s.kind) for s in plan.start_points[:2]] == [(3, 38, "for"), (4, 60, "try")]
    assert lines_kinds(plan.start_points) == [(3, "for"), (4, "try"), (6, "except"), (1, "program")]
    assert lines_kinds(plan.stages) == [(4, "try"), (1, "program")]
    assert problems["mbpp/417"].canonical_solution[:60].endswith("\n\t\t")
    # mbpp/22 (blank lines inside): 5 for, 7 if, 9 else -> [c_2 = line 7 if, 0].
    plan = plan_problem(problems["mbpp/22"])
    assert lines_kinds(plan.start_points) == [(5, "for"), (7, "if"), (9, "else"), (1, "program")]
    assert lines_kinds(plan.stages) == [(7, "if"), (1, "program")]
    for p in problems.values():
        check_offsets(p.canonical_solution, plan_problem(p).start_points[:-1])


def test_bundled_solutions_have_conditional_start_points():
    bundled = pytest.importorskip("problems.bundled", reason="problems.bundled is not available")
    if not hasattr(bundled, "generate_split"):
        pytest.skip("problems.bundled.generate_split is not written yet")
    problems = bundled.generate_split("sft")
    assert problems
    for p in problems:
        plan = plan_problem(p)
        assert plan.error is None and plan.num_conditionals >= 1, p.id
        check_offsets(p.canonical_solution, plan.start_points[:-1])
        assert plan.stages[-1] == WHOLE_PROGRAM


# -- stage plans ---------------------------------------------------------------------
@pytest.mark.parametrize("e, expected", [
    (0, [0]),             # K = 1: the whole program
    (1, [0]),             # K = ceil(sqrt(1)) = 1
    (4, [2, 0]),          # K = 2: n = ceil(5/2) = 3 segments -> c_2; then everything
    (10, [8, 5, 2, 0]),   # K = 4: n = 3, 6, 9, 11 of 11 segments
])
def test_stage_plans_hand_computed(e, expected):
    assert stage_indices(e) == expected
    assert num_stages(e) == len(expected)


def test_stage_plans_always_distinct_and_end_at_position_0():
    for e in range(0, 200):
        idx = stage_indices(e)
        assert idx[-1] == 0 and idx == sorted(set(idx), reverse=True)


# -- state machine ---------------------------------------------------------------------
def fake_plan(pid: str, stages: int) -> ProblemPlan:
    points = tuple(StartPoint(line=10 + i, offset=100 + 10 * i, kind="if") for i in range(stages - 1))
    return ProblemPlan(pid, points + (WHOLE_PROGRAM,), tuple(reversed(points)) + (WHOLE_PROGRAM,))


def results(pid: str, stage: int, outcomes: str) -> list[StageResult]:
    return [StageResult(pid, stage, c == "1") for c in outcomes]


def test_advance_only_strictly_above_rho_with_a_full_window():
    state = CurriculumState([fake_plan("a", 3)], CurriculumConfig(rho=0.5, window=4))
    assert state.report(results("a", 0, "111"), step=1).advanced == ()  # 1.0, window not full
    assert state.report(results("a", 0, "0"), step=2).advanced == ("a",)  # full: 1110 = 0.75
    state = CurriculumState([fake_plan("a", 3)], CurriculumConfig(rho=0.5, window=4))
    assert state.report(results("a", 0, "1100"), step=1).advanced == ()  # exactly rho: stays
    assert state.current_stage("a") == 0 and state.pass_rate("a") == 0.5
    out = state.report(results("a", 0, "1"), step=2)                     # 1001 = 0.5: stays
    assert out.advanced == () and state.pass_rate("a") == 0.5
    out = state.report(results("a", 0, "1"), step=3)                     # 0011 = 0.5: stays
    assert out.advanced == ()
    out = state.report(results("a", 0, "1"), step=4)                     # 0111 = 0.75: moves
    assert out.advanced == ("a",) and state.current_stage("a") == 1
    assert state.pass_rate("a") is None                                   # window reset
    (change,) = state.history("a")
    assert (change.step, change.from_stage, change.to_stage, change.pass_rate) == (4, 0, 1, 0.75)


def test_window_slides_and_old_results_leave_it():
    state = CurriculumState([fake_plan("a", 2)], CurriculumConfig(rho=0.6, window=3))
    state.report(results("a", 0, "00011"), step=1)  # last three: 0,1,1 -> 0.667 > 0.6
    assert state.current_stage("a") == 1
    state = CurriculumState([fake_plan("a", 2)], CurriculumConfig(rho=0.7, window=3))
    state.report(results("a", 0, "11100"), step=1)       # 111 at the 3rd result advances
    assert state.current_stage("a") == 1
    # Results generated at the old stage (still in flight) are off-stage, not counted.
    out = state.report(results("a", 0, "11") + results("a", 1, "1"), step=2)
    assert (out.counted, out.off_stage) == (1, 2)


def test_advancing_mid_batch_ignores_the_rest_of_the_old_stage():
    state = CurriculumState([fake_plan("a", 3)], CurriculumConfig(rho=0.5, window=2))
    out = state.report(results("a", 0, "1111"), step=7)
    assert out.advanced == ("a",) and (out.counted, out.off_stage) == (2, 2)
    assert state.current_stage("a") == 1


def test_final_stage_is_final():
    state = CurriculumState([fake_plan("a", 2)], CurriculumConfig(rho=0.5, window=1))
    state.report(results("a", 0, "1"), step=1)
    state.report(results("a", 1, "1111"), step=2)
    assert state.current_stage("a") == 1 and len(state.history("a")) == 1
    assert state.summary()["fraction_at_position_0"] == 1.0


def test_off_switch_always_gives_position_0():
    config = CurriculumConfig(enabled=False, rho=0.0, window=1, sample_around_stage=True, neighbour_prob=1.0)
    state = CurriculumState([fake_plan("a", 3), fake_plan("b", 1)], config)
    for a in state.sample(["a", "b"] * 20):
        assert a.start == WHOLE_PROGRAM and a.stage == a.num_stages - 1
    state.report(results("a", 2, "1111"), step=1)
    assert state.current_stage("a") == 2 and state.history("a") == []
    assert state.summary()["fraction_at_position_0"] == 1.0


def test_sampling_without_neighbours_uses_the_current_stage():
    state = CurriculumState([fake_plan("a", 3)], CurriculumConfig())
    assignments = state.sample(["a"] * 5)
    assert {a.stage for a in assignments} == {0}
    assert assignments[0].start == fake_plan("a", 3).stages[0] and assignments[0].num_stages == 3


def test_sampling_around_the_current_stage_is_seeded():
    config = CurriculumConfig(rho=0.5, window=1, sample_around_stage=True, neighbour_prob=0.5)
    state = CurriculumState([fake_plan("a", 3)], config, seed=1)
    first = [a.stage for a in state.sample(["a"] * 400)]
    assert set(first) == {0, 1}                  # stage 0 has one neighbour
    assert 150 < first.count(1) < 250            # about half
    state.report(results("a", 0, "1"), step=1)   # now at stage 1: neighbours 0 and 2
    drawn = [a.stage for a in state.sample(["a"] * 800)]
    counts = [drawn.count(s) for s in (0, 1, 2)]
    assert 320 < counts[1] < 480 and 140 < counts[0] < 260 and 140 < counts[2] < 260
    same = CurriculumState([fake_plan("a", 3)], config, seed=1)
    assert [a.stage for a in same.sample(["a"] * 400)] == first
    other = CurriculumState([fake_plan("a", 3)], config, seed=2)
    assert [a.stage for a in other.sample(["a"] * 400)] != first
    summary = state.summary()
    assert sum(summary["samples_per_stage"].values()) == 1200


def test_bad_report_batches_change_nothing():
    state = CurriculumState([fake_plan("a", 2)], CurriculumConfig(window=1))
    before = state.state_dict()
    with pytest.raises(KeyError, match="nope"):
        state.report(results("a", 0, "1") + results("nope", 0, "1"), step=1)
    with pytest.raises(ValueError, match="no stage 5"):
        state.report(results("a", 0, "1") + results("a", 5, "1"), step=1)
    assert state.state_dict() == before


def run_steps(state: CurriculumState, rng: random.Random, steps: range, ids: list[str]) -> list:
    trace = []
    for step in steps:
        assignments = state.sample(ids * 3)
        batch = [StageResult(a.problem_id, a.stage, rng.random() < 0.6) for a in assignments]
        outcome = state.report(batch, step)
        trace.append(([(a.problem_id, a.stage, a.start) for a in assignments], outcome))
    return trace


def test_state_dict_round_trip_mid_run_continues_identically():
    plans = [fake_plan(f"p{i}", 1 + i % 4) for i in range(8)]
    config = CurriculumConfig(rho=0.5, window=3, sample_around_stage=True, neighbour_prob=0.4)
    ids = [p.problem_id for p in plans]
    straight = CurriculumState(plans, config, seed=3)
    run_steps(straight, random.Random(0), range(10), ids)
    saved = json.loads(json.dumps(straight.state_dict()))  # JSON-safe
    resumed = CurriculumState(plans, config, seed=999)  # seed is overwritten by the checkpoint
    resumed.load_state_dict(saved)
    assert resumed.state_dict() == straight.state_dict()
    a = run_steps(straight, random.Random(42), range(10, 30), ids)
    b = run_steps(resumed, random.Random(42), range(10, 30), ids)
    assert a == b
    assert resumed.state_dict() == straight.state_dict()
    assert sum(len(resumed.history(i)) for i in ids) > 0  # the run did move stages
    assert resumed.summary() == straight.summary()


def test_state_dict_refuses_other_problems():
    state = CurriculumState([fake_plan("a", 2)], CurriculumConfig())
    with pytest.raises(ValueError, match="other problems"):
        CurriculumState([fake_plan("b", 2)], CurriculumConfig()).load_state_dict(state.state_dict())
    with pytest.raises(ValueError, match="stage plan"):
        CurriculumState([fake_plan("a", 3)], CurriculumConfig()).load_state_dict(state.state_dict())


def test_summary_reports_histograms_and_history():
    state = CurriculumState([fake_plan("a", 2), fake_plan("b", 3), fake_plan("c", 1)], CurriculumConfig(window=1))
    state.sample(["a", "b", "c", "c"])
    state.report(results("a", 0, "1") + results("b", 0, "0"), step=5)
    s = state.summary()
    assert s["samples_per_stage"] == {"0": 4}
    assert s["problems_per_stage"] == {"0": 2, "1": 1}  # a moved to its final stage 1
    assert s["fraction_at_position_0"] == pytest.approx(2 / 3)  # a and c
    assert (s["results"], s["results_off_stage"], s["stage_changes"]) == (2, 0, 1)
    assert [(c.step, c.from_stage, c.to_stage) for c in state.history("a")] == [(5, 0, 1)]


def test_from_problems_plans_each_problem():
    state = CurriculumState.from_problems([problem(ALL_KINDS, pid="x"), problem(None, pid="y")], CurriculumConfig())
    assert [a.start.line for a in state.sample(["x", "y"])] == [15, 1]


# -- the Ray actor ---------------------------------------------------------------------
def test_actor_loses_no_report_under_concurrency(ray_session):
    ray = ray_session
    from curriculum.actor import CurriculumActor

    plans = [fake_plan(f"p{i}", 1 + i % 3) for i in range(12)]
    actor = CurriculumActor.remote(plans, CurriculumConfig(rho=0.5, window=4), 0)

    @ray.remote(num_cpus=0)
    def reporter(curriculum, worker: int, batches: int) -> int:
        rng = random.Random(worker)
        sent = 0
        for step in range(batches):
            ids = [f"p{rng.randrange(12)}" for _ in range(5)]
            assignments = ray.get(curriculum.sample.remote(ids))
            batch = [StageResult(a.problem_id, a.stage, rng.random() < 0.7) for a in assignments]
            ray.get(curriculum.report.remote(batch, step))
            sent += len(batch)
        return sent

    @ray.remote(num_cpus=0)
    class Rollout:
        def run(self, curriculum, worker: int, batches: int) -> int:
            return ray.get(reporter.remote(curriculum, worker, batches))

    rollouts = [Rollout.remote() for _ in range(2)]
    futures = [reporter.remote(actor, w, 30) for w in range(4)]
    futures += [r.run.remote(actor, 10 + i, 30) for i, r in enumerate(rollouts)]
    sent = sum(ray.get(futures))
    assert sent == 6 * 30 * 5
    summary = ray.get(actor.summary.remote())
    assert summary["results"] == sent
    per_problem = ray.get(actor.state_dict.remote())["problems"]
    assert sum(p["results"] for p in per_problem.values()) == sent
    assert sum(summary["samples_per_stage"].values()) == sent
    # The actor's checkpoint restores into a driver-side state.
    state = CurriculumState(plans, CurriculumConfig(rho=0.5, window=4))
    state.load_state_dict(ray.get(actor.state_dict.remote()))
    assert state.summary() == summary


# -- prompts -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(list(stdlib_source_sample(300_000)) + [ALL_KINDS, "café 😀 ünïcode"], 1024)


CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SOLUTION = "def f(xs):\n    # café 😀\n    total = 0\n    for x in xs:\n        if x > 0:\n            total += x\n    return total\n"


def decode(tok, ids) -> str:
    return tok.decode(list(ids), clean_up_tokenization_spaces=False)


def test_plain_prompt_marks_the_prefix(tokenizer):
    p = problem(SOLUTION, statement="Sum the positive numbers.\nReturn 0 for none.")
    start = find_start_points(SOLUTION).conditionals[1]  # the `if`, line 5
    prompt = build_prompt(p, tokenizer, start)
    assert not prompt.chat and prompt.start == start
    # Cut before the line break of the `if` line: the model writes "\n        if ...".
    assert prompt.prefix == "def f(xs):\n    # café 😀\n    total = 0\n    for x in xs:"
    assert prompt.text == "# Sum the positive numbers.\n# Return 0 for none.\n\n" + prompt.prefix
    lo, hi = prompt.prefix_span
    assert decode(tokenizer, prompt.input_ids[lo:hi]) == prompt.prefix
    assert decode(tokenizer, prompt.input_ids[:lo]) == prompt.head
    assert hi == len(prompt.input_ids)


def test_the_prefix_ends_where_code_tokenises_the_same_as_in_training(tokenizer):
    # Ending at the statement would split "\n        if" where whole code never splits.
    p = problem(SOLUTION, statement="Sum.")
    start = find_start_points(SOLUTION).conditionals[1]
    prompt = build_prompt(p, tokenizer, start)
    whole = tokenizer(SOLUTION, add_special_tokens=False).input_ids
    ids = tokenizer(prompt.prefix, add_special_tokens=False).input_ids
    assert whole[: len(ids)] == ids  # the prefix's tokens are a prefix of the solution's
    assert SOLUTION.startswith(prompt.prefix) and SOLUTION[len(prompt.prefix):].startswith("\n        if")


def test_every_stage_prefix_extends_past_the_starter_code():
    # A conditional right after HumanEval's docstring would cut inside the starter code:
    # no start point there (it would repeat position 0, tokenised differently).
    from curriculum.prompt import code_prefix
    from problems.load import load_problems

    checked = 0
    for p in load_problems("humaneval").problems:
        for start in find_start_points(p.canonical_solution, p.starter_code).conditionals:
            assert len(code_prefix(p, start)) > len(p.starter_code), (p.id, start)
            checked += 1
    assert checked > 100


def test_position_0_has_an_empty_prefix_or_just_the_starter(tokenizer):
    prompt = build_prompt(problem(SOLUTION, statement="Sum."), tokenizer)
    assert prompt.prefix == "" and prompt.prefix_span == (len(prompt.input_ids),) * 2
    assert prompt.text == "# Sum.\n\n"
    # HumanEval style: the statement is the starter code, so it is not repeated.
    starter = 'def f(xs):\n    """Sum the positive numbers."""\n'
    p = problem(starter + "    return sum(x for x in xs if x > 0)\n", starter=starter, statement=starter)
    prompt = build_prompt(p, tokenizer)
    assert prompt.text == starter and prompt.prefix == starter
    lo, hi = prompt.prefix_span
    assert lo == 0 and decode(tokenizer, prompt.input_ids[lo:hi]) == starter


def test_prompt_format_fills_its_template_and_refuses_bad_ones(tokenizer):
    from curriculum.prompt import PromptFormat

    p = problem(SOLUTION, statement="Sum them.")
    fmt = PromptFormat("chat", system="Be brief.", user_template="Task: {statement}\nStart with:\n{starter_code}")
    assert fmt.messages(p) == [{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": f"Task: Sum them.\nStart with:\n{p.starter_code}"}]
    assert PromptFormat().messages(p) == [{"role": "user", "content": "Sum them."}]
    with pytest.raises(ValueError, match="rollout.user_template: .* must contain {statement}"):
        PromptFormat(user_template="{problem}")
    with pytest.raises(ValueError, match="rollout.fence: 'python' must open a Markdown code block"):
        PromptFormat(fence="python")
    with pytest.raises(ValueError, match="rollout.prompt_format is chat but the model's tokenizer has no chat template"):
        build_prompt(p, tokenizer, fmt=PromptFormat("chat"))


def test_chat_prompt_puts_the_prefix_in_the_assistant_turn(tokenizer):
    tok = train_tokenizer(list(stdlib_source_sample(300_000)), 1024)
    tok.chat_template = CHAT_TEMPLATE
    p = problem(SOLUTION, statement="Sum the positive numbers.")
    start = find_start_points(SOLUTION).conditionals[0]  # the `for`, line 4
    prompt = build_prompt(p, tok, start, fence="")
    assert prompt.chat and prompt.stop == ()
    head = "<|im_start|>user\nSum the positive numbers.<|im_end|>\n<|im_start|>assistant\n"
    assert prompt.head == head and prompt.text == head + "def f(xs):\n    # café 😀\n    total = 0"
    lo, hi = prompt.prefix_span
    assert decode(tok, prompt.input_ids[lo:hi]) == prompt.prefix == "def f(xs):\n    # café 😀\n    total = 0"
    assert "😀" in prompt.prefix
    assert decode(tok, prompt.input_ids[:lo]) == head
    fenced = build_prompt(p, tok, start)  # the default format pre-fills the fence and stops at the closing one
    assert fenced.head == head + "```python\n" and fenced.stop == ("```",)
    lo, hi = fenced.prefix_span
    assert decode(tok, fenced.input_ids[lo:hi]) == fenced.prefix
    plain = build_prompt(p, tok, start, chat=False)
    assert not plain.chat and plain.text.startswith("# Sum the positive numbers.")


# -- command line ------------------------------------------------------------------------
def test_cli_plan_json_and_table(tmp_path, capsys):
    path = tmp_path / "problems.jsonl"
    rows = [problem(ALL_KINDS, pid="all-kinds"), problem(None, pid="no-solution"),
            problem("print(1)\n", pid="straight")]
    path.write_text("".join(p.to_json() + "\n" for p in rows))
    assert main(["curriculum", "plan", "--problems", str(path), "--json"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["problem_id"] for o in out] == ["all-kinds", "no-solution", "straight"]
    first = out[0]
    assert [(s["line"], s["kind"]) for s in first["start_points"]][:3] == [(8, "for"), (9, "while"), (11, "else")]
    assert all({"line", "offset", "kind"} <= set(s) for s in first["start_points"])
    assert [(s["line"], s["kind"]) for s in first["stages"]] == [(15, "case"), (11, "else"), (1, "program")]
    assert out[1]["error"] == "no canonical solution" and out[1]["stages"] == [WHOLE_PROGRAM.to_dict()]
    assert out[2]["error"] is None and out[2]["num_conditionals"] == 0
    assert main(["curriculum", "plan", "--problems", str(path)]) == 0
    table = capsys.readouterr().out
    assert "no-solution" in table and "no canonical solution" in table
    assert "stages: L15 case -> L11 else -> L1 program" in table
    assert "3 problems" in table


def test_cli_plan_humaneval(capsys):
    assert main(["curriculum", "plan", "--problems", "humaneval", "--json"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(out) == 164
    assert out[0]["problem_id"] == "HumanEval/0"
    assert [s["offset"] for s in out[0]["start_points"]] == [397, 448, 525, 0]
