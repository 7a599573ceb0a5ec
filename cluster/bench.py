"""`execrl bench loop`: the training loop's phases on the tiny default, timed.

One model, one Ray instance, three configurations run back to back in the same process:
on-policy with 1 executor worker, on-policy with 2, and one step off policy with 2.  For
each: seconds per phase (generate, execution left after generation ends, learn, sync,
waiting for the prefetched batch), the share of execution hidden behind generation
(overlap), and samples per second over whole iterations.  The ratios compare the
configurations with each other, measured in the same run.
"""

from __future__ import annotations

from dataclasses import replace
from statistics import mean

from transformers import AutoTokenizer

from actors.rollout_pool import RolloutPool
from cluster.config import TrainConfig
from cluster.runtime import connect, preflight
from cluster.trainer import PPOIteration
from cluster.warmstart import warm_start
from executors.pool import ExecutorPool
from learner.group import make_learner
from models.resolve import resolve_model

PHASES = ("generate", "execute_after_generate", "learn", "sync", "wait_for_next_batch", "iteration")
CONFIGURATIONS = (("on-policy, 1 executor worker", 1, False), ("on-policy, 2 executor workers", 2, False),
                  ("one step off policy, 2 workers", 2, True))


def run_bench(cfg: TrainConfig, iterations: int = 3, log=print) -> dict:
    """Time `iterations` PPO iterations (after one warm-up) per configuration."""
    sets = preflight(cfg)
    connect(cfg)
    model_dir = warm_start(cfg, resolve_model(cfg.model, seed=cfg.seed), sets.get("sft", []), log)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    learner = make_learner(model_dir, cfg.learner)  # first, as in training: a learner group reserves its GPUs
    rollout = RolloutPool(cfg.rollout, model_dir)
    report = {"iterations": iterations, "problems_per_iteration": cfg.problems_per_iteration,
              "samples_per_prompt": cfg.rollout.samples_per_prompt, "configurations": []}
    try:
        for name, workers, off_policy in CONFIGURATIONS:
            log(f"timing: {name}")
            run_cfg = replace(cfg, iterations=iterations + 1, one_step_off_policy=off_policy,
                              executor=replace(cfg.executor, slots_per_actor=workers))
            rows = _time_configuration(run_cfg, sets["rl"], tokenizer, rollout, learner)
            report["configurations"].append({"name": name, "workers": workers, "off_policy": off_policy,
                                             **_summarise(rows[1:], run_cfg)})
    finally:
        learner.close()
        rollout.shutdown()
    on1, on2, off2 = (c["samples_per_s"] for c in report["configurations"])
    report["speedup_2_vs_1_workers"] = on2 / on1
    report["speedup_off_vs_on_policy"] = off2 / on2
    return report


def _time_configuration(cfg: TrainConfig, problems, tokenizer, rollout, learner) -> list[dict]:
    executors = ExecutorPool(cfg.executor)
    iteration = PPOIteration.create(cfg, problems, tokenizer, rollout, executors, learner)
    try:
        return [iteration.run(step) for step in range(cfg.iterations)]
    finally:
        iteration.close()
        executors.close()


def _summarise(rows: list[dict], cfg: TrainConfig) -> dict:
    samples = cfg.problems_per_iteration * cfg.rollout.samples_per_prompt
    seconds = {phase: mean(r.get(f"time/{phase}", 0.0) for r in rows) for phase in PHASES}
    return {"seconds": seconds, "overlap": mean(r["overlap"] for r in rows),
            "policy_lag": mean(r["policy_lag"] for r in rows),
            "samples_per_s": samples / seconds["iteration"]}


def format_table(report: dict) -> str:
    head = (f"loop: tiny model, {report['problems_per_iteration']} problems x {report['samples_per_prompt']} samples "
            f"per iteration, {report['iterations']} timed iterations per configuration (seconds per iteration)")
    columns = ["generate", "exec after", "learn", "sync", "wait next", "iteration", "overlap", "lag", "samples/s"]
    width = max(len(c["name"]) for c in report["configurations"])
    lines = [head, f"  {'configuration':<{width}}  " + "  ".join(f"{c:>10}" for c in columns)]
    for c in report["configurations"]:
        cells = [f"{c['seconds'][p]:.2f}" for p in PHASES] + [f"{c['overlap']:.2f}", f"{c['policy_lag']:.1f}",
                                                             f"{c['samples_per_s']:.1f}"]
        lines.append(f"  {c['name']:<{width}}  " + "  ".join(f"{v:>10}" for v in cells))
    lines.append(f"  throughput, 2 vs 1 executor workers: {report['speedup_2_vs_1_workers']:.2f}x")
    lines.append(f"  throughput, one step off vs on policy (2 workers): {report['speedup_off_vs_on_policy']:.2f}x")
    return "\n".join(lines)
