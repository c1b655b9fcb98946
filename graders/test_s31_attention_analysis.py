"""Public graders for s31 attention_analysis: entropy, maps of a reference GPT, head ablation,
head importance and attention rollout.

The model is the graders' own GPT with s26's layout (built here from a fixture config, so no
earlier answer of yours is graded); its attention is recomputed by hand as the oracle.
"""

import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graders.helpers import assert_close, check_shape


@dataclass
class RefConfig:
    vocab_size: int = 29
    block_size: int = 16
    n_layer: int = 2
    n_head: int = 3
    n_embd: int = 12


class _Attn(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_head = c.n_head
        self.c_attn, self.c_proj = nn.Linear(c.n_embd, 3 * c.n_embd), nn.Linear(c.n_embd, c.n_embd)

    def heads(self, x):
        """(B, T, E) -> the per-head outputs y (B, H, T, hs) and weights (B, H, T, T)."""
        B, T, E = x.shape
        q, k, v = (z.view(B, T, self.n_head, -1).transpose(1, 2)
                   for z in self.c_attn(x).split(E, dim=2))
        s = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))
        w = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
        return w @ v, w

    def forward(self, x):
        y, _ = self.heads(x)
        return self.c_proj(y.transpose(1, 2).reshape(x.shape))


class _Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1, self.attn, self.ln_2 = nn.LayerNorm(c.n_embd), _Attn(c), nn.LayerNorm(c.n_embd)
        self.mlp = nn.Sequential(nn.Linear(c.n_embd, 4 * c.n_embd), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * c.n_embd, c.n_embd))

    def forward(self, x):
        x = self.attn(self.ln_1(x)) + x  # written unlike s26's answer: the edition must not hold it
        return x + self.mlp(self.ln_2(x))


class RefGPT(nn.Module):
    """s26's layout: transformer.{wte, wpe, h, ln_f}, lm_head tied; -> (logits, loss)."""

    def __init__(self, c):
        super().__init__()
        self.config = c
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(c.vocab_size, c.n_embd),
            "wpe": nn.Embedding(c.block_size, c.n_embd),
            "h": nn.ModuleList(_Block(c) for _ in range(c.n_layer)),
            "ln_f": nn.LayerNorm(c.n_embd)})
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight

    def forward(self, idx, targets=None):
        t = self.transformer
        x = t.wte(idx) + t.wpe(torch.arange(idx.shape[1]))
        for block in t.h:
            x = block(x)
        logits = self.lm_head(t.ln_f(x))
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


