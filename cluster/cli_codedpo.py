"""`execrl codedpo`: CodeDPO, self-verified preference pairs and DPO (methods/codedpo/).

    execrl codedpo score --matrix M.json [--json] [--damping D] [--tol T] [--max-iter N]
    execrl codedpo build --out DIR [--until STAGE] [KEY=VALUE ...]
    execrl codedpo run --out DIR [--name NAME] [--until STAGE] [KEY=VALUE ...]
    execrl codedpo experiment --out outputs/codedpo --seeds 0,1,2 [--variants ...] [KEY=VALUE ...]

KEY=VALUE overrides configs/codedpo.yaml's keys (`verify.damping=0.5`); the base execrl
config's keys go under `base.` (`base.rollout.max_new_tokens=96`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("codedpo", help="CodeDPO: self-generated programs and tests, mutual verification, "
                                              "preference pairs, DPO")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    score = sub.add_parser("score", help="score a pass matrix (rows programs, columns tests): both score "
                                         "vectors and the trusted set")
    score.add_argument("--matrix", required=True, help="JSON file: a list of rows of true/false (or 1/0), or "
                                                      "an object with a 'cells' list (matrix.jsonl rows)")
    score.add_argument("--json", action="store_true", help="print JSON instead of a table")
    score.add_argument("--damping", type=float, default=None, help="d (default: configs/codedpo.yaml verify.damping)")
    score.add_argument("--tol", type=float, default=None, help="convergence tolerance (default: the config's)")
    score.add_argument("--max-iter", type=int, default=None, help="iteration cap (default: the config's)")
    score.set_defaults(run=score_verb)
    for name, help_text in (("build", "the preference data: tasks, samples, pass matrices, scores, timing, pairs "
                                      "(finished stages are kept)"),
                            ("run", "build, then train (DPO or the SFT control) and evaluate")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", default=None, help="CodeDPO config (default: configs/codedpo.yaml)")
        p.add_argument("--out", required=True, help="output directory (one seed's shared stages)")
        p.add_argument("--name", default="codedpo", help="variant directory under --out (default: codedpo)")
        p.add_argument("--until", default="pairs" if name == "build" else "eval",
                       help="last stage: sft, samples, matrix, scores, timing, pairs, train, eval")
        p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
        p.set_defaults(run=run_verb)
    exp = sub.add_parser("experiment", help="SFT, SFT + CodeDPO and the ranking/training ablations over seeds; "
                                            "results.md")
    exp.add_argument("--config", default=None, help="CodeDPO config (default: configs/codedpo.yaml)")
    exp.add_argument("--out", default="outputs/codedpo", help="output directory (default: outputs/codedpo)")
    exp.add_argument("--seeds", default="0,1,2", help="comma-separated seeds or a range (default: 0,1,2)")
    exp.add_argument("--variants", default=None, help="comma-separated (default: every variant)")
    exp.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    exp.set_defaults(run=experiment_verb)


def read_matrix(path: str) -> list[list[bool]]:
    from methods.codedpo.verify import check_matrix

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--matrix {path}: no such file")
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"--matrix {path}: not JSON ({exc})") from None
    if isinstance(data, dict):
        data = data.get("cells")
    if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
        raise ValueError(f"--matrix {path}: expected a list of rows (one per program) of true/false cells, "
                         f"or an object with a 'cells' list")
    check_matrix(data, f"--matrix {path}")
    return [[bool(c) for c in row] for row in data]


def score_verb(args: argparse.Namespace) -> int:
    from methods.codedpo.config import load_codedpo_config
    from methods.codedpo.verify import self_verify, top_program, trusted_tests

    cfg = load_codedpo_config(None, [])[0].verify
    matrix = read_matrix(args.matrix)
    d = cfg.damping if args.damping is None else args.damping
    tol = cfg.tol if args.tol is None else args.tol
    max_iter = cfg.max_iter if args.max_iter is None else args.max_iter
    v = self_verify(matrix, d, tol, max_iter)
    trusted = trusted_tests(matrix, v.program_scores)
    best = top_program(v.program_scores)
    if args.json:
        print(json.dumps({**v.to_dict(), "damping": d, "top_program": best, "trusted_tests": trusted}))
        return 0
    print(f"{len(matrix)} programs x {len(matrix[0]) if matrix else 0} tests, d={d}: "
          f"{'converged' if v.converged else 'not converged'} after {v.iterations} iterations (tol {tol})")
    print("program  score        normalised  passes")
    for i, (s, n) in enumerate(zip(v.program_scores, v.normalised_programs)):
        print(f"{i:>7}  {s:<11.6g}  {n:<10.4f}  {sum(matrix[i])}{'  <- top' if i == best else ''}")
    print("test     score        normalised  passed by")
    for j, (s, n) in enumerate(zip(v.test_scores, v.normalised_tests)):
        print(f"{j:>7}  {s:<11.6g}  {n:<10.4f}  {sum(row[j] for row in matrix)}")
    print(f"trusted tests (passed by program {best}): {trusted}")
    return 0


def run_verb(args: argparse.Namespace) -> int:
    from methods.codedpo.build import Run
    from methods.codedpo.pipeline import run_codedpo
    from methods.codedpo.config import load_codedpo_config

    cfg, base = load_codedpo_config(args.config, args.overrides)
    if not args.name or "/" in args.name or args.name.startswith("."):
        raise ValueError(f"--name {args.name!r}: must be a plain directory name")
    results = run_codedpo(Run(cfg, base, Path(args.out), args.name, lambda line: print(line, flush=True)),
                          args.until)
    if results:
        print(json.dumps(results))
    return 0


def experiment_verb(args: argparse.Namespace) -> int:
    from cluster.experiment import parse_seeds
    from methods.codedpo.config import load_codedpo_config
    from methods.codedpo.experiment import VARIANTS, Request, run_experiment

    load_codedpo_config(args.config, args.overrides)  # a bad override fails here, named
    for item in args.overrides:
        if item.split("=", 1)[0] == "seed":
            raise ValueError(f"override {item!r}: set per run by the experiment (use --seeds)")
    variants = [v.strip() for v in (args.variants or ",".join(VARIANTS)).split(",") if v.strip()]
    request = Request(Path(args.out), parse_seeds(args.seeds), variants, args.config, tuple(args.overrides))
    summary = run_experiment(request, log=lambda line: print(line, flush=True))
    print((request.out / "results.md").read_text(), end="")
    for line in summary["failures"]:
        print(f"FAILED {line}")
    return 1 if summary["failures"] else 0
