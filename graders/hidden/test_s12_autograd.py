"""Hidden graders for s12 autograd: bigger random graphs, accumulation across losses, and a
training loop that must follow the specified SGD exactly."""

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_moons

from graders.helpers import assert_close
from graders.test_s12_autograd import (
    ATOL,
    F64,
    ONE_BUG,
    RTOL,
    _leaf,
    check_graph_against_torch,
    random_graph,
    torch_forward,
    torch_grads_in_order,
)


@pytest.mark.points(3)
@settings(max_examples=20, deadline=None, **ONE_BUG)
@given(seed=st.integers(0, 10**6), n_leaves=st.integers(1, 5), n_ops=st.integers(20, 60))
def test_larger_random_graphs_match_torch(impl, seed, n_leaves, n_ops):
    out, t_out, pairs, _ = random_graph(impl.Value, seed=seed, n_leaves=n_leaves,
                                        n_ops=n_ops)
    check_graph_against_torch(out, t_out, pairs, "a larger random expression")


@pytest.mark.points(2)
@pytest.mark.parametrize("ops", [("mul", "tanh", "add"), ("pow", "div", "rsub", "relu"),
                                 ("exp", "log", "rmul", "neg", "sub")])
def test_random_graphs_built_from_few_ops(impl, ops):
    """Few op kinds, many uses of each: a wrong local derivative cannot hide among others."""
    for seed in range(4):
        out, t_out, pairs, _ = random_graph(impl.Value, seed=100 + seed, n_ops=25, ops=ops)
        check_graph_against_torch(out, t_out, pairs, f"a random expression of {ops}")


@pytest.mark.points(2)
def test_gradients_of_two_losses_accumulate_in_shared_leaves(impl):
    w, tw = impl.Value(0.3), _leaf(0.3)
    shared, t_shared = (w * 1.7).tanh(), (tw * 1.7).tanh()
    loss1, t_loss1 = shared * shared, t_shared * t_shared
    loss2, t_loss2 = (shared - 2.0) ** 2 + w, (t_shared - 2.0) ** 2 + tw
    loss1.backward()
    loss2.backward()
    t_loss1.backward(retain_graph=True)
    t_loss2.backward()
    assert_close(w.grad, tw.grad, "a parameter used by two losses, after loss1.backward() "
                 "and loss2.backward(): the sum of both gradients (leaves accumulate)",
                 RTOL, ATOL)


@pytest.mark.points(1)
def test_leaf_backward_seeds_one(impl):
    x = impl.Value(4.0)
    x.backward()
    assert x.grad == pytest.approx(1.0), f"d x / d x is 1; x.backward() gave x.grad = {x.grad}"
    x.backward()
    assert x.grad == pytest.approx(2.0), (
        f"a leaf accumulates: x.backward() twice should leave x.grad = 2 (self.grad += 1, "
        f"like torch), got {x.grad}")


@pytest.mark.points(1)
def test_constants_do_not_change_gradients(impl):
    a, ta = impl.Value(0.9), _leaf(0.9)
    out = ((3.0 - a) / 2.0 + 1.5 * a - a / 4.0) ** 2
    t_out = ((3.0 - ta) / 2.0 + 1.5 * ta - ta / 4.0) ** 2
    out.backward()
    t_out.backward()
    assert_close(a.grad, ta.grad, "gradient through mixed Value / float arithmetic",
                 RTOL, ATOL)


@pytest.mark.points(1)
def test_mlp_with_several_outputs_matches_torch(impl, rng):
    model = impl.MLP(4, [6, 3], rng=random.Random(7))
    X = rng.normal(size=(5, 4)).tolist()
    outs = [model(x) for x in X]
    assert isinstance(outs[0], list) and len(outs[0]) == 3, (
        "an MLP whose last layer has 3 neurons should return a list of 3 Values")
    loss = sum((o * float(k + 1) for row in outs for k, o in enumerate(row)), impl.Value(0.0))
    t_scores, params = torch_forward(model, X)
    t_loss = (t_scores * torch.tensor([1.0, 2.0, 3.0], dtype=F64)).sum()
    loss.backward()
    t_loss.backward()
    assert_close([[o.data for o in row] for row in outs], t_scores.detach(),
                 "MLP(4, [6, 3]) outputs", RTOL, ATOL)
    assert_close([p.grad for p in model.parameters()], torch_grads_in_order(params),
                 "MLP(4, [6, 3]) parameter gradients", RTOL, ATOL)


