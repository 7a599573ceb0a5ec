"""`execrl codedpo experiment`: the variants x seeds, each an `execrl codedpo run` subprocess.

Variants (overrides on configs/codedpo.yaml):
    sft           train.steps=0: the start (SFT) model itself
    codedpo       the defaults: self-verification ranking, DPO
    pass-count    verify.ranking=pass-count: rank by the number of generated tests passed
    trust-all     verify.ranking=trust-all: a program is good iff it passes every generated test
    random        verify.ranking=random: random pairs (the control)
    sft-top       train.method=sft: SFT on each problem's top-ranked program instead of DPO

One seed's variants share `<out>/seed<s>` (start model, samples, matrices made once);
each run keeps every finished stage, so rerunning the command resumes.  A run's log is
`<out>/seed<s>/<variant>.log`.  Afterwards results.json and results.md are recomputed
from every finished evaluation under <out>.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cluster.experiment import run_grid
from cluster.problem_sets import file_stem

VARIANTS: dict[str, tuple[str, ...]] = {
    "sft": ("train.steps=0",),
    "codedpo": (),
    "pass-count": ("verify.ranking=pass-count",),
    "trust-all": ("verify.ranking=trust-all",),
    "random": ("verify.ranking=random",),
    "sft-top": ("train.method=sft",),
}


@dataclass
class Request:
    out: Path
    seeds: list[int]
    variants: list[str]
    config: str | None = None
    extra: tuple[str, ...] = ()


def run_experiment(req: Request, log: Callable[[str], None] = print) -> dict:
    unknown = [v for v in req.variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    failures = run_grid(req.out, req.seeds, req.variants, lambda seed, variant: command(req, seed, variant),
                        "codedpo", log)
    results = collect_results(req.out)
    (req.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (req.out / "results.md").write_text(table(results))
    return {"failures": failures, "results": results}


def command(req: Request, seed: int, variant: str) -> list[str]:
    cmd = [sys.executable, "-m", "cluster.cli", "codedpo", "run", "--out", str(req.out / f"seed{seed}"),
           "--name", variant]
    if req.config:
        cmd += ["--config", req.config]
    return cmd + [*req.extra, *VARIANTS[variant], f"seed={seed}"]


def _figures(variant_dir: Path, spec: str) -> dict:
    """One run's figures: pairs and agreement (once built), pass@1 (trained and start) and
    speed (once evaluated); a run whose training refused to start (no pairs) keeps its
    pair counts and shows no pass@1."""
    slug = file_stem(spec)
    pairs = json.loads((variant_dir / "pairs.json").read_text())
    scores = json.loads((variant_dir / "scores.json").read_text())
    out = {"correctness_pairs": pairs["correctness_pairs"], "efficiency_pairs": pairs["efficiency_pairs"],
           "precision_at_1": scores["agreement"]["precision_at_1"], "chance": scores["agreement"]["chance"],
           "spearman": scores["agreement"]["spearman"]}
    speed_file = variant_dir / "eval" / f"{slug}.speed.json"
    if speed_file.is_file():
        speed = json.loads(speed_file.read_text())
        data = json.loads((variant_dir / "eval" / f"{slug}.json").read_text())
        start = json.loads((variant_dir.parent / "eval-start" / f"{slug}.json").read_text())
        out.update({"pass_at_1": data["report"]["pass_at"]["1"], "start_pass_at_1": start["report"]["pass_at"]["1"],
                    "compared": speed["compared"], "mean_speedup": speed["mean_speedup"],
                    "faster_share": speed["faster_share"]})
    return out


def collect_results(out: Path, sets: list[str] | None = None) -> dict:
    """{set: {variant: {seed: figures}}} from every run under `out` that got as far as its
    pairs; the sets are those evaluated anywhere under `out` (or `sets`)."""
    if sets is None:
        sets = sorted({json.loads(p.read_text())["settings"]["set"] for p in out.glob("seed*/*/eval/*.speed.json")})
    found: dict = {}
    for pairs in sorted(out.glob("seed*/*/pairs.json")):
        seed, variant = pairs.parts[-3][len("seed"):], pairs.parts[-2]
        for spec in sets:
            found.setdefault(spec, {}).setdefault(variant, {})[seed] = _figures(pairs.parent, spec)
    return found


def spread(values: list) -> str:
    """Mean (min-max) over seeds; counts as counts, rates with three decimals."""
    values = [v for v in values if v is not None and v == v]
    if not values:
        return "-"
    mean = sum(values) / len(values)
    if all(isinstance(v, int) for v in values):
        return f"{mean:.1f} ({min(values)}-{max(values)})" if len(values) > 1 else f"{values[0]}"
    return f"{mean:.3f} ({min(values):.3f}-{max(values):.3f})" if len(values) > 1 else f"{mean:.3f}"


COLUMNS = (("pass@1", "pass_at_1"), ("start pass@1", "start_pass_at_1"), ("correctness pairs", "correctness_pairs"),
           ("efficiency pairs", "efficiency_pairs"), ("precision@1 (real tests)", "precision_at_1"),
           ("chance", "chance"), ("Spearman", "spearman"), ("speed-up", "mean_speedup"),
           (">=10% faster", "faster_share"), ("problems timed", "compared"))


def table(results: dict) -> str:
    """Markdown: per set and variant, each figure's mean over seeds (min-max); "-" where
    no seed has it (a variant with no pairs is not trained, so it has no pass@1)."""
    lines = ["# CodeDPO experiment", ""]
    for spec, variants in results.items():
        lines += [f"## {spec}", "", "| variant | seeds | " + " | ".join(c for c, _ in COLUMNS) + " |",
                  "|" + "---|" * (len(COLUMNS) + 2)]
        for name in [v for v in VARIANTS if v in variants] + [v for v in variants if v not in VARIANTS]:
            seeds = variants[name]
            cells = [spread([s.get(key) for s in seeds.values()]) for _, key in COLUMNS]
            lines.append(f"| {name} | {','.join(sorted(seeds))} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"
