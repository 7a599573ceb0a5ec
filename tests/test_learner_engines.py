"""PPO, SFT and DPO on real DeepSpeed engines (CPU, gloo, one process)."""

import math

import pytest
import torch

from learner.batches import DPOBatch, PPOBatch, SFTBatch
from learner.bench import synthetic_batch, torch_ppo_engines
from learner.config import LearnerConfig, SFTConfig
from learner.ds_config import deepspeed_config
from learner.dpo import DPOTrainer
from learner.engines import build_ppo_engines
from learner.ppo import PPOLearner, sequence_logprobs
from learner.sft import SFTTrainer

SMALL = dict(minibatch_size=4, micro_batch_size=2)


def params(engine) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().float() for k, v in engine.module.named_parameters()}


def test_deepspeed_config_comes_from_learner_config():
    cfg = LearnerConfig(zero_stage=2, precision="bf16", micro_batch_size=4, grad_clip=0.5)
    ds = deepspeed_config(cfg, world_size=2, batch_size=32)
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"], ds["train_batch_size"]) == (4, 4, 32)
    assert ds["zero_optimization"]["stage"] == 2 and ds["gradient_clipping"] == 0.5
    assert ds["bf16"]["enabled"] and not ds["fp16"]["enabled"]
    frozen = deepspeed_config(cfg, world_size=2, batch_size=1, train=False)
    assert frozen["zero_optimization"]["stage"] == 0 and frozen["gradient_accumulation_steps"] == 1
    assert deepspeed_config(LearnerConfig(zero_stage=3), 1, 16, train=False)["zero_optimization"]["stage"] == 3
    with pytest.raises(ValueError, match="must be a multiple of micro_batch_size"):
        deepspeed_config(cfg, world_size=2, batch_size=20)


def test_deepspeed_ppo_equals_plain_torch(tiny_model_dir):
    """Same init, batch and math: DeepSpeed ZeRO-0 engines and plain torch agree step by step."""
    cfg = LearnerConfig(ppo_epochs=2, adaptive_kl=True, entropy_coef=0.01, **SMALL)
    batch = synthetic_batch(2048, 8, 6, 10, seed=1)
    runs = []
    for build in (build_ppo_engines, torch_ppo_engines):
        torch.manual_seed(0)
        learner = PPOLearner(build(tiny_model_dir, cfg), cfg)
        stats = [learner.update(batch) for _ in range(2)]
        runs.append((stats, params(learner.engines.policy), learner.kl_ctl.value))
    (ds_stats, ds_params, ds_beta), (pt_stats, pt_params, pt_beta) = runs
    for a, b in zip(ds_stats, pt_stats):
        for key, value in a.as_dict().items():
            assert value == pytest.approx(getattr(b, key), rel=1e-4, abs=1e-5), key
    assert ds_stats[1].approx_kl > 0 and ds_stats[1].kl_ref != 0  # the policy moved
    assert ds_beta == pytest.approx(pt_beta) and ds_beta != 0.1
    for name, value in ds_params.items():
        assert torch.allclose(value, pt_params[name], atol=1e-5), name


def test_fgo_mask_keeps_unexecuted_tokens_out_of_the_policy_update(tiny_model_dir):
    """Nothing executed: with FGO the policy gets no gradient at all; the critic still learns."""
    batch = synthetic_batch(2048, 4, 6, 10, seed=2)
    batch = PPOBatch(batch.input_ids, batch.attention_mask, batch.action_mask,
                     torch.zeros_like(batch.policy_mask), batch.rewards)
    for fgo in (True, False):
        cfg = LearnerConfig(fgo=fgo, **SMALL)
        learner = PPOLearner.from_pretrained(tiny_model_dir, cfg)
        policy0, critic0 = params(learner.engines.policy), params(learner.engines.critic)
        stats = learner.update(batch)
        policy_moved = any(not torch.equal(v, policy0[k]) for k, v in params(learner.engines.policy).items())
        critic_moved = any(not torch.equal(v, critic0[k]) for k, v in params(learner.engines.critic).items())
        assert policy_moved is (not fgo) and critic_moved
        assert stats.policy_tokens == (0 if fgo else stats.action_tokens)


