"""PPO, SFT and DPO equations against values computed by hand (no engines)."""

import math

import pytest
import torch

from learner.batches import DPOBatch, PPOBatch, SFTBatch
from learner.dpo import dpo_loss, response_logprob_sums
from learner.ppo_math import (KLController, compute_kl, entropy_from_logits, gae, last_token_mask, logprobs_and_entropy,
                              logprobs_from_logits, masked_mean, policy_loss, token_rewards, value_loss, whiten)
from learner.sft import sft_loss

T = torch.tensor


def test_gae_by_hand_over_action_tokens_only():
    # Row 0: prompt token 0, actions 1-3, padding 4.  Row 1: actions 1 and 3 only (a hole at 2).
    mask = T([[0, 1, 1, 1, 0], [0, 1, 0, 1, 0]])
    rewards = T([[0.0, 0.1, -0.2, 1.0, 0.0], [0.0, 0.1, 5.0, 1.0, 0.0]])
    values = T([[9.0, 0.5, 0.4, 0.3, 7.0], [9.0, 0.5, 0.4, 0.3, 7.0]])
    adv, ret = gae(rewards, values, mask, gamma=0.9, lam=0.8)
    # Row 0: d3 = 1.0 - 0.3 = 0.7;  d2 = -0.2 + 0.9*0.3 - 0.4 = -0.33;  d1 = 0.1 + 0.9*0.4 - 0.5 = -0.04
    a3 = 0.7
    a2 = -0.33 + 0.72 * a3
    a1 = -0.04 + 0.72 * a2
    assert torch.allclose(adv[0], T([0.0, a1, a2, a3, 0.0]), atol=1e-6)
    assert torch.allclose(ret[0], T([0.0, a1 + 0.5, a2 + 0.4, a3 + 0.3, 0.0]), atol=1e-6)
    # Row 1: token 2 is not a step: token 1's next state is token 3's.
    b3 = 1.0 - 0.3
    b1 = (0.1 + 0.9 * 0.3 - 0.5) + 0.72 * b3
    assert torch.allclose(adv[1], T([0.0, b1, 0.0, b3, 0.0]), atol=1e-6)


def test_gae_with_gamma_lambda_one_is_monte_carlo():
    mask = T([[0, 0, 1, 1, 1, 1]])
    rewards = torch.randn(1, 6) * mask
    values = torch.randn(1, 6)
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    future = rewards.flip(-1).cumsum(-1).flip(-1)
    assert torch.allclose(ret, future * mask, atol=1e-6)
    assert torch.allclose(adv, (future - values) * mask, atol=1e-6)


@pytest.mark.parametrize("adv, ratio, loss, clipped, grad", [
    (1.0, 1.1, -1.1, 0.0, -1.1),   # inside the trust region: -A r, gradient -A r
    (1.0, 1.5, -1.2, 1.0, 0.0),    # beyond 1+eps with A > 0: clipped, no gradient
    (1.0, 0.5, -0.5, 0.0, -0.5),   # below 1-eps with A > 0: the unclipped term is the min
    (-1.0, 0.5, 0.8, 1.0, 0.0),    # below 1-eps with A < 0: clipped, no gradient
    (-1.0, 1.5, 1.5, 0.0, 1.5),    # beyond 1+eps with A < 0: unclipped (pessimistic bound)
    (1.0, 1.2, -1.2, 0.0, -1.2),   # exactly at the boundary: both terms equal, not counted as clipped
])
def test_clipped_policy_loss_at_and_beyond_the_boundaries(adv, ratio, loss, clipped, grad):
    logprobs = torch.tensor([[0.0, math.log(ratio)]], requires_grad=True)
    old = torch.zeros(1, 2)
    mask = T([[0.0, 1.0]])
    out, stats = policy_loss(logprobs, old, T([[0.0, adv]]), mask, clip_ratio=0.2)
    out.backward()
    assert out.item() == pytest.approx(loss, abs=1e-6)
    assert stats["clipfrac"].item() == clipped
    assert logprobs.grad[0, 1].item() == pytest.approx(grad, abs=1e-6)
    assert logprobs.grad[0, 0].item() == 0.0


def test_clipped_value_loss_by_hand():
    old, ret, mask = torch.zeros(1, 4), torch.ones(1, 4), T([[0.0, 1.0, 1.0, 1.0]])
    values = T([[3.0, 0.5, 0.1, 1.0]])
    loss, stats = value_loss(values, old, ret, mask, value_clip=0.2)
    # v=0.5: max(0.25, (0.2-1)^2=0.64);  v=0.1: 0.81 both;  v=1.0: max(0, 0.64).  Token 0 masked out.
    assert loss.item() == pytest.approx(0.5 * (0.64 + 0.81 + 0.64) / 3, abs=1e-6)
    assert stats["vf_clipfrac"].item() == pytest.approx(2 / 3)


