"""`execrl data convert|stats|split`: read problems in any supported format; split one into train and held-out."""

from __future__ import annotations

import argparse
import json
import sys

from problems.load import FORMAT_NAMES, load_problems
from problems.stats import format_stats, problem_stats
from problems.convert import write_problems

PROBLEMS_HELP = "a problem file (APPS, APPS+, HumanEval, MBPP, execrl JSON lines), 'humaneval' or 'bundled:<split>'"


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("data", help="convert and inspect problem sets")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    convert = sub.add_parser("convert", help="convert a problem set to execrl's JSON lines")
    add_problem_arguments(convert)
    convert.add_argument("--out", required=True, help="output .jsonl (or .jsonl.gz)")
    convert.set_defaults(run=run_convert)

    stats = sub.add_parser("stats", help="count problems by source, difficulty and test kind")
    add_problem_arguments(stats)
    stats.add_argument("--json", action="store_true", help="also print one JSON object on the last line")
    stats.set_defaults(run=run_stats)

    split = sub.add_parser("split", help="train/held-out split, stratified by difficulty, fixed by a seed")
    add_problem_arguments(split)
    split.add_argument("--out-dir", required=True, help="writes train.jsonl and heldout.jsonl (execrl JSON lines) here")
    split.add_argument("--heldout-fraction", type=float, required=True, help="share of each difficulty held out, in (0, 1)")
    split.add_argument("--seed", type=int, default=0, help="the same set and seed give the same split (default 0)")
    split.set_defaults(run=run_split)


def add_problem_arguments(parser: argparse.ArgumentParser) -> None:
    """The problem set, as `FILE` (the form people type first) or `--problems FILE`;
    `resolve_problem_argument` checks that exactly one was given."""
    parser.add_argument("problems_positional", nargs="?", metavar="PROBLEMS", default=None,
                        help="the problem set (same as --problems)")
    parser.add_argument("--problems", default=None, help=PROBLEMS_HELP)
    parser.add_argument("--format", choices=FORMAT_NAMES, default=None, help="skip detection and read this format")
    parser.add_argument("--skip-bad", action="store_true", help="skip malformed records (counted and reported) instead of failing")


def resolve_problem_argument(args: argparse.Namespace) -> None:
    """Fold the positional form into `args.problems`; refuse none or two different."""
    if not hasattr(args, "problems_positional"):
        return
    positional, option = args.problems_positional, args.problems
    if positional and "=" in positional and hasattr(args, "overrides") and not positional.startswith(("/", ".")):
        # `eval --problems P KEY=VALUE`: argparse gives the first override to PROBLEMS
        args.overrides, positional = [positional, *args.overrides], None
    if positional and option and positional != option:
        raise ValueError(f"two problem sets given: {positional!r} and --problems {option!r}; give one")
    args.problems = option or positional
    if not args.problems:
        raise ValueError("no problem set given: pass it as PROBLEMS or --problems PROBLEMS "
                         "(a file, 'humaneval' or 'bundled:<split>')")


def _load(args: argparse.Namespace):
    result = load_problems(args.problems, fmt=args.format, skip_bad=args.skip_bad)
    if result.skipped:
        print(result.summary(), file=sys.stderr)
    return result


def run_convert(args: argparse.Namespace) -> int:
    result = _load(args)
    write_problems(result.problems, args.out)
    print(f"wrote {len(result.problems)} problems ({result.format}) to {args.out}; skipped {len(result.skipped)}")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    result = _load(args)
    stats = problem_stats(result.problems)
    stats["skipped"] = len(result.skipped)
    print(f"{args.problems} ({result.format})")
    print(format_stats(stats))
    if args.json:
        print(json.dumps(stats))
    return 0


def run_split(args: argparse.Namespace) -> int:
    from collections import Counter
    from pathlib import Path

    from problems.split import split_problems

    result = _load(args)
    train, heldout = split_problems(result.problems, args.heldout_fraction, args.seed)
    out = Path(args.out_dir)
    write_problems(train, out / "train.jsonl")
    write_problems(heldout, out / "heldout.jsonl")
    counts = {name: dict(sorted(Counter(p.difficulty for p in part).items()))
              for name, part in (("train", train), ("heldout", heldout))}
    print(f"split {len(result.problems)} problems (seed {args.seed}): {len(train)} to {out / 'train.jsonl'}, "
          f"{len(heldout)} to {out / 'heldout.jsonl'}; by difficulty: {json.dumps(counts)}")
    return 0
