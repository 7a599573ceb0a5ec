"""`execrl experiment ablation` and `execrl report`: the pure parts here (variants and
overrides, which runs are kept, resumed or restarted, the scheduler's per-seed rule, the
bootstrap on data whose answer is known, the tables, the mechanics checks, the curves,
the periodic evaluation's bookkeeping), then one slow end-to-end `--quick` ablation that
trains every variant for real and fails when a mechanics check does."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from cluster import ablation_report as report
from cluster.ablation_checks import check_run
from cluster.cli import main
from cluster.config import load_config
from cluster.curves import draw_run, read_metrics
from cluster.experiment import (BASE_CONFIG, RL_DEFAULTS, VARIANTS, RunSpec, Scheduler, expected_all,
                                expected_settings, parse_seeds, plan_runs, run_status, select_variants,
                                check_overrides, writer_of)
from core.settings import ConfigError, to_dict

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


# -- variants, seeds, overrides -------------------------------------------------------------

def test_default_variants_are_the_ablation_arms():
    assert list(VARIANTS) == ["sft", "ppo", "ppo-no-cccs", "ppo-no-fgo", "stepcoder", "grpo", "grpo-cccs-fgo"]
    assert VARIANTS["sft"].overrides == ("iterations=0",) and not VARIANTS["sft"].rl
    assert set(VARIANTS["ppo"].overrides) == {"curriculum.enabled=false", "learner.fgo=false"}
    assert VARIANTS["ppo-no-cccs"].overrides == ("curriculum.enabled=false",)
    assert VARIANTS["ppo-no-fgo"].overrides == ("learner.fgo=false",)
    assert VARIANTS["stepcoder"].overrides == ()
    grpo = {"learner.advantage_estimator=grpo", "learner.kl_mode=loss", "learner.kl_estimator=k3"}
    assert set(VARIANTS["grpo"].overrides) == grpo | {"curriculum.enabled=false", "learner.fgo=false"}
    assert set(VARIANTS["grpo-cccs-fgo"].overrides) == grpo


@pytest.mark.parametrize("text, seeds", [("0,1,2", [0, 1, 2]), ("0-2", [0, 1, 2]), ("4", [4]),
                                         ("2, 0-1,2", [2, 0, 1])])
def test_seeds_parse(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["x", "0,,1", "3-1", "-1", "1.5"])
def test_bad_seeds_are_refused_naming_the_input(text):
    with pytest.raises(ValueError, match=f"--seeds '{text}'"):
        parse_seeds(text)


def test_variants_select_in_order_and_unknown_ones_are_named():
    assert [v.name for v in select_variants("stepcoder,ppo,stepcoder")] == ["stepcoder", "ppo"]
    with pytest.raises(ValueError, match="unknown variant 'ppo-fgo'; choose from sft, ppo"):
        select_variants("ppo,ppo-fgo")


@pytest.mark.parametrize("item, message", [("seed=3", "seed is set per run"), ("output_dir=x", "output_dir is set"),
                                           ("learner.lr", "must look like section.key=value")])
def test_per_run_keys_and_malformed_overrides_are_refused(item, message):
    with pytest.raises(ValueError, match=message):
        check_overrides([item])


def test_cli_refuses_bad_input_with_one_line(capsys, tmp_path):
    assert main(["experiment", "ablation", "--out", str(tmp_path), "--variants", "nope"]) == 2
    assert "unknown variant 'nope'" in capsys.readouterr().err
    assert main(["experiment", "ablation", "--out", str(tmp_path), "learner.lrr=1"]) == 2
    assert "unknown config key 'learner.lrr'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before anything ran


def test_plan_orders_overrides_so_the_variant_wins(tmp_path):
    specs = plan_runs(tmp_path, select_variants("sft,ppo"), [0, 3], ["iterations=5", "learner.fgo=true"])
    assert [s.name for s in specs] == ["sft seed0", "ppo seed0", "sft seed3", "ppo seed3"]  # seed by seed
    sft, ppo = specs[2], specs[1]
    assert sft.run_dir == tmp_path / "runs" / "sft" / "seed3"
    assert not set(RL_DEFAULTS) & set(sft.overrides) and set(RL_DEFAULTS) <= set(ppo.overrides)
    assert sft.overrides[-4:] == ("seed=3", "data.seed=3", f"model.cache_dir={tmp_path / 'cache'}",
                                  f"output_dir={sft.run_dir}")
    assert expected_settings(sft)["iterations"] == 0  # the variant's own beats the extra override
    ppo_cfg = expected_settings(ppo)
    assert ppo_cfg["learner.fgo"] is False and ppo_cfg["iterations"] == 5 and ppo_cfg["eval_every"] == 12
    assert ppo_cfg["data.rl"] == "bundled:hard-rl"  # the base config's keys are part of what is checked
    assert "output_dir" not in ppo_cfg and "model.cache_dir" not in ppo_cfg
    assert ppo.command()[:6] == [sys.executable, "-m", "cluster.cli", "train", "--config", str(BASE_CONFIG)]
    assert ppo.command(resume=True)[-2:] == ["--resume", str(ppo.run_dir)]


def test_a_variant_the_config_refuses_is_named_and_the_others_still_plan(tmp_path):
    bad = replace(VARIANTS["ppo"], name="ppo-typo", overrides=("learner.advantage_estimatr=grpo",))
    specs = plan_runs(tmp_path, [VARIANTS["ppo"], bad], [0])
    expected = expected_all(specs)
    assert isinstance(expected["ppo seed0"], dict)
    assert isinstance(expected["ppo-typo seed0"], ConfigError)
    status = run_status(specs[1], expected["ppo-typo seed0"], lambda _d: None)
    assert status.action == "invalid" and "learner.advantage_estimatr" in status.reason


# -- which runs are kept, resumed, restarted ------------------------------------------------

def _write_run(spec: RunSpec, overrides=None, result=True, checkpoints=False) -> None:
    """A run directory as `execrl train` leaves it (config.yaml from the real loader)."""
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    cfg = load_config(spec.base_config, list(overrides if overrides is not None else spec.overrides))
    (spec.run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    if result:
        (spec.run_dir / "result.json").write_text("{}")
    if checkpoints:
        (spec.run_dir / "checkpoints").mkdir()
        (spec.run_dir / "checkpoints" / "latest").write_text("step_000010")


def _status(spec):
    return run_status(spec, expected_settings(spec), lambda _d: None)


def test_finished_runs_with_matching_settings_are_kept(tmp_path):
    spec = plan_runs(tmp_path, [VARIANTS["ppo"]], [1])[0]
    assert _status(spec).action == "start" and _status(spec).reason == "new"
    _write_run(spec)
    assert _status(spec).action == "done"


def test_a_run_made_by_hand_with_the_same_settings_is_kept(tmp_path):
    """The SFT runs outputs/ablation/runs/sft/seed* were made by a script with a relative
    output_dir, the overrides in another order and a config.yaml from before eval_every
    existed: the same settings, so they are finished runs."""
    out = tmp_path / "ablation"
    spec = plan_runs(out, [VARIANTS["sft"]], [2])[0]
    by_hand = ["iterations=0", "seed=2", "data.seed=2", "model.cache_dir=outputs/ablation/cache",
               "output_dir=outputs/ablation/runs/sft/seed2"]
    _write_run(spec, overrides=by_hand)
    saved = yaml.safe_load((spec.run_dir / "config.yaml").read_text())
    del saved["eval_every"], saved["eval_before_rl"]
    (spec.run_dir / "config.yaml").write_text(yaml.safe_dump(saved))
    assert _status(spec).action == "done"


@pytest.mark.parametrize("changed, key", [("learner.fgo=true", "learner.fgo"), ("seed=7", "seed"),
                                          ("rollout.max_new_tokens=128", "rollout.max_new_tokens"),
                                          ("eval_every=0", "eval_every")])
def test_a_run_with_other_settings_starts_afresh_naming_the_key(tmp_path, changed, key):
    spec = plan_runs(tmp_path, [VARIANTS["ppo"]], [0])[0]
    _write_run(spec, overrides=[*spec.overrides, changed])
    status = _status(spec)
    assert status.action == "start" and f"{key}: saved" in status.reason


def test_unfinished_runs_resume_from_checkpoints_or_restart(tmp_path):
    spec = plan_runs(tmp_path, [VARIANTS["stepcoder"]], [0])[0]
    _write_run(spec, result=False, checkpoints=True)
    assert _status(spec).action == "resume"
    (spec.run_dir / "checkpoints" / "latest").unlink()
    assert _status(spec).action == "start" and "without checkpoints" in _status(spec).reason
    assert run_status(spec, expected_settings(spec), lambda d: 4242).action == "busy"


def test_results_also_cover_runs_finished_earlier_with_the_same_settings(tmp_path):
    """Adding a variant later (`--variants grpo`) keeps the earlier variants and seeds in
    the tables; runs made with other settings are not mixed in."""
    from cluster.ablation import AblationRequest, finished_elsewhere

    earlier = plan_runs(tmp_path, select_variants("sft,ppo"), [0, 1])
    for spec in earlier:
        _write_run(spec)
    _write_run(earlier[3], overrides=[*earlier[3].overrides, "learner.lr=1e-3"])  # ppo seed1: other settings
    (tmp_path / "runs" / "ppo" / "seed7").mkdir()  # started, never finished
    request = AblationRequest(tmp_path, select_variants("grpo"), [0])
    found = finished_elsewhere(request, [], {"grpo seed0"})
    assert [s.name for s in found] == ["sft seed0", "ppo seed0", "sft seed1"]
    assert [s.name for s in finished_elsewhere(request, ["learner.lr=1e-3"], set())] == ["ppo seed1"]


def test_a_run_another_process_writes_is_detected(tmp_path):
    run_dir = tmp_path / "runs" / "sft" / "seed0"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "train",
                             "output_dir=runs/sft/seed0"], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 10
        while writer_of(run_dir) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer_of(run_dir) == proc.pid
        assert writer_of(tmp_path / "runs" / "sft" / "seed1") is None
    finally:
        proc.kill()
        proc.wait()
    assert writer_of(run_dir) is None


class _FakeTrain(RunSpec):
    """A run whose `execrl train` is a short script writing what a finished run writes
    (or failing for seed 9), to test the scheduler without training."""

    def command(self, resume: bool = False) -> list[str]:
        code = ("import json, pathlib, sys, time, yaml\n"
                f"d = pathlib.Path({str(self.run_dir)!r}); d.mkdir(parents=True, exist_ok=True)\n"
                f"print('resume' if {resume} else 'start', time.time(), flush=True)\n"
                f"time.sleep(0.3)\n"
                f"if {self.seed} == 9: sys.exit('boom: seed 9')\n"
                f"(d / 'config.yaml').write_text('seed: {self.seed}')\n"
                f"(d / 'result.json').write_text('{{}}')\n"
                f"print('end', time.time(), flush=True)\n")
        return [sys.executable, "-c", code]


def _fake_plan(out, seeds, variants=("ppo", "stepcoder")):
    return [_FakeTrain(s.variant, s.seed, s.run_dir, s.overrides) for s in
            plan_runs(out, [VARIANTS[v] for v in variants], seeds)]


def test_scheduler_runs_seeds_side_by_side_but_one_seed_at_a_time_until_warm(tmp_path):
    specs = _fake_plan(tmp_path, [0, 1])
    logged: list[str] = []
    expected = {s.name: {"seed": s.seed} for s in specs}
    outcomes = Scheduler(tmp_path, parallel=3, log=logged.append, busy=lambda _d: None, poll_s=0.05).run(
        specs, expected)
    assert [o.action for o in outcomes] == ["ran"] * 4, logged
    order = [line.split("]")[0][1:] + " " + line.split("] ")[1].split()[0] for line in logged]
    # ppo seed0 and ppo seed1 start together; with a slot free, stepcoder seed0 still waits
    # for ppo seed0 (which makes the seed's SFT model), and stepcoder seed1 for ppo seed1
    assert order.index("ppo seed1 started") < order.index("ppo seed0 ran")
    assert order.index("stepcoder seed0 started") > order.index("ppo seed0 ran")
    assert order.index("stepcoder seed1 started") > order.index("ppo seed1 ran")
    # a second invocation keeps every finished run; one whose settings changed runs again
    expected["stepcoder seed1"] = {"seed": 5}
    again = Scheduler(tmp_path, parallel=2, log=logged.append, busy=lambda _d: None, poll_s=0.05).run(
        specs, expected)
    assert [o.action for o in again] == ["done", "done", "done", "ran"]


def test_scheduler_keeps_going_past_a_failed_run_and_moves_stale_attempts_aside(tmp_path):
    specs = _fake_plan(tmp_path, [9, 0], variants=("ppo",))
    stale = specs[1].run_dir
    stale.mkdir(parents=True)
    (stale / "config.yaml").write_text("seed: 5\n")  # another experiment's run
    expected = {s.name: {"seed": s.seed} for s in specs}
    outcomes = Scheduler(tmp_path, parallel=1, log=lambda _l: None, busy=lambda _d: None, poll_s=0.05).run(
        specs, expected)
    assert outcomes[0].action == "failed" and "boom: seed 9" in outcomes[0].detail
    assert outcomes[1].action == "ran"
    moved = list((tmp_path / "stale" / "ppo").iterdir())
    assert len(moved) == 1 and (moved[0] / "config.yaml").read_text() == "seed: 5\n"


def test_scheduler_waits_for_a_run_another_process_writes(tmp_path):
    spec = _fake_plan(tmp_path, [0], variants=("ppo",))[0]
    spec.run_dir.mkdir(parents=True)
    (spec.run_dir / "result.json").write_text("{}")
    polls = []

    def busy(_d):  # written by someone else for the first three polls, then finished
        polls.append(1)
        return 1234 if len(polls) <= 3 else None

    (spec.run_dir / "config.yaml").write_text("seed: 0\n")
    outcomes = Scheduler(tmp_path, parallel=1, log=lambda _l: None, busy=busy, poll_s=0.01).run(
        [spec], {spec.name: {"seed": 0}})
    assert outcomes[0].action == "done" and len(polls) == 4
    assert not (spec.run_dir / "train.log").exists()  # never touched


def test_a_run_another_process_starts_while_it_waits_for_a_slot_is_not_started_twice(tmp_path):
    """Decided while free, then taken by a second invocation before a slot opened: the
    scheduler checks again at launch and waits for the other writer instead."""
    first, second = _fake_plan(tmp_path, [0], variants=("ppo", "stepcoder"))

    def busy(run_dir):  # once `first` has finished, another process writes `second` (and finishes it)
        if run_dir == second.run_dir and (first.run_dir / "result.json").is_file():
            if not (second.run_dir / "result.json").is_file():
                second.run_dir.mkdir(parents=True, exist_ok=True)
                (second.run_dir / "config.yaml").write_text("seed: 0\n")
                (second.run_dir / "result.json").write_text("{}")
                return 4242
        return None

    logged: list[str] = []
    outcomes = Scheduler(tmp_path, parallel=1, log=logged.append, busy=busy, poll_s=0.01).run(
        [first, second], {first.name: {"seed": 0}, second.name: {"seed": 0}})
    assert [o.action for o in outcomes] == ["ran", "done"], logged
    assert not any("stepcoder seed0] started" in line for line in logged)


def test_ctrl_c_lets_the_running_runs_finish_their_checkpoints(tmp_path, monkeypatch):
    import cluster.experiment as experiment

    specs = _fake_plan(tmp_path, [0], variants=("ppo", "stepcoder"))

    def ctrl_c(_seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment.time, "sleep", ctrl_c)
    logged: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        Scheduler(tmp_path, parallel=1, log=logged.append, busy=lambda _d: None).run(
            specs, {s.name: {"seed": 0} for s in specs})
    assert (specs[0].run_dir / "result.json").is_file()  # waited for, not abandoned
    assert not specs[1].run_dir.exists()  # never started
    assert any("[ppo seed0] stopped (exit status 0)" in line for line in logged), logged


# -- statistics ---------------------------------------------------------------------------

def test_spread_over_seeds():
    s = report.spread([0.2, 0.4, None, 0.3])
    assert (s.mean, s.min, s.max, s.n) == (pytest.approx(0.3), 0.2, 0.4, 3)
    assert s.sd == pytest.approx(0.1)
    assert report.spread([0.5]).sd is None and report.spread([]).n == 0


def test_bootstrap_of_a_constant_difference_is_that_difference():
    pairs = {seed: [(0.5 + 0.25, 0.5)] * 30 for seed in range(3)}
    d = report.paired_bootstrap(pairs)
    assert (d.mean, d.low, d.high) == (pytest.approx(0.25), pytest.approx(0.25), pytest.approx(0.25))
    assert (d.seeds, d.problems) == (3, 90)


def test_bootstrap_resamples_seeds():
    """Seed 0: the variant loses nothing, seed 1: it gains 1 on every problem.  Resampling
    the two seeds gives 0, 0.5 or 1 with chances 1/4, 1/2, 1/4: the 95% interval is [0, 1]."""
    pairs = {0: [(0.5, 0.5)] * 40, 1: [(1.0, 0.0)] * 40}
    d = report.paired_bootstrap(pairs)
    assert d.mean == pytest.approx(0.5) and d.low == pytest.approx(0.0) and d.high == pytest.approx(1.0)


def test_bootstrap_resamples_problems_within_a_seed():
    """One seed, differences 1 on half the problems and 0 on the rest: the interval is the
    normal one, 0.5 +- 1.96 * 0.5 / sqrt(n)."""
    n = 400
    d = report.paired_bootstrap({0: [(1.0, 0.0)] * (n // 2) + [(0.0, 0.0)] * (n // 2)})
    half = 1.96 * 0.5 / math.sqrt(n)
    assert d.mean == pytest.approx(0.5)
    assert d.low == pytest.approx(0.5 - half, abs=0.01) and d.high == pytest.approx(0.5 + half, abs=0.01)


def _result(variant, seed, heldout, per_problem=None, tokens=(100, 120), by_difficulty=None):
    rows = [{"step": i, "reward": 0.1 * i, "pass_rate": 0.2, "generated_tokens": t, "generated_samples": 16}
            for i, t in enumerate(tokens)]
    return report.RunResult(variant, seed, f"/x/{variant}/{seed}", {"heldout": heldout, "transfer": heldout / 2},
                            {"heldout": None, "transfer": None}, by_difficulty or {"easy": heldout},
                            {"heldout": per_problem} if per_problem else {}, len(tokens), 32,
                            16 * len(tokens), sum(tokens), rows)


def test_pairs_are_made_on_the_problems_and_seeds_both_runs_have():
    a = {0: _result("x", 0, 0.5, {"p1": 1.0, "p2": 0.0, "p3": 1.0}), 1: _result("x", 1, 0.5, {"p1": 1.0})}
    b = {0: _result("ppo", 0, 0.5, {"p1": 0.0, "p3": 0.5}), 2: _result("ppo", 2, 0.5, {"p1": 0.0})}
    assert report.pairs_between(a, b, "heldout") == {0: [(1.0, 0.0), (1.0, 0.5)]}


def test_summary_and_table():
    pp = {f"p{i}": float(i % 2) for i in range(20)}
    better = {f"p{i}": 1.0 for i in range(20)}
    runs = {"sft": {0: _result("sft", 0, 0.5, pp, tokens=()), 1: _result("sft", 1, 0.5, pp, tokens=())},
            "ppo": {0: _result("ppo", 0, 0.5, pp), 1: _result("ppo", 1, 0.5, pp)},
            "stepcoder": {0: _result("stepcoder", 0, 1.0, better), 1: _result("stepcoder", 1, 1.0, better, tokens=(5,))}}
    runs["stepcoder"][1].generated_tokens = None  # a run without the metric
    summaries = report.summarise(runs, {"ppo": ["learner.fgo=false"], "stepcoder": []})
    sc = summaries["stepcoder"]
    assert sc.pass_at_1["heldout"].mean == 1.0 and sc.generated_tokens.n == 0
    assert sc.vs["ppo"]["heldout"].mean == pytest.approx(0.5) and sc.vs["sft"]["heldout"].mean == pytest.approx(0.5)
    assert "ppo" not in summaries["ppo"].vs and summaries["ppo"].vs["sft"]["heldout"].mean == 0.0
    assert summaries["ppo"].generated_tokens.mean == 220
    md = report.render_markdown(summaries, ["a note"], "T")
    assert md.startswith("# T\n")
    assert "| stepcoder | 0,1 | 1.000 (sd 0.000; 1.000-1.000) | 0.500 (sd 0.000; 0.500-0.500) | 32 | n/a |" in md
    assert "| ppo | 0,1 | 0.500 (sd 0.000; 0.500-0.500) |" in md and "| 220 |" in md
    lo_hi = sc.vs["ppo"]["heldout"]
    assert f"| stepcoder | +0.500 [{lo_hi.low:+.3f}, {lo_hi.high:+.3f}] |" in md
    assert "| ppo | - | - | +0.000 [+0.000, +0.000] |" in md
    assert "- `ppo`: learner.fgo=false" in md and "- a note" in md
    assert report.render_markdown({}, [], "T").startswith("# T\n\nNo run has finished yet.")


def test_difficulties_are_listed_easiest_first():
    runs = {"ppo": {0: _result("ppo", 0, 0.5, by_difficulty={"hard": 0.1, "easy": 0.9, "medium": 0.5, "odd": 0.2})}}
    md = report.render_markdown(report.summarise(runs, {}), [])
    assert "| variant | easy | medium | hard | odd |\n" in md and "| ppo | 0.900 | 0.500 | 0.100 | 0.200 |" in md


# -- a run directory as execrl train writes it ----------------------------------------------

def _train_dir(tmp_path: Path, overrides: list[str], rows: list[dict], evals: list[dict] = (),
               result: dict | None = None, per_problem=True) -> Path:
    """A run directory with config.yaml from the real loader and hand-made metrics."""
    cfg = load_config(BASE_CONFIG, overrides)
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*rows, *evals]))
    result = result or {"heldout_before": None, "heldout_after": 0.25, "transfer_before": None,
                        "transfer_after": 0.125}
    (run / "result.json").write_text(json.dumps(result))
    rows_pp = [{"problem_id": f"p{i}", "difficulty": "easy", "n": 4, "correct": i % 2, "pass@1": (i % 2) / 4}
               for i in range(4)]
    reports = {"heldout": {"by_difficulty": {"easy": {"1": 0.25}}, **({"per_problem": rows_pp} if per_problem else {})}}
    (run / "eval_after_rl.json").write_text(json.dumps({"heldout": 0.25, "reports": reports}))
    return run


def _rows(n=2, masked=0.0, at_zero=0.0, value_loss=0.3, **extra):
    return [{"step": i, "reward": -0.5 + 0.1 * i, "pass_rate": 0.1 * i, "masked_token_fraction": masked,
             "curriculum/fraction_at_position_0": at_zero, "curriculum/problems_at_stage_0": 10,
             "learner/value_loss": value_loss, "generated_samples": 16, "generated_tokens": 400 + i, **extra}
            for i in range(n)]


def _expected(overrides):
    spec = RunSpec(VARIANTS["stepcoder"], 0, Path("/unused"), tuple(overrides))
    return expected_settings(spec)


STEPCODER = ["iterations=2", "eval_every=1", "eval_before_rl=false"]
EVALS = [{"step": 0, "eval/heldout_pass@1": 0.1}, {"step": 1, "eval/heldout_pass@1": 0.25}]


def test_a_run_that_did_what_its_variant_says_passes_every_check(tmp_path):
    run = _train_dir(tmp_path, STEPCODER, _rows(masked=0.02), EVALS)
    assert check_run("stepcoder seed0", run, _expected(STEPCODER)) == []
    ppo = STEPCODER + ["curriculum.enabled=false", "learner.fgo=false"]
    run = _train_dir(tmp_path, ppo, _rows(masked=0.0, at_zero=1.0), EVALS)
    assert check_run("ppo seed0", run, _expected(ppo)) == []


@pytest.mark.parametrize("overrides, rows, check", [
    (["learner.fgo=false"], _rows(masked=[0.0, 0.01]), "fgo-off"),
    (["curriculum.enabled=false"], _rows(at_zero=[1.0, 0.9]), "cccs-off"),
    ([], _rows(at_zero=1.0), "cccs-on"),
    (["learner.advantage_estimator=grpo", "learner.kl_mode=loss"], _rows(value_loss=0.2), "no-critic"),
    ([], _rows(value_loss=0.0), "critic"),
    ([], _rows(n=1), "iterations"),
])
def test_a_run_whose_mechanics_contradict_its_variant_fails_naming_the_check(tmp_path, overrides, rows, check):
    for key in ("masked_token_fraction", "curriculum/fraction_at_position_0"):  # per-iteration values
        for i, r in enumerate(rows):
            if isinstance(r[key], list):
                r[key] = r[key][i]
    run = _train_dir(tmp_path, STEPCODER + overrides, rows, EVALS)
    failures = check_run("v seed0", run, _expected(STEPCODER + overrides))
    assert check in [f.check for f in failures], failures
    assert all(str(f).startswith("v seed0: ") for f in failures)


def test_a_run_without_the_variants_settings_or_evaluations_fails(tmp_path):
    run = _train_dir(tmp_path, STEPCODER, _rows(masked=0.02), EVALS[1:])
    failures = check_run("ppo seed0", run, _expected(STEPCODER + ["learner.fgo=false"]))
    assert {f.check for f in failures} == {"config", "eval-every"}
    assert any("learner.fgo: saved True, wanted False" in f.detail for f in failures)
    run = _train_dir(tmp_path, STEPCODER, _rows(masked=0.02), EVALS,
                     result={"heldout_before": 0.3, "heldout_after": 0.2})
    assert [f.check for f in check_run("x", run, _expected(STEPCODER))] == ["eval-before-rl"]


def test_load_run_reads_figures_budget_and_per_problem_rows(tmp_path):
    run = _train_dir(tmp_path, STEPCODER, _rows(), EVALS)
    r = report.load_run(run, "stepcoder", 0)
    cfg = load_config(BASE_CONFIG, STEPCODER)
    assert r.pass_at_1 == {"heldout": 0.25, "transfer": 0.125} and r.before["heldout"] is None
    assert r.planned_programs == 2 * cfg.problems_per_iteration * cfg.rollout.samples_per_prompt
    assert (r.generated_samples, r.generated_tokens) == (32, 801)
    assert r.per_problem["heldout"] == {"p0": 0.0, "p1": 0.25, "p2": 0.0, "p3": 0.25}
    assert r.by_difficulty == {"easy": 0.25}
    rows = _rows()
    del rows[1]["generated_tokens"]  # not logged by every iteration: n/a, not a partial sum
    r = report.load_run(_train_dir(tmp_path, STEPCODER, rows, EVALS, per_problem=False), "stepcoder", 0)
    assert r.generated_tokens is None and r.generated_samples == 32 and "heldout" not in r.per_problem
    assert report.load_run(tmp_path / "nothing", "x", 0) is None


def test_saved_evaluations_keep_per_problem_rows():
    """What the paired bootstrap resamples: each run's eval_*_rl.json reports carry them."""
    from cluster.evaluate import EvalReport

    rows = [{"problem_id": "p1", "difficulty": "easy", "n": 4, "correct": 1, "sandbox_errors": 0, "pass@1": 0.25}]
    saved = json.loads(json.dumps(EvalReport(4, {1: 0.25}, {"easy": {1: 0.25}}, rows).to_dict()))
    assert saved["per_problem"] == rows and saved["problems"] == 1


