"""Public graders for s21 RNN: the recurrence, BPTT, vanishing gradients and the copy task.

Oracles: torch.nn.RNN with your weights copied in (forward), torch autograd on the same
recurrence in float64 (every gradient), finite differences (gradcheck) and scipy's
log_softmax (the loss).
"""

import numpy as np
import pytest
import torch
from scipy.special import log_softmax

from graders.helpers import assert_close, check_shape, gradcheck


def _weights(rng, D=4, H=5, scale=0.6):
    return (rng.normal(size=(D, H)) * 0.7, rng.normal(size=(H, H)) * scale / np.sqrt(H),
            rng.normal(size=H) * 0.3)


def _autograd(x, h0, Wx, Wh, b, dh):
    """The same recurrence in torch float64; returns h and every gradient of sum(h * dh)."""
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, h0, Wx, Wh, b)]
    tx, th0, tWx, tWh, tb = ts
    h, hs = th0, []
    for t in range(x.shape[1]):
        h = torch.tanh(tx[:, t] @ tWx + h @ tWh + tb)
        h.retain_grad()
        hs.append(h)
    out = torch.stack(hs, dim=1)
    (out * torch.as_tensor(dh)).sum().backward()
    return out.detach().numpy(), [t.grad.numpy() for t in ts], [hh.grad for hh in hs]


# --- the forward pass ------------------------------------------------------------------------

@pytest.mark.points(1)
def test_step_forward_is_tanh_of_the_two_projections_plus_bias(impl, rng):
    Wx, Wh, b = _weights(rng)
    x_t, h_prev = rng.normal(size=(3, 4)), rng.normal(size=(3, 5))
    h = impl.rnn_step_forward(x_t, h_prev, Wx, Wh, b)
    check_shape(h, (3, 5), "rnn_step_forward(x_t (3, 4), h_prev (3, 5), ...)", "N, H")
    # a few float64 products and one tanh: rounding only
    assert_close(h, np.tanh(x_t @ Wx + h_prev @ Wh + b), "rnn_step_forward: tanh(x_t Wx + "
                 "h_prev Wh + b)", rtol=1e-12, atol=1e-14)