def test_whitening_uses_masked_tokens_only():
    x = T([[100.0, 1.0, 2.0, 3.0, -50.0]])
    mask = T([[0.0, 1.0, 1.0, 1.0, 0.0]])
    out = whiten(x, mask)
    assert torch.allclose(out, T([[0.0, -1.0, 0.0, 1.0, 0.0]]), atol=1e-6)  # mean 2, unbiased var 1
    x2 = x.clone()
    x2[0, 0], x2[0, 4] = -1e6, 1e6
    assert torch.equal(whiten(x2, mask), out)
    assert torch.allclose(whiten(x, mask, shift_mean=False), T([[0.0, 1.0, 2.0, 3.0, 0.0]]), atol=1e-6)


def test_masked_tokens_get_exactly_zero_policy_gradient():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 11, requires_grad=True)
    ids = torch.randint(0, 11, (2, 6))
    action = T([[0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 0, 0]]).float()
    policy = action * T([[1, 1, 1, 0, 0, 1], [1, 1, 0, 1, 1, 1]]).float()  # FGO holes
    old = torch.where(action.bool(), torch.randn(2, 6) - 3.0, torch.full((2, 6), -1e4))  # garbage outside
    adv = torch.randn(2, 6)
    logprobs = logprobs_from_logits(logits, ids)
    loss, _ = policy_loss(logprobs, old, adv, policy, clip_ratio=0.2)
    loss = loss - 0.01 * masked_mean(entropy_from_logits(logits), policy)
    loss.backward()
    grad_norm = logits.grad.abs().sum(-1)  # logits[:, t-1] produce token t
    for b in range(2):
        for t in range(1, 6):
            if policy[b, t] == 0:
                assert torch.all(logits.grad[b, t - 1] == 0), (b, t)
            else:
                assert grad_norm[b, t - 1] > 0, (b, t)
    assert torch.all(logits.grad[:, -1] == 0)  # the last position predicts nothing
    assert torch.isfinite(loss)


def test_logprobs_are_aligned_to_tokens():
    logits = torch.randn(1, 3, 5)
    ids = T([[4, 2, 0]])
    lp = logprobs_from_logits(logits, ids)
    ls = torch.log_softmax(logits, -1)
    assert torch.allclose(lp, T([[0.0, ls[0, 0, 2].item(), ls[0, 1, 0].item()]]), atol=1e-6)
    p = torch.softmax(logits[0, 1], -1)
    assert entropy_from_logits(logits)[0, 2].item() == pytest.approx(-(p * p.log()).sum().item(), abs=1e-5)


