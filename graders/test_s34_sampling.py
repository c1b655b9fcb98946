"""Public graders for s34 sampling: temperature, top-k and top-p against brute force, the
repetition penalty's formula, greedy at temperature 0, seeded draws that follow the filtered
distribution, the generation loop, sequence log-probabilities and beam search against
exhaustive search on a tiny vocabulary.

The "model" is a bigram table (next-token logits depend on the last token only), so every
probability is known exactly and brute force is cheap.
"""

import itertools

import pytest
import torch

from graders.helpers import assert_close, check_shape

NEG_INF = float("-inf")


class BigramLM(torch.nn.Module):
    """forward(idx) -> (table[idx], None); refuses contexts longer than block_size."""

    def __init__(self, table: torch.Tensor, block_size: int = 64):
        super().__init__()
        self.table, self.block_size, self.widths = table, block_size, []

    def forward(self, idx, targets=None):
        assert idx.size(1) <= self.block_size, (
            f"the model was fed {idx.size(1)} tokens, more than its block_size "
            f"{self.block_size}: crop the context to the last block_size tokens")
        self.widths.append(idx.size(1))
        return self.table[idx], None


def bigram(rng, vocab: int, scale: float = 2.0) -> BigramLM:
    return BigramLM(torch.tensor(rng.normal(0, scale, (vocab, vocab))))


def kept(filtered: torch.Tensor) -> list[int]:
    return [i for i, v in enumerate(filtered.tolist()) if v != NEG_INF]


@pytest.mark.points(1)
def test_temperature_divides_the_logits_and_refuses_zero_or_less(impl, rng):
    z = torch.tensor(rng.normal(size=(3, 7)))
    for t in (0.5, 1.0, 2.5):
        assert_close(impl.apply_temperature(z, t), z / t, f"apply_temperature(z, {t}) = z / {t}")
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError):
            impl.apply_temperature(z, bad)


@pytest.mark.points(2)
def test_top_k_keeps_exactly_the_k_largest_and_ties_go_to_lower_ids(impl, rng):
    z = torch.tensor(rng.normal(size=(4, 9)))
    for k in (1, 3, 8):
        out = impl.top_k_filter(z, k)
        check_shape(out, z.shape, f"top_k_filter(z, {k})")
        for row, orig in zip(out, z, strict=True):
            want = sorted(range(9), key=lambda i: -float(orig[i]))[:k]
            assert kept(row) == sorted(want), (
                f"top-k with k={k} keeps the {k} largest logits {sorted(want)}, kept {kept(row)}")
            assert torch.equal(row[want], orig[want]), "kept logits keep their values"
    assert torch.equal(impl.top_k_filter(z, 9), z) and torch.equal(impl.top_k_filter(z, 50), z), (
        "k >= vocabulary size keeps every logit")
    ties = torch.tensor([[1.0, 3.0, 2.0, 3.0, 2.0, 2.0]])
    assert kept(impl.top_k_filter(ties, 3)[0]) == [1, 2, 3], (
        "logits [1, 3, 2, 3, 2, 2] with k=3: the two 3s, then the 2 with the lowest id (2); "
        f"exactly k survive; kept {kept(impl.top_k_filter(ties, 3)[0])}")
    assert torch.equal(z, torch.tensor(z.numpy())), "top_k_filter must not change its input"
    three_d = torch.tensor(rng.normal(size=(2, 3, 5)))
    assert (impl.top_k_filter(three_d, 2) != NEG_INF).sum(-1).eq(2).all(), (
        "top_k_filter works on the last axis of any (..., V) tensor")
    with pytest.raises(ValueError):
        impl.top_k_filter(z, 0)


