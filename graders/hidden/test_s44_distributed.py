"""Hidden graders for s44 distributed data parallelism: random bucketings against the greedy
reference, four-way shards, micro-batches of unequal sizes, AdamW with weight decay under DDP
(bucket per parameter and in between), a GPT-like model whose head is tied to its embedding,
and the step the issue asks to compare: one two-process DDP step against gradient
accumulation over the same two shards in one process.

The two-rank scenarios run in the same spawn as the public ones (graders/test_s44_distributed
registers them), so the hidden file costs no extra torch imports.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graders import test_s44_distributed as pub
from graders.helpers import assert_close


class TiedLM(nn.Module):
    """Embedding -> frozen scale -> tanh -> head, with head.weight IS emb.weight (as GPT-2)."""

    def __init__(self, vocab: int = 9, dim: int = 5):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim).double()
        self.scale = nn.Parameter(torch.rand(dim, dtype=torch.float64) + 0.5,
                                  requires_grad=False)
        self.mix = nn.Linear(dim, dim).double()
        self.head = nn.Linear(dim, vocab, bias=False).double()
        self.head.weight = self.emb.weight
        self.register_buffer("offset", torch.randn(dim, dtype=torch.float64))

    def forward(self, ids):
        return self.head(torch.tanh(self.mix(self.emb(ids) * self.scale + self.offset)))


def lm_loss(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))


def lm_data(n: int, seed: int = 13):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 9, (n, 4), generator=g)
    return ids, torch.roll(ids, -1, dims=1)


# --- in this process ---------------------------------------------------------------------------

@pytest.mark.points(2)
def test_bucketing_of_random_parameter_lists_matches_the_greedy_rule(impl, rng):
    for trial in range(25):
        sizes = rng.integers(1, 9, rng.integers(1, 9)).tolist()
        params = [nn.Parameter(torch.zeros(s)) for s in sizes]
        for p in params:
            if rng.random() < 0.2:
                p.requires_grad_(False)
        listed = [params[i] for i in rng.integers(0, len(params), len(params) + 2)]
        size = None if trial % 6 == 0 else int(rng.integers(1, 13))
        got = impl.make_buckets(iter(listed), size)
        want = pub.ref_buckets(listed, size)
        show = [[p.numel() for p in b] for b in want]
        assert [[id(p) for p in b] for b in got] == [[id(p) for p in b] for b in want], (
            f"make_buckets on a list of {len(listed)} parameters (some repeated, some frozen), "
            f"bucket_size={size}: expected buckets of sizes {show}, got "
            f"{[[p.numel() for p in b] for b in got]}. Walk the list once (it may be a "
            "generator), skip frozen and already-seen tensors, fill each bucket up to the size.")


@pytest.mark.points(2)
def test_four_ranks_shards_are_disjoint_and_rebuild_every_global_batch(impl):
    n, batch, seed = 37, 8, 11
    for epoch in (0, 2):
        glob = pub.ref_global_batches(n, batch, epoch, seed)
        parts = [impl.rank_batches(n, batch, r, 4, epoch, seed) for r in range(4)]
        for s, g in enumerate(glob):
            got = torch.cat([parts[r][s] for r in range(4)])
            assert got.tolist() == g.tolist(), (
                f"4 ranks, batch {batch}, epoch {epoch}, step {s}: ranks 0..3's shards put side "
                f"by side must be the global batch {g.tolist()}, got {got.tolist()} (each rank "
                "takes batch_size / world_size contiguous examples, in rank order)")
    other = impl.rank_batches(n, batch, 0, 4, epoch=0, seed=12)
    assert other[0].tolist() != impl.rank_batches(n, batch, 0, 4, 0, seed)[0].tolist(), (
        "another seed must give another shuffle")
    with pytest.raises(ValueError):
        impl.rank_batches(n, batch, 4, 4, 0, seed)


@pytest.mark.points(1)
def test_micro_batches_of_unequal_sizes_give_the_mean_of_their_means(impl):
    torch.manual_seed(21)
    x, y = pub.make_data(9)
    model, ref = pub.Net(), pub.Net()
    ref.load_state_dict(model.state_dict())
    micro = [(x[:2], y[:2]), (x[2:9], y[2:9])]
    got = impl.accumulate_gradients(model, F.mse_loss, micro)
    want = (F.mse_loss(ref(x[:2]), y[:2]) + F.mse_loss(ref(x[2:]), y[2:])) / 2
    want.backward()
    assert_close(got, want.item(), "accumulate_gradients with micro-batches of 2 and 7: "
                 "(1/k) * the sum of each micro-batch's mean loss", rtol=1e-12)  # float64
    for (n, p), q in zip(ref.named_parameters(), model.parameters(), strict=True):
        if p.grad is not None:
            assert_close(q.grad, p.grad, f"{n}.grad: the gradient of the mean of the k means "
                         "(divide every micro-batch's loss by k)", rtol=1e-10, atol=1e-14)


@pytest.mark.points(1)
def test_one_process_ddp_with_adamw_and_default_arguments(impl, tmp_path):
    with pub.solo(impl, tmp_path):
        x, y = pub.make_data(15)
        torch.manual_seed(22)
        ref, model = pub.Net(), pub.Net()
        model.load_state_dict(ref.state_dict())
        want = pub.ref_training(ref, torch.optim.AdamW(ref.parameters(), lr=0.05), x, y, 5, 2, 0)
        got = impl.train_data_parallel(model, torch.optim.AdamW(model.parameters(), lr=0.05),
                                       F.mse_loss, x, y, 5, 2)
        # float64, identical operations in one process
        assert_close(got, want, "one-process losses with seed=0 and one bucket (the defaults)",
                     rtol=1e-10)
        assert_close(model.head.weight, ref.head.weight, "head.weight after 6 AdamW steps",
                     rtol=1e-9, atol=1e-12)


# --- two ranks (run in the public file's spawn) ------------------------------------------------

def scenario_hidden_adamw(impl, rank):
    x, y = pub.make_data(30, seed=17)
    out = {}
    for label, size in (("each", 1), ("some", 25)):
        model = pub._seeded_net(rank, base=400)
        opt = torch.optim.AdamW(model.parameters(), lr=0.03, weight_decay=0.1)
        out[f"{label}_history"] = torch.tensor(impl.train_data_parallel(
            model, opt, F.mse_loss, x, y, batch_size=10, epochs=2, seed=9, bucket_size=size),
            dtype=torch.float64)
        out[f"{label}_state"] = model.state_dict()
    return out


def scenario_hidden_accumulation(impl, rank):
    x, y = pub.make_data(8, seed=18)
    model = pub._seeded_net(rank, base=500)
    impl.train_data_parallel(model, torch.optim.SGD(model.parameters(), lr=0.5), F.mse_loss,
                             x, y, batch_size=8, epochs=1, seed=2)
    return {"state": model.state_dict(),
            "grads": {n: p.grad for n, p in model.named_parameters() if p.grad is not None}}


def scenario_hidden_tied(impl, rank):
    torch.manual_seed(600 + rank)
    model = TiedLM()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    impl.broadcast_parameters(model)
    ids, targets = lm_data(6, seed=40 + rank)
    lm_loss(model(ids), targets).backward()
    local = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    impl.average_gradients(model)
    return {"before": before, "after": model.state_dict(), "local": local,
            "grads": {n: p.grad for n, p in model.named_parameters() if p.grad is not None},
            "tied": bool(model.head.weight is model.emb.weight),
            "scale_none": model.scale.grad is None}


pub.register(__name__, ["hidden_adamw", "hidden_accumulation", "hidden_tied"])


@pub.TWO_RANKS
@pytest.mark.points(3)
def test_ddp_with_adamw_and_weight_decay_tracks_one_process_for_any_bucket_size(impl):
    ranks = pub.rank_values(impl, "hidden_adamw")
    x, y = pub.make_data(30, seed=17)
    ref = pub._seeded_net(0, base=400)
    want = pub.ref_training(ref, torch.optim.AdamW(ref.parameters(), lr=0.03, weight_decay=0.1),
                            x, y, 10, 2, 9)
    for label in ("each", "some"):
        for r in range(2):
            # float64; AdamW divides by sqrt(v): rounding grows a little over 6 steps
            assert_close(ranks[r][f"{label}_history"], want, f"rank {r}, {label} bucketing: "
                         "the loss of every step against one process on the full batch",
                         rtol=1e-8)
            for n, p in ref.state_dict().items():
                assert_close(ranks[r][f"{label}_state"][n], p, f"rank {r} ({label} bucketing), "
                             f"{n} after 6 AdamW steps with weight decay: every rank must apply "
                             "the same averaged gradient to the same broadcast weights",
                             rtol=1e-8, atol=1e-11)


@pub.TWO_RANKS
@pytest.mark.points(2)
def test_one_ddp_step_equals_gradient_accumulation_over_the_same_two_shards(impl):
    ranks = pub.rank_values(impl, "hidden_accumulation")
    x, y = pub.make_data(8, seed=18)
    model = pub._seeded_net(0, base=500)
    idx = pub.ref_global_batches(8, 8, 0, 2)[0]
    shards = [(x[idx[:4]], y[idx[:4]]), (x[idx[4:]], y[idx[4:]])]
    impl.accumulate_gradients(model, F.mse_loss, shards)
    for n, p in model.named_parameters():
        if p.grad is None:
            continue
        for r in range(2):
            # float64: (g0 + g1) / 2 in two orders of summation
            assert_close(ranks[r]["grads"][n], p.grad, f"rank {r}, {n}.grad of one DDP step on "
                         "2 shards against accumulate_gradients over the same 2 micro-batches in "
                         "one process: the two ways to a big batch agree", rtol=1e-10,
                         atol=1e-14)
        with torch.no_grad():
            stepped = p - 0.5 * p.grad
        assert_close(ranks[0]["state"][n], stepped, f"{n} after the step (SGD, lr 0.5)",
                     rtol=1e-10, atol=1e-13)


@pub.TWO_RANKS
@pytest.mark.points(2)
def test_a_head_tied_to_the_embedding_is_broadcast_and_averaged_as_one_tensor(impl):
    ranks = pub.rank_values(impl, "hidden_tied")
    for r in range(2):
        assert ranks[r]["tied"], (f"rank {r}: after broadcast_parameters the head must still "
                                  "share its weight tensor with the embedding (copy in place)")
        for n, v in ranks[0]["before"].items():
            assert torch.equal(ranks[r]["after"][n], v), (
                f"rank {r}, {n}: expected rank 0's value after broadcast_parameters (the frozen "
                "scale and the offset buffer too)")
        for n, g in ranks[r]["grads"].items():
            want = (ranks[0]["local"][n] + ranks[1]["local"][n]) / 2
            assert_close(g, want, f"rank {r}, {n}.grad after average_gradients on a tied "
                         "model: the mean over ranks, reduced once", rtol=1e-14, atol=1e-16)
    assert all(r["scale_none"] for r in ranks), ("the frozen scale must keep .grad None after "
                                                 "average_gradients")
