"""Hidden graders for s16 torch training: other resume points, other data, safe checkpoints."""

import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from graders.helpers import overfit_tiny_batch

LOSS = nn.CrossEntropyLoss()


class _Noisy(Dataset):
    """26 samples; reading one draws NumPy and Python random numbers (augmentation)."""

    def __init__(self):
        g = np.random.default_rng(1)
        self.X = torch.as_tensor(g.normal(size=(26, 4)), dtype=torch.float32)
        self.y = torch.as_tensor(g.integers(0, 2, 26))

    def __len__(self):
        return 26

    def __getitem__(self, i):
        return self.X[i] * (1 + 0.1 * float(np.random.normal())) + 0.05 * random.random(), \
            self.y[i]


def _build(variant):
    torch.manual_seed(20 + variant)
    model = nn.Sequential(nn.Linear(4, 12), nn.Tanh(), nn.Dropout(0.2), nn.Linear(12, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.1)
    loader = DataLoader(_Noisy(), batch_size=5, shuffle=True,  # 6 batches an epoch, last of 1
                        generator=torch.Generator().manual_seed(50 + variant))
    return model, opt, loader


def _seed_all(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _chain(impl, folder, cuts, total, val=False):
    """Train to each cut, save, rebuild everything from scratch, load; then finish at total."""
    model, opt, loader = _build(0)
    _seed_all(3)
    state = impl.LoopState()
    kw = {"val_loader": DataLoader(_Noisy(), batch_size=13), "eval_every": 4} if val else {}
    for i, cut in enumerate(cuts):
        impl.fit(model, loader, opt, LOSS, max_steps=cut, state=state, **kw)
        impl.save_checkpoint(folder / f"c{i}.pt", model, opt, state)
        _seed_all(1000 + i)
        model, opt, loader = _build(i + 1)
        state = impl.load_checkpoint(folder / f"c{i}.pt", model, opt)
    history = impl.fit(model, loader, opt, LOSS, max_steps=total, state=state, **kw)
    return {k: list(v) for k, v in history.items()}, [p.detach() for p in model.parameters()]


@pytest.mark.points(2)
@pytest.mark.parametrize("cuts", [(6,), (12,), (5, 11, 14)],
                         ids=["at_an_epoch_end", "at_the_second_epoch_end", "three_resumes"])
def test_resume_anywhere_is_bit_identical(impl, tmp_path, cuts):
    straight, p_straight = _chain(impl, tmp_path, (), 17, val=True)
    resumed, p_resumed = _chain(impl, tmp_path, cuts, 17, val=True)
    for key in ("train_loss", "val_step", "val_loss", "val_accuracy"):
        assert straight.get(key) == resumed.get(key), (
            f"resuming at step(s) {cuts} (epochs of 6 batches, AdamW, dropout, augmentation, "
            f"evaluation every 4 steps): history[{key!r}] differs from the uninterrupted run. "
            "Check the epoch bookkeeping when a checkpoint falls exactly on an epoch's end, "
            "and that the history is part of the checkpoint.")
    assert all(torch.equal(a, b) for a, b in zip(p_straight, p_resumed, strict=True)), (
        f"resuming at step(s) {cuts}: the final parameters differ from the uninterrupted run")



@pytest.mark.points(1)
def test_checkpoint_is_safe_to_load_and_written_atomically(impl, tmp_path):
    model, opt, loader = _build(0)
    state = impl.LoopState()
    impl.fit(model, loader, opt, LOSS, max_steps=3, state=state)
    path = tmp_path / "run.pt"
    impl.save_checkpoint(path, model, opt, state)
    try:
        torch.load(path, weights_only=True)
    except Exception as exc:  # any refusal is the learner's to fix
        raise AssertionError(
            "torch.load(path, weights_only=True) refused your checkpoint "
            f"({type(exc).__name__}: {str(exc)[:200]}). Store tensors and plain Python values "
            "only (convert NumPy arrays with torch.from_numpy): loading a general pickle can "
            "run arbitrary code.") from exc
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "run.pt")
    assert not leftovers, f"save_checkpoint left extra files behind: {leftovers}"


@pytest.mark.points(1)
def test_train_step_switches_to_train_mode(impl):
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    model.eval()
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(m.training))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    impl.train_step(model, (torch.randn(6, 4), torch.tensor([0, 1, 0, 1, 1, 0])), opt, LOSS)
    assert seen == [True], (
        "train_step ran the model in eval mode (someone called model.eval() before it): call "
        "model.train() at the start of every step")


@pytest.mark.points(1)
def test_evaluate_regression_targets(impl):
    g = np.random.default_rng(4)
    X = torch.as_tensor(g.normal(size=(11, 3)), dtype=torch.float32)
    y = torch.as_tensor(g.normal(size=(11, 1)), dtype=torch.float32)
    model = nn.Linear(3, 1)
    metrics = impl.evaluate(model, DataLoader(TensorDataset(X, y), batch_size=5), nn.MSELoss())
    with torch.no_grad():
        expected = nn.MSELoss()(model(X), y).item()
    assert metrics["loss"] == pytest.approx(expected, rel=1e-5), (  # float32 sums
        f"MSE over 11 samples in batches of 5, 5, 1: expected {expected:.6g}, got "
        f"{metrics['loss']:.6g} (weight each batch by its size)")
    assert "accuracy" not in metrics, "real-valued targets have no accuracy: leave it out"


