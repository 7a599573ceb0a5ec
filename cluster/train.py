"""`execrl train`: SFT warm start, PPO with CCCS and FGO, evaluation before and after.

Runs the same way on a laptop (a local Ray started here) and on a cluster (joined
through `cluster.address` / RAY_ADDRESS, e.g. under `ray job submit`).
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import yaml
from transformers import AutoTokenizer

from actors.rollout_pool import RolloutPool
from cluster.config import TrainConfig
from cluster.evaluate import evaluate
from cluster.metrics import MetricsLogger
from cluster.runtime import connect, preflight
from cluster.trainer import PPOIteration
from cluster.warmstart import warm_start
from core.settings import to_dict
from executors.pool import ExecutorPool
from learner.group import make_learner
from models.resolve import resolve_model

RL_EVAL_PROBLEMS = 128


def run_training(cfg: TrainConfig, resume: str | None = None, log=print) -> dict:
    sets = preflight(cfg)
    run_dir = Path(resume or cfg.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    base = resolve_model(cfg.model, seed=cfg.seed)
    connect(cfg)
    model_dir = warm_start(cfg, base, sets.get("sft", []), log)  # on a Ray task when the learner is on actors
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    learner = make_learner(model_dir, cfg.learner)  # first: its placement group reserves its GPUs
    executors = ExecutorPool(cfg.executor)
    rollout = RolloutPool(cfg.rollout, model_dir)
    logger = MetricsLogger(cfg, run_dir)
    iteration = PPOIteration.create(cfg, sets["rl"], tokenizer, rollout, executors, learner)
    first = _resume(run_dir, learner, iteration, rollout, log) if resume else 0
    rl_sample = random.Random(cfg.seed).sample(sets["rl"], min(RL_EVAL_PROBLEMS, len(sets["rl"])))
    if cfg.eval_problems:
        sets["heldout"] = sets["heldout"][: cfg.eval_problems]
        rl_sample = rl_sample[: cfg.eval_problems]
    evals = Evaluations(cfg, tokenizer, rollout, executors, sets["heldout"], rl_sample, log)
    try:
        before = evals.before_rl(run_dir, first)
        _loop(cfg, iteration, first, run_dir, learner, logger, log)
        after = evals.run("after RL")
    finally:
        iteration.close()
        learner.close()
        logger.close()
        rollout.shutdown()
        executors.close()
    report = {"heldout_before": before["heldout"], "heldout_after": after["heldout"],
              "rl_pool_before": before["rl_pool"], "rl_pool_after": after["rl_pool"]}
    (run_dir / "result.json").write_text(json.dumps(report, indent=2) + "\n")
    log(f"held-out pass@1 (sampled, {cfg.eval_samples}/problem): SFT {report['heldout_before']:.3f} -> "
        f"RL {report['heldout_after']:.3f}; RL pool pass@1: {report['rl_pool_before']:.3f} -> {report['rl_pool_after']:.3f}")
    return report


def _loop(cfg, iteration, first, run_dir, learner, logger, log) -> None:
    start = time.perf_counter()
    step = first
    try:
        for step in range(first, cfg.iterations):
            metrics = iteration.run(step)
            logger.log(step, metrics)
            done = step + 1 - first
            eta = (time.perf_counter() - start) / done * (cfg.iterations - step - 1)
            log(f"iter {step + 1}/{cfg.iterations} | reward {metrics['reward']:+.3f} | pass {metrics['pass_rate']:.3f} "
                f"| at position 0 {metrics['curriculum/fraction_at_position_0']:.2f} "
                f"| masked {metrics['masked_token_fraction']:.2f} | {metrics['time/iteration']:.1f}s/it | ETA {eta:.0f}s")
            if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
                _checkpoint(run_dir, learner, iteration, step + 1)
    except KeyboardInterrupt:  # the interrupted step's batch is saved as drawn, not yet trained on
        path = _checkpoint(run_dir, learner, iteration, step)
        log(f"interrupted: checkpoint saved at {path}; continue with --resume {run_dir}")
        raise


def _checkpoint(run_dir: Path, learner, iteration, next_step: int) -> Path:
    return learner.save_checkpoint(run_dir / "checkpoints", next_step, iteration.state_dict())


def _resume(run_dir: Path, learner, iteration, rollout, log) -> int:
    resumed = learner.load_checkpoint(run_dir / "checkpoints")
    iteration.load_state_dict(resumed.client_state)
    rollout.sync_from(learner)
    log(f"resumed from {resumed.path} at iteration {resumed.step}")
    return resumed.step


class Evaluations:
    """Held-out and RL-pool pass@1 with the rollout actors' current weights."""

    def __init__(self, cfg, tokenizer, rollout, executors, heldout, rl_sample, log) -> None:
        self.cfg, self.tokenizer, self.rollout, self.executors = cfg, tokenizer, rollout, executors
        self.heldout, self.rl_sample, self.log = heldout, rl_sample, log

    def before_rl(self, run_dir: Path, first: int) -> dict:
        """The SFT model's figures: measured at the start of a run and kept in the run
        directory, so a resumed run reports them rather than its resumed policy's."""
        path = run_dir / "eval_before_rl.json"
        if first == 0 or not path.is_file():
            if first:
                self.log(f"no SFT evaluation in {run_dir}: measuring the policy resumed at iteration {first}")
            figures = self.run("before RL" if first == 0 else f"at resume (iteration {first})")
            figures["iteration"] = first
            path.write_text(json.dumps(figures, indent=2) + "\n")
            return figures
        figures = json.loads(path.read_text())
        self.log(f"before RL (from {path}): held-out pass@1 {figures['heldout']:.3f}, "
                 f"RL pool pass@1 {figures['rl_pool']:.3f}")
        return figures

    def run(self, when: str) -> dict:
        kwargs = dict(n=self.cfg.eval_samples, ks=[1], sampling=self.cfg.rollout, seed=self.cfg.seed + 7)
        held = evaluate(self.heldout, self.tokenizer, self.rollout, self.executors, **kwargs)
        pool = evaluate(self.rl_sample, self.tokenizer, self.rollout, self.executors, **kwargs)
        self.log(held.summary(f"held-out {when}:"))
        self.log(pool.summary(f"RL pool sample {when}:"))
        return {"heldout": held.pass_at[1], "rl_pool": pool.pass_at[1]}
