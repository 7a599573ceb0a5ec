"""Stage 7: training on the learner, from the model that sampled the data.

- dpo (the paper): learner/dpo.py's DPOTrainer, its reference a frozen copy of the start
  model (reference log-probabilities of every chosen and rejected program are computed
  by that engine in each step), beta from train.beta.  Each step draws train.batch_size
  pairs (a seeded shuffle, epoch after epoch).
- sft (the control): learner/sft.py on each problem's top-ranked program, over the same
  problems that have pairs, with the same steps, lr and batch size.
Rows are (prompt ids, response ids + EOS): the prompt is curriculum/prompt.py's, the one
sampling used, and the response is the program after the prompt's code prefix, so the
loss (and DPO's log-prob sums) covers only what the model wrote.  The model is exported
in Hugging Face format (learner/export.py), staged and renamed.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from cluster.config import TrainConfig
from core.problem import Problem
from curriculum.prompt import build_prompt
from learner.batches import DPOBatch, SFTBatch
from learner.export import export_hf

from .config import CodeDPOConfig


def response_ids(problem: Problem, program: str, tokenizer, fmt) -> tuple[list[int], list[int]]:
    prompt = build_prompt(problem, tokenizer, fmt=fmt)
    if not program.startswith(prompt.prefix):
        raise ValueError(f"problem {problem.id}: a sampled program does not start with its prompt's code prefix")
    rest = program[len(prompt.prefix):]
    return list(prompt.input_ids), tokenizer(rest, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]


def top_programs(samples: Sequence[dict], scores: Sequence[dict], with_pairs: set[str]) -> list[tuple[str, str]]:
    """(problem id, its top-ranked program) for the problems that have pairs."""
    out = []
    for sample, score in zip(samples, scores):
        if sample["problem_id"] in with_pairs and sample["programs"]:
            best = max(range(len(score["scores"])), key=lambda i: (score["scores"][i], -i))
            out.append((sample["problem_id"], sample["programs"][best]))
    return out


class Epochs:
    """Seeded shuffles of `n` items, handed out `size` at a time, epoch after epoch."""

    def __init__(self, n: int, size: int, seed: int) -> None:
        self.n, self.size, self.rng, self.queue = n, size, random.Random(seed), []

    def next(self) -> list[int]:
        while len(self.queue) < self.size:
            order = list(range(self.n))
            self.rng.shuffle(order)
            self.queue += order
        batch, self.queue = self.queue[:self.size], self.queue[self.size:]
        return batch


def train(cfg: CodeDPOConfig, base: TrainConfig, start_model: str, problems: dict[str, Problem],
          pairs: Sequence[dict], tops: Sequence[tuple[str, str]], target: Path, tokenizer,
          log: Callable[[str], None] = print) -> dict:
    stage, fmt = cfg.train, base.rollout.prompt_style()
    start, losses = time.perf_counter(), []
    if stage.method == "dpo":
        from learner.dpo import DPOTrainer

        triples = []
        for pair in pairs:
            p = problems[pair["problem_id"]]
            prompt, chosen = response_ids(p, pair["chosen"], tokenizer, fmt)
            triples.append((prompt, chosen, response_ids(p, pair["rejected"], tokenizer, fmt)[1]))
        if not triples:
            raise ValueError("train: no preference pairs to train DPO on (pairs.json); see samples.json and "
                             "scores.json for why")
        trainer = DPOTrainer.from_pretrained(start_model, base.learner, beta=stage.beta, lr=stage.lr,
                                             batch_size=stage.batch_size)
        engine, order, accuracy = trainer.policy, Epochs(len(triples), stage.batch_size, cfg.seed), []
        for step in range(stage.steps):
            rows = [triples[i] for i in order.next()]
            stats = trainer.step(DPOBatch.from_triples([r[0] for r in rows], [r[1] for r in rows],
                                                       [r[2] for r in rows], tokenizer.pad_token_id))
            losses.append(stats.loss)
            accuracy.append(stats.accuracy)
            if step % 10 == 0 or step == stage.steps - 1:
                log(f"dpo step {step + 1}/{stage.steps} loss {stats.loss:.4f} reward chosen "
                    f"{stats.reward_chosen:+.3f} rejected {stats.reward_rejected:+.3f} accuracy {stats.accuracy:.2f} "
                    f"({time.perf_counter() - start:.0f}s)")
        extra = {"pairs": len(triples), "last_accuracy": accuracy[-1] if accuracy else None}
    else:
        from learner.sft import SFTTrainer

        rows_all = [response_ids(problems[pid], program, tokenizer, fmt) for pid, program in tops]
        if not rows_all:
            raise ValueError("train: no top-ranked programs to train SFT on (no problem has pairs)")
        learner = replace(base.learner, sft=replace(base.learner.sft, steps=stage.steps, lr=stage.lr,
                                                    batch_size=stage.batch_size, warmup_steps=0))
        trainer = SFTTrainer.from_pretrained(start_model, learner)
        engine, order = trainer.engine, Epochs(len(rows_all), stage.batch_size, cfg.seed)
        for step in range(stage.steps):
            rows = [rows_all[i] for i in order.next()]
            stats = trainer.step(SFTBatch.from_pairs([r[0] for r in rows], [r[1] for r in rows],
                                                     tokenizer.pad_token_id))
            losses.append(stats.loss)
            if step % 10 == 0 or step == stage.steps - 1:
                log(f"sft-top step {step + 1}/{stage.steps} loss {stats.loss:.4f} "
                    f"({time.perf_counter() - start:.0f}s)")
        extra = {"sft_rows": len(rows_all)}
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    export_hf(engine, staging, start_model)
    staging.rename(target)
    return {"method": stage.method, "steps": stage.steps, "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None, "seconds": round(time.perf_counter() - start, 1), **extra}
