"""The metrics logger's files and what an offline W&B run really received: step axes,
histograms, the rollout table; samples.jsonl without clock readings; the cumulative
sampled_programs axis continued across a resume."""

from __future__ import annotations

import json

import pytest

from cluster.config import load_config
from cluster.metrics import MetricsLogger
from cluster.rollout_table import marked_completion
from observe_helpers import DEAD, HACK, RIGHT, WRONG, judge, judged, problem, tokenizer  # noqa: F401 - fixtures
from wandb_records import history, metric_definitions, run_file


def rows_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def batch(judge, tokenizer, problem):
    return [judged(judge, tokenizer, problem, 0, RIGHT + DEAD), judged(judge, tokenizer, problem, 0, WRONG),
            judged(judge, tokenizer, problem, 1, HACK)]


def test_files_wandb_axes_histograms_and_table(tmp_path, batch):
    cfg = load_config(None, ["iterations=5", "observe.table_every=2", "observe.table_rows=2", "wandb.mode=offline"])
    logger = MetricsLogger(cfg, tmp_path)
    for step in range(3):
        logger.log_samples(step, batch)
        logger.log(step, {"reward": 0.1 * step, "generated_samples": len(batch), "curriculum/problems_at_stage_0": 2,
                          "curriculum/problems_at_stage_1": 1})
    logger.close()

    metrics = rows_of(tmp_path / "metrics.jsonl")
    assert [r["sampled_programs"] for r in metrics] == [3, 6, 9]
    samples = rows_of(tmp_path / "samples.jsonl")
    assert len(samples) == 9 and all("test_times" not in r and "judge_s" not in r for r in samples)
    assert samples[0]["prefix"] and samples[0]["masked_spans"] and samples[1]["failing"]["verdict"] == "wrong_answer"
    assert samples[2]["hacks"] == ["prints_without_input"]
    times = rows_of(tmp_path / "judge_times.jsonl")
    assert [t["step"] for t in times] == [0, 1, 2] and times[0]["judge_s"] == [s.observed.judge_s for s in batch]
    table = rows_of(tmp_path / "rollouts.jsonl")
    assert [r["step"] for r in table] == [0, 0, 2, 2]  # iterations 0 and 2 (table_every=2), 2 rows each
    assert any(r["hacks"] for r in table if r["step"] == 0)  # the hacking example is shown
    assert all(r["test_times"] for r in table)

    wb = run_file(tmp_path / "wandb")
    defined = {m.name or m.glob_name: m.step_metric for m in metric_definitions(wb)}
    assert defined == {"iteration": "", "sampled_programs": "", "*": "iteration"}
    rows = {r["_step"]: r for r in history(wb)}
    assert sorted(rows) == [0, 1, 2]
    assert [rows[s]["sampled_programs"] for s in range(3)] == [3, 6, 9]
    assert [rows[s]["iteration"] for s in range(3)] == [0, 1, 2]
    for key in ("hist/reward", "hist/completion_tokens", "hist/judge_seconds", "hist/curriculum_stage"):
        assert rows[1][f"{key}/_type"] == "histogram", key
    assert sum(rows[1]["hist/curriculum_stage/values"]) == 3  # problems per current stage
    assert "rollouts/path" in rows[0] and "rollouts/path" not in rows[1]
    saved = json.loads((wb.parent / "files" / rows[0]["rollouts/path"]).read_text())
    assert saved["columns"][:3] == ["step", "problem_id", "stage"] and len(saved["data"]) == 2
    completions = [row[saved["columns"].index("completion")] for row in saved["data"]]
    assert completions == [marked_completion(r) for r in table[:2]]  # the masked part marked, as in rollouts.jsonl


def test_sampled_programs_continue_across_a_resume(tmp_path, batch):
    cfg = load_config(None, ["wandb.mode=disabled"])
    first = MetricsLogger(cfg, tmp_path)
    for step in range(3):
        first.log(step, {"generated_samples": 10 + step})
    first.close()
    resumed = MetricsLogger(cfg, tmp_path)  # resumed from the checkpoint at step 1: step 1 is logged again
    resumed.log(1, {"generated_samples": 11})
    resumed.log(1, {"eval/heldout_pass@1": 0.5})  # an evaluation row at that step
    resumed.log(2, {"generated_samples": 12})
    resumed.close()
    assert [r["sampled_programs"] for r in rows_of(tmp_path / "metrics.jsonl")] == [10, 21, 33, 21, 21, 33]
