"""Public graders for s32 transfer: the head on a GPT body, the fine-tuning loop, fair arms.

The fixture is a synthetic language: 24 tokens in 4 groups of 6 (a fixed random assignment),
where the group of the next token is the group after the current one 90 % of the time and
the token inside a group is uniform. The downstream label of a sequence is the group of its
last token. A tiny GPT (below, with s26's module names) pretrained for a few seconds on
unlabelled sequences learns that tokens of a group behave alike; from 8 labelled examples,
a random body cannot know the group of a token it has not seen.

Oracles: the body's own modules for the features, a reference loop with torch's AdamW for
fine-tuning, and the docstring's composition of the learner's own parts for the experiment.
"""

import copy
import functools
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graders.helpers import assert_close, check_shape

V, G, T = 24, 4, 8  # vocabulary, groups, sequence length


@dataclass
class GPTConfig:
    vocab_size: int = V
    block_size: int = T
    n_layer: int = 1
    n_head: int = 2
    n_embd: int = 16
    bias: bool = True


class _Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_head = c.n_head
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
        self.c_proj = nn.Linear(c.n_embd, c.n_embd, bias=c.bias)

    def forward(self, x):
        B, T_, E = x.shape
        q, k, v = (t.view(B, T_, self.n_head, -1).transpose(1, 2)
                   for t in self.c_attn(x).split(E, 2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(B, T_, E))


class _Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(c.n_embd), nn.LayerNorm(c.n_embd)
        self.attn = _Attention(c)
        self.mlp = nn.ModuleDict({"c_fc": nn.Linear(c.n_embd, 4 * c.n_embd),
                                  "c_proj": nn.Linear(4 * c.n_embd, c.n_embd)})

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        h = F.gelu(self.mlp["c_fc"](self.ln_2(x)), approximate="tanh")
        return x + self.mlp["c_proj"](h)


class GPT(nn.Module):
    """s26's GPT, shortened: transformer.{wte, wpe, h, ln_f} and a tied lm_head."""

    def __init__(self, c, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.config = c
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(c.vocab_size, c.n_embd),
            "wpe": nn.Embedding(c.block_size, c.n_embd),
            "h": nn.ModuleList(_Block(c) for _ in range(c.n_layer)),
            "ln_f": nn.LayerNorm(c.n_embd)})
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight
        for name, p in self.named_parameters():
            if p.ndim == 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets=None):
        t = self.transformer
        x = t.wte(idx) + t.wpe(torch.arange(idx.shape[1]))
        for block in t.h:
            x = block(x)
        logits = self.lm_head(t.ln_f(x))
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


GROUP = torch.randperm(V, generator=torch.Generator().manual_seed(123)) % G  # token -> group


