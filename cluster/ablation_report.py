"""An ablation's statistics and tables: per variant, pass@1 over seeds (mean, sd, min-max;
held-out by difficulty), the budget it used, and paired differences against a baseline
variant with a 95% bootstrap confidence interval.

Why a bootstrap over seeds and problems: a variant's pass@1 moves with both the seed
(a different SFT model, data split and rollouts) and the particular problems evaluated.
Pairing on (seed, problem) removes what two variants share (the SFT model and the
problem set of a seed), and resampling seeds, then problems within each drawn seed,
keeps both sources of noise in the interval.  The inputs are each run's per-problem pass
rates (eval_after_rl.json, `reports.<set>.per_problem`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cluster.curves import MetricsLog, RunCurves, read_metrics, run_curves

SETS = ("heldout", "transfer")
BASELINES = ("ppo", "sft")
RESAMPLES = 4000


@dataclass
class RunResult:
    """What one finished run contributes: the final policy's figures (for `sft`, the SFT
    model's), per-problem pass@1 for pairing, its budget, and its metrics lines."""

    variant: str
    seed: int
    run_dir: str
    pass_at_1: dict[str, float | None]  # set -> pass@1 after RL
    before: dict[str, float | None]  # set -> pass@1 of the SFT model, where the run measured it
    by_difficulty: dict[str, float]  # held-out, after RL
    per_problem: dict[str, dict[str, float]] = field(default_factory=dict)  # set -> problem id -> pass@1
    iterations: int = 0
    planned_programs: int | None = None  # iterations x problems_per_iteration x samples_per_prompt
    generated_samples: int | None = None  # summed from metrics.jsonl (None where not logged)
    generated_tokens: int | None = None
    metrics: list[dict] = field(default_factory=list)  # iteration lines
    eval_lines: list[dict] = field(default_factory=list)


def load_run(run_dir: Path, variant: str, seed: int) -> RunResult | None:
    """A finished run (result.json present), else None."""
    result_path = run_dir / "result.json"
    if not result_path.is_file():
        return None
    result = json.loads(result_path.read_text())
    cfg = _yaml(run_dir / "config.yaml")
    iterations = int(cfg.get("iterations", 0))
    reports = _after_reports(run_dir, iterations)
    metrics_path = run_dir / "metrics.jsonl"
    log = read_metrics(metrics_path) if metrics_path.is_file() and metrics_path.stat().st_size else None
    rows = log.iterations if log else []
    run = RunResult(
        variant, seed, str(run_dir),
        pass_at_1={s: result.get(f"{s}_after") for s in SETS},
        before={s: result.get(f"{s}_before") for s in SETS},
        by_difficulty={lvl: v.get("1") for lvl, v in (reports.get("heldout") or {}).get("by_difficulty", {}).items()},
        per_problem={s: _per_problem(reports.get(s)) for s in SETS if _per_problem(reports.get(s))},
        iterations=iterations, planned_programs=_planned(cfg),
        generated_samples=_summed(rows, "generated_samples", iterations),
        generated_tokens=_summed(rows, "generated_tokens", iterations),
        metrics=rows, eval_lines=log.evals if log else [])
    return run


def _yaml(path: Path) -> dict:
    import yaml

    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def _after_reports(run_dir: Path, iterations: int) -> dict:
    """The final policy's reports: eval_after_rl.json, or for a run without RL (the SFT
    model is the final policy) eval_before_rl.json."""
    for name in ("eval_after_rl.json",) + (("eval_before_rl.json",) if iterations == 0 else ()):
        path = run_dir / name
        if path.is_file():
            return json.loads(path.read_text()).get("reports", {})
    return {}


def _per_problem(report: dict | None) -> dict[str, float]:
    rows = (report or {}).get("per_problem") or []
    return {r["problem_id"]: float(r["pass@1"]) for r in rows if r.get("pass@1") is not None}


def _planned(cfg: dict) -> int | None:
    try:
        return int(cfg["iterations"]) * int(cfg["problems_per_iteration"]) * int(cfg["rollout"]["samples_per_prompt"])
    except (KeyError, TypeError, ValueError):
        return None


def _summed(rows: list[dict], key: str, iterations: int) -> int | None:
    """Sum over every iteration; None unless every iteration logged it (a partial sum
    would understate the budget).  A run without iterations generated nothing."""
    if iterations == 0:
        return 0
    if len(rows) < iterations or any(key not in r for r in rows):
        return None
    return int(sum(r[key] for r in rows))


# -- statistics ---------------------------------------------------------------------------

@dataclass
class Spread:
    """Over seeds: mean, sample sd (None with one seed), min, max, and how many seeds."""

    mean: float | None
    sd: float | None
    min: float | None
    max: float | None
    n: int


