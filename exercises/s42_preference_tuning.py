"""s42 · Preference tuning: a Bradley-Terry reward model and Direct Preference Optimization.

You build
    response_logprobs(model, ids, response_mask)
                                   per sequence, the sum of log p(token | everything before it)
                                   over the response tokens only (prompt and padding excluded)
    bradley_terry_loss(r_chosen, r_rejected)
                                   -mean log sigmoid(r_chosen - r_rejected), stable for any margin
    ranking_accuracy(r_chosen, r_rejected)
                                   the fraction of pairs whose chosen reward is strictly higher
    RewardModel(body, n_embd)      a scalar head on the hidden state of a sequence's last token
    train_reward_model(rm, batches, steps, lr)
                                   AdamW on the Bradley-Terry loss
    dpo_loss(pi_c, pi_r, ref_c, ref_r, beta, label_smoothing)
                                   the DPO loss and the implicit rewards beta * (pi - ref)
    train_dpo(policy, reference, batches, steps, beta, lr)
                                   AdamW on the DPO loss against a frozen reference

How it differs from the previous steps
    Supervised fine-tuning (s37) shows the model one right answer and raises its likelihood.
    Preference data says less and more: for a prompt x, answer y_w was preferred to answer
    y_l. RLHF (InstructGPT) first fits a reward model to such pairs, then optimises the policy
    against it with PPO under a KL penalty to the SFT model. DPO (Rafailov et al. 2023) shows
    that the optimum of that KL-regularised problem can be reached with one classification
    loss on the pairs themselves: no reward model, no sampling, no PPO.

The math (sigma is the logistic function, log p(y | x) the summed response log-probability)
    Bradley-Terry: P(y_w > y_l | x) = sigma(r(x, y_w) - r(x, y_l)); fitting r by maximum
    likelihood gives L_BT = -mean log sigma(r_w - r_l), a logistic regression on the reward
    difference. log sigma(z) = -softplus(-z): never compute log(sigmoid(z)), which is log 0 =
    -inf once z < -100 or so in float32.

    The KL-regularised objective max E[r] - beta * KL(pi || pi_ref) has the optimum
    pi*(y|x) = pi_ref(y|x) exp(r(x,y) / beta) / Z(x), so r(x,y) = beta log(pi*/pi_ref) + beta
    log Z(x). Put that in Bradley-Terry and Z(x) cancels in the difference:
        h = beta * [(log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l))]
        L_DPO = -mean log sigma(h)
    The implicit rewards beta * (log pi - log pi_ref) of each answer are what you log (their
    difference is the margin h). With label smoothing eps (the "conservative DPO" of TRL, for
    labels that are wrong with probability eps):
        L = -mean[(1 - eps) log sigma(h) + eps log sigma(-h)]
    At pi = pi_ref, h = 0 and L = log 2 whatever eps is. dL/dh = -(1 - eps) sigma(-h) + eps
    sigma(h) < 0 while h is small: gradient descent raises log pi(y_w) and lowers log pi(y_l),
    each pair weighted by how wrongly the model currently ranks it.

Shapes
    ids (B, T) int64, right-padded; response_mask (B, T) bool, True on the response tokens;
    a model maps ids to (logits (B, T, V), anything), as s26's GPT does; log-probs and
    rewards are (B,). A preference batch is (chosen_ids, chosen_mask, rejected_ids,
    rejected_mask), the masks marking each answer's response tokens.

You should be able to explain
    - why the logits at position t are scored against the token at t + 1, and why prompt
      tokens must not count (the two answers share the prompt, and DPO compares answers);
    - why a reward model needs pairs, not scores: Bradley-Terry fixes rewards only up to a
      constant per prompt;
    - what beta does: small beta lets the policy move far from the reference, large beta holds
      it close (the same margin costs beta times more);
    - why the reference model must stay frozen, and why DPO can still lower the chosen
      answer's log-probability while it widens the margin.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def response_logprobs(model: nn.Module, ids: torch.Tensor,
                      response_mask: torch.Tensor) -> torch.Tensor:
    """(B,) float: for each row b, sum over t >= 1 with response_mask[b, t] of
    log softmax(logits[b, t - 1])[ids[b, t]], where logits = model(ids)[0] (the logits at
    t - 1 predict token t; position 0 is never counted). Gradients flow through the model."""
    if ids.shape != response_mask.shape:
        raise ValueError(f"ids {tuple(ids.shape)} and response_mask "
                         f"{tuple(response_mask.shape)} must have the same shape")
    logits = model(ids)[0]
    raise NotImplementedError("s42 preference tuning: shift by one, gather each next token's log-prob, sum where the mask is on")


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """-mean(log sigmoid(r_chosen - r_rejected)), a scalar, finite for any finite margin."""
    raise NotImplementedError("s42 preference tuning: the mean of -logsigmoid of the reward difference")


def ranking_accuracy(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> float:
    """The fraction of pairs with r_chosen > r_rejected (a tie is not a correct ranking);
    ValueError on no pairs."""
    if r_chosen.numel() == 0:
        raise ValueError("ranking_accuracy needs at least one pair")
    raise NotImplementedError("s42 preference tuning: the mean of a strict comparison")


class RewardModel(nn.Module):
    """r(ids, mask) = head(body(ids)[b, last_b]), where body maps (B, T) ids to (B, T, n_embd)
    hidden states and last_b is the last position where mask[b] is True (for a right-padded
    batch, the last real token: a causal body has read the whole sequence there)."""

    def __init__(self, body: nn.Module, n_embd: int):
        super().__init__()
        self.body = body
        self.head = nn.Linear(n_embd, 1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B,) rewards, one scalar per sequence, read at its last masked position."""
        if not mask.any(dim=-1).all():
            raise ValueError("every row of mask needs at least one True position")
        hidden = self.body(ids)
        raise NotImplementedError("s42 preference tuning: find each row's last True position, apply the head to its hidden state")


