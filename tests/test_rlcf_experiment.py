"""`execrl experiment rlcf`'s plan and tables, on hand-built run directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster.experiment import plan_runs
from methods.rlcf.experiment import EVAL_CHECKS, VARIANTS, collect, select, table


def _run(root: Path, variant: str, seed: int, heldout: dict, transfer_pass: float, after: bool = True,
         accuracy: float | None = None) -> None:
    run = root / "runs" / variant / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "result.json").write_text("{}")
    grounding = {m: {"1": heldout[m]} for m in ("compile", "execute", "static_clean") if m in heldout}
    reports = {"heldout": {"pass_at": {"1": heldout["pass"]}, "grounding_at": grounding},
               "transfer": {"pass_at": {"1": transfer_pass}, "grounding_at": {}}}
    (run / ("eval_after_rl.json" if after else "eval_before_rl.json")).write_text(json.dumps({"reports": reports}))
    if accuracy is not None:
        rows = [{"step": 0, "discriminator/heldout_accuracy": 0.5}, {"step": 1, "discriminator/heldout_accuracy": accuracy}]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_collect_and_table_by_hand(tmp_path):
    _run(tmp_path, "rlcf", 0, {"pass": 0.2, "compile": 0.9, "execute": 0.8, "static_clean": 0.7}, 0.05, accuracy=0.8)
    _run(tmp_path, "rlcf", 1, {"pass": 0.4, "compile": 1.0, "execute": 0.9, "static_clean": 0.9}, 0.07, accuracy=0.6)
    _run(tmp_path, "sft", 0, {"pass": 0.3, "compile": 1.0, "execute": 1.0, "static_clean": 1.0}, 0.1, after=False)
    (tmp_path / "runs" / "rlcf" / "seed2").mkdir()  # unfinished: no result.json
    results = collect(tmp_path, ["sft", "stepcoder", "rlcf"])
    assert list(results) == ["sft", "rlcf"] and sorted(results["rlcf"]["seeds"]) == ["0", "1"]
    summary = results["rlcf"]["summary"]
    assert summary["heldout/pass"] == {"mean": pytest.approx(0.3), "min": 0.2, "max": 0.4, "n": 2}
    assert summary["heldout/static_clean"]["mean"] == pytest.approx(0.8)
    assert results["rlcf"]["seeds"]["0"]["discriminator_heldout_accuracy"] == 0.8
    text = table(results)
    assert "| rlcf | 0,1 | 0.300 (0.200-0.400) | 0.950 (0.900-1.000) | 0.850 (0.800-0.900) | 0.800 (0.700-0.900) |" in text
    assert "| sft | 0 | 0.300 (0.300-0.300)" in text


def test_the_plan_evaluates_every_variant_with_the_static_checks(tmp_path):
    specs = plan_runs(tmp_path, select(list(VARIANTS)), [0, 1], list(EVAL_CHECKS))
    assert len(specs) == 8 and all("executor.static_checks=true" in s.overrides for s in specs)
    rl = {s.variant.name for s in specs if "iterations=24" in s.overrides}
    assert rl == {"stepcoder", "rlcf"}
    with pytest.raises(ValueError, match="unknown variant 'ppo'"):
        select(["ppo"])
