"""Hidden graders for s25: random shapes and masks vs torch, per-head masks, float masks, edges."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.helpers import assert_close
from graders.test_s25_multi_head_attention import _pair, _rope_reference, guard


def _t(a, dtype=torch.float64):
    return torch.as_tensor(a, dtype=dtype)


@pytest.mark.points(3)
@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 3), nh=st.integers(1, 4), hs=st.integers(1, 4), T=st.integers(1, 7),
       S=st.integers(1, 7), batch_first=st.booleans(), avg=st.booleans(),
       masks=st.sampled_from(["none", "padding", "attn2d", "attn3d", "float", "float3d",
                              "both"]),
       seed=st.integers(0, 2**16))
def test_random_shapes_and_masks_equal_torch(impl, B, nh, hs, T, S, batch_first, avg, masks,
                                             seed):
    rng = np.random.default_rng(seed)
    E = nh * hs
    mine, ref = _pair(impl, E=E, nh=nh, batch_first=batch_first, seed=seed)
    shape_q, shape_k = ((B, T, E), (B, S, E)) if batch_first else ((T, B, E), (S, B, E))
    q, k, v = _t(rng.normal(size=shape_q)), _t(rng.normal(size=shape_k)), \
        _t(rng.normal(size=shape_k))
    kw = {}
    if masks in ("padding", "both"):
        pad = torch.as_tensor(rng.random((B, S)) < 0.4)
        pad[:, 0] = False  # torch gives NaN where a row has no key left; we give 0
        kw["key_padding_mask"] = pad
    if masks in ("attn2d", "both"):
        blocked = torch.as_tensor(rng.random((T, S)) < 0.4)
        blocked[:, 0] = False
        kw["attn_mask"] = blocked
    if masks == "attn3d":
        blocked = torch.as_tensor(rng.random((B * nh, T, S)) < 0.4)
        blocked[..., 0] = False
        kw["attn_mask"] = blocked
    if masks == "float":
        kw["attn_mask"] = _t(rng.normal(size=(T, S)))
    if masks == "float3d":  # additive, one (T, S) table per (batch, head)
        kw["attn_mask"] = _t(rng.normal(size=(B * nh, T, S)))
    out, w = mine(q, k, v, average_attn_weights=avg, **kw)
    r_out, r_w = ref(q, k, v, average_attn_weights=avg, **kw)
    what = (f"B={B}, nh={nh}, hs={hs}, T={T}, S={S}, batch_first={batch_first}, "
            f"average_attn_weights={avg}, masks: {masks}")
    # float64 on both sides: rounding only
    assert_close(out, r_out, f"output vs nn.MultiheadAttention, {what}", rtol=1e-9, atol=1e-11)
    assert_close(w, r_w, f"weights vs nn.MultiheadAttention, {what}", rtol=1e-9, atol=1e-11)


@pytest.mark.points(2)
def test_a_query_with_no_visible_key_gives_zero_weights(impl, rng):
    mine, _ = _pair(impl, E=8, nh=2, batch_first=True, seed=7)
    x = _t(rng.normal(size=(2, 4, 8)))
    pad = torch.tensor([[False] * 4, [True] * 4])  # sequence 1 is all padding
    out, w = mine(x, x, x, key_padding_mask=pad, average_attn_weights=False)
    assert torch.isfinite(out).all() and torch.isfinite(w).all(), (
        "a query whose keys are all masked must give finite numbers (weights 0), not NaN")
    assert torch.count_nonzero(w[1]) == 0, "all-padding sequence: every weight must be 0"
    assert_close(out[1], mine.out_proj.bias.detach().expand(4, 8), "output of a query with "
                 "no visible key: the heads give 0, so only out_proj's bias is left",
                 rtol=1e-12, atol=1e-12)


@pytest.mark.points(2)
def test_self_attention_is_permutation_equivariant_without_positions(impl, rng):
    mine, _ = _pair(impl, batch_first=True, seed=8)
    x = _t(rng.normal(size=(1, 6, 12)))
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    out, _ = mine(x, x, x)
    out_p, _ = mine(x[:, perm], x[:, perm], x[:, perm])
    assert_close(out_p, out[:, perm], "attention without positions: permuting the tokens "
                 "permutes the outputs the same way", rtol=1e-10, atol=1e-12)  # float64


@pytest.mark.points(2)
def test_rope_keeps_dtype_norms_and_rejects_the_interleaved_convention(impl, rng):
    x = _t(rng.normal(size=(5, 6)), torch.float32)
    y = impl.apply_rope(x)
    assert y.dtype == torch.float32, f"apply_rope must keep float32, got {y.dtype}"
    assert_close(y.double().norm(dim=-1), x.double().norm(dim=-1), "a rotation keeps each "
                 "vector's length", rtol=1e-5, atol=1e-6)  # float32 rounding
    assert_close(y[0], x[0], "position 0 is not rotated", rtol=0, atol=1e-7)
    x64 = x.double()
    pos = torch.arange(5)
    assert_close(impl.apply_rope(x64), _rope_reference(x64, pos), "apply_rope (rotate-half: "
                 "feature j pairs with j + hs/2, not with j + 1)", rtol=1e-10, atol=1e-12)


@pytest.mark.points(1)
def test_invalid_sizes_are_refused(impl):
    with pytest.raises(ValueError):
        impl.MultiHeadAttention(10, 3)
    with pytest.raises(ValueError):
        impl.split_heads(torch.zeros(1, 2, 10), 3)
    with pytest.raises(ValueError):
        impl.apply_rope(torch.zeros(2, 5))
    with pytest.raises(ValueError):
        impl.sinusoidal_positions(4, 5)
    h = guard(impl.split_heads, torch.arange(18.0).reshape(1, 2, 9), 3)  # a valid size still works
    assert h.shape == (1, 3, 2, 3) and float(h[0, 2, 1, 0]) == 15.0, (
        "split_heads(x (1, 2, 9), 3): head 2, token 1 starts at feature 6 of token 1 (= 15)")
