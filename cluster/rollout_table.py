"""Rows of sampled rollouts: what the model wrote, what ran, what FGO masked, why it failed.

One row per sample (`sample_row`) serves three readers: `samples.jsonl` (every trained
sample, without its clock readings, so a resumed run writes the same lines as an
uninterrupted one), the rollout table (`rollouts.jsonl` and a W&B table, every
`observe.table_every` iterations, `observe.table_rows` samples chosen by `choose_rows`)
and `execrl inspect`, which reads both files back.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from typing import Sequence

from curriculum.fgo import mark_spans

TIMING_FIELDS = ("test_times", "judge_s")
# The W&B table's columns, in order (each a key of `table_cells`).
COLUMNS = ("step", "problem_id", "stage", "start", "policy_version", "prefix", "completion", "verdict", "reward",
           "execution_reward", "overlong_penalty", "tests", "failing_test", "test_times", "judge_s", "hacks")


def sample_row(step: int, sample, flags: tuple[str, ...]) -> dict:
    """Everything known about `sample` (a `cluster.samples.Sample`) of iteration `step`,
    JSON-safe; `flags` are its reward-hacking signals (`cluster.hacking.batch_flags`)."""
    o = sample.observed
    reward = None if sample.reward != sample.reward else sample.reward
    row = {"step": step, "problem_id": sample.problem_id, "difficulty": sample.difficulty, "stage": sample.stage,
           "policy_version": sample.policy_version, "completion": sample.text, "verdict": sample.verdict,
           "reward": reward, "overlong_penalty": sample.overlong_penalty,
           "completion_tokens": len(sample.completion_ids), "hacks": list(flags)}
    if sample.keep:
        row["masked_fraction"] = round(1 - sum(sample.keep) / len(sample.keep), 4)
    if o is not None:
        row.update({"num_stages": o.num_stages, "start_line": o.start_line, "start_kind": o.start_kind,
                    "prefix": o.prefix, "prefix_first_line": o.prefix_first_line,
                    "masked_spans": [list(span) for span in o.masked_spans], "executed_lines": list(o.executed_lines),
                    "tests_passed": o.tests_passed, "tests_total": o.tests_total, "test_verdicts": o.test_verdicts,
                    "failing": None if o.failing is None else asdict(o.failing), "error": o.error,
                    "test_times": list(o.test_times), "judge_s": o.judge_s})
    return row


def without_timing(row: dict) -> dict:
    """The row as samples.jsonl keeps it: clock readings differ between runs."""
    return {k: v for k, v in row.items() if k not in TIMING_FIELDS}


def table_due(step: int, every: int, iterations: int) -> bool:
    """Iterations 0, N, 2N, ... and the last one (0: never)."""
    return every > 0 and (step % every == 0 or step == iterations - 1)


def choose_rows(rows: Sequence[dict], count: int, seed: str) -> list[dict]:
    """`count` rows (in batch order): flagged ones first (up to half, so hacking examples
    show), then one per problem in a seeded order, then a second per problem, ..."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    chosen = [i for i in order if rows[i]["hacks"]][: count // 2]
    taken: dict[str, int] = {}
    for i in chosen:
        taken[rows[i]["problem_id"]] = taken.get(rows[i]["problem_id"], 0) + 1
    picked = set(chosen)
    rest = [i for i in order if i not in picked]
    rank = {}
    for position, i in enumerate(rest):  # the k-th pick of a problem ranks after every problem's (k-1)-th
        pid = rows[i]["problem_id"]
        rank[i] = (taken.get(pid, 0), position)
        taken[pid] = rank[i][0] + 1
    chosen += sorted(rest, key=rank.__getitem__)[: max(0, count - len(chosen))]
    return [rows[i] for i in sorted(chosen)]


def table_cells(row: dict) -> dict:
    """The row as the W&B table shows it: texts, with the masked part of the completion
    in ⟦ ⟧ and the failing test in one cell."""
    reward = row["reward"]
    return {"step": row["step"], "problem_id": row["problem_id"], "stage": row["stage"], "start": start_text(row),
            "policy_version": row["policy_version"], "prefix": row.get("prefix", ""),
            "completion": marked_completion(row), "verdict": row["verdict"], "reward": reward,
            "execution_reward": None if reward is None else reward + row["overlong_penalty"],
            "overlong_penalty": row["overlong_penalty"],
            "tests": f"{row.get('tests_passed', 0)}/{row.get('tests_total', 0)} {row.get('test_verdicts', '')}",
            "failing_test": failure_text(row), "test_times": " ".join(f"{t:.3f}" for t in row.get("test_times", ())),
            "judge_s": row.get("judge_s"), "hacks": ", ".join(row["hacks"])}


def start_text(row: dict) -> str:
    """Where the completion starts: "whole program (position 0)", or the start point's
    line and statement and how many stages the problem has left before position 0
    (stages count from 0, the one nearest the end of the solution)."""
    if "start_line" not in row:
        return ""
    if row["start_kind"] == "program":
        return "whole program (position 0)"
    left = row["num_stages"] - 1 - row["stage"]
    return f"line {row['start_line']} ({row['start_kind']}), {left} stage{'s' * (left != 1)} before position 0"


def marked_completion(row: dict) -> str:
    """The completion with FGO's masked runs in ⟦ ⟧ (as `curriculum.fgo.render_mask`)."""
    return mark_spans(row["completion"], [tuple(s) for s in row.get("masked_spans", ())])


def failure_text(row: dict) -> str:
    """The first failing test as one text: its number, verdict, input, expected, actual,
    error; or the program's own error (a compile error); "" when it passed."""
    failing = row.get("failing")
    if failing is None:
        return row.get("error") or ""
    parts = [f"test {failing['index'] + 1}: {failing['verdict']}"]
    for key in ("input", "expected", "actual", "error"):
        if failing.get(key) is not None:
            parts.append(f"{key}: {failing[key]!r}")
    return "\n".join(parts)
