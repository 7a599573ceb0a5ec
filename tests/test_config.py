"""Typed configs: YAML + dotted overrides, and clear errors for anything unusable."""

from pathlib import Path

import pytest
import yaml

from cluster.config import CONFIG_DIR, TrainConfig, load_config
from core.settings import ConfigError, to_dict


def test_defaults_equal_shipped_tiny_yaml():
    assert load_config(CONFIG_DIR / "tiny.yaml") == load_config() == TrainConfig()



def test_tiny_yaml_lists_every_key():
    """It says it holds the defaults: a key missing from it would hide a setting."""
    import yaml

    from core.settings import to_dict

    assert yaml.safe_load((CONFIG_DIR / "tiny.yaml").read_text()) == to_dict(TrainConfig())


def test_paper_config_has_the_papers_settings():
    cfg = load_config(CONFIG_DIR / "deepseek-coder-6.7b.yaml")
    assert cfg.rollout.samples_per_prompt == 16
    assert (cfg.rollout.temperature, cfg.rollout.top_p, cfg.rollout.max_new_tokens) == (0.8, 0.9, 1024)
    assert (cfg.learner.kl_beta, cfg.learner.lr, cfg.learner.critic_lr) == (0.05, 5e-7, 1.5e-6)
    assert cfg.rollout.backend == "vllm"
    assert cfg.model.path == "deepseek-ai/deepseek-coder-6.7b-instruct"


def test_overrides_apply_with_types():
    cfg = load_config(None, ["learner.lr=1e-5", 'rollout.stop=["\\n\\n"]', "executor.reward.failed_test=-0.5",
                             "wandb.entity=lab", "model.path=null", "learner.ppo_epochs=2"])
    assert cfg.learner.lr == 1e-5 and isinstance(cfg.learner.lr, float)
    assert cfg.rollout.stop == ["\n\n"]
    assert cfg.executor.reward.failed_test == -0.5
    assert cfg.wandb.entity == "lab"
    assert cfg.learner.ppo_epochs == 2


def test_int_accepted_for_float_but_not_reverse():
    assert load_config(None, ["learner.lr=1"]).learner.lr == 1.0
    with pytest.raises(ConfigError, match=r"learner.ppo_epochs: expected int, got 1.5"):
        load_config(None, ["learner.ppo_epochs=1.5"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("learner.lrr=1", r"unknown config key 'learner.lrr'; allowed keys here: .*\blr\b"),
        ("bogus.x=1", r"unknown config key 'bogus'"),
        ("rollout.backend=tpu", r"rollout.backend: 'tpu' is not allowed; choose one of 'transformers', 'vllm'"),
        ("rollout.top_p=0", r"rollout.top_p: 0.0 is out of range; must be > 0 and <= 1"),
        ("learner.zero_stage=4", r"learner.zero_stage: 4 is out of range; must be <= 3"),
        ("learner.fgo=maybe", r"learner.fgo: expected bool, got 'maybe'"),
        ("rollout.stop=x", r"rollout.stop: expected a list"),
        ("learner.sft=3", r"learner.sft: expected a mapping"),
        ("novalue", r"must look like section.key=value"),
        ("learner.lr.x=1", r"learner.lr: expected float, got \{'x': 1\}"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_bad_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("learner: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(bad)
    bad.write_text(yaml.safe_dump({"model": {"dtype": "fp8"}}))
    with pytest.raises(ConfigError, match=r"model.dtype: 'fp8' is not allowed; choose one of 'float32', 'bfloat16', 'float16'"):
        load_config(bad)


@pytest.mark.parametrize("dtype, precision", [("float32", "fp32"), ("bfloat16", "bf16"), ("float16", "fp16")])
def test_model_dtype_sets_rollout_and_learner_together(dtype, precision):
    cfg = load_config(None, [f"model.dtype={dtype}"])
    assert (cfg.rollout.dtype, cfg.learner.precision) == (dtype, precision)
    assert load_config(CONFIG_DIR / "deepseek-coder-6.7b.yaml").learner.precision == "bf16"


@pytest.mark.parametrize("key", ["rollout.dtype=bfloat16", "learner.precision=bf16"])
def test_derived_keys_are_refused_naming_the_key_to_set(key):
    with pytest.raises(ConfigError, match=rf"{key.split('=')[0]} is not set on its own: it follows model.dtype"):
        load_config(None, [key])


def test_round_trip_through_yaml(tmp_path: Path):
    cfg = load_config(None, ["learner.lr=2e-4", "curriculum.rho=0.7", "model.dtype=bfloat16"])
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg)))
    assert load_config(path) == cfg


def test_override_through_a_scalar_is_refused():
    with pytest.raises(ConfigError, match="'lr' is not a section"):
        load_config(None, ["learner.lr=1", "learner.lr.x=1"])


def test_rollout_old_logprobs_need_the_full_softmax():
    with pytest.raises(ConfigError, match="learner.old_logprobs: rollout needs rollout.top_p: 1.0"):
        load_config(None, ["learner.old_logprobs=rollout"])
    assert load_config(None, ["learner.old_logprobs=rollout", "rollout.top_p=1.0"]).learner.old_logprobs == "rollout"
    with pytest.raises(ConfigError, match="'recompute', 'rollout'"):
        load_config(None, ["learner.old_logprobs=vllm"])
