"""CodeDPO's test parsing, pair construction and balance, agreement figures, and the DPO
loss against a hand-computed value."""

from __future__ import annotations

import math

import pytest
import torch

from core.problem import AssertTest, Problem, StdioTest
from learner.dpo import dpo_loss
from methods.codedpo.agreement import problem_agreement, spearman, summarise
from methods.codedpo.pairs import PairRule, balance, correctness_pairs, efficiency_pairs
from methods.codedpo.tests_gen import line_of_test, parse_tests, prefilled_start, writing_prompt
from methods.codedpo.timing import Timing

FUNC = Problem(id="f", source="t", statement="Add two numbers.", tests=(AssertTest("assert add(1, 1) == 2"),),
               entry_point="add", starter_code="def add(a, b):\n")
STDIO = Problem(id="s", source="t", statement="Double n.\nPrint it.", tests=(StdioTest("1\n", "2\n"),))


def test_prompts_end_with_the_start_of_a_test_and_fill_the_problem_in():
    text = writing_prompt(FUNC)
    assert "# Add two numbers." in text and "def add(a, b):" in text and prefilled_start(text) == "assert add("
    stdio = writing_prompt(STDIO)
    assert "# Double n.\n# Print it." in stdio and prefilled_start(stdio) == 'assert run("'
    assert writing_prompt(FUNC, function_template="{statement}|assert {entry_point}(").endswith("|assert add(")
    with pytest.raises(ValueError, match="unknown field"):
        writing_prompt(FUNC, function_template="{nope}")


def test_function_tests_are_parsed_deduplicated_and_junk_counted():
    texts = ["assert add(1, 2) == 3\nassert add(2, 2) == 4\nprint('hi')\nassert add(1, 2) == 3",
             "assert add(1, == 3\nassert other(1) == 2\nassert add(5, 5) == 10"]
    parsed = parse_tests(FUNC, texts, limit=10)
    assert [t.code for t in parsed.tests] == ["assert add(1, 2) == 3", "assert add(2, 2) == 4",
                                              "assert add(5, 5) == 10"]
    assert parsed.unparseable == 2 and parsed.duplicates == 1
    assert parse_tests(FUNC, texts, limit=2).tests == parsed.tests[:2]


def test_stdio_tests_are_run_string_equals_string():
    texts = ['assert run("3\\n") == "6\\n"\nassert run(3) == "6"\nassert run("1") != "2"\nassert run("2\\n") == "4\\n"']
    parsed = parse_tests(STDIO, texts, limit=5)
    assert parsed.tests == [StdioTest("3\n", "6\n"), StdioTest("2\n", "4\n")] and parsed.unparseable == 2
    assert [parse_tests(STDIO, [line_of_test(STDIO, t)], 1).tests[0] for t in parsed.tests] == parsed.tests


def test_unparseable_tests_leave_an_empty_test_set():
    parsed = parse_tests(STDIO, ['assert run("', "def f(): pass", 'assert run("x'], limit=3)
    assert parsed.tests == [] and parsed.unparseable == 2 and parsed.examples_dropped


PROGRAMS = ["best", "good", "mid", "bad", "worse", "bad", "awful"]
SCORES = [1.0, 0.95, 0.6, 0.3, 0.1, 0.3, 0.0]


def test_correctness_pairs_meet_best_and_worst_first_and_skip_duplicates():
    pairs = correctness_pairs("p", PROGRAMS, SCORES, PairRule(chosen_min=0.9, rejected_max=0.5,
                                                              correctness_per_problem=3))
    assert [(p.chosen, p.rejected) for p in pairs] == [("best", "awful"), ("best", "worse"), ("good", "awful")]
    assert all(p.kind == "correctness" and p.chosen_score >= 0.9 and p.rejected_score <= 0.5 for p in pairs)
    assert "mid" not in {p.chosen for p in pairs} | {p.rejected for p in pairs}
    assert len(correctness_pairs("p", PROGRAMS, SCORES, PairRule(correctness_per_problem=10))) == 6  # 2 x 3
    assert correctness_pairs("p", ["a", "b"], [1.0, 1.0], PairRule()) == []  # nobody to reject


def test_efficiency_pairs_need_the_minimum_speedup_and_carry_their_times():
    timings = [Timing(0.010, (0.010,)), Timing(0.030, (0.030,)), None, Timing(0.0105, (0.0105,))]
    pairs = efficiency_pairs("p", ["a", "b", "c", "d"], [1, 1, 0, 1], timings, PairRule(efficiency_per_problem=5))
    assert [(p.chosen, p.rejected) for p in pairs] == [("a", "b"), ("d", "b")]  # a vs d is only 1.05x
    assert pairs[0].chosen_time_s == 0.010 and pairs[0].speedup == pytest.approx(3.0)
    assert len(efficiency_pairs("p", ["a", "b", "c", "d"], [1] * 4, timings, PairRule(efficiency_per_problem=1))) == 1


def test_balance_caps_efficiency_pairs_keeping_the_largest_speedups():
    correctness = correctness_pairs("p", PROGRAMS, SCORES, PairRule(correctness_per_problem=4))
    t = [Timing(0.01, ()), Timing(0.02, ()), Timing(0.05, ())]
    efficiency = efficiency_pairs("p", ["x", "y", "z"], [1, 1, 1], t, PairRule(efficiency_per_problem=3))
    kept, dropped = balance(correctness, efficiency, ratio=0.5)  # 4 correctness -> at most 2
    assert dropped == 1 and len(kept) == 2 and sorted(p.speedup for p in kept) == pytest.approx([2.5, 5.0])
    assert balance(correctness, efficiency, ratio=1.0) == (efficiency, 0)