def test_ppo_raises_rewarded_completions(tiny_model_dir):
    """Same prompt, one completion rewarded +1, one -1: PPO moves probability toward the first."""
    cfg = LearnerConfig(lr=2e-3, kl_beta=0.0, ppo_epochs=2, **SMALL)
    learner = PPOLearner.from_pretrained(tiny_model_dir, cfg)
    prompt, good, bad = [10, 11, 12, 13], [20, 21, 22, 23, 24], [30, 31, 32, 33, 34]
    batch = PPOBatch.from_sequences([prompt] * 4, [good, bad, good, bad], [1.0, -1.0, 1.0, -1.0], pad_id=1)

    def gap() -> float:
        with torch.no_grad():
            lp = sequence_logprobs(learner.engines.policy, batch.input_ids[:2], batch.attention_mask[:2])
        sums = (lp * batch.action_mask[:2]).sum(-1)
        return float(sums[0] - sums[1])

    before = gap()
    for _ in range(4):
        learner.update(batch)
    assert gap() > before + 1.0


def test_ppo_runs_in_bf16(tiny_model_dir):
    cfg = LearnerConfig(precision="bf16", **SMALL)
    learner = PPOLearner.from_pretrained(tiny_model_dir, cfg)
    assert next(learner.engines.policy.module.parameters()).dtype == torch.bfloat16
    stats = learner.update(synthetic_batch(2048, 4, 6, 10, seed=3))
    assert all(math.isfinite(v) for v in stats.as_dict().values())


def test_ppo_refuses_partial_optimizer_steps(tiny_model_dir):
    learner = PPOLearner.from_pretrained(tiny_model_dir, LearnerConfig(**SMALL))
    with pytest.raises(ValueError, match="must be a multiple of 4"):
        learner.update(synthetic_batch(2048, 6, 6, 10))


def test_sft_learns_targets_not_prompts(tiny_model_dir):
    cfg = LearnerConfig(micro_batch_size=2, sft=SFTConfig(lr=3e-3, batch_size=4, warmup_steps=2))
    trainer = SFTTrainer.from_pretrained(tiny_model_dir, cfg)
    prompts = [[10 + i, 11, 12] for i in range(4)]
    batch = SFTBatch.from_pairs(prompts, [[40, 41, 42, 43, 1]] * 4, pad_id=1)
    assert trainer.engine.get_lr()[0] == pytest.approx(3e-3 / 2)  # linear warmup: step 0 at lr / 2

    def mean_logprobs() -> tuple[float, float]:
        with torch.no_grad():
            lp = sequence_logprobs(trainer.engine, batch.input_ids, batch.attention_mask)
        return float(lp[:, 1:3].mean()), float(lp[:, 3:].mean())  # prompt tokens 11, 12; the target

    prompt_before, target_before = mean_logprobs()
    first = trainer.step(batch)
    assert first.tokens == 20
    assert trainer.engine.get_lr()[0] == pytest.approx(3e-3)
    for _ in range(6):
        last = trainer.step(batch)
    assert last.loss < first.loss - 1.0
    prompt_after, target_after = mean_logprobs()
    assert target_after > target_before + 2.0
    assert prompt_after < prompt_before + 0.1  # never a target, so never pushed up


def test_dpo_starts_at_log2_and_prefers_chosen(tiny_model_dir):
    trainer = DPOTrainer.from_pretrained(tiny_model_dir, LearnerConfig(micro_batch_size=2), beta=0.1, lr=2e-3,
                                         batch_size=4)
    prompts = [[10 + i, 11, 12] for i in range(4)]
    batch = DPOBatch.from_triples(prompts, [[40, 41, 42]] * 4, [[50, 51, 52, 53]] * 4, pad_id=1)
    first = trainer.step(batch)
    assert first.loss == pytest.approx(math.log(2), abs=1e-6)  # policy == reference before the first step
    for _ in range(4):
        last = trainer.step(batch)
    assert last.loss < first.loss and last.accuracy == 1.0
    assert last.reward_chosen > 0 > last.reward_rejected


