"""The paper's SFT stage: fine-tune the base model on canonical solutions before RL.

The result is cached under the model cache keyed by everything that determines it, so
a second `execrl train` starts RL at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from transformers import AutoTokenizer

from cluster.config import TrainConfig
from core.problem import Problem
from core.settings import to_dict
from curriculum.prompt import PromptFormat, build_prompt, chat_fence_ids
from learner.batches import SFTBatch
from learner.export import export_hf
from learner.sft import SFTTrainer
from models.resolve import model_cache


# The learner settings the SFT engine reads (besides learner.sft): part of the cache key.
SFT_ENGINE_KEYS = ("zero_stage", "precision", "micro_batch_size", "weight_decay", "grad_clip")


def warm_start(cfg: TrainConfig, base_model: str, problems: list[Problem], log=print) -> str:
    """The SFT model's directory (made now, or found in the cache).  With the learner on
    Ray actors (`learner.num_workers` >= 1) the SFT runs as a Ray task with one learner
    worker's CPUs and GPUs, not in the driver (which on a GPU cluster has no GPU); it
    must then run before the learner group reserves those GPUs, and the model cache must
    be on storage the driver and the task's node share."""
    if cfg.learner.sft.steps == 0:
        return base_model
    engine = {k: getattr(cfg.learner, k) for k in SFT_ENGINE_KEYS}
    parts = {"base": _spelled_once(base_model), "sft": to_dict(cfg.learner.sft), "engine": engine, "data": cfg.data.sft,
             "data_seed": cfg.data.seed, "seed": cfg.seed, "problems": len(problems)}
    fmt = cfg.rollout.prompt_style()
    if fmt.kind != "plain" and fmt.uses_chat(AutoTokenizer.from_pretrained(base_model)):  # plain: keys as they were
        parts["prompt"] = asdict(fmt)
    key = json.dumps(parts, sort_keys=True)
    target = model_cache(cfg.model) / f"sft-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if (target / "config.json").is_file():
        log(f"SFT model found in cache: {target}")
        return str(target)
    if cfg.learner.num_workers < 1:
        train_sft(cfg, base_model, problems, str(target), log)
        return str(target)
    import ray

    task = ray.remote(num_cpus=cfg.learner.cpus_per_worker, num_gpus=cfg.learner.gpus_per_worker)(_train_sft_task)
    for line in ray.get(task.remote(cfg, base_model, problems, str(target))):
        log(line)
    if not (target / "config.json").is_file():
        raise RuntimeError(f"the SFT task finished but {target} is not visible here: model.cache_dir must be on "
                           f"storage shared by the driver and the learner's nodes")
    return str(target)


def _train_sft_task(cfg: TrainConfig, base_model: str, problems: list[Problem], target: str) -> list[str]:
    """`train_sft` in a Ray task; its log lines come back with the result."""
    import os
    import socket

    lines = [f"SFT runs in a Ray task (pid {os.getpid()} on {socket.gethostname()})"]
    train_sft(cfg, base_model, problems, target, lines.append)
    return lines


def train_sft(cfg: TrainConfig, base_model: str, problems: list[Problem], target: str, log=print) -> None:
    """Fine-tune `base_model` on the problems' canonical solutions and save it at `target`
    (written beside it first and renamed, so a crash never leaves a half model there)."""
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    fmt = cfg.rollout.prompt_style()
    pairs = [_pair(p, tokenizer, fmt) for p in problems if p.canonical_solution]
    trainer = SFTTrainer.from_pretrained(base_model, cfg.learner)
    rng = random.Random(cfg.seed)
    size, start = cfg.learner.sft.batch_size, time.perf_counter()
    for step in range(cfg.learner.sft.steps):
        rows = rng.sample(pairs, min(size, len(pairs)))
        stats = trainer.step(SFTBatch.from_pairs([r[0] for r in rows], [r[1] for r in rows], tokenizer.pad_token_id))
        if step % 50 == 0 or step == cfg.learner.sft.steps - 1:
            log(f"sft step {step + 1}/{cfg.learner.sft.steps} loss {stats.loss:.3f} "
                f"({time.perf_counter() - start:.0f}s)")
    final = Path(target)
    staging = final.with_name(f"{final.name}.partial-{os.getpid()}")  # one per writer: two runs may race
    shutil.rmtree(staging, ignore_errors=True)
    export_hf(trainer.engine, staging, base_model)
    try:
        staging.rename(final)
    except OSError:
        if not (final / "config.json").is_file():
            raise
        shutil.rmtree(staging, ignore_errors=True)  # another run of the same key finished first: same model
        log(f"SFT model {final} was written meanwhile by another run; using it")


def _spelled_once(model: str) -> str:
    """A local model directory by its absolute path, so `outputs/cache/...` and
    `/work/outputs/cache/...` (the same model) share one SFT cache entry; a hub id as is."""
    path = Path(model)
    return str(path.resolve()) if path.exists() else model


def _pair(problem: Problem, tokenizer, fmt: PromptFormat) -> tuple[list[int], list[int]]:
    """Prompt at position 0 (masked out of the loss) and the rest of the solution + EOS.

    In the chat format the target is the assistant's Markdown answer, a fenced code
    block: the opening fence (not in the prompt here, so the model learns to open the
    block itself; tokenised as the rollout pre-fills it), the solution, the closing
    fence, EOS.  Rollouts pre-fill the opening fence and stop at the closing one."""
    prompt = build_prompt(problem, tokenizer, fmt=fmt)
    rest = problem.canonical_solution[len(prompt.prefix):]
    if not prompt.chat:
        return list(prompt.input_ids), tokenizer(rest, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    lo, _ = prompt.prefix_span
    fence = chat_fence_ids(tokenizer, fmt.fence)
    head = list(prompt.input_ids[: lo - len(fence)])
    close = ("" if (prompt.prefix + rest).endswith("\n") else "\n") + fmt.closing_fence
    body = [list(tokenizer(text, add_special_tokens=False).input_ids) if text else []
            for text in (prompt.prefix, rest, close)]  # split where the rollout's prompt splits
    return head, fence + body[0] + body[1] + body[2] + [tokenizer.eos_token_id]
