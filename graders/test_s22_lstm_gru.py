"""Public graders for s22 LSTM and GRU: torch.nn.LSTM / nn.GRU / their cells are the oracles.

Your modules and torch's share one state_dict (the same names and layout), so every test
copies weights one way or the other and compares outputs, final states and gradients in
float64, where only summation-order rounding can differ.
"""

import math

import pytest
import torch
from torch import nn

from graders.helpers import assert_close, check_shape

F64 = torch.float64


def _t(rng, *shape, scale=1.0):
    return torch.as_tensor(rng.normal(size=shape) * scale, dtype=F64)


def _pair(impl, kind, rng, D=3, H=4, **kw):
    """(ours, torch's) with the same weights; biases randomised so every chunk matters."""
    ours = getattr(impl, kind)(D, H, dtype=F64, **kw)
    ref = getattr(nn, kind)(D, H, dtype=F64, **kw)
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(_t(rng, *p.shape, scale=0.6))
    missing = set(ref.state_dict()) ^ set(ours.state_dict())
    assert not missing, (
        f"{kind}(..., {kw}) parameter names differ from torch.nn.{kind}'s: {sorted(missing)}. "
        "Name them weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}.")
    ours.load_state_dict(ref.state_dict())
    return ours, ref


# --- the cells ---------------------------------------------------------------------------

@pytest.mark.points(2)
def test_lstm_cell_equals_torch_lstm_cell(impl, rng):
    B, D, H = 3, 4, 5
    ref = nn.LSTMCell(D, H, dtype=F64)
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(_t(rng, *p.shape, scale=0.7))
    x, h, c = _t(rng, B, D), _t(rng, B, H), _t(rng, B, H)
    h1, c1 = impl.lstm_cell(x, h, c, ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh)
    check_shape(h1, (B, H), "lstm_cell h'", "B, H")
    with torch.no_grad():
        eh, ec = ref(x, (h, c))
    # float64 on both sides: rounding only
    assert_close(c1, ec, "lstm_cell c' vs nn.LSTMCell (gate order i, f, g, o; c' = f c + i g)",
                 rtol=1e-10, atol=1e-12)
    assert_close(h1, eh, "lstm_cell h' vs nn.LSTMCell (h' = o tanh(c'))", rtol=1e-10,
                 atol=1e-12)


@pytest.mark.points(2)
def test_gru_cell_equals_torch_gru_cell(impl, rng):
    B, D, H = 3, 4, 5
    ref = nn.GRUCell(D, H, dtype=F64)
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(_t(rng, *p.shape, scale=0.7))
    x, h = _t(rng, B, D), _t(rng, B, H)
    h1 = impl.gru_cell(x, h, ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh)
    check_shape(h1, (B, H), "gru_cell h'", "B, H")
    with torch.no_grad():
        expected = ref(x, h)
    assert_close(h1, expected, "gru_cell h' vs nn.GRUCell (gate order r, z, n; n = tanh(W_in x "
                 "+ b_in + r * (W_hn h + b_hn)); h' = (1 - z) n + z h)", rtol=1e-10, atol=1e-12)


# --- whole modules ------------------------------------------------------------------------

@pytest.mark.points(3)
def test_two_layer_batch_first_lstm_equals_torch(impl, rng):
    ours, ref = _pair(impl, "LSTM", rng, num_layers=2, batch_first=True)
    x = _t(rng, 2, 6, 3)  # (B, T, D)
    h0, c0 = _t(rng, 2, 2, 4, scale=0.5), _t(rng, 2, 2, 4, scale=0.5)  # (L, B, H)
    out, (h_n, c_n) = ours(x, (h0, c0))
    check_shape(out, (2, 6, 4), "LSTM(batch_first=True) output", "B, T, H")
    check_shape(h_n, (2, 2, 4), "h_n (num_layers, B, H), whatever batch_first says", "L, B, H")
    with torch.no_grad():
        e_out, (e_h, e_c) = ref(x, (h0, c0))
    # float64, 2 layers x 6 steps: rounding only
    assert_close(out, e_out, "2-layer batch-first LSTM output vs nn.LSTM (layer 1 reads layer "
                 "0's h_t; each layer starts from its own h0[k], c0[k])", rtol=1e-9, atol=1e-11)
    assert_close(h_n, e_h, "h_n vs nn.LSTM", rtol=1e-9, atol=1e-11)
    assert_close(c_n, e_c, "c_n vs nn.LSTM", rtol=1e-9, atol=1e-11)