def test_rollout_logprobs_are_used_when_given(tiny_model_dir):
    """old_logprobs from the rollout replace the recomputation; garbage outside the action mask is ignored."""
    from dataclasses import replace

    learner = PPOLearner.from_pretrained(tiny_model_dir, LearnerConfig(**SMALL))
    batch = synthetic_batch(2048, 4, 6, 10, seed=4)
    action = batch.action_mask.float()
    recomputed, _ = learner.make_experience(batch)
    shifted = torch.where(action.bool(), recomputed.old_logprobs - 0.5, torch.full_like(action, 1e4))
    given, _ = learner.make_experience(replace(batch, old_logprobs=shifted))
    assert torch.allclose(given.old_logprobs, (recomputed.old_logprobs - 0.5) * action)
    stats = learner.update(replace(batch, old_logprobs=shifted))
    # ratio e^0.5 is beyond 1 + 0.2: clipped wherever A > 0 (about half the tokens); k3 KL ~ 0.1
    assert math.isfinite(stats.policy_loss) and stats.clipfrac > 0.2 and stats.approx_kl > 0.05


def test_experience_scores_tokens_at_the_sampling_temperature(tiny_model_dir):
    """Old and reference log-probs are the tempered policy's (what the rollout sampled
    from), and the first update's ratio against them starts at exactly 1."""
    cfg = LearnerConfig(ppo_epochs=1, **SMALL)
    learner = PPOLearner.from_pretrained(tiny_model_dir, cfg)
    g = torch.Generator().manual_seed(5)
    prompts = [torch.randint(2, 2048, (6,), generator=g).tolist() for _ in range(4)]
    completions = [torch.randint(2, 2048, (int(n),), generator=g).tolist() for n in (8, 5, 8, 3)]
    tempered = PPOBatch.from_sequences(prompts, completions, [1.0, -0.3, -0.6, -1.0], pad_id=1, temperature=0.7)
    exp, _ = learner.make_experience(tempered)
    with torch.no_grad():
        at_t = sequence_logprobs(learner.engines.policy, tempered.input_ids, tempered.attention_mask, 0.7)
        plain = sequence_logprobs(learner.engines.policy, tempered.input_ids, tempered.attention_mask)
    action = tempered.action_mask.float()
    assert torch.allclose(exp.old_logprobs, at_t * action, atol=1e-5)
    assert not torch.allclose(exp.old_logprobs, plain * action, atol=1e-3)
    assert exp.temperature == 0.7
    first = learner.train_micro_batch(exp.select(torch.arange(learner.micro)))
    assert abs(first["approx_kl"]) < 1e-6 and first["clipfrac"] == 0.0


def test_rollout_old_logprobs_make_the_ratio_see_a_stale_behaviour_policy(tiny_model_dir):
    """learner.old_logprobs: rollout.  A batch sampled by the weights before an update
    keeps those weights' log-probs as `old`: the next update's ratio starts away from 1
    (the staleness is corrected), while recomputing would start it at exactly 1."""
    cfg = LearnerConfig(ppo_epochs=1, lr=5e-3, **SMALL)
    learner = PPOLearner.from_pretrained(tiny_model_dir, cfg)
    g = torch.Generator().manual_seed(9)
    prompts = [torch.randint(2, 2048, (5,), generator=g).tolist() for _ in range(4)]
    completions = [torch.randint(2, 2048, (n,), generator=g).tolist() for n in (6, 4, 7, 6)]
    stale = PPOBatch.from_sequences(prompts, completions, [1.0, -1.0, 1.0, -1.0], pad_id=1, temperature=0.8)
    with torch.no_grad():
        behaviour = sequence_logprobs(learner.engines.policy, stale.input_ids, stale.attention_mask, 0.8)
    sampled = [behaviour[i, len(p):len(p) + len(c)].tolist() for i, (p, c) in enumerate(zip(prompts, completions))]
    learner.update(synthetic_batch(2048, 4, 6, 10, seed=4))  # the weights move on
    rollout = PPOBatch.from_sequences(prompts, completions, [1.0, -1.0, 1.0, -1.0], pad_id=1,
                                      old_logprobs=sampled, temperature=0.8)
    exp, _ = learner.make_experience(rollout)
    assert torch.allclose(exp.old_logprobs, behaviour * rollout.action_mask, atol=1e-6)
    first = learner.train_micro_batch(exp.select(torch.arange(learner.micro)))
    assert first["approx_kl"] > 1e-6
    recomputed, _ = learner.make_experience(stale)
    assert not torch.allclose(recomputed.old_logprobs, exp.old_logprobs, atol=1e-5)
    with pytest.raises(ValueError, match="sample 1: 3 old log-probs for 4 completion tokens"):
        PPOBatch.from_sequences(prompts, completions, [0.0] * 4, pad_id=1,
                                old_logprobs=[sampled[0], sampled[1][:3], sampled[2], sampled[3]])
