"""`execrl`: the command line.  Each verb lives in its own module and registers itself here.

Errors a user can fix (bad config, bad data, missing paths) print one clear line and
exit with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from cluster.cli_data import resolve_problem_argument
from cluster import (cli_bench, cli_codedpo, cli_config, cli_curriculum, cli_cycle, cli_data, cli_experiment,
                     cli_export, cli_inspect, cli_judge, cli_model, cli_plan, cli_report, cli_train)
from core.problem import ProblemFormatError
from core.settings import ConfigError

VERB_MODULES = (cli_train, cli_data, cli_model, cli_config, cli_judge, cli_curriculum, cli_bench, cli_plan, cli_export,
                cli_experiment, cli_report, cli_inspect, cli_cycle, cli_codedpo)
USER_ERRORS = (ConfigError, ProblemFormatError, FileNotFoundError, ValueError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="execrl",
        description="Reinforcement learning from execution feedback for code language models.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for module in VERB_MODULES:
        module.register(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        resolve_problem_argument(args)
        return int(args.run(args) or 0)
    except USER_ERRORS as exc:
        print(f"execrl {args.verb}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