@pytest.mark.points(2)
def test_top_p_keeps_the_smallest_set_with_mass_at_least_p(impl, rng):
    z = torch.log(torch.tensor([[0.125, 0.5, 0.125, 0.25]], dtype=torch.float64))
    cases = {0.75 - 1e-9: [1, 3], 0.75 + 1e-9: [0, 1, 3], 1.0: [0, 1, 2, 3], 0.3: [1],
             1e-6: [1]}
    for p, want in cases.items():
        got = kept(impl.top_p_filter(z, p)[0])
        assert got == want, (
            f"probabilities [0.125, 0.5, 0.125, 0.25] with p={p:.9f}: the smallest set of "
            f"most probable tokens with mass >= p is {want}, kept {got}")
    uniform = torch.zeros(1, 4)  # probabilities exactly 0.25: the cumulative masses are exact
    assert kept(impl.top_p_filter(uniform, 0.5)[0]) == [0, 1], (
        "four equal tokens and p=0.5: two of them already have mass 0.5 >= p, so exactly two "
        f"survive (the lower ids); kept {kept(impl.top_p_filter(uniform, 0.5)[0])}")
    tie = torch.log(torch.tensor([[0.25, 0.375, 0.375]], dtype=torch.float64))
    assert kept(impl.top_p_filter(tie, 0.3)[0]) == [1], (
        "two tokens tie at 0.375 and p=0.3: only the lower id (1) is needed")
    for row in torch.tensor(rng.normal(0, 2, size=(6, 8))):
        p = float(rng.uniform(0.2, 0.95))
        probs = torch.softmax(row, -1)
        order = sorted(range(8), key=lambda i: -float(probs[i]))
        size = next(n for n in range(1, 9) if float(probs[order[:n]].sum()) >= p)
        got = impl.top_p_filter(row[None], p)[0]
        assert kept(got) == sorted(order[:size]), (
            f"p={p:.3f}: expected the {size} most probable tokens {sorted(order[:size])}, "
            f"kept {kept(got)}")
        assert torch.equal(got[order[:size]], row[order[:size]]), "kept logits keep their values"
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError):
            impl.top_p_filter(z, bad)


@pytest.mark.points(2)
def test_repetition_penalty_divides_positive_and_multiplies_negative_logits(impl):
    z = torch.tensor([[2.0, -1.0, 0.5, -3.0, 4.0, 0.0], [1.0, 1.0, -2.0, 3.0, -1.0, 2.0]])
    previous = torch.tensor([[0, 1, 1, 5, 0], [3, 3, 3, 2, 2]])
    out = impl.apply_repetition_penalty(z, previous, 2.0)
    want = torch.tensor([[1.0, -2.0, 0.5, -3.0, 4.0, 0.0], [1.0, 1.0, -4.0, 1.5, -1.0, 2.0]])
    assert_close(out, want, "repetition penalty 2 on the tokens each row has seen (once per "
                 "token, however often it appeared): z / 2 when z > 0, z * 2 otherwise")
    assert torch.equal(z[0, 0], torch.tensor(2.0)), "apply_repetition_penalty must copy"
    assert torch.equal(impl.apply_repetition_penalty(z, previous, 1.0), z), "penalty 1: no change"


@pytest.mark.points(2)
def test_temperature_zero_is_greedy_and_draws_are_seeded(impl, rng):
    z = torch.tensor(rng.normal(size=(5, 10)))
    z[2, [3, 7]] = z[2].max() + 1.0  # a tie for the maximum: the first one
    for kw in ({}, {"top_k": 3}, {"top_p": 0.5}):
        got = impl.sample_next(z, temperature=0.0, **kw)
        assert torch.equal(got, z.argmax(-1)), (
            f"temperature 0 is greedy (argmax, the first on ties) whatever the filters {kw}; "
            f"got {got.tolist()}, expected {z.argmax(-1).tolist()}")
    draws = [impl.sample_next(z, 1.0, generator=torch.Generator().manual_seed(s)) for s in (7, 7)]
    assert torch.equal(*draws), "the same generator seed gives the same tokens"
    torch.manual_seed(0)
    a = impl.sample_next(z.repeat(40, 1), 1.0, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(99)  # the global RNG must not matter when a generator is given
    b = impl.sample_next(z.repeat(40, 1), 1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b), "with a generator the draws ignore torch's global seed"
    check_shape(a, (200,), "sample_next's token ids")
    assert a.dtype == torch.int64


@pytest.mark.points(2)
def test_draws_follow_the_filtered_tempered_distribution(impl):
    z = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, -3.0]], dtype=torch.float64)
    n = 20000
    for kw in ({"temperature": 1.0}, {"temperature": 2.0}, {"temperature": 0.7, "top_k": 3},
               {"temperature": 1.5, "top_p": 0.8}):
        got = impl.sample_next(z.repeat(n, 1), generator=torch.Generator().manual_seed(3), **kw)
        freq = torch.bincount(got, minlength=6).double() / n
        t = kw["temperature"]
        want = torch.softmax(z[0] / t, -1)
        if "top_k" in kw:
            want[3:] = 0
        if "top_p" in kw:
            want[(want.cumsum(0) - want) >= kw["top_p"]] = 0
        want /= want.sum()
        # 20000 draws: a frequency's standard error is at most 0.0035; 0.015 is > 4 of them
        assert (freq - want).abs().max() < 0.015, (
            f"sample_next({kw}): token frequencies {freq.numpy().round(3)} should follow "
            f"{want.numpy().round(3)} (temperature first, then top-k, then top-p, renormalised)")


