"""Hidden graders for s42: a reward model trained on generated instruction pairs (correct
against corrupted answers) ranks held-out pairs; the losses stay finite for huge margins in
float32; train_dpo runs both models without dropout; masks with holes; gradients of the
Bradley-Terry loss; no steps changes nothing."""

import copy

import pytest
import torch
from torch import nn

from graders.helpers import assert_close, gradcheck
from graders.test_s42_preference_tuning import (
    LOG2,
    Hidden,
    TinyLM,
    f64,
    loop_logprobs,
    pad_batch,
    preference_batch,
)
from tools.instruct_data import make_examples


def corrupt(example: dict) -> str:
    """A wrong answer of the same kind: the word in lower case, or repeated only twice."""
    if example["task"] == "uppercase":
        return example["word"]
    return " ".join([example["word"]] * 2)


def encode_pairs(examples, stoi):
    chosen, rejected = [], []
    for e in examples:
        prompt = [stoi[c] for c in e["prompt"] + "\n"]
        chosen.append((prompt, [stoi[c] for c in e["response"]]))
        rejected.append((prompt, [stoi[c] for c in corrupt(e)]))
    return (*pad_batch(chosen), *pad_batch(rejected))


class BagBody(nn.Module):
    """A causal body: the running sum of character embeddings (enough to tell the pairs apart)."""

    def __init__(self, vocab: int, dim: int = 8):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb = nn.Parameter(torch.randn(vocab, dim, generator=g) * 0.1)

    def forward(self, idx):
        return self.emb[idx].cumsum(dim=1) / 10


@pytest.mark.points(3)
def test_a_reward_model_trained_on_generated_pairs_ranks_held_out_pairs(impl):
    torch.set_num_threads(1)
    tasks = ("uppercase", "repeat")
    train = make_examples(64, seed=3, tasks=tasks)
    test = make_examples(60, seed=4, split="test", tasks=tasks)
    chars = sorted({c for e in train + test for c in e["prompt"] + e["response"] + "\n"
                    + corrupt(e)})
    stoi = {c: i + 1 for i, c in enumerate(chars)}  # 0 is padding
    batches = [encode_pairs(train[i: i + 16], stoi) for i in range(0, 64, 16)]
    torch.manual_seed(0)
    rm = impl.RewardModel(BagBody(len(chars) + 1), 8)
    losses = impl.train_reward_model(rm, batches, steps=30, lr=0.05)
    assert losses[-1] < 0.5 * losses[0], (
        f"the Bradley-Terry loss should fall while the reward model trains; it went from "
        f"{losses[0]:.3f} to {losses[-1]:.3f}")
    ci, cm, ri, rmask = encode_pairs(test, stoi)
    with torch.no_grad():
        acc = impl.ranking_accuracy(rm(ci, cm), rm(ri, rmask))
    assert acc >= 0.9, (
        "a reward model trained on correct-vs-corrupted answers should rank at least 90% of "
        f"held-out pairs (new words) correctly; it ranked {acc:.0%}")


@pytest.mark.points(2)
def test_the_losses_stay_finite_for_huge_margins_in_float32(impl):
    h = torch.tensor([-300.0, 300.0, 0.0])
    zero = torch.zeros(3)
    loss, _, _ = impl.dpo_loss(h, zero, zero, zero, beta=1.0, label_smoothing=0.1)
    # terms: 0.9 * 300 + 0.1 * 0, 0.9 * 0 + 0.1 * 300, log 2
    assert_close(loss, torch.tensor((270 + 30 + LOG2) / 3),
                 "DPO with label smoothing 0.1 at margins -300, 300, 0: each term is "
                 "(1 - eps) softplus(-h) + eps softplus(h), finite", rtol=1e-6)
    loss, _, _ = impl.dpo_loss(zero, h, zero, zero, beta=2.0)
    assert_close(loss, torch.tensor((0 + 600 + LOG2) / 3),
                 "DPO at beta 2 with rejected log-ratios -300, 300, 0", rtol=1e-6)
    assert_close(impl.bradley_terry_loss(zero, -h), torch.tensor((300 + 0 + LOG2) / 3),
                 "Bradley-Terry with margins -300, 300, 0", rtol=1e-6)


