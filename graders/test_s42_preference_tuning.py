"""Public graders for s42 preference tuning: response log-probabilities against a per-token
loop over ragged, padded batches; the Bradley-Terry loss as a logistic-regression log-loss,
stable for large margins; ranking accuracy; the reward model's read-out position; the DPO
loss against its formula (hand-worked and a float64 re-derivation), log 2 at policy ==
reference, finite-difference gradients and beta's effect; train_dpo and train_reward_model
against hand-written loops, and a frozen reference.

The language model is a tiny causal one (a running sum of embeddings through a tanh), so a
per-token loop over prefixes is cheap and exact.
"""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graders.helpers import assert_close, check_shape, gradcheck

LOG2 = math.log(2.0)


def f64(value) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64)


class TinyLM(nn.Module):
    """forward(idx) -> (logits (B, T, V), None); position t sees tokens 0..t only."""

    def __init__(self, vocab: int = 11, dim: int = 8, seed: int = 0, dropout: float = 0.0,
                 dtype=torch.float64):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.emb = nn.Parameter(torch.randn(vocab, dim, generator=g, dtype=dtype) * 0.7)
        self.pos = nn.Parameter(torch.randn(64, dim, generator=g, dtype=dtype) * 0.3)
        self.out = nn.Parameter(torch.randn(dim, vocab, generator=g, dtype=dtype) * 0.7)
        self.drop = nn.Dropout(dropout)

    def hidden(self, idx):
        x = self.emb[idx].cumsum(dim=1) / 3 + self.pos[: idx.size(1)]
        return self.drop(torch.tanh(x))

    def forward(self, idx, targets=None):
        return self.hidden(idx) @ self.out, None


class Hidden(nn.Module):
    """A reward model's body: ids (B, T) -> the language model's hidden states (B, T, dim)."""

    def __init__(self, lm: TinyLM):
        super().__init__()
        self.lm = lm

    def forward(self, idx):
        return self.lm.hidden(idx)


