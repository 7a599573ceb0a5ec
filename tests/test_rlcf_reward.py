"""RLCF's reward: terms and weights (each weight changes the reward as documented), the
configuration's presets and refusals, and the discriminator (its loss falls on a
separable set, its held-out accuracy, its checkpoint, its Ray actor)."""

from __future__ import annotations

import pytest

from actors.discriminator import Candidate, Discriminator, DiscriminatorConfig, is_heldout
from cluster.config import load_config
from cluster.rewards import RewardConfig, RewardWeights, combine, term_values
from core.settings import ConfigError
from core.verdict import Finding, ExecutionResult
from executors.static_checks import StaticWeights

UNREACHABLE = (Finding("unreachable", 3, "Unreachable code"),)


def _result(verdict: str, reward: float, findings=()) -> ExecutionResult:
    return ExecutionResult(problem_id="p", verdict=verdict, reward=reward, findings=findings)


def test_term_values_by_verdict():
    terms = {t: 1.0 for t in ("tests", "passes", "executes", "compiles", "static", "discriminator")}
    w = StaticWeights()
    assert term_values(_result("pass", 1.0), terms, w, 0.25) == \
        {"tests": 1.0, "passes": 1.0, "executes": 1.0, "compiles": 1.0, "static": 1.0, "discriminator": 0.25}
    assert term_values(_result("wrong_answer", -0.3, UNREACHABLE), terms, w, 0.5) == \
        {"tests": -0.3, "passes": 0.0, "executes": 1.0, "compiles": 1.0, "static": pytest.approx(0.9),
         "discriminator": 0.5}
    assert term_values(_result("runtime_error", -0.6), terms, w, 0.0)["executes"] == 0.0
    compile_error = term_values(_result("compile_error", -1.0, (Finding("syntax", 1, "x"),)), terms, w, 0.1)
    assert (compile_error["compiles"], compile_error["static"], compile_error["executes"]) == (0.0, 0.0, 0.0)


def test_each_weight_scales_its_term():
    values = {"tests": -0.3, "static": 0.9, "discriminator": 0.5}
    assert combine(values, {"static": 1.0, "discriminator": 1.0}) == pytest.approx(1.4)
    assert combine(values, {"static": 2.0, "discriminator": 1.0}) == pytest.approx(2.3)
    assert combine(values, {"static": 1.0, "discriminator": 0.5}) == pytest.approx(1.15)
    assert combine(values, {"tests": 1.0}) == pytest.approx(-0.3)


def test_missing_inputs_are_refused():
    with pytest.raises(RuntimeError, match="executor.static_checks"):
        term_values(_result("pass", 1.0, None), {"static": 1.0}, StaticWeights())
    with pytest.raises(RuntimeError, match="discriminator's score"):
        term_values(_result("pass", 1.0), {"discriminator": 1.0}, StaticWeights())


def test_presets_and_custom_weights():
    assert RewardConfig().term_weights() == {"tests": 1.0}
    assert RewardConfig(name="rlcf").term_weights() == {"static": 1.0, "discriminator": 1.0}
    custom = RewardConfig(name="custom", weights=RewardWeights(tests=1.0, static=0.5))
    assert custom.term_weights() == {"tests": 1.0, "static": 0.5}
    with pytest.raises(ConfigError, match="reward.weights is read only with reward.name: custom"):
        RewardConfig(name="rlcf", weights=RewardWeights(tests=1.0)).term_weights()
    with pytest.raises(ConfigError, match="at least one non-zero"):
        RewardConfig(name="custom").term_weights()


def test_config_turns_static_checks_on_and_refuses_what_does_not_fit():
    assert not load_config().executor.static_checks
    assert load_config(overrides=["reward.name=rlcf"]).executor.static_checks
    assert load_config(overrides=["reward.name=custom", "reward.weights.static=0.5"]).executor.static_checks
    assert not load_config(overrides=["reward.name=custom", "reward.weights.passes=1"]).executor.static_checks
    with pytest.raises(ConfigError, match="one_step_off_policy"):
        load_config(overrides=["reward.name=rlcf", "one_step_off_policy=true"])
    with pytest.raises(ConfigError, match="reward.weights"):
        load_config(overrides=["reward.weights.tests=2"])
    from cluster.config import CONFIG_DIR
    assert load_config(CONFIG_DIR / "rlcf.yaml").reward.name == "rlcf"


def test_a_discriminator_the_cluster_cannot_place_is_refused_by_name():
    from actors.discriminator import check_room

    check_room(DiscriminatorConfig(num_cpus=0.5), {"CPU": 0.5})
    with pytest.raises(ValueError, match="reward.discriminator.num_cpus: 1 CPUs asked.*has 0.5 free"):
        check_room(DiscriminatorConfig(num_cpus=1.0), {"CPU": 0.5})
    with pytest.raises(ValueError, match="reward.discriminator.num_gpus"):
        check_room(DiscriminatorConfig(num_cpus=0, num_gpus=1.0), {"CPU": 4.0})


def test_configs_rlcf_yaml_is_the_experiment_variant():
    """The rlcf variant of `execrl experiment rlcf` is configs/rlcf.yaml's job."""
    from dataclasses import replace

    from cluster.config import CONFIG_DIR
    from methods.rlcf.experiment import RLCF

    shipped, variant = load_config(CONFIG_DIR / "rlcf.yaml"), load_config(CONFIG_DIR / "tiny-hard.yaml", list(RLCF))
    assert replace(shipped, output_dir=variant.output_dir) == variant


