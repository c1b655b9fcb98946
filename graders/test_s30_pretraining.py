"""Public graders for s30 pretraining: schedule, clipping, AdamW groups, batches, accumulation,
perplexity, a smoke run and a bit-identical resume.

Oracles: the schedule's formula in float64, torch.nn.utils.clip_grad_norm_, torch.optim.AdamW,
and a trusted copy of s26's GPT (below; never your s26) trained on a generated fixture text.
"""

import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graders.helpers import assert_close


@dataclass
class RefConfig:  # s26's GPTConfig, small
    vocab_size: int = 11
    block_size: int = 8
    n_layer: int = 1
    n_head: int = 2
    n_embd: int = 16
    bias: bool = True


class RefBlock(nn.Module):
    def __init__(self, c: RefConfig):
        super().__init__()
        self.n_head = c.n_head
        self.ln_1, self.ln_2 = nn.LayerNorm(c.n_embd), nn.LayerNorm(c.n_embd)
        self.c_attn, self.c_proj = nn.Linear(c.n_embd, 3 * c.n_embd), nn.Linear(c.n_embd, c.n_embd)
        self.mlp = nn.Sequential(nn.Linear(c.n_embd, 4 * c.n_embd), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * c.n_embd, c.n_embd))

    def forward(self, x):
        B, T, E = x.shape
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2)
                   for t in self.c_attn(self.ln_1(x)).split(E, dim=2))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))
        att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        x = x + self.c_proj((att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, E))
        return x + self.mlp(self.ln_2(x))


class RefGPT(nn.Module):
    """s26's GPT: token + position embeddings, pre-LN blocks, ln_f, tied lm_head."""

    def __init__(self, config: RefConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.h = nn.ModuleList(RefBlock(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx, targets=None):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        loss = None if targets is None else F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss


def ref_model(seed=0, **kw) -> RefGPT:
    torch.manual_seed(seed)
    return RefGPT(RefConfig(**kw))


def fixture_tokens(n=3000, seed=0) -> torch.Tensor:
    """A generated token stream with structure: words from a tiny vocabulary, then a space (0)."""
    g = torch.Generator().manual_seed(seed)
    words = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10, 3, 5]]
    out: list[int] = []
    while len(out) < n:
        out += words[int(torch.randint(len(words), (1,), generator=g))] + [0]
    return torch.tensor(out[:n])


def make_cfg(impl, **kw):
    base = {"max_steps": 10, "batch_size": 4, "block_size": 8, "grad_accum": 1, "lr": 3e-3,
            "min_lr": 3e-4, "warmup_steps": 2, "eval_every": 5, "eval_batches": 2, "seed": 7}
    return impl.TrainConfig(**{**base, **kw})


def lr_formula(step, max_lr, min_lr, warmup, max_steps) -> float:
    if step < warmup:
        return max_lr * (step + 1) / warmup
    if step >= max_steps:
        return min_lr
    r = (step - warmup) / (max_steps - warmup)
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * r))


@pytest.mark.points(3)
def test_schedule_equals_the_float64_formula_at_every_step(impl):
    for warmup, max_steps, lr, min_lr in ((10, 50, 1e-3, 1e-4), (0, 7, 0.5, 0.0), (3, 4, 2.0, 0.1)):
        cfg = make_cfg(impl, warmup_steps=warmup, max_steps=max_steps, lr=lr, min_lr=min_lr)
        for step in range(max_steps + 6):  # through warmup, the boundary, the cosine, and past it
            want = lr_formula(step, lr, min_lr, warmup, max_steps)
            got = impl.lr_at(step, cfg)
            # a float64 formula: a correct float64 implementation agrees to rounding
            assert abs(got - want) <= 1e-12 * max(1.0, abs(want)), (
                f"lr_at({step}) with warmup_steps={warmup}, max_steps={max_steps}, lr={lr}, "
                f"min_lr={min_lr}: expected {want!r}, got {got!r}. Warmup is lr * (step + 1) / "
                "warmup_steps; the cosine starts at lr when step == warmup_steps and reaches "
                "min_lr at max_steps; after max_steps it stays at min_lr")


def _grads_pair(seed):
    torch.manual_seed(seed)
    a = [torch.randn(3, 4, requires_grad=True), torch.randn(5, requires_grad=True),
         torch.randn(2, requires_grad=True)]
    b = [p.detach().clone().requires_grad_(True) for p in a]
    for p, q in zip(a, b, strict=True):
        p.grad = torch.randn_like(p) * 3
        q.grad = p.grad.clone()
    a[2].grad = b[2].grad = None  # a parameter the loss did not reach: skipped
    return a, b