def pad_batch(rows, pad: int = 0):
    """rows of (prompt ids, response ids) -> (ids (B, T) right-padded, response mask (B, T))."""
    width = max(len(p) + len(r) for p, r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for b, (p, r) in enumerate(rows):
        ids[b, : len(p) + len(r)] = torch.tensor(list(p) + list(r))
        mask[b, len(p): len(p) + len(r)] = True
    return ids, mask


def ragged_rows(rng, n: int, vocab: int = 11):
    """n (prompt, response) pairs of token ids 1..vocab-1, prompts of 1-5, responses of 1-4."""
    return [(rng.integers(1, vocab, rng.integers(1, 6)).tolist(),
             rng.integers(1, vocab, rng.integers(1, 5)).tolist()) for _ in range(n)]


def loop_logprobs(model, ids, mask) -> torch.Tensor:
    """The brute force: feed each prefix, score the next token, sum over the response."""
    out = []
    for b in range(ids.size(0)):
        total = torch.zeros((), dtype=torch.float64)
        for t in range(1, ids.size(1)):
            if mask[b, t]:
                logits = model(ids[b: b + 1, :t])[0][0, -1]
                total = total + torch.log_softmax(logits.double(), -1)[ids[b, t]]
        out.append(total)
    return torch.stack(out)


def preference_batch(rng, n: int, vocab: int = 11):
    """(chosen_ids, chosen_mask, rejected_ids, rejected_mask): same prompt, two responses."""
    prompts = ragged_rows(rng, n, vocab)
    chosen = pad_batch([(p, r) for p, r in prompts])
    rejected = pad_batch([(p, rng.integers(1, vocab, rng.integers(1, 5)).tolist())
                          for p, _ in prompts])
    return (*chosen, *rejected)


def ref_logprobs(model, ids, mask):
    logp = torch.log_softmax(model(ids)[0][:, :-1], -1)
    return (logp.gather(-1, ids[:, 1:, None])[..., 0] * mask[:, 1:]).sum(-1)


def ref_dpo(pi_c, pi_r, ref_c, ref_r, beta, eps=0.0):
    h = beta * ((pi_c - ref_c) - (pi_r - ref_r))
    return -((1 - eps) * F.logsigmoid(h) + eps * F.logsigmoid(-h)).mean()


# --- response_logprobs -----------------------------------------------------------------------

@pytest.mark.points(3)
def test_response_logprobs_equal_a_per_token_loop_with_ragged_prompts_and_padding(impl, rng):
    model = TinyLM(seed=1)
    rows = ragged_rows(rng, 6)
    ids, mask = pad_batch(rows)
    got = impl.response_logprobs(model, ids, mask)
    check_shape(got, (6,), "response_logprobs(model, ids, mask): one number per sequence")
    # the loop feeds each prefix separately: float64 sums agree to rounding
    assert_close(got, loop_logprobs(model, ids, mask),
                 "response_logprobs against a loop that feeds each prefix and scores the next "
                 "token (the logits at t - 1 predict token t; only masked tokens count)",
                 rtol=1e-9, atol=1e-10)
    repadded = ids.clone()
    for b, (p, r) in enumerate(rows):
        repadded[b, len(p) + len(r):] = 7
    assert_close(impl.response_logprobs(model, repadded, mask), got,
                 "the padding after a response must not change its log-probability", rtol=1e-12)


@pytest.mark.points(1)
def test_response_logprobs_count_only_the_masked_tokens(impl, rng):
    model = TinyLM(seed=2)
    ids = torch.tensor(rng.integers(1, 11, (3, 7)))
    logp = torch.log_softmax(model(ids)[0], -1)
    one = torch.zeros((3, 7), dtype=torch.bool)
    one[:, 4] = True
    assert_close(impl.response_logprobs(model, ids, one), logp[torch.arange(3), 3, ids[:, 4]],
                 "a mask with only position 4 on gives log softmax(logits[:, 3])[ids[:, 4]]",
                 rtol=1e-12)
    none = torch.zeros((3, 7), dtype=torch.bool)
    assert_close(impl.response_logprobs(model, ids, none), torch.zeros(3),
                 "an empty response mask sums nothing: 0")
    first = none.clone()
    first[:, 0] = True
    assert_close(impl.response_logprobs(model, ids, first), torch.zeros(3),
                 "position 0 has nothing before it to predict it and is never counted")
    as_int = torch.zeros((3, 7), dtype=torch.long)
    as_int[:, 2:5] = 1
    assert_close(impl.response_logprobs(model, ids, as_int),
                 impl.response_logprobs(model, ids, as_int.bool()),
                 "a 0/1 integer mask means the same as a boolean one", rtol=1e-12)


@pytest.mark.points(1)
def test_response_logprobs_let_gradients_reach_the_model(impl, rng):
    model = TinyLM(seed=3)
    ids, mask = pad_batch(ragged_rows(rng, 4))
    impl.response_logprobs(model, ids, mask).sum().backward()
    assert model.out.grad is not None and model.out.grad.abs().sum() > 0, (
        "response_logprobs must keep the autograd graph: DPO trains through it")


# --- Bradley-Terry and ranking ---------------------------------------------------------------

@pytest.mark.points(2)
def test_bradley_terry_loss_is_a_logistic_regression_log_loss(impl, rng):
    from sklearn.metrics import log_loss
    rc = torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)
    rr = torch.tensor([0.0, 0.0, 3.0], dtype=torch.float64)
    want = (math.log1p(math.exp(-1)) + LOG2 + math.log1p(math.exp(1))) / 3
    assert_close(impl.bradley_terry_loss(rc, rr), f64(want),
                 "bradley_terry_loss([1, 0, 2], [0, 0, 3]) = mean(log(1 + e^-(rc - rr)))",
                 rtol=1e-12)
    a = torch.tensor(rng.normal(0, 2, 40))
    b = torch.tensor(rng.normal(0, 2, 40))
    swap = rng.random(40) < 0.5  # a pair listed the other way round: label 0
    first, second = torch.where(torch.tensor(swap), b, a), torch.where(torch.tensor(swap), a, b)
    p_first = torch.sigmoid(first - second).numpy()
    sk = log_loss(1 - swap.astype(int), p_first, labels=[0, 1])
    assert_close(impl.bradley_terry_loss(a, b), f64(sk),
                 "Bradley-Terry equals the log-loss of a logistic regression on the reward "
                 "difference (scikit-learn's log_loss)", rtol=1e-9)


@pytest.mark.points(1)
def test_bradley_terry_loss_is_stable_for_large_margins(impl):
    rc = torch.tensor([0.0, 500.0, 0.0], requires_grad=True)
    rr = torch.tensor([1000.0, 0.0, 0.0])
    loss = impl.bradley_terry_loss(rc, rr)
    # float32: the three terms are 1000, 0 and log 2
    assert_close(loss.detach(), torch.tensor((1000 + 0 + LOG2) / 3),
                 "a margin of -1000 costs 1000 (not inf): use logsigmoid, never "
                 "log(sigmoid(.))", rtol=1e-6)
    loss.backward()
    assert_close(rc.grad, torch.tensor([-1 / 3, 0.0, -1 / 6]),
                 "the gradient -sigmoid(-(rc - rr)) / n stays finite", rtol=1e-6, atol=1e-7)


