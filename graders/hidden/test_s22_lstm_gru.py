"""Hidden graders for s22 LSTM and GRU: options, edge cases and shapes the public tests skip."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from graders.helpers import assert_close, check_shape

F64 = torch.float64


def _pair(impl, kind, gen, D, H, **kw):
    ours = getattr(impl, kind)(D, H, dtype=F64, **kw)
    ref = getattr(nn, kind)(D, H, dtype=F64, **kw)
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=F64) * 0.6)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


@settings(max_examples=8, deadline=None)
@given(T=st.integers(1, 4), B=st.integers(1, 3),
       D=st.integers(1, 4), H=st.integers(1, 4), layers=st.integers(1, 3),
       bias=st.booleans(), batch_first=st.booleans(), seed=st.integers(0, 2**16))
@pytest.mark.points(2)
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_every_option_equals_torch(impl, kind, T, B, D, H, layers, bias, batch_first, seed):
    gen = torch.Generator().manual_seed(seed)
    ours, ref = _pair(impl, kind, gen, D, H, num_layers=layers, bias=bias,
                      batch_first=batch_first)
    shape = (B, T, D) if batch_first else (T, B, D)
    x = torch.randn(shape, generator=gen, dtype=F64)
    where = (f"{kind}({D}, {H}, num_layers={layers}, bias={bias}, batch_first={batch_first}) "
             f"on T={T}, B={B}")
    out, final = ours(x)
    with torch.no_grad():
        e_out, e_final = ref(x)
    # float64 on both sides: rounding only
    assert_close(out, e_out, f"{where}: output (zero initial state)", rtol=1e-9, atol=1e-11)
    finals = final if isinstance(final, tuple) else (final,)
    e_finals = e_final if isinstance(e_final, tuple) else (e_final,)
    for got, exp, name in zip(finals, e_finals, ("h_n", "c_n"), strict=False):
        assert_close(got, exp, f"{where}: {name}", rtol=1e-9, atol=1e-11)


@pytest.mark.points(1)
def test_no_bias_parameters_when_bias_is_false(impl):
    for kind in ("LSTM", "GRU"):
        names = sorted(n for n, _ in getattr(impl, kind)(3, 4, num_layers=2, bias=False)
                       .named_parameters())
        expected = sorted(n for n, _ in getattr(nn, kind)(3, 4, num_layers=2, bias=False)
                          .named_parameters())
        assert names == expected, f"{kind}(bias=False) parameters {names}, expected {expected}"


@pytest.mark.points(1)
def test_zero_state_equals_none_and_a_given_state_matters(impl):
    gen = torch.Generator().manual_seed(3)
    lstm = impl.LSTM(2, 3, num_layers=2, dtype=F64)
    x = torch.randn(4, 2, 2, generator=gen, dtype=F64)
    zeros = torch.zeros(2, 2, 3, dtype=F64)
    with torch.no_grad():
        out_none, _ = lstm(x)
        out_zero, _ = lstm(x, (zeros, zeros))
        out_c, _ = lstm(x, (zeros, torch.ones_like(zeros)))
        out_h, _ = lstm(x, (torch.ones_like(zeros), zeros))
    assert_close(out_none, out_zero, "LSTM output with state=None vs explicit zeros",
                 rtol=0, atol=0)
    for out, which in ((out_c, "c0"), (out_h, "h0")):
        moved = (out - out_zero).abs().amax(dim=(1, 2))
        assert bool((moved > 1e-8).all()), (
            f"a non-zero {which} should change the top layer's output at every step; the "
            f"change per step is {moved.tolist()}. Is the given state used, and carried?")
    gru = impl.GRU(2, 3, dtype=F64)
    with torch.no_grad():
        a, _ = gru(x)
        b, _ = gru(x, torch.zeros(1, 2, 3, dtype=F64))
    assert_close(a, b, "GRU output with h0=None vs explicit zeros", rtol=0, atol=0)


@pytest.mark.points(1)
def test_a_length_one_sequence_is_one_cell_step(impl):
    gen = torch.Generator().manual_seed(5)
    ours, ref = _pair(impl, "LSTM", gen, 3, 2, batch_first=True)
    x = torch.randn(1, 1, 3, generator=gen, dtype=F64)  # B = 1, T = 1
    h0, c0 = (torch.randn(1, 1, 2, generator=gen, dtype=F64) for _ in range(2))
    out, (h_n, c_n) = ours(x, (h0, c0))
    with torch.no_grad():
        _, (e_h, e_c) = ref(x, (h0, c0))
    assert_close(out[:, 0], h_n[0], "for T = 1 the output is h_n of the top layer", rtol=0,
                 atol=1e-15)
    assert_close(c_n, e_c, "c_n for T = 1, B = 1 with a given state", rtol=1e-10, atol=1e-12)
    assert_close(h_n, e_h, "h_n for T = 1, B = 1 with a given state", rtol=1e-10, atol=1e-12)


@pytest.mark.points(1)
def test_device_and_dtype_are_honoured(impl):
    for kind in ("LSTM", "GRU"):
        module = getattr(impl, kind)(3, 4, num_layers=2, device="meta")
        devices = {p.device.type for p in module.parameters()}
        assert devices == {"meta"}, f"{kind}(device='meta') parameters on {devices}"
        # (a forward pass on meta tensors would be a fine check, but its first call costs
        # seconds of lazy imports in torch; the float64 run below checks the forward's dtype)
        out, _ = getattr(impl, kind)(3, 4, dtype=F64)(torch.zeros(5, 2, 3, dtype=F64))
        assert out.dtype == F64, f"{kind}(dtype=float64) output is {out.dtype}"
        check_shape(out, (5, 2, 4), f"{kind} output", "T, B, H")
        dtypes = {p.dtype for p in getattr(impl, kind)(3, 4, dtype=F64).parameters()}
        assert dtypes == {F64}, f"{kind}(dtype=torch.float64) parameters are {dtypes}"


@pytest.mark.points(1)
def test_gru_update_gate_of_one_keeps_the_state(impl):
    H = 3
    w_ih, w_hh = torch.zeros(3 * H, 2, dtype=F64), torch.zeros(3 * H, H, dtype=F64)
    b_ih = torch.zeros(3 * H, dtype=F64)
    b_ih[H:2 * H] = 50.0  # z = sigmoid(50) = 1 - 2e-22: keep the old state
    h = torch.tensor([[0.3, -0.7, 0.9]], dtype=F64)
    out = impl.gru_cell(torch.ones(1, 2, dtype=F64), h, w_ih, w_hh, b_ih, torch.zeros_like(b_ih))
    assert_close(out, h, "gru_cell with the update gate z saturated at 1 must return h "
                 "unchanged (h' = (1 - z) n + z h)", rtol=0, atol=1e-15)
    lstm_h, lstm_c = impl.lstm_cell(torch.ones(1, 2, dtype=F64), h, h, torch.zeros(4 * H, 2,
                                    dtype=F64), torch.zeros(4 * H, H, dtype=F64))
    # no biases, zero weights: every gate is sigmoid(0) = 1/2 and g = tanh(0) = 0
    assert_close(lstm_c, 0.5 * h, "lstm_cell without biases and zero weights: c' = f c = c / 2",
                 rtol=0, atol=1e-15)
    assert_close(lstm_h, 0.5 * torch.tanh(0.5 * h), "lstm_cell: h' = o tanh(c') with o = 1/2",
                 rtol=0, atol=1e-15)
