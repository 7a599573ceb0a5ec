"""`execrl report RUN_DIR`: a training run's curves as a PNG (cluster/curves.py)."""

from __future__ import annotations

import argparse
import json


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("report", help="draw a training run's curves (reward, pass rate, CCCS, FGO, held-out)")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="an execrl train output directory (has metrics.jsonl)")
    parser.add_argument("--out", default=None, metavar="PNG", help="where to write (default: RUN_DIR/curves.png)")
    parser.add_argument("--json", action="store_true", help="also print one JSON object on the last line")
    parser.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from cluster.curves import draw_run

    out = draw_run(args.run_dir, args.out)
    print(f"curves: {out}")
    if args.json:
        print(json.dumps({"run_dir": args.run_dir, "curves": str(out)}))
    return 0
