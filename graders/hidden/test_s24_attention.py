"""Hidden graders for s24 attention: random shapes and masks, finite differences, temperature."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.helpers import assert_close, gradcheck, to_numpy


def _t(a, dtype=torch.float64):
    return torch.as_tensor(a, dtype=dtype)


@pytest.mark.points(3)
@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 3), nh=st.integers(1, 3), T=st.integers(1, 6), S=st.integers(1, 6),
       d_k=st.integers(1, 9), d_v=st.integers(1, 5), mask_kind=st.sampled_from(
           ["none", "random_TS", "random_B1TS", "padding"]), seed=st.integers(0, 2**16))
def test_matches_torch_on_random_shapes_and_masks(impl, B, nh, T, S, d_k, d_v, mask_kind, seed):
    rng = np.random.default_rng(seed)
    q, k = _t(rng.normal(size=(B, nh, T, d_k))), _t(rng.normal(size=(B, nh, S, d_k)))
    v = _t(rng.normal(size=(B, nh, S, d_v)))
    mask = {"none": None,
            "random_TS": torch.as_tensor(rng.random((T, S)) < 0.6),
            "random_B1TS": torch.as_tensor(rng.random((B, 1, T, S)) < 0.6),
            "padding": (torch.arange(S)[None, :] < torch.as_tensor(rng.integers(0, S + 1, B))
                        [:, None])[:, None, None, :]}[mask_kind]
    out, w = impl.scaled_dot_product_attention(q, k, v, mask=mask)
    what = (f"B={B}, nh={nh}, T={T}, S={S}, d_k={d_k}, d_v={d_v}, mask {mask_kind} "
            "(rows with no visible key must give 0, as torch does)")
    # float64 on both sides: rounding only
    assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                 f"output vs torch, {what}", rtol=1e-9, atol=1e-11)
    full = torch.ones(T, S, dtype=torch.bool) if mask is None else mask.expand(B, nh, T, S)
    visible = full.any(-1)
    assert_close(w.sum(-1), visible.double().expand(B, nh, T), f"row sums of the weights, "
                 f"{what}: 1 where a key is visible, 0 where none is", atol=1e-12)


@pytest.mark.points(2)
def test_finite_difference_gradients(impl, rng):
    """Central differences through the whole function (output AND weights), float64."""
    q, k, v = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 2))
    mask = torch.as_tensor(rng.random((2, 4, 5)) < 0.7)
    mask[..., 1] = True  # no empty rows: this test is about the smooth part
    Ro, Rw = rng.normal(size=(2, 4, 2)), rng.normal(size=(2, 4, 5))

    def loss(qq, kk, vv):
        out, w = impl.scaled_dot_product_attention(qq, kk, vv, mask=mask)
        return (out * _t(Ro)).sum() + (w * _t(Rw)).sum()

    arrays = {"q": q, "k": k, "v": v}
    tensors = {n: torch.from_numpy(a) for n, a in arrays.items()}  # share memory with arrays
    for name, a in arrays.items():
        leaf = {n: (t.clone().requires_grad_() if n == name else t) for n, t in tensors.items()}
        analytic, = torch.autograd.grad(loss(leaf["q"], leaf["k"], leaf["v"]), leaf[name])
        gradcheck(lambda: loss(tensors["q"], tensors["k"], tensors["v"]).item(), a, analytic,
                  f"d(loss)/d{name} through out and weights")


@pytest.mark.points(2)
def test_entropy_matches_the_reference_as_dk_grows(impl, rng):
    """With 1/sqrt(d_k) the attention's entropy does not collapse as the head size grows."""
    S = 16
    for d_k in (4, 64, 256):
        q, k = rng.normal(size=(3, 8, d_k)), rng.normal(size=(3, S, d_k))
        _, w = impl.scaled_dot_product_attention(_t(q), _t(k), _t(rng.normal(size=(3, S, 2))))
        ref = torch.softmax(_t(q @ k.transpose(0, 2, 1) / np.sqrt(d_k)), -1)
        ours = float(-(w * torch.log(w.clamp_min(1e-300))).sum(-1).mean())
        theirs = float(-(ref * torch.log(ref)).sum(-1).mean())
        assert abs(ours - theirs) < 1e-9, (  # float64 entropies of equal weights
            f"d_k = {d_k}: mean attention entropy {ours:.4f} nats, expected {theirs:.4f} (the "
            f"uniform maximum is log S = {np.log(S):.4f}). Lower means a sharper softmax, "
            "higher a flatter one: the scores' temperature is wrong; divide by sqrt(d_k).")