@pytest.mark.points(1)
def test_ranking_accuracy_counts_strictly_higher_chosen_rewards(impl):
    rc = torch.tensor([3.0, 1.0, 2.0, 2.0, -1.0])
    rr = torch.tensor([1.0, 2.0, 2.0, 0.0, -3.0])
    got = impl.ranking_accuracy(rc, rr)
    assert isinstance(got, float), f"ranking_accuracy returns a Python float, got {type(got)}"
    assert got == pytest.approx(3 / 5), (
        f"3 of 5 pairs rank the chosen answer strictly higher (the tie does not count); got {got}")
    assert impl.ranking_accuracy(torch.ones(4), torch.ones(4)) == 0.0, (
        "a constant reward model ranks nothing correctly: ties are not correct rankings")
    assert impl.ranking_accuracy(torch.tensor([2.0]), torch.tensor([1.0])) == 1.0
    with pytest.raises(ValueError):
        impl.ranking_accuracy(torch.zeros(0), torch.zeros(0))


# --- the reward model ------------------------------------------------------------------------

@pytest.mark.points(2)
def test_reward_model_reads_the_last_masked_position(impl, rng):
    lm = TinyLM(seed=4)
    rm = impl.RewardModel(Hidden(lm), 8).double()
    ids, mask = pad_batch(ragged_rows(rng, 5))
    got = rm(ids, mask)
    check_shape(got, (5,), "RewardModel(ids, mask): one scalar per sequence")
    last = [max(t for t in range(ids.size(1)) if mask[b, t]) for b in range(5)]
    want = torch.stack([rm.head(lm.hidden(ids[b: b + 1, : last[b] + 1])[0, -1])[0]
                        for b in range(5)])
    assert_close(got, want, "the reward is head(hidden state at the row's last True position): "
                 "not the last column (padding) and not mask.sum() - 1 (the prompt is not in "
                 "the mask)", rtol=1e-10)
    with pytest.raises(ValueError):
        rm(ids, torch.zeros_like(mask))


