"""Public graders for s44 distributed data parallelism.

In this process: make_buckets against a greedy reference (threshold, frozen and tied
parameters), rank_batches against the shared shuffle it promises, accumulate_gradients against
one big batch, and a one-process gloo group (world size 1, where averaging must change nothing
and DDP is plain minibatch training).

In two spawned processes (gloo over a FileStore in a temporary folder: no port to race for):
broadcast from rank 0 and rank 1 after the ranks were seeded differently, gradient averaging,
the bucketed all-reduce (one bucket, one per parameter, in between) and the headline check: two
processes training on half-batches end where one process training on the full batches ends,
for several steps over reshuffled epochs. A rank that raises or dies is reported, never a hang:
every collective has a timeout and the ranks are killed after a deadline. Each rank loads the
graded file by path (its __file__) and runs under the grading process' rules: solutions/
blocked and, when graded by tools/grading.py, the same audit hook, whose refusals travel back
and become the step's integrity verdict in the parent.
"""

import contextlib
import importlib
import multiprocessing
import sys
import tempfile
import time
import traceback
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from graders.helpers import assert_close

STEP = "s44_distributed"
COLLECTIVE_TIMEOUT_S = 40.0  # a mismatched collective fails after this, instead of hanging
# Spawning two ranks costs two torch imports: ~3 s on an idle 2-core machine, much more on a
# loaded one. The ranks are killed after DEADLINE_S; the tests that wait for them get their
# own pytest-timeout, above it (the step budget in tools/curriculum.toml covers it too).
DEADLINE_S = 100.0
TWO_RANKS = pytest.mark.timeout(DEADLINE_S + 20)


# --- models and references ---------------------------------------------------------------------

class Net(nn.Module):
    """A frozen input layer, a tied pair (b.weight IS a.weight), a head and a buffer."""

    def __init__(self, width: int = 4):
        super().__init__()
        self.frozen = nn.Linear(3, width).double().requires_grad_(False)
        self.a = nn.Linear(width, width).double()
        self.b = nn.Linear(width, width).double()
        self.b.weight = self.a.weight
        self.head = nn.Linear(width, 2).double()
        self.register_buffer("shift", torch.randn(3, dtype=torch.float64))

    def forward(self, x):
        h = torch.tanh(self.frozen(x + self.shift))
        return self.head(torch.tanh(self.b(torch.tanh(self.a(h)))))


def make_data(n: int, seed: int = 7):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    y = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return x, y


def ref_buckets(params, size):
    out, seen, filled = [], set(), 0
    for p in params:
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        if out and (size is None or filled + p.numel() <= size):
            out[-1].append(p)
            filled += p.numel()
        else:
            out.append([p])
            filled = p.numel()
    return out