@pytest.mark.points(1)
def test_padding_mask_edge_lengths(impl):
    m = impl.padding_mask(torch.tensor([0, 4, 2], dtype=torch.int32), 4)
    expected = torch.tensor([[0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    assert m.shape == (3, 1, 1, 4) and torch.equal(m.reshape(3, 4), expected), (
        "padding_mask with lengths 0 (nothing real), S (nothing padded) and in between, as "
        f"int32: expected (3, 1, 1, 4) rows\n{expected.int()}\ngot {tuple(m.shape)}:\n"
        f"{m.reshape(m.shape[0], -1).int()}")


@pytest.mark.points(1)
def test_causal_mask_for_many_lengths(impl):
    for T in range(1, 12):
        m = impl.causal_mask(T)
        assert torch.equal(m, torch.ones(T, T, dtype=torch.bool).tril()), (
            f"causal_mask({T}) is not the lower triangle with its diagonal")


@pytest.mark.points(1)
def test_each_batch_and_head_is_independent(impl, rng):
    q, k, v = (_t(rng.normal(size=(3, 2, 4, 5))) for _ in range(3))
    mask = torch.ones(4, 4, dtype=torch.bool).tril()
    out, _ = impl.scaled_dot_product_attention(q, k, v, mask=mask)
    alone, _ = impl.scaled_dot_product_attention(q[2, 1], k[2, 1], v[2, 1], mask=mask)
    # float64, same arithmetic on a slice
    assert_close(out[2, 1], alone, "batch 2, head 1 computed inside the batch vs alone: "
                 "attention must not mix batches or heads (softmax over the LAST axis, "
                 "matmul over the last two)", rtol=1e-12, atol=1e-13)


@pytest.mark.points(1)
def test_inputs_are_not_modified_and_dtype_is_kept(impl, rng):
    q, k, v = (_t(rng.normal(size=(2, 4, 3)), torch.float32) for _ in range(3))
    mask = torch.ones(4, 4, dtype=torch.bool).tril()
    before = [t.clone() for t in (q, k, v, mask)]
    out, w = impl.scaled_dot_product_attention(q, k, v, mask=mask)
    for name, t, b in zip(("q", "k", "v", "mask"), (q, k, v, mask), before, strict=True):
        assert torch.equal(t, b), f"the call modified its input {name} in place; work on copies"
    assert out.dtype == torch.float32 and w.dtype == torch.float32, (
        f"float32 inputs should give float32 out and weights, got {out.dtype}, {w.dtype}")


@pytest.mark.points(1)
def test_left_padding_with_causal_mask(impl, rng):
    """Left-padded batches make the first queries see nothing: those rows are 0, the rest exact."""
    q, k, v = (_t(rng.normal(size=(2, 1, 5, 4))) for _ in range(3))
    real = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], dtype=torch.bool)  # left padding
    mask = torch.ones(5, 5, dtype=torch.bool).tril() & real[:, None, None, :]
    out, w = impl.scaled_dot_product_attention(q, k, v, mask=mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert_close(out, ref, "left-padded causal attention vs torch (rows 0-1 of sequence 0 see "
                 "no key and must be 0)", rtol=1e-10, atol=1e-12)  # float64
    assert np.all(to_numpy(w[0, 0, :2]) == 0), "weights of queries with no visible key must be 0"


@pytest.mark.points(1)
def test_masks_and_attention_stay_on_the_inputs_device(impl):
    """The meta device has shapes and dtypes but no data: nothing may silently move to the CPU."""
    m = impl.causal_mask(4, device="meta")
    assert m.device.type == "meta" and m.dtype == torch.bool and tuple(m.shape) == (4, 4), (
        f"causal_mask(4, device='meta') should build a (4, 4) bool tensor on that device (pass "
        f"device= to the factory function), got {tuple(m.shape)} {m.dtype} on {m.device}")
    pad = impl.padding_mask(torch.tensor([2, 4], device="meta"), 4)
    assert pad.device.type == "meta" and tuple(pad.shape) == (2, 1, 1, 4), (
        f"padding_mask of lengths on the meta device should stay on it (build the positions "
        f"with torch.arange(S, device=lengths.device)), got {tuple(pad.shape)} on {pad.device}")
    q = torch.empty(2, 3, 4, 5, device="meta")
    out, w = impl.scaled_dot_product_attention(q, q, q[..., :2], m & pad)
    assert out.device.type == "meta" and w.device.type == "meta", (
        f"attention on meta tensors returned out on {out.device} and weights on {w.device}")
    assert tuple(out.shape) == (2, 3, 4, 2) and tuple(w.shape) == (2, 3, 4, 4)


@pytest.mark.points(1)
def test_attention_keeps_the_input_dtype(impl, rng):
    q, k, v = (_t(rng.normal(size=(2, 4, 6))) for _ in range(3))
    mask = impl.causal_mask(4)
    ref, ref_w = impl.scaled_dot_product_attention(q, k, v, mask)
    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 3e-2)):  # bf16: 8-bit mantissa
        out, w = impl.scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype), mask)
        assert out.dtype == dtype and w.dtype == dtype, (
            f"attention on {dtype} inputs returned out {out.dtype} and weights {w.dtype}: "
            "keep the inputs' dtype (no float64 constants, no softmax(dtype=...) left uncast)")
        assert_close(out, ref, f"attention output in {dtype} vs float64", rtol=tol, atol=tol)
        assert_close(w, ref_w, f"attention weights in {dtype} vs float64", rtol=tol, atol=tol)


@pytest.mark.points(1)
def test_a_query_fully_masked_in_one_head_only(impl, rng):
    """A per-head mask (B, nh, T, S): the empty row of one head is zero, the same query in the
    other heads is untouched (look for empty rows along the KEY axis, not across heads)."""
    q, k, v = (_t(rng.normal(size=shape)) for shape in ((1, 3, 4, 6), (1, 3, 5, 6),
                                                          (1, 3, 5, 2)))
    mask = torch.as_tensor(rng.random((1, 3, 4, 5)) < 0.6)
    mask[..., 0] = True  # every row sees key 0 ...
    mask[0, 1, 2, :] = False  # ... but query 2 of head 1 sees nothing
    out, w = impl.scaled_dot_product_attention(q, k, v, mask)
    scores = (q @ k.transpose(-2, -1) / np.sqrt(6)).masked_fill(~mask, float("-inf"))
    ref_w = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    assert_close(w, ref_w, "weights with a per-head mask where query 2 of head 1 sees no key "
                 "(that row 0, every other row a softmax over its visible keys)",
                 rtol=1e-10, atol=1e-12)
    assert_close(out, ref_w @ v, "output with a per-head mask and one empty row",
                 rtol=1e-10, atol=1e-12)