def spread(values: list[float | None]) -> Spread:
    xs = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not xs:
        return Spread(None, None, None, None, 0)
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return Spread(mean, sd, min(xs), max(xs), len(xs))


@dataclass
class PairedDiff:
    """variant - baseline, paired by (seed, problem): the mean over seeds of the mean
    per-problem difference, and its 95% bootstrap interval (seeds resampled, then
    problems within each drawn seed)."""

    mean: float
    low: float
    high: float
    seeds: int
    problems: int  # paired problems, over all seeds


def paired_bootstrap(pairs: dict[int, list[tuple[float, float]]], resamples: int = RESAMPLES,
                     seed: int = 0) -> PairedDiff | None:
    """`pairs`: per seed, (variant, baseline) pass@1 of each problem both evaluated."""
    import numpy as np

    diffs = [np.array([a - b for a, b in rows], dtype=float) for rows in pairs.values() if rows]
    if not diffs:
        return None
    rng = np.random.default_rng(seed)
    k = len(diffs)
    # For replicate r and draw j: the mean difference over a resample of that seed's problems.
    means = np.stack([d[rng.integers(0, len(d), size=(resamples, k, len(d)))].mean(axis=-1) for d in diffs])
    drawn = rng.integers(0, k, size=(resamples, k))  # which seed each draw takes
    stats = means[drawn, np.arange(resamples)[:, None], np.arange(k)[None, :]].mean(axis=1)
    low, high = np.percentile(stats, [2.5, 97.5])
    point = float(np.mean([d.mean() for d in diffs]))
    return PairedDiff(point, float(low), float(high), k, int(sum(len(d) for d in diffs)))


def pairs_between(runs: dict[int, RunResult], base: dict[int, RunResult], which: str) -> dict[int, list]:
    """Per seed both ran with per-problem rows: the problems both evaluated."""
    out = {}
    for seed in sorted(set(runs) & set(base)):
        a, b = runs[seed].per_problem.get(which), base[seed].per_problem.get(which)
        if a and b:
            out[seed] = [(a[p], b[p]) for p in sorted(set(a) & set(b))]
    return out


# -- the whole ablation -------------------------------------------------------------------

@dataclass
class VariantSummary:
    name: str
    overrides: list[str]
    seeds: list[int]
    pass_at_1: dict[str, Spread]
    by_difficulty: dict[str, Spread]
    planned_programs: int | None
    generated_samples: Spread
    generated_tokens: Spread
    vs: dict[str, dict[str, PairedDiff | None]]  # baseline -> set -> difference
    per_seed: dict[int, dict[str, float | None]]


def summarise(runs: dict[str, dict[int, RunResult]], overrides: dict[str, list[str]]) -> dict[str, VariantSummary]:
    """Every variant with at least one finished run, in the order given."""
    levels = sorted({lvl for by_seed in runs.values() for r in by_seed.values() for lvl in r.by_difficulty},
                    key=_level_order)
    out = {}
    for name, by_seed in runs.items():
        if not by_seed:
            continue
        rs = [by_seed[s] for s in sorted(by_seed)]
        planned = {r.planned_programs for r in rs}
        out[name] = VariantSummary(
            name, overrides.get(name, []), sorted(by_seed),
            pass_at_1={s: spread([r.pass_at_1.get(s) for r in rs]) for s in SETS},
            by_difficulty={lvl: spread([r.by_difficulty.get(lvl) for r in rs]) for lvl in levels},
            planned_programs=planned.pop() if len(planned) == 1 else None,
            generated_samples=_spread_all([r.generated_samples for r in rs]),
            generated_tokens=_spread_all([r.generated_tokens for r in rs]),
            vs={b: {s: paired_bootstrap(pairs_between(by_seed, runs[b], s)) for s in SETS}
                for b in BASELINES if b in runs and b != name},
            per_seed={r.seed: dict(r.pass_at_1) for r in rs})
    return out


LEVELS = ("easy", "medium", "hard", "introductory", "interview", "competition")


def _level_order(level: str) -> tuple[int, str]:
    """Known difficulty names easiest first, then any others alphabetically."""
    return (LEVELS.index(level), "") if level in LEVELS else (len(LEVELS), level)


def _spread_all(values: list[int | None]) -> Spread:
    """n/a (n = 0) unless every seed's run logged it."""
    return spread(values) if values and all(v is not None for v in values) else Spread(None, None, None, None, 0)


def missing_per_problem(runs: dict[str, dict[int, RunResult]]) -> list[str]:
    return [f"{name} seed{seed}" for name, by_seed in runs.items() for seed, r in sorted(by_seed.items())
            if "heldout" not in r.per_problem]


