"""The paper's SFT stage: fine-tune the base model on canonical solutions before RL.

The result is cached under the model cache keyed by everything that determines it, so
a second `execrl train` starts RL at once.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time

from transformers import AutoTokenizer

from cluster.config import TrainConfig
from core.problem import Problem
from core.settings import to_dict
from curriculum.prompt import build_prompt
from learner.batches import SFTBatch
from learner.export import export_hf
from learner.sft import SFTTrainer
from models.resolve import model_cache


# The learner settings the SFT engine reads (besides learner.sft): part of the cache key.
SFT_ENGINE_KEYS = ("zero_stage", "precision", "micro_batch_size", "weight_decay", "grad_clip")


def warm_start(cfg: TrainConfig, base_model: str, problems: list[Problem], log=print) -> str:
    """The SFT model's directory (made now, or found in the cache)."""
    if cfg.learner.sft.steps == 0:
        return base_model
    engine = {k: getattr(cfg.learner, k) for k in SFT_ENGINE_KEYS}
    key = json.dumps({"base": base_model, "sft": to_dict(cfg.learner.sft), "engine": engine, "data": cfg.data.sft,
                      "data_seed": cfg.data.seed, "seed": cfg.seed, "problems": len(problems)}, sort_keys=True)
    target = model_cache(cfg.model) / f"sft-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if (target / "config.json").is_file():
        log(f"SFT model found in cache: {target}")
        return str(target)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    pairs = [_pair(p, tokenizer) for p in problems if p.canonical_solution]
    trainer = SFTTrainer.from_pretrained(base_model, cfg.learner)
    rng = random.Random(cfg.seed)
    size, start = cfg.learner.sft.batch_size, time.perf_counter()
    for step in range(cfg.learner.sft.steps):
        rows = rng.sample(pairs, min(size, len(pairs)))
        stats = trainer.step(SFTBatch.from_pairs([r[0] for r in rows], [r[1] for r in rows], tokenizer.pad_token_id))
        if step % 50 == 0 or step == cfg.learner.sft.steps - 1:
            log(f"sft step {step + 1}/{cfg.learner.sft.steps} loss {stats.loss:.3f} "
                f"({time.perf_counter() - start:.0f}s)")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    export_hf(trainer.engine, staging, base_model)
    staging.rename(target)
    return str(target)


def _pair(problem: Problem, tokenizer) -> tuple[list[int], list[int]]:
    """Prompt at position 0 (masked out of the loss) and the rest of the solution + EOS."""
    prompt = build_prompt(problem, tokenizer)
    rest = problem.canonical_solution[len(prompt.prefix):]
    target = tokenizer(rest, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    return list(prompt.input_ids), target
