"""Public graders for s16 torch training: data, module, loop, evaluation and an exact resume.

The loop tests use the graders' own models and DataLoaders, so a slip in your MLP or loader
cannot hide (or cause) a loop failure. The resume tests train N steps straight, then N/2 +
save + load into a freshly built model, optimizer and loader + the rest, and compare.
"""

import copy
import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from graders.helpers import assert_close, check_shape

LOSS = nn.CrossEntropyLoss()


def _data(n=30, d=5, k=3, seed=0):
    g = np.random.default_rng(seed)
    return (torch.as_tensor(g.normal(size=(n, d)), dtype=torch.float32),
            torch.as_tensor(g.integers(0, k, n)))


class _Augmented(Dataset):
    """Adds NumPy and Python random noise when an item is read, as augmentation does."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i] + 0.1 * float(np.random.normal()) + 0.1 * random.random(), self.y[i]


def _net(seed, dropout=0.0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))


def _setup(variant, *, dropout=0.0, adam=False, shuffle=False, augment=False):
    """variant 0 builds the run; variant 1 a fresh one (other init, other loader seed)."""
    X, y = _data()
    model = _net(10 + variant, dropout)
    opt = (torch.optim.Adam(model.parameters(), lr=1e-2) if adam
           else torch.optim.SGD(model.parameters(), lr=0.1))
    ds = _Augmented(X, y) if augment else TensorDataset(X, y)
    loader = DataLoader(ds, batch_size=8, shuffle=shuffle,  # 30 samples: 4 batches an epoch
                        generator=torch.Generator().manual_seed(100 + variant))
    return model, opt, loader


def _seed_all(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _straight_and_resumed(impl, tmp_path, total, split, **kw):
    model, opt, loader = _setup(0, **kw)
    _seed_all(7)
    straight = list(impl.fit(model, loader, opt, LOSS, max_steps=total)["train_loss"])
    params = [p.detach().clone() for p in model.parameters()]

    model, opt, loader = _setup(0, **kw)
    _seed_all(7)
    state = impl.LoopState()
    impl.fit(model, loader, opt, LOSS, max_steps=split, state=state)
    impl.save_checkpoint(tmp_path / "ckpt.pt", model, opt, state)
    _seed_all(999)  # a new process starts from other random states ...
    model, opt, loader = _setup(1, **kw)  # ... and builds a differently initialised run
    state = impl.load_checkpoint(tmp_path / "ckpt.pt", model, opt)
    resumed = list(impl.fit(model, loader, opt, LOSS, max_steps=total, state=state)["train_loss"])
    return straight, resumed, params, [p.detach() for p in model.parameters()]


def _assert_identical(run, total, split, what, hint):
    straight, resumed, p_straight, p_resumed = run
    assert len(straight) == total and len(resumed) == total, (
        f"{what}: the history should hold one loss per step, {total} in all (the first {split} "
        f"come back from the checkpoint); got {len(straight)} straight and {len(resumed)} "
        "after resuming")
    bad = next((i for i, (a, b) in enumerate(zip(straight, resumed, strict=True)) if a != b), None)
    if bad is not None:
        raise AssertionError(
            f"{what}: training {total} steps straight, or {split} + save + load into a fresh "
            f"model, optimizer and loader + the rest, must give bit-identical losses. They "
            f"first differ at step {bad + 1} (straight {straight[bad]:.9g}, resumed "
            f"{resumed[bad]:.9g}). {hint}")
    for a, b in zip(p_straight, p_resumed, strict=True):
        assert torch.equal(a, b), f"{what}: the losses agree but the final parameters differ"


# --- Dataset and DataLoader -------------------------------------------------------------------

@pytest.mark.points(1)
def test_array_dataset_items_and_dtypes(impl, rng):
    X, y = rng.normal(size=(6, 4)), np.array([0, 2, 1, 1, 0, 2])
    ds = impl.ArrayDataset(X, y)
    assert len(ds) == 6, f"len(dataset) should be the number of samples, 6, got {len(ds)}"
    x3, y3 = ds[3]
    assert x3.dtype == torch.float32 and y3.dtype == torch.int64, (
        f"items should be (float32 x, int64 label): cross_entropy wants int64 class indices; "
        f"got ({x3.dtype}, {y3.dtype})")
    assert_close(x3, X[3], "dataset[3][0]", rtol=1e-6, atol=1e-7)  # float32 copy of float64
    assert int(y3) == 1, f"dataset[3][1] should be the label 1, got {y3}"
    doubled = impl.ArrayDataset(X, y, transform=lambda x: 2 * x)
    assert_close(doubled[3][0], 2 * X[3], "an item with transform=lambda x: 2 * x", rtol=1e-6,
                 atol=1e-7)  # float32


@pytest.mark.points(1)
def test_array_dataset_batches_through_a_dataloader(impl, rng):
    ds = impl.ArrayDataset(rng.normal(size=(10, 3)), rng.normal(size=10))
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    check_shape(xb, (4, 3), "a batch of X from DataLoader(dataset, batch_size=4)", "B, d")
    check_shape(yb, (4,), "a batch of y", "B")
    assert yb.dtype == torch.float32, f"real-valued targets should be float32, got {yb.dtype}"


@pytest.mark.points(2)
def test_make_loader_shuffles_each_epoch_reproducibly(impl):
    ds = TensorDataset(torch.arange(20.0)[:, None], torch.arange(20))
    loader = impl.make_loader(ds, 6, shuffle=True, seed=3)
    assert isinstance(loader, DataLoader), "make_loader should return a torch DataLoader"
    epochs = [[int(i) for _, yb in loader for i in yb] for _ in range(2)]
    for order in epochs:
        assert sorted(order) == list(range(20)), (
            f"an epoch must visit each of the 20 samples once, got {order}")
    assert epochs[0] != epochs[1], "two epochs came in the same order: reshuffle every epoch"
    assert epochs[0] != list(range(20)), "shuffle=True returned the samples in order"
    again = impl.make_loader(ds, 6, shuffle=True, seed=3)
    torch.manual_seed(123)  # the global generator must not matter
    assert [[int(i) for _, yb in again for i in yb] for _ in range(2)] == epochs, (
        "the same seed gave a different order: seed a torch.Generator and pass generator=")
    other = impl.make_loader(ds, 6, shuffle=True, seed=4)
    assert [int(i) for _, yb in other for i in yb] != epochs[0], "seeds 3 and 4 gave one order"


@pytest.mark.points(1)
def test_make_loader_without_shuffle_keeps_order(impl):
    ds = TensorDataset(torch.arange(10.0)[:, None], torch.arange(10))
    sizes, order = [], []
    for _, yb in impl.make_loader(ds, 4):
        sizes.append(len(yb))
        order += yb.tolist()
    assert order == list(range(10)) and sizes == [4, 4, 2], (
        f"without shuffle: batches of 4, 4, 2 in order expected, got sizes {sizes}, {order}")
    assert [len(yb) for _, yb in impl.make_loader(ds, 4, drop_last=True)] == [4, 4], (
        "drop_last=True should drop the short last batch")


# --- nn.Module ------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_mlp_layers_register_and_forward_matches_by_hand(impl, rng):
    model = impl.MLP([6, 16, 8, 3])
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    shapes = [tuple(m.weight.shape) for m in linears]
    assert shapes == [(16, 6), (8, 16), (3, 8)], (
        f"MLP([6, 16, 8, 3]) should hold Linear layers with weights (16, 6), (8, 16), (3, 8) "
        f"registered as submodules; found {shapes}. Layers kept in a plain Python list are "
        "invisible to .parameters(): use nn.Sequential or nn.ModuleList.")
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 16 * 7 + 8 * 17 + 3 * 9, f"parameter count {n_params}, expected 323"
    x = torch.as_tensor(rng.normal(size=(5, 6)), dtype=torch.float32)
    h = x
    for i, lin in enumerate(linears):
        h = h @ lin.weight.T + lin.bias
        h = torch.relu(h) if i < 2 else h
    model.eval()
    # float32, same operations
    assert_close(model(x), h, "MLP output vs Linear -> ReLU -> ... -> Linear by hand (no "
                 "activation after the last layer)", rtol=1e-5, atol=1e-6)
    check_shape(model(x.reshape(5, 2, 3)), (5, 3), "MLP on (B, 2, 3) inputs (flatten them)")


@pytest.mark.points(1)
def test_mlp_dropout_only_in_train_mode(impl):
    model = impl.MLP([10, 64, 4], dropout=0.5)
    x = torch.randn(32, 10)
    model.train()
    a, b = model(x), model(x)
    assert not torch.equal(a, b), "with dropout=0.5 in train mode two forward passes agreed: " \
        "is there an nn.Dropout between the layers?"
    model.eval()
    assert torch.equal(model(x), model(x)), "in eval mode dropout must be the identity"


# --- one step and evaluation ------------------------------------------------------------------

@pytest.mark.points(2)
def test_train_step_matches_a_manual_update(impl):
    X, y = _data()
    ours = _net(0)
    ref = copy.deepcopy(ours)
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    for s in range(3):
        batch = (X[8 * s:8 * s + 8], y[8 * s:8 * s + 8])
        loss = impl.train_step(ours, batch, opt_ours, LOSS)
        opt_ref.zero_grad()
        expected = LOSS(ref(batch[0]), batch[1])
        expected.backward()
        opt_ref.step()
        assert isinstance(loss, float), f"train_step should return loss.item(), got {type(loss)}"
        assert loss == pytest.approx(expected.item(), rel=1e-6), (  # same float32 operations
            f"step {s + 1}: train_step returned loss {loss:.7g}, a manual step gives "
            f"{expected.item():.7g}. If only steps after the first differ, the gradients "
            "from earlier steps are still there: call optimizer.zero_grad() every step.")
    for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
        assert_close(p, q, "parameters after 3 train_steps vs a manual loop", rtol=1e-6,
                     atol=1e-7)  # float32, same operations


class _Spy(nn.Module):
    """Records, on every forward, whether it ran in train mode and with autograd recording."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin, self.bn, self.drop = nn.Linear(5, 3), nn.BatchNorm1d(3), nn.Dropout(0.5)
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.drop(self.bn(self.lin(x)))


