"""The equations of PPO for language models, as plain functions on [B, T] tensors.

No engines, no distributed code: everything here can be checked by hand (tests/
test_learner_math.py does).  Conventions, used everywhere in learner/:

* Every per-token tensor is [B, T] over the full right-padded sequence (prompt +
  completion), aligned to tokens: column t holds the log-probability of token t given
  tokens < t, the value of the state in which token t was chosen, the reward for
  emitting token t.  Column 0 (no state before it) is never an action.
* Masks are 0/1 tensors of the same shape.  `action_mask` marks completion tokens the
  policy emitted (no prompt, no canonical prefix, no padding); `policy_mask` is
  action_mask AND FGO's executed-code mask.  Which mask each quantity uses:

      quantity                        mask          why
      per-token KL penalty, rewards   action_mask   every emitted token moved away from the reference
      GAE, returns                    action_mask   the MDP's steps are the emitted tokens
      advantage whitening             action_mask   statistics of the advantages GAE produced
      value loss                      action_mask   the critic predicts returns of all states
      policy loss, entropy bonus      policy_mask   FGO: only executed code is optimised
      KL in the loss (kl_mode loss)   policy_mask   it is part of the policy loss
      logged KL/entropy/clipfrac      the mask of the loss they describe

  StepCoder is explicit only about the policy loss; the other rows are our choice.

Advantage estimators (`learner.advantage_estimator`).  Each turns a sample's program
reward R into a sequence score s, puts s on the last action token (plus -beta * KL_t on
every action token when the KL is in the reward), and makes advantages from those token
rewards:

    gae           s = R                                  A = GAE(r, V), whitened        (critic)
    grpo          s = (R - mean_g R) / (std_g R + eps)   A_t = sum_{t'>=t} r_t'         (no critic)
                  (Dr. GRPO: s = R - mean_g R)
    rloo          s = R - mean of the other samples of g A_t = sum_{t'>=t} r_t'
    reinforce_pp  s = R                                  A = whiten(sum_{t'>=t} r_t')   (batch-normalised)

where g is the sample's group (the samples of one prompt: one problem at one start
point); a group of one has s = 0 under grpo and rloo (no baseline to compare with).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over the tokens where mask is 1 (0 when there are none, with zero gradient)."""
    return (x * mask).sum() / mask.sum().clamp(min=1)


def masked_var(x: Tensor, mask: Tensor) -> Tensor:
    """Unbiased variance over masked tokens (Bessel's correction, as OpenRLHF and TRL)."""
    mean = masked_mean(x, mask)
    n = mask.sum()
    return ((x - mean) ** 2 * mask).sum() / (n - 1).clamp(min=1)


def whiten(x: Tensor, mask: Tensor, shift_mean: bool = True, eps: float = 1e-8) -> Tensor:
    """(x - mean) / std over masked tokens; tokens outside the mask come out as 0."""
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask


def logprobs_from_logits(logits: Tensor, input_ids: Tensor, temperature: float = 1.0) -> Tensor:
    """log pi(token_t | tokens_<t) as [B, T]: logits[:, t-1] scores input_ids[:, t]; column 0 is 0.
    `temperature` scores under softmax(logits / temperature), the policy that sampled."""
    return logprobs_and_entropy(logits, input_ids, entropy=False, temperature=temperature)[0]


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy of the distribution each token was drawn from, aligned like logprobs: [B, T]."""
    return _entropy(torch.log_softmax(logits[:, :-1].float(), dim=-1))


def logprobs_and_entropy(logits: Tensor, input_ids: Tensor, entropy: bool = True,
                         entropy_grad: bool = True, temperature: float = 1.0) -> tuple[Tensor, Tensor | None]:
    """Token log-probs and (optionally) entropies from ONE log-softmax: in an update the
    [B, T, vocab] float copy is the largest tensor, so it is made once, not per quantity.
    `entropy_grad=False` computes the entropy (for logging) outside the autograd graph.
    `temperature` (> 0) divides the logits first, as the sampler did."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 to score tokens, got {temperature}")
    scores = logits[:, :-1].float()
    logp = torch.log_softmax(scores if temperature == 1.0 else scores / temperature, dim=-1)
    taken = F.pad(logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1), (1, 0))
    if not entropy:
        return taken, None
    if entropy_grad:
        return taken, _entropy(logp)
    with torch.no_grad():
        return taken, _entropy(logp.detach())