# -- curves and execrl report ---------------------------------------------------------------

def test_report_draws_a_runs_curves(tmp_path, capsys):
    run = _train_dir(tmp_path, STEPCODER, _rows(n=3) + [{"step": 1, **_rows(n=2)[1]}], EVALS)
    log = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in log.iterations] == [0, 1, 2] and [r["step"] for r in log.evals] == [0, 1]
    assert main(["report", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["curves"] == str(run / "curves.png")
    png = (run / "curves.png").read_bytes()
    assert png.startswith(PNG) and len(png) > 20_000
    out = tmp_path / "other.png"
    assert draw_run(run, out) == out and out.read_bytes().startswith(PNG)


def test_curves_are_drawn_against_sampled_programs(tmp_path):
    """x: the logger's running sampled_programs, else summed generated_samples, else the
    config's problems x samples per iteration; held-out points at the steps evaluated,
    the SFT figure (another run's, when this one skipped it) at 0 programs."""
    from cluster.curves import MetricsLog, run_curves

    run = _train_dir(tmp_path, STEPCODER, [], result={"heldout_after": 0.25})
    per_iteration = 16 * 8  # tiny-hard: problems_per_iteration x rollout.samples_per_prompt
    rows = [{"step": i, "reward": 0.0, "generated_samples": 10 + i} for i in range(3)]
    evals = [{"step": 1, "eval/heldout_pass@1": 0.2}]
    curves = run_curves(run, MetricsLog(rows, evals), sft_heldout=0.1)
    assert curves.x == [10, 21, 33] and curves.evals == [(0.0, 0.1), (21, 0.2), (33, 0.25)]
    for r, total in zip(rows, (100, 200, 300)):
        r["sampled_programs"] = total
    assert run_curves(run, MetricsLog(rows, evals)).x == [100, 200, 300]
    bare = [{"step": i, "reward": 0.0} for i in range(2)]
    assert run_curves(run, MetricsLog(bare, [])).x == [per_iteration, 2 * per_iteration]


def test_report_names_a_missing_or_empty_metrics_file(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert f"{tmp_path / 'nope'}: no such run directory" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert f"{tmp_path / 'metrics.jsonl'}: no such metrics file" in capsys.readouterr().err
    (tmp_path / "metrics.jsonl").write_text("\n")
    assert main(["report", str(tmp_path)]) == 2
    assert f"{tmp_path / 'metrics.jsonl'} is empty" in capsys.readouterr().err


# -- periodic evaluation during training (cluster/train.py) ---------------------------------

class _Evals:
    def __init__(self):
        self.calls = []

    def heldout(self, when):
        self.calls.append(when)
        return {"heldout": 0.5, "sandbox_errors": {"heldout": 0}}


class _Logger:
    def __init__(self, path: Path):
        self.path = path

    def log(self, step, metrics):
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")


def test_periodic_evaluation_runs_each_due_step_once_across_resumes(tmp_path):
    from cluster.periodic_eval import PeriodicEval

    cfg = load_config(None, ["iterations=5", "eval_every=2"])
    evals, logger = _Evals(), _Logger(tmp_path / "metrics.jsonl")
    periodic = PeriodicEval(cfg, evals, logger, tmp_path)
    assert [s for s in range(5) if periodic.due(s)] == [1, 3]  # step 4 is the evaluation after RL's
    periodic.catch_up(0)
    periodic.evaluate(1)
    assert not periodic.due(1)
    # Resumed at iteration 4 (a Ctrl-C inside step 3's evaluation): step 3 is evaluated
    # first, once; a resume at iteration 2 finds step 1 already in metrics.jsonl.
    again = PeriodicEval(cfg, evals, logger, tmp_path)
    again.catch_up(2)
    assert len(evals.calls) == 1
    again.catch_up(4)
    again.catch_up(4)
    again.log_final({"heldout": 0.75, "transfer": 0.5})
    again.log_final({"heldout": 0.75, "transfer": 0.5})
    steps = [(r["step"], r["eval/heldout_pass@1"]) for r in map(json.loads, logger.path.read_text().splitlines())]
    assert steps == [(1, 0.5), (3, 0.5), (4, 0.75)]
    fresh = tmp_path / "off"
    fresh.mkdir()
    off = PeriodicEval(load_config(None, ["iterations=5"]), evals, _Logger(fresh / "metrics.jsonl"), fresh)
    assert not any(off.due(s) for s in range(5))
    off.log_final({"heldout": 0.75})  # eval_every 0: one metrics line per iteration, nothing else
    assert not (fresh / "metrics.jsonl").exists()


# -- the whole thing, for real --------------------------------------------------------------

@pytest.mark.slow
def test_quick_ablation_trains_every_variant_and_checks_the_mechanics(tmp_path):
    """`--quick`: every variant trains for real (one seed, tiny settings) through `execrl
    train` subprocesses; the command fails when a mechanics check does, so this test
    fails if FGO masks with FGO off, CCCS moves problems with CCCS off (or none with it
    on), a critic-free variant trains a critic, or a run lacks its variant's settings."""
    out = tmp_path / "ablation"
    cmd = [sys.executable, "-m", "cluster.cli", "experiment", "ablation", "--quick", "--out", str(out), "--json"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert_quick_outputs(out, json.loads(done.stdout.strip().splitlines()[-1]))
    # Resumable: a second invocation keeps every finished run; one without result.json but
    # with checkpoints (as a crash after training leaves it) is resumed, not retrained,
    # and evaluates no step twice.
    stepcoder = out / "runs" / "stepcoder" / "seed0"
    (stepcoder / "result.json").unlink()
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-6000:] + again.stderr[-3000:]
    runs = json.loads(again.stdout.strip().splitlines()[-1])["runs"]
    assert runs.pop("stepcoder seed0") == "resumed" and set(runs.values()) == {"done"}
    lines = [json.loads(line) for line in (stepcoder / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "reward" in r] == [0, 1]
    assert [r["step"] for r in lines if "eval/heldout_pass@1" in r] == [0, 1]
    assert "resumed from" in (stepcoder / "train.log").read_text()


def assert_quick_outputs(out: Path, summary: dict) -> None:
    """What a finished `--quick` ablation leaves in `out` (also usable on a kept directory)."""
    assert summary["ok"] and set(summary["runs"]) == {f"{v} seed0" for v in VARIANTS}
    results = json.loads((out / "results.json").read_text())
    assert list(results["variants"]) == list(VARIANTS) and not results["check_failures"]
    for name, v in results["variants"].items():
        for which in ("heldout", "transfer"):
            assert 0.0 <= v["pass_at_1"][which]["mean"] <= 1.0, (name, which)
        if name != "sft":
            assert v["vs"]["sft"]["heldout"] is not None and v["generated_tokens"]["mean"] > 0
    planned = {v["planned_programs"] for n, v in results["variants"].items() if n != "sft"}
    assert planned == {2 * 4 * 4}  # the same budget for every RL variant
    md = (out / "results.md").read_text()
    assert all(f"| {v} | 0 |" in md for v in VARIANTS)
    png = (out / "curves.png").read_bytes()
    assert png.startswith(PNG) and len(png) > 30_000
    # One SFT model, trained once, shared by every variant of the seed.
    models = {json.loads((out / "runs" / v / "seed0" / "model.json").read_text())["model_dir"] for v in VARIANTS}
    assert len(models) == 1 and len(list((out / "cache" / "models").glob("sft-*"))) == 1, models
    for v in VARIANTS:
        if v != "sft":
            assert (out / "runs" / v / "seed0" / "curves.png").read_bytes().startswith(PNG)


def test_run_grid_runs_each_seed_and_variant_in_turn_and_names_the_failures(tmp_path):
    """The offline pipelines' experiment loop (CYCLE, CodeDPO): one subprocess per
    (seed, variant), its output in <out>/seed<s>/<variant>.log, a failure named."""
    from cluster.experiment import run_grid

    def command(seed, variant):
        return [sys.executable, "-c", f"import sys; print('{variant} {seed}'); sys.exit({int(variant == 'bad')})"]

    logged: list[str] = []
    failures = run_grid(tmp_path, [0, 1], ["good", "bad"], command, "demo", logged.append)
    assert [line for line in logged if "experiment" in line] == [
        "demo experiment: good seed 0", "demo experiment: bad seed 0", "demo experiment: good seed 1",
        "demo experiment: bad seed 1"]
    assert failures == [f"bad seed{s}: exit 1 (see {tmp_path / f'seed{s}' / 'bad.log'})" for s in (0, 1)]
    assert (tmp_path / "seed1" / "good.log").read_text() == "good 1\n"
