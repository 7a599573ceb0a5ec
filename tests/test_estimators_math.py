"""The critic-free estimators and DAPO's options against values computed by hand (no engines)."""

import math

import pytest
import torch

from core.settings import ConfigError, load_yaml
from cluster.config import TrainConfig
from learner.ppo_math import (aggregate, discounted_returns, group_scores, overlong_penalty, policy_loss,
                              token_rewards)

T = torch.tensor


def test_grpo_scores_are_group_normalised_by_hand():
    rewards = T([1.0, -1.0, 1.0, 0.5, 0.5, -0.3])
    groups = T([7, 7, 7, 2, 2, 9])  # group 7: three samples; group 2: equal rewards; group 9: alone
    scores = group_scores(rewards, groups, "grpo")
    # group 7: mean 1/3, unbiased std sqrt(((2/3)^2 * 2 + (4/3)^2) / 2) = sqrt(4/3)
    std = math.sqrt(4 / 3)
    expected = [(2 / 3) / std, (-4 / 3) / std, (2 / 3) / std, 0.0, 0.0, 0.0]
    assert torch.allclose(scores, T(expected), atol=1e-5)


def test_dr_grpo_skips_the_std_division():
    scores = group_scores(T([1.0, -1.0, 1.0, 2.0]), T([0, 0, 0, 1]), "grpo", std_normalize=False)
    assert torch.allclose(scores, T([2 / 3, -4 / 3, 2 / 3, 0.0]), atol=1e-6)


def test_rloo_uses_the_mean_of_the_other_samples():
    scores = group_scores(T([1.0, -1.0, 0.4, 3.0]), T([5, 5, 5, 6]), "rloo")
    # sample 0: 1 - (-1 + 0.4)/2 = 1.3; sample 1: -1 - (1 + 0.4)/2 = -1.7; sample 2: 0.4 - 0 = 0.4
    assert torch.allclose(scores, T([1.3, -1.7, 0.4, 0.0]), atol=1e-6)


def test_ppo_and_reinforce_pp_keep_the_raw_reward():
    rewards = T([1.0, -0.3])
    for estimator in ("gae", "reinforce_pp"):
        assert torch.equal(group_scores(rewards, T([0, 0]), estimator), rewards)
    with pytest.raises(ValueError, match="unknown advantage estimator 'ppo2'"):
        group_scores(rewards, T([0, 0]), "ppo2")


def test_discounted_returns_skip_masked_tokens():
    mask = T([[0, 1, 0, 1, 1, 0]])
    rewards = T([[9.0, -0.1, 5.0, -0.2, 1.0, 9.0]])
    ret = discounted_returns(rewards, mask, gamma=0.5)
    # G4 = 1; G3 = -0.2 + 0.5; G1 = -0.1 + 0.5 * 0.3 (token 2 is not a step)
    assert torch.allclose(ret, T([[0.0, -0.1 + 0.5 * 0.3, 0.0, 0.3, 1.0, 0.0]]), atol=1e-6)


def test_returns_with_the_score_on_the_last_token_and_kl_in_the_reward():
    mask = T([[0, 0, 1, 1, 1]])
    kl = T([[0.0, 0.0, 0.2, 0.1, -0.4]])
    r = token_rewards(T([2.0]), kl, mask, beta=0.5)
    ret = discounted_returns(r, mask, gamma=1.0)
    # every action token: the score plus the KL penalties still ahead (-0.1, -0.05, +0.2)
    assert torch.allclose(ret, T([[0.0, 0.0, 2.0 + 0.05, 2.0 + 0.15, 2.2]]), atol=1e-6)


def test_loss_aggregations_by_hand():
    loss = T([[0.0, 1.0, 3.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 5.0, 5.0, 5.0]])
    mask = T([[0, 1, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]])  # row 2 fully masked (FGO)
    assert math.isclose(float(aggregate(loss, mask, "token_mean")), 6.0 / 3)
    assert math.isclose(float(aggregate(loss, mask, "seq_mean_token_mean")), (2.0 + 2.0) / 2)
    assert math.isclose(float(aggregate(loss, mask, "seq_mean_token_sum")), (4.0 + 2.0) / 2)
    with pytest.raises(ValueError, match="unknown loss aggregation 'sum'"):
        aggregate(loss, mask, "sum")


@pytest.mark.parametrize("adv, ratio, expected", [
    (1.0, 1.5, -1.28),  # positive advantage: clipped at 1 + high = 1.28
    (1.0, 1.2, -1.2),  # inside the asymmetric range: not clipped
    (-1.0, 0.5, 0.8),  # negative advantage: clipped at 1 - low = 0.8
    (-1.0, 0.9, 0.9),
])
def test_asymmetric_clipping_by_hand(adv, ratio, expected):
    mask = T([[0.0, 1.0]])
    old = T([[0.0, 0.0]])
    new = T([[0.0, math.log(ratio)]])
    loss, _ = policy_loss(new, old, T([[0.0, adv]]), mask, (0.2, 0.28))
    assert math.isclose(float(loss), expected, rel_tol=1e-5)


def test_overlong_penalty_by_hand():
    assert overlong_penalty(100, 128, cut=True, penalty=0.5, buffer=0) == 0.5
    assert overlong_penalty(127, 128, cut=False, penalty=0.5, buffer=0) == 0.0
    assert overlong_penalty(118, 128, cut=False, penalty=0.5, buffer=16) == pytest.approx(0.5 * 6 / 16)
    assert overlong_penalty(100, 128, cut=False, penalty=0.5, buffer=16) == 0.0


def test_estimator_options_are_checked():
    cfg = load_yaml(TrainConfig, None, ["learner.advantage_estimator=rloo", "learner.clip_ratio_high=0.28",
                                        "learner.kl_mode=loss"])
    assert not cfg.learner.uses_critic and cfg.learner.clip_range == (0.2, 0.28)
    assert load_yaml(TrainConfig, None, []).learner.uses_critic
    with pytest.raises(ConfigError, match="learner.advantage_estimator: 'ppo' is not allowed"):
        load_yaml(TrainConfig, None, ["learner.advantage_estimator=ppo"])
    with pytest.raises(ConfigError, match="learner.kl_mode"):
        load_yaml(TrainConfig, None, ["learner.kl_mode=both"])
    with pytest.raises(ConfigError, match="learner.clip_ratio_low: -0.1 is out of range"):
        load_yaml(TrainConfig, None, ["learner.clip_ratio_low=-0.1"])
