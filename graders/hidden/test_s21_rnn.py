"""Hidden graders for s21 RNN: edge cases, state handling, clipping and the exact training loop."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.helpers import assert_close, check_shape


def _autograd(x, h0, Wx, Wh, b, dh):
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, h0, Wx, Wh, b)]
    tx, th0, tWx, tWh, tb = ts
    h, hs = th0, []
    for t in range(x.shape[1]):
        h = torch.tanh(tx[:, t] @ tWx + h @ tWh + tb)
        hs.append(h)
    out = torch.stack(hs, dim=1)
    (out * torch.as_tensor(dh)).sum().backward()
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


@settings(max_examples=20, deadline=None)
@given(N=st.integers(1, 3), T=st.integers(1, 6), D=st.integers(1, 4), H=st.integers(1, 5),
       seed=st.integers(0, 2**16))
@pytest.mark.points(2)
def test_forward_and_bptt_equal_autograd_for_any_shape(impl, N, T, D, H, seed):
    g = np.random.default_rng(seed)
    x, h0 = g.normal(size=(N, T, D)), g.normal(size=(N, H))
    Wx, Wh, b = g.normal(size=(D, H)), g.normal(size=(H, H)), g.normal(size=H)
    dh = g.normal(size=(N, T, H))
    h, cache = impl.rnn_forward(x, h0, Wx, Wh, b)
    exp_h, exp_grads = _autograd(x, h0, Wx, Wh, b, dh)
    where = f"N={N}, T={T}, D={D}, H={H}"
    # float64 on both sides: rounding only
    assert_close(h, exp_h, f"rnn_forward ({where})", rtol=1e-10, atol=1e-12)
    for got, e, name in zip(impl.rnn_backward(dh, cache), exp_grads,
                            ("dx", "dh0", "dWx", "dWh", "db"), strict=True):
        assert_close(got, e, f"rnn_backward {name} ({where}; T = 1 is a sequence of one step)",
                     rtol=1e-9, atol=1e-11)


@pytest.mark.points(1)
def test_a_length_one_sequence_is_one_step(impl, rng):
    Wx, Wh, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 4)), rng.normal(size=4)
    x, h0 = rng.normal(size=(2, 1, 3)), rng.normal(size=(2, 4))
    h, cache = impl.rnn_forward(x, h0, Wx, Wh, b)
    assert_close(h[:, 0], np.tanh(x[:, 0] @ Wx + h0 @ Wh + b), "rnn_forward for T = 1 (the "
                 "given h0 is h_{-1})", rtol=1e-12, atol=1e-14)
    dh = rng.normal(size=(2, 1, 4))
    _, dh0, _, dWh, _ = impl.rnn_backward(dh, cache)
    da = dh[:, 0] * (1 - h[:, 0] ** 2)
    assert_close(dh0, da @ Wh.T, "dh0 for T = 1: da Wh^T", rtol=1e-12, atol=1e-14)
    assert_close(dWh, h0.T @ da, "dWh for T = 1: h0^T da (the first step's previous state "
                 "is h0, not zeros)", rtol=1e-12, atol=1e-14)


@pytest.mark.points(1)
def test_zero_state_equals_none_and_a_given_state_matters(impl, rng):
    Wx, Wh, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 4)) * 0.5, rng.normal(size=4)
    x = rng.normal(size=(2, 5, 3))
    h_none, _ = impl.rnn_forward(x, None, Wx, Wh, b)
    h_zero, _ = impl.rnn_forward(x, np.zeros((2, 4)), Wx, Wh, b)
    assert_close(h_none, h_zero, "rnn_forward with h0=None vs h0=zeros", rtol=0, atol=0)
    h_given, _ = impl.rnn_forward(x, np.ones((2, 4)), Wx, Wh, b)
    moved = np.abs(h_given - h_zero).max(axis=(0, 2))
    assert np.all(moved > 1e-6), (
        f"a different h0 should change the hidden state at every step (the change per step: "
        f"{np.round(moved, 6)}); is h_{{t-1}} carried from step to step?")


@pytest.mark.points(1)
def test_loss_with_a_single_real_position(impl, rng):
    scores, y = rng.normal(size=(2, 4, 3)), rng.integers(0, 3, size=(2, 4))
    mask = np.zeros((2, 4), dtype=bool)
    mask[1, 2] = True
    loss, d = impl.temporal_softmax_loss(scores, y, mask)
    z = scores[1, 2] - scores[1, 2].max()
    p = np.exp(z) / np.exp(z).sum()
    assert_close(loss, -np.log(p[y[1, 2]]), "temporal_softmax_loss with one real position "
                 "(the mean over one position is that position's loss)", rtol=1e-12)
    expected = np.zeros_like(scores)
    expected[1, 2] = p - np.eye(3)[y[1, 2]]
    assert_close(d, expected, "dscores with one real position: p - onehot there, 0 elsewhere",
                 rtol=1e-12, atol=1e-15)


@pytest.mark.points(1)
def test_loss_is_stable_for_huge_scores(impl):
    scores = np.array([[[1e4, 0.0, -1e4], [5e3, 5e3 + 2.0, 0.0]]])
    y, mask = np.array([[1, 0]]), np.ones((1, 2), dtype=bool)
    with np.errstate(over="raise"):
        loss, d = impl.temporal_softmax_loss(scores, y, mask)
    assert_close(loss, (1e4 + 2.0 + np.log1p(np.exp(-2.0))) / 2, "temporal_softmax_loss for "
                 "scores of size 1e4 (subtract the max before exp)", rtol=1e-12)


@pytest.mark.points(2)
def test_clip_by_global_norm_scales_every_array_by_one_factor(impl, rng):
    grads = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=5)}
    total = np.sqrt(sum((g ** 2).sum() for g in grads.values()))
    before = {k: g.copy() for k, g in grads.items()}
    same = {k: id(g) for k, g in grads.items()}
    returned = impl.clip_by_global_norm(grads, 2 * total)
    assert_close(returned, total, "clip_by_global_norm's return value (the norm before "
                 "clipping, over all arrays together)", rtol=1e-12)
    for k in grads:
        assert_close(grads[k], before[k], f"grads[{k!r}] with a total norm below max_norm "
                     "(must be left unchanged)", rtol=0, atol=0)
    returned = impl.clip_by_global_norm(grads, 0.25 * total)
    assert_close(returned, total, "clip_by_global_norm returns the norm BEFORE clipping",
                 rtol=1e-12)
    for k in grads:
        assert id(grads[k]) == same[k], "clip the arrays in place (the dict keeps its arrays)"
        assert_close(grads[k], before[k] * 0.25, f"grads[{k!r}] after clipping to a quarter of "
                     "the total norm (every array scaled by the SAME max_norm / total)",
                     rtol=1e-12, atol=1e-15)


@pytest.mark.points(2)
def test_train_is_the_documented_loop(impl, rng):
    tokens, targets, mask = impl.copy_task(40, 2, 1, 3, rng)  # T = 2 * 2 + 1, GO = 4
    assert np.array_equal(targets[:, -2:], tokens[:, :2]) and np.all(tokens[:, 3] == 4)
    assert mask.sum() == 80 and mask[:, -2:].all()
    params = impl.init_params(5, 8, seed=4)
    reference = {k: v.copy() for k, v in params.items()}
    history = impl.train(params, tokens, targets, mask, steps=12, lr=0.05, batch_size=7,
                         max_norm=0.3, seed=11)
    draw, state, expected = np.random.default_rng(11), {}, []
    for _ in range(12):
        idx = draw.integers(0, 40, 7)
        loss, grads = impl.model_loss(reference, tokens[idx], targets[idx], mask[idx])
        impl.clip_by_global_norm(grads, 0.3)
        impl.adam_update(reference, grads, state, 0.05)
        expected.append(loss)
    check_shape(history, (12,), "train history")
    assert_close(history, expected, "train's loss history vs the documented loop (one "
                 "rng.integers(0, n, batch_size) draw per step, clip, Adam)", rtol=1e-12)
    for k in params:
        assert_close(params[k], reference[k], f"params[{k!r}] after train (updated in place, "
                     "clipped with max_norm)", rtol=1e-10, atol=1e-12)


@pytest.mark.points(1)
def test_predict_is_the_argmax_of_the_read_out(impl, rng):
    params = impl.init_params(5, 6, seed=2)
    params["b"], params["by"] = rng.normal(size=6) * 0.5, rng.normal(size=5) * 2  # bias matters
    tokens = rng.integers(0, 5, size=(3, 4))
    h = np.zeros((3, 6))
    expected = np.zeros((3, 4), dtype=int)
    for t in range(4):
        h = np.tanh(params["Wx"][tokens[:, t]] + h @ params["Wh"] + params["b"])
        expected[:, t] = (h @ params["Wy"] + params["by"]).argmax(-1)
    got = impl.predict(params, tokens)
    check_shape(got, (3, 4), "predict(params, tokens (3, 4))", "N, T")
    assert np.array_equal(got, expected), f"predict: expected\n{expected}\ngot\n{got}"




@pytest.mark.points(1)
def test_adam_steps_on_model_loss_equal_torch_adam(impl, rng):
    """adam_update is given; train relies on it, so it is checked against torch.optim.Adam."""
    tokens, targets, mask = impl.copy_task(6, 2, 0, 3, rng)
    params = impl.init_params(5, 4, seed=8)
    ref = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    opt = torch.optim.Adam(ref.values(), lr=0.05)
    state = {}
    for _ in range(3):
        _, grads = impl.model_loss(params, tokens, targets, mask)
        for k, p in ref.items():
            p.grad = torch.as_tensor(grads[k].copy())
        opt.step()
        impl.adam_update(params, grads, state, 0.05)
        for k in params:
            # float64 on both sides; torch computes the same formula in another order
            assert_close(params[k], ref[k].detach(), f"params[{k!r}] after Adam steps on "
                         "model_loss's gradients vs torch.optim.Adam", rtol=1e-9, atol=1e-12)