@pytest.mark.points(2)
def test_train_reward_model_equals_a_hand_written_loop(impl, rng):
    batches = [preference_batch(rng, 4) for _ in range(2)]
    ours = impl.RewardModel(Hidden(TinyLM(seed=5)), 8).double()
    theirs = copy.deepcopy(ours)
    losses = impl.train_reward_model(ours, batches, steps=3, lr=0.05)
    opt = torch.optim.AdamW(theirs.parameters(), lr=0.05)
    want = []
    for i in range(3):
        ci, cm, ri, rmask = batches[i % 2]
        loss = -F.logsigmoid(theirs(ci, cm) - theirs(ri, rmask)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        want.append(loss.item())
    assert_close(f64(losses), f64(want),
                 "train_reward_model's losses, step i on batches[i % len(batches)], each "
                 "before its update", rtol=1e-9)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        assert_close(p, q, f"parameter {name} after 3 AdamW(lr) steps", rtol=1e-8, atol=1e-10)


# --- the DPO loss ----------------------------------------------------------------------------

@pytest.mark.points(2)
def test_dpo_loss_equals_the_formula_on_a_hand_worked_pair(impl):
    t = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    loss, rc, rr = impl.dpo_loss(t(-5.0), t(-7.0), t(-6.0), t(-6.0), beta=0.1)
    # h = 0.1 * ((-5 + 6) - (-7 + 6)) = 0.2; loss = log(1 + e^-0.2)
    assert_close(loss, f64(math.log1p(math.exp(-0.2))),
                 "pi = (-5, -7), ref = (-6, -6), beta 0.1: h = 0.2, loss = log(1 + e^-0.2)",
                 rtol=1e-12)
    assert_close(rc, t(0.1), "chosen reward beta * (pi_c - ref_c) = 0.1", rtol=1e-12)
    assert_close(rr, t(-0.1), "rejected reward beta * (pi_r - ref_r) = -0.1", rtol=1e-12)
    loss, _, _ = impl.dpo_loss(t(-5.0), t(-7.0), t(-6.0), t(-6.0), beta=0.1, label_smoothing=0.25)
    want = -(0.75 * math.log(1 / (1 + math.exp(-0.2))) + 0.25 * math.log(1 / (1 + math.exp(0.2))))
    assert_close(loss, f64(want),
                 "label smoothing 0.25: -(0.75 log sigma(h) + 0.25 log sigma(-h))", rtol=1e-12)


@pytest.mark.points(2)
def test_dpo_loss_equals_a_float64_re_derivation(impl, rng):
    v = rng.normal(-20, 3, (4, 16))
    for beta, eps in ((0.1, 0.0), (0.5, 0.1), (2.0, 0.3)):
        loss, rc, rr = impl.dpo_loss(*map(torch.tensor, v), beta=beta, label_smoothing=eps)
        h = beta * ((v[0] - v[2]) - (v[1] - v[3]))
        want = np.mean((1 - eps) * np.logaddexp(0, -h) + eps * np.logaddexp(0, h))
        assert_close(loss, f64(want), f"the DPO loss at beta {beta}, label smoothing "
                     f"{eps}, against NumPy in float64", rtol=1e-10)
        assert_close(rc, torch.tensor(beta * (v[0] - v[2])), f"chosen rewards at beta {beta}",
                     rtol=1e-12)
        assert_close(rr, torch.tensor(beta * (v[1] - v[3])), f"rejected rewards at beta {beta}",
                     rtol=1e-12)
        check_shape(loss, (), "the DPO loss is a scalar (a mean over pairs)")


@pytest.mark.points(1)
def test_dpo_loss_is_log_2_when_the_policy_is_the_reference(impl, rng):
    pi_c, pi_r = torch.tensor(rng.normal(-9, 2, 5)), torch.tensor(rng.normal(-9, 2, 5))
    for beta, eps in ((0.1, 0.0), (3.0, 0.2)):
        loss, rc, rr = impl.dpo_loss(pi_c, pi_r, pi_c.clone(), pi_r.clone(), beta, eps)
        assert_close(loss, f64(LOG2), f"policy == reference gives h = 0 and loss log 2 "
                     f"(beta {beta}, smoothing {eps})", rtol=1e-12)
        assert_close(rc, torch.zeros(5), "policy == reference: zero implicit rewards")
        assert_close(rr, torch.zeros(5), "policy == reference: zero implicit rewards")


@pytest.mark.points(2)
def test_dpo_loss_gradient_matches_finite_differences(impl, rng):
    v = rng.normal(-10, 2, (4, 6))
    x = torch.tensor(v, requires_grad=True)
    loss, _, _ = impl.dpo_loss(x[0], x[1], x[2], x[3], beta=0.7, label_smoothing=0.15)
    loss.backward()

    def f():
        t = torch.tensor(v)
        return impl.dpo_loss(t[0], t[1], t[2], t[3], beta=0.7, label_smoothing=0.15)[0].item()

    gradcheck(f, v, x.grad, "d DPO loss / d (pi_c, pi_r, ref_c, ref_r)")


@pytest.mark.points(2)
def test_dpo_gradient_raises_chosen_and_lowers_rejected_log_probs(impl, rng):
    pi_c = torch.tensor(rng.normal(-8, 1, 6), requires_grad=True)
    pi_r = torch.tensor(rng.normal(-8, 1, 6), requires_grad=True)
    ref_c, ref_r = torch.tensor(rng.normal(-8, 1, 6)), torch.tensor(rng.normal(-8, 1, 6))
    beta = 0.5
    loss, rc, rr = impl.dpo_loss(pi_c, pi_r, ref_c, ref_r, beta)
    loss.backward()
    h = beta * ((pi_c - ref_c) - (pi_r - ref_r)).detach()
    weight = beta * torch.sigmoid(-h) / 6
    assert (pi_c.grad < 0).all() and (pi_r.grad > 0).all(), (
        "descending the DPO loss must raise the chosen log-prob (negative gradient) and lower "
        f"the rejected one; got d/d pi_c = {pi_c.grad.tolist()}")
    assert_close(pi_c.grad, -weight, "d loss / d pi_c = -beta sigma(-h) / n: pairs the model "
                 "ranks wrongly weigh more", rtol=1e-10)
    assert_close(pi_r.grad, weight, "d loss / d pi_r = +beta sigma(-h) / n", rtol=1e-10)
    assert not rc.requires_grad and not rr.requires_grad, (
        "the rewards are for logging: return them detached")


@pytest.mark.points(1)
def test_beta_scales_rewards_and_sharpens_the_loss(impl):
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    losses = []
    for beta in (0.1, 1.0, 5.0):
        loss, rc, rr = impl.dpo_loss(t(-4.0), t(-6.0), t(-5.0), t(-5.0), beta)
        assert_close(rc - rr, t(2 * beta), f"the reward margin is beta * 2 at beta {beta}",
                     rtol=1e-12)
        losses.append(loss.item())
    assert losses[0] > losses[1] > losses[2], (
        "the same correct log-ratio margin costs less at a larger beta; got losses "
        f"{losses} at beta 0.1, 1, 5")
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError):
            impl.dpo_loss(t(0.0), t(0.0), t(0.0), t(0.0), bad)
    for bad in (-0.1, 0.5):
        with pytest.raises(ValueError):
            impl.dpo_loss(t(0.0), t(0.0), t(0.0), t(0.0), 0.1, bad)


