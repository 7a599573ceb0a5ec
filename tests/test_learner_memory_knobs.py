"""The memory knobs of a large PPO job, run for real on CPU with the tiny model: gradient
checkpointing, optimizer/parameter/reference offload, loading partitioned under ZeRO-3
(zero.Init), LoRA through peft with merged weights for rollouts and exports."""

import json

import pytest
import torch

from learner.bench import synthetic_batch
from learner.config import LearnerConfig
from learner.ds_config import deepspeed_config
from learner.lora import merged_state_dict
from learner.ppo import PPOLearner

SMALL = dict(minibatch_size=4, micro_batch_size=4)


def first_loss(model_dir, **knobs) -> float:
    learner = PPOLearner.from_pretrained(model_dir, LearnerConfig(**SMALL, **knobs))
    return learner, learner.update(synthetic_batch(2048, 4, 6, 10, seed=21))


def test_gradient_checkpointing_gives_the_same_update(tiny_model_dir):
    plain, a = first_loss(tiny_model_dir)
    checkpointed, b = first_loss(tiny_model_dir, gradient_checkpointing=True)
    assert checkpointed.engines.policy.module.is_gradient_checkpointing
    assert checkpointed.engines.critic.module.backbone.is_gradient_checkpointing
    assert b.policy_loss == pytest.approx(a.policy_loss, abs=1e-6)
    assert b.value_loss == pytest.approx(a.value_loss, abs=1e-6)


def test_offload_goes_into_deepspeeds_config_and_is_checked():
    cfg = LearnerConfig(zero_stage=3, offload_optimizer=True, offload_reference=True, **SMALL)
    train, frozen = deepspeed_config(cfg, 1, 4), deepspeed_config(cfg, 1, 4, train=False)
    assert train["zero_optimization"]["offload_optimizer"] == {"device": "cpu"}
    assert train["zero_optimization"]["offload_param"] == {"device": "none"}
    assert frozen["zero_optimization"]["offload_param"] == {"device": "cpu"}  # the reference alone
    both = deepspeed_config(LearnerConfig(zero_stage=3, offload_params=True, **SMALL), 1, 4)
    assert both["zero_optimization"]["offload_param"] == {"device": "cpu"}
    with pytest.raises(ValueError, match="learner.offload_optimizer needs learner.zero_stage >= 1"):
        deepspeed_config(LearnerConfig(offload_optimizer=True, **SMALL), 1, 4)
    with pytest.raises(ValueError, match="learner.offload_params needs learner.zero_stage 3"):
        deepspeed_config(LearnerConfig(zero_stage=2, offload_params=True, **SMALL), 1, 4)


@pytest.mark.slow
def test_optimizer_offload_trains_under_zero_2(tiny_model_dir):
    learner, stats = first_loss(tiny_model_dir, zero_stage=2, offload_optimizer=True)
    assert learner.engines.policy.zero_cpu_offload() and stats.policy_tokens > 0


@pytest.mark.slow
def test_zero_3_loads_partitioned_and_offloads_the_reference(tiny_model_dir):
    from learner.dist import setup_distributed
    from learner.engines import load_policy, partitioned_loading

    dist = setup_distributed()
    cfg = LearnerConfig(zero_stage=3, **SMALL)
    with partitioned_loading(cfg, dist) as dtype:
        loaded = load_policy(tiny_model_dir, dtype)  # partitioned as it loads: no full copy on the host
    assert all(hasattr(p, "ds_id") and p.numel() == 0 for p in loaded.parameters())
    with partitioned_loading(LearnerConfig(zero_stage=3, zero_init=False, **SMALL), dist) as dtype:
        whole = load_policy(tiny_model_dir, dtype)
    assert not any(hasattr(p, "ds_id") for p in whole.parameters())
    learner, stats = first_loss(tiny_model_dir, zero_stage=3, offload_reference=True)
    assert learner.engines.reference.zero_offload_param().device == "cpu"
    assert learner.engines.policy.zero_offload_param().device == "none"  # only the reference was asked for
    assert learner.policy_state_dict()["model.embed_tokens.weight"].numel() > 0  # gathered for the rollouts
    assert stats.policy_tokens > 0


def test_lora_trains_adapters_and_publishes_merged_weights(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    learner, stats = first_loss(tiny_model_dir, lora_rank=4, lora_alpha=8, lr=1e-2)
    module = learner.engines.policy.module
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    state = learner.policy_state_dict()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    assert set(state) == set(base)  # the base model's names: what rollouts and vLLM load
    changed = [n for n in base if not torch.equal(state[n], base[n])]
    assert changed and all(n.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight"))
                           for n in changed)
    assert learner.state_dict()["lora_scale"] == 2.0
    with pytest.raises(ValueError, match="learner.lora_rank > 0 needs learner.zero_stage 0, 1 or 2"):
        PPOLearner.from_pretrained(tiny_model_dir, LearnerConfig(lora_rank=4, zero_stage=3, **SMALL))


def test_merging_by_hand():
    a, b, w = torch.ones(2, 3), torch.full((4, 2), 0.5), torch.zeros(4, 3)
    state = {"base_model.model.layer.q_proj.base_layer.weight": w, "base_model.model.layer.q_proj.lora_A.default.weight": a,
             "base_model.model.layer.q_proj.lora_B.default.weight": b, "base_model.model.norm.weight": torch.ones(3)}
    merged = merged_state_dict(state, scale=2.0)
    assert set(merged) == {"layer.q_proj.weight", "norm.weight"}
    assert torch.equal(merged["layer.q_proj.weight"], torch.full((4, 3), 2.0))  # 2 * (0.5 * 2)
