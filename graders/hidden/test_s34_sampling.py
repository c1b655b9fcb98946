"""Hidden graders for s34: Hugging Face's logits processors as oracles, the order of the
filters, the penalty over the whole context and per row, beam ties and cropping, and inputs
that must be refused."""

import importlib.util

import pytest
import torch

from graders.helpers import assert_close
from graders.test_s34_sampling import NEG_INF, BigramLM, bigram, kept


@pytest.mark.points(2)
@pytest.mark.skipif(importlib.util.find_spec("transformers") is None,
                    reason="the Hugging Face oracle needs transformers (the hf / dev extra)")
def test_filters_equal_hugging_face_logits_processors(impl, rng):
    from transformers.generation.logits_process import (
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )
    z = torch.tensor(rng.normal(0, 2, size=(5, 30)), dtype=torch.float32)  # no ties
    ids = torch.tensor(rng.integers(0, 30, size=(5, 12)))
    pairs = [(impl.top_k_filter(z, 7), TopKLogitsWarper(7)(ids, z.clone()), "top-k 7"),
             (impl.top_p_filter(z, 0.83), TopPLogitsWarper(0.83)(ids, z.clone()), "top-p 0.83"),
             (impl.apply_temperature(z, 0.6), TemperatureLogitsWarper(0.6)(ids, z.clone()),
              "temperature 0.6"),
             (impl.apply_repetition_penalty(z, ids, 1.3),
              RepetitionPenaltyLogitsProcessor(1.3)(ids, z.clone()), "repetition penalty 1.3")]
    for ours, theirs, what in pairs:
        assert torch.equal(ours == NEG_INF, theirs == NEG_INF), (
            f"{what}: the tokens you remove differ from transformers' on tie-free logits")
        finite = ours != NEG_INF
        assert_close(ours[finite], theirs[finite], f"{what}: the kept logits", rtol=1e-6)


@pytest.mark.points(1)
def test_temperature_comes_before_top_p(impl):
    z = torch.tensor([[2.0, 0.0, -5.0]], dtype=torch.float64)  # T=1: p(0)=0.88; T=4: 0.62
    got = impl.sample_next(z.repeat(4000, 1), temperature=4.0, top_p=0.7,
                           generator=torch.Generator().manual_seed(0))
    seen = set(got.tolist())
    assert seen == {0, 1}, (
        f"temperature 4 flattens [2, 0, -5] to p = [0.55, 0.33, 0.13] (rounded), so top-p 0.7 "
        f"keeps tokens 0 and 1; tokens drawn: {sorted(seen)} (divide by the temperature before "
        "filtering)")


@pytest.mark.points(2)
def test_generate_penalises_the_whole_context_of_each_row(impl):
    table = torch.zeros(4, 4)
    table[:, 2] = 1.0  # every token wants 2 next, then 3, then 1
    table[:, 3] = 0.8
    table[:, 1] = 0.5
    model = BigramLM(table)
    prompt = torch.tensor([[2, 0], [0, 0]])
    out = impl.generate(model, prompt, 3, block_size=8, temperature=0.0, repetition_penalty=2.0)
    assert out[0, 2:].tolist() == [3, 1, 2], (
        f"row 0 already holds token 2 in its prompt: with penalty 2 its logit 1.0 drops to 0.5, "
        f"so greedy picks 3 (0.8), then 1 (0.5, tied with token 2: the first argmax), then 2 "
        f"(0.5 beats the penalised 0.4 and 0.25); got {out[0, 2:].tolist()}")
    assert out[1, 2:].tolist() == [2, 3, 1], (
        f"row 1 has not seen token 2: it picks 2, then 3, then 1 (each row has its own history); "
        f"got {out[1, 2:].tolist()}")
    plain = impl.generate(model, prompt, 3, block_size=8, temperature=0.0)
    assert plain[0, 2:].tolist() == [2, 2, 2], "without a penalty greedy repeats token 2"