@pytest.mark.points(3)
def test_clip_grad_norm_matches_torch_clip_grad_norm_(impl):
    for max_norm in (1.0, 0.25, 1e6):  # clips, clips hard, leaves alone
        ours, ref = _grads_pair(0)
        want = torch.nn.utils.clip_grad_norm_(ref, max_norm)
        got = impl.clip_grad_norm((p for p in ours), max_norm)  # a generator: read it once
        assert torch.is_tensor(got), "clip_grad_norm returns the total norm as a tensor"
        # float32 sums in a different order: a few ulps
        assert_close(got, want, f"total norm returned with max_norm={max_norm} (the norm of "
                     "all gradients together, before clipping)", rtol=1e-6, atol=1e-7)
        for i, (p, q) in enumerate(zip(ours, ref, strict=True)):
            if q.grad is None:
                assert p.grad is None, "a parameter without .grad must be left without one"
                continue
            assert_close(p.grad, q.grad, f"gradient {i} after clip_grad_norm(max_norm="
                         f"{max_norm}): every gradient is scaled by the same "
                         "min(1, max_norm / (norm + 1e-6))", rtol=1e-6, atol=1e-7)


@pytest.mark.points(2)
def test_optimizer_is_adamw_decaying_matrices_only(impl):
    model = ref_model()
    cfg = make_cfg(impl, lr=0.01, weight_decay=0.3, beta1=0.8, beta2=0.95)
    opt = impl.configure_optimizer(model, cfg)
    assert isinstance(opt, torch.optim.AdamW), f"expected torch.optim.AdamW, got {type(opt)}"
    decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert len(decay) == len(list(model.parameters())), "every parameter in exactly one group"
    for name, p in model.named_parameters():
        want = 0.3 if p.dim() >= 2 else 0.0
        assert decay[id(p)] == want, (
            f"{name} ({p.dim()}-D) has weight_decay {decay[id(p)]}, expected {want}: decay "
            "matrices and embeddings, not biases or LayerNorm weights")
    for g in opt.param_groups:
        assert g["lr"] == 0.01 and tuple(g["betas"]) == (0.8, 0.95), (
            f"lr and betas come from the config: got lr={g['lr']}, betas={g['betas']}")


@pytest.mark.points(2)
def test_get_batch_windows_and_next_tokens(impl):
    data = torch.arange(100, 200)
    x, y = impl.get_batch(data, 6, 5, torch.Generator().manual_seed(3))
    starts = torch.randint(95, (6,), generator=torch.Generator().manual_seed(3))
    want = torch.stack([data[i:i + 5] for i in starts.tolist()])
    assert x.shape == (6, 5) and y.shape == (6, 5), f"x, y must be (6, 5), got {x.shape}"
    assert torch.equal(x, want), ("x rows are data[i : i + block_size] for i drawn with "
                                  "torch.randint(len(data) - block_size, (batch_size,), "
                                  f"generator=generator); expected\n{want}\ngot\n{x}")
    assert torch.equal(y, want + 1), "y is x shifted by one token: y[b, t] = data[i_b + t + 1]"


def _step_twice(impl, model, opt, batches, clip):
    out = impl.train_step(model, opt, batches, lr=0.05, grad_clip=clip)
    return out, [p.detach().clone() for p in model.parameters()]


@pytest.mark.points(3)
def test_four_micro_batches_equal_one_big_batch(impl):
    data = fixture_tokens()
    x, y = impl.get_batch(data, 8, 8, torch.Generator().manual_seed(0))
    for clip in (0.0, 0.05):  # without clipping, and with a clip that binds
        big, small = ref_model(1), ref_model(1)
        r_big, p_big = _step_twice(impl, big, torch.optim.SGD(big.parameters(), lr=1.0),
                                   [(x, y)], clip)
        r_small, p_small = _step_twice(
            impl, small, torch.optim.SGD(small.parameters(), lr=1.0),
            [(x[i:i + 2], y[i:i + 2]) for i in range(0, 8, 2)], clip)
        # the same sums in another order: float32 rounding only
        assert abs(r_big["grad_norm"] - r_small["grad_norm"]) < 1e-5 * r_big["grad_norm"], (
            f"grad_norm: one batch of 8 gives {r_big['grad_norm']}, 4 micro-batches of 2 give "
            f"{r_small['grad_norm']}: divide each micro-batch's loss by k before backward")
        assert abs(r_big["loss"] - r_small["loss"]) < 1e-5, (
            f"loss: the mean of the micro-batch losses ({r_small['loss']}) should equal the big "
            f"batch's loss ({r_big['loss']})")
        for a, b in zip(p_big, p_small, strict=True):
            assert_close(b, a, f"parameters after one update (grad_clip={clip}) with 4 "
                         "micro-batches vs one batch", rtol=1e-5, atol=1e-6)