@pytest.mark.points(1)
def test_bradley_terry_gradient_matches_finite_differences(impl, rng):
    v = rng.normal(0, 3, (2, 7))
    x = torch.tensor(v, requires_grad=True)
    impl.bradley_terry_loss(x[0], x[1]).backward()

    def f():
        t = torch.tensor(v)
        return impl.bradley_terry_loss(t[0], t[1]).item()

    gradcheck(f, v, x.grad, "d Bradley-Terry loss / d (r_chosen, r_rejected)")


@pytest.mark.points(2)
def test_train_dpo_runs_both_models_without_dropout(impl, rng):
    policy = TinyLM(seed=10, dropout=0.5)
    reference = copy.deepcopy(policy)
    reference.train()
    history = impl.train_dpo(policy, reference, [preference_batch(rng, 5)], steps=2, beta=0.4,
                             lr=0.01)
    assert history[0]["loss"] == pytest.approx(LOG2, rel=1e-9), (
        "with dropout active the policy and the reference differ at step 0: put both in eval "
        "mode so that the first loss is log 2")
    assert history[0]["chosen_reward"] == pytest.approx(0, abs=1e-12)
    assert history[1]["loss"] < LOG2, "after one step the DPO loss is below log 2"


@pytest.mark.points(1)
def test_zero_steps_change_nothing(impl, rng):
    policy = TinyLM(seed=11)
    before = copy.deepcopy(policy.state_dict())
    assert impl.train_dpo(policy, copy.deepcopy(policy), [preference_batch(rng, 3)], steps=0,
                          beta=0.1, lr=0.1) == []
    assert all(torch.equal(p, before[n]) for n, p in policy.named_parameters())


@pytest.mark.points(1)
def test_reward_model_and_log_probs_with_masks_that_have_holes(impl, rng):
    lm = TinyLM(seed=12)
    rm = impl.RewardModel(Hidden(lm), 8).double()
    ids = torch.tensor(rng.integers(1, 11, (3, 9)))
    mask = torch.zeros((3, 9), dtype=torch.bool)
    mask[0, [2, 5]] = True
    mask[1, [1, 8]] = True
    mask[2, [0]] = True
    want = torch.stack([rm.head(lm.hidden(ids)[b, t])[0] for b, t in ((0, 5), (1, 8), (2, 0))])
    assert_close(rm(ids, mask), want, "the reward is read at each row's LAST True position, "
                 "wherever the earlier ones are", rtol=1e-10)
    logp = torch.log_softmax(lm(ids)[0], -1).detach()
    want = f64([logp[0, 1, ids[0, 2]] + logp[0, 4, ids[0, 5]],
                logp[1, 0, ids[1, 1]] + logp[1, 7, ids[1, 8]], 0.0])
    assert_close(impl.response_logprobs(lm, ids, mask), want,
                 "response_logprobs sums exactly the masked positions", rtol=1e-10)


@pytest.mark.points(1)
def test_dpo_gradient_grows_with_beta_near_the_reference(impl):
    grads = []
    for beta in (0.1, 1.0):
        pi_c = f64([-3.0]).requires_grad_()
        loss, _, _ = impl.dpo_loss(pi_c, f64([-3.0]), f64([-3.0]), f64([-3.0]), beta)
        loss.backward()
        grads.append(pi_c.grad.item())
    # at h = 0, d loss / d pi_c = -beta * sigma(0) = -beta / 2
    assert grads == pytest.approx([-0.05, -0.5], rel=1e-9), (
        f"at policy == reference the gradient on the chosen log-prob is -beta / 2; got {grads}")


@pytest.mark.points(1)
def test_response_logprobs_of_a_float32_model(impl, rng):
    model = TinyLM(seed=13, dtype=torch.float32)
    ids, mask = pad_batch([(rng.integers(1, 11, 3).tolist(), rng.integers(1, 11, 4).tolist()),
                           (rng.integers(1, 11, 1).tolist(), rng.integers(1, 11, 2).tolist())])
    with torch.no_grad():
        got = impl.response_logprobs(model, ids, mask)
        # the loop scores in float64: float32 logits agree to ~1e-6
        assert_close(got, loop_logprobs(model, ids, mask).float(),
                     "response_logprobs of a float32 model", rtol=1e-5, atol=1e-5)