def to_json(summaries: dict[str, VariantSummary], extra: dict) -> dict:
    return {**extra, "variants": {name: asdict(v) for name, v in summaries.items()}}


# -- tables -------------------------------------------------------------------------------

def fmt(value: float | None, digits: int = 3, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def fmt_spread(s: Spread) -> str:
    """`0.262 (sd 0.031; 0.238-0.298)`; one seed: just the value."""
    if s.n == 0:
        return "n/a"
    if s.n == 1:
        return fmt(s.mean)
    return f"{fmt(s.mean)} (sd {fmt(s.sd)}; {fmt(s.min)}-{fmt(s.max)})"


def fmt_diff(d: PairedDiff | None) -> str:
    if d is None:
        return "n/a"
    return f"{fmt(d.mean, sign=True)} [{fmt(d.low, sign=True)}, {fmt(d.high, sign=True)}]"


def fmt_count(s: Spread) -> str:
    if s.n == 0 or s.mean is None:
        return "n/a"
    return f"{s.mean:,.0f}" if s.n == 1 or s.min == s.max else f"{s.mean:,.0f} ({s.min:,.0f}-{s.max:,.0f})"


def render_markdown(summaries: dict[str, VariantSummary], notes: list[str], title: str = "") -> str:
    """results.md: the main table, by difficulty, paired differences, per seed, notes."""
    if not summaries:
        return f"# {title or 'Ablation'}\n\nNo run has finished yet.\n" + _notes(notes)
    levels = list(next(iter(summaries.values())).by_difficulty)
    lines = [f"# {title or 'Ablation'}", "",
             "Sampled pass@1 of the final policy (for `sft`, the SFT model). Mean over seeds "
             "(sd; min-max).", "",
             "| variant | seeds | held-out pass@1 | transfer pass@1 | sampled programs | generated tokens |",
             "|---|---|---|---|---|---|"]
    for v in summaries.values():
        lines.append(f"| {v.name} | {','.join(map(str, v.seeds))} | {fmt_spread(v.pass_at_1['heldout'])} | "
                     f"{fmt_spread(v.pass_at_1['transfer'])} | "
                     f"{'n/a' if v.planned_programs is None else f'{v.planned_programs:,}'} | "
                     f"{fmt_count(v.generated_tokens)} |")
    if levels:
        lines += ["", "Held-out pass@1 by difficulty (mean over seeds):", "",
                  "| variant | " + " | ".join(levels) + " |", "|---" * (len(levels) + 1) + "|"]
        lines += [f"| {v.name} | " + " | ".join(fmt(v.by_difficulty[lvl].mean) for lvl in levels) + " |"
                  for v in summaries.values()]
    lines += ["", "Paired differences (variant - baseline, pass@1) with 95% bootstrap intervals over "
              "seeds and problems:", "",
              "| variant | held-out vs ppo | transfer vs ppo | held-out vs sft | transfer vs sft |", "|---|---|---|---|---|"]
    for v in summaries.values():
        cells = [fmt_diff(v.vs.get(b, {}).get(s)) if b in v.vs else "-" for b in BASELINES for s in SETS]
        lines.append(f"| {v.name} | " + " | ".join(cells) + " |")
    seeds = sorted({s for v in summaries.values() for s in v.per_seed})
    lines += ["", "Per seed (held-out / transfer):", "", "| variant | " + " | ".join(f"seed {s}" for s in seeds) + " |",
              "|---" * (len(seeds) + 1) + "|"]
    for v in summaries.values():
        cells = [f"{fmt(v.per_seed[s]['heldout'])} / {fmt(v.per_seed[s]['transfer'])}" if s in v.per_seed else "-"
                 for s in seeds]
        lines.append(f"| {v.name} | " + " | ".join(cells) + " |")
    lines += ["", "Variants:", ""] + [f"- `{v.name}`: {' '.join(v.overrides) or '(the defaults)'}"
                                       for v in summaries.values()]
    return "\n".join(lines) + "\n" + _notes(notes)


def _notes(notes: list[str]) -> str:
    return ("\nNotes:\n\n" + "".join(f"- {n}\n" for n in notes)) if notes else ""


def curves_of(runs: dict[str, dict[int, RunResult]]) -> dict[str, list[RunCurves]]:
    """Per variant, each seed's curves; RL runs without their own SFT evaluation start at
    the `sft` run of the same seed (the same model, evaluated with the same seed)."""
    sft = runs.get("sft", {})
    out = {}
    for name, by_seed in runs.items():
        curves = []
        for seed, r in sorted(by_seed.items()):
            base = sft[seed].pass_at_1.get("heldout") if seed in sft else None
            curves.append(run_curves(Path(r.run_dir), MetricsLog(r.metrics, r.eval_lines), sft_heldout=base))
        if curves:
            out[name] = curves
    return out
