"""Hidden graders for s27: the random draws, other masking rates, the generator, the
attention alone, integer masks, odd shapes and refusals."""

import math

import pytest
import torch

from graders.helpers import assert_close
from graders.test_s27_encoder_mlm import MASK, PAD, SEP, SPECIAL, _bound, _model, _padded_batch


@pytest.mark.points(2)
def test_random_replacements_are_uniform_over_the_whole_vocabulary(impl):
    V, tok = 12, 5
    ids = torch.full((400, 100), tok)
    inputs, labels = impl.mask_tokens(ids, MASK, V, (PAD, MASK), mask_prob=1.0,
                                      generator=torch.Generator().manual_seed(7))
    assert (labels == tok).all(), "mask_prob=1.0 with no special id present chooses everything"
    drawn = inputs[(inputs != MASK) & (inputs != tok)]
    assert drawn.numel() > 0 and drawn.min() >= 0 and drawn.max() < V, (
        f"random replacements must be ids in 0 .. vocab_size-1 = {V - 1}, got values from "
        f"{int(drawn.min())} to {int(drawn.max())}")
    counts = torch.bincount(drawn, minlength=V)
    n = ids.numel()
    for v in range(V):
        if v in (MASK, tok):
            continue
        # each id is drawn with probability 0.1 / V per chosen position, special ids included
        _bound(0.1 / V, n, f"random replacements equal to id {v}", float(counts[v]) / n)


@pytest.mark.points(2)
def test_other_masking_rates_and_the_extremes(impl, rng):
    V = 40
    ids = _padded_batch(rng, 128, 120, V)
    ordinary = ids > SEP
    none_in, none_lab = impl.mask_tokens(ids, MASK, V, SPECIAL, mask_prob=0.0,
                                         generator=torch.Generator().manual_seed(0))
    assert torch.equal(none_in, ids) and (none_lab == -100).all(), (
        "mask_prob=0.0 must choose nothing: inputs equal ids, every label -100")
    inputs, labels = impl.mask_tokens(ids, MASK, V, SPECIAL, mask_prob=0.4,
                                      generator=torch.Generator().manual_seed(1))
    chosen = labels != -100
    _bound(0.4, int(ordinary.sum()), "chosen ordinary tokens at mask_prob=0.4",
           float(chosen.sum() / ordinary.sum()))
    n = int(chosen.sum())
    _bound(0.8 + 0.1 / V, n, "chosen tokens turned into [MASK] at mask_prob=0.4 (still 80 %)",
           float((inputs[chosen] == MASK).float().mean()))
    _bound(0.1 + 0.1 / V, n, "chosen tokens left unchanged at mask_prob=0.4 (still 10 %)",
           float((inputs[chosen] == ids[chosen]).float().mean()))
    with pytest.raises(ValueError):
        impl.mask_tokens(ids, MASK, V, SPECIAL, mask_prob=1.5)


@pytest.mark.points(1)
def test_every_draw_comes_from_the_given_generator(impl, rng):
    ids = _padded_batch(rng, 16, 30, 40)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    impl.mask_tokens(ids, MASK, 40, SPECIAL, generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.rand(3), expected), (
        "with a generator given, mask_tokens must draw from it (generator=generator in every "
        "torch.rand / torch.randint), not from torch's global generator")
    torch.manual_seed(9)
    a = impl.mask_tokens(ids, MASK, 40, SPECIAL)
    torch.manual_seed(9)
    b = impl.mask_tokens(ids, MASK, 40, SPECIAL)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), (
        "without a generator, torch.manual_seed must make mask_tokens reproducible")