def test_token_rewards_put_the_program_reward_on_the_last_action_token():
    action = T([[0, 1, 1, 1, 0], [0, 0, 0, 0, 0]]).float()
    kl = T([[5.0, 0.1, 0.2, -0.1, 5.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    out = token_rewards(T([1.0, -1.0]), kl, action, beta=0.5)
    assert torch.allclose(out, T([[0.0, -0.05, -0.1, 1.05, 0.0], [0.0] * 5]), atol=1e-6)
    assert torch.equal(last_token_mask(action), T([[0, 0, 0, 1, 0], [0, 0, 0, 0, 0]]).float())


def test_kl_estimators_and_adaptive_controller():
    lp, ref = T([-1.0, -2.0]), T([-1.5, -1.0])
    assert torch.allclose(compute_kl(lp, ref, "k1"), T([0.5, -1.0]))
    assert torch.allclose(compute_kl(lp, ref, "k3"), T([math.exp(-0.5) - 1 + 0.5, math.exp(1.0) - 1 - 1.0]))
    assert bool((compute_kl(torch.randn(100), torch.randn(100), "k3") >= 0).all())
    ctl = KLController(0.1, adaptive=True, target=0.02, horizon=1000)
    ctl.update(0.04, 100)  # error clipped to +0.2: beta *= 1 + 0.2 * 100 / 1000
    assert ctl.value == pytest.approx(0.102)
    ctl.update(0.0, 100)  # error -1 clipped to -0.2
    assert ctl.value == pytest.approx(0.102 * 0.98)
    fixed = KLController(0.1)
    fixed.update(10.0, 100)
    assert fixed.value == 0.1


def test_dpo_loss_by_hand():
    loss, stats = dpo_loss(T([-2.0]), T([-3.0]), T([-2.5]), T([-2.5]), beta=0.1)
    # beta * ((-2 + 2.5) - (-3 + 2.5)) = 0.1;  -log sigmoid(0.1) = log(1 + e^-0.1)
    assert loss.item() == pytest.approx(math.log1p(math.exp(-0.1)), abs=1e-6)
    assert stats["reward_chosen"].item() == pytest.approx(0.05)
    assert stats["accuracy"].item() == 1.0
    logits = torch.randn(1, 4, 6)
    ids, mask = T([[1, 2, 3, 4]]), T([[0, 0, 1, 1]]).float()
    ls = torch.log_softmax(logits, -1)
    expected = ls[0, 1, 3] + ls[0, 2, 4]  # response tokens 2 and 3 only; the prompt is in no sum
    assert response_logprob_sums(logits, ids, mask).item() == pytest.approx(expected.item(), abs=1e-5)


def test_sft_loss_counts_target_tokens_only():
    logits = torch.randn(1, 4, 6)
    ids, mask = T([[1, 2, 3, 4]]), T([[0, 1, 0, 1]])
    ls = torch.log_softmax(logits, -1)
    assert sft_loss(logits, ids, mask).item() == pytest.approx(-(ls[0, 0, 2] + ls[0, 2, 4]).item() / 2, abs=1e-5)


def test_batches_are_built_and_checked():
    b = PPOBatch.from_sequences([[5, 6], [7]], [[8, 9, 10], [11]], [1.0, -1.0], pad_id=0,
                                executed=[[True, False, True], [True]], old_logprobs=[[-1, -2, -3], [-4]])
    assert b.input_ids.tolist() == [[5, 6, 8, 9, 10], [7, 11, 0, 0, 0]]
    assert b.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert b.action_mask.tolist() == [[0, 0, 1, 1, 1], [0, 1, 0, 0, 0]]
    assert b.policy_mask.tolist() == [[0, 0, 1, 0, 1], [0, 1, 0, 0, 0]]
    assert b.old_logprobs.tolist() == [[0, 0, -1, -2, -3], [0, -4, 0, 0, 0]]
    assert b.select(torch.tensor([1])).input_ids.tolist() == [[7, 11, 0, 0, 0]]
    with pytest.raises(ValueError, match="policy_mask marks tokens outside action_mask"):
        PPOBatch(b.input_ids, b.attention_mask, b.action_mask, b.attention_mask, b.rewards)
    with pytest.raises(ValueError, match="2 executed flags for 3 completion tokens"):
        PPOBatch.from_sequences([[5]], [[8, 9, 10]], [1.0], 0, executed=[[True, True]])
    with pytest.raises(ValueError, match="prompts must be non-empty"):
        PPOBatch.from_sequences([[]], [[8]], [1.0], 0)
    s = SFTBatch.from_pairs([[5, 6]], [[7]], pad_id=0, width=4)
    assert s.loss_mask.tolist() == [[0, 0, 1, 0]]
    d = DPOBatch.from_triples([[5]], [[6, 7]], [[8]], pad_id=0)
    assert d.rejected.input_ids.tolist() == [[5, 8, 0]] and len(d) == 1


@pytest.mark.parametrize("temperature", [0.5, 0.8, 1.3])
def test_tempered_logprobs_and_entropy_are_the_samplers(temperature):
    """The learner scores tokens under the distribution the rollout sampled from
    (actors.logprobs, without top-p), and its entropy is that distribution's."""
    from actors.logprobs import sequence_sampling_logprobs

    torch.manual_seed(1)
    logits, ids = torch.randn(2, 7, 13), torch.randint(0, 13, (2, 7))
    lp, ent = logprobs_and_entropy(logits, ids, temperature=temperature)
    assert torch.allclose(lp, sequence_sampling_logprobs(logits, ids, temperature, 1.0), atol=1e-6)
    assert torch.allclose(logprobs_from_logits(logits, ids, temperature), lp)
    assert torch.allclose(ent, entropy_from_logits(logits / temperature), atol=1e-5)
    assert not torch.allclose(lp, logprobs_from_logits(logits, ids))


def test_scoring_refuses_a_non_positive_temperature():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        logprobs_from_logits(torch.randn(1, 3, 5), T([[1, 2, 3]]), 0.0)


def test_a_batch_keeps_its_sampling_temperature_through_select_and_moves():
    batch = PPOBatch.from_sequences([[1, 2], [3]], [[4, 5], [6, 7, 8]], [1.0, 0.0], pad_id=0, temperature=0.8)
    assert batch.select(T([1])).temperature == 0.8 and batch.to("cpu").temperature == 0.8
    assert len(batch.select(T([1]))) == 1
    with pytest.raises(ValueError, match="PPOBatch.temperature must be > 0"):
        PPOBatch.from_sequences([[1]], [[2]], [0.0], pad_id=0, temperature=0.0)