@pytest.mark.points(2)
def test_evaluate_runs_in_eval_mode_without_a_graph(impl):
    X, y = _data(n=20)
    spy = _Spy()
    spy.train()
    stats = spy.bn.running_mean.clone()
    metrics = impl.evaluate(spy, DataLoader(TensorDataset(X, y), batch_size=8), LOSS)
    assert spy.calls, "evaluate never called the model"
    assert not any(training for training, _ in spy.calls), (
        "the model ran in train mode during evaluate: call model.eval() first (dropout must "
        "be off and BatchNorm must use its running statistics)")
    assert not any(grad for _, grad in spy.calls), (
        "autograd was recording during evaluate: wrap the loop in `with torch.no_grad():`")
    assert torch.equal(spy.bn.running_mean, stats), (
        "evaluate changed BatchNorm's running statistics: evaluation must not train anything")
    assert spy.training, "evaluate must put the model back in train mode when it was training"
    spy.eval()
    with torch.no_grad():
        expected = LOSS(spy(X), y).item()
    assert metrics["loss"] == pytest.approx(expected, rel=1e-5), (  # float32 sums
        f"evaluate's loss {metrics['loss']:.6g} differs from the eval-mode loss {expected:.6g}")


@pytest.mark.points(1)
def test_evaluate_averages_over_samples_not_batches(impl):
    X, y = _data(n=10)
    model = _net(3)
    model.eval()
    metrics = impl.evaluate(model, DataLoader(TensorDataset(X, y), batch_size=4), LOSS)
    with torch.no_grad():
        out = model(X)
    expected = LOSS(out, y).item()
    acc = (out.argmax(1) == y).float().mean().item()
    assert metrics["loss"] == pytest.approx(expected, rel=1e-5), (  # float32 sums
        f"evaluate on 10 samples in batches of 4, 4, 2 gave loss {metrics['loss']:.6g}; the "
        f"mean over all 10 samples is {expected:.6g}. Weight each batch's mean by its size.")
    assert metrics["accuracy"] == pytest.approx(acc), (
        f"accuracy {metrics.get('accuracy')} vs {acc}: the share of argmax(logits) == label")