def test_agreement_precision_and_rank_correlation():
    assert problem_agreement([0.2, 1.0, 0.5], ["wrong_answer", "pass", "pass"]) == {
        "precision_at_1": 1.0, "chance": pytest.approx(2 / 3), "spearman": pytest.approx(math.sqrt(3) / 2)}
    assert spearman([1, 2, 3], [1, 1, 1]) is None
    assert spearman([1, 2, 3], [0, 0, 1]) == pytest.approx(math.sqrt(3) / 2)
    assert summarise([{"precision_at_1": 1.0, "chance": 0.5, "spearman": None},
                      {"precision_at_1": 0.0, "chance": 0.25, "spearman": 1.0}]) == {
        "precision_at_1": 0.5, "precision_at_1_problems": 2, "chance": 0.375, "chance_problems": 2,
        "spearman": 1.0, "spearman_problems": 1}


def test_dpo_loss_against_a_hand_computed_value():
    """beta 0.5; chosen: policy -1 vs reference -1.5 (+0.5), rejected: -2 vs -1.5 (-0.5):
    rewards +0.25 and -0.25, loss = -log sigmoid(0.5) = log(1 + e^-0.5) = 0.474077."""
    loss, stats = dpo_loss(torch.tensor([-1.0]), torch.tensor([-2.0]), torch.tensor([-1.5]), torch.tensor([-1.5]),
                           beta=0.5)
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-0.5)), abs=1e-6) == pytest.approx(0.474077, abs=1e-6)
    assert float(stats["reward_chosen"]) == pytest.approx(0.25) and float(stats["accuracy"]) == 1.0


def test_experiment_table_spreads_each_figure_over_seeds(tmp_path):
    import json

    from methods.codedpo.experiment import collect_results, command, table, Request

    for seed, (p1, speed) in {0: (0.25, 1.2), 1: (0.35, None)}.items():
        run = tmp_path / f"seed{seed}"
        (run / "codedpo" / "eval").mkdir(parents=True)
        (run / "eval-start").mkdir(parents=True)
        report = lambda v: {"report": {"pass_at": {"1": v}}}  # noqa: E731
        (run / "codedpo" / "eval" / "bundled-x.json").write_text(json.dumps(report(p1)))
        (run / "eval-start" / "bundled-x.json").write_text(json.dumps(report(0.2)))
        (run / "codedpo" / "eval" / "bundled-x.speed.json").write_text(json.dumps(
            {"settings": {"set": "bundled:x"}, "compared": 2, "mean_speedup": speed, "faster_share": 0.5}))
        (run / "codedpo" / "pairs.json").write_text(json.dumps({"correctness_pairs": 4, "efficiency_pairs": 1}))
        (run / "codedpo" / "scores.json").write_text(json.dumps(
            {"agreement": {"precision_at_1": 0.5, "chance": 0.25, "spearman": None}}))
    (tmp_path / "seed0" / "trust-all").mkdir()  # built, but no pairs: never trained or evaluated
    (tmp_path / "seed0" / "trust-all" / "pairs.json").write_text(json.dumps({"correctness_pairs": 0,
                                                                             "efficiency_pairs": 0}))
    (tmp_path / "seed0" / "trust-all" / "scores.json").write_text(json.dumps(
        {"agreement": {"precision_at_1": 0.5, "chance": 0.25, "spearman": None}}))
    results = collect_results(tmp_path)
    assert set(results["bundled:x"]["codedpo"]) == {"0", "1"}
    text = table(results)
    assert "| codedpo | 0,1 | 0.300 (0.250-0.350) | 0.200 (0.200-0.200) |" in text
    assert "| 1.200 |" in text  # the seed without a speed-up is left out of the mean, not counted as 0
    assert "| trust-all | 0 | - | - | 0 | 0 | 0.500 |" in text
    assert "| 4.0 (4-4) | 1.0 (1-1) |" in text  # pair counts are counts
    cmd = command(Request(tmp_path, [0], ["random"], None, ("x=1",)), 3, "random")
    assert cmd[-3:] == ["x=1", "verify.ranking=random", "seed=3"]


def test_teaching_rows_show_real_tests_in_the_prompts_notation(tiny_model_dir):
    from transformers import AutoTokenizer

    from core.problem import CallTest
    from methods.codedpo.config import CodeDPOConfig
    from methods.codedpo.teach import as_assert, test_rows

    call = Problem(id="c", source="t", statement="Sum.", tests=(CallTest(([1, 2],), 3), CallTest(([],), 0)),
                   entry_point="total")
    assert as_assert(call, call.tests[0]) == AssertTest("assert total([1, 2]) == 3")
    assert as_assert(STDIO, AssertTest("x = 1\nassert f(x)")) is None
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    cfg = CodeDPOConfig()
    cfg.test_sft.tests_per_problem = 1
    rows = test_rows([call, STDIO], tok, cfg)
    assert len(rows) == 2
    assert tok.decode(rows[0][0]).endswith("assert total(") and tok.decode(rows[0][1][:-1]) == "[1, 2]) == 3\n"
    assert tok.decode(rows[1][1][:-1]) == '1\\n") == "2\\n"\n' and rows[1][1][-1] == tok.eos_token_id
    texts = [prefilled_start(tok.decode(r[0])) + tok.decode(r[1][:-1]) for r in rows]
    assert parse_tests(STDIO, [texts[1]], 3).tests == [StdioTest("1\n", "2\n")]  # what it learns, parsed back
