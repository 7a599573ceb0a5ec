"""`execrl experiment ablation`: StepCoder's ablation in miniature (cluster/ablation.py).

Exit status 0 when every planned run finished and passed its mechanics checks, 1 when
one did not (results are still written for the others), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("experiment", help="run training variants over seeds and compare them")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    ablation = sub.add_parser("ablation", help="SFT, PPO, PPO+CCCS, PPO+FGO, StepCoder, GRPO (+CCCS+FGO) on "
                                               "configs/tiny-hard.yaml over seeds: tables, CIs, curves")
    ablation.add_argument("--out", default=None, help="output directory (default: outputs/ablation, "
                                                      "outputs/ablation-quick with --quick)")
    ablation.add_argument("--seeds", default=None, help="comma-separated seeds or a range (default: 0,1,2; "
                                                        "0 with --quick)")
    ablation.add_argument("--variants", default=None, help="comma-separated variant names (default: all)")
    ablation.add_argument("--quick", action="store_true",
                          help="CI mode: tiny settings, one seed, every variant; checks the mechanics")
    ablation.add_argument("--parallel", type=int, default=1, help="runs at once (threads per run: cores / N)")
    ablation.add_argument("--json", action="store_true", help="also print one JSON object on the last line")
    ablation.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides for every run")
    ablation.set_defaults(run=run_ablation_verb)
    rlcf = sub.add_parser("rlcf", help="SFT, then RLCF's grounding reward vs StepCoder's test reward, and the small "
                                       "model with SFT only, on configs/tiny-hard.yaml over seeds")
    rlcf.add_argument("--out", default="outputs/rlcf", help="output directory (default: outputs/rlcf)")
    rlcf.add_argument("--seeds", default="0,1,2", help="comma-separated seeds or a range (default: 0,1,2)")
    rlcf.add_argument("--variants", default=None, help="comma-separated: sft, stepcoder, rlcf, small-sft (default: all)")
    rlcf.add_argument("--parallel", type=int, default=1, help="runs at once")
    rlcf.add_argument("--eval-set", action="append", default=[], metavar="NAME=SPEC",
                      help="also evaluate every finished run's model on this set (repeatable), e.g. "
                           "mbpp=../shared/data/mbpp/sanitized-mbpp.json")
    rlcf.add_argument("--eval-samples", type=int, default=2, help="samples per problem on the --eval-set sets")
    rlcf.add_argument("--json", action="store_true", help="also print one JSON object on the last line")
    rlcf.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides for every run")
    rlcf.set_defaults(run=run_rlcf_verb)


def run_ablation_verb(args: argparse.Namespace) -> int:
    from cluster.ablation import AblationRequest, run_ablation
    from cluster.experiment import VARIANTS, check_overrides, parse_seeds, select_variants

    request = AblationRequest(
        out=Path(args.out or ("outputs/ablation-quick" if args.quick else "outputs/ablation")),
        variants=select_variants(args.variants),
        seeds=parse_seeds(args.seeds or ("0" if args.quick else "0,1,2")),
        extra=check_overrides(args.overrides), quick=args.quick, parallel=args.parallel)
    summary = run_ablation(request, log=lambda line: print(line, flush=True))
    print((request.out / "results.md").read_text(), end="")
    for line in summary.failures + [str(c) for c in summary.check_failures]:
        print(f"FAILED {line}")
    print(f"results: {request.out / 'results.json'}, {request.out / 'results.md'}, {request.out / 'curves.png'}")
    if args.json:
        print(json.dumps({**summary.to_json(), "variants": [v.name for v in request.variants if v.name in VARIANTS]}))
    return 0 if summary.ok else 1


def run_rlcf_verb(args: argparse.Namespace) -> int:
    from cluster.experiment import check_overrides, parse_seeds
    from methods.rlcf.experiment import VARIANTS, Request, run_experiment
    from methods.rlcf.extra_sets import parse_extra_set

    names = [v.strip() for v in (args.variants or ",".join(VARIANTS)).split(",") if v.strip()]
    sets = [parse_extra_set(item, args.eval_samples) for item in args.eval_set]
    request = Request(Path(args.out), parse_seeds(args.seeds), names, check_overrides(args.overrides), args.parallel,
                      sets)
    summary = run_experiment(request, log=lambda line: print(line, flush=True))
    print((request.out / "results.md").read_text(), end="")
    for line in summary["failures"]:
        print(f"FAILED {line}")
    if args.json:
        print(json.dumps({"out": str(request.out), "failures": summary["failures"], "results": summary["results"]}))
    return 0 if not summary["failures"] else 1