@pytest.mark.points(1)
def test_generate_samples_with_the_filters_and_top_k_one_is_greedy(impl, rng):
    model = bigram(rng, 7)
    prompt = torch.tensor([[3]])
    greedy = impl.generate(model, prompt, 6, 8, temperature=0.0)
    for kw in ({"top_k": 1}, {"top_p": 1e-9}):
        got = impl.generate(model, prompt, 6, 8, temperature=1.7,
                            generator=torch.Generator().manual_seed(2), **kw)
        assert torch.equal(got, greedy), f"sampling with {kw} keeps only the argmax: greedy"
    wide = impl.generate(model, prompt.repeat(300, 1), 1, 8, temperature=1.0, top_k=2,
                         generator=torch.Generator().manual_seed(4))
    want = sorted(torch.topk(model.table[3], 2).indices.tolist())
    assert sorted(set(wide[:, 1].tolist())) == want, (
        f"generate(top_k=2) draws only the 2 most likely next tokens {want}")


@pytest.mark.points(1)
def test_beam_ties_keep_the_earlier_beam_then_the_lower_id_and_it_crops(impl):
    model = BigramLM(torch.zeros(5, 5), block_size=3)  # every continuation equally likely
    seq, score = impl.beam_search(model, torch.tensor([[4, 4]]), 4, beam_width=3, block_size=3)
    assert seq.tolist() == [4, 4, 0, 0, 0, 0], (
        f"all scores tie: the earlier beam and the lower token id win, [4, 4, 0, 0, 0, 0]; got "
        f"{seq.tolist()}")
    assert abs(score - 4 * torch.log(torch.tensor(0.2, dtype=torch.float64)).item()) < 1e-9
    assert max(model.widths) == 3, "beam_search feeds at most block_size tokens to the model"


@pytest.mark.points(1)
def test_bad_arguments_are_refused(impl):
    model = BigramLM(torch.zeros(3, 3))
    with pytest.raises(ValueError):
        impl.beam_search(model, torch.tensor([[0], [1]]), 2, 2, 8)
    with pytest.raises(ValueError):
        impl.beam_search(model, torch.tensor([[0]]), 2, 0, 8)
    with pytest.raises(ValueError):
        impl.sequence_logprob(model, torch.tensor([[0, 1, 2]]), 3)
    with pytest.raises(ValueError):
        impl.sample_next(torch.zeros(1, 3), temperature=-1.0)
    assert kept(impl.top_p_filter(torch.zeros(1, 4), 1.0)[0]) == [0, 1, 2, 3]


@pytest.mark.points(1)
def test_many_ties_keep_the_lowest_ids_on_any_leading_shape(impl):
    flat = torch.zeros(2, 3, 256)  # 256 equal tokens: probabilities exactly 1/256
    for k in (3, 5):
        out = impl.top_k_filter(flat, k)
        assert all(kept(row) == list(range(k)) for row in out.reshape(-1, 256)), (
            f"256 tied logits and k={k}: exactly ids 0..{k - 1} survive in every row of a "
            "(2, 3, 256) tensor (a stable sort on the last axis)")
    out = impl.top_p_filter(flat, 3.5 / 256)
    assert all(kept(row) == [0, 1, 2, 3] for row in out.reshape(-1, 256)), (
        "256 tied tokens and p = 3.5/256: four tokens reach the mass, ids 0..3, in every row of a "
        "(2, 3, 256) tensor")
    seq, _ = impl.beam_search(BigramLM(torch.zeros(256, 256)), torch.tensor([[7]]), 2, 3, 8)
    assert seq.tolist() == [7, 0, 0], (
        f"a uniform model over 256 tokens: every candidate ties, the earlier beam and the lower "
        f"id win: [7, 0, 0]; got {seq.tolist()}")


def _greedy_with_penalty(table, prompt, steps, penalty):
    seq = list(prompt)
    for _ in range(steps):
        z = table[seq[-1]].clone()
        for i in set(seq):
            z[i] = z[i] / penalty if z[i] > 0 else z[i] * penalty
        seq.append(int(z.argmax()))
    return seq


@pytest.mark.points(1)
def test_any_penalty_other_than_one_is_applied(impl, rng):
    model = bigram(rng, 6, scale=1.0)
    prompt = torch.tensor([[1, 4, 2]])
    for penalty in (2.0, 0.5, 1.5):
        got = impl.generate(model, prompt, 8, 8, temperature=0.0, repetition_penalty=penalty)
        want = _greedy_with_penalty(model.table, [1, 4, 2], 8, penalty)
        assert got[0].tolist() == want, (
            f"greedy generation with repetition_penalty={penalty} (below 1 it rewards "
            f"repetition): expected {want}, got {got[0].tolist()}")
