"""`execrl inspect` on a run directory written by the real metrics logger from really
judged samples and a real curriculum state (the end-to-end test with `execrl train` is
tests/test_observe_e2e.py)."""

from __future__ import annotations

import pytest

from cluster.cli import main
from cluster.inspect_run import problem_history, run_summary
from cluster.program_view import COMPLETION, PREFIX, program_lines
from cluster.run_files import load_run
from observe_helpers import OTHER, PROBLEM, judge, tokenizer, write_run  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, judge, tokenizer):
    run_dir = tmp_path_factory.mktemp("run")
    curriculum = write_run(run_dir, judge, tokenizer)
    assert [(c.step, c.from_stage, c.to_stage) for c in curriculum.history(PROBLEM)] == [(1, 0, 1)]
    return run_dir


def test_program_lines_given_ran_and_masked():
    completion = "\nif a:\n    c = 3\nelse:\n    c = 4\n"
    dead = (completion.index("else:"), len(completion))
    lines = program_lines("a = 1\nb = 2", completion, [dead], [1, 2, 3, 4])
    assert [(l.number, l.origin, l.ran) for l in lines] == [(1, PREFIX, True), (2, PREFIX, True),
                                                           (3, COMPLETION, True), (4, COMPLETION, True),
                                                           (5, COMPLETION, False), (6, COMPLETION, False)]
    assert [l.text for l in lines] == ["a = 1", "b = 2", "if a:", "    c = 3", "else:", "    c = 4"]
    assert [l.masked for l in lines] == [False, False, False, False, True, True]
    assert [s.text for s in lines[4].segments if s.masked] == ["else:"]
    unknown = program_lines("", "x = (\n", [], [], coverage=False)
    assert [l.ran for l in unknown] == [None]


def test_a_problems_history(run_dir):
    h = problem_history(load_run(run_dir), PROBLEM)
    assert (h.num_stages, h.stage) == (2, 1) and [(c.step, c.from_stage, c.to_stage) for c in h.changes] == [(1, 0, 1)]
    assert [(v.step, v.stages, v.passed, v.judged) for v in h.visits] == [(0, (0,), 2, 2), (1, (0,), 2, 2),
                                                                          (2, (1,), 1, 2), (3, (1,), 1, 2)]
    assert [(s.stage, s.passed, s.judged) for s in h.per_stage] == [(0, 4, 4), (1, 2, 4)]
    assert h.latest_step == 3 and [s.record.hacks for s in h.latest] == [("prints_without_input",), ()]
    early = problem_history(load_run(run_dir), PROBLEM, until=0)
    assert early.stage == 0 and early.changes == [] and early.latest_step == 0
    lines = early.latest[0].lines  # RIGHT + DEAD at stage 0: lines 1-2 given, 8-9 the dead function's body
    assert [line.number for line in lines if line.origin == PREFIX] == [1, 2]
    assert [line.number for line in lines if line.masked] == [8, 9] == [line.number for line in lines if line.ran is False]
    assert "|".join(seg.text.strip() for line in lines for seg in line.segments if seg.masked) == \
        "total = 0|return total"


def test_the_run_summary(run_dir):
    s = run_summary(load_run(run_dir))
    assert s.steps == [0, 1, 2, 3] and s.verdict_mix[0] == (0, {"pass": 2, "wrong_answer": 2})
    top = s.failing_tests[0]
    assert top.problem_id == OTHER and top.count == 4 and top.example["expected"] is not None
    assert len(s.slowest) == 10 and s.slowest[0].judge_s >= s.slowest[-1].judge_s
    assert [step for step, c in s.hacking if c.get("prints_without_input")] == [2, 3]
    assert s.hack_examples and s.hack_examples[0].problem_id == PROBLEM
    assert {p.problem_id: (p.stage, p.num_stages) for p in s.problems} == {PROBLEM: (1, 2), OTHER: (0, 2)}
    assert [f for _, f in s.position_0] == [0.0, 0.5, 0.5, 0.5]


def test_cli_text_shows_history_masked_code_and_summary(run_dir, capsys):
    assert main(["inspect", str(run_dir), "--problem", PROBLEM, "--iteration", "1"]) == 0
    out = capsys.readouterr().out
    assert "verdict mix per step" in out and "most common failing tests" in out and "slowest programs" in out
    assert f"problem {PROBLEM}: 2 stages; stage now 1" in out and "step 1: 0 -> 1" in out
    assert "given   | nums = [int(x) for x in input().split()]" in out
    assert "ran     |     if x == 8:" in out
    assert any("⟦" in line and "total" in line for line in out.splitlines())  # FGO's masked dead code
    assert "step    2" not in out  # cut at step 1
    heads = [line for line in out.splitlines() if line.startswith("#") and ", reward " in line]
    assert heads and all(", stage " in h and ", policy version " in h and ", tests " in h for h in heads), heads


def test_cli_errors_name_the_input(tmp_path, run_dir, capsys, judge, tokenizer):
    missing = tmp_path / "nowhere"
    assert main(["inspect", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["inspect", str(empty)]) == 2
    assert str(empty / "samples.jsonl") in capsys.readouterr().err
    (empty / "samples.jsonl").write_text("")
    assert main(["inspect", str(empty)]) == 2
    assert "is empty" in capsys.readouterr().err
    assert main(["inspect", str(run_dir), "--problem", "no/such"]) == 2
    err = capsys.readouterr().err
    assert "'no/such'" in err and PROBLEM in err
    assert main(["inspect", str(run_dir), "--iteration", "9"]) == 2
    assert "0..3" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "samples.jsonl").write_text('{"step": 0}\n')
    assert main(["inspect", str(bad)]) == 2
    assert f"{bad / 'samples.jsonl'}:1" in capsys.readouterr().err


def test_a_run_without_checkpoint_still_shows_its_samples(tmp_path, judge, tokenizer, capsys):
    write_run(tmp_path, judge, tokenizer, checkpoint=False)
    assert main(["inspect", str(tmp_path), "--problem", PROBLEM]) == 0
    out = capsys.readouterr().out
    assert "no checkpoint" in out and "stage now unknown" in out and "⟦" in out


def test_with_the_curriculum_off_every_problem_is_at_position_0(run_dir, tmp_path):
    """The curriculum state keeps stage 0 when it is off; inspect reads config.yaml."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "config.yaml").write_text("curriculum:\n  enabled: false\n")
    h = problem_history(load_run(copy), PROBLEM)
    assert h.stage == 1 and h.changes == []
    assert {p.problem_id: p.stage for p in run_summary(load_run(copy)).problems} == {PROBLEM: 1, OTHER: 1}


def test_latest_samples_show_masked_code_first_and_each_completion_once():
    from cluster.inspect_run import shown_samples
    from cluster.run_files import SampleRecord

    def record(index, verdict, completion, spans=()):
        return SampleRecord(step=0, index=index, problem_id="p", stage=0, verdict=verdict, reward=0.0,
                            completion=completion, masked_spans=spans, executed_lines=(1,))

    visit = [record(0, "pass", "a\n"), record(1, "pass", "a\n"), record(2, "wrong_answer", "b\n"),
             record(3, "wrong_answer", "c\nd\n", ((2, 3),)), record(4, "pass", "a\n")]
    shown = shown_samples(visit, 2)
    assert [(s.record.index, s.copies) for s in shown] == [(3, 1), (2, 1)]
    assert [(s.record.index, s.copies) for s in shown_samples(visit, 5)] == [(3, 1), (2, 1), (0, 3)]