def test_heldout_problems_are_chosen_by_id_stably():
    ids = [f"p{k}" for k in range(2000)]
    held = [i for i in ids if is_heldout(i, 0.1)]
    assert 150 < len(held) < 250 and held == [i for i in ids if is_heldout(i, 0.1)]
    assert not any(is_heldout(i, 0.0) for i in ids)


REFERENCES = ["def solve(values):\n    total = 0\n    for v in values:\n        total += v\n    return total\n",
              "def solve(n):\n    if n < 2:\n        return n\n    return solve(n - 1) + solve(n - 2)\n",
              "def solve(s):\n    return s[::-1]\n", "def solve(a, b):\n    return max(a, b)\n"]
JUNK = ["zz zz zz zz", "1 1 1 1 1 1 1 1", ")))) ((((", "qq qq qq"]


def _toy(problem_ids):
    refs = [Candidate(pid, "Write solve.", REFERENCES[k % 4], REFERENCES[k % 4]) for k, pid in enumerate(problem_ids)]
    junk = [Candidate(pid, "Write solve.", REFERENCES[k % 4], JUNK[k % 4]) for k, pid in enumerate(problem_ids)]
    return refs, junk


@pytest.mark.slow
def test_the_discriminator_learns_a_separable_set_and_round_trips_its_checkpoint(tiny_model_dir, tmp_path):
    cfg = DiscriminatorConfig(lr=3e-3, batch_size=8, steps=8, heldout_fraction=0.3, max_tokens=48)
    disc = Discriminator(cfg, str(tiny_model_dir), seed=0)
    ids = [f"toy/{k}" for k in range(40)]
    refs, junk = _toy(ids)
    disc.observe(refs, junk)
    first = disc.train()
    for _ in range(2):
        last = disc.train()
    assert last["loss"] < first["loss"] * 0.5, (first, last)
    assert disc.heldout_accuracy() >= 0.9  # problems it never trained on
    path = disc.save(str(tmp_path / "d.pt"))
    again = Discriminator(cfg, str(tiny_model_dir), seed=1)
    again.load(path)
    assert again.score(refs[:4] + junk[:4]) == pytest.approx(disc.score(refs[:4] + junk[:4]), abs=1e-6)
    assert again.train() == pytest.approx(disc.train())  # optimizer, RNG and data came back too


def test_the_buffer_keeps_the_newest_samples(tiny_model_dir):
    disc = Discriminator(DiscriminatorConfig(buffer_size=3, max_tokens=32), str(tiny_model_dir))
    refs, junk = _toy([f"t{k}" for k in range(5)])
    disc.observe(refs, junk)
    assert [c.problem_id for c in disc.negatives] == ["t2", "t3", "t4"] and len(disc.positives) == 5


@pytest.mark.slow
def test_the_discriminator_runs_as_its_own_ray_actor(ray_session, tiny_model_dir, tmp_path):
    import ray

    from actors.discriminator import DiscriminatorPool

    pool = DiscriminatorPool(DiscriminatorConfig(steps=2, max_tokens=64, num_cpus=0, heldout_fraction=0.3),
                             str(tiny_model_dir))
    try:
        refs, junk = _toy([f"toy/{k}" for k in range(20)])
        stats = pool.observe_and_train(refs, junk, train=True)
        assert {"loss", "train_accuracy", "heldout_accuracy"} <= set(stats)
        assert ray.get(pool.actor.set_threads.remote(1)) == 1
        scores = pool.score(refs[:2])
        pool.save(str(tmp_path / "d.pt"))
        assert (tmp_path / "d.pt").is_file() and all(0.0 <= s <= 1.0 for s in scores)
    finally:
        pool.close()


@pytest.mark.slow
def test_a_dead_discriminator_actor_comes_back_from_the_last_checkpoint(ray_session, tiny_model_dir, tmp_path):
    """Killed (as an OOM kill or a lost node would), the actor is replaced by one restored
    from the last saved state, not by a fresh model; past max_restarts the error names the key."""
    import ray

    from actors.discriminator import DiscriminatorPool

    lines = []
    cfg = DiscriminatorConfig(steps=3, lr=3e-3, max_tokens=64, num_cpus=0, heldout_fraction=0.3, max_restarts=1)
    pool = DiscriminatorPool(cfg, str(tiny_model_dir), log=lines.append)
    try:
        refs, junk = _toy([f"toy/{k}" for k in range(20)])
        pool.observe_and_train(refs, junk, train=True)
        pool.save(str(tmp_path / "d.pt"))
        trained = pool.score(refs[:2] + junk[:2])
        ray.kill(pool.actor, no_restart=True)
        assert pool.score(refs[:2] + junk[:2]) == pytest.approx(trained, abs=1e-6)  # the trained state came back
        assert pool.restarts == 1 and "restart 1 of 1 from" in lines[-1] and "d.pt" in lines[-1]
        assert pool.observe_and_train(refs, junk, train=False)["restarts"] == 1.0
        ray.kill(pool.actor, no_restart=True)
        with pytest.raises(RuntimeError, match="reward.discriminator.max_restarts 1"):
            pool.score(refs[:1])
    finally:
        pool.close()