@pytest.mark.points(3)
def test_train_follows_the_specified_sgd_exactly(impl):
    X, y = make_moons(n_samples=10, noise=0.1, random_state=5)
    y = 2 * y - 1
    model = impl.MLP(2, [5, 5, 1], rng=random.Random(5))
    _, params = torch_forward(model, X.tolist())
    steps, alpha = 4, 1e-3
    history = impl.train(model, X.tolist(), y.tolist(), steps=steps, lr0=0.5, alpha=alpha)
    t_y = torch.tensor(y, dtype=F64)
    expected_losses, expected_accs = [], []
    for k in range(steps):
        h = torch.tensor(X, dtype=F64)
        for i, (W, b) in enumerate(params):
            h = h @ W.T + b
            if i < len(params) - 1:
                h = torch.relu(h)
        loss = torch.relu(1 - t_y * h[:, 0]).mean() + alpha * sum(
            (W ** 2).sum() + (b ** 2).sum() for W, b in params)
        expected_losses.append(float(loss))
        expected_accs.append(float(((h[:, 0] > 0) == (t_y > 0)).double().mean()))
        for W, b in params:
            W.grad = b.grad = None
        loss.backward()
        with torch.no_grad():
            for W, b in params:
                lr = 0.5 * (1 - 0.9 * k / steps)
                W -= lr * W.grad
                b -= lr * b.grad
    assert_close([h[0] for h in history], expected_losses,
                 "the loss recorded at each step of train (before the update)", RTOL, ATOL)
    assert [h[1] for h in history] == expected_accs, (
        f"the accuracy recorded at each step of train (before the update, a score of 0 "
        f"counting as -1): expected {expected_accs}, got {[h[1] for h in history]}")
    flat = [float(v) for W, b in params for j in range(len(b)) for v in [*W[j], b[j]]]
    assert_close([p.data for p in model.parameters()], flat,
                 "parameters after 4 steps of train(lr0=0.5): each step must zero the "
                 "grads, backpropagate, and apply p -= lr_k * grad with "
                 "lr_k = lr0 * (1 - 0.9 k / steps)", RTOL, ATOL)


@pytest.mark.points(1)
def test_hinge_loss_counts_a_score_of_zero_as_minus_one(impl):
    model = impl.MLP(2, [3, 1], rng=random.Random(4))
    for p in model.parameters():
        p.data = 0.0  # every score is exactly 0
    y = [-1.0, 1.0, -1.0, 1.0, 1.0]
    loss, acc = impl.hinge_loss(model, [[0.3, -0.2]] * 5, y, alpha=0.5)
    assert acc == pytest.approx(2 / 5), (
        f"with every score exactly 0, accuracy should count the 2 labels -1 of 5 as right (the "
        f"docstring: a score of 0 counts as -1), got {acc}")
    assert loss.data == pytest.approx(1.0), (
        f"with every score and parameter 0, each margin term relu(1 - y * 0) is 1 and the L2 "
        f"term 0: the loss should be 1, got {loss.data}")


@pytest.mark.points(1)
def test_neuron_layer_and_lift_directly(impl):
    lin = impl.Neuron(3, nonlin=False, rng=random.Random(1))
    x = [0.5, -2.0, 1.5]
    expected = sum(w.data * xi for w, xi in zip(lin.w, x, strict=True)) + lin.b.data
    out = lin(x)
    assert out.data == pytest.approx(expected, rel=1e-12), (
        f"Neuron(3, nonlin=False)(x) should be the plain weighted sum plus bias (no ReLU), "
        f"{expected:.6g}; got {out.data:.6g}")
    relu_n = impl.Neuron(3, nonlin=True, rng=random.Random(1))
    assert relu_n(x).data == pytest.approx(max(0.0, expected), abs=1e-12), (
        "Neuron(nonlin=True) should apply relu to the weighted sum")
    assert lin.parameters() == [*lin.w, lin.b], "Neuron.parameters(): the weights, then the bias"
    layer = impl.Layer(3, 2, nonlin=False, rng=random.Random(2))
    outs = layer(x)
    assert isinstance(outs, list) and len(outs) == 2, "Layer(3, 2)(x) returns 2 Values"
    for n, o in zip(layer.neurons, outs, strict=True):
        assert o.data == pytest.approx(n(x).data, rel=1e-12), "Layer outputs, neuron by neuron"
    assert layer.parameters() == [p for n in layer.neurons for p in n.parameters()], (
        "Layer.parameters(): every neuron's parameters, neuron by neuron")
    v = impl.Value(1.5)
    lifted = impl.Value.lift(2.0)
    assert impl.Value.lift(v) is v and isinstance(lifted, impl.Value) and lifted.data == 2.0, (
        "Value.lift: a Value unchanged, a number wrapped as a constant Value")
    assert impl.Module().parameters() == [], "Module.parameters(): none"