@pytest.mark.points(2)
def test_self_attention_alone_with_an_integer_padding_mask(impl, rng):
    config = impl.EncoderConfig(**{"vocab_size": 37, "block_size": 16, "n_layer": 2,
                                   "n_head": 2, "n_embd": 8})
    torch.manual_seed(0)
    attn = impl.SelfAttention(config)
    x = torch.as_tensor(rng.normal(size=(2, 6, 8)), dtype=torch.float32)
    keep = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])  # int64 0 / 1
    with torch.no_grad():
        got = attn(x, keep)
        q, k, v = attn.c_attn(x).split(8, dim=2)
        heads = []
        for h in range(2):
            sl = slice(4 * h, 4 * h + 4)
            s = q[..., sl] @ k[..., sl].transpose(1, 2) / 2.0  # sqrt(head size 4)
            s = s.masked_fill(keep[:, None, :] == 0, float("-inf"))
            heads.append(s.softmax(-1) @ v[..., sl])
        expected = attn.c_proj(torch.cat(heads, -1))
        # float32, the same sums in another order
        assert_close(got, expected, "SelfAttention(x, attention_mask of 0 / 1 integers) vs "
                     "softmax(q k^T / sqrt(hs), padding keys -inf) v per head, then c_proj",
                     rtol=1e-5, atol=1e-6)
        assert_close(attn(x), attn(x, torch.ones(2, 6, dtype=torch.bool)), "no mask vs an "
                     "all-True mask", rtol=1e-6, atol=1e-7)  # identical arithmetic


@pytest.mark.points(1)
def test_one_dimensional_ids_and_a_single_token(impl, rng):
    ids = torch.as_tensor(rng.integers(4, 30, size=4000))
    inputs, labels = impl.mask_tokens(ids, MASK, 30, SPECIAL,
                                      generator=torch.Generator().manual_seed(2))
    assert inputs.shape == ids.shape == labels.shape, "mask_tokens must keep any shape"
    _bound(0.15, 4000, "chosen tokens of a 1-D sequence", float((labels != -100).float().mean()))
    model = _model(impl, n_head=1).eval()
    one = torch.as_tensor(rng.integers(0, 37, size=(3, 1)))
    logits, loss = model(one, one)
    assert logits.shape == (3, 1, 37) and math.isfinite(loss.item()), (
        f"a single-token input must work: got logits {tuple(logits.shape)}, loss {loss}")


@pytest.mark.points(1)
def test_every_parameter_gets_a_gradient_from_the_mlm_loss(impl, rng):
    model = _model(impl)
    ids = torch.as_tensor(rng.integers(4, 37, size=(4, 12)))
    inputs, labels = impl.mask_tokens(ids, MASK, 37, SPECIAL, mask_prob=0.5,
                                      generator=torch.Generator().manual_seed(0))
    _, loss = model(inputs, labels, attention_mask=torch.ones_like(ids))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, (
            f"{name} got no, a zero or a non-finite gradient from the MLM loss")


@pytest.mark.points(1)
def test_bad_inputs_are_refused(impl):
    model = _model(impl)
    with pytest.raises(ValueError):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError):
        model(torch.ones(2, 3, dtype=torch.long), attention_mask=torch.tensor([[1, 1, 0],
                                                                               [0, 0, 0]]))
    assert model(torch.ones(1, 2, dtype=torch.long))[0].shape == (1, 2, 37)


@pytest.mark.points(1)
def test_the_blocks_pass_the_padding_mask_through(impl, rng):
    config = impl.EncoderConfig(vocab_size=37, block_size=16, n_layer=1, n_head=2, n_embd=8)
    torch.manual_seed(0)
    block, mlp = impl.Block(config), impl.MLP(config)
    x = torch.as_tensor(rng.normal(size=(2, 6, 8)), dtype=torch.float32)
    keep = torch.tensor([[True] * 3 + [False] * 3, [True] * 6])
    with torch.no_grad():
        h = x + block.attn(block.ln_1(x), keep)
        # float32, the same operations
        assert_close(block(x, keep), h + block.mlp(block.ln_2(h)), "Block(x, mask) vs "
                     "x + attn(ln_1(x), mask), then + mlp(ln_2(.))", rtol=1e-5, atol=1e-6)
        assert_close(block(x, keep)[0, :3], block(x[:1, :3])[0], "a block's real positions "
                     "with padding vs without it", rtol=1e-5, atol=1e-6)
        assert mlp(x).shape == x.shape