def train_reward_model(rm: nn.Module, batches: list, steps: int, lr: float) -> list[float]:
    """steps AdamW(rm.parameters(), lr) updates of bradley_terry_loss(rm(chosen_ids,
    chosen_mask), rm(rejected_ids, rejected_mask)), step i on batches[i % len(batches)];
    returns each step's loss (before its update)."""
    opt = torch.optim.AdamW(rm.parameters(), lr=lr)
    losses = []
    raise NotImplementedError("s42 preference tuning: forward both answers, Bradley-Terry loss, backward, step")
    return losses


def dpo_loss(pi_chosen: torch.Tensor, pi_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float, label_smoothing: float = 0.0):
    """(loss, chosen_rewards, rejected_rewards): h = beta * ((pi_c - ref_c) - (pi_r - ref_r)),
    loss = -mean((1 - eps) * logsigmoid(h) + eps * logsigmoid(-h)) with eps = label_smoothing,
    rewards = beta * (pi - ref) per pair, detached. beta > 0 and 0 <= eps < 0.5 (ValueError)."""
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if not 0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    raise NotImplementedError("s42 preference tuning: log-ratios, the margin h, the smoothed logistic loss, detached rewards")


def train_dpo(policy: nn.Module, reference: nn.Module, batches: list, steps: int, beta: float,
              lr: float, label_smoothing: float = 0.0) -> list[dict]:
    """steps AdamW(policy.parameters(), lr) updates of dpo_loss on batches[i % len(batches)]
    (both models in eval mode; the reference's log-probs under torch.no_grad(), so it gets no
    gradient and never changes). Returns per step, before its update, {"loss", "chosen_reward",
    "rejected_reward", "chosen_logp", "rejected_logp"}: batch means, as floats."""
    policy.eval()
    reference.eval()
    opt = torch.optim.AdamW(policy.parameters(), lr=lr)
    history = []
    raise NotImplementedError("s42 preference tuning: reference log-probs without grad, policy log-probs with, dpo_loss, step")
    return history