@pytest.mark.points(1)
def test_capture_and_restore_rng_state(impl):
    saved = impl.capture_rng_state()
    first = (torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random())
    impl.restore_rng_state(saved)
    again = (torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random())
    for name, a, b in zip(("torch", "numpy", "python random"), first, again, strict=True):
        assert a == b, f"after restore_rng_state, {name} drew {b} instead of repeating {a}"


# --- the loop -------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_fit_matches_a_hand_written_loop(impl):
    model, opt, loader = _setup(0, adam=True, shuffle=True)
    history = impl.fit(model, loader, opt, LOSS, max_steps=10)
    ref_model, ref_opt, ref_loader = _setup(0, adam=True, shuffle=True)
    expected = []
    while len(expected) < 10:
        for xb, yb in ref_loader:
            ref_opt.zero_grad()
            loss = LOSS(ref_model(xb), yb)
            loss.backward()
            ref_opt.step()
            expected.append(loss.item())
            if len(expected) == 10:
                break
    assert history["step"] == list(range(1, 11)), (
        f"history['step'] should be 1..10, got {history['step']}")
    assert_close(history["train_loss"], expected, "history['train_loss'] vs a plain loop "
                 "over epochs of the same loader (10 steps = 2.5 epochs)", rtol=1e-6, atol=0)


