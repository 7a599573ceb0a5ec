"""The RLCF experiment's evaluation on sets beyond the runs' own (MBPP: RLCF's stand-in
for MBJP): each finished run's final model through `execrl eval --json`, with the run's
own config (sampling, executors, static checks on), as a subprocess per run and set.

A run's figures for set NAME live in `<run>/extra_eval/<NAME>.json` (its per-problem rows
and log beside it) with the settings that made
them (the set, the model, samples per problem); a rerun keeps them and refuses a file
made with other settings (cluster/stage_files.py), so the experiment stays resumable.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cluster.stage_files import kept

RESERVED = ("heldout", "transfer")  # the runs' own sets


@dataclass(frozen=True)
class ExtraSet:
    name: str  # the column's name, e.g. mbpp
    spec: str  # what `execrl eval --problems` takes
    samples: int = 2


def parse_extra_set(item: str, samples: int) -> ExtraSet:
    """`NAME=SPEC` (from --eval-set) -> ExtraSet; the name must be a plain word that is
    not one of the runs' own sets."""
    name, sep, spec = item.partition("=")
    if not sep or not name.isidentifier() or not spec:
        raise ValueError(f"--eval-set {item!r}: expected NAME=SPEC, e.g. mbpp=../shared/data/mbpp/sanitized-mbpp.json")
    if name in RESERVED:
        raise ValueError(f"--eval-set {item!r}: {name!r} is a run's own set; choose another name")
    if samples < 1:
        raise ValueError(f"--eval-samples {samples}: must be at least 1")
    return ExtraSet(name, spec, samples)


def figures_path(run_dir: Path, name: str) -> Path:
    return run_dir / "extra_eval" / f"{name}.json"


def evaluate_runs(run_dirs: list[Path], sets: list[ExtraSet], log: Callable[[str], None] = print) -> list[str]:
    """Every finished run on every set, keeping what is already evaluated; the failures,
    one line each."""
    failures = []
    for run_dir in run_dirs:
        model = run_dir / "hf"
        if not (run_dir / "result.json").is_file() or not (model / "config.json").is_file():
            continue
        for extra in sets:
            path = figures_path(run_dir, extra.name)
            settings = {"set": extra.spec, "model": str(model.resolve()), "samples": extra.samples}
            if kept(path, settings):
                continue
            log(f"[{run_dir.parent.name} {run_dir.name}] evaluating on {extra.name} ({extra.spec})")
            report, error = _evaluate(run_dir, model, extra)
            if report is None:
                failures.append(f"{run_dir.parent.name} {run_dir.name} on {extra.name}: {error}")
                log(f"  FAILED: {failures[-1]}")
                continue
            path.write_text(json.dumps({"settings": settings, "report": report}, indent=2) + "\n")
    return failures


def _evaluate(run_dir: Path, model: Path, extra: ExtraSet) -> tuple[dict | None, str]:
    """`execrl eval --json` on the run's config; (its report, "") or (None, why)."""
    path = figures_path(run_dir, extra.name)
    path.parent.mkdir(exist_ok=True)
    log_path = path.with_suffix(".log")
    cmd = [sys.executable, "-m", "cluster.cli", "eval", "--model", str(model), "--problems", extra.spec,
           "--config", str(run_dir / "config.yaml"), "-n", str(extra.samples), "-k", "1", "--json",
           "--out", str(path.with_suffix(".jsonl"))]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    log_path.write_text(proc.stdout + proc.stderr)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        return None, f"exit {proc.returncode} (see {log_path})"
    return json.loads(lines[-1]), ""


def run_figures(run_dir: Path, metrics: tuple[str, ...]) -> dict:
    """{set name: {metric: value at k=1}} for each extra set evaluated in this run."""
    return {path.stem: figures_at_1(json.loads(path.read_text())["report"], metrics)
            for path in sorted((run_dir / "extra_eval").glob("*.json"))}


def figures_at_1(report: dict, metrics: tuple[str, ...]) -> dict:
    """pass@1 and each grounding metric@1 of an evaluation report (`EvalReport.to_dict`)."""
    grounding = report.get("grounding_at", {})
    return {"pass": report["pass_at"]["1"], **{m: grounding[m]["1"] for m in metrics[1:] if m in grounding}}
