"""`execrl judge`: run samples against a problem set's tests in the sandbox."""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from dataclasses import replace

from cluster.cli_data import add_problem_arguments
from executors.config import ExecutorConfig
from executors.judge import Judge
from executors.samples import read_samples
from executors.static_checks import StaticWeights, static_score
from problems.load import load_problems


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("judge", help="judge samples against their problems' tests in the sandbox")
    add_problem_arguments(parser)
    parser.add_argument("--samples", required=True, help="JSON lines with problem_id and one of code, completion or response (a chat answer)")
    parser.add_argument("--out", default=None, help="write one JSON result per sample here, in sample order")
    parser.add_argument("--workers", type=int, default=2, help="parallel sandbox slots (default 2)")
    parser.add_argument("--no-coverage", action="store_true", help="skip line coverage")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per test (default: executor.timeout_s)")
    parser.add_argument("--checks", action="store_true",
                        help="also run RLCF's static checks: each result gets its findings and static_score "
                             "(the default reward.static_weights)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    loaded = load_problems(args.problems, fmt=args.format, skip_bad=args.skip_bad)
    submissions = read_samples(args.samples, {p.id: p for p in loaded.problems})
    cfg = ExecutorConfig(slots_per_actor=args.workers, coverage=not args.no_coverage, static_checks=args.checks)
    if args.timeout is not None:
        cfg = replace(cfg, timeout_s=args.timeout)
    with Judge(cfg) as judge:
        results = [None] * len(submissions)
        for index, result in judge.judge_many(submissions):
            results[index] = result
        layers = judge.layers
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            for submission, result in zip(submissions, results):
                row = {**result.to_dict(), "judged": submission.judged}
                if args.checks:
                    row["static_score"] = static_score(result.findings, StaticWeights())
                f.write(json.dumps(row) + "\n")
    print(summary(results, [s.problem.difficulty for s in submissions], layers))
    if args.checks:
        print(checks_summary(results))
    return 0


def checks_summary(results) -> str:
    """Static checks over the samples: how many are clean, the mean score, findings by class."""
    scores = [static_score(r.findings, StaticWeights()) for r in results]
    kinds = Counter(f.kind for r in results for f in r.findings)
    clean = sum(not r.findings for r in results)
    by_kind = ", ".join(f"{k} {n}" for k, n in kinds.most_common()) or "none"
    return (f"  static checks: clean {clean}/{len(results)}, mean score {sum(scores) / len(scores):.3f}; "
            f"findings: {by_kind}")


def summary(results, difficulties, layers) -> str:
    passed = sum(r.passed for r in results)
    lines = [f"judged {len(results)} samples under {'+'.join(layers)}: pass rate {passed / len(results):.3f} ({passed})"]
    by_level = defaultdict(list)
    for result, level in zip(results, difficulties):
        by_level[level].append(result.passed)
    for level, flags in sorted(by_level.items()):
        lines.append(f"  {level:<14} {sum(flags) / len(flags):.3f}  ({sum(flags)}/{len(flags)})")
    counts = Counter(r.verdict for r in results)
    lines.append("  verdicts: " + ", ".join(f"{v} {n}" for v, n in counts.most_common()))
    return "\n".join(lines)
