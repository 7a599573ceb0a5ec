"""End to end: a shrunk default `execrl train` writes the rollout table, the histograms and
the distribution and hacking counters; `execrl inspect` on its run directory shows a
problem's curriculum history and the code FGO masked.

The default config, shrunk as tests/test_train.py shrinks it, on a problem set of its
own (`data.*` overrides): eight stdin problems whose canonical solutions hold a branch no
test reaches.  The bundled sets' tests reach every branch of their solutions, so a model
that learned them writes little code to mask (a run of the bundled default with a
200-step SFT masked nothing in 96 samples); a model that learned these writes the dead
branch, and FGO must mask it in every sample that has it."""

from __future__ import annotations

import json
import re

import pytest

from cluster.cli import main
from cluster.config import load_config
from cluster.train import run_training
from core.problem import Problem, StdioTest
from wandb_records import history, metric_definitions, run_file

DEAD_BRANCH = "count -= 1000"
DEAD_BLOCK = f"    elif x < -1000:\n        {DEAD_BRANCH}\n"  # the condition runs, its body never
SMALL = ["learner.sft.steps=80", "learner.sft.batch_size=8", "problems_per_iteration=4", "rollout.samples_per_prompt=8",
         "learner.minibatch_size=16", "learner.micro_batch_size=8", "eval_samples=1", "eval_problems=2",
         "rollout.max_new_tokens=96", "wandb.mode=offline", "checkpoint_every=1", "iterations=3",
         "observe.table_every=2", "observe.table_rows=6"]


def dead_branch_problems(path) -> None:
    """Count the integers above K; the `elif` is evaluated, its body never runs."""
    rows = []
    for k in range(1, 9):
        solution = (f"nums = [int(x) for x in input().split()]\ncount = 0\nfor x in nums:\n    if x > {k}:\n"
                    f"        count += 1\n    elif x < -1000:\n        {DEAD_BRANCH}\nprint(count)\n")
        inputs = ["\n", f"{k}\n", f"{k + 1}\n", f"0 {k} {k + 2} {k + 5}\n", "9 9 9 1\n"]
        tests = tuple(StdioTest(i, f"{sum(int(x) > k for x in i.split())}\n") for i in inputs)
        rows.append(Problem(id=f"dead/{k}", source="test", difficulty="easy", tests=tests, solutions=(solution,),
                            statement=f"Read integers from one line and print how many of them are greater than {k}."))
    path.write_text("".join(p.to_json() + "\n" for p in rows))


def rows_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_train_writes_table_and_histograms_and_inspect_shows_history_and_masks(ray_session, tmp_path, capsys):
    run, problems = tmp_path / "run", tmp_path / "dead.jsonl"
    dead_branch_problems(problems)
    data = [f"data.sft={problems}", f"data.rl={problems}", f"data.heldout={problems}", "data.transfer="]
    run_training(load_config(None, SMALL + data + [f"model.cache_dir={tmp_path / 'cache'}", f"output_dir={run}"]),
                 log=lambda *_: None)

    table = rows_of(run / "rollouts.jsonl")
    assert [r["step"] for r in table] == [0] * 6 + [2] * 6  # iterations 0 and the last
    for r in table:
        assert r["prefix"] is not None and r["start_kind"] and r["policy_version"] == r["step"]
        assert r["test_times"] or r["verdict"] == "compile_error"
        assert (r["failing"] is not None) == (r["verdict"] not in ("pass", "compile_error"))
    metrics = rows_of(run / "metrics.jsonl")
    assert [r["sampled_programs"] for r in metrics] == [32, 64, 96]
    for key in ("dist/reward_p50", "dist/completion_tokens_p90", "time/judge_p95", "time/judge_p99", "judge/timeouts",
                "hacking/prints_without_input", "hacking/flagged"):
        assert all(key in r for r in metrics), key
    assert all(sum(v for k, v in r.items() if k.startswith("curriculum/samples_at_stage_")) == 32 for r in metrics)

    wb = run_file(run / "wandb")
    assert {m.glob_name: m.step_metric for m in metric_definitions(wb) if m.glob_name} == {"*": "iteration"}
    rows = {r["_step"]: r for r in history(wb)}
    assert all(rows[s]["hist/reward/_type"] == "histogram" and rows[s]["hist/curriculum_stage/_type"] == "histogram"
               for s in range(3))
    assert "rollouts/path" in rows[0] and "rollouts/path" in rows[2] and "rollouts/path" not in rows[1]

    samples = rows_of(run / "samples.jsonl")
    dead = [s for s in samples if DEAD_BLOCK in s["completion"] and s["verdict"] != "compile_error"]
    assert dead, "the SFT model never wrote the dead branch"
    for s in dead:  # FGO masked the branch no test ran, in every sample that wrote it
        masked = "".join(s["completion"][a:b] for a, b in s["masked_spans"])
        assert DEAD_BRANCH in masked, s
    last = {s["problem_id"]: s["step"] for s in samples}
    state = json.loads((run / "checkpoints" / "step_000003" / "client_state.json").read_text())
    changes = {pid: p["history"] for pid, p in state["client_state"]["curriculum"]["problems"].items() if p["history"]}
    assert changes, "no problem changed stage: the history would show none"
    problem = next(s["problem_id"] for s in reversed(dead) if s["step"] == last[s["problem_id"]]
                   and s["problem_id"] in changes)
    assert main(["inspect", str(run), "--problem", problem]) == 0
    out = capsys.readouterr().out
    assert f"problem {problem}: " in out and "pass rate per stage: stage" in out
    for step, before, after, rate in changes[problem]:
        assert f"step {step}: {before} -> {after} (pass rate {rate:.2f})" in out
    visits = sorted({s["step"] for s in samples if s["problem_id"] == problem})
    assert all(f"\n  {step:>4}  " in out for step in visits)
    shown = out[out.index("latest samples"):]
    branch = [line for line in shown.splitlines() if DEAD_BRANCH in line.replace("⟦", "").replace("⟧", "")]
    assert branch and all("not run |" in line and "⟦" in line and line.rstrip().endswith("⟧") for line in branch)
    assert "ran     |" in shown
    page = tmp_path / "inspect.html"
    assert main(["inspect", str(run), "--problem", problem, "--html", str(page)]) == 0
    assert re.search(r"<span class='masked'>[^<]*1000[^<]*</span>", page.read_text())
