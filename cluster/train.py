"""`execrl train`: SFT warm start, PPO with CCCS and FGO, evaluation before and after
(held-out, transfer, and a sample of the RL pool, all through `cluster.evaluate`).

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
from cluster.export import export_checkpoint, record_run_model
from cluster.metrics import MetricsLogger
from cluster.periodic_eval import PeriodicEval
from cluster.runtime import connect, preflight
from cluster.grounding import Rewarder
from cluster.storage import check_checkpoint_storage
from cluster.trainer import PPOIteration
from cluster.warmstart import warm_start
from core.settings import to_dict
from executors.pool import ExecutorPool
from learner.group import make_learner
from models.resolve import resolve_model

RL_EVAL_PROBLEMS = 128
EVAL_SETS = ("heldout", "transfer", "rl_pool")


def run_training(cfg: TrainConfig, resume: str | None = None, log=print) -> dict:
    sets = preflight(cfg)
    run_dir = Path(resume or cfg.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    base = resolve_model(cfg.model, seed=cfg.seed)
    connect(cfg)
    model_dir = warm_start(cfg, base, sets.get("sft", []), log)  # on a Ray task when the learner is on actors
    record_run_model(run_dir, model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    learner = make_learner(model_dir, cfg.learner, cfg.seed)  # first: its placement group reserves its GPUs
    try:
        log(check_checkpoint_storage(run_dir / "checkpoints", learner))
    except Exception:
        learner.close()
        raise
    executors = ExecutorPool(cfg.executor)
    rollout = RolloutPool(cfg.rollout, model_dir)
    logger = MetricsLogger(cfg, run_dir)
    iteration = PPOIteration.create(cfg, sets["rl"], tokenizer, rollout, executors, learner)
    iteration.log, iteration.sink, iteration.sample_sink = log, logger.log, logger.log_samples
    iteration.rewarder = _rewarder(cfg, iteration, model_dir, log)
    first = _resume(run_dir, learner, iteration, log) if resume else 0
    rl_sample = random.Random(cfg.seed).sample(sets["rl"], min(RL_EVAL_PROBLEMS, len(sets["rl"])))
    if cfg.eval_problems:
        sets["heldout"] = sets["heldout"][: cfg.eval_problems]
        sets["transfer"] = sets["transfer"][: cfg.eval_problems]
        rl_sample = rl_sample[: cfg.eval_problems]
    evals = Evaluations(cfg, tokenizer, rollout, executors,
                        {"heldout": sets["heldout"], "transfer": sets["transfer"], "rl_pool": rl_sample}, log)
    periodic = PeriodicEval(cfg, evals, logger, run_dir)
    try:
        before = evals.before_rl(run_dir, first)
        periodic.catch_up(first)
        _loop(cfg, iteration, first, run_dir, learner, log, periodic)
        after = evals.after_rl(run_dir)
        periodic.log_final(after)
        _export_policy(cfg, run_dir, learner, iteration, model_dir, log)
    finally:
        iteration.close()
        if iteration.rewarder is not None:
            iteration.rewarder.close()
        learner.close()
        logger.close()
        rollout.shutdown()
        executors.close()
    report = {f"{name}_{when}": figures.get(name) for name in EVAL_SETS
              for when, figures in (("before", before), ("after", after))}
    report["sandbox_errors"] = {when: figures.get("sandbox_errors", {}) for when, figures in
                                (("before", before), ("after", after))}
    (run_dir / "result.json").write_text(json.dumps(report, indent=2) + "\n")
    if cfg.iterations:
        _draw_curves(run_dir, log)
    log(summary_line(report, cfg.eval_samples))  # the run's last line
    return report


def _draw_curves(run_dir: Path, log) -> None:
    """`execrl report RUN_DIR` at the end of a run.  A plotting failure costs the picture,
    not the finished run (result.json is already written), so it is logged, not raised."""
    try:
        from cluster.curves import draw_run

        log(f"curves: {draw_run(run_dir)}")
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log(f"curves not drawn ({type(exc).__name__}: {exc}); try execrl report {run_dir}")


def summary_line(report: dict, samples: int) -> str:
    """The run's last line: every evaluated set before and after RL, and any samples that
    sandbox errors kept out of those figures."""
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    head = f"held-out pass@1 (sampled, {samples}/problem): SFT {fmt(report['heldout_before'])} -> " \
           f"RL {fmt(report['heldout_after'])}"
    rest = [f"{name} pass@1: {fmt(report[f'{key}_before'])} -> {fmt(report[f'{key}_after'])}"
            for key, name in (("transfer", "transfer"), ("rl_pool", "RL pool"))]
    errors = sum(c for figures in report["sandbox_errors"].values() for c in figures.values())
    excluded = f" ({errors} samples excluded: sandbox errors)" if errors else ""
    return "; ".join([head, *rest]) + excluded


def _loop(cfg, iteration, first, run_dir, learner, log, periodic: "PeriodicEval | None" = None) -> None:
    """The PPO iterations; after each, the periodic checkpoint and then the periodic
    evaluation (so a Ctrl-C inside an evaluation checkpoints after the trained step, and
    the resumed run evaluates that step first: `PeriodicEval.catch_up`)."""
    start = time.perf_counter()
    try:
        for step in range(first, cfg.iterations):
            metrics = iteration.run(step)  # logged to the metrics file by the iteration itself
            done = step + 1 - first
            eta = (time.perf_counter() - start) / done * (cfg.iterations - step - 1)
            log(f"iter {step + 1}/{cfg.iterations} | reward {metrics['reward']:+.3f} | pass {metrics['pass_rate']:.3f} "
                f"| at position 0 {metrics['curriculum/fraction_at_position_0']:.2f} "
                f"| masked {metrics['masked_token_fraction']:.2f} | {metrics['time/iteration']:.1f}s/it | ETA {eta:.0f}s")
            if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
                _checkpoint(run_dir, learner, iteration)
            if periodic is not None and periodic.due(step):
                periodic.evaluate(step)
    except KeyboardInterrupt:
        if iteration.interrupt.torn:
            log("interrupted inside a learner update: no checkpoint written (the last one stands)")
            raise
        iteration.settle()  # off policy: the prefetched batch is saved with its samples
        path = _checkpoint(run_dir, learner, iteration)
        log(f"interrupted: checkpoint saved at {path}; continue with --resume {run_dir}")
        raise


def _rewarder(cfg, iteration, model_dir: str, log) -> "Rewarder | None":
    """The reward's terms beyond StepCoder's (None for reward.name: stepcoder), said as they run."""
    rewarder = Rewarder.create(cfg.reward, iteration.problems, model_dir, cfg.seed)
    if rewarder is not None:
        terms = ", ".join(f"{t} x{w:g}" for t, w in rewarder.terms.items())
        extra = (f"; discriminator actor ({cfg.reward.discriminator.num_cpus:g} CPU, "
                 f"{cfg.reward.discriminator.num_gpus:g} GPU) from {cfg.reward.discriminator.model or model_dir}"
                 if rewarder.discriminator is not None else "")
        log(f"reward {cfg.reward.name}: {terms}; static checks {'on' if cfg.executor.static_checks else 'off'}{extra}")
    return rewarder


def _checkpoint(run_dir: Path, learner, iteration) -> Path:
    """At the iteration's next step: a batch the learner has trained on counts as done
    (what it still owes, sync and curriculum report, is in the state), one it has not
    is saved as drawn (and collected, if it was)."""
    path = learner.save_checkpoint(run_dir / "checkpoints", iteration.next_step, iteration.state_dict())
    if iteration.rewarder is not None:
        iteration.rewarder.save(path)  # the discriminator's weights, optimizer and data beside the learner's
    return path


def _export_policy(cfg, run_dir: Path, learner, iteration, model_dir: str, log) -> Path:
    """The trained policy in Hugging Face format (run_dir/hf), from the final checkpoint
    (written now unless the last iteration's periodic one is it): what `execrl eval
    --model`, transformers and vLLM load."""
    done = cfg.iterations
    periodic = cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done > 0
    step = (run_dir / "checkpoints" / f"step_{done:06d}") if periodic else None
    if step is None or not (step / "policy").is_dir():
        step = _checkpoint(run_dir, learner, iteration)
    out = export_checkpoint(step, model_dir, run_dir / "hf")
    log(f"trained policy (Hugging Face format, safetensors): {out}")
    return out


def _resume(run_dir: Path, learner, iteration, log) -> int:
    resumed = learner.load_checkpoint(run_dir / "checkpoints")
    if iteration.rewarder is not None:
        iteration.rewarder.load(resumed.path)
    finished = iteration.resume(resumed.client_state, resumed.step)
    if finished is not None:  # trained before the interrupt: its sync, report and metrics are done now
        log(f"iteration {finished + 1} was trained before the interrupt; synced and reported now")
    log(f"resumed from {resumed.path} at iteration {resumed.step}")
    return resumed.step


class Evaluations:
    """Pass@1 of each evaluation set (held-out, transfer, RL-pool sample) with the rollout
    actors' current weights, all through one path (`cluster.evaluate`)."""

    def __init__(self, cfg, tokenizer, rollout, executors, sets: dict[str, list], log) -> None:
        self.cfg, self.tokenizer, self.rollout, self.executors = cfg, tokenizer, rollout, executors
        self.sets, self.log = sets, log

    def before_rl(self, run_dir: Path, first: int) -> dict:
        """The SFT model's figures: measured at the start of a run and kept in the run
        directory, so a resumed run reports them rather than its resumed policy's."""
        if not self.cfg.eval_before_rl:
            self.log("before RL: not evaluated (eval_before_rl: false)")
            return {}
        path = run_dir / "eval_before_rl.json"
        if first == 0 or not path.is_file():
            if first:
                self.log(f"no SFT evaluation in {run_dir}: measuring the policy resumed at iteration {first}")
            figures = self.run("before RL" if first == 0 else f"at resume (iteration {first})")
            figures["iteration"] = first
            path.write_text(json.dumps(figures, indent=2) + "\n")
            return figures
        figures = json.loads(path.read_text())
        self.log(f"before RL (from {path}): " + ", ".join(
            f"{name} pass@1 {figures[name]:.3f}" for name in EVAL_SETS if figures.get(name) is not None))
        return figures

    def after_rl(self, run_dir: Path) -> dict:
        """The trained policy's figures, kept beside the SFT model's (eval_after_rl.json,
        with each set's report: by difficulty and per problem)."""
        figures = self.run("after RL")
        figures["iteration"] = self.cfg.iterations
        (run_dir / "eval_after_rl.json").write_text(json.dumps(figures, indent=2) + "\n")
        return figures

    def heldout(self, when: str) -> dict:
        """Held-out only (the periodic evaluation during RL)."""
        return self.run(when, sets=("heldout",))

    def run(self, when: str, sets: tuple[str, ...] = EVAL_SETS) -> dict:
        """pass@1 per set (None for an empty set), sandbox errors per set, and each set's
        full report (`reports`: by difficulty, per problem, problems without a score)."""
        kwargs = dict(n=self.cfg.eval_samples, ks=[1], sampling=self.cfg.rollout, seed=self.cfg.seed + 7)
        titles = {"heldout": "held-out", "transfer": "transfer", "rl_pool": "RL pool sample"}
        figures: dict = {"sandbox_errors": {}, "reports": {}}
        for name in sets:
            problems = self.sets.get(name) or []
            if not problems:
                figures[name] = None
                continue
            report = evaluate(problems, self.tokenizer, self.rollout, self.executors, **kwargs)
            self.log(report.summary(f"{titles[name]} {when}:"))
            figures[name] = report.pass_at[1]
            figures["sandbox_errors"][name] = report.sandbox_errors
            figures["reports"][name] = report.to_dict()
        return figures

