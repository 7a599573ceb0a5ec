"""`execrl cycle experiment`: the variants x seeds, each an `execrl cycle run` subprocess.

Variants (overrides on configs/cycle.yaml):
    sft           train.steps=0: the Phase I model refines with the template it never saw
    sft-more      data.refine_share=0: the same training steps and problems, generation
                  rows only (the control for "more SFT data" rather than refinement)
    cycle         the defaults (PGM 0.05, half the batch refinement rows)
    cycle-no-pgm  data.pgm_fraction=0
    cycle-no-mix  data.refine_share=1 (refinement rows only)
    small-sft     the `small` model's Phase I SFT (about 7x the tiny one's parameters),
                  refining untrained like `sft`: the paper's "larger model" baseline

One seed's variants share `<out>/seed<s>` (Phase I model and collection made once);
small-sft has its own Phase I, so its runs live in `<out>/seed<s>-small`;
each run keeps every finished stage (pipeline.py), so rerunning the command resumes.
A run's log is `<out>/seed<s>/<variant>.log`.  Afterwards results.json and results.md
are recomputed from every finished evaluation under <out>.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cluster.experiment import run_grid

VARIANTS: dict[str, tuple[str, ...]] = {
    "sft": ("train.steps=0",),
    "sft-more": ("data.refine_share=0",),
    "cycle": (),
    "cycle-no-pgm": ("data.pgm_fraction=0",),
    "cycle-no-mix": ("data.refine_share=1",),
    "small-sft": ("train.steps=0", "base.model.init_size=small"),
}
OWN_PHASE1 = {"small-sft": "-small"}  # variant -> suffix of its seed directory
DEFAULT_VARIANTS = ("sft", "sft-more", "cycle", "cycle-no-pgm", "cycle-no-mix")


@dataclass
class Request:
    out: Path
    seeds: list[int]
    variants: list[str]
    config: str | None = None
    extra: tuple[str, ...] = ()
    sft_models: dict[int, str] | None = None
    small_models: dict[int, str] | None = None


def run_experiment(req: Request, log: Callable[[str], None] = print) -> dict:
    unknown = [v for v in req.variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    failures = run_grid(req.out, req.seeds, req.variants, lambda seed, variant: command(req, seed, variant),
                        "cycle", log)
    results = collect_results(req.out)
    (req.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (req.out / "results.md").write_text(table(results))
    return {"failures": failures, "results": results}


def command(req: Request, seed: int, variant: str) -> list[str]:
    suffix = OWN_PHASE1.get(variant, "")
    cmd = [sys.executable, "-m", "cluster.cli", "cycle", "run", "--out", str(req.out / f"seed{seed}{suffix}"),
           "--name", variant]
    if req.config:
        cmd += ["--config", req.config]
    sft = ((req.small_models if suffix else req.sft_models) or {}).get(seed)
    return cmd + [*req.extra, *VARIANTS[variant], f"seed={seed}", *([f"sft_model={sft}"] if sft else [])]


def collect_results(out: Path) -> dict:
    """{set: {variant: {seed: report}}} from every finished evaluation under `out`."""
    found: dict = {}
    for path in sorted(out.glob("seed*/*/eval/*.json")):
        data = json.loads(path.read_text())
        seed_dir, variant = path.parts[-4], path.parts[-3]
        seed = seed_dir[len("seed"):len(seed_dir) - len(OWN_PHASE1.get(variant, ""))]
        spec = data["settings"]["set"]
        report = data["report"]
        if "empty" not in report:  # evaluated before the empty share was recorded: from its programs
            report["empty"] = _empty_share(path.with_suffix(".jsonl"), spec, int(seed), len(report["pass_at_1"]))
        found.setdefault(spec, {}).setdefault(variant, {})[seed] = report
    return found


def _empty_share(rows_path: Path, spec: str, seed: int, rounds: int) -> list[float | None]:
    """Per round, the share of refinements with nothing after the starter code (the
    prefix of a position-0 prompt), from the per-problem lines."""
    from .pipeline import load_set

    starter = {p.id: p.starter_code for p in load_set(spec, seed, None, 0, "eval.sets")}
    counts = [[0, 0] for _ in range(rounds)]
    for line in rows_path.read_text().splitlines():
        row = json.loads(line)
        for chain in row["chains"]:
            for attempt in chain["rounds"]:
                if attempt["round"]:
                    counts[attempt["round"]][0] += not attempt["program"][len(starter[row["problem_id"]]):].strip()
                    counts[attempt["round"]][1] += 1
    return [None] + [e / n if n else None for e, n in counts[1:]]


def _spread(values: list[float | None]) -> str:
    values = [v for v in values if v is not None and v == v]
    if not values:
        return "-"
    mean = sum(values) / len(values)
    return f"{mean:.3f} ({min(values):.3f}-{max(values):.3f})" if len(values) > 1 else f"{mean:.3f}"


def table(results: dict) -> str:
    """Markdown: per set, per variant, pass@1 by round, round 1's exact-copy, fixed and
    empty shares and the last round's exact-copy rate, mean over seeds (min-max)."""
    lines = ["# CYCLE experiment", ""]
    for spec, variants in results.items():
        rounds = max(len(r["pass_at_1"]) for seeds in variants.values() for r in seeds.values())
        head = " | ".join(f"pass@1 r{r}" for r in range(rounds))
        lines += [f"## {spec}", "", f"| variant | seeds | {head} | exact-copy r1 | fixed r1 | empty r1 | "
                  f"exact-copy r{rounds - 1} |", "|" + "---|" * (rounds + 6)]
        for name in [v for v in VARIANTS if v in variants] + [v for v in variants if v not in VARIANTS]:
            seeds = variants[name]
            cells = [_spread([s["pass_at_1"][r] if r < len(s["pass_at_1"]) else None for s in seeds.values()])
                     for r in range(rounds)]
            copy = _spread([s["exact_copy"][1] if len(s["exact_copy"]) > 1 else None for s in seeds.values()])
            fixed = _spread([s["fixed"][1] if len(s["fixed"]) > 1 else None for s in seeds.values()])
            empty = _spread([s["empty"][1] if len(s.get("empty") or ()) > 1 else None for s in seeds.values()])
            last = _spread([s["exact_copy"][-1] for s in seeds.values()])
            lines.append(f"| {name} | {','.join(sorted(seeds))} | {' | '.join(cells)} | {copy} | {fixed} | {empty} "
                         f"| {last} |")
        lines.append("")
    return "\n".join(lines) + "\n"