@pytest.mark.points(1)
def test_same_seed_same_result(impl):
    runs = []
    for variant in (0, 0, 1):
        model, opt, loader = _setup(variant, dropout=0.3, shuffle=True)
        _seed_all(5)
        runs.append(impl.fit(model, loader, opt, LOSS, max_steps=9)["train_loss"])
    assert runs[0] == runs[1], "two runs with the same seeds gave different losses"
    assert runs[0] != runs[2], "a different init and data seed gave the very same losses"


@pytest.mark.points(2)
def test_callbacks_are_called(impl):
    events = []

    class Recorder(impl.Callback):
        def on_train_begin(self, state):
            events.append(("begin", state.step))

        def on_step_end(self, state, loss):
            events.append(("step", state.step, loss))

        def on_epoch_end(self, state):
            events.append(("epoch", state.step, state.epoch))

        def on_eval_end(self, state, metrics):
            events.append(("eval", state.step, metrics["loss"]))

        def on_train_end(self, state):
            events.append(("end", state.step))

    X, y = _data(n=20)  # batches of 8, 8, 4: three steps an epoch
    model, opt, _ = _setup(0)
    train = DataLoader(TensorDataset(X, y), batch_size=8)
    history = impl.fit(model, train, opt, LOSS, max_steps=7, val_loader=train, eval_every=3,
                       callbacks=[Recorder()])
    kinds = [e[0] for e in events]
    assert kinds[0] == "begin" and kinds[-1] == "end" and kinds.count("end") == 1, (
        f"on_train_begin must come first and on_train_end last, once each; got {kinds}")
    steps = [e for e in events if e[0] == "step"]
    assert [e[1] for e in steps] == list(range(1, 8)), (
        f"on_step_end should see state.step = 1..7, got {[e[1] for e in steps]}")
    assert [e[2] for e in steps] == history["train_loss"], "on_step_end got other losses"
    evals = [e for e in events if e[0] == "eval"]
    assert [e[1] for e in evals] == [3, 6] and history["val_step"] == [3, 6], (
        f"with eval_every=3 over 7 steps, evaluation belongs after steps 3 and 6; on_eval_end "
        f"saw steps {[e[1] for e in evals]}, history['val_step'] = {history['val_step']}")
    assert [e[2] for e in evals] == history["val_loss"], "on_eval_end got other metrics"
    epochs = [(e[1], e[2]) for e in events if e[0] == "epoch"]
    assert epochs == [(3, 1), (6, 2)], (
        f"on_epoch_end should follow steps 3 and 6 with state.epoch 1 and 2, got {epochs}")


@pytest.mark.points(1)
def test_a_callback_can_stop_training(impl):
    class StopAt4(impl.Callback):
        def on_step_end(self, state, loss):
            if state.step == 4:
                state.stop = True

    model, opt, loader = _setup(0)
    history = impl.fit(model, loader, opt, LOSS, max_steps=20, callbacks=[StopAt4()])
    assert history["step"] == [1, 2, 3, 4], (
        f"a callback set state.stop at step 4; training should end there, history['step'] = "
        f"{history['step']}")


@pytest.mark.points(1)
def test_progress_bar_counts_steps(impl, capsys):
    model, opt, loader = _setup(0)
    impl.fit(model, loader, opt, LOSS, max_steps=6, progress=True)
    err = capsys.readouterr().err
    assert "6/6" in err, f"progress=True should draw a bar on stderr reaching 6/6, got {err!r}"
    impl.fit(model, loader, opt, LOSS, max_steps=6, progress=False)
    assert "6/6" not in capsys.readouterr().err, "progress=False should draw nothing"


# --- checkpoints: an exact resume -------------------------------------------------------------

@pytest.mark.points(2)
def test_resume_restores_the_optimizer_state(impl, tmp_path):
    run = _straight_and_resumed(impl, tmp_path, 10, 5, adam=True)
    _assert_identical(run, 10, 5, "Adam, no dropout, no shuffling",
                      "Only the model and the optimizer carry state here: save "
                      "optimizer.state_dict() (Adam's moments and step count) and load it.")


