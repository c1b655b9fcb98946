"""Public graders for s27 encoder_mlm: torch's encoder layers, bidirectionality, padding, the
MLM loss on labelled positions only, and BERT's 15 % / 80-10-10 masking statistics.

Oracles: torch's nn.TransformerEncoderLayer (pre-LN, norm_first=True) with the weights copied
across; F.cross_entropy on the labelled positions; binomial bounds for the masking rates
(5 standard deviations: a correct answer fails with probability below 1e-6 per bound).
"""

import math

import pytest
import torch
import torch.nn.functional as F

from graders.helpers import assert_close, check_shape, overfit_tiny_batch

SMALL = {"vocab_size": 37, "block_size": 16, "n_layer": 2, "n_head": 3, "n_embd": 12}
PAD, MASK, CLS, SEP = 0, 1, 2, 3  # the special ids of the masking fixtures
SPECIAL = (PAD, MASK, CLS, SEP)


def _model(impl, seed=0, **overrides):
    torch.manual_seed(seed)
    return impl.Encoder(impl.EncoderConfig(**{**SMALL, **overrides}))


def _padded_batch(rng, batch, length, vocab):
    """[CLS] w1 .. wn [SEP] [PAD] ...: random lengths, ordinary ids in 4 .. vocab-1."""
    ids = torch.as_tensor(rng.integers(4, vocab, size=(batch, length)))
    lengths = rng.integers(length // 3, length + 1, size=batch)
    for b, n in enumerate(lengths):
        ids[b, 0], ids[b, n - 1] = CLS, SEP
        ids[b, n:] = PAD
    return ids


def _bound(p, n, what, got):
    """got (a fraction of n draws) must be within 5 binomial standard deviations of p."""
    sd = math.sqrt(p * (1 - p) / n)
    assert abs(got - p) <= 5 * sd + 1e-12, (
        f"{what}: expected a fraction of {p:.4f} (+- {5 * sd:.4f} over {n} draws), got "
        f"{got:.4f}")


def _tanh_gelu(x):
    return F.gelu(x, approximate="tanh")


@pytest.mark.points(3)
def test_logits_equal_torch_pre_ln_encoder_layers_with_copied_weights(impl, rng):
    torch.manual_seed(1)
    layers = [torch.nn.TransformerEncoderLayer(
        12, 3, dim_feedforward=48, dropout=0.0, activation=_tanh_gelu, batch_first=True,
        norm_first=True).eval() for _ in range(2)]
    model = _model(impl).eval()
    with torch.no_grad():  # O(1) weights and non-zero biases / gains: every term shows
        for name, p in model.named_parameters():
            gain = "ln" in name and name.endswith("weight")  # LayerNorm gains near 1
            p.copy_(torch.randn_like(p) * (0.4 if p.ndim == 2 else 0.1) + float(gain))
        for layer, block in zip(layers, model.transformer.h, strict=True):
            layer.self_attn.in_proj_weight.copy_(block.attn.c_attn.weight)  # q, k, v stacked
            layer.self_attn.in_proj_bias.copy_(block.attn.c_attn.bias)
            for dst, src in ((layer.self_attn.out_proj, block.attn.c_proj),
                             (layer.linear1, block.mlp.c_fc), (layer.linear2, block.mlp.c_proj),
                             (layer.norm1, block.ln_1), (layer.norm2, block.ln_2)):
                dst.weight.copy_(src.weight)
                dst.bias.copy_(src.bias)
        idx = _padded_batch(rng, 3, 11, 37)
        keep = idx != PAD
        logits, loss = model(idx, attention_mask=keep)
        assert loss is None, "forward(idx) without labels must return (logits, None)"
        t = model.transformer
        x = t.wte(idx) + t.wpe(torch.arange(11))
        for layer in layers:
            x = layer(x, src_key_padding_mask=~keep)  # True = padding for torch
        expected = t.ln_f(x) @ t.wte.weight.T
    # float32 on both sides, the same operations in another order: reassociation noise only
    assert_close(logits, expected, "logits vs torch's nn.TransformerEncoderLayer (norm_first, "
                 "tanh GELU) with the same weights and src_key_padding_mask", rtol=1e-4,
                 atol=1e-4)


@pytest.mark.points(3)
def test_a_later_token_changes_earlier_outputs(impl, rng):
    model = _model(impl).eval()
    idx = torch.as_tensor(rng.integers(0, 37, size=(2, 12)))
    with torch.no_grad():
        base = model(idx)[0]
        for pos in (11, 0):
            idx2 = idx.clone()
            idx2[:, pos] = (idx2[:, pos] + 1) % 37
            moved = (model(idx2)[0] - base).abs().amax(dim=(0, 2))
            assert moved.min() > 1e-6, (
                f"changing token {pos} must change the logits at EVERY position: an encoder "
                f"is bidirectional, there is no causal mask. It moved them by "
                f"{[round(m, 6) for m in moved.tolist()]}")


@pytest.mark.points(2)
def test_padding_keys_change_nothing_for_real_tokens(impl, rng):
    model = _model(impl).eval()
    short = torch.as_tensor(rng.integers(4, 37, size=(1, 5)))
    padded = torch.cat([short, torch.zeros(1, 6, dtype=torch.long)], 1)
    other = torch.cat([short, torch.as_tensor(rng.integers(4, 37, size=(1, 6)))], 1)
    keep = torch.tensor([[True] * 5 + [False] * 6])
    with torch.no_grad():
        alone = model(short)[0]
        for what, idx in (("padding with [PAD]", padded), ("padding with other ids", other)):
            got = model(idx, attention_mask=keep)[0]
            check_shape(got, (1, 11, 37), "logits", "B, T, vocab_size")
            # float32: the masked keys contribute exactly 0, only the softmax order differs
            assert_close(got[:, :5], alone, f"real positions after {what} (attention_mask 0 "
                         "there) vs the unpadded sequence: mask the padding KEYS with -inf "
                         "before the softmax", rtol=1e-5, atol=1e-5)


@pytest.mark.points(3)
def test_loss_is_the_mean_over_labelled_positions_only(impl, rng):
    model = _model(impl)
    idx = torch.as_tensor(rng.integers(0, 37, size=(3, 10)))
    labels = torch.full_like(idx, -100)
    where = torch.as_tensor(rng.random(size=(3, 10)) < 0.3)
    where[0, 0] = True
    labels[where] = torch.as_tensor(rng.integers(0, 37, size=int(where.sum())))
    logits, loss = model(idx, labels)
    manual = F.cross_entropy(logits[where], labels[where])
    assert_close(loss, manual, f"MLM loss vs the mean cross-entropy over the {int(where.sum())}"
                 " labelled positions (labels == -100 elsewhere are ignored, not averaged in)",
                 rtol=1e-5, atol=1e-6)  # float32 sums in another order
    other = labels.clone()
    other[~where] = -100
    other[0, 0] = (labels[0, 0] + 1) % 37
    changed = model(idx, other)[1].detach()
    assert float((changed - loss.detach()).abs()) > 1e-4, (
        "changing the label of one labelled position must change the loss")
    full = model(idx, idx)[1]
    assert_close(full, F.cross_entropy(logits.reshape(-1, 37), idx.reshape(-1)),
                 "loss with every position labelled vs the plain mean cross-entropy",
                 rtol=1e-5, atol=1e-6)  # float32 sums in another order


@pytest.mark.points(3)
def test_mask_tokens_statistics_15_80_10_10(impl, rng):
    V = 50
    ids = _padded_batch(rng, 256, 200, V)
    inputs, labels = impl.mask_tokens(ids, MASK, V, SPECIAL,
                                      generator=torch.Generator().manual_seed(0))
    check_shape(inputs, ids.shape, "inputs")
    check_shape(labels, ids.shape, "labels")
    chosen = labels != -100
    ordinary = ids > SEP
    assert torch.equal(labels[chosen], ids[chosen]), (
        "labels must hold the ORIGINAL id at every chosen position (-100 elsewhere)")
    assert torch.equal(inputs[~chosen], ids[~chosen]), (
        "positions that are not chosen (label -100) must keep their input id")
    _bound(0.15, int(ordinary.sum()), "chosen ordinary tokens",
           float(chosen.sum() / ordinary.sum()))
    n = int(chosen.sum())
    got, orig = inputs[chosen], ids[chosen]
    _bound(0.8 + 0.1 / V, n, "chosen tokens turned into [MASK] (80 %, plus random draws of "
           "[MASK])", float((got == MASK).float().mean()))
    _bound(0.1 * (V - 2) / V, n, "chosen tokens replaced by another random id (10 %)",
           float(((got != MASK) & (got != orig)).float().mean()))
    _bound(0.1 + 0.1 / V, n, "chosen tokens left unchanged (10 %, plus random draws of the "
           "same id)", float((got == orig).float().mean()))


@pytest.mark.points(2)
def test_special_tokens_and_padding_are_never_chosen(impl, rng):
    ids = _padded_batch(rng, 64, 40, 30)
    for prob in (0.15, 1.0):
        inputs, labels = impl.mask_tokens(ids, MASK, 30, SPECIAL, mask_prob=prob,
                                          generator=torch.Generator().manual_seed(1))
        special = ids <= SEP
        assert (labels[special] == -100).all(), (
            f"mask_prob={prob}: a [CLS], [SEP] or [PAD] position was chosen; tokens in "
            "special_ids are never chosen (their label stays -100)")
        assert torch.equal(inputs[special], ids[special]), (
            f"mask_prob={prob}: special tokens and padding must keep their id")
    assert (labels[~special] != -100).all(), (
        "mask_prob=1.0 chooses every ordinary token")


@pytest.mark.points(2)
def test_mask_tokens_is_seeded_and_leaves_ids_alone(impl, rng):
    ids = _padded_batch(rng, 8, 30, 40)
    before = ids.clone()
    a = impl.mask_tokens(ids, MASK, 40, SPECIAL, generator=torch.Generator().manual_seed(3))
    assert torch.equal(ids, before), "mask_tokens must not modify ids in place: clone first"
    b = impl.mask_tokens(ids, MASK, 40, SPECIAL, generator=torch.Generator().manual_seed(3))
    c = impl.mask_tokens(ids, MASK, 40, SPECIAL, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), (
        "the same generator seed must give the same inputs and labels")
    assert not torch.equal(a[1], c[1]), "another generator seed must choose other positions"
    for name, t in zip(("inputs", "labels"), a, strict=True):
        assert t.dtype == torch.int64, f"{name} must be int64 token ids, got {t.dtype}"


@pytest.mark.points(2)
def test_overfits_a_masked_batch(impl, rng):
    model = _model(impl, vocab_size=20, n_embd=24, n_head=2)
    ids = torch.as_tensor(rng.integers(4, 20, size=(4, 12)))
    inputs, labels = impl.mask_tokens(ids, MASK, 20, SPECIAL, mask_prob=0.3,
                                      generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def step():
        _, loss = model(inputs, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    # from ln 20 = 3.0 to near 0: the context of each hidden token identifies it
    overfit_tiny_batch(step, steps=150, target=0.1, what="encoder on 4 masked sequences")