# --- train_dpo -------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_one_dpo_step_raises_the_chosen_margin_over_the_reference(impl, rng):
    policy = TinyLM(seed=6)
    reference = copy.deepcopy(policy)
    batch = preference_batch(rng, 6)
    history = impl.train_dpo(policy, reference, [batch], steps=1, beta=0.5, lr=0.05)
    assert len(history) == 1, f"one step, one record; got {len(history)}"
    assert history[0]["loss"] == pytest.approx(LOG2, rel=1e-9), (
        "before the first update the policy is the reference: the loss is log 2")
    ci, cm, ri, rmask = batch
    with torch.no_grad():
        margin = ((ref_logprobs(policy, ci, cm) - ref_logprobs(reference, ci, cm))
                  - (ref_logprobs(policy, ri, rmask) - ref_logprobs(reference, ri, rmask)))
    assert margin.mean() > 0, (
        "one DPO step must raise log pi(chosen) - log pi(rejected) relative to the reference; "
        f"the mean log-ratio margin is {margin.mean().item():.4g}")


@pytest.mark.points(3)
def test_train_dpo_equals_a_hand_written_loop(impl, rng):
    batches = [preference_batch(rng, 4) for _ in range(2)]
    policy, reference = TinyLM(seed=7), TinyLM(seed=8)
    theirs = copy.deepcopy(policy)
    history = impl.train_dpo(policy, reference, batches, steps=3, beta=0.3, lr=0.02,
                             label_smoothing=0.1)
    opt = torch.optim.AdamW(theirs.parameters(), lr=0.02)
    for i in range(3):
        ci, cm, ri, rmask = batches[i % 2]
        with torch.no_grad():
            ref_c, ref_r = ref_logprobs(reference, ci, cm), ref_logprobs(reference, ri, rmask)
        pi_c, pi_r = ref_logprobs(theirs, ci, cm), ref_logprobs(theirs, ri, rmask)
        loss = ref_dpo(pi_c, pi_r, ref_c, ref_r, 0.3, 0.1)
        want = {"loss": loss.item(), "chosen_reward": (0.3 * (pi_c - ref_c)).mean().item(),
                "rejected_reward": (0.3 * (pi_r - ref_r)).mean().item(),
                "chosen_logp": pi_c.mean().item(), "rejected_logp": pi_r.mean().item()}
        for key, value in want.items():
            assert history[i][key] == pytest.approx(value, rel=1e-8, abs=1e-10), (
                f"step {i}: history[{i}]['{key}'] should be {value:.8g} (the batch mean before "
                f"the update, on batches[i % len(batches)]), got {history[i][key]}")
        opt.zero_grad()
        loss.backward()
        opt.step()
    for (name, p), q in zip(policy.named_parameters(), theirs.parameters(), strict=True):
        assert_close(p, q, f"policy parameter {name} after 3 AdamW(lr) steps on the DPO loss",
                     rtol=1e-8, atol=1e-10)


@pytest.mark.points(2)
def test_the_reference_gets_no_gradient_and_never_changes(impl, rng):
    policy = TinyLM(seed=9)
    reference = copy.deepcopy(policy)
    before = copy.deepcopy(reference.state_dict())
    impl.train_dpo(policy, reference, [preference_batch(rng, 4)], steps=3, beta=0.2, lr=0.05)
    for name, p in reference.named_parameters():
        assert p.grad is None, (f"the reference's {name} received a gradient: compute its "
                                "log-probs under torch.no_grad()")
        assert torch.equal(p, before[name]), f"the reference's {name} changed: it must stay frozen"
    assert any(not torch.equal(p, before[n]) for n, p in policy.named_parameters()), (
        "the policy did not change: train_dpo must step an optimizer over policy.parameters()")