def _entropy(logp: Tensor) -> Tensor:
    return F.pad(-(logp.exp() * logp).sum(-1), (1, 0))


def compute_kl(logprobs: Tensor, ref_logprobs: Tensor, kind: str = "k1") -> Tensor:
    """Per-token estimate of KL(pi || pi_ref) from sampled tokens (Schulman's k1/k2/k3).

    k1 = log r is unbiased and is what Ziegler et al. and OpenRLHF put in the reward;
    k3 = (r' - 1) - log r' with r' = pi_ref/pi is non-negative with low variance.
    """
    log_ratio = logprobs.float() - ref_logprobs.float()
    if kind == "k1":
        return log_ratio
    if kind == "k2":
        return 0.5 * log_ratio**2
    if kind == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {kind!r}; choose k1, k2 or k3")


def last_token_mask(action_mask: Tensor) -> Tensor:
    """1 at the last action token of each row (where the program's reward lands)."""
    positions = torch.arange(action_mask.shape[1], device=action_mask.device)
    last = (action_mask * positions).argmax(dim=1)
    out = torch.zeros_like(action_mask)
    out[torch.arange(len(out)), last] = 1
    return out * action_mask


def token_rewards(rewards: Tensor, kl: Tensor, action_mask: Tensor, beta: float) -> Tensor:
    """r_t = -beta * KL_t on every action token, plus the sequence's score (the program's
    reward R under PPO) on the last one.  beta 0 leaves the KL out of the reward."""
    return (-beta * kl + rewards[:, None].float() * last_token_mask(action_mask)) * action_mask


def gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over the tokens in `mask` only.

    Masked-out tokens are skipped, not treated as steps: delta_t uses the value of the
    next *valid* token (0 after the last one, the episode ends), and A_t carries over
    them unchanged.  Returns (advantages, returns), both 0 outside the mask.
    """
    mask = mask.float()
    advantages = torch.zeros_like(values, dtype=torch.float32)
    next_value = torch.zeros(values.shape[0], device=values.device)
    next_advantage = torch.zeros_like(next_value)
    for t in reversed(range(values.shape[1])):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        a_t = delta + gamma * lam * next_advantage
        advantages[:, t] = a_t * m
        next_advantage = torch.where(m > 0, a_t, next_advantage)
        next_value = torch.where(m > 0, values[:, t].float(), next_value)
    returns = (advantages + values) * mask
    return advantages, returns


def group_scores(rewards: Tensor, groups: Tensor, estimator: str, std_normalize: bool = True,
                 eps: float = 1e-6) -> Tensor:
    """Sequence scores s [B] from program rewards R [B] and group ids [B] (table above).

    GRPO's std is the unbiased one (as torch.std, OpenRLHF and TRL); a group whose
    rewards are all equal scores 0 everywhere, the case DAPO's dynamic sampling drops."""
    rewards = rewards.float()
    if estimator in ("gae", "reinforce_pp"):
        return rewards
    if estimator not in ("grpo", "rloo"):
        raise ValueError(f"unknown advantage estimator {estimator!r}; choose gae, grpo, rloo or reinforce_pp")
    _, index = torch.unique(groups.to(rewards.device), return_inverse=True)
    count = torch.zeros(int(index.max()) + 1, device=rewards.device).index_add_(0, index, torch.ones_like(rewards))
    total = torch.zeros_like(count).index_add_(0, index, rewards)
    n, mean = count[index], (total / count)[index]
    if estimator == "rloo":
        others = (total[index] - rewards) / (n - 1).clamp(min=1)
        return torch.where(n > 1, rewards - others, torch.zeros_like(rewards))
    centred = torch.where(n > 1, rewards - mean, torch.zeros_like(rewards))
    if not std_normalize:
        return centred
    squares = torch.zeros_like(count).index_add_(0, index, centred**2)
    std = (squares[index] / (n - 1).clamp(min=1)).sqrt()
    return centred / (std + eps)


def discounted_returns(rewards: Tensor, mask: Tensor, gamma: float) -> Tensor:
    """G_t = sum over later action tokens t' >= t of gamma^(steps) r_t', over `mask` only
    (masked-out tokens are skipped, as in `gae`); 0 outside the mask.  With gamma 1 and
    the score on the last token, every action token's return is the score plus the KL
    penalties still ahead of it."""
    mask = mask.float()
    returns = torch.zeros_like(rewards, dtype=torch.float32)
    running = torch.zeros(rewards.shape[0], device=rewards.device)
    for t in reversed(range(rewards.shape[1])):
        m = mask[:, t]
        running = torch.where(m > 0, rewards[:, t] + gamma * running, running)
        returns[:, t] = running * m
    return returns