@pytest.mark.points(1)
def test_dataset_transform_reads_do_not_change_the_data(impl, rng):
    X = rng.normal(size=(5, 3))
    ds = impl.ArrayDataset(X, rng.normal(size=5), transform=lambda x: x + torch.randn(3))
    a, b = ds[2][0], ds[2][0]
    assert not torch.equal(a, b), "a random transform should give a new x on every read"
    clean = impl.ArrayDataset(X, rng.normal(size=5))
    assert np.allclose(clean[2][0].numpy(), X[2], atol=1e-6), (  # float32 copy
        "reading transformed items changed the stored data: transform a copy in __getitem__")
    assert ds[2][1].dtype == torch.float32, "real-valued y should come out as float32"


@pytest.mark.points(1)
@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 40), batch=st.integers(1, 12), seed=st.integers(0, 1000),
       drop_last=st.booleans())
def test_make_loader_epoch_property(impl, n, batch, seed, drop_last):
    ds = TensorDataset(torch.zeros(n, 1), torch.arange(n))
    loader = impl.make_loader(ds, batch, shuffle=True, seed=seed, drop_last=drop_last)
    seen = [int(i) for _, yb in loader for i in yb]
    full = (n // batch) * batch if drop_last else n
    assert len(seen) == full and len(set(seen)) == full, (
        f"n={n}, batch_size={batch}, drop_last={drop_last}: an epoch must visit {full} "
        f"distinct samples, got {len(seen)} ({len(set(seen))} distinct)")


@pytest.mark.points(1)
def test_mlp_and_train_step_overfit_a_tiny_batch(impl):
    torch.manual_seed(0)
    model = impl.MLP([8, 32, 4])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = (torch.randn(8, 8), torch.tensor([0, 1, 2, 3, 3, 2, 1, 0]))
    overfit_tiny_batch(lambda: impl.train_step(model, batch, opt, LOSS), steps=150,
                       target=0.05, what="MLP([8, 32, 4]) trained with train_step and Adam")


@pytest.mark.points(1)
def test_evaluate_leaves_an_eval_mode_model_in_eval_mode(impl):
    model = nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.5), nn.Linear(6, 2))
    model.eval()
    X, y = torch.randn(9, 4), torch.tensor([0, 1] * 4 + [0])
    impl.evaluate(model, DataLoader(TensorDataset(X, y), batch_size=4), LOSS)
    assert not model.training and not any(m.training for m in model.modules()), (
        "evaluate was called on a model already in eval mode and left it in train mode: "
        "remember model.training before model.eval() and restore exactly that afterwards "
        "(model.train(was_training)), not always model.train()")


class _DeviceSpy(nn.Module):
    """Records the device of every input; its output depends on a parameter kept outside the
    module (on the CPU), so moving the module to another device changes nothing."""

    def __init__(self, weight):
        super().__init__()
        self.weight, self.seen = [weight], []

    def forward(self, x):
        self.seen.append(x.device.type)
        return self.weight[0].expand(x.shape[0], 2)


@pytest.mark.points(1)
def test_train_step_and_evaluate_move_the_batch_to_the_device(impl):
    weight = nn.Parameter(torch.tensor([0.5, -1.0]))
    model, opt = _DeviceSpy(weight), torch.optim.SGD([weight], lr=0.1)
    seen_y = []

    def loss_fn(out, y):
        seen_y.append(y.device.type)
        return (out ** 2).mean()

    X, y = torch.randn(6, 3), torch.randn(6)
    impl.train_step(model, (X, y), opt, loss_fn, device="meta")
    impl.evaluate(model, DataLoader(TensorDataset(X, y), batch_size=4), loss_fn, device="meta")
    assert model.seen == ["meta"] * 3 and seen_y == ["meta"] * 3, (
        f"with device='meta', train_step (1 batch) and evaluate (2 batches) should move every "
        f"x and y to that device before using them (x.to(device), y.to(device)); the model saw "
        f"x on {model.seen} and the loss saw y on {seen_y}")
    loader = DataLoader(TensorDataset(X, y), batch_size=3)
    impl.fit(model, loader, opt, loss_fn, max_steps=2, val_loader=loader, eval_every=2,
             device="meta")
    assert model.seen[3:] == ["meta"] * 4, (
        f"fit(..., device='meta') should pass its device to train_step and evaluate: the "
        f"model saw the batches of 2 steps and one evaluation on {model.seen[3:]}")


