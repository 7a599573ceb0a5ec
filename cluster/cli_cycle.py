"""`execrl cycle`: CYCLE, self-refinement from execution feedback (methods/cycle/).

    execrl cycle run --out DIR [--name NAME] [--until STAGE] [KEY=VALUE ...]
    execrl cycle experiment --out outputs/cycle --seeds 0,1,2 [--variants ...] [KEY=VALUE ...]

KEY=VALUE overrides configs/cycle.yaml's keys (`data.pgm_fraction=0`); the base execrl
config's keys go under `base.` (`base.rollout.max_new_tokens=96`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("cycle", help="CYCLE: train a model to refine its faulty programs from execution "
                                            "feedback (collect, build, train, evaluate)")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="Phase I SFT, collect faulty samples, build refinement data, train, and "
                                     "evaluate with iterative refinement (finished stages are kept)")
    run.add_argument("--config", default=None, help="CYCLE config (default: configs/cycle.yaml)")
    run.add_argument("--out", required=True, help="output directory (one seed's shared stages)")
    run.add_argument("--name", default="cycle", help="variant directory under --out (default: cycle)")
    run.add_argument("--until", default="eval", help="last stage: phase1, collect, build, train or eval")
    run.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    run.set_defaults(run=run_verb)
    exp = sub.add_parser("experiment", help="SFT without CYCLE, CYCLE, CYCLE without PGM, CYCLE without mixing, "
                                            "over seeds; results.md")
    exp.add_argument("--config", default=None, help="CYCLE config (default: configs/cycle.yaml)")
    exp.add_argument("--out", default="outputs/cycle", help="output directory (default: outputs/cycle)")
    exp.add_argument("--seeds", default="0,1,2", help="comma-separated seeds or a range (default: 0,1,2)")
    exp.add_argument("--variants", default=None,
                     help="comma-separated: sft, sft-more, cycle, cycle-no-pgm, cycle-no-mix, small-sft (default: all "
                          "but small-sft)")
    exp.add_argument("--sft-model", action="append", default=[], metavar="SEED=DIR",
                     help="Phase I model of a seed (repeatable); default: execrl's SFT, cached")
    exp.add_argument("--small-model", action="append", default=[], metavar="SEED=DIR",
                     help="small-sft's Phase I model of a seed (repeatable); default: execrl's SFT of the small "
                          "model, cached")
    exp.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    exp.set_defaults(run=experiment_verb)


def run_verb(args: argparse.Namespace) -> int:
    from methods.cycle.config import load_cycle_config
    from methods.cycle.pipeline import Run, run_cycle

    cycle, base = load_cycle_config(args.config, args.overrides)
    if not args.name or "/" in args.name or args.name.startswith("."):
        raise ValueError(f"--name {args.name!r}: must be a plain directory name")
    results = run_cycle(Run(cycle, base, Path(args.out), args.name, lambda line: print(line, flush=True)), args.until)
    if results:
        print(json.dumps({spec: {"pass_at_1": r["pass_at_1"], "exact_copy": r["exact_copy"]}
                          for spec, r in results.items()}))
    return 0


def experiment_verb(args: argparse.Namespace) -> int:
    from cluster.experiment import parse_seeds
    from methods.cycle.config import load_cycle_config
    from methods.cycle.experiment import DEFAULT_VARIANTS, Request, run_experiment

    load_cycle_config(args.config, args.overrides)  # a bad override fails here, named
    for item in args.overrides:
        if item.split("=", 1)[0] in ("seed", "sft_model"):
            raise ValueError(f"override {item!r}: set per run by the experiment (use --seeds / --sft-model)")
    variants = [v.strip() for v in (args.variants or ",".join(DEFAULT_VARIANTS)).split(",") if v.strip()]
    request = Request(Path(args.out), parse_seeds(args.seeds), variants, args.config, tuple(args.overrides),
                      _models("--sft-model", args.sft_model), _models("--small-model", args.small_model))
    summary = run_experiment(request, log=lambda line: print(line, flush=True))
    print((request.out / "results.md").read_text(), end="")
    for line in summary["failures"]:
        print(f"FAILED {line}")
    return 1 if summary["failures"] else 0


def _models(option: str, items: list[str]) -> dict[int, str]:
    """{seed: model directory} from repeated SEED=DIR options."""
    models = {}
    for item in items:
        seed, sep, path = item.partition("=")
        if not sep or not seed.strip().isdigit() or not (Path(path) / "config.json").is_file():
            raise ValueError(f"{option} {item!r}: expected SEED=DIR with a Hugging Face model in DIR")
        models[int(seed)] = path
    return models
