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


def _extra(run: Path, name: str, figures: dict) -> None:
    grounding = {m: {"1": figures[m]} for m in ("compile", "execute", "static_clean") if m in figures}
    path = run / "extra_eval" / f"{name}.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"settings": {}, "report": {"pass_at": {"1": figures["pass"]}, "grounding_at": grounding}}))


def test_an_extra_set_gets_its_own_table(tmp_path):
    held = {"pass": 0.3, "compile": 1.0, "execute": 1.0, "static_clean": 1.0}
    _run(tmp_path, "sft", 0, held, 0.1)
    _run(tmp_path, "sft", 1, held, 0.1)
    _run(tmp_path, "sft", 2, held, 0.1)  # not evaluated on mbpp (yet)
    _run(tmp_path, "rlcf", 0, held, 0.1)
    _extra(tmp_path / "runs" / "sft" / "seed0", "mbpp", {"pass": 0.0, "compile": 0.5, "execute": 0.25, "static_clean": 0.4})
    _extra(tmp_path / "runs" / "sft" / "seed1", "mbpp", {"pass": 0.1, "compile": 0.7, "execute": 0.35, "static_clean": 0.6})
    results = collect(tmp_path, ["sft", "rlcf"])
    assert results["sft"]["summary"]["mbpp/compile"]["mean"] == pytest.approx(0.6)
    text = table(results)
    mbpp = text.split("## mbpp")[1]
    assert "| sft | 0,1 | 0.050 (0.000-0.100) | 0.600 (0.500-0.700) | 0.300 (0.250-0.350) | 0.500 (0.400-0.600) |" in mbpp
    assert "| rlcf |" not in mbpp  # not evaluated there: no row, not a row of zeros
    assert "| rlcf | 0 | 0.300" in text.split("## mbpp")[0]
    assert "| sft | 0,1,2 | 0.300" in text.split("## mbpp")[0]  # the seeds each table has


@pytest.mark.parametrize("item, message", [("mbpp", "expected NAME=SPEC"), ("m-b=x", "expected NAME=SPEC"),
                                           ("heldout=x.json", "a run's own set")])
def test_a_bad_extra_set_is_refused_by_name(item, message):
    from methods.rlcf.extra_sets import parse_extra_set

    with pytest.raises(ValueError, match=message):
        parse_extra_set(item, 2)


@pytest.mark.slow
def test_finished_runs_are_evaluated_on_an_extra_set_and_kept(tmp_path, tiny_model_dir):
    """The real `execrl eval --json` subprocess on a finished run's model, with its config;
    a rerun keeps the figures and other settings are refused."""
    import shutil

    import yaml

    from cluster.config import load_config
    from core.settings import to_dict
    from methods.rlcf.extra_sets import ExtraSet, evaluate_runs

    _run(tmp_path, "sft", 0, {"pass": 0.3}, 0.1, after=False)
    run = tmp_path / "runs" / "sft" / "seed0"
    shutil.copytree(tiny_model_dir, run / "hf")
    cfg = load_config(None, ["rollout.max_new_tokens=16", "wandb.mode=disabled"])
    (run / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    (tmp_path / "runs" / "sft" / "seed1").mkdir()  # unfinished: skipped
    problems = tmp_path / "mini-mbpp.json"
    problems.write_text(json.dumps([
        {"task_id": 1, "prompt": "Write a function add(a, b) that returns their sum.", "code": "def add(a, b):\n    return a + b\n",
         "test_imports": [], "test_list": ["assert add(1, 2) == 3"]},
        {"task_id": 2, "prompt": "Write a function neg(a) that returns -a.", "code": "def neg(a):\n    return -a\n",
         "test_imports": [], "test_list": ["assert neg(1) == -1"]}]))
    sets = [ExtraSet("mini", str(problems), samples=2)]
    runs = [run, tmp_path / "runs" / "sft" / "seed1"]
    assert evaluate_runs(runs, sets) == []
    saved = json.loads((run / "extra_eval" / "mini.json").read_text())
    assert saved["settings"]["samples"] == 2 and saved["report"]["problems"] == 2 and saved["report"]["n"] == 2
    assert "compile" in saved["report"]["grounding_at"] and "per_problem" not in saved["report"]
    assert len((run / "extra_eval" / "mini.jsonl").read_text().splitlines()) == 2
    stamp = (run / "extra_eval" / "mini.json").stat().st_mtime_ns
    assert evaluate_runs(runs, sets) == []  # kept
    assert (run / "extra_eval" / "mini.json").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="made with other settings"):
        evaluate_runs(runs, [ExtraSet("mini", str(problems), samples=1)])
    assert collect(tmp_path, ["sft"])["sft"]["seeds"]["0"]["mini"]["pass"] == saved["report"]["pass_at"]["1"]
