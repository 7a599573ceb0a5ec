"""`execrl experiment rlcf`: SFT, then RLCF's grounding reward, against SFT then
StepCoder's test reward, and the `small` model (about 7x the tiny one's parameters) with
SFT only (RLCF's "matches models 2-8x larger" comparison), over seeds.

Runs go through the ablation's scheduler (cluster/experiment.py: each run an `execrl
train` subprocess, resumable, SFT cached per seed) on the hard bundled tier, with the RL
variants' budget of the ablation (24 iterations of 16 problems x 8 samples).  Every run
evaluates with the static checks on (`executor.static_checks=true`), so each reports
pass@1 beside compile@1, execute@1 and static-clean@1 on the held-out problems, which
nothing trains on.  With `--eval-set mbpp=FILE` each finished run's final model is also
evaluated on that set (methods/rlcf/extra_sets.py).  results.json and results.md are
recomputed from the finished runs.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cluster.experiment import BASE_CONFIG, Scheduler, Variant, expected_all, plan_runs

from . import extra_sets
from .extra_sets import ExtraSet

# configs/rlcf.yaml's settings as overrides of the ablation's base (tested to agree)
RLCF = ("reward.name=rlcf", "curriculum.enabled=false", "learner.fgo=false", "reward.discriminator.num_cpus=0.5")
VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("sft", ("iterations=0",), rl=False, about="the tiny model's SFT warm start (no RL)"),
    Variant("stepcoder", (), about="SFT, then PPO on the tests' reward with CCCS and FGO"),
    Variant("rlcf", RLCF, about="SFT, then PPO on RLCF's reward: static checks + discriminator, no tests"),
    Variant("small-sft", ("model.init_size=small", "iterations=0"), rl=False,
            about="the small model (about 7M parameters, 7x tiny) with SFT only"),
)}
EVAL_CHECKS = ("executor.static_checks=true",)  # static-clean@1 for every variant
METRICS = ("pass", "compile", "execute", "static_clean")


@dataclass
class Request:
    out: Path
    seeds: list[int]
    variants: list[str]
    extra: list[str] = field(default_factory=list)
    parallel: int = 1
    eval_sets: list[ExtraSet] = field(default_factory=list)


def select(names: list[str]) -> list[Variant]:
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise ValueError(f"unknown variant {unknown[0] if unknown else '(none)'!r}; choose from {', '.join(VARIANTS)}")
    return [VARIANTS[n] for n in dict.fromkeys(names)]


def run_experiment(request: Request, log: Callable[[str], None] = print) -> dict:
    if request.parallel < 1:
        raise ValueError(f"--parallel {request.parallel}: must be at least 1")
    specs = plan_runs(request.out, select(request.variants), request.seeds, [*EVAL_CHECKS, *request.extra],
                      BASE_CONFIG)
    log(f"rlcf experiment: {len(request.variants)} variants x {len(request.seeds)} seeds into {request.out}")
    outcomes = Scheduler(request.out, request.parallel, log).run(specs, expected_all(specs))
    failed = [f"{o.spec.name}: {o.action}" for o in outcomes if o.action not in ("ran", "done", "kept")]
    failed += extra_sets.evaluate_runs([s.run_dir for s in specs], request.eval_sets, log)
    results = collect(request.out, [v for v in VARIANTS if v in request.variants])
    (request.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (request.out / "results.md").write_text(table(results))
    return {"results": results, "failures": failed}


def run_figures(run_dir: Path) -> dict | None:
    """Held-out and transfer figures of a finished run (the final policy's; an SFT-only
    run's evaluation is its model's), plus the discriminator's last held-out accuracy."""
    if not (run_dir / "result.json").is_file():
        return None
    path = run_dir / "eval_after_rl.json"
    path = path if path.is_file() else run_dir / "eval_before_rl.json"
    reports = json.loads(path.read_text())["reports"]
    out = {}
    for name in extra_sets.RESERVED:  # the run's own sets
        out[name] = extra_sets.figures_at_1(reports[name], METRICS)
    out.update(extra_sets.run_figures(run_dir, METRICS))
    accuracy = _last_metric(run_dir / "metrics.jsonl", "discriminator/heldout_accuracy")
    if accuracy is not None:
        out["discriminator_heldout_accuracy"] = accuracy
    return out


def _last_metric(path: Path, key: str) -> float | None:
    if not path.is_file():
        return None
    values = [row[key] for row in map(json.loads, path.read_text().splitlines()) if key in row]
    return values[-1] if values else None


def collect(out: Path, variants: list[str]) -> dict:
    """Per variant: each finished seed's figures and their mean / min / max."""
    results = {}
    for name in variants:
        seeds = {}
        for run_dir in sorted((out / "runs" / name).glob("seed*")):
            figures = run_figures(run_dir)
            if figures is not None:
                seeds[run_dir.name[4:]] = figures
        if seeds:
            results[name] = {"about": VARIANTS[name].about, "seeds": seeds, "summary": summarise(seeds)}
    return results


def summarise(seeds: dict[str, dict]) -> dict:
    summary = {}
    splits = dict.fromkeys(k for f in seeds.values() for k, v in f.items() if isinstance(v, dict))
    for split in splits:
        for metric in METRICS:
            values = [f[split][metric] for f in seeds.values() if metric in f.get(split, {})]
            if values:
                summary[f"{split}/{metric}"] = {"mean": statistics.fmean(values), "min": min(values),
                                                "max": max(values), "n": len(values)}
    return summary


def table(results: dict) -> str:
    """Markdown: held-out pass@1, compile@1, execute@1, static-clean@1 and transfer pass@1,
    mean (min-max) over seeds; then, per extra set, the same four figures."""
    head = ("| variant | seeds | held-out pass@1 | compile@1 | execute@1 | static-clean@1 | transfer pass@1 |\n"
            "|---|---|---|---|---|---|---|\n")
    rows = [_row(name, r, ["heldout/pass", "heldout/compile", "heldout/execute", "heldout/static_clean",
                           "transfer/pass"]) for name, r in results.items()]
    text = "# RLCF against StepCoder and a larger SFT model (tiny-hard)\n\n" + head + "\n".join(rows) + "\n"
    extra = dict.fromkeys(k.split("/")[0] for r in results.values() for k in r["summary"]
                          if k.split("/")[0] not in extra_sets.RESERVED)
    for name in extra:
        keys = [f"{name}/{m}" for m in METRICS]
        rows = [_row(v, r, keys) for v, r in results.items() if any(k in r["summary"] for k in keys)]
        text += (f"\n## {name}\n\n| variant | seeds | pass@1 | compile@1 | execute@1 | static-clean@1 |\n"
                 "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    return text


def _row(name: str, result: dict, keys: list[str]) -> str:
    s = result["summary"]
    cells = [f"{s[k]['mean']:.3f} ({s[k]['min']:.3f}-{s[k]['max']:.3f})" if k in s else "-" for k in keys]
    seeds = sorted({seed for seed, f in result["seeds"].items() if any(k.split("/")[0] in f for k in keys)})
    return f"| {name} | {','.join(seeds)} | " + " | ".join(cells) + " |"
