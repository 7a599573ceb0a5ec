"""Ctrl-C anywhere in an iteration, then --resume: every batch is trained exactly once and
the run ends in the state an uninterrupted run reaches (same samples, rewards, losses,
curriculum, data order and weights), on policy and one step off policy.

Real tiny model, Ray rollout and executor actors and a DeepSpeed learner; the driver loop
and resume are train.py's own.  The interrupt is a KeyboardInterrupt raised from the
iteration's phase hook, or a real SIGINT sent while the weight sync is running."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import sys
import threading
import traceback

import pytest
import torch

from cluster.config import load_config
from actors.discriminator import Candidate
from cluster.grounding import Rewarder
from cluster.metrics import MetricsLogger
from cluster.train import _loop, _resume
from cluster.trainer import PPOIteration
from problems.load import load_problems

ITERATIONS = 3
BASE = ["problems_per_iteration=4", "rollout.samples_per_prompt=4", "rollout.max_new_tokens=24",
        "rollout.batch_size=16", "learner.minibatch_size=8", "learner.micro_batch_size=8", "executor.num_actors=1",
        f"iterations={ITERATIONS}", "checkpoint_every=0", "wandb.mode=disabled"]
RLCF = ["reward.name=rlcf", "reward.discriminator.num_cpus=0", "reward.discriminator.max_tokens=64",
        "reward.discriminator.steps=2", "reward.discriminator.heldout_fraction=0.25"]
PROBES = [Candidate("p", "Print the sum.", "print(sum(map(int, input().split())))",
                    "print(sum(map(int, input().split())))"), Candidate("p", "Print the sum.", "x", "print(1 +")]
# Metrics that depend on the clock or on how busy the machine is.
TIMING = ("time/", "tokens_per_second", "overlap", "executor_queue_depth")


@pytest.fixture(scope="module")
def rig(ray_session, tiny_model_dir, tmp_path_factory):
    from transformers import AutoTokenizer

    from actors.rollout_pool import RolloutPool
    from executors.pool import ExecutorPool
    from learner.group import make_learner

    cfg = load_config(None, BASE)
    rollout = RolloutPool(cfg.rollout, str(tiny_model_dir))
    executors = ExecutorPool(cfg.executor)
    learner = make_learner(tiny_model_dir, cfg.learner)
    rig = {"rollout": rollout, "executors": executors, "learner": learner,
           "tokenizer": AutoTokenizer.from_pretrained(tiny_model_dir),
           "problems": load_problems("bundled:rl:0").problems[:16],
           "init": tmp_path_factory.mktemp("init") / "checkpoints", "model_dir": str(tiny_model_dir)}
    fresh = PPOIteration.create(cfg, rig["problems"], rig["tokenizer"], rollout, executors, learner)
    learner.save_checkpoint(rig["init"], 0, fresh.state_dict())  # every run starts from here
    fresh.close()
    yield rig
    learner.close()
    rollout.shutdown()
    executors.close()


def train(rig, cfg, run_dir, interrupt: tuple[str, int] | None = None, rewarded: bool = False) -> dict:
    """Run `cfg.iterations` from the common start, interrupted once at (phase, step) and
    resumed in a new iteration object (a new process's state); what every update saw.
    `rewarded`: with cfg.reward's Rewarder (a new discriminator actor per attempt, as a
    new process would start), whose initial state joins the common start."""
    shutil.copytree(rig["init"], run_dir / "checkpoints")
    make_rewarder = (lambda: Rewarder.create(cfg.reward, {p.id: p for p in rig["problems"]}, rig["model_dir"],
                                             cfg.seed)) if rewarded else (lambda: None)
    if rewarded:
        first_rewarder = make_rewarder()
        first_rewarder.save(run_dir / "checkpoints" / "step_000000")
        first_rewarder.close()
    seen = {"updates": [], "batches": {}, "interrupted_in": None}
    fired, ignored = [], []

    def hook(phase: str, step: int) -> None:
        if phase == "updated":
            seen["updates"].append(step)
            seen["batches"][step] = [(s.problem_id, s.stage, s.completion_ids, s.reward, s.verdict, s.keep,
                                      s.policy_version) for s in iteration.last_batch.samples]
        if fired or (phase, step) != interrupt or threading.current_thread() is not threading.main_thread():
            return
        fired.append(phase)
        if phase in ("update", "sync"):  # a real Ctrl-C, arriving while the learner or the weights work
            inside = {"update": "step", "sync": "sync_from"}[phase]  # update: its first optimizer step
            if phase == "sync" and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
                # a background job (`pytest ... &` from a script) inherits SIGINT ignored and
                # Python keeps it so: give the test the handler a terminal's Ctrl-C meets
                ignored.append(signal.signal(signal.SIGINT, signal.default_int_handler))
            ctrl_c_on_entry(inside)
        else:
            raise KeyboardInterrupt

    for attempt in range(2):
        iteration = PPOIteration.create(cfg, rig["problems"], rig["tokenizer"], rig["rollout"], rig["executors"],
                                        rig["learner"])
        iteration.rewarder = make_rewarder()
        logger = MetricsLogger(cfg, run_dir)
        iteration.on_phase, iteration.sink, iteration.log = hook, logger.log, lambda *_: None
        try:
            first = _resume(run_dir, rig["learner"], iteration, lambda *_: None)
            _loop(cfg, iteration, first, run_dir, rig["learner"], lambda *_: None)
            break
        except KeyboardInterrupt as exc:
            assert attempt == 0 and fired, "interrupted twice"
            seen["interrupted_in"] = [f.name for f in traceback.extract_tb(exc.__traceback__)]
        finally:
            iteration.close()
            logger.close()
            if iteration.rewarder is not None:
                seen["discriminator"] = iteration.rewarder.discriminator.score(PROBES)
                iteration.rewarder.close()
    if ignored:
        signal.signal(signal.SIGINT, ignored[0])
    assert interrupt is None or fired, f"the run never reached {interrupt}"
    seen["metrics"] = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    seen["curriculum"] = iteration.curriculum.state_dict()
    seen["order"] = iteration.order.state_dict()
    seen["weights"] = digest(rig["learner"])
    seen["kl"] = rig["learner"].kl_ctl.value
    return seen


def ctrl_c_on_entry(function: str) -> None:
    """A real SIGINT, sent when this (main) thread next enters `function`: the handler then
    runs inside it.  A profile hook, not a watcher thread polling the stack: a short call
    (a tiny model's weight sync) could end before a watcher under load saw it.  Sent to
    this thread: Python runs signal handlers in the main thread only."""
    def hook(frame, event, _arg):
        if event == "call" and frame.f_code.co_name == function:
            sys.setprofile(None)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    sys.setprofile(hook)


def digest(learner) -> str:
    h = hashlib.sha256()
    for _, p in sorted(learner.engines.policy.module.named_parameters()):
        h.update(p.detach().float().numpy().tobytes())
    return h.hexdigest()


def deterministic(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith(TIMING)}


def assert_same_run(resumed: dict, reference: dict) -> None:
    assert resumed["updates"] == list(range(ITERATIONS))  # every batch trained exactly once
    assert [r["step"] for r in resumed["metrics"]] == list(range(ITERATIONS))  # and logged exactly once
    for step in range(ITERATIONS):
        assert resumed["batches"][step] == reference["batches"][step], f"batch {step} differs"
        assert deterministic(resumed["metrics"][step]) == pytest.approx(deterministic(reference["metrics"][step]),
                                                                        rel=1e-6, abs=1e-7), f"step {step}"
    assert resumed["curriculum"] == reference["curriculum"]
    assert resumed["order"] == reference["order"]
    assert resumed["kl"] == reference["kl"]
    assert resumed["weights"] == reference["weights"]


@pytest.fixture(scope="module")
def on_policy(rig, tmp_path_factory):
    cfg = load_config(None, BASE)
    return cfg, train(rig, cfg, tmp_path_factory.mktemp("reference"))


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["start", "judging", "update", "updated", "sync"])
def test_an_interrupted_run_resumes_to_the_uninterrupted_state(rig, on_policy, tmp_path, phase):
    cfg, reference = on_policy
    assert len({s[4] for b in reference["batches"].values() for s in b}) >= 1
    resumed = train(rig, cfg, tmp_path, interrupt=(phase, 1))
    assert_same_run(resumed, reference)
    if phase == "sync":
        assert "sync_from" in resumed["interrupted_in"]
    if phase == "update":  # the signal came during the update; Ctrl-C waited for it to finish
        assert "run" in resumed["interrupted_in"] and "update" not in resumed["interrupted_in"]


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["start", "updated"])
def test_an_interrupted_off_policy_run_resumes_to_the_uninterrupted_state(rig, tmp_path, phase):
    """The prefetched batch was sampled with the weights before the update; the resumed
    run no longer has them, so the checkpoint must carry its samples."""
    cfg = load_config(None, BASE + ["one_step_off_policy=true"])
    reference = train(rig, cfg, tmp_path / "reference")
    assert [r["policy_lag"] for r in reference["metrics"]] == [0, 1, 1]
    resumed = train(rig, cfg, tmp_path / "resumed", interrupt=(phase, 1))
    assert_same_run(resumed, reference)


@pytest.mark.slow
def test_an_interrupted_rlcf_run_resumes_its_discriminator(rig, tmp_path):
    """RLCF's reward depends on the discriminator, which trains after every update: a run
    interrupted after an update resumes it from the checkpoint (weights, optimizer, data,
    RNG), so rewards, metrics and its final scores match the uninterrupted run's."""
    from executors.pool import ExecutorPool

    cfg = load_config(None, BASE + RLCF)
    assert cfg.executor.static_checks  # the static term turns them on
    checked = {**rig, "executors": ExecutorPool(cfg.executor)}
    try:
        reference = train(checked, cfg, tmp_path / "reference", rewarded=True)
        resumed = train(checked, cfg, tmp_path / "resumed", interrupt=("updated", 1), rewarded=True)
    finally:
        checked["executors"].close()
    assert {"reward_terms/static", "reward_terms/discriminator", "discriminator/loss"} <= set(reference["metrics"][1])
    assert_same_run(resumed, reference)
    assert resumed["discriminator"] == reference["discriminator"]
