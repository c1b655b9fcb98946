"""s22 · LSTM and GRU from tensor primitives, equal to torch.nn.LSTM and torch.nn.GRU.

You build
    lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh)   one LSTM step -> (h', c')
    gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)       one GRU step -> h'
    LSTM(input_size, hidden_size, num_layers, bias, batch_first, forget_bias)   -> nn.Module
    GRU(input_size, hidden_size, num_layers, bias, batch_first)                 -> nn.Module

How it differs from the previous step
    s21's RNN rewrites its whole state at every step, h_t = tanh(x_t Wx + h_{t-1} Wh + b), so
    the gradient back to step t - k is a product of k Jacobians and vanishes. Gated cells
    change the state ADDITIVELY, under the control of gates in (0, 1) that the network learns.
    Autograd (torch) now does the backward pass; you write the forward with tensor operations
    (matmul, sigmoid, tanh, chunk) and check it against torch's fused kernels.

The math, in torch's layout (x (B, D), h and c (B, H))
    LSTM: gates = x W_ih^T + b_ih + h W_hh^T + b_hh      W_ih (4H, D), W_hh (4H, H), b (4H,)
          i, f, g, o = gates.chunk(4, dim=1)             IN THIS ORDER: input, forget, cell, out
          i, f, o = sigmoid(i), sigmoid(f), sigmoid(o);  g = tanh(g)
          c' = f * c + i * g                             the memory cell: kept, plus written
          h' = o * tanh(c')                              what the cell shows to the outside
    GRU:  gi = x W_ih^T + b_ih,  gh = h W_hh^T + b_hh    W_ih (3H, D), W_hh (3H, H), b (3H,)
          r, z, n chunks IN THIS ORDER: reset, update, new
          r = sigmoid(gi_r + gh_r),  z = sigmoid(gi_z + gh_z)
          n = tanh(gi_n + r * gh_n)                      r scales h's part, b_hn included
          h' = (1 - z) * n + z * h                       z = 1 keeps the old state
    A layer runs its cell over t = 0 .. T-1, carrying (h, c); layer k > 0 reads the outputs
    h_t of layer k - 1 (so its W_ih is (4H, H)). Parameters are named as torch's:
    weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, so one state_dict loads into
    both. Every parameter starts U(-1/sqrt(H), 1/sqrt(H)), as torch's.

Shapes (torch's conventions)
    x (T, B, D), or (B, T, D) with batch_first=True; output: the top layer's h_t, (T, B, H) or
    (B, T, H). h_n, c_n (and the given h0, c0) are (num_layers, B, H) WHATEVER batch_first says.

Why gates help, without handwaving
    Along the cell, dc'/dc = f (elementwise): no weight matrix, no squashing nonlinearity. If
    the network learns f ~ 1 and i ~ 0 for a unit, that unit carries its value (and its
    gradient) across hundreds of steps; s21's RNN multiplies by Wh^T diag(tanh') at every
    step instead. The GRU's z plays both roles (keep with z, write with 1 - z). Starting the
    forget bias at 1 (forget_bias=1.0, Jozefowicz et al. 2015) makes "remember" the default
    before any training, which helps on long delays.

You should be able to explain
    - why RNNs struggle with long dependencies and how the cell's additive update avoids the
      product of Jacobians;
    - what each gate does (i: how much to write, f: how much to keep, o: how much to show;
      GRU: r, how much of the past feeds the candidate, z, keep or replace);
    - why the LSTM has two biases per gate in torch (cuDNN's layout; only their sum matters);
    - teacher forcing vs free generation (s23), and why even an LSTM cannot be parallelised
      over time, unlike attention (s24).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def lstm_cell(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w_ih: torch.Tensor,
              w_hh: torch.Tensor, b_ih: torch.Tensor | None = None,
              b_hh: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step in torch's gate order (i, f, g, o): returns (h', c'), each (B, H)."""
    raise NotImplementedError("s22 lstm gru: gates from both projections (+ biases), chunk i f g o, update c then h")


def gru_cell(x: torch.Tensor, h: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor,
             b_ih: torch.Tensor | None = None, b_hh: torch.Tensor | None = None) -> torch.Tensor:
    """One GRU step in torch's gate order (r, z, n): returns h' (B, H)."""
    raise NotImplementedError("s22 lstm gru: project x and h separately, r and z from their sums, n with r * (h part)")


class _Recurrent(nn.Module):
    """Parameters laid out and named as torch's nn.LSTM / nn.GRU (given)."""

    def __init__(self, gates: int, input_size: int, hidden_size: int, num_layers: int,
                 bias: bool, batch_first: bool, device, dtype) -> None:
        super().__init__()
        if num_layers < 1 or hidden_size < 1:
            raise ValueError(f"num_layers and hidden_size must be >= 1, got {num_layers}, "
                             f"{hidden_size}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        kw = {"device": device, "dtype": dtype}
        for k in range(num_layers):
            d_in = input_size if k == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{k}",
                                    nn.Parameter(torch.empty(gates * hidden_size, d_in, **kw)))
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(
                torch.empty(gates * hidden_size, hidden_size, **kw)))
            if bias:
                self.register_parameter(f"bias_ih_l{k}",
                                        nn.Parameter(torch.empty(gates * hidden_size, **kw)))
                self.register_parameter(f"bias_hh_l{k}",
                                        nn.Parameter(torch.empty(gates * hidden_size, **kw)))
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def layer_params(self, k: int) -> tuple[torch.Tensor, ...]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of layer k; biases None if bias=False."""
        names = (f"weight_ih_l{k}", f"weight_hh_l{k}", f"bias_ih_l{k}", f"bias_hh_l{k}")
        return tuple(getattr(self, n, None) for n in names)

    def _time_major(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"x must be {'(B, T, D)' if self.batch_first else '(T, B, D)'} "
                             f"with D = input_size = {self.input_size}, got {tuple(x.shape)}")
        return x.transpose(0, 1) if self.batch_first else x  # (T, B, D)

    def _zeros(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(self.num_layers, x.shape[1], self.hidden_size)  # (L, B, H)


class LSTM(_Recurrent):
    """A multi-layer LSTM equal to torch.nn.LSTM (no dropout, one direction)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, forget_bias: float = 0.0, device=None,
                 dtype=None) -> None:
        super().__init__(4, input_size, hidden_size, num_layers, bias, batch_first, device, dtype)
        if forget_bias and not bias:
            raise ValueError("forget_bias needs bias=True")
        H = hidden_size
        with torch.no_grad():
            raise NotImplementedError("s22 lstm gru: add forget_bias to the forget gate's slice of every bias_ih_l{k}")

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """(output, (h_n, c_n)); state (h0, c0), each (num_layers, B, H), zeros if None."""
        x = self._time_major(x)  # (T, B, D)
        h0, c0 = state if state is not None else (self._zeros(x), self._zeros(x))
        raise NotImplementedError("s22 lstm gru: for each layer, run lstm_cell over time from (h0[k], c0[k])")


class GRU(_Recurrent):
    """A multi-layer GRU equal to torch.nn.GRU (no dropout, one direction)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, device=None, dtype=None) -> None:
        super().__init__(3, input_size, hidden_size, num_layers, bias, batch_first, device, dtype)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(output, h_n); h0 (num_layers, B, H), zeros if None."""
        x = self._time_major(x)  # (T, B, D)
        h0 = h0 if h0 is not None else self._zeros(x)
        raise NotImplementedError("s22 lstm gru: for each layer, run gru_cell over time from h0[k]")