@pytest.mark.points(3)
def test_two_layer_gru_equals_torch(impl, rng):
    ours, ref = _pair(impl, "GRU", rng, num_layers=2)
    x, h0 = _t(rng, 5, 3, 3), _t(rng, 2, 3, 4, scale=0.5)  # x (T, B, D), h0 (L, B, H)
    out, h_n = ours(x, h0)
    check_shape(out, (5, 3, 4), "GRU output (time-major by default)", "T, B, H")
    with torch.no_grad():
        e_out, e_h = ref(x, h0)
    assert_close(out, e_out, "2-layer GRU output vs nn.GRU", rtol=1e-9, atol=1e-11)
    assert_close(h_n, e_h, "GRU h_n vs nn.GRU", rtol=1e-9, atol=1e-11)


def _grads(module, x, state, weights):
    """Gradients of a random linear functional of every output w.r.t. params, x and state."""
    x = x.clone().requires_grad_()
    state = tuple(s.clone().requires_grad_() for s in state)
    out, final = module(x, state if len(state) > 1 else state[0])
    final = final if isinstance(final, tuple) else (final,)
    loss = (out * weights[0]).sum() + sum((f * w).sum() for f, w in zip(final, weights[1:],
                                                                      strict=True))
    loss.backward()
    named = {n: p.grad for n, p in module.named_parameters()}
    named["input x"] = x.grad
    for i, s in enumerate(state):
        named[f"initial state {i}"] = s.grad
    return named


@pytest.mark.points(3)
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_gradients_equal_torch(impl, rng, kind):
    ours, ref = _pair(impl, kind, rng, num_layers=2, batch_first=True)
    x = _t(rng, 2, 5, 3)
    n_state = 2 if kind == "LSTM" else 1
    state = tuple(_t(rng, 2, 2, 4, scale=0.5) for _ in range(n_state))
    weights = [_t(rng, 2, 5, 4)] + [_t(rng, 2, 2, 4) for _ in range(n_state)]
    mine, expected = _grads(ours, x, state, weights), _grads(ref, x, state, weights)
    for name, g in expected.items():
        assert mine[name] is not None, f"{kind}: {name} got no gradient (detached somewhere?)"
        # float64 autograd on both sides: rounding only
        assert_close(mine[name], g, f"{kind} gradient of {name} vs torch.nn.{kind}",
                     rtol=1e-9, atol=1e-11)


@pytest.mark.points(2)
def test_forget_bias_lands_on_the_forget_gate(impl):
    H = 4
    torch.manual_seed(0)
    plain = impl.LSTM(3, H, num_layers=2)
    torch.manual_seed(0)
    biased = impl.LSTM(3, H, num_layers=2, forget_bias=1.5)
    for k in range(2):
        for name in (f"bias_ih_l{k}", f"bias_hh_l{k}"):
            delta = getattr(biased, name).detach() - getattr(plain, name).detach()
            expected = torch.zeros(4 * H)
            if name.startswith("bias_ih"):
                expected[H:2 * H] = 1.5  # torch's chunk order i, f, g, o: f is chunk 1
            assert_close(delta, expected, f"LSTM(forget_bias=1.5) minus LSTM() in {name} "
                         "(same seed): forget_bias is added once, to the f slice [H:2H] of "
                         "bias_ih only", rtol=0, atol=1e-7)


@pytest.mark.points(1)
def test_initialisation_is_uniform_within_one_over_sqrt_h(impl):
    torch.manual_seed(1)
    for module in (impl.LSTM(5, 64, num_layers=2), impl.GRU(5, 64)):
        bound = 1 / math.sqrt(64)
        for name, p in module.named_parameters():
            values = p.detach()
            assert values.abs().max() <= bound, f"{name} exceeds U(-1/sqrt(H), 1/sqrt(H))"
            # >= 1280 draws: the std of U(-a, a) is a / sqrt(3); 15% covers sampling noise
            assert abs(values.std() / (bound / math.sqrt(3)) - 1) < 0.15, (
                f"{name}: std {values.std():.4f}, expected {bound / math.sqrt(3):.4f} "
                "(uniform on (-1/sqrt(H), 1/sqrt(H)), as torch initialises)")