def ref_gpt(seed=0, **overrides):
    """A reference GPT with O(1) weights: sharp, varied attention and non-zero biases."""
    torch.manual_seed(seed)
    model = RefGPT(RefConfig(**overrides)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            gain = name.endswith("weight") and p.ndim == 1  # LayerNorm gains near 1
            p.copy_(torch.randn_like(p) * (0.5 if p.ndim == 2 else 0.1) + float(gain))
    return model


def hand_forward(model, idx, dead=()):
    """Logits and per-layer weights by hand, with the (layer, head) pairs in `dead` zeroed."""
    t = model.transformer
    x = t.wte(idx) + t.wpe(torch.arange(idx.shape[1]))
    maps = []
    for layer, block in enumerate(t.h):
        y, w = block.attn.heads(block.ln_1(x))
        maps.append(w)
        y = y.clone()
        for lay, head in dead:
            if lay == layer:
                y[:, head] = 0
        x = x + block.attn.c_proj(y.transpose(1, 2).reshape(x.shape))
        x = x + block.mlp(block.ln_2(x))
    return model.lm_head(t.ln_f(x)), torch.stack(maps)


def random_maps(rng, L, B, H, T, causal=True):
    s = torch.as_tensor(rng.normal(size=(L, B, H, T, T)) * 2.0)
    if causal:
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return s.softmax(-1)


@pytest.mark.points(2)
def test_entropy_of_uniform_and_one_hot_rows(impl):
    for n in (1, 2, 5, 16):
        got = impl.attention_entropy(torch.full((3, n), 1.0 / n, dtype=torch.float64))
        check_shape(got, (3,), f"entropy of (3, {n}) weights", "one value per row")
        # float64: ln n is exact to ~1e-15
        assert_close(got, torch.full((3,), math.log(n), dtype=torch.float64),
                     f"entropy of uniform attention over {n} keys (ln {n})", rtol=1e-12, atol=1e-12)
    one_hot = torch.eye(6, dtype=torch.float64)
    got = impl.attention_entropy(one_hot)
    assert_close(got, torch.zeros(6), "entropy of one-hot attention (all mass on one key): "
                 "the zeros must count 0 ln 0 = 0, not NaN", rtol=0, atol=1e-12)


@pytest.mark.points(2)
def test_entropy_of_causal_rows_and_a_worked_example(impl):
    T = 7
    causal = torch.tril(torch.ones(T, T, dtype=torch.float64))
    causal = causal / causal.sum(-1, keepdim=True)  # row t uniform over t + 1 keys
    got = impl.attention_entropy(causal[None, None])
    check_shape(got, (1, 1, T), "entropy of (1, 1, T, T) maps", "every axis but the last")
    assert_close(got[0, 0], torch.log(torch.arange(1, T + 1, dtype=torch.float64)),
                 "entropy of causal rows uniform over t + 1 keys (ln(t + 1))", rtol=1e-12,
                 atol=1e-12)  # float64
    got = impl.attention_entropy(torch.tensor([0.5, 0.25, 0.25, 0.0], dtype=torch.float64))
    assert_close(got, torch.tensor(1.5 * math.log(2), dtype=torch.float64),
                 "entropy of [0.5, 0.25, 0.25, 0] (1.5 ln 2 nats: natural log)",
                 rtol=1e-12, atol=1e-12)  # float64


@pytest.mark.points(3)
def test_maps_equal_the_attention_recomputed_by_hand(impl, rng):
    model = ref_gpt()
    idx = torch.as_tensor(rng.integers(0, 29, size=(2, 9)))
    got = impl.attention_maps(model, idx)
    check_shape(got, (2, 2, 3, 9, 9), "attention_maps of a 2-layer, 3-head GPT on (2, 9) ids",
                "n_layer, B, n_head, T, T")
    with torch.no_grad():
        _, expected = hand_forward(model, idx)
    # float32, the same operations: reassociation noise only
    assert_close(got, expected, "attention maps vs softmax(q k^T / sqrt(hs)), causal, with "
                 "q, k = c_attn(ln_1(x)) and x the residual stream entering each block",
                 rtol=1e-5, atol=1e-6)
    assert_close(got.sum(-1), torch.ones(2, 2, 3, 9), "each row of a map sums to 1",
                 rtol=1e-5, atol=1e-6)  # float32 softmax
    assert float(got.triu(1).abs().max()) == 0, "the upper triangle (future keys) must be 0"


@pytest.mark.points(3)
def test_ablating_a_head_changes_the_output_only_through_that_head(impl, rng):
    model = ref_gpt()
    idx = torch.as_tensor(rng.integers(0, 29, size=(2, 8)))
    with torch.no_grad():
        intact = model(idx)[0]
        for dead in ([(1, 0)], [(0, 2)]):
            got = impl.ablate_heads(model, idx, dead)
            check_shape(got, (2, 8, 29), "ablate_heads logits", "B, T, vocab_size")
            expected, _ = hand_forward(model, idx, dead)
            # float32, the same operations in another order
            assert_close(got, expected, f"logits with (layer, head) = {dead[0]} zeroed before "
                         "c_proj (its y_h set to 0, every other head and the bias kept)",
                         rtol=1e-5, atol=1e-5)
            assert float((got - intact).abs().max()) > 1e-3, "ablating a head changed nothing"
        assert_close(model(idx)[0], intact, "model(idx) after ablate_heads: remove every hook "
                     "(or restore every weight) before returning", rtol=0, atol=0)
        assert_close(impl.ablate_heads(model, idx, []), intact, "ablate_heads with no heads "
                     "is the intact model", rtol=1e-6, atol=1e-6)  # float32, same operations


@pytest.mark.points(2)
def test_head_importance_is_the_loss_increase_per_head(impl, rng):
    model = ref_gpt()
    idx = torch.as_tensor(rng.integers(0, 29, size=(3, 8)))
    targets = torch.as_tensor(rng.integers(0, 29, size=(3, 8)))
    got = impl.head_importance(model, idx, targets)
    check_shape(got, (2, 3), "head_importance", "n_layer, n_head")
    with torch.no_grad():
        base = F.cross_entropy(model(idx)[0].flatten(0, 1), targets.flatten())
        expected = torch.zeros(2, 3)
        for layer in range(2):
            for head in range(3):
                logits, _ = hand_forward(model, idx, [(layer, head)])
                expected[layer, head] = F.cross_entropy(logits.flatten(0, 1),
                                                        targets.flatten()) - base
    # float32 losses of about 10: differences of sums in another order
    assert_close(got, expected, "head_importance[l, h] = loss with head (l, h) ablated minus "
                 "the intact loss", rtol=1e-4, atol=1e-4)


@pytest.mark.points(3)
def test_rollout_rows_sum_to_one_and_equal_the_hand_computed_product(impl, rng):
    maps = random_maps(rng, 3, 2, 4, 6)
    got = impl.attention_rollout(maps)
    check_shape(got, (2, 6, 6), "attention_rollout of (3, 2, 4, 6, 6) maps", "B, T, T")
    assert_close(got.sum(-1), torch.ones(2, 6), "rollout rows sum to 1", rtol=1e-12,
                 atol=1e-12)  # float64
    eye = torch.eye(6, dtype=torch.float64)
    a = [0.5 * maps[layer].mean(1) + 0.5 * eye for layer in range(3)]
    assert_close(got, a[2] @ a[1] @ a[0], "rollout vs ((A2 + I)/2)((A1 + I)/2)((A0 + I)/2) "
                 "with A = the mean over heads: the LAST layer on the left", rtol=1e-12,
                 atol=1e-12)  # float64, the same products
