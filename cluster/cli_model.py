"""`execrl model init`: make a tiny random-init model and tokenizer locally."""

from __future__ import annotations

import argparse
import json
import time

from models.sizes import ARCHS, MANIFEST, SIZES


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("model", help="make and inspect models")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = sub.add_parser("init", help="train a byte-level BPE tokenizer on local text and save a random-init causal LM")
    init.add_argument("--out", required=True, help="directory to write (Hugging Face format)")
    init.add_argument("--size", choices=sorted(SIZES), default="tiny", help="tiny ~1M parameters, small ~7M")
    init.add_argument("--arch", choices=ARCHS, default="llama")
    init.add_argument("--tied-embeddings", action="store_true", help="share input and output embeddings")
    init.add_argument("--seed", type=int, default=0)
    init.add_argument("--chat", action="store_true",
                      help="give the tokenizer ChatML turn markers and a chat template (an instruct model's format)")
    init.set_defaults(run=run_init)


def run_init(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    from models.tiny import init_model

    out = init_model(args.out, args.size, args.arch, args.tied_embeddings, args.seed, chat=args.chat)
    manifest = json.loads((out / MANIFEST).read_text())
    print(f"wrote {args.size} {args.arch} model ({manifest['parameters']:,} parameters, "
          f"vocab {manifest['vocab_size']}, tied={args.tied_embeddings}, chat template={args.chat}) to {out} "
          f"in {time.perf_counter() - start:.1f}s")
    return 0
