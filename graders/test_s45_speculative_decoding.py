"""Public graders for s45 speculative decoding: the tempered distributions, the residual and the
acceptance probability against hand-worked values, the tokens-per-call formula, verify's exact
first-token distribution (a seeded statistical test), greedy decoding identical to the target's
own greedy loop, and whole speculative runs whose output follows the target's distribution
exactly (enumerated over every continuation) whatever the draft.

The models are tiny tables ("language models" whose next-token logits depend on the last one or
two tokens) so that the target's true distribution over short continuations is known exactly.
"""

import itertools
import math

import pytest
import torch
from scipy.stats import chi2

from graders.helpers import assert_close

V = 3


class TableLM(torch.nn.Module):
    """Next-token logits from the last two tokens: table[idx[t-1], idx[t]] (the first position
    uses token 0 as its predecessor). forward(idx (1, T)) -> (logits (1, T, V), None)."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table.double()
        self.calls = 0
        self.longest = 0

    def forward(self, idx, targets=None):
        self.calls += 1
        self.longest = max(self.longest, idx.size(1))
        before = torch.cat([torch.zeros_like(idx[:, :1]), idx[:, :-1]], dim=1)
        return self.table[before, idx], None


def tables(seed: int, vocab: int = V, sharp: float = 2.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return sharp * torch.randn(vocab, vocab, vocab, generator=gen, dtype=torch.float64)


def softmax_t(logits, temperature):
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.size(-1)).double()
    return torch.softmax(logits.double() / temperature, -1)


def exact_continuations(model, prompt, n, temperature):
    """{continuation tuple: probability} of the target sampling n tokens by itself."""
    out = {}
    for tail in itertools.product(range(model.table.size(0)), repeat=n):
        seq, prob = prompt.clone(), 1.0
        for token in tail:
            prob *= float(softmax_t(model(seq)[0][0, -1], temperature)[token])
            seq = torch.cat([seq, torch.tensor([[token]])], dim=1)
        out[tail] = prob
    return out


def greedy_reference(model, idx, n, block_size):
    for _ in range(n):
        logits = model(idx[:, -block_size:])[0][0, -1]
        idx = torch.cat([idx, logits.argmax().view(1, 1)], dim=1)
    return idx


def chi_square_pvalue(counts: dict, probs: dict, runs: int) -> float:
    stat = sum((counts.get(c, 0) - runs * p) ** 2 / (runs * p) for c, p in probs.items() if p > 0)
    impossible = sum(n for c, n in counts.items() if probs.get(c, 0) == 0)
    if impossible:
        return 0.0
    return float(chi2.sf(stat, df=sum(p > 0 for p in probs.values()) - 1))


@pytest.mark.points(1)
def test_token_probs_is_a_float64_tempered_softmax_and_one_hot_at_zero(impl, rng):
    logits = torch.tensor(rng.normal(size=(2, 3, 5)), dtype=torch.float32)
    for t in (0.5, 1.0, 2.5):
        got = impl.token_probs(logits, t)
        assert got.dtype == torch.float64, f"token_probs must return float64, got {got.dtype}"
        assert_close(got, torch.softmax(logits.double() / t, -1), f"token_probs at T={t}",
                     rtol=1e-12)
    tied = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    assert torch.equal(impl.token_probs(tied, 0), torch.tensor([[0.0, 1, 0, 0], [1, 0, 0, 0]],
                                                               dtype=torch.float64)), (
        "temperature 0 is the one-hot of the argmax, the first index on ties")
    with pytest.raises(ValueError):
        impl.token_probs(logits, -0.1)
        pytest.fail("token_probs(logits, -0.1) must raise ValueError")


@pytest.mark.points(2)
def test_residual_and_acceptance_probability_on_worked_examples(impl, rng):
    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    q = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    assert_close(impl.residual(p, q), torch.tensor([1.0, 0, 0], dtype=torch.float64),
                 "residual([.5,.3,.2], [.2,.5,.3]): only token 0 has p > q", rtol=1e-12)
    assert_close(impl.acceptance_probability(p, q), torch.tensor(0.7, dtype=torch.float64),
                 "acceptance_probability: .2 + .3 + .2", rtol=1e-12)
    p2 = torch.tensor([0.6, 0.1, 0.3], dtype=torch.float64)
    q2 = torch.tensor([0.1, 0.8, 0.1], dtype=torch.float64)
    assert_close(impl.residual(p2, q2), torch.tensor([5 / 7, 0, 2 / 7], dtype=torch.float64),
                 "residual([.6,.1,.3], [.1,.8,.1]) = [.5, 0, .2] / .7", rtol=1e-12)
    assert_close(impl.residual(p, p), p, "residual(p, p): nothing is left over, the row is p",
                 rtol=0, atol=0)
    assert_close(impl.acceptance_probability(p, p), torch.tensor(1.0, dtype=torch.float64),
                 "a draft equal to the target is always accepted", rtol=1e-12)
    disjoint = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    assert float(impl.acceptance_probability(p2 * torch.tensor([1.0, 1, 0]) / 0.7,
                                             disjoint)) == 0.0, "disjoint supports: 0"
    a = torch.softmax(torch.tensor(rng.normal(size=(2, 4, 6))), -1)
    b = torch.softmax(torch.tensor(rng.normal(size=(2, 4, 6))), -1)
    left = (a - b).clamp(min=0)
    assert_close(impl.residual(a, b), left / left.sum(-1, keepdim=True),
                 "residual on (2, 4, 6) rows: each row normalised on its own", rtol=1e-12)
    assert_close(impl.acceptance_probability(a, b), torch.minimum(a, b).sum(-1),
                 "acceptance_probability on (2, 4, 6) rows: one value per row", rtol=1e-12)


@pytest.mark.points(1)
def test_expected_tokens_per_call_is_the_geometric_series(impl):
    for alpha, k in ((0.0, 4), (0.5, 3), (0.8, 5), (0.95, 1), (0.3, 0)):
        want = sum(alpha**i for i in range(k + 1))
        got = impl.expected_tokens_per_call(alpha, k)
        assert math.isclose(got, want, rel_tol=1e-12), (
            f"expected_tokens_per_call({alpha}, {k}) = {got}, want 1 + a + ... + a^k = {want}")
    assert impl.expected_tokens_per_call(1.0, 4) == 5, "alpha 1: every draft accepted, k + 1"
    for alpha, k in ((-0.1, 2), (1.2, 2), (0.5, -1)):
        with pytest.raises(ValueError):
            impl.expected_tokens_per_call(alpha, k)
            pytest.fail(f"expected_tokens_per_call({alpha}, {k}) must raise ValueError")


@pytest.mark.points(2)
def test_verify_gives_the_target_distribution_token_by_token(impl):
    p = torch.tensor([[0.7, 0.2, 0.1], [0.15, 0.25, 0.6]], dtype=torch.float64)
    q = torch.tensor([[0.1, 0.2, 0.7]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    runs, first, second, accepted = 4000, [0] * 3, [0] * 3, 0
    for _ in range(runs):
        x = torch.multinomial(q[0], 1, generator=gen)
        tokens, n = impl.verify(p, q, x, gen)
        assert tokens.dtype == torch.int64 and tokens.numel() == n + 1, (
            f"verify returns the n accepted drafts and one more token (int64), got {tokens} "
            f"with n = {n}")
        first[int(tokens[0])] += 1
        if n == 1:
            assert int(tokens[0]) == int(x), "an accepted draft token is kept as it is"
            accepted += 1
            second[int(tokens[1])] += 1
    want = 0.1 + 0.2 + 0.1
    sigma = math.sqrt(want * (1 - want) / runs)
    assert abs(accepted / runs - want) < 5 * sigma, (
        f"drafts accepted {accepted / runs:.3f} of the time, want sum min(p, q) = {want}")
    for token in range(3):
        for counts, total, prob, what in ((first, runs, p[0], "first"),
                                          (second, accepted, p[1], "bonus")):
            sigma = math.sqrt(float(prob[token]) * (1 - float(prob[token])) / total)
            assert abs(counts[token] / total - float(prob[token])) < 5 * sigma, (
                f"the {what} token is {token} in {counts[token] / total:.3f} of runs, the target "
                f"says {float(prob[token]):.3f}: accept with min(1, p/q), redraw rejections from "
                "the residual, and draw the extra token from the row after the drafts")


@pytest.mark.points(1)
def test_verify_deterministic_cases(impl):
    gen = torch.Generator().manual_seed(1)
    rows = torch.softmax(torch.randn(4, 5, generator=gen, dtype=torch.float64), -1)
    last = torch.zeros(1, 5, dtype=torch.float64)
    last[0, 3] = 1.0
    drafts = torch.tensor([4, 0, 2])
    p = torch.cat([rows[:3], last])
    tokens, n = impl.verify(p, rows[:3], drafts, gen)
    assert n == 3 and tokens.tolist() == [4, 0, 2, 3], (
        f"p == q: every draft is accepted and the bonus comes from p's last row; got {tokens}")
    p = p.clone()
    p[1] = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    tokens, n = impl.verify(p, rows[:3], drafts, gen)
    assert n == 1 and tokens.tolist() == [4, 4], (
        "the target gives draft 2 (token 0) probability 0: it must be rejected and redrawn from "
        f"the residual (all on token 4); got {tokens.tolist()} with {n} accepted")
    tokens, n = impl.verify(p[:1], rows[:0], drafts[:0], gen)
    assert n == 0 and tokens.numel() == 1, "no drafts: one token drawn from p[0]"


@pytest.mark.points(2)
def test_greedy_speculative_decoding_equals_the_targets_greedy_output(impl):
    target, draft = TableLM(tables(1, vocab=6)), TableLM(tables(2, vocab=6))
    prompt = torch.tensor([[1, 4, 2]])
    want = greedy_reference(target, prompt, 15, 64)
    for k in (1, 3, 5):
        got, stats = impl.speculative_generate(target, draft, prompt, 15, k=k, temperature=0,
                                               block_size=64)
        assert got.tolist() == want.tolist(), (
            f"greedy (temperature 0) with k={k}: your tokens {got[0, 3:].tolist()}, the "
            f"target's own greedy ones {want[0, 3:].tolist()}")
        assert 0 <= stats["accepted"] <= stats["proposed"], f"counts: {stats}"
        assert stats["target_calls"] == stats["rounds"], (
            "while the sequence fits one block, each round is one target call")
        assert 15 <= stats["rounds"] + stats["accepted"] <= 16, (
            f"each round yields its accepted drafts plus one token, and the draft proposes no more "
            f"than the tokens still needed: {stats}")


@pytest.mark.points(2)
def test_sampled_output_follows_the_target_distribution_whatever_the_draft(impl):
    target, draft = TableLM(tables(3)), TableLM(tables(4))
    prompt = torch.tensor([[2]])
    for temperature, k, n, runs in ((1.0, 2, 3, 700), (0.7, 1, 2, 500)):
        want = exact_continuations(target, prompt, n, temperature)
        gen = torch.Generator().manual_seed(7)
        counts = {}
        for _ in range(runs):
            out, _ = impl.speculative_generate(target, draft, prompt, n, k=k,
                                               temperature=temperature, block_size=16,
                                               generator=gen)
            assert out.shape == (1, 1 + n), (
                f"a prompt of 1 + {n} new tokens, got {tuple(out.shape)}")
            key = tuple(out[0, 1:].tolist())
            counts[key] = counts.get(key, 0) + 1
        pvalue = chi_square_pvalue(counts, want, runs)
        worst = max(want, key=lambda c: abs(counts.get(c, 0) / runs - want[c]))
        assert pvalue > 1e-4, (
            f"T={temperature}, k={k}: over {runs} runs the {n}-token continuations do not follow "
            f"the target's distribution (chi-square p = {pvalue:.2g}); e.g. {worst} came "
            f"{counts.get(worst, 0) / runs:.3f} of the time, the target gives it {want[worst]:.3f}")


@pytest.mark.points(1)
def test_a_draft_equal_to_the_target_is_always_accepted(impl):
    model = TableLM(tables(5, vocab=5))
    gen = torch.Generator().manual_seed(2)
    out, stats = impl.speculative_generate(model, model, torch.tensor([[0, 1]]), 20, k=4,
                                           temperature=1.0, block_size=64, generator=gen)
    assert out.shape == (1, 22), f"exactly max_new_tokens new tokens, got {tuple(out.shape)}"
    assert stats["accepted"] == stats["proposed"], f"draft == target accepts every draft: {stats}"
    assert stats["rounds"] == stats["target_calls"] == 4, (
        f"20 tokens at k=4, 5 per round: 4 target calls, got {stats}")