@pytest.mark.points(1)
def test_array_dataset_converts_other_dtypes(impl):
    X32 = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
    cases = {"int32 labels": np.array([1, 0, 2, 1], dtype=np.int32),
             "uint8 labels": np.array([1, 0, 2, 1], dtype=np.uint8),
             "float64 targets": np.array([0.5, 1.0, -2.0, 3.0])}
    for name, y in cases.items():
        ds = impl.ArrayDataset(X32, y)
        x1, y1 = ds[1]
        want = torch.float32 if y.dtype.kind == "f" else torch.int64
        assert x1.dtype == torch.float32 and y1.dtype == want, (
            f"ArrayDataset(float32 X, {name}): items should be (float32, {want}) -- any "
            f"integer dtype becomes int64 class indices, real values float32; got "
            f"({x1.dtype}, {y1.dtype})")
        assert torch.equal(x1, torch.from_numpy(X32[1])) and float(y1) == float(y[1]), (
            f"ArrayDataset(float32 X, {name})[1] changed the values")


@pytest.mark.points(1)
def test_make_loader_order_is_the_documented_generator_draw(impl):
    ds = TensorDataset(torch.zeros(23, 1), torch.arange(23))
    for seed in (0, 11):
        ours = impl.make_loader(ds, 5, shuffle=True, seed=seed)
        ref = DataLoader(ds, batch_size=5, shuffle=True,
                         generator=torch.Generator().manual_seed(seed))
        for epoch in range(2):
            got = [yb.tolist() for _, yb in ours]
            want = [yb.tolist() for _, yb in ref]
            assert got == want, (
                f"make_loader(shuffle=True, seed={seed}), epoch {epoch}: the batches should "
                f"be those of DataLoader(..., shuffle=True, generator=torch.Generator()"
                f".manual_seed(seed)); got {got[:2]}..., expected {want[:2]}...")


@pytest.mark.points(1)
def test_fit_with_a_state_already_past_max_steps_trains_nothing(impl):
    model, opt, loader = _build(0)
    state = impl.LoopState()
    impl.fit(model, loader, opt, LOSS, max_steps=7, state=state)
    before = [p.detach().clone() for p in model.parameters()]
    history = impl.fit(model, loader, opt, LOSS, max_steps=4, state=state)
    assert len(history["train_loss"]) == 7 and state.step == 7, (
        f"fit(max_steps=4) on a state already at step 7 should return at once (train while "
        f"state.step < max_steps); it recorded {len(history['train_loss'])} losses, step "
        f"{state.step}")
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True)), (
        "fit(max_steps=4) on a state at step 7 changed the parameters")


@pytest.mark.points(1)
def test_mlp_of_any_depth_has_no_activation_after_the_last_layer(impl):
    torch.manual_seed(2)
    model = impl.MLP([6, 8, 7, 5, 3])
    model.eval()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    x = torch.randn(4, 6)
    h = x
    for i, lin in enumerate(linears):
        h = lin(h)
        h = torch.relu(h) if i < len(linears) - 1 else h
    with torch.no_grad():
        got = model(x)
    assert len(linears) == 4 and torch.allclose(got, h, rtol=1e-5, atol=1e-6), (  # float32
        "MLP([6, 8, 7, 5, 3]) should be Linear -> ReLU -> Dropout three times, then a last "
        "Linear with nothing after it; its output differs from that chain computed by hand")


@pytest.mark.points(1)
def test_train_step_sets_gradients_to_none(impl):
    class PartlyUsed(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Linear(3, 2), nn.Linear(3, 2)

        def forward(self, x):
            return self.used(x)

    torch.manual_seed(3)
    model = PartlyUsed()
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
    model.unused.weight.grad = torch.ones(2, 3)  # a gradient left over from elsewhere
    before = model.unused.weight.detach().clone()
    impl.train_step(model, (torch.randn(4, 3), torch.tensor([0, 1, 1, 0])), opt, LOSS)
    assert torch.equal(model.unused.weight, before), (
        "a parameter the loss never reaches was changed by train_step: zero the gradients "
        "with optimizer.zero_grad() (which sets them to None, so the optimizer skips that "
        "parameter), not by filling them with zeros or leaving old ones")


class _NotATensor:
    pass


@pytest.mark.points(1)
def test_load_checkpoint_refuses_pickled_objects(impl, tmp_path):
    model, opt, _ = _build(0)
    path = tmp_path / "evil.pt"
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                "loop": {"step": 0}, "rng": {}, "payload": _NotATensor()}, path)
    try:
        impl.load_checkpoint(path, model, opt)
    except NotImplementedError:
        raise
    except Exception as exc:  # torch raises pickle.UnpicklingError with weights_only=True
        assert "weights_only" in str(exc) or "Unpickl" in type(exc).__name__, (
            f"load_checkpoint failed on a file holding a pickled object, but with {exc!r}; "
            "read checkpoints with torch.load(path, weights_only=True)")
        return
    raise AssertionError(
        "load_checkpoint loaded a file holding an arbitrary pickled object: unpickling can run "
        "any code, so read checkpoints with torch.load(path, weights_only=True)")
