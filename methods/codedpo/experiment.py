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
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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
    failures = []
    for seed in req.seeds:
        for variant in req.variants:
            seed_dir = req.out / f"seed{seed}"
            seed_dir.mkdir(parents=True, exist_ok=True)
            log(f"codedpo experiment: {variant} seed {seed}")
            with open(seed_dir / f"{variant}.log", "a") as out:
                code = subprocess.run(command(req, seed, variant), stdout=out, stderr=subprocess.STDOUT).returncode
            if code:
                failures.append(f"{variant} seed{seed}: exit {code} (see {seed_dir / f'{variant}.log'})")
                log(f"  FAILED: {failures[-1]}")
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


def _figures(variant_dir: Path, speed_file: Path) -> dict:
    """One finished run's figures: pass@1 (trained and start), pairs, agreement, speed."""
    data = json.loads(speed_file.with_name(speed_file.name.replace(".speed.json", ".json")).read_text())
    start = variant_dir.parent / "eval-start" / speed_file.name.replace(".speed.json", ".json")
    pairs = json.loads((variant_dir / "pairs.json").read_text())
    scores = json.loads((variant_dir / "scores.json").read_text())
    speed = json.loads(speed_file.read_text())
    return {"pass_at_1": data["report"]["pass_at"]["1"],
            "start_pass_at_1": json.loads(start.read_text())["report"]["pass_at"]["1"],
            "correctness_pairs": pairs["correctness_pairs"], "efficiency_pairs": pairs["efficiency_pairs"],
            "precision_at_1": scores["agreement"]["precision_at_1"], "chance": scores["agreement"]["chance"],
            "spearman": scores["agreement"]["spearman"], "compared": speed["compared"],
            "mean_speedup": speed["mean_speedup"], "faster_share": speed["faster_share"]}


def collect_results(out: Path) -> dict:
    """{set: {variant: {seed: figures}}} from every finished evaluation under `out`."""
    found: dict = {}
    for path in sorted(out.glob("seed*/*/eval/*.speed.json")):
        spec = json.loads(path.read_text())["settings"]["set"]
        seed, variant = path.parts[-4][len("seed"):], path.parts[-3]
        found.setdefault(spec, {}).setdefault(variant, {})[seed] = _figures(path.parent.parent, path)
    return found


def spread(values: list) -> str:
    values = [v for v in values if v is not None and v == v]
    if not values:
        return "-"
    mean = sum(values) / len(values)
    return f"{mean:.3f} ({min(values):.3f}-{max(values):.3f})" if len(values) > 1 else f"{mean:.3f}"


COLUMNS = (("pass@1", "pass_at_1"), ("start pass@1", "start_pass_at_1"), ("correctness pairs", "correctness_pairs"),
           ("efficiency pairs", "efficiency_pairs"), ("precision@1 (real tests)", "precision_at_1"),
           ("chance", "chance"), ("Spearman", "spearman"), ("speed-up", "mean_speedup"),
           (">=10% faster", "faster_share"), ("problems timed", "compared"))


def table(results: dict) -> str:
    """Markdown: per set and variant, each figure's mean over seeds (min-max)."""
    lines = ["# CodeDPO experiment", ""]
    for spec, variants in results.items():
        lines += [f"## {spec}", "", "| variant | seeds | " + " | ".join(c for c, _ in COLUMNS) + " |",
                  "|" + "---|" * (len(COLUMNS) + 2)]
        for name in [v for v in VARIANTS if v in variants] + [v for v in variants if v not in VARIANTS]:
            seeds = variants[name]
            cells = [spread([s[key] for s in seeds.values()]) for _, key in COLUMNS]
            lines.append(f"| {name} | {','.join(sorted(seeds))} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"
