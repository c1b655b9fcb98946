"""Public graders for s23 seq2seq with attention: masks, both scores, teacher forcing, decoding.

Oracles: the formulas written out below with your modules' own weights (float64), torch's
cross-entropy with ignore_index, and the model's own step-by-step behaviour (free running
must equal teacher forcing on the model's own predictions).
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graders.helpers import assert_close, check_shape

F64 = torch.float64


def _t(rng, *shape, scale=1.0):
    return torch.as_tensor(rng.normal(size=shape) * scale, dtype=F64)


def _mask(lengths, S):
    return torch.arange(S)[None] < torch.as_tensor(lengths)[:, None]


def _softmax_on_real(scores, mask):
    """The oracle: softmax over the real positions only, padding exactly 0."""
    out = torch.zeros_like(scores)
    for b in range(scores.shape[0]):
        out[b, mask[b]] = torch.softmax(scores[b, mask[b]], dim=0)
    return out


@pytest.mark.points(2)
def test_masked_softmax_sums_to_one_on_real_positions_and_is_zero_on_padding(impl, rng):
    scores, mask = _t(rng, 4, 6, scale=3), _mask([6, 3, 1, 5], 6)
    w = impl.masked_softmax(scores, mask)
    check_shape(w, (4, 6), "masked_softmax(scores (4, 6), mask)", "B, S")
    assert bool((w[~mask] == 0).all()), (
        f"padding positions must get weight exactly 0, got up to {w[~mask].abs().max():.3g}: "
        "fill them with -inf BEFORE the softmax")
    # float64 softmax on both sides: rounding only
    assert_close(w, _softmax_on_real(scores, mask), "masked_softmax vs the softmax of the real "
                 "positions alone (each row sums to 1 over its real positions)", rtol=1e-12,
                 atol=1e-15)
    assert_close(w[2], torch.eye(6, dtype=F64)[0], "a row with one real position gives it "
                 "weight 1", rtol=0, atol=0)


@pytest.mark.points(1)
def test_masked_softmax_is_exact_when_real_scores_are_hugely_negative(impl):
    scores = torch.tensor([[-3e9, -3e9 - 1.0, 5.0, 7.0]], dtype=F64)
    w = impl.masked_softmax(scores, torch.tensor([[True, True, False, False]]))
    expected = torch.tensor([[1 / (1 + torch.e ** -1), 1 / (1 + torch.e), 0, 0]], dtype=F64)
    assert_close(w, expected, "masked_softmax when the real scores are near -3e9: a finite fill "
                 "such as -1e9 would out-score them and leak weight into the padding",
                 rtol=1e-12, atol=0)


@pytest.mark.points(2)
def test_additive_attention_is_bahdanau(impl, rng):
    torch.manual_seed(0)
    attn = impl.AdditiveAttention(3, 5, 4).double()
    q, keys, mask = _t(rng, 2, 3), _t(rng, 2, 6, 5), _mask([6, 4], 6)
    context, w = attn(q, keys, mask)
    check_shape(context, (2, 5), "AdditiveAttention context", "B, Dk")
    check_shape(w, (2, 6), "AdditiveAttention weights", "B, S")
    pre = (q @ attn.W_q.weight.T)[:, None] + keys @ attn.W_k.weight.T + attn.W_k.bias
    e = (torch.tanh(pre) @ attn.v.weight.T)[..., 0]  # (B, S)
    expected_w = _softmax_on_real(e, mask)
    # float64: rounding only
    assert_close(w, expected_w, "additive weights: masked softmax of v^T tanh(W_q q + W_k k_j)",
                 rtol=1e-10, atol=1e-13)
    assert_close(context, (expected_w[..., None] * keys).sum(1), "additive context: sum_j "
                 "alpha_j k_j (the keys themselves, not their projections)", rtol=1e-10,
                 atol=1e-13)


@pytest.mark.points(2)
@pytest.mark.parametrize("kind", ["general", "dot"])
def test_multiplicative_attention_is_luong(impl, rng, kind):
    torch.manual_seed(1)
    Dq = 4 if kind == "dot" else 3
    attn = impl.MultiplicativeAttention(Dq, 4, kind=kind).double()
    q, keys, mask = _t(rng, 3, Dq), _t(rng, 3, 5, 4), _mask([2, 5, 1], 5)
    context, w = attn(q, keys, mask)
    projected = keys @ attn.W.weight.T if kind == "general" else keys  # (B, S, Dq)
    expected_w = _softmax_on_real((projected * q[:, None]).sum(-1), mask)
    assert_close(w, expected_w, f"multiplicative ({kind}) weights: masked softmax of "
                 f"{'q^T W k_j' if kind == 'general' else 'q . k_j'}", rtol=1e-10, atol=1e-13)
    assert_close(context, (expected_w[..., None] * keys).sum(1),
                 f"multiplicative ({kind}) context", rtol=1e-10, atol=1e-13)


def _model(impl, attention="additive", seed=0):
    torch.manual_seed(seed)
    return impl.Seq2Seq(7, 8, emb_size=5, hidden_size=6, attention=attention).double()


def _batch(rng, B=3, S=5, T=4):
    src = torch.as_tensor(rng.integers(3, 7, size=(B, S)))
    mask = _mask([5, 3, 1][:B], S)
    src = src.masked_fill(~mask, 0)
    tgt_in = torch.as_tensor(rng.integers(3, 8, size=(B, T)))
    tgt_in[:, 0] = 1  # BOS
    return src, mask, tgt_in


@pytest.mark.points(2)
def test_encoder_ignores_padding(impl, rng):
    model = _model(impl)
    src, mask, tgt_in = _batch(rng)
    states, final = model.encode(src, mask)
    check_shape(states, (3, 5, 6), "encode: states", "B, S, H")
    assert_close(final, states[torch.arange(3), torch.tensor([4, 2, 0])], "encode: the final "
                 "state is the state after each sequence's LAST REAL token", rtol=0, atol=0)
    noisy = src.clone()
    noisy[~mask] = 5  # real-looking tokens in the padding
    with torch.no_grad():
        a, wa = model(src, mask, tgt_in)
        b, _ = model(noisy, mask, tgt_in)
    assert_close(b, a, "logits when the PADDED source positions hold other tokens (padding must "
                 "not change anything)", rtol=0, atol=1e-12)
    assert bool((wa[~mask[:, None].expand_as(wa)] == 0).all()), (
        "attention weights on padded source positions must be exactly 0 at every output step")
    assert_close(wa.sum(-1), torch.ones(3, 4, dtype=F64), "attention weights sum to 1 over the "
                 "source at every output step", rtol=0, atol=1e-12)


@pytest.mark.points(3)
@pytest.mark.parametrize("attention", ["additive", "multiplicative"])
def test_teacher_forcing_reads_the_true_tokens_free_running_its_own(impl, rng, attention):
    model = _model(impl, attention)
    src, mask, tgt_in = _batch(rng, T=5)
    with torch.no_grad():
        forced, _ = model(src, mask, tgt_in)
        check_shape(forced, (3, 5, 8), "forward logits", "B, T, V")
        changed = tgt_in.clone()
        changed[:, 2] = 7
        forced2, _ = model(src, mask, changed)
        free, _ = model(src, mask, tgt_in, teacher_forcing=False)
        free2, _ = model(src, mask, changed, teacher_forcing=False)
        own = torch.cat([tgt_in[:, :1], free.argmax(-1)[:, :-1]], dim=1)
        replay, _ = model(src, mask, own)
    assert_close(forced2[:, :2], forced[:, :2], "teacher forcing: changing tgt_in[:, 2] must not "
                 "change the logits of steps 0 and 1", rtol=0, atol=1e-12)
    assert (forced2[:, 2] - forced[:, 2]).abs().max() > 1e-6, (
        "teacher forcing: step 2 must read tgt_in[:, 2] (changing it did not change step 2)")
    assert_close(free2, free, "free running reads only tgt_in[:, 0] (BOS): changing later "
                 "tokens must not change anything", rtol=0, atol=1e-12)
    assert_close(free, replay, "free running must equal teacher forcing on its own argmax "
                 "predictions (step t reads the argmax of step t - 1)", rtol=1e-10, atol=1e-12)


@pytest.mark.points(2)
def test_greedy_decode_is_free_running_argmax_padded_after_eos(impl):
    model = _model(impl, seed=7)
    with torch.no_grad():  # make PAD, BOS and EOS likely, so they also appear mid-sequence
        model.out.weight.mul_(4.0)
        model.out.bias[:3] += torch.tensor([1.0, 1.3, 1.6], dtype=F64)
    # a fixed draw where BOS and PAD are predicted before an EOS, and BOS and symbols after one
    src = torch.as_tensor(np.random.default_rng(0).integers(3, 7, size=(12, 5)))
    mask = _mask([5, 4, 3, 2, 1, 5, 4, 3, 2, 1, 5, 3], 5)
    src = src.masked_fill(~mask, 0)
    tokens, w = model.greedy_decode(src, mask, 8)
    check_shape(tokens, (12, 8), "greedy_decode tokens", "B, max_len")
    check_shape(w, (12, 8, 5), "greedy_decode weights", "B, max_len, S")
    with torch.no_grad():
        free, _ = model(src, mask, torch.ones(12, 8, dtype=torch.long), teacher_forcing=False)
    expected = free.argmax(-1)
    for b in range(12):
        row = expected[b].tolist()
        if 2 in row:
            expected[b, row.index(2) + 1:] = 0
    assert torch.equal(tokens, expected), (
        f"greedy_decode: expected the free-running argmax with PAD (0) after the first EOS (2) "
        f"-- only EOS ends a sequence, PAD or BOS predicted before it do not:\n{expected}\n"
        f"got\n{tokens}")


@pytest.mark.points(1)
def test_sequence_loss_ignores_padding(impl, rng):
    logits = _t(rng, 3, 4, 6)
    targets = torch.as_tensor(rng.integers(1, 6, size=(3, 4)))
    targets[0, 2:] = 0
    targets[2, 1:] = 0
    expected = F.cross_entropy(logits.reshape(-1, 6), targets.reshape(-1), ignore_index=0)
    assert_close(impl.sequence_loss(logits, targets), expected, "sequence_loss: the mean "
                 "cross-entropy over the non-PAD targets only", rtol=1e-12)


@pytest.mark.points(1)
def test_exact_match_counts_whole_sequences(impl):
    targets = torch.tensor([[5, 4, 2, 0], [3, 2, 0, 0], [6, 6, 6, 2], [4, 2, 0, 0]])
    pred = torch.tensor([[5, 4, 2, 7], [3, 3, 0, 0], [6, 6, 6, 2], [3, 2, 0, 0]])
    got = impl.exact_match(pred, targets)
    assert abs(got - 0.5) < 1e-6, (  # a float32 mean is fine
        f"exact_match: rows 0 and 2 match at every real target position (what comes after the "
        f"target's PAD does not count), rows 1 and 3 do not: expected 0.5, got {got}")
    for row, expected in ((0, 1.0), (1, 0.0), (2, 1.0), (3, 0.0)):
        one = impl.exact_match(pred[row:row + 1], targets[row:row + 1])
        assert abs(one - expected) < 1e-6, (
            f"exact_match of the single row pred {pred[row].tolist()} vs target "
            f"{targets[row].tolist()}: expected {expected}, got {one}")


def _manual_decode(model, src, mask, tgt_in, teacher_forcing):
    """The documented loop, written out with the model's own encode and step."""
    states, s = model.encode(src, mask)
    y, logits_all = tgt_in[:, 0], []
    for t in range(tgt_in.shape[1]):
        logits, s, _ = model.step(y, s, states, mask)
        logits_all.append(logits)
        if t + 1 < tgt_in.shape[1]:
            y = tgt_in[:, t + 1] if teacher_forcing else logits.argmax(-1)
    return torch.stack(logits_all, dim=1)