def aggregate(token_loss: Tensor, mask: Tensor, mode: str = "token_mean") -> Tensor:
    """One loss from per-token losses over `mask` (DAPO's loss aggregation):

        token_mean           sum(l * m) / sum(m)             every token weighs the same
        seq_mean_token_mean  mean over sequences of their token mean   every sequence weighs the same
        seq_mean_token_sum   mean over sequences of their token sum    (Dr. GRPO: no length normalisation)

    Sequences with no token in the mask (fully masked by FGO) are left out of the
    sequence means."""
    if mode == "token_mean":
        return masked_mean(token_loss, mask)
    per_seq = (token_loss * mask).sum(1)
    tokens = mask.sum(1)
    present = (tokens > 0).float()
    if mode == "seq_mean_token_mean":
        per_seq = per_seq / tokens.clamp(min=1)
    elif mode != "seq_mean_token_sum":
        raise ValueError(f"unknown loss aggregation {mode!r}; choose token_mean, seq_mean_token_mean "
                         f"or seq_mean_token_sum")
    return (per_seq * present).sum() / present.sum().clamp(min=1)


def policy_loss(logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor,
                clip_ratio: float | tuple[float, float], aggregation: str = "token_mean") -> tuple[Tensor, dict[str, Tensor]]:
    """PPO's clipped surrogate, -min(r A, clip(r, 1-eps_low, 1+eps_high) A), aggregated
    over `mask`; `clip_ratio` is eps, or (eps_low, eps_high) for DAPO's clip-higher.

    The log-ratio is masked before exp(): outside the mask old log-probs may be 0 or
    garbage, and exp of a large number times a 0 mask would still be NaN.
    """
    low, high = clip_ratio if isinstance(clip_ratio, tuple) else (clip_ratio, clip_ratio)
    log_ratio = (logprobs - old_logprobs) * mask
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - low, 1.0 + high)
    loss = aggregate(torch.maximum(unclipped, clipped), mask, aggregation)
    with torch.no_grad():
        stats = {
            "clipfrac": masked_mean((clipped > unclipped).float(), mask),
            "approx_kl": masked_mean(torch.expm1(log_ratio) - log_ratio, mask),  # k3 of old || new
        }
    return loss, stats


def overlong_penalty(length: int, max_new_tokens: int, cut: bool, penalty: float, buffer: int) -> float:
    """DAPO's over-length penalty for one completion (subtracted from its reward).

    With `buffer` 0 only a completion cut by the token limit is penalised, in full.  With
    a buffer, the penalty ramps in linearly over the last `buffer` tokens before the
    limit (DAPO's soft punishment), and a cut completion gets all of it."""
    if cut:
        return penalty
    if buffer <= 0:
        return 0.0
    over = length - (max_new_tokens - buffer)
    return penalty * min(1.0, max(0.0, over / buffer))


def value_loss(values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor,
               value_clip: float) -> tuple[Tensor, dict[str, Tensor]]:
    """0.5 * max((V - R)^2, (V_clipped - R)^2), V_clipped = V_old + clip(V - V_old, +-eps)."""
    clipped = old_values + torch.clamp(values - old_values, -value_clip, value_clip)
    unclipped_err = (values - returns) ** 2
    clipped_err = (clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped_err, clipped_err), mask)
    with torch.no_grad():
        stats = {"vf_clipfrac": masked_mean((clipped_err > unclipped_err).float(), mask)}
    return loss, stats


class KLController:
    """The KL coefficient beta: fixed, or adaptive as in Ziegler et al. (2019).

    beta <- beta * (1 + clip(KL / target - 1, -0.2, 0.2) * n / horizon), where KL is the
    measured per-sequence KL to the reference and n the number of sequences just used.
    """

    def __init__(self, beta: float, adaptive: bool = False, target: float = 0.02, horizon: int = 10_000):
        self.value, self.adaptive, self.target, self.horizon = beta, adaptive, target, horizon

    def update(self, kl: float, n_sequences: int) -> None:
        if not self.adaptive or not math.isfinite(kl):
            return
        error = min(max(kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_sequences / self.horizon

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value = float(state["value"])
