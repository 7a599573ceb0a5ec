"""`execrl experiment ablation`: plan the variant x seed runs, run what is missing
(cluster/experiment.py), check each run's mechanics (cluster/ablation_checks.py), and
write results.json, results.md (cluster/ablation_report.py) and curves.png
(cluster/curves.py) into the output directory.

Everything written is recomputed from the run directories each time, so adding seeds or
variants later and running the command again extends the same results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cluster import ablation_report as report
from cluster.ablation_checks import CheckFailure, check_run
from cluster.config import load_config
from cluster.curves import draw
from cluster.experiment import (BASE_CONFIG, QUICK_OVERRIDES, VARIANTS, Outcome, RunSpec, Scheduler, Variant,
                                expected_all, plan_runs, run_status)


@dataclass
class AblationRequest:
    out: Path
    variants: list[Variant]
    seeds: list[int]
    extra: list[str] = field(default_factory=list)
    quick: bool = False
    parallel: int = 1
    base_config: Path = BASE_CONFIG


@dataclass
class AblationSummary:
    """What the command prints and returns: where the results are, what failed."""

    out: Path
    outcomes: list[Outcome]
    failures: list[str]  # runs that did not finish (named, with why)
    check_failures: list[CheckFailure]
    results: dict

    @property
    def ok(self) -> bool:
        return not self.failures and not self.check_failures

    def to_json(self) -> dict:
        return {"out": str(self.out), "ok": self.ok, "failures": self.failures,
                "check_failures": [str(c) for c in self.check_failures],
                "runs": {o.spec.name: o.action for o in self.outcomes},
                "results": str(self.out / "results.json"), "table": str(self.out / "results.md"),
                "curves": str(self.out / "curves.png")}


def run_ablation(request: AblationRequest, log: Callable[[str], None] = print) -> AblationSummary:
    if request.parallel < 1:
        raise ValueError(f"--parallel {request.parallel}: must be at least 1")
    extra = [*(QUICK_OVERRIDES if request.quick else ()), *request.extra]
    load_config(request.base_config, extra)  # a bad extra override fails here, naming its key
    specs = plan_runs(request.out, request.variants, request.seeds, extra, request.base_config)
    expected = expected_all(specs)
    log(f"ablation: {len(request.variants)} variants x {len(request.seeds)} seeds into {request.out} "
        f"({request.parallel} at a time){'; quick mode' if request.quick else ''}")
    outcomes = Scheduler(request.out, request.parallel, log).run(specs, expected)
    failures = [f"{o.spec.name}: {o.action}: {o.detail}" for o in outcomes if o.action in ("failed", "invalid")]
    others = finished_elsewhere(request, extra, {s.name for s in specs})
    if others:
        log(f"also reported (finished earlier with the same settings): {', '.join(s.name for s in others)}")
    specs = _in_plan_order(specs + others)
    expected.update(expected_all(others))
    checks = _check(specs, expected)
    results = write_results(request, specs, failures, checks)
    return AblationSummary(request.out, outcomes, failures, checks, results)


def finished_elsewhere(request: AblationRequest, extra: list[str], planned: set[str]) -> list[RunSpec]:
    """Finished runs in <out>/runs that this invocation did not ask for but whose settings
    are what it would ask (other variants or seeds run earlier into the same directory):
    results cover them too, so adding a variant later does not drop the others from the
    tables."""
    runs = request.out / "runs"
    names = [v for v in VARIANTS if (runs / v).is_dir()]
    seeds = sorted({int(d.name[4:]) for v in names for d in (runs / v).glob("seed*") if d.name[4:].isdigit()})
    candidates = [s for s in plan_runs(request.out, [VARIANTS[v] for v in names], seeds, extra, request.base_config)
                  if s.name not in planned]
    expected = expected_all(candidates)
    return [s for s in candidates if run_status(s, expected[s.name], lambda _d: None).action == "done"]


def _in_plan_order(specs: list[RunSpec]) -> list[RunSpec]:
    """Seed by seed, variants in the default order (as plan_runs orders them)."""
    order = list(VARIANTS)
    return sorted(specs, key=lambda s: (s.seed, order.index(s.variant.name) if s.variant.name in order else len(order)))


def _check(specs: list[RunSpec], expected: dict) -> list[CheckFailure]:
    out = []
    for spec in specs:
        if isinstance(expected[spec.name], dict) and (spec.run_dir / "result.json").is_file():
            try:
                out += check_run(spec.name, spec.run_dir, expected[spec.name])
            except (OSError, ValueError) as exc:  # an unreadable run is a failed check, not a crash
                out.append(CheckFailure(spec.name, "readable", str(exc)))
    return out


def collect(specs: list[RunSpec]) -> dict[str, dict[int, report.RunResult]]:
    """Finished runs by variant and seed (variants in plan order)."""
    runs: dict[str, dict[int, report.RunResult]] = {}
    for spec in specs:
        runs.setdefault(spec.variant.name, {})
        result = report.load_run(spec.run_dir, spec.variant.name, spec.seed)
        if result is not None:
            runs[spec.variant.name][spec.seed] = result
    return runs


def write_results(request: AblationRequest, specs: list[RunSpec], failures: list[str],
                  checks: list[CheckFailure]) -> dict:
    runs = collect(specs)
    overrides = {s.variant.name: list(s.variant.overrides) for s in specs}
    summaries = report.summarise(runs, overrides)
    notes = _notes(runs, specs, summaries, failures, checks)
    results = report.to_json(summaries, {
        "base_config": str(request.base_config), "seeds": sorted({s.seed for s in specs}), "quick": request.quick,
        "extra_overrides": list(request.extra), "failures": failures,
        "check_failures": [str(c) for c in checks], "notes": notes})
    request.out.mkdir(parents=True, exist_ok=True)
    (request.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    title = f"StepCoder's ablation in miniature ({request.base_config.name}{', quick' if request.quick else ''})"
    (request.out / "results.md").write_text(report.render_markdown(summaries, notes, title))
    draw(report.curves_of(runs), request.out / "curves.png", title=title)
    return results


def _notes(runs, specs, summaries, failures, checks) -> list[str]:
    notes = [f"not finished: {f}" for f in failures]
    notes += [f"check failed: {c}" for c in checks]
    missing = [s.name for s in specs if s.variant.name in runs and s.seed not in runs[s.variant.name]
               and not any(f.startswith(s.name + ":") for f in failures)]
    notes += [f"no result yet: {', '.join(missing)}"] if missing else []
    no_rows = report.missing_per_problem(runs)
    if no_rows:
        notes.append(f"no per-problem results (left out of the paired intervals): {', '.join(no_rows)}")
    budgets = {v.planned_programs for v in summaries.values() if v.name != "sft"}
    if len(budgets) > 1:
        notes.append(f"RL variants planned different budgets (sampled programs): {sorted(budgets, key=str)}")
    if any(v.generated_tokens.n == 0 for v in summaries.values()):
        notes.append("generated tokens are n/a where a run's metrics.jsonl lacks generated_tokens")
    return notes
