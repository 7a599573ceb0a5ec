"""`execrl export CHECKPOINT --out DIR`: a Hugging Face model from a training checkpoint
(cluster/export.py does the work)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("export", help="write a checkpoint's policy as a Hugging Face model (safetensors)")
    parser.add_argument("checkpoint", metavar="CHECKPOINT",
                        help="a run directory, its checkpoints/ directory or one checkpoints/step_* directory")
    parser.add_argument("--out", required=True, help="directory to write the model and tokenizer to")
    parser.add_argument("--model", default=None, metavar="DIR",
                        help="the model the run trained (its config and tokenizer); default: the one "
                             "`execrl train` recorded in the run directory (model.json)")
    parser.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    from cluster.export import export_checkpoint, find_step, model_of_run

    step = find_step(Path(args.checkpoint))
    model_dir = args.model or model_of_run(step)
    out = export_checkpoint(step, model_dir, args.out)
    print(f"exported {step} as a Hugging Face model to {out}")
    return 0


