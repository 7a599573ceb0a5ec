"""`execrl train` and `execrl eval`."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from cluster.cli_config import add_config_arguments
from cluster.cli_data import add_problem_arguments
from cluster.config import load_config


def register(verbs: argparse._SubParsersAction) -> None:
    train = verbs.add_parser("train", help="SFT warm start, then PPO with CCCS and FGO (bundled CPU default)")
    add_config_arguments(train)
    train.add_argument("--address", default=None, help="Ray cluster to join (default: RAY_ADDRESS or a local Ray)")
    train.add_argument("--resume", default=None, metavar="DIR", help="continue the run saved in DIR")
    train.set_defaults(run=run_train)

    ev = verbs.add_parser("eval", help="sampled pass@k of a model on a problem set, judged in the sandbox")
    ev.add_argument("--model", required=True, help="Hugging Face model directory")
    add_problem_arguments(ev)
    ev.add_argument("-n", type=int, default=4, help="samples per problem")
    ev.add_argument("-k", default="1", help="comma-separated k values, e.g. 1,5,10")
    ev.add_argument("--temperature", type=float, default=None, help="default: rollout.temperature")
    ev.add_argument("--backend", choices=["transformers", "vllm"], default="transformers")
    ev.add_argument("--out", default=None, help="per-problem JSON lines report")
    ev.add_argument("--no-checks", action="store_true",
                    help="skip the static checks (then static-clean@k is not reported; compile@k and execute@k are)")
    ev.add_argument("--refine", type=int, default=0, metavar="R",
                    help="CYCLE's iterative self-refinement: up to R rounds after the one-shot sample, each "
                         "re-prompted with the faulty program and its execution feedback; reports pass@1 per "
                         "round, exact-copy rate and fixed share (-n chains per problem)")
    ev.add_argument("--speed-baseline", default=None, metavar="MODEL",
                    help="CodeDPO's efficiency figures: also sample MODEL (e.g. the model before training) and, on "
                         "the problems both solve, time each one's first passing program on the real tests (idle "
                         "slot, CPU time, median of --timing-repeats runs): mean speed-up and share >= 10%% faster")
    ev.add_argument("--timing-repeats", type=int, default=5, help="runs per timed program (with --speed-baseline)")
    ev.add_argument("--json", action="store_true",
                    help="also print the report (figures, no per-problem rows) as one JSON object on the last line")
    add_config_arguments(ev)
    ev.set_defaults(run=run_eval)


def run_train(args: argparse.Namespace) -> int:
    from cluster.train import run_training

    cfg = load_config(args.config, args.overrides)
    if args.address:
        cfg = replace(cfg, cluster=replace(cfg.cluster, address=args.address))
    run_training(cfg, resume=args.resume)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from actors.rollout_pool import RolloutPool
    from cluster.evaluate import evaluate
    from cluster.runtime import connect
    from models.resolve import check_model_path
    from executors.pool import ExecutorPool
    from problems.load import load_problems

    ks = [int(k) for k in args.k.split(",")]
    if args.refine < 0:
        raise ValueError(f"--refine {args.refine}: must be 0 (no refinement) or more rounds")
    if args.refine and ks != [1]:
        raise ValueError(f"--refine reports pass@1 per round; -k {args.k} is not supported with it")
    if max(ks) > args.n:
        raise ValueError(f"-k {max(ks)} needs -n >= {max(ks)}")
    if args.json and (args.refine or args.speed_baseline):
        raise ValueError("--json reports the plain evaluation (not --refine or --speed-baseline)")
    if args.speed_baseline and (args.refine or ks != [1] or args.timing_repeats < 1):
        raise ValueError("--speed-baseline reports pass@1 and speed (-k 1, no --refine, --timing-repeats >= 1)")
    check_model_path(args.model)
    if args.speed_baseline:
        check_model_path(args.speed_baseline)
    cfg = load_config(args.config, args.overrides)
    rollout_cfg = replace(cfg.rollout, backend=args.backend)
    if args.temperature is not None:
        rollout_cfg = replace(rollout_cfg, temperature=args.temperature)
    cfg = replace(cfg, rollout=rollout_cfg, executor=replace(cfg.executor, static_checks=not args.no_checks))
    problems = load_problems(args.problems, fmt=args.format, skip_bad=args.skip_bad).problems
    connect(cfg)
    executors, rollout = ExecutorPool(cfg.executor), RolloutPool(cfg.rollout, args.model)
    try:
        if args.refine:
            return _refine_eval(args, cfg, problems, rollout, executors)
        if args.speed_baseline:
            return _speed_eval(args, cfg, problems, rollout, executors)
        report = evaluate(problems, AutoTokenizer.from_pretrained(args.model), rollout, executors, args.n, ks,
                          cfg.rollout, cfg.seed)
    finally:
        rollout.shutdown()
        executors.close()
    print(report.summary(args.problems))
    if args.out:
        Path(args.out).write_text("".join(json.dumps(row) + "\n" for row in report.per_problem))
    if args.json:
        figures = {k: v for k, v in report.to_dict().items() if k != "per_problem"}
        print(json.dumps({"problems_spec": args.problems, "model": args.model, **figures}))
    return 0


def _refine_eval(args: argparse.Namespace, cfg, problems, rollout, executors) -> int:
    """`execrl eval --refine R` (methods/cycle/refine.py): the template budget is the one
    the model was trained with (its cycle.json), else the defaults."""
    from transformers import AutoTokenizer

    from methods.cycle.backends import pool_generate, pool_judge
    from methods.cycle.refine import report, rows, run_refinement
    from methods.cycle.template import check_plain
    from methods.cycle.train import read_template

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    check_plain(tokenizer, cfg.rollout)
    template, trained = read_template(args.model)
    print(f"refinement template budget: {'from the model' if trained else 'defaults'} "
          f"(program {template.program_tokens} tokens, feedback {template.feedback_tokens})")
    chains = run_refinement(problems, tokenizer, pool_generate(rollout, cfg.rollout), pool_judge(executors), args.n,
                            args.refine, cfg.seed, template, lambda line: print(line, flush=True))
    print(report(chains, args.refine, args.n).summary(args.problems))
    if args.out:
        Path(args.out).write_text("".join(json.dumps(row) + "\n" for row in rows(chains)))
    return 0


def _speed_eval(args: argparse.Namespace, cfg, problems, rollout, executors) -> int:
    """`execrl eval --speed-baseline MODEL` (methods/codedpo/evaluation.py): pass@1 of both
    models, then the speed of their programs on the problems both solve."""
    from transformers import AutoTokenizer

    from actors.rollout_pool import RolloutPool
    from methods.codedpo.evaluation import sample_and_judge, speed_comparison

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    report, after = sample_and_judge(problems, tokenizer, rollout, executors, args.n, cfg.rollout, cfg.seed)
    rollout.shutdown()
    baseline = RolloutPool(cfg.rollout, args.speed_baseline)
    try:
        base_report, before = sample_and_judge(problems, AutoTokenizer.from_pretrained(args.speed_baseline), baseline,
                                               executors, args.n, cfg.rollout, cfg.seed)
    finally:
        baseline.shutdown()
    speed = speed_comparison(problems, before, after, cfg.executor, args.timing_repeats)
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"{args.problems}: pass@1 {report['pass_at']['1']:.3f} (baseline {base_report['pass_at']['1']:.3f}); "
          f"solved by both and timed: {speed['compared']} problems, mean speed-up {fmt(speed['mean_speedup'])}, "
          f">= 10% faster {fmt(speed['faster_share'])}")
    if args.out:
        Path(args.out).write_text("".join(json.dumps(row) + "\n" for row in speed["rows"]))
    return 0