@pytest.mark.points(2)
def test_forward_matches_torch_rnn_batch_first(impl, rng):
    N, T, D, H = 3, 7, 4, 5
    Wx, Wh, b = _weights(rng, D, H, scale=1.2)
    x, h0 = rng.normal(size=(N, T, D)), rng.normal(size=(N, H)) * 0.5
    h, _ = impl.rnn_forward(x, h0, Wx, Wh, b)
    check_shape(h, (N, T, H), "rnn_forward(x (3, 7, 4), h0 (3, 5), ...) hidden states", "N, T, H")
    rnn = torch.nn.RNN(D, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():  # torch stores W_ih (H, D) and two biases; ours is x Wx with one b
        rnn.weight_ih_l0.copy_(torch.as_tensor(Wx.T))
        rnn.weight_hh_l0.copy_(torch.as_tensor(Wh.T))
        rnn.bias_ih_l0.copy_(torch.as_tensor(b))
        rnn.bias_hh_l0.zero_()
        expected, h_n = rnn(torch.as_tensor(x), torch.as_tensor(h0)[None])
    # float64 on both sides: rounding only
    assert_close(h, expected, "rnn_forward vs torch.nn.RNN(batch_first=True) with your weights "
                 "and the given h0 (is h_{t-1} fed into every step?)", rtol=1e-10, atol=1e-12)
    assert_close(h[:, -1], h_n[0], "the last hidden state h[:, -1]", rtol=1e-10, atol=1e-12)
    h_none, _ = impl.rnn_forward(x, None, Wx, Wh, b)
    with torch.no_grad():
        expected_zero, _ = rnn(torch.as_tensor(x))
    assert_close(h_none, expected_zero, "rnn_forward with h0=None (a zero initial state)",
                 rtol=1e-10, atol=1e-12)


# --- backpropagation through time --------------------------------------------------------------

@pytest.mark.points(3)
def test_bptt_passes_gradcheck_through_ten_steps(impl, rng):
    N, T, D, H = 2, 10, 3, 4
    Wx, Wh, b = _weights(rng, D, H, scale=1.0)
    x, h0 = rng.normal(size=(N, T, D)), rng.normal(size=(N, H)) * 0.5
    dh = rng.normal(size=(N, T, H))

    def f():
        return float(np.sum(impl.rnn_forward(x, h0, Wx, Wh, b)[0] * dh))

    _, cache = impl.rnn_forward(x, h0, Wx, Wh, b)
    grads = impl.rnn_backward(dh, cache)
    assert len(grads) == 5, f"rnn_backward returns (dx, dh0, dWx, dWh, db), got {len(grads)}"
    dx, dh0, dWx, dWh, db = grads
    for g, shape, name in ((dx, (N, T, D), "dx"), (dh0, (N, H), "dh0"), (dWx, (D, H), "dWx"),
                           (dWh, (H, H), "dWh"), (db, (H,), "db")):
        check_shape(g, shape, f"rnn_backward: {name}")
    gradcheck(f, x, dx, "BPTT dx over 10 steps")
    gradcheck(f, h0, dh0, "BPTT dh0 (the gradient left after walking back to t = 0)")
    gradcheck(f, Wx, dWx, "BPTT dWx (a sum over all 10 steps)")
    gradcheck(f, Wh, dWh, "BPTT dWh (h_{t-1}^T da_t summed over all steps; h_{-1} is h0)")
    gradcheck(f, b, db, "BPTT db")


@pytest.mark.points(2)
def test_bptt_equals_autograd_with_gradients_at_every_step(impl, rng):
    N, T, D, H = 4, 9, 3, 6
    Wx, Wh, b = _weights(rng, D, H, scale=1.5)
    x, h0 = rng.normal(size=(N, T, D)), rng.normal(size=(N, H))
    dh = rng.normal(size=(N, T, H))
    _, cache = impl.rnn_forward(x, h0, Wx, Wh, b)
    mine = impl.rnn_backward(dh, cache)
    _, expected, _ = _autograd(x, h0, Wx, Wh, b, dh)
    for g, e, name in zip(mine, expected, ("dx", "dh0", "dWx", "dWh", "db"), strict=True):
        # float64 on both sides, 9 steps of products: rounding only
        assert_close(g, e, f"rnn_backward {name} vs torch autograd (upstream gradients at "
                     "every step, h0 given)", rtol=1e-9, atol=1e-11)


# --- vanishing gradients -----------------------------------------------------------------------

@pytest.mark.points(2)
def test_hidden_gradient_norms_equal_autograd(impl, rng):
    N, T, D, H = 3, 8, 4, 5
    Wx, Wh, b = _weights(rng, D, H, scale=1.3)
    x, h0 = rng.normal(size=(N, T, D)), rng.normal(size=(N, H))
    dh_last = rng.normal(size=(N, H))
    dh = np.zeros((N, T, H))
    dh[:, -1] = dh_last
    _, cache = impl.rnn_forward(x, h0, Wx, Wh, b)
    norms = impl.hidden_gradient_norms(dh_last, cache)
    check_shape(norms, (T,), "hidden_gradient_norms: one norm per time step", "T,")
    _, _, per_step = _autograd(x, h0, Wx, Wh, b, dh)
    expected = [float(torch.linalg.norm(g)) for g in per_step]
    # float64 on both sides: rounding only
    assert_close(norms, expected, "||dL/dh_t|| for L = sum(h_{T-1} * dh_last), t = 0 .. T-1 "
                 "(index t is step t; the last entry is ||dh_last||)", rtol=1e-9, atol=1e-12)


@pytest.mark.points(2)
def test_gradient_vanishes_with_small_recurrent_weights(impl, rng):
    T = 20
    x = rng.normal(size=(8, T, 6)) * 0.5
    dh_last = rng.normal(size=(8, 16))

    def norms(scale):
        p = impl.init_params(6, 16, seed=3, recurrent_scale=scale)
        _, cache = impl.rnn_forward(x, None, p["Wx"], p["Wh"], p["b"])
        return impl.hidden_gradient_norms(dh_last, cache)

    small = norms(0.5)
    # ||dL/dh_{t-1}|| <= ||Wh||_2 ||dL/dh_t|| since tanh' <= 1: with ||Wh||_2 = 0.5 each step
    # back at least halves the norm (1e-12 absorbs rounding)
    ratios = small[:-1] / small[1:]
    assert np.all(ratios <= 0.5 + 1e-12), (
        f"with Wh = 0.5 x orthogonal, each step back should shrink ||dL/dh_t|| by at least 0.5 "
        f"(tanh' <= 1 and ||Wh||_2 = 0.5); the largest ratio is {ratios.max():.3g}. Does each "
        "step back multiply by (1 - h_t^2) and Wh^T?")
    assert small[0] / small[-1] < 0.5 ** 19 * 1.0001, "the gradient should vanish over 20 steps"
    unit = norms(1.0)
    assert unit[0] / unit[-1] > 1e3 * small[0] / small[-1], (
        f"with an orthogonal Wh (scale 1) the gradient 19 steps back is {unit[0] / unit[-1]:.3g}"
        f" x the last one's; with scale 0.5 it is {small[0] / small[-1]:.3g}. The scale of Wh "
        "should decide how fast it vanishes.")


# --- the loss and the model ----------------------------------------------------------------

@pytest.mark.points(2)
def test_temporal_softmax_loss_averages_over_masked_positions(impl, rng):
    N, T, V = 3, 5, 4
    scores, y = rng.normal(size=(N, T, V)) * 2, rng.integers(0, V, size=(N, T))
    mask = rng.random((N, T)) < 0.6
    mask[0, 0] = True
    loss, dscores = impl.temporal_softmax_loss(scores, y, mask)
    nll = -np.take_along_axis(log_softmax(scores, axis=-1), y[..., None], -1)[..., 0]
    # float64 log-sum-exp: rounding only
    assert_close(loss, nll[mask].mean(), "temporal_softmax_loss: the mean of -log p[y] over "
                 "the positions where mask is True (divide by mask.sum(), not N or N * T)",
                 rtol=1e-11)
    check_shape(dscores, (N, T, V), "dscores", "N, T, V")
    assert np.all(dscores[~mask] == 0), "dscores must be exactly 0 where mask is False"
    gradcheck(lambda: impl.temporal_softmax_loss(scores, y, mask)[0], scores, dscores,
              "temporal_softmax_loss: dscores")


@pytest.mark.points(3)
def test_model_loss_gradients_pass_gradcheck(impl, rng):
    tokens, targets, mask = impl.copy_task(4, 2, 3, 3, rng)  # T = 7, vocab 5
    params = impl.init_params(5, 6, seed=1)
    for k in ("b", "by"):
        params[k] = rng.normal(size=params[k].shape) * 0.3
    loss, grads = impl.model_loss(params, tokens, targets, mask)
    assert set(grads) == set(params), f"grads keys {sorted(grads)}, expected {sorted(params)}"
    for k, p in params.items():
        check_shape(grads[k], p.shape, f"model_loss grads[{k!r}]")
        gradcheck(lambda: impl.model_loss(params, tokens, targets, mask)[0], p, grads[k],
                  f"model_loss: grads[{k!r}]")


@pytest.mark.points(3)
def test_rnn_learns_the_copy_task(impl):
    tokens, targets, mask = impl.copy_task(1000, 3, 0, 4, np.random.default_rng(0))
    test = impl.copy_task(300, 3, 0, 4, np.random.default_rng(1))
    params = impl.init_params(6, 32, seed=0)
    history = impl.train(params, tokens, targets, mask, steps=150, lr=0.02, batch_size=32)
    check_shape(history, (150,), "train(..., steps=150) losses")
    acc = float((impl.predict(params, test[0]) == test[1])[test[2]].mean())
    # the reference reaches 1.000 here (loss 2.1 -> 4e-4); 0.9 leaves room for another seed
    # or update order; chance is 0.25
    assert acc >= 0.9, (
        f"after 150 Adam steps on 'copy 3 symbols', held-out accuracy is {acc:.3f} (loss "
        f"{history[0]:.3f} -> {history[-1]:.3f}); >= 0.9 expected. If the loss barely moves, "
        "check the gradients above and that train updates params in place.")
