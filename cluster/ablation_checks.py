"""Mechanics checks: each run of an ablation did what its variant's name says, read from
what the run itself recorded (config.yaml, metrics.jsonl, result.json).

A comparison of PPO with and without FGO means nothing if FGO was never off, or CCCS if
every problem sat at position 0 anyway; these checks make such a slip fail loudly
instead of turning into a table.  Every failure names the run and the check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.curves import EVAL_KEY, MetricsLog, read_metrics
from cluster.experiment import config_mismatches, saved_config

CRITIC_FREE = ("grpo", "rloo", "reinforce_pp")


@dataclass(frozen=True)
class CheckFailure:
    run: str  # "ppo seed0"
    check: str
    detail: str

    def __str__(self) -> str:
        return f"{self.run}: {self.check}: {self.detail}"


def check_run(name: str, run_dir: Path, expected: dict[str, Any]) -> list[CheckFailure]:
    """Every check that applies to a finished run (result.json present)."""
    saved = saved_config(run_dir)
    if saved is None:
        return [CheckFailure(name, "config", f"{run_dir / 'config.yaml'} is missing")]
    failures = [CheckFailure(name, "config", f"config.yaml does not have the variant's setting {m}")
                for m in config_mismatches(saved, expected)]
    iterations = int(saved.get("iterations", 0))
    path = run_dir / "metrics.jsonl"
    log = read_metrics(path) if iterations else MetricsLog([], [])
    rows = log.iterations
    steps = [r["step"] for r in rows]
    if steps != list(range(iterations)):
        failures.append(CheckFailure(name, "iterations", f"metrics.jsonl logged steps {_short(steps)}, "
                                                         f"expected 0..{iterations - 1}"))
    for check in (_fgo, _cccs, _critic, _periodic_eval, _before_rl):
        failures += [CheckFailure(name, *f) for f in check(saved, log, run_dir)]
    return failures


def _short(steps: list[int]) -> str:
    return str(steps if len(steps) <= 8 else steps[:4] + ["..."] + steps[-2:])


def _values(rows: list[dict], key: str) -> list[Any] | None:
    """The key's value in every iteration line, or None if any line lacks it."""
    return None if any(key not in r for r in rows) else [r[key] for r in rows]


def _fgo(cfg: dict, log: MetricsLog, _run_dir: Path) -> list[tuple[str, str]]:
    """FGO off: no token of any iteration was masked."""
    if cfg.get("learner.fgo", True) or not log.iterations:
        return []
    masked = _values(log.iterations, "masked_token_fraction")
    if masked is None:
        return [("fgo-off", "masked_token_fraction is not logged in every iteration")]
    bad = [(r["step"], m) for r, m in zip(log.iterations, masked) if m != 0]
    return [("fgo-off", f"learner.fgo is false but masked_token_fraction > 0 at (step, fraction) {bad[:3]}")] \
        if bad else []


def _cccs(cfg: dict, log: MetricsLog, _run_dir: Path) -> list[tuple[str, str]]:
    """CCCS off: every problem at position 0 in every iteration.  CCCS on: the curriculum
    state shows problems not at position 0 (every problem starts at its latest start
    point, stage 0; position 0 is a plan's last stage)."""
    if not log.iterations:
        return []
    fractions = _values(log.iterations, "curriculum/fraction_at_position_0")
    if fractions is None:
        return [("cccs", "curriculum/fraction_at_position_0 is not logged in every iteration")]
    if not cfg.get("curriculum.enabled", True):
        bad = [(r["step"], f) for r, f in zip(log.iterations, fractions) if f != 1.0]
        return [("cccs-off", f"curriculum.enabled is false but problems are not at position 0: "
                             f"(step, fraction at position 0) {bad[:3]}")] if bad else []
    first = log.iterations[0]
    at_stage_0 = first.get("curriculum/problems_at_stage_0", 0)
    if fractions[0] >= 1.0 or not at_stage_0:
        return [("cccs-on", f"curriculum.enabled is true but the curriculum shows every problem at position 0 "
                            f"after the first iteration (fraction {fractions[0]}, problems at stage 0: {at_stage_0})")]
    return []


def _critic(cfg: dict, log: MetricsLog, _run_dir: Path) -> list[tuple[str, str]]:
    """Critic-free estimators log a value loss of exactly 0; GAE's critic trains."""
    if not log.iterations:
        return []
    estimator = cfg.get("learner.advantage_estimator", "gae")
    losses = _values(log.iterations, "learner/value_loss")
    if losses is None:
        return [("critic", "learner/value_loss is not logged in every iteration")]
    if estimator in CRITIC_FREE and any(v != 0 for v in losses):
        return [("no-critic", f"learner.advantage_estimator is {estimator} but learner/value_loss is "
                              f"{_short([round(v, 6) for v in losses])} (a critic trained)")]
    if estimator == "gae" and all(v == 0 for v in losses):
        return [("critic", "learner.advantage_estimator is gae but learner/value_loss is 0 in every iteration")]
    return []


def _periodic_eval(cfg: dict, log: MetricsLog, _run_dir: Path) -> list[tuple[str, str]]:
    """eval_every N: a held-out evaluation line at every N-th step and at the last one
    (eval_every 0: none)."""
    iterations, every = int(cfg.get("iterations", 0)), int(cfg.get("eval_every", 0) or 0)
    if not iterations:
        return []
    wanted = {s for s in range(iterations) if (s + 1) % every == 0} | {iterations - 1} if every else set()
    got = {r["step"] for r in log.evals if r.get(EVAL_KEY) is not None}
    if got != wanted:
        return [("eval-every", f"{EVAL_KEY} logged at steps {sorted(got)}, expected {sorted(wanted)} "
                               f"(eval_every {every}, {iterations} iterations)")]
    return []


def _before_rl(cfg: dict, _log: MetricsLog, run_dir: Path) -> list[tuple[str, str]]:
    """eval_before_rl false: no SFT figures in result.json; true: they are there."""
    result = json.loads((run_dir / "result.json").read_text())
    measured = result.get("heldout_before") is not None
    if cfg.get("eval_before_rl", True) != measured:
        return [("eval-before-rl", f"eval_before_rl is {cfg.get('eval_before_rl', True)} but result.json's "
                                   f"heldout_before is {result.get('heldout_before')!r}")]
    return []