def ref_global_batches(n, batch_size, epoch, seed):
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
    return [perm[s * batch_size:(s + 1) * batch_size] for s in range(n // batch_size)]


def ref_training(model, optimizer, x, y, batch_size, epochs, seed):
    """One process, the full batch each step: what DDP must reproduce."""
    history = []
    for epoch in range(epochs):
        for idx in ref_global_batches(len(x), batch_size, epoch, seed):
            optimizer.zero_grad()
            loss = F.mse_loss(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            history.append(loss.item())
    return history


def names(bucket_lists, model):
    where = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        where.setdefault(id(p), n)
    return [[where.get(id(p), "?") for p in b] for b in bucket_lists]


def grads_of(model):
    return {n: (None if p.grad is None else p.grad.clone()) for n, p in model.named_parameters()}


# --- spawning two ranks ------------------------------------------------------------------------

SUITES: dict[str, list[str]] = {}  # grader module -> its two-rank scenarios (run in one spawn)
_RESULTS: dict[str, list[dict]] = {}


def register(module: str, scenarios: list[str]) -> None:
    SUITES[module] = scenarios


def _watched() -> bool:
    """Is this grading process under the audit hook (graded by tools/grading.py)?"""
    sandbox = sys.modules.get("tools.sandbox")
    return bool(sandbox is not None and sandbox._installed)


def _rank_main(impl_file, rank, world_size, init_method, out_dir, suites, watch=False):
    """A spawned rank: load the graded file by path, join the group, run every scenario.
    The rank obeys the grading process' rules: solutions/ blocked, and the same audit hook
    when the parent has one (a refusal travels back and becomes the step's verdict there)."""
    torch.set_num_threads(1)
    results, violations = {}, []
    try:
        from tools.course import find_step
        from tools.loader import BlockSolutions, load_implementation
        step = find_step(STEP)
        if Path(impl_file).resolve() != step.solution.resolve():
            sys.meta_path.insert(0, BlockSolutions())
        if watch:
            from tools import sandbox
            sandbox.install(on_violation=violations.append)
        impl = load_implementation(step, impl_file)
        impl.init_process(rank, world_size, init_method, timeout_s=COLLECTIVE_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results["*"] = {"error": type(exc).__name__, "message": str(exc),
                        "trace": traceback.format_exc(limit=-4)}
        suites = {}
    for module, scenarios in suites.items():
        mod = importlib.import_module(module)
        for name in scenarios:
            try:
                results[name] = {"value": getattr(mod, f"scenario_{name}")(impl, rank)}
            except Exception as exc:  # noqa: BLE001 - reported to the parent
                results[name] = {"error": type(exc).__name__, "message": str(exc),
                                 "trace": traceback.format_exc(limit=-4)}
    results["integrity"] = violations
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    if dist.is_initialized():
        dist.destroy_process_group()


def run_two_ranks(impl) -> list[dict]:
    """Spawn 2 ranks once per graded file; every registered scenario runs in that spawn."""
    key = str(Path(impl.__file__).resolve())
    if key in _RESULTS:
        return _RESULTS[key]
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        init = f"file://{tmp}/store"
        procs = [ctx.Process(target=_rank_main, daemon=True,
                             args=(key, r, 2, init, tmp, dict(SUITES), _watched()))
                 for r in range(2)]
        for p in procs:
            p.start()
        deadline = time.monotonic() + DEADLINE_S
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
        out = []
        for r, p in enumerate(procs):
            if p.is_alive():
                p.kill()
                p.join(5)
            file = Path(tmp) / f"rank{r}.pt"
            if file.exists():
                out.append(torch.load(file, weights_only=True))
            else:
                out.append({"*": {"error": "RankDied", "trace": "", "message": (
                    f"rank {r} did not finish within {DEADLINE_S:.0f} s (exit code "
                    f"{p.exitcode}): a collective called on one rank and not the other "
                    "blocks until the timeout, and a crash kills the rank")}})
    _RESULTS[key] = out
    return out


def rank_values(impl, name: str) -> list:
    """The scenario's value on each rank; a rank's exception becomes the test's failure."""
    out = []
    for r, res in enumerate(run_two_ranks(impl)):
        for message in res.get("integrity", []):
            if _watched():  # the same verdict as a refusal in this process
                sys.modules["tools.sandbox"]._installed[0].on_violation(message)
            pytest.fail(f"rank {r}: {message}", pytrace=False)
        entry = res.get("*") or res.get(name)
        if entry is None:
            pytest.fail(f"rank {r} returned nothing for the scenario {name}")
        if "error" in entry:
            text = f"rank {r} of 2 raised {entry['error']}: {entry['message']}\n{entry['trace']}"
            if entry["error"] == "NotImplementedError":
                raise NotImplementedError(text)
            pytest.fail(text, pytrace=False)
        out.append(entry["value"])
    return out


@contextlib.contextmanager
def solo(impl, folder):
    """A gloo group of ONE process (this one): average == identity, DDP == plain training."""
    impl.init_process(0, 1, f"file://{folder}/store", timeout_s=30.0)  # given code
    try:
        got = impl.world()
        assert got == (0, 1), f"world() in a group of one: expected (0, 1), got {got}"
        yield
    finally:
        dist.destroy_process_group()


# --- make_buckets ------------------------------------------------------------------------------

@pytest.mark.points(1)
def test_make_buckets_default_is_one_bucket_of_the_trainable_distinct_parameters(impl):
    model = Net()
    got = impl.make_buckets(model.parameters())
    want = ref_buckets(model.parameters(), None)
    assert names(got, model) == names(want, model), (
        f"make_buckets(params) with no size: expected one bucket {names(want, model)}, got "
        f"{names(got, model)}. Frozen parameters (requires_grad False) are left out.")


@pytest.mark.points(1)
def test_make_buckets_size_one_gives_one_bucket_per_parameter(impl):
    model = Net()
    got = impl.make_buckets(list(model.parameters()), bucket_size=1)
    want = ref_buckets(model.parameters(), 1)
    assert names(got, model) == names(want, model), (
        f"make_buckets(params, 1): every parameter is bigger than 1 element, so each gets its "
        f"own bucket: expected {names(want, model)}, got {names(got, model)}")


@pytest.mark.points(2)
def test_make_buckets_fill_greedily_and_a_bucket_may_hold_exactly_bucket_size(impl):
    model = Net()  # trainable sizes: a.weight 16, a.bias 4, b.bias 4, head.weight 8, head.bias 2
    for size, want in ((20, [["a.weight", "a.bias"], ["b.bias", "head.weight", "head.bias"]]),
                       (19, [["a.weight"], ["a.bias", "b.bias", "head.weight", "head.bias"]]),
                       (14, [["a.weight"], ["a.bias", "b.bias"], ["head.weight", "head.bias"]])):
        got = names(impl.make_buckets(model.parameters(), bucket_size=size), model)
        assert got == want, (
            f"make_buckets(params, {size}) on sizes 16, 4, 4, 8, 2: expected {want}, got {got}. "
            "A parameter joins the current bucket when the bucket's numel plus its own is <= "
            "bucket_size (16 + 4 = 20 fits in 20), otherwise it opens a new bucket.")


@pytest.mark.points(1)
def test_make_buckets_count_a_tied_parameter_once_and_skip_frozen_ones(impl):
    model = Net()
    listed = [model.a.weight, model.frozen.weight, model.b.weight, model.head.bias,
              model.a.weight]
    got = impl.make_buckets(listed, bucket_size=100)
    assert len(got) == 1 and [id(p) for p in got[0]] == [id(model.a.weight),
                                                         id(model.head.bias)], (
        f"make_buckets([a.weight, frozen.weight, b.weight (= a.weight), head.bias, a.weight]): "
        f"expected [[a.weight, head.bias]], got {names(got, model)}. A tied parameter is one "
        "tensor (compare by identity, `id(p)`): reducing it twice wastes a collective.")
    with pytest.raises(ValueError):
        impl.make_buckets(listed, bucket_size=0)


# --- rank_batches ------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_rank_batches_split_one_shared_shuffle_into_contiguous_equal_shards(impl):
    n, batch, seed = 23, 6, 5
    for epoch in (0, 3):
        glob = ref_global_batches(n, batch, epoch, seed)
        parts = [impl.rank_batches(n, batch, r, 2, epoch, seed) for r in range(2)]
        assert all(len(p) == len(glob) for p in parts), (
            f"rank_batches({n}, {batch}, ...): expected n // batch_size = {len(glob)} batches "
            f"per rank (the tail is dropped), got {[len(p) for p in parts]}")
        for s, g in enumerate(glob):
            got = [parts[r][s].tolist() for r in range(2)]
            assert got == [g[:3].tolist(), g[3:].tolist()], (
                f"epoch {epoch}, batch {s}: expected ranks 0 and 1 to get "
                f"{[g[:3].tolist(), g[3:].tolist()]}, got {got}. The shuffle is "
                "torch.randperm(n, generator=Generator().manual_seed(seed + epoch)), the same on "
                "every rank; rank r takes the r-th contiguous chunk of each global batch.")


@pytest.mark.points(1)
def test_rank_batches_of_a_world_of_one_are_the_global_batches_and_reshuffle_per_epoch(impl):
    e0 = [b.tolist() for b in impl.rank_batches(12, 4, 0, 1, epoch=0, seed=0)]
    e1 = [b.tolist() for b in impl.rank_batches(12, 4, 0, 1, epoch=1, seed=0)]
    want = [b.tolist() for b in ref_global_batches(12, 4, 0, 0)]
    assert e0 == want and e0 != e1, (
        f"rank_batches(12, 4, rank 0, world 1, epoch 0): expected {want}, got {e0}; epoch 1 "
        f"must reshuffle (got {e1}). Seed the generator with seed + epoch.")
    with pytest.raises(ValueError):
        impl.rank_batches(12, 5, 0, 2, 0, 0)  # 5 examples cannot be split into 2 equal shards


# --- accumulate_gradients ----------------------------------------------------------------------

@pytest.mark.points(2)
def test_accumulating_k_equal_micro_batches_gives_the_big_batch_gradient(impl):
    torch.manual_seed(3)
    x, y = make_data(12)
    big, acc = Net(), Net()
    acc.load_state_dict(big.state_dict())
    F.mse_loss(big(x), y).backward()
    micro = [(x[i:i + 4], y[i:i + 4]) for i in range(0, 12, 4)]
    loss = impl.accumulate_gradients(acc, F.mse_loss, micro)
    assert_close(loss, F.mse_loss(big(x), y).item(),
                 "accumulate_gradients' return: the mean of the micro-batch losses (equal sizes: "
                 "the big batch's loss)", rtol=1e-12)  # float64, same sums
    for (n, p), q in zip(big.named_parameters(), acc.parameters(), strict=True):
        if p.requires_grad:
            # float64: the k partial sums differ from one big sum only by rounding
            assert_close(q.grad, p.grad, f"{n}.grad after 3 micro-batches of 4 against one "
                         "batch of 12: backward on loss / k for each micro-batch", rtol=1e-10,
                         atol=1e-13)
        else:
            assert q.grad is None, f"{n} is frozen: it must not get a gradient"


@pytest.mark.points(1)
def test_accumulate_gradients_adds_to_existing_gradients(impl):
    torch.manual_seed(4)
    x, y = make_data(6)
    model = Net()
    impl.accumulate_gradients(model, F.mse_loss, [(x, y)])
    once = grads_of(model)
    impl.accumulate_gradients(model, F.mse_loss, [(x[:3], y[:3]), (x[3:], y[3:])])
    for n, g in grads_of(model).items():
        if g is not None:
            # float64 rounding of two ways to sum the same gradient
            assert_close(g, 2 * once[n], f"{n}.grad after a second call on the same data: the "
                         "gradients add up (zeroing is the training loop's job)", rtol=1e-10)


# --- a world of one process --------------------------------------------------------------------

@pytest.mark.points(1)
def test_averaging_in_a_world_of_one_changes_nothing(impl, tmp_path):
    with solo(impl, tmp_path):
        torch.manual_seed(5)
        x, y = make_data(5)
        model = Net()
        tensors = {n: (t, t.clone()) for n, t in model.state_dict(keep_vars=True).items()}
        impl.broadcast_parameters(model)
        for n, t in model.state_dict(keep_vars=True).items():
            assert t is tensors[n][0] and torch.equal(t, tensors[n][1]), (
                f"{n} after broadcast_parameters in a world of one: expected the same tensor "
                "object with the same values (broadcast into the existing tensors, in place)")
        F.mse_loss(model(x), y).backward()
        before = grads_of(model)
        impl.average_gradients(model)
        for n, g in grads_of(model).items():
            if before[n] is None:
                assert g is None, f"{n} is frozen (grad None): average_gradients must leave it None"
            else:
                assert_close(g, before[n], f"{n}.grad averaged over 1 rank: divide by the world "
                             "size dist.get_world_size(), not by a fixed 2", rtol=1e-15)


@pytest.mark.points(1)
def test_bucketed_allreduce_in_a_world_of_one_keeps_shapes_and_fills_missing_grads(impl,
                                                                                    tmp_path):
    with solo(impl, tmp_path):
        torch.manual_seed(6)
        x, y = make_data(5)
        model = Net()
        F.mse_loss(model(x), y).backward()
        before = grads_of(model)
        model.head.bias.grad = None  # as if it were unused in this forward pass
        params = [p for p in model.parameters() if p.requires_grad]
        impl.allreduce_buckets([params[:2], params[2:]])
        for n, p in model.named_parameters():
            if not p.requires_grad:
                continue
            want = torch.zeros_like(p) if n == "head.bias" else before[n]
            assert p.grad is not None and p.grad.shape == p.shape, (
                f"{n}.grad after allreduce_buckets: expected a tensor of shape "
                f"{tuple(p.shape)}, got {None if p.grad is None else tuple(p.grad.shape)} "
                "(a missing grad becomes zeros)")
            assert_close(p.grad, want, f"{n}.grad after the bucketed all-reduce over 1 rank: the "
                         "slice of the flat buffer written back at its offset", rtol=1e-15)


@pytest.mark.points(2)
def test_ddp_in_a_world_of_one_is_plain_minibatch_training(impl, tmp_path):
    with solo(impl, tmp_path):
        x, y = make_data(20)
        torch.manual_seed(8)
        ref = Net()
        model = Net()
        model.load_state_dict(ref.state_dict())
        want = ref_training(ref, torch.optim.SGD(ref.parameters(), lr=0.2), x, y, 8, 2, seed=3)
        got = impl.train_data_parallel(model, torch.optim.SGD(model.parameters(), lr=0.2),
                                       F.mse_loss, x, y, batch_size=8, epochs=2, seed=3,
                                       bucket_size=7)
        assert len(got) == len(want), (f"train_data_parallel(20 examples, batch 8, 2 epochs): "
                                       f"expected {len(want)} losses (2 per epoch), got {len(got)}")
        # float64 and the same operations: equal to rounding
        assert_close(got, want, "the loss history of one process against minibatch SGD on "
                     "rank_batches' order", rtol=1e-10)
        for n, p in ref.state_dict().items():
            assert_close(model.state_dict()[n], p, f"{n} after training", rtol=1e-10, atol=1e-13)


# --- two ranks ---------------------------------------------------------------------------------

def _seeded_net(rank: int, base: int = 100) -> Net:
    torch.manual_seed(base + rank)  # each rank starts from different weights
    return Net()


def scenario_broadcast(impl, rank):
    model = _seeded_net(rank)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    impl.broadcast_parameters(model)
    after0 = {k: v.clone() for k, v in model.state_dict().items()}
    other = _seeded_net(rank, base=200)
    before1 = {k: v.clone() for k, v in other.state_dict().items()}
    impl.broadcast_parameters(other, src=1)
    return {"before": before, "after": after0, "before1": before1,
            "after1": other.state_dict(), "tied": bool(model.a.weight is model.b.weight)}


def scenario_average(impl, rank):
    torch.manual_seed(11)
    model = Net()  # the same weights on both ranks, different data
    x, y = make_data(6, seed=20 + rank)
    F.mse_loss(model(x), y).backward()
    local = grads_of(model)
    impl.average_gradients(model)
    return {"local": {k: v for k, v in local.items() if v is not None},
            "after": {k: v for k, v in grads_of(model).items() if v is not None},
            "frozen_none": [model.frozen.weight.grad is None, model.frozen.bias.grad is None]}


def scenario_buckets(impl, rank):
    out = {}
    for label, split in (("one", None), ("each", 1), ("some", 2)):
        torch.manual_seed(12)
        model = Net()
        x, y = make_data(5, seed=30 + rank)
        F.mse_loss(model(x), y).backward()
        model.head.bias.grad = None  # unused on every rank: it must come back as zeros
        params = [p for p in model.parameters() if p.requires_grad]
        if split is None:
            buckets = [params]
        else:
            buckets = [params[i:i + split] for i in range(0, len(params), split)]
        out[f"{label}_local"] = {k: v for k, v in grads_of(model).items() if v is not None}
        impl.allreduce_buckets(buckets)
        out[f"{label}_after"] = {k: v for k, v in grads_of(model).items() if v is not None}
    return out


def scenario_train(impl, rank):
    x, y = make_data(20)
    out = {}
    for label, size in (("whole", None), ("bucketed", 30)):
        model = _seeded_net(rank, base=300)
        opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
        out[f"{label}_history"] = torch.tensor(impl.train_data_parallel(
            model, opt, F.mse_loss, x, y, batch_size=8, epochs=3, seed=4, bucket_size=size),
            dtype=torch.float64)
        out[f"{label}_state"] = model.state_dict()
    return out


register(__name__, ["broadcast", "average", "buckets", "train"])


@TWO_RANKS
@pytest.mark.points(2)
def test_broadcast_gives_every_rank_the_source_ranks_parameters_and_buffers(impl):
    ranks = rank_values(impl, "broadcast")
    for key, src in (("after", 0), ("after1", 1)):
        source = ranks[src]["before" if src == 0 else "before1"]
        for r in range(2):
            for n, v in source.items():
                assert torch.equal(ranks[r][key][n], v), (
                    f"rank {r}, {n} after broadcast_parameters(model, src={src}): expected rank "
                    f"{src}'s value exactly, got {ranks[r][key][n].flatten()[:4].tolist()}... "
                    f"(want {v.flatten()[:4].tolist()}...). Broadcast every parameter, frozen "
                    "ones too, and every buffer, in place (dist.broadcast(t, src)).")
    assert ranks[1]["before"]["a.weight"].ne(ranks[0]["before"]["a.weight"]).any()
    assert all(r["tied"] for r in ranks), ("after broadcast_parameters, model.b.weight must "
                                           "still be the same tensor as model.a.weight (copy "
                                           "into the existing tensors, do not replace them)")


@TWO_RANKS
@pytest.mark.points(2)
def test_average_gradients_leave_the_mean_of_the_ranks_gradients_on_both(impl):
    ranks = rank_values(impl, "average")
    for n, g0 in ranks[0]["local"].items():
        mean = (g0 + ranks[1]["local"][n]) / 2
        for r in range(2):
            # float64: (a + b) / 2 rounds the same way wherever it is computed
            assert_close(ranks[r]["after"][n], mean, f"rank {r}, {n}.grad after "
                         "average_gradients: (rank 0's grad + rank 1's grad) / world size",
                         rtol=1e-14, atol=1e-16)
    assert all(all(r["frozen_none"]) for r in ranks), (
        "frozen parameters must keep .grad None after average_gradients (skip them)")


@TWO_RANKS
@pytest.mark.points(3)
def test_bucketed_allreduce_averages_every_slice_whatever_the_bucketing(impl):
    ranks = rank_values(impl, "buckets")
    for label, what in (("one", "one bucket"), ("each", "one bucket per parameter"),
                        ("some", "buckets of two parameters")):
        local0, local1 = ranks[0][f"{label}_local"], ranks[1][f"{label}_local"]
        for r in range(2):
            after = ranks[r][f"{label}_after"]
            assert "head.bias" in after and after["head.bias"].abs().max() == 0, (
                f"{what}: head.bias had no gradient on any rank: allreduce_buckets must give "
                "it zeros (use zeros in the flat buffer for a .grad that is None)")
            for n in local0:
                assert_close(after[n], (local0[n] + local1[n]) / 2,
                             f"{what}, rank {r}, {n}.grad: the mean over ranks, copied back "
                             "from the flat buffer at this parameter's offset and shape",
                             rtol=1e-14, atol=1e-16)  # float64 (a + b) / 2


@TWO_RANKS
@pytest.mark.points(4)
def test_two_process_ddp_equals_one_process_on_the_full_batch_over_reshuffled_epochs(impl):
    ranks = rank_values(impl, "train")
    x, y = make_data(20)
    ref = _seeded_net(0, base=300)  # rank 0's start: broadcast makes it everyone's
    want = ref_training(ref, torch.optim.SGD(ref.parameters(), lr=0.3, momentum=0.9),
                        x, y, 8, 3, seed=4)
    for label in ("whole", "bucketed"):
        for r in range(2):
            got = ranks[r][f"{label}_history"]
            assert len(got) == len(want), (
                f"rank {r}: expected {len(want)} logged losses (2 steps x 3 epochs), got "
                f"{len(got)}")
            # float64: half-batch means averaged == full-batch mean up to rounding
            assert_close(got, want, f"rank {r} ({label}): the logged loss of each step, averaged "
                         "over the ranks, against one process on the full batch", rtol=1e-9)
            for n, p in ref.state_dict().items():
                assert_close(ranks[r][f"{label}_state"][n], p,
                             f"rank {r} ({label} gradients), {n} after 6 steps against one "
                             "process on the full batches: broadcast first, shard with "
                             "rank_batches, average the gradients before optimizer.step()",
                             rtol=1e-9, atol=1e-12)  # float64, 6 steps of rounding