@pytest.mark.points(2)
@pytest.mark.parametrize("teacher_forcing", [True, False])
def test_forward_is_the_step_loop(impl, rng, teacher_forcing):
    model = _model(impl, "multiplicative", seed=2)
    with torch.no_grad():
        model.out.weight.mul_(6.0)  # sharper logits: the argmax changes from step to step
    src, mask, tgt_in = _batch(rng, T=6)
    with torch.no_grad():
        logits, _ = model(src, mask, tgt_in, teacher_forcing=teacher_forcing)
        expected = _manual_decode(model, src, mask, tgt_in, teacher_forcing)
    assert_close(logits, expected, f"forward(teacher_forcing={teacher_forcing}) vs the loop "
                 "of model.step from the encoder's final state, EVERY step included (the last "
                 "one too)", rtol=1e-10, atol=1e-12)


@pytest.mark.points(3)
def test_additive_model_learns_to_reverse(impl):
    gen = torch.Generator().manual_seed(0)
    data = impl.reverse_task(2000, 2, 4, 4, gen)
    test = impl.reverse_task(300, 2, 4, 4, torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    model = impl.Seq2Seq(7, 7, emb_size=16, hidden_size=32, attention="additive")
    losses = impl.train(model, data, steps=80, lr=0.02, batch_size=32, seed=0)
    pred, _ = model.greedy_decode(test[0], test[1], 5)
    em = impl.exact_match(pred, test[3])
    # the reference reaches ~0.97 exact match here (greedy, free running); 0.8 leaves room
    assert em >= 0.8, (
        f"after 80 Adam steps on reversing strings of 2-4 symbols, greedy exact match is "
        f"{em:.3f} (loss {losses[0]:.3f} -> {losses[-1]:.3f}); >= 0.8 expected. Check the tests "
        "above first: teacher forcing, the masks, the decoder step.")