@pytest.mark.points(2)
def test_generate_appends_tokens_from_the_last_block_size_positions(impl, rng):
    model = bigram(rng, 6)
    model.block_size = 4
    prompt = torch.tensor([[1, 2, 3], [5, 0, 4]])
    out = impl.generate(model, prompt, 7, block_size=4, temperature=0.0)
    check_shape(out, (2, 10), "generate's output (B, T + max_new_tokens)")
    assert torch.equal(out[:, :3], prompt), "the output starts with the prompt"
    for b in range(2):
        for t in range(3, 10):
            want = int(model.table[out[b, t - 1]].argmax())
            assert int(out[b, t]) == want, (
                f"greedy generation, row {b} position {t}: the argmax of the logits at the last "
                f"position ({want}), got {int(out[b, t])}")
    assert max(model.widths) == 4 and len(model.widths) == 7, (
        f"one forward per new token on at most block_size=4 tokens, saw widths {model.widths}")
    s1 = impl.generate(model, prompt, 20, 4, generator=torch.Generator().manual_seed(5))
    s2 = impl.generate(model, prompt, 20, 4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(s1, s2), "generate with the same seeded generator repeats itself"


@pytest.mark.points(1)
def test_sequence_logprob_is_the_chain_rule_after_the_prompt(impl, rng):
    model = bigram(rng, 5)
    idx = torch.tensor([[0, 3, 1, 1, 4], [2, 2, 0, 4, 3]])
    for n_prompt in (1, 2, 4):
        want = torch.zeros(2, dtype=torch.float64)
        for b in range(2):
            for t in range(n_prompt, 5):
                want[b] += torch.log_softmax(model.table[idx[b, t - 1]], -1)[idx[b, t]]
        assert_close(impl.sequence_logprob(model, idx, n_prompt), want,
                     f"sum of log p(x_t | x_<t) over t >= n_prompt={n_prompt}", rtol=1e-9)
    with pytest.raises(ValueError):
        impl.sequence_logprob(model, idx, 0)


@pytest.mark.points(3)
def test_beam_search_equals_exhaustive_search_when_wide_and_greedy_when_narrow(impl, rng):
    vocab, n = 4, 3
    for trial in range(3):
        model = bigram(rng, vocab, scale=1.5)
        prompt = torch.tensor([[trial]])

        def logprob(seq, table=model.table, first=trial):  # the chain rule, by hand
            tokens = [first, *seq]
            return sum(float(torch.log_softmax(table[a], -1)[b])
                       for a, b in zip(tokens, tokens[1:], strict=False))

        best = max(itertools.product(range(vocab), repeat=n), key=logprob)
        seq, score = impl.beam_search(model, prompt, n, beam_width=vocab ** (n - 1),
                                      block_size=64)
        assert seq.tolist() == [trial, *best] and abs(score - logprob(best)) < 1e-9, (
            f"a beam of width V^(n-1) = {vocab ** (n - 1)} keeps every prefix, so it finds the "
            f"best of all {vocab ** n} continuations {[trial, *best]} (log p {logprob(best):.4f})"
            f"; got {seq.tolist()} with {score:.4f}")
        greedy = impl.generate(model, prompt, n, 64, temperature=0.0)[0]
        one, one_score = impl.beam_search(model, prompt, n, beam_width=1, block_size=64)
        assert torch.equal(one, greedy), "beam_width=1 is greedy decoding"
        _, two_score = impl.beam_search(model, prompt, n, beam_width=2, block_size=64)
        assert two_score >= one_score - 1e-12, "a wider beam never scores below greedy"
        assert abs(one_score - logprob(greedy[1:].tolist())) < 1e-9, (
            "beam_search returns its sequence's log-probability of the new tokens")