def language(n, gen, length=T):
    """n sequences of the group language, (n, length) int64."""
    members = torch.stack([torch.nonzero(GROUP == g).flatten() for g in range(G)])  # (G, 6)
    g = torch.randint(0, G, (n,), generator=gen)
    seq = []
    for _ in range(length):
        seq.append(members[g, torch.randint(0, V // G, (n,), generator=gen)])
        jump = torch.rand(n, generator=gen) < 0.1
        g = torch.where(jump, torch.randint(0, G, (n,), generator=gen), (g + 1) % G)
    return torch.stack(seq, 1)


def task(n, seed):
    """(x (n, T), y (n,)): label = the group of the last token."""
    x = language(n, torch.Generator().manual_seed(seed))
    return x, GROUP[x[:, -1]]


@functools.lru_cache(maxsize=1)
def pretrained_body():
    """A tiny GPT trained as a language model on unlabelled sequences (~60 AdamW steps)."""
    model = GPT(GPTConfig(), seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(60):
        x = language(32, gen, T + 1)
        _, loss = model(x[:, :-1], x[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 2.4, f"fixture pretraining failed (loss {loss.item():.3f})"
    return model.requires_grad_(True)


def _bodies():
    pre = pretrained_body()
    return {"pretrained": lambda: copy.deepcopy(pre), "random": lambda: GPT(GPTConfig(), seed=1)}


def _reference_fine_tune(model, x, y, steps, lr, batch_size, freeze_body, seed):
    params = list(model.head.parameters()) if freeze_body else list(model.parameters())
    opt = torch.optim.AdamW(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(steps):
        rows = torch.randperm(len(x), generator=gen)[:batch_size]
        loss = F.cross_entropy(model(x[rows]), y[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    return history


@pytest.mark.points(2)
def test_features_are_the_bodys_final_hidden_state(impl, rng):
    body = GPT(GPTConfig(n_layer=2), seed=3)
    idx = torch.as_tensor(rng.integers(0, V, size=(5, T)))
    with torch.no_grad():
        t = body.transformer
        h = t.wte(idx) + t.wpe(torch.arange(T))
        for block in t.h:
            h = block(h)
        h = t.ln_f(h)  # (5, T, E)
        built = "".join(["la", "st"])  # equal to "last", but not the same object
        for pool, expected in ((built, h[:, -1]), ("mean", h.mean(dim=1))):
            got = impl.GPTClassifier(body, 3, pool=pool).features(idx)
            check_shape(got, (5, 16), f"features with pool={pool!r}", "B, n_embd")
            # the same float32 operations in the same order: rounding only
            assert_close(got, expected, f"features(idx) with pool={pool!r}: ln_f of the last "
                         "block's output (not the lm_head's logits), at the last position "
                         "('last') or averaged over positions ('mean')", rtol=1e-5, atol=1e-6)


@pytest.mark.points(2)
def test_forward_is_the_linear_head_on_the_features(impl, rng):
    model = impl.GPTClassifier(GPT(GPTConfig(), seed=4), 5, head_seed=2)
    idx = torch.as_tensor(rng.integers(0, V, size=(3, 6)))  # shorter than block_size
    with torch.no_grad():
        logits = model(idx)
        check_shape(logits, (3, 5), "GPTClassifier(idx (3, 6)) with 5 classes", "B, n_classes")
        expected = model.features(idx) @ model.head.weight.T + model.head.bias
    assert_close(logits, expected, "logits vs head(features(idx))", rtol=1e-5, atol=1e-6)


@pytest.mark.points(2)
def test_head_init_depends_only_on_head_seed_and_spares_the_global_rng(impl):
    a = impl.GPTClassifier(GPT(GPTConfig(n_embd=64, n_head=4), seed=0), 50, head_seed=7)
    b = impl.GPTClassifier(GPT(GPTConfig(n_embd=64, n_head=4), seed=5), 50, head_seed=7)
    torch.manual_seed(0)  # GPT(...) reseeds: compare the global state around the heads alone
    state = torch.get_rng_state()
    c = impl.GPTClassifier(a.body, 50, head_seed=8)
    assert torch.equal(torch.get_rng_state(), state), (
        "building the head must not draw from torch's global generator: use "
        "torch.Generator().manual_seed(head_seed), so both arms see the same random stream")
    assert torch.equal(a.head.weight, b.head.weight), (
        "two bodies, the same head_seed: the heads must be identical (a fair comparison)")
    assert not torch.equal(a.head.weight, c.head.weight), "another head_seed, another head"
    w = a.head.weight.detach()
    # 3200 draws: the sample std is within ~3 % of 0.02, the mean within ~0.001 of 0
    assert abs(float(w.std()) - 0.02) < 0.002 and abs(float(w.mean())) < 0.002, (
        f"head weights should be N(0, 0.02); got mean {float(w.mean()):.4f}, "
        f"std {float(w.std()):.4f}")
    assert float(a.head.bias.detach().abs().max()) == 0.0, "the head's bias starts at 0"


@pytest.mark.points(3)
def test_fine_tune_equals_the_reference_loop(impl):
    x, y = task(40, seed=1)
    for freeze in (False, True):
        model = impl.GPTClassifier(GPT(GPTConfig(), seed=2), G, head_seed=1)
        ref = copy.deepcopy(model)
        before = copy.deepcopy(model.body.state_dict())
        hist = impl.fine_tune(model, x, y, steps=7, lr=3e-3, batch_size=12, freeze_body=freeze,
                              seed=5)
        expected = _reference_fine_tune(ref, x, y, 7, 3e-3, 12, freeze, 5)
        assert isinstance(hist, list) and len(hist) == 7, "return one loss per step, as a list"
        # the same batches, optimiser and float32 operations: rounding only
        assert_close(torch.tensor(hist), torch.tensor(expected), f"loss history "
                     f"(freeze_body={freeze}) vs AdamW(lr) on cross-entropy with batches "
                     "randperm(len(x), generator=Generator(seed))[:batch_size] per step",
                     rtol=1e-5, atol=1e-6)
        for (name, p), q in zip(model.named_parameters(), ref.parameters(), strict=True):
            assert_close(p.detach(), q.detach(), f"parameter {name} after fine-tuning "
                         f"(freeze_body={freeze})", rtol=1e-4, atol=1e-6)
        moved = any(not torch.equal(before[k], v) for k, v in model.body.state_dict().items())
        assert moved != freeze, ("freeze_body=True must leave every body weight exactly as it "
                                 "was" if freeze else "freeze_body=False must train the body too")


@pytest.mark.points(2)
def test_accuracy_is_the_fraction_of_correct_argmax_predictions(impl, rng):
    model = impl.GPTClassifier(GPT(GPTConfig(), seed=6), 3)
    x = torch.as_tensor(rng.integers(0, V, size=(30, T)))
    with torch.no_grad():
        pred = model(x).argmax(-1)
    y = pred.clone()
    y[:7] = (y[:7] + 1) % 3  # 7 of 30 wrong
    model.train()
    got = impl.accuracy(model, x, y)
    assert isinstance(got, float), f"accuracy must be a Python float, got {type(got)}"
    assert abs(got - 23 / 30) < 1e-6, (
        f"23 of 30 predictions match: expected {23 / 30:.4f}, got {got}")
    assert not model.training, "accuracy evaluates in eval mode (model.eval())"


@pytest.mark.points(3)
def test_the_arms_differ_only_in_their_initial_weights(impl):
    x, y = task(48, seed=2)
    xt, yt = task(64, seed=3)
    same = GPT(GPTConfig(), seed=9)
    curves = impl.transfer_experiment({"a": lambda: copy.deepcopy(same),
                                       "b": lambda: copy.deepcopy(same)},
                                      x, y, xt, yt, sizes=[5, 20], n_classes=G, steps=6, lr=1e-2,
                                      batch_size=4, seed=3)
    assert set(curves) == {"a", "b"}, f"one curve per arm, got {sorted(curves)}"
    assert curves["a"] == curves["b"], (
        "two arms with the same initial body must give identical curves: the subsets, the "
        f"data order, the head and the optimiser must not depend on the arm; got {curves}")
    seen = {}
    for arm, seed in (("pretrained", 0), ("random", 1)):
        log = seen.setdefault(arm, [])

        def make(seed=seed, log=log):
            body = GPT(GPTConfig(), seed=seed)
            body.transformer.wte.register_forward_hook(lambda m, i, o: log.append(i[0].clone()))
            return body
        impl.transfer_experiment({arm: make}, x, y, xt, yt, sizes=[5, 20], n_classes=G,
                                 steps=6, lr=1e-2, batch_size=4, seed=3)
    a, b = seen["pretrained"], seen["random"]
    assert len(a) == len(b) and all(torch.equal(p, q) for p, q in zip(a, b, strict=True)), (
        "with different initial weights, each arm must still see the same batches in the same "
        "order (the data order may depend on the seed only)")


@pytest.mark.points(3)
def test_experiment_is_the_documented_composition(impl):
    x, y = task(40, seed=4)
    xt, yt = task(50, seed=5)
    kw = {"steps": 5, "lr": 5e-3, "batch_size": 6, "freeze_body": False, "pool": "mean"}
    curves = impl.transfer_experiment({"r": lambda: GPT(GPTConfig(), seed=2)}, x, y, xt, yt,
                                      sizes=[3, 17, 40], n_classes=G, seed=11, **kw)
    order = torch.randperm(40, generator=torch.Generator().manual_seed(11))
    expected = []
    for n in (3, 17, 40):
        rows = order[:n]
        model = impl.GPTClassifier(GPT(GPTConfig(), seed=2), G, pool="mean", head_seed=11)
        impl.fine_tune(model, x[rows], y[rows], 5, 5e-3, 6, False, 11)
        expected.append(impl.accuracy(model, xt, yt))
    assert curves["r"] == expected, (
        "transfer_experiment should, for each size n, fine-tune a fresh body on the first n "
        "rows of randperm(len(x_train), Generator(seed)) with head_seed=seed and report "
        f"accuracy on the test set; expected {expected}, got {curves['r']}")


@pytest.mark.points(3)
def test_pretrained_arm_wins_when_labels_are_scarce(impl):
    x, y = task(128, seed=6)
    xt, yt = task(256, seed=7)
    curves = impl.transfer_experiment(_bodies(), x, y, xt, yt, sizes=[8], n_classes=G, steps=40,
                                      lr=2e-2, batch_size=16, seed=0)
    pre, rand = curves["pretrained"][0], curves["random"][0]
    # measured on the reference: 0.78 against 0.39 (4 classes: chance is 0.25)
    assert pre >= rand + 0.2, (
        f"fine-tuned on 8 labelled sequences, the pretrained body reached {pre:.2f} test "
        f"accuracy and the random one {rand:.2f}: pretraining should help clearly here. Check "
        "that the features come from the body you were given and that the body is trained")
