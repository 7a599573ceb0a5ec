"""What a judged sample records for people to see (cluster/observation.py), the rows the
rollout table and samples.jsonl are made of (cluster/rollout_table.py) and the
per-iteration distributions (cluster/distributions.py), on samples judged for real."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cluster.distributions import batch_distributions, histograms, percentile, stage_histogram
from cluster.hacking import PRINTS_WITHOUT_INPUT
from cluster.observation import PREFIX_CHARS, cut_prefix
from cluster.rollout_table import (choose_rows, failure_text, marked_completion, sample_row, table_cells, table_due,
                                   without_timing)
from cluster.samples import Sample
from core.verdict import PASS, WRONG_ANSWER
from curriculum.fgo import fgo_mask, mark_spans, masked_spans, render_mask
from observe_helpers import DEAD, HACK, RIGHT, WRONG, judge, judged, problem, tokenizer  # noqa: F401 - fixtures


def test_a_passing_sample_shows_its_start_prefix_executed_and_masked_code(judge, tokenizer, problem):
    s = judged(judge, tokenizer, problem, 0, RIGHT + DEAD, version=3)
    o = s.observed
    assert s.verdict == PASS and (o.num_stages, o.start_line, o.start_kind) == (2, 3, "for")
    assert o.prefix == "nums = [int(x) for x in input().split()]\ncount = 0" and o.prefix_first_line == 1
    assert o.tests_passed == o.tests_total == len(problem.tests) and o.test_verdicts == "P" * len(problem.tests)
    assert len(o.test_times) == len(problem.tests) and o.judge_s == pytest.approx(sum(o.test_times), abs=1e-3)
    assert o.failing is None and o.error is None and o.hacks == ()
    # lines 1-6 ran (prefix, loop, print); the dead function's def line ran, its body did not
    assert set(o.executed_lines) >= {1, 2, 3, 4, 6, 7} and not {8, 9} & set(o.executed_lines)
    # masked: the body's tokens (the indentation token "\n    " starts on the def line, which ran)
    assert "".join(s.text[a:b] for a, b in o.masked_spans).strip() == "total = 0\n    return total"
    assert mark_spans(s.text, o.masked_spans).replace("⟦", "").replace("⟧", "") == s.text


def test_masked_spans_render_as_render_mask_does(judge, tokenizer, problem):
    s = judged(judge, tokenizer, problem, 0, RIGHT + DEAD)
    result = judge.judge(problem, s.observed.prefix + s.text, coverage=True)
    mask = fgo_mask(tokenizer, s.completion_ids, s.observed.prefix, result.executed_lines, result.executable_lines,
                    code=s.text)
    assert masked_spans(mask) == s.observed.masked_spans
    assert mark_spans(mask.completion, masked_spans(mask)) == render_mask(mask)
    assert [not k for k in mask.keep] == [not k for k in s.keep]  # the learner's mask is the one shown


def test_a_wrong_sample_shows_its_failing_test(judge, tokenizer, problem):
    s = judged(judge, tokenizer, problem, 0, WRONG)
    f = s.observed.failing
    test = problem.tests[f.index]
    assert s.verdict == WRONG_ANSWER and f.verdict == WRONG_ANSWER
    assert (f.input, f.expected) == (test.input, test.output) and f.actual != test.output
    assert s.observed.test_verdicts[f.index] == "W" and "P" in s.observed.test_verdicts[: f.index] + "P"
    text = failure_text(sample_row(0, s, ()))
    assert text.startswith(f"test {f.index + 1}: wrong_answer") and repr(test.input) in text


def test_a_hack_is_flagged_and_fgo_off_masks_nothing(judge, tokenizer, problem):
    s = judged(judge, tokenizer, problem, 1, HACK, fgo=False)
    assert s.observed.hacks == (PRINTS_WITHOUT_INPUT,) and s.observed.prefix == ""
    assert s.observed.masked_spans == () and s.keep is None


def test_a_checkpointed_sample_keeps_its_observation(judge, tokenizer, problem):
    s = judged(judge, tokenizer, problem, 0, WRONG + DEAD)
    restored = Sample.from_json(json.loads(json.dumps(s.to_json())))
    assert restored.observed == s.observed
    assert len(json.dumps(s.to_json()["observed"])) < 1500  # small: whole batches of them go in checkpoints


def test_a_long_prefix_keeps_its_tail_from_a_line_start():
    prefix = "".join(f"line_{i} = {i}\n" for i in range(400)) + "x = 1"
    kept, first = cut_prefix(prefix)
    assert len(kept) <= PREFIX_CHARS and prefix.endswith(kept) and prefix[len(prefix) - len(kept) - 1] == "\n"
    assert prefix.splitlines()[first - 1] == kept.splitlines()[0]
    assert cut_prefix("a\nb") == ("a\nb", 1)


def test_rows_table_cells_and_samples_jsonl_form(judge, tokenizer, problem):
    s = judged(judge, tokenizer, problem, 0, RIGHT + DEAD, version=2)
    row = sample_row(7, s, ("identical_across_problems",))
    assert row["step"] == 7 and row["policy_version"] == 2 and row["start_kind"] == "for"
    assert "total = 0\n    return total\n⟧" in marked_completion(row) and marked_completion(row).count("⟦") == 1
    assert "test_times" in row and "test_times" not in without_timing(row) and "judge_s" not in without_timing(row)
    cells = table_cells(row)
    assert cells["stage"] == 0 and cells["start"] == "line 3 (for), 1 stage before position 0"
    assert cells["hacks"] == "identical_across_problems"
    assert cells["execution_reward"] == cells["reward"] == 1.0 and cells["failing_test"] == ""
    json.dumps(row)


def test_table_schedule_and_row_choice():
    assert [s for s in range(25) if table_due(s, 10, 25)] == [0, 10, 20, 24]
    assert not any(table_due(s, 0, 25) for s in range(25))
    rows = [{"problem_id": pid, "hacks": ["x"] if k == 5 else []} for k, pid in enumerate("aaabbbccc")]
    chosen = choose_rows(rows, 4, "0/0")
    assert rows[5] in chosen and len(chosen) == 4
    assert {r["problem_id"] for r in chosen} == {"a", "b", "c"}  # one per problem before a second
    assert chosen == choose_rows(rows, 4, "0/0") and len(choose_rows(rows, 50, "0/0")) == 9


def test_percentiles_match_numpy():
    values = [3.0, -1.0, 0.5, 10.0, 2.0, 2.0, 7.5]
    for q in (0, 10, 50, 90, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert percentile([], 50) != percentile([], 50)  # NaN


def test_batch_distributions_and_histograms(judge, tokenizer, problem):
    samples = [judged(judge, tokenizer, problem, 0, RIGHT), judged(judge, tokenizer, problem, 0, WRONG),
               judged(judge, tokenizer, problem, 1, HACK)]
    d = batch_distributions(samples)
    rewards = [s.reward for s in samples]
    assert d["dist/reward_p50"] == pytest.approx(np.percentile(rewards, 50))
    assert d["dist/reward_std"] == pytest.approx(np.std(rewards))
    assert d["dist/completion_tokens_max"] == max(len(s.completion_ids) for s in samples)
    judge_s = [s.observed.judge_s for s in samples]
    assert d["time/judge_p99"] == pytest.approx(np.percentile(judge_s, 99)) and d["time/judge_max"] == max(judge_s)
    assert d["judge/timeouts"] == 0 and d["judge/timed_out_tests"] == 0
    assert (d["curriculum/samples_at_stage_0"], d["curriculum/samples_at_stage_1"]) == (2, 1)
    h = histograms(samples)
    assert h["hist/reward"] == rewards and h["hist/sample_stage"] == [0.0, 0.0, 1.0]
    assert stage_histogram({"curriculum/problems_at_stage_0": 3, "curriculum/problems_at_stage_2": 1}) == \
        ([3, 0, 1], [0, 1, 2, 3])
    assert stage_histogram({"reward": 1.0}) is None


def test_a_timeout_is_counted(judge, tokenizer, problem):
    s = judged(judge, tokenizer, problem, 1, "while True:\n    pass\n")
    d = batch_distributions([s])
    assert s.verdict == "timeout" and d["judge/timeouts"] == 1 and d["judge/timed_out_tests"] == 1
    assert d["time/judge_max"] >= 1.0  # the 2 s CPU limit's test is in the program's judge time
