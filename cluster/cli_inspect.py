"""`execrl inspect RUN_DIR [--problem ID] [--iteration K] [--html OUT.html]`: what a run's
model wrote, what ran, what FGO masked and why programs failed (cluster/inspect_run.py),
as text or as one self-contained HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("inspect", help="a training run's samples: problem histories, failing tests, masked code")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="an execrl train output directory (has samples.jsonl)")
    parser.add_argument("--problem", action="append", default=[], metavar="ID",
                        help="show this problem's curriculum history and latest samples (repeatable)")
    parser.add_argument("--iteration", type=int, default=None, metavar="K",
                        help="as of step K (metrics.jsonl's step; 0 is the first iteration)")
    parser.add_argument("--html", default=None, metavar="OUT.html", help="write a self-contained HTML page there")
    parser.add_argument("--top", type=int, default=10, metavar="N", help="rows of the failing/slowest tables")
    parser.set_defaults(run=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    from cluster.inspect_run import problem_history, run_summary
    from cluster.run_files import load_run

    if args.top < 1:
        raise ValueError(f"--top {args.top}: must be at least 1")
    run = load_run(args.run_dir)
    summary = run_summary(run, args.iteration, args.top)
    histories = [problem_history(run, pid, args.iteration) for pid in args.problem]
    if args.html:
        from cluster.inspect_html import render_html

        out = Path(args.html)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_html(summary, histories), encoding="utf-8")
        print(f"inspect: {out}")
        return 0
    from cluster.inspect_text import render_text

    print(render_text(summary, histories), end="")
    return 0
