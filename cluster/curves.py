"""Training curves: held-out pass@1, training reward and pass rate, CCCS's fraction of
problems at position 0 and FGO's masked-token fraction, against sampled programs.

One picture for one run (`execrl report RUN_DIR`, drawn by `execrl train` at the end of
a run) and one for an ablation (`execrl experiment ablation`: one line per variant, the
mean over seeds, the seeds' min-max shaded).  The x axis is sampled programs, not
iterations, so variants are compared at the same budget: the metrics' running
`sampled_programs`, else the sum of each iteration's `generated_samples`, else
problems_per_iteration x rollout.samples_per_prompt per iteration from config.yaml.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

EVAL_KEY = "eval/heldout_pass@1"
# (metric key, panel title); "eval" is the held-out pass@1 from the evaluations.
PANELS = (("eval", "held-out pass@1"), ("reward", "training reward"), ("pass_rate", "training pass rate"),
          ("curriculum/fraction_at_position_0", "CCCS: fraction of problems at position 0"),
          ("masked_token_fraction", "FGO: masked-token fraction"))


@dataclass
class MetricsLog:
    """A run's metrics.jsonl split into iteration lines and evaluation lines, one per step
    (a step logged twice, as a run resumed from an older checkpoint does, keeps its last)."""

    iterations: list[dict]
    evals: list[dict]


@dataclass
class RunCurves:
    """One run's series: per iteration, the sampled programs so far (x) and each metric;
    the held-out evaluations as (sampled programs, pass@1) points."""

    x: list[float] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=dict)
    evals: list[tuple[float, float]] = field(default_factory=list)


def read_metrics(path: Path) -> MetricsLog:
    """The metrics file of a run; missing or empty is an error naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such metrics file (execrl train writes metrics.jsonl in its run directory)")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not a JSON line ({exc})") from None
    if not rows:
        raise ValueError(f"{path} is empty: the run logged no iterations")
    iterations = {r["step"]: r for r in rows if "reward" in r or "pass_rate" in r}
    evals = {r["step"]: r for r in rows if EVAL_KEY in r}
    return MetricsLog([iterations[s] for s in sorted(iterations)], [evals[s] for s in sorted(evals)])


def programs_per_iteration(run_dir: Path) -> int | None:
    """problems_per_iteration x rollout.samples_per_prompt from the run's config.yaml."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return None
    cfg = yaml.safe_load(path.read_text()) or {}
    try:
        return int(cfg["problems_per_iteration"]) * int(cfg["rollout"]["samples_per_prompt"])
    except (KeyError, TypeError, ValueError):
        return None


def run_curves(run_dir: Path, log: MetricsLog | None, sft_heldout: float | None = None) -> RunCurves:
    """A run's curves.  Held-out points: the evaluation before RL at 0 programs (the run's
    own, else `sft_heldout`: the same SFT model evaluated by another run), the periodic
    ones, and the one after RL (from result.json if the metrics lack it)."""
    curves = RunCurves()
    per_iteration = programs_per_iteration(run_dir)
    at_step: dict[int, float] = {}
    total = 0.0
    for row in (log.iterations if log else []):
        done = row.get("generated_samples", per_iteration)
        total += float(done) if done is not None else 1.0
        total = float(row.get("sampled_programs", total))  # the logger's own running count, where it keeps one
        at_step[row["step"]] = total
        curves.x.append(total)
        for key, _ in PANELS[1:]:
            curves.series.setdefault(key, []).append(row.get(key))
    before = _saved_figure(run_dir / "eval_before_rl.json", "heldout")
    if before is None:
        before = sft_heldout
    points = [(0.0, before)] if before is not None else []
    points += [(at_step[r["step"]], r[EVAL_KEY]) for r in (log.evals if log else [])
               if r["step"] in at_step and r[EVAL_KEY] is not None]
    after = _saved_figure(run_dir / "result.json", "heldout_after")
    if curves.x and after is not None and not any(x == curves.x[-1] for x, _ in points):
        points.append((curves.x[-1], after))
    curves.evals = points
    return curves


def _saved_figure(path: Path, key: str) -> float | None:
    if not path.is_file():
        return None
    value = json.loads(path.read_text()).get(key)
    return float(value) if isinstance(value, (int, float)) else None


def draw_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """`execrl report RUN_DIR`: the run's curves to RUN_DIR/curves.png (or `out`)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory")
    curves = run_curves(run_dir, read_metrics(run_dir / "metrics.jsonl"))
    target = Path(out) if out else run_dir / "curves.png"
    draw({run_dir.name or str(run_dir): [curves]}, target, title=str(run_dir))
    return target


def draw(groups: dict[str, list[RunCurves]], out: Path, title: str = "") -> Path:
    """One line per group (the mean over its runs, min-max shaded where it has several);
    a group with no iterations (an SFT-only run) is a dashed level on the pass@1 panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    panels = dict(zip((key for key, _ in PANELS), axes.flat))
    for (key, name), ax in zip(PANELS, axes.flat):
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("sampled programs")
        ax.grid(alpha=0.3)
    for index, (label, runs) in enumerate(groups.items()):
        color = f"C{index % 10}"
        _draw_evals(panels["eval"], runs, label, color)
        for key, _ in PANELS[1:]:
            _draw_series(panels[key], runs, key, label, color)
    legend = axes.flat[len(PANELS)]
    legend.axis("off")
    handles, labels = panels["eval"].get_legend_handles_labels()
    several = any(len(runs) > 1 for runs in groups.values())
    legend.legend(handles, labels, loc="center", title="mean over seeds; shaded: min-max" if several else None)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _draw_series(ax, runs: list[RunCurves], key: str, label: str, color: str) -> None:
    """Mean over the runs at each iteration they all reached; min-max band."""
    length = min((len(r.x) for r in runs), default=0)
    if not length:
        return
    xs = [sum(r.x[i] for r in runs) / len(runs) for i in range(length)]
    columns = [[r.series.get(key, [None] * length)[i] for r in runs] for i in range(length)]
    kept = [(x, [v for v in col if v is not None]) for x, col in zip(xs, columns)]
    kept = [(x, vals) for x, vals in kept if vals]
    if not kept:
        return
    x = [p[0] for p in kept]
    marker = "o" if len(x) <= 20 else None  # a short run's few points stay visible
    ax.plot(x, [sum(v) / len(v) for _, v in kept], color=color, label=label, marker=marker, markersize=3)
    if len(runs) > 1:
        ax.fill_between(x, [min(v) for _, v in kept], [max(v) for _, v in kept], color=color, alpha=0.2)


def _draw_evals(ax, runs: list[RunCurves], label: str, color: str) -> None:
    """Points at the same budget are averaged over the runs that have them."""
    by_x: dict[float, list[float]] = {}
    for run in runs:
        for x, value in run.evals:
            by_x.setdefault(x, []).append(value)
    if not by_x:
        ax.plot([], [], color=color, label=label)  # still in the legend
        return
    x = sorted(by_x)
    means = [sum(by_x[v]) / len(by_x[v]) for v in x]
    if not any(r.x for r in runs) and x == [0.0]:  # SFT only: a level, not a curve
        ax.axhline(means[0], color=color, linestyle="--", label=label)
        if len(by_x[0.0]) > 1:
            ax.axhspan(min(by_x[0.0]), max(by_x[0.0]), color=color, alpha=0.1)
        return
    ax.plot(x, means, color=color, marker="o", markersize=3, label=label)
    if len(runs) > 1:
        ax.fill_between(x, [min(by_x[v]) for v in x], [max(by_x[v]) for v in x], color=color, alpha=0.2)