@pytest.mark.points(2)
def test_resume_restores_the_torch_rng(impl, tmp_path):
    run = _straight_and_resumed(impl, tmp_path, 10, 5, dropout=0.5)
    _assert_identical(run, 10, 5, "plain SGD with dropout, no shuffling",
                      "Dropout draws from torch's global generator: save torch.get_rng_state() "
                      "and restore it before the next step.")


@pytest.mark.points(2)
def test_resume_continues_the_data_order(impl, tmp_path):
    run = _straight_and_resumed(impl, tmp_path, 12, 6, shuffle=True)
    _assert_identical(run, 12, 6, "plain SGD on a shuffled loader, resumed in mid-epoch",
                      "The resumed run must see the rest of the SAME epoch order: record the "
                      "loader generator's state when an epoch starts, set it back when "
                      "resuming, and skip the batches already used.")


EPOCH_BOUNDARY_HINT = (
    "At an epoch boundary the next epoch's order comes from the loader generator's state "
    "AFTER the finished epoch: closing an epoch sets state.epoch_rng = generator.get_state(), "
    "and epoch_batches sets the generator back to a saved epoch_rng instead of recording a "
    "fresh loader's state (which would replay epoch 0's order).")


@pytest.mark.points(2)
def test_resume_at_an_epoch_boundary_continues_with_the_next_epoch(impl, tmp_path):
    """max_steps on an epoch's last batch (4 batches an epoch): stop, save, resume."""
    run = _straight_and_resumed(impl, tmp_path, 12, 4, shuffle=True, dropout=0.3,
                                augment=True)
    _assert_identical(run, 12, 4, "shuffled, dropout and augmentation, stopped on the last "
                      "batch of epoch 0 (max_steps=4)", EPOCH_BOUNDARY_HINT)


@pytest.mark.points(2)
def test_checkpoint_written_in_on_epoch_end_resumes_exactly(impl, tmp_path):
    class SaveAtEpochEnd(impl.Callback):
        def __init__(self, model, opt):
            self.model, self.opt = model, opt

        def on_epoch_end(self, state):
            if state.epoch == 1:
                impl.save_checkpoint(tmp_path / "epoch1.pt", self.model, self.opt, state)

    kw = {"shuffle": True, "dropout": 0.3, "augment": True, "adam": True}
    model, opt, loader = _setup(0, **kw)
    _seed_all(7)
    straight = impl.fit(model, loader, opt, LOSS, max_steps=10,
                        callbacks=[SaveAtEpochEnd(model, opt)])["train_loss"]
    p_straight = [p.detach().clone() for p in model.parameters()]
    assert (tmp_path / "epoch1.pt").exists(), (
        "a callback saving in on_epoch_end when state.epoch == 1 wrote nothing: fit should "
        "call on_epoch_end after each finished epoch with state.epoch already increased")
    _seed_all(999)
    model, opt, loader = _setup(1, **kw)
    state = impl.load_checkpoint(tmp_path / "epoch1.pt", model, opt)
    resumed = impl.fit(model, loader, opt, LOSS, max_steps=10, state=state)["train_loss"]
    _assert_identical((list(straight), list(resumed), p_straight,
                       [p.detach() for p in model.parameters()]), 10, 4,
                      "a checkpoint saved by a callback in on_epoch_end after epoch 0 (4 "
                      "batches), resumed into a fresh model, optimizer and loader",
                      EPOCH_BOUNDARY_HINT)


@pytest.mark.points(2)
def test_resume_restores_numpy_and_python_rng(impl, tmp_path):
    run = _straight_and_resumed(impl, tmp_path, 10, 6, augment=True)
    _assert_identical(run, 10, 6, "a Dataset that adds np.random and random noise",
                      "Save NumPy's and Python's generator states too, and restore them only "
                      "AFTER skipping the used batches (skipping reads items, which draws "
                      "noise); never load a batch you will not train on before saving.")


@pytest.mark.points(3)
def test_resume_is_bit_identical(impl, tmp_path):
    run = _straight_and_resumed(impl, tmp_path, 15, 7, adam=True, dropout=0.3, shuffle=True,
                                augment=True)
    _assert_identical(run, 15, 7, "Adam, dropout, shuffling and augmentation together",
                      "Everything that shapes the next step must be in the checkpoint: model, "
                      "optimizer, step counter, data position, and every RNG.")