@pytest.mark.points(2)
def test_evaluate_is_exp_of_the_token_weighted_mean_loss(impl):
    model = ref_model(2)
    data = fixture_tokens()
    g = torch.Generator().manual_seed(1)
    batches = [impl.get_batch(data, b, 8, g) for b in (1, 5, 2)]  # unequal sizes
    model.train()
    out = impl.evaluate(model, batches)
    with torch.no_grad():
        losses = [model(x, y)[1].item() for x, y in batches]
    want = sum(l_ * y.numel() for l_, (_, y) in zip(losses, batches, strict=True)) / (8 * 8)
    assert abs(out["loss"] - want) < 1e-5, (
        f"evaluate loss: expected the mean over all target tokens {want:.6f}, got "
        f"{out['loss']:.6f}: weight each batch's mean loss by its number of tokens")
    assert abs(out["perplexity"] - math.exp(want)) < 1e-4 * math.exp(want), (
        f"perplexity = exp(mean loss) = {math.exp(want):.5f}, got {out['perplexity']:.5f}")
    assert model.training, "evaluate must put the model back in training mode afterwards"


@pytest.mark.points(3)
def test_smoke_run_loss_falls_below_the_bound(impl):
    data = fixture_tokens(4000)
    model = ref_model(3, n_embd=32)
    cfg = make_cfg(impl, max_steps=80, batch_size=8, lr=1e-2, min_lr=1e-3, warmup_steps=5,
                   eval_every=40, eval_batches=4, weight_decay=0.0)
    trainer = impl.Trainer(model, data[:3600], data[3600:], cfg)
    records = trainer.fit()
    assert trainer.step == 80 and len(records) == 80, (
        f"fit runs max_steps=80 updates and returns one record each; got step {trainer.step}, "
        f"{len(records)} records")
    # the stream is 4 words + spaces: ln 11 = 2.4 at start; a learning model is near 0.6
    assert records[-1]["val_loss"] < 1.0, (
        f"after 80 updates on a 4-word fixture the validation loss should be below 1.0 (it "
        f"starts at ln 11 = 2.40); got {records[-1]['val_loss']:.3f}")


def _trainer(impl, **kw):
    data = fixture_tokens(2000)
    cfg = make_cfg(impl, max_steps=8, grad_accum=2, eval_every=3, **kw)
    return impl.Trainer(ref_model(4), data[:1800], data[1800:], cfg)


@pytest.mark.points(3)
def test_resume_equals_the_uninterrupted_run_bit_for_bit(impl, tmp_path):
    straight = _trainer(impl)
    full = straight.fit()

    first = _trainer(impl)
    path = tmp_path / "ckpt.pt"

    def stop_at_3(tr, record):
        if record["step"] == 3:
            impl.save_checkpoint(str(path), tr, {"kind": "char", "chars": "abc"})
            raise KeyboardInterrupt  # an interruption right after the checkpoint

    with pytest.raises(KeyboardInterrupt):
        first.fit(stop_at_3)
    torch.manual_seed(12345)  # a fresh process: global RNG elsewhere
    resumed = _trainer(impl)
    impl.load_checkpoint(str(path), resumed)
    assert resumed.step == 3, (
        f"after loading a checkpoint taken at update 3, step is {resumed.step}")
    rest = resumed.fit()
    assert [r["step"] for r in rest] == list(range(4, 9)), (
        f"the resumed fit continues with updates 4..8, got {[r['step'] for r in rest]}")
    for a, b in zip(full[3:], rest, strict=True):
        assert a == b, f"update {a['step']}: uninterrupted {a}, resumed {b}"
    for (name, p), q in zip(straight.model.named_parameters(), resumed.model.parameters(),
                            strict=True):
        assert torch.equal(p, q), (f"{name} differs after resuming: save and restore the "
                                   "optimizer state, the step and the sampler's generator state")
