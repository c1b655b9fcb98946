"""Public graders for s24 attention: masks, the torch oracle, exact zeros, no peeking ahead.

Oracles: torch.nn.functional.scaled_dot_product_attention (which returns no weights) for the
output and its gradients, and a float64 NumPy softmax written out below for the weights.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graders.helpers import assert_causal, assert_close, assert_finite, check_shape, to_numpy


def _randn(rng, *shape, dtype=torch.float64):
    return torch.as_tensor(rng.normal(size=shape), dtype=dtype)


def _qkv(rng, B=2, nh=3, T=5, S=7, d_k=8, d_v=6, dtype=torch.float64):
    """q (B, nh, T, d_k), k (B, nh, S, d_k), v (B, nh, S, d_v): T != S and d_v != d_k on purpose."""
    return (_randn(rng, B, nh, T, d_k, dtype=dtype), _randn(rng, B, nh, S, d_k, dtype=dtype),
            _randn(rng, B, nh, S, d_v, dtype=dtype))


def _np_weights(q, k, mask=None):
    """The oracle for the weights: float64 NumPy, -inf masking, max-shifted softmax."""
    q, k = to_numpy(q), to_numpy(k)
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(to_numpy(mask) > 0, scores, -np.inf)
    top = scores.max(axis=-1, keepdims=True)
    e = np.exp(scores - np.where(np.isfinite(top), top, 0.0))
    total = e.sum(axis=-1, keepdims=True)
    return e / np.where(total > 0, total, 1.0)


# --- the masks ------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_causal_mask_is_lower_triangle_with_diagonal(impl):
    for T in (1, 2, 5):
        m = impl.causal_mask(T)
        check_shape(m, (T, T), f"causal_mask({T})", "T, T")
        assert m.dtype == torch.bool, f"causal_mask must be a bool tensor, got {m.dtype}"
        expected = torch.ones(T, T, dtype=torch.bool).tril()
        if not torch.equal(m, expected):
            diag, upper = m.diagonal(), m.triu(1)
            why = ("the diagonal is masked: a token must be able to attend to itself"
                   if not diag.all() else
                   "some future positions (above the diagonal) are visible"
                   if upper.any() else "some past positions are hidden")
            raise AssertionError(f"causal_mask({T}) should be True on and below the diagonal "
                                 f"(key j <= query i), False above; {why}. Got\n{m.int()}")
    assert impl.causal_mask(3, device="cpu").device.type == "cpu", "honour the device argument"


@pytest.mark.points(2)
def test_padding_mask_marks_real_key_positions(impl):
    m = impl.padding_mask(torch.tensor([3, 1, 5]), 5)
    check_shape(m, (3, 1, 1, 5), "padding_mask(lengths=[3, 1, 5], S=5)", "B, 1, 1, S")
    assert m.dtype == torch.bool, f"padding_mask must be a bool tensor, got {m.dtype}"
    expected = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(m[:, 0, 0, :], expected), (
        f"padding_mask: sequence b has lengths[b] real tokens at positions 0 .. lengths[b]-1; "
        f"expected\n{expected.int()}\ngot\n{m[:, 0, 0, :].int()}\n(an off-by-one makes one "
        "padding token visible: the comparison is position < length)")


# --- the oracle -----------------------------------------------------------------------------

@pytest.mark.points(1)
def test_output_and_weight_shapes(impl, rng):
    q, k, v = _qkv(rng, B=2, nh=3, T=5, S=7, d_k=8, d_v=6)
    out, w = impl.scaled_dot_product_attention(q, k, v)
    check_shape(out, (2, 3, 5, 6), "out", "B, nh, T, d_v")
    check_shape(w, (2, 3, 5, 7), "weights", "B, nh, T, S")
    out3, w3 = impl.scaled_dot_product_attention(q[0], k[0], v[0])  # no batch axis
    check_shape(out3, (3, 5, 6), "out for 3-D inputs (nh, T, d_k)", "nh, T, d_v")
    check_shape(w3, (3, 5, 7), "weights for 3-D inputs", "nh, T, S")


@pytest.mark.points(2)
def test_matches_torch_sdpa_without_mask(impl, rng):
    q, k, v = _qkv(rng)
    out, _ = impl.scaled_dot_product_attention(q, k, v)
    # float64 on both sides: only summation-order rounding remains
    assert_close(out, F.scaled_dot_product_attention(q, k, v),
                 "attention output vs F.scaled_dot_product_attention (T=5 queries, S=7 keys)",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.points(2)
def test_matches_torch_sdpa_causal(impl, rng):
    q, k, v = _qkv(rng, T=6, S=6)
    out, _ = impl.scaled_dot_product_attention(q, k, v, mask=impl.causal_mask(6))
    assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True),  # float64
                 "output with mask=causal_mask(6) vs torch's is_causal=True", rtol=1e-10,
                 atol=1e-12)


@pytest.mark.points(2)
def test_matches_torch_sdpa_with_padding_and_causal(impl, rng):
    q, k, v = _qkv(rng, B=3, T=6, S=6)
    mask = torch.ones(6, 6, dtype=torch.bool).tril() & \
        (torch.arange(6)[None, :] < torch.tensor([6, 4, 2])[:, None])[:, None, None, :]
    out, _ = impl.scaled_dot_product_attention(q, k, v, mask=mask)
    assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask),  # float64
                 "output with a causal & padding mask (B, 1, T, S) vs torch's attn_mask",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.points(2)
def test_weights_are_the_softmax_of_scaled_scores(impl, rng):
    q, k, v = _qkv(rng)
    mask = torch.as_tensor(rng.random((2, 1, 5, 7)) < 0.7)
    mask[..., 0] = True  # every query keeps a key: this test is not about empty rows
    _, w = impl.scaled_dot_product_attention(q, k, v, mask=mask)
    assert_close(w, _np_weights(q, k, mask),  # float64 on both sides
                 "weights vs softmax(q k^T / sqrt(d_k)) over the keys, masked with -inf",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.points(2)
def test_scale_is_one_over_sqrt_dk(impl, rng):
    """Fit c in weights = softmax(c * q k^T): row log-weights are linear in the raw scores."""
    d_k = 64
    q, k, v = _qkv(rng, B=1, nh=2, T=4, S=9, d_k=d_k, d_v=3)
    _, w = impl.scaled_dot_product_attention(q, k, v)
    logw = np.log(np.clip(to_numpy(w), 1e-300, None))
    raw = to_numpy(q @ k.transpose(-2, -1))
    logw_c = logw - logw.mean(-1, keepdims=True)  # the row's log-normaliser cancels
    raw_c = raw - raw.mean(-1, keepdims=True)
    c = float((logw_c * raw_c).sum() / (raw_c ** 2).sum())
    expected = 1 / np.sqrt(d_k)
    assert abs(c - expected) < 1e-6 * expected, (  # a clean float64 fit is exact to ~1e-12
        f"with d_k = {d_k} your weights behave like softmax(c * q k^T) with c = {c:.5g} "
        f"(= 1/{1 / c:.4g}); expected c = 1/sqrt(d_k) = 1/{np.sqrt(d_k):.0f}. Divide the "
        "scores by sqrt(d_k), the size of a query / key vector (not d_v, not d_k itself).")


# --- invariants -----------------------------------------------------------------------------

@pytest.mark.points(2)
def test_masked_weights_are_exactly_zero(impl, rng):
    q, k, v = _qkv(rng, B=3, T=6, S=6, dtype=torch.float32)
    mask = torch.ones(6, 6, dtype=torch.bool).tril() & \
        (torch.arange(6)[None, :] < torch.tensor([6, 4, 2])[:, None])[:, None, None, :]
    _, w = impl.scaled_dot_product_attention(q, k, v, mask=mask)
    leaked = w.detach().expand(3, 3, 6, 6)[~mask.expand(3, 3, 6, 6)]
    assert torch.count_nonzero(leaked) == 0, (
        f"masked positions must get weight exactly 0, but {torch.count_nonzero(leaked)} of "
        f"{leaked.numel()} have weight (largest {leaked.abs().max():.3g}). Fill masked scores "
        "with -inf BEFORE the softmax: exp(-inf) = 0 exactly, a finite -1e9 is not.")


@pytest.mark.points(1)
def test_weight_rows_sum_to_one(impl, rng):
    q, k, v = _qkv(rng, B=2, T=6, S=6)
    _, w = impl.scaled_dot_product_attention(q, k, v, mask=torch.ones(6, 6).bool().tril())
    # float64: a correct softmax row sums to 1 up to ~1e-15
    assert_close(w.sum(-1), torch.ones(2, 3, 6), "the sum of each query's weights over the "
                 "keys (softmax over the last axis, the keys, not over the queries)", atol=1e-12)


@pytest.mark.points(3)
def test_no_information_flows_from_the_future(impl, rng):
    d = 8
    Wq, Wk, Wv = (_randn(rng, d, d) for _ in range(3))
    x = _randn(rng, 2, 7, d)  # (B, T, C): self-attention over T = 7 positions

    def attend(x, part):
        res = impl.scaled_dot_product_attention(x @ Wq, x @ Wk, x @ Wv,
                                                mask=impl.causal_mask(x.shape[1]))
        return res[part]

    # float64: a correct mask leaves the past bit-identical, up to reassociation noise
    assert_causal(lambda x: attend(x, 0), x, "causal self-attention output (B, T, C)",
                  positions=(0, 2, 5), atol=1e-10)
    assert_causal(lambda x: attend(x, 1), x, "causal attention weights (B, T, S), rows = "
                  "queries", positions=(0, 2, 5), atol=1e-10)


# --- numerical stability and edge cases ---------------------------------------------------------

@pytest.mark.points(2)
def test_large_logits_stay_finite(impl, rng):
    q, k, v = _qkv(rng, B=2, nh=2, T=6, S=6, d_k=16, d_v=4, dtype=torch.float32)
    q, k = q * 1e4, k * 1e4  # scores of order 1e8: a softmax without the max-shift overflows
    mask = torch.ones(6, 6, dtype=torch.bool).tril()
    out, w = impl.scaled_dot_product_attention(q, k, v, mask=mask)
    assert_finite(w, "weights with q, k scaled by 1e4 (subtract the row max, or use "
                     "torch.softmax, which does)")
    assert_finite(out, "output with q, k scaled by 1e4")
    ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=mask)
    # the softmax is (almost) one-hot here; float32 vs float64 differ by rounding only
    assert_close(out, ref, "output with huge logits vs a float64 reference", rtol=1e-4,
                 atol=1e-4)


@pytest.mark.points(2)
def test_masked_keys_stay_hidden_when_visible_logits_are_hugely_negative(impl, rng):
    T = 6
    q = torch.full((1, T, 1), 1e5)  # every query (d_k = 1, so no summation-order noise) ...
    k = torch.full((1, T, 1), -1e5)  # ... disagrees with every key: every score is -1e10
    v = _randn(rng, 1, T, 3, dtype=torch.float32)
    out, w = impl.scaled_dot_product_attention(q, k, v, mask=impl.causal_mask(T))
    expected = torch.ones(T, T).tril() / torch.arange(1, T + 1)[:, None]  # uniform over j <= i
    assert_close(w[0], expected, "weights when every visible score is -1e10: all "
                 "visible scores are equal, so query i spreads 1/(i+1) over keys 0..i; a mask "
                 "filled with a finite value such as -1e9 would win the softmax and leak the "
                 "future. Use float('-inf')", rtol=1e-5, atol=0)  # float32 rounding of 1/(i+1)
    assert_close(out[0], torch.cumsum(v[0].double(), 0) / torch.arange(1, T + 1)[:, None],
                 "output = running mean of the values", rtol=1e-5, atol=1e-5)  # float32


@pytest.mark.points(2)
def test_fully_masked_row_gives_zero_weights_and_output(impl, rng):
    q, k, v = _qkv(rng, B=3, T=5, S=5)
    mask = torch.ones(5, 5, dtype=torch.bool).tril() & \
        (torch.arange(5)[None, :] < torch.tensor([0, 3, 5])[:, None])[:, None, None, :]
    out, w = impl.scaled_dot_product_attention(q, k, v, mask=mask)
    assert_finite(w, "weights when sequence 0 has length 0 (no key is visible: softmax of "
                     "all -inf is 0/0 = NaN; set such rows to 0)")
    assert_close(w[0], torch.zeros(3, 5, 5), "weights of a sequence whose keys are all "
                 "masked (documented behaviour: 0)", atol=0)
    assert_close(out[0], torch.zeros(3, 5, 6), "output of a sequence whose keys are all "
                 "masked (documented behaviour: 0)", atol=0)
    # torch defines the same behaviour; the other sequences must be untouched (float64)
    assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                 "output with one fully masked sequence vs torch", rtol=1e-10, atol=1e-12)


@pytest.mark.points(2)
def test_gradients_match_torch_sdpa(impl, rng):
    q, k, v = (t.requires_grad_() for t in _qkv(rng, B=2, T=5, S=5))
    mask = torch.ones(5, 5, dtype=torch.bool).tril() & \
        (torch.arange(5)[None, :] < torch.tensor([5, 3])[:, None])[:, None, None, :]
    R = _randn(rng, 2, 3, 5, 6)  # a random upstream gradient
    out, _ = impl.scaled_dot_product_attention(q, k, v, mask=mask)
    ours = torch.autograd.grad((out * R).sum(), (q, k, v))
    ref = torch.autograd.grad((F.scaled_dot_product_attention(q, k, v, attn_mask=mask) * R)
                              .sum(), (q, k, v))
    for name, g, r in zip("qkv", ours, ref, strict=True):
        # float64 autograd on both sides: rounding only
        assert_close(g, r, f"d loss / d {name} (autograd through your attention vs torch's)",
                     rtol=1e-9, atol=1e-11)
