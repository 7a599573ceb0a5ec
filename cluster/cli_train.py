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
    check_model_path(args.model)
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
        report = evaluate(problems, AutoTokenizer.from_pretrained(args.model), rollout, executors, args.n, ks,
                          cfg.rollout, cfg.seed)
    finally:
        rollout.shutdown()
        executors.close()
    print(report.summary(args.problems))
    if args.out:
        Path(args.out).write_text("".join(json.dumps(row) + "\n" for row in report.per_problem))
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
