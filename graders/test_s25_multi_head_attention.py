"""Public graders for s25 multi-head attention: heads, the nn.MultiheadAttention oracle, positions.

Oracles: torch.nn.MultiheadAttention with the learner's weights copied in (output, weights and
gradients), the sinusoidal formula and a float64 rotate-half RoPE written out below.
"""

import math

import pytest
import torch
from torch import nn

from graders.helpers import assert_causal, assert_close, check_shape

STUB_PREFIX = "s25 multi head attention"  # how the stub's own NotImplementedError begins


class _Guarded:
    """The learner's module, with torch's own NotImplementedError turned into a plain failure.

    torch raises NotImplementedError for operations a dtype lacks (`//`, `%`, `**` on bool
    masks); left alone it would read as "not started yet" instead of as a bug.
    """

    def __init__(self, module):
        self.module = module

    def __getattr__(self, name):
        return getattr(self.module, name)

    def __call__(self, *args, **kwargs):
        return guard(self.module, *args, **kwargs)


def guard(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as exc:
        if str(exc).startswith(STUB_PREFIX):
            raise
        raise AssertionError(f"torch refused an operation inside your code: {exc}. Masks are "
                             "bool tensors: combine them with & and ~, not arithmetic") from exc


def _pair(impl, E=12, nh=3, bias=True, batch_first=False, dtype=torch.float64, seed=0):
    """(learner's module, torch's nn.MultiheadAttention) holding the same random weights."""
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(E, nh, bias=bias, batch_first=batch_first, dtype=dtype)
    with torch.no_grad():
        ref.in_proj_weight.normal_(0, 0.5)
        if bias:
            ref.in_proj_bias.normal_(0, 0.5)
            ref.out_proj.bias.normal_(0, 0.5)
    mine = impl.MultiHeadAttention(E, nh, bias=bias, batch_first=batch_first, dtype=dtype)
    with torch.no_grad():
        for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
            getattr(mine, name).weight.copy_(ref.in_proj_weight[i * E:(i + 1) * E])
            if bias:
                getattr(mine, name).bias.copy_(ref.in_proj_bias[i * E:(i + 1) * E])
        mine.out_proj.weight.copy_(ref.out_proj.weight)
        if bias:
            mine.out_proj.bias.copy_(ref.out_proj.bias)
    return _Guarded(mine), ref


def _x(rng, *shape, dtype=torch.float64):
    return torch.as_tensor(rng.normal(size=shape), dtype=dtype)


def _rope_reference(x, positions, base=10000.0):
    """float64 rotate-half RoPE: feature j pairs with j + hs/2, angle p * base^(-2j/hs)."""
    x = x.double()
    hs = x.shape[-1]
    half = hs // 2
    out = torch.empty_like(x)
    for j in range(half):
        ang = positions.double() * base ** (-2 * j / hs)
        a, b = x[..., j], x[..., j + half]
        out[..., j] = a * torch.cos(ang) - b * torch.sin(ang)
        out[..., j + half] = b * torch.cos(ang) + a * torch.sin(ang)
    return out


# --- heads ----------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_split_heads_gives_each_head_its_own_columns(impl, rng):
    x = _x(rng, 2, 5, 12)
    h = impl.split_heads(x, 3)
    check_shape(h, (2, 3, 5, 4), "split_heads(x (2, 5, 12), n_heads=3)", "B, nh, T, hs")
    for head in range(3):
        assert torch.equal(h[:, head], x[:, :, head * 4:(head + 1) * 4]), (
            f"head {head} should hold feature columns {head * 4} .. {head * 4 + 3} of every "
            "token (view as (B, T, nh, hs), then transpose(1, 2)); a plain view to "
            "(B, nh, T, hs) mixes tokens into heads")


@pytest.mark.points(2)
def test_merge_heads_inverts_split_heads(impl, rng):
    for B, T, E, nh in ((2, 5, 12, 3), (1, 1, 6, 6), (3, 7, 8, 1)):
        x = _x(rng, B, T, E)
        back = impl.merge_heads(impl.split_heads(x, nh))
        check_shape(back, (B, T, E), f"merge_heads(split_heads(x, {nh}))", "B, T, d_model")
        assert torch.equal(back, x), (
            f"merge_heads(split_heads(x, {nh})) must give x back exactly (B={B}, T={T}, "
            f"d_model={E}): transpose the head axis back BEFORE flattening it")


# --- the nn.MultiheadAttention oracle --------------------------------------------------------

@pytest.mark.points(3)
def test_self_attention_equals_torch(impl, rng):
    mine, ref = _pair(impl)
    x = _x(rng, 7, 2, 12)  # (T, B, E): batch_first=False, torch's default
    out, w = mine(x, x, x)
    r_out, r_w = ref(x, x, x)
    check_shape(out, (7, 2, 12), "out with batch_first=False", "T, B, d_model")
    check_shape(w, (2, 7, 7), "weights averaged over heads", "B, T, S")
    # float64 on both sides: only summation-order rounding remains
    assert_close(out, r_out, "self-attention output vs nn.MultiheadAttention with the same "
                 "weights", rtol=1e-10, atol=1e-12)
    assert_close(w, r_w, "head-averaged attention weights vs nn.MultiheadAttention",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.points(3)
def test_cross_attention_batch_first_per_head_weights(impl, rng):
    mine, ref = _pair(impl, E=8, nh=2, batch_first=True, seed=1)
    q, kv = _x(rng, 3, 4, 8), _x(rng, 3, 9, 8)  # T=4 queries, S=9 keys
    v = _x(rng, 3, 9, 8)
    out, w = mine(q, kv, v, average_attn_weights=False)
    r_out, r_w = ref(q, kv, v, average_attn_weights=False)
    check_shape(out, (3, 4, 8), "out with batch_first=True", "B, T, d_model")
    check_shape(w, (3, 2, 4, 9), "per-head weights (average_attn_weights=False)",
                "B, nh, T, S")
    assert_close(out, r_out, "cross-attention output (T=4, S=9, key != value)",  # float64
                 rtol=1e-10, atol=1e-12)
    assert_close(w, r_w, "per-head weights vs nn.MultiheadAttention", rtol=1e-10, atol=1e-12)


@pytest.mark.points(3)
def test_key_padding_and_attn_masks_equal_torch(impl, rng):
    mine, ref = _pair(impl, batch_first=True, seed=2)
    x = _x(rng, 3, 6, 12)
    pad = torch.arange(6)[None, :] >= torch.tensor([6, 4, 2])[:, None]  # True = padding
    blocked = torch.ones(6, 6, dtype=torch.bool).triu(1)  # True = may NOT attend
    for kw in ({"key_padding_mask": pad}, {"attn_mask": blocked},
               {"key_padding_mask": pad, "attn_mask": blocked}):
        out, w = mine(x, x, x, **kw)
        r_out, r_w = ref(x, x, x, **kw)
        what = " and ".join(kw)
        assert_close(out, r_out, f"output with {what} (torch convention: True = blocked)",
                     rtol=1e-10, atol=1e-12)  # float64
        assert_close(w, r_w, f"weights with {what}", rtol=1e-10, atol=1e-12)
    _, w = mine(x, x, x, key_padding_mask=pad)
    assert torch.count_nonzero(w[pad[:, None, :].expand(3, 6, 6)]) == 0, (
        "padded keys must get exactly 0 weight (mask with -inf before the softmax)")


@pytest.mark.points(2)
def test_is_causal_equals_a_triu_attn_mask_and_does_not_leak(impl, rng):
    mine, ref = _pair(impl, batch_first=True, seed=3)
    x = _x(rng, 2, 7, 12)
    blocked = torch.ones(7, 7, dtype=torch.bool).triu(1)
    out, _ = mine(x, x, x, is_causal=True)
    assert_close(out, ref(x, x, x, attn_mask=blocked)[0], "output with is_causal=True vs "
                 "torch with a triu(1) attn_mask", rtol=1e-10, atol=1e-12)  # float64
    with torch.no_grad():
        assert_causal(lambda t: mine(t, t, t, is_causal=True)[0], x,
                      "MultiHeadAttention(is_causal=True)", axis=1, atol=1e-10)


@pytest.mark.points(2)
def test_allowed_mask_turns_torch_conventions_into_may_attend(impl):
    mine = impl.MultiHeadAttention(4, 2)
    pad = torch.tensor([[False, False, True], [False, True, True]])  # True = padding
    blocked = torch.tensor([[False, True, False], [False, False, True]])  # (T=2, S=3)
    a = guard(mine.allowed_mask, 2, 2, 3, "cpu", key_padding_mask=pad, attn_mask=blocked,
              is_causal=True)
    check_shape(a, (2, 2, 2, 3), "allowed_mask(B=2, T=2, S=3)", "B, nh, T, S")
    assert a.dtype == torch.bool, f"allowed_mask must be bool (True = may attend), got {a.dtype}"
    expected = torch.tensor([[[True, False, False], [True, True, False]],
                             [[True, False, False], [True, False, False]]])  # (B, T, S)
    assert torch.equal(a, expected[:, None].expand(2, 2, 2, 3)), (
        "allowed_mask = NOT padding AND causal (key j <= query i) AND NOT attn_mask, the same "
        f"for every head; expected per batch\n{expected.int()}\ngot head 0\n{a[:, 0].int()}")
    assert bool(guard(mine.allowed_mask, 1, 2, 3, "cpu").all()), \
        "with no mask at all, every key is allowed"
    per_head = torch.zeros(4, 2, 3, dtype=torch.bool)
    per_head[1, 1, 0] = True  # batch 0, head 1 (batch-major: index b * nh + h), query 1, key 0
    a = guard(mine.allowed_mask, 2, 2, 3, "cpu", attn_mask=per_head)
    assert not a[0, 1, 1, 0] and int((~a).sum()) == 1, (
        "a 3-D attn_mask is (B * nh, T, S) in batch-major order: row b * nh + h")


@pytest.mark.points(2)
def test_need_weights_false_returns_none(impl, rng):
    mine, ref = _pair(impl, seed=4)
    x = _x(rng, 5, 2, 12)
    out, w = mine(x, x, x, need_weights=False)
    assert w is None, f"need_weights=False must return (out, None), got weights {type(w)}"
    assert_close(out, ref(x, x, x, need_weights=False)[0], "output with need_weights=False",
                 rtol=1e-10, atol=1e-12)  # float64


@pytest.mark.points(3)
def test_gradients_equal_torch(impl, rng):
    mine, ref = _pair(impl, batch_first=True, seed=5)
    x = _x(rng, 2, 5, 12)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    R = _x(rng, 2, 5, 12)
    (mine(xa, xa, xa, key_padding_mask=pad)[0] * R).sum().backward()
    (ref(xb, xb, xb, key_padding_mask=pad)[0] * R).sum().backward()
    assert_close(xa.grad, xb.grad, "d loss / d input vs nn.MultiheadAttention", rtol=1e-9,
                 atol=1e-11)  # float64
    E = 12
    for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
        assert_close(getattr(mine, name).weight.grad, ref.in_proj_weight.grad[i * E:(i + 1) * E],
                     f"gradient of {name}.weight", rtol=1e-9, atol=1e-11)
    assert_close(mine.out_proj.weight.grad, ref.out_proj.weight.grad,
                 "gradient of out_proj.weight", rtol=1e-9, atol=1e-11)


@pytest.mark.points(2)
def test_float32_no_bias_one_head(impl, rng):
    mine, ref = _pair(impl, E=6, nh=1, bias=False, batch_first=True, dtype=torch.float32)
    assert mine.q_proj.bias is None, "bias=False must build the projections without a bias"
    x = _x(rng, 2, 5, 6, dtype=torch.float32)
    out, w = mine(x, x, x)
    assert out.dtype == torch.float32, f"float32 in, float32 out; got {out.dtype}"
    # float32: products of O(1) values summed over 6 features, ~1e-6 relative rounding
    assert_close(out, ref(x, x, x)[0], "float32 one-head output without bias", rtol=1e-5,
                 atol=1e-6)


# --- positions ------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_sinusoidal_positions_follow_the_formula(impl):
    T, d = 11, 6
    pe = impl.sinusoidal_positions(T, d)
    check_shape(pe, (T, d), "sinusoidal_positions(11, 6)", "T, d_model")
    p = torch.arange(T, dtype=torch.float64)[:, None]
    i = torch.arange(d // 2, dtype=torch.float64)[None, :]
    angle = p / 10000.0 ** (2 * i / d)
    expected = torch.zeros(T, d, dtype=torch.float64)
    expected[:, 0::2], expected[:, 1::2] = torch.sin(angle), torch.cos(angle)
    # returned as float32: ~6e-8 relative rounding
    assert_close(pe.double(), expected, "PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos",
                 rtol=1e-6, atol=1e-7)
    pe2 = impl.sinusoidal_positions(4, 4, base=100.0)
    assert_close(pe2[3, 2].double(), torch.tensor(math.sin(3 / 100 ** 0.5), dtype=torch.float64),
                 "PE[3, 2] with base=100, d_model=4: sin(3 / 100^(2/4))", rtol=1e-6, atol=1e-7)


@pytest.mark.points(2)
def test_sinusoidal_positions_are_unique(impl):
    pe = impl.sinusoidal_positions(256, 16).double()
    dist = torch.cdist(pe, pe) + torch.eye(256) * 1e9
    assert dist.min() > 1e-3, (
        f"two positions out of 256 got (almost) the same code: distance {dist.min():.3g}")


@pytest.mark.points(3)
def test_rope_equals_the_rotate_half_reference(impl, rng):
    x = _x(rng, 2, 3, 7, 8)  # (B, nh, T, hs)
    pos = torch.arange(7)
    assert_close(impl.apply_rope(x), _rope_reference(x, pos), "apply_rope(x) vs rotate-half "
                 "RoPE (feature j pairs with j + hs/2)", rtol=1e-10, atol=1e-12)  # float64
    pos2 = torch.tensor([5, 0, 2, 9, 1, 3, 100])
    assert_close(impl.apply_rope(x, pos2, base=50.0), _rope_reference(x, pos2, base=50.0),
                 "apply_rope with explicit positions and base=50", rtol=1e-10, atol=1e-12)


@pytest.mark.points(2)
def test_rope_scores_depend_only_on_relative_position(impl, rng):
    q, k = _x(rng, 1, 8), _x(rng, 1, 8)
    scores = []
    for m, n in ((3, 1), (7, 5), (12, 10), (2, 0)):  # m - n = 2 every time
        qm = impl.apply_rope(q, torch.tensor([m]))
        kn = impl.apply_rope(k, torch.tensor([n]))
        scores.append(float((qm * kn).sum()))
    assert max(scores) - min(scores) < 1e-10, (
        f"rope(q, m) . rope(k, n) must depend only on m - n; with m - n = 2 it gave {scores}")
    plain = float((q * k).sum())
    assert abs(scores[0] - plain) > 1e-6, "RoPE must change q . k at a distance of 2"
