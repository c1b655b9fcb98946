"""Public graders for s12 autograd: every value and gradient against torch.autograd (float64).

``random_graph`` builds the same random expression twice, on the learner's ``Value`` and on
float64 torch tensors, so that torch is the oracle for every node's value and gradient.
"""

import gc
import math
import random
import weakref

import pytest
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_moons

from graders.helpers import assert_close

F64 = torch.float64
# Both sides compute in float64 with the same formulas up to the order of a few roundings
# (a / b is a * b**-1 here): they agree to ~1e-12; 1e-6 leaves room and still catches any
# wrong derivative, which is off by far more.
RTOL, ATOL = 1e-6, 1e-9
# Report one failure, not a group of "distinct bugs" (an unfinished stub raises a different
# NotImplementedError for each op); skip the explain phase, which re-parses source (slow).
ONE_BUG = {"report_multiple_bugs": False,
           "phases": (Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink)}

ALL_OPS = ("add", "sub", "mul", "div", "pow", "exp", "log", "tanh", "relu", "neg",
           "radd", "rsub", "rmul", "rdiv")


def _leaf(x: float) -> torch.Tensor:
    return torch.tensor(x, dtype=F64, requires_grad=True)


def random_graph(Value, seed: int, n_leaves: int = 3, n_ops: int = 20, ops=ALL_OPS):
    """The same random expression on Value and on torch: (out, t_out, pairs, leaf_pairs).

    Operands are drawn mostly from the last few nodes (so the graph is deep) and sometimes
    from anywhere (so nodes are reused along several paths). Domain choices (log of a
    positive number, no division by ~0, no overflow) are made on torch's values, so both
    sides always build the same graph.
    """
    rng = random.Random(seed)
    leaves = []
    for _ in range(n_leaves):
        x = round(rng.uniform(-2.0, 2.0), 3)
        leaves.append((Value(x), _leaf(x)))
    pairs = list(leaves)

    def pick():
        lo = max(0, len(pairs) - 4) if rng.random() < 0.7 else 0
        return pairs[rng.randrange(lo, len(pairs))]

    for _ in range(n_ops):
        op = rng.choice(ops)
        (a, ta), (b, tb) = pick(), pick()
        x, xb = float(ta.detach()), float(tb.detach())
        c = round(rng.uniform(-2.0, 2.0), 2) or 0.5
        if op == "add":
            new = (a + b, ta + tb)
        elif op == "sub":
            new = (a - b, ta - tb)
        elif op == "mul":
            new = (a * b, ta * tb)
        elif op == "div" and abs(xb) > 0.3:
            new = (a / b, ta / tb)
        elif op == "pow":
            n = rng.choice([2, 3, -1, 0.5, 1.5, -0.5])
            if (n != int(n) and x <= 0.1) or (n < 0 and abs(x) < 0.3):
                n = 2
            new = (a ** n, ta ** n)
        elif op == "exp" and x < 3:
            new = (a.exp(), ta.exp())
        elif op == "log" and x > 0.1:
            new = (a.log(), ta.log())
        elif op == "relu":
            new = (a.relu(), ta.relu())
        elif op == "neg":
            new = (-a, -ta)
        elif op == "radd":
            new = (c + a, c + ta)
        elif op == "rsub":
            new = (c - a, c - ta)
        elif op == "rmul":
            new = (c * a, c * ta)
        elif op == "rdiv" and abs(x) > 0.3:
            new = (c / a, c / ta)
        else:  # tanh, or an op whose domain did not fit
            new = (a.tanh(), ta.tanh())
        if abs(float(new[1])) > 50:  # keep values moderate: squash
            new = (new[0].tanh(), new[1].tanh())
        new[1].retain_grad()
        pairs.append(new)
    # the output reads the last node and two earlier ones: more paths, more reuse
    (o1, t1), (o2, t2), (o3, t3) = pairs[-1], pairs[rng.randrange(len(pairs))], pick()
    out, t_out = o1 + o2 * o3, t1 + t2 * t3
    t_out.retain_grad()
    return out, t_out, pairs, leaves


def check_graph_against_torch(out, t_out, pairs, what: str) -> None:
    assert_close(out.data, t_out.detach(), f"{what}: value of the output", RTOL, ATOL)
    t_out.backward()
    out.backward()
    for k, (v, t) in enumerate(pairs):
        assert_close(v.data, t.detach(), f"{what}: value of node {k}", RTOL, ATOL)
        expected = 0.0 if t.grad is None else t.grad
        assert_close(v.grad, expected, f"{what}: gradient of node {k} (d out / d node)",
                     RTOL, ATOL)


# --- primitives ------------------------------------------------------------------------------

@pytest.mark.points(1)
def test_add_and_mul_by_hand(impl):
    a, b = impl.Value(2.0), impl.Value(-3.0)
    c = a * b + a  # c = ab + a: dc/da = b + 1 = -2, dc/db = a = 2
    c.backward()
    assert c.data == pytest.approx(-4.0), f"2 * -3 + 2 should be -4, got {c.data}"
    assert (a.grad, b.grad) == (pytest.approx(-2.0), pytest.approx(2.0)), (
        f"for c = a*b + a at a=2, b=-3: expected dc/da = b + 1 = -2 and dc/db = a = 2, got "
        f"{a.grad} and {b.grad}. a is used twice, so its two contributions must add up.")


UNARY = {
    "exp": (lambda v: v.exp(), torch.exp, [-1.3, 0.0, 2.1]),
    "log": (lambda v: v.log(), torch.log, [0.2, 1.0, 3.7]),
    "tanh": (lambda v: v.tanh(), torch.tanh, [-2.0, 0.3, 1.1]),
    "relu": (lambda v: v.relu(), torch.relu, [-1.5, 0.0, 0.7, 2.0]),  # 0: grad 0
    "neg": (lambda v: -v, torch.neg, [-1.5, 0.7]),
    "pow 2": (lambda v: v ** 2, lambda t: t ** 2, [-1.5, 0.7]),
    "pow 3": (lambda v: v ** 3, lambda t: t ** 3, [-1.5, 0.7]),
    "pow -1": (lambda v: v ** -1, lambda t: t ** -1, [-1.5, 0.7]),
    "pow 0.5": (lambda v: v ** 0.5, lambda t: t ** 0.5, [0.3, 2.5]),
    "pow -1.5": (lambda v: v ** -1.5, lambda t: t ** -1.5, [0.3, 2.5]),
}


@pytest.mark.points(1)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_op_value_and_gradient_match_torch(impl, name):
    ours_fn, torch_fn, points = UNARY[name]
    for x in points:
        v, t = impl.Value(x), _leaf(x)
        out, t_out = ours_fn(v), torch_fn(t)
        out.backward()
        t_out.backward()
        assert_close(out.data, t_out.detach(), f"{name}({x}): value", RTOL, ATOL)
        assert_close(v.grad, t.grad, f"{name}({x}): gradient d out / d x (the local "
                     f"derivative of {name})", RTOL, ATOL)


BINARY = {
    "a + b": lambda a, b: a + b, "a - b": lambda a, b: a - b, "a * b": lambda a, b: a * b,
    "a / b": lambda a, b: a / b, "2.5 + a": lambda a, b: 2.5 + a,
    "2.5 - a": lambda a, b: 2.5 - a, "2.5 * a": lambda a, b: 2.5 * a,
    "2.5 / a": lambda a, b: 2.5 / a, "a - 1.5": lambda a, b: a - 1.5,
    "a / 4": lambda a, b: a / 4,
}


@pytest.mark.points(1)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_op_value_and_gradients_match_torch(impl, name):
    fn = BINARY[name]
    a, b, ta, tb = impl.Value(1.7), impl.Value(-0.6), _leaf(1.7), _leaf(-0.6)
    out, t_out = fn(a, b), fn(ta, tb)
    assert isinstance(out, impl.Value), f"{name} should return a Value, got {type(out)}"
    out.backward()
    t_out.backward()
    assert_close(out.data, t_out.detach(), f"{name} at a=1.7, b=-0.6: value", RTOL, ATOL)
    for ours, theirs, label in ((a, ta, "a"), (b, tb, "b")):
        expected = 0.0 if theirs.grad is None else theirs.grad
        assert_close(ours.grad, expected, f"{name}: gradient with respect to {label}",
                     RTOL, ATOL)


@pytest.mark.points(1)
def test_relu_blocks_the_gradient_of_negative_inputs(impl):
    for x in (-2.0, -0.01):
        v = impl.Value(x)
        out = v.relu() * 3.0
        out.backward()
        assert out.data == 0.0 and v.grad == 0.0, (
            f"relu at x={x}: expected output 0 and gradient 0 (a ReLU that is off passes no "
            f"gradient), got output {out.data} and gradient {v.grad}")


# --- graphs: reuse, order, accumulation -----------------------------------------------------

@pytest.mark.points(2)
def test_reused_nodes_accumulate_gradients(impl):
    a, ta = impl.Value(-1.2), _leaf(-1.2)
    b, tb = a * 2.0 + 1.0, ta * 2.0 + 1.0          # b uses a
    c, tc = a * b + b.tanh(), ta * tb + tb.tanh()  # c uses a and b (b twice)
    d, td = c * c + a, tc * tc + ta                # d uses c twice and a again
    d.backward()
    td.backward()
    assert_close(a.grad, ta.grad, "d = c*c + a with c = a*b + tanh(b), b = 2a + 1: dd/da "
                 "(a reaches d along 4 paths; each must ADD its share: grad += not =)",
                 RTOL, ATOL)
    x = impl.Value(3.0)
    y = x + x + x * x  # 2x + x^2
    y.backward()
    assert x.grad == pytest.approx(8.0), (
        f"y = x + x + x*x at x=3 has dy/dx = 2 + 2x = 8, got {x.grad}: a node used several "
        "times must receive the sum of its contributions")


@pytest.mark.points(1)
def test_topological_order_puts_inputs_first(impl):
    out, _, pairs, _ = random_graph(impl.Value, seed=3, n_ops=15)
    order = out.topological_order()
    ids = [id(v) for v in order]
    assert len(ids) == len(set(ids)), "topological_order lists some node more than once"
    assert order[-1] is out, "the Value itself must come last in its topological order"
    position = {id(v): i for i, v in enumerate(order)}
    for v in order:
        for child in v._prev:
            assert id(child) in position and position[id(child)] < position[id(v)], (
                f"a node ({v._op}) comes before one of its inputs: every input must be "
                "listed before the nodes that use it")


@pytest.mark.points(3)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_expression_graphs_match_torch(impl, seed):
    out, t_out, pairs, _ = random_graph(impl.Value, seed=seed)
    check_graph_against_torch(out, t_out, pairs, f"random expression #{seed}")


@pytest.mark.points(2)
@settings(max_examples=15, deadline=None, **ONE_BUG)
@given(seed=st.integers(0, 10**6), n_ops=st.integers(1, 30))
def test_random_expression_graphs_property(impl, seed, n_ops):
    out, t_out, pairs, _ = random_graph(impl.Value, seed=seed, n_ops=n_ops)
    check_graph_against_torch(out, t_out, pairs, f"random expression (seed {seed})")


@pytest.mark.points(1)
def test_backward_twice_adds_to_the_leaves_like_torch(impl):
    a, b, ta, tb = impl.Value(0.5), impl.Value(-1.5), _leaf(0.5), _leaf(-1.5)
    h, th = (a * b).tanh(), (ta * tb).tanh()
    out, t_out = h * a + b, th * ta + tb
    out.backward()
    out.backward()
    t_out.backward(retain_graph=True)
    t_out.backward()
    for ours, theirs, name in ((a, ta, "a"), (b, tb, "b")):
        assert_close(ours.grad, theirs.grad, f"after calling backward() twice, {name}.grad "
                     "(leaves accumulate: twice the gradient, as torch does; interior nodes "
                     "are reset at the start of each backward)", RTOL, ATOL)
    assert_close(h.grad, a.data, "an interior node's grad after the second backward (it "
                 "holds d out / d node of the latest call only)", RTOL, ATOL)


@pytest.mark.points(1)
def test_deep_chain_does_not_hit_the_recursion_limit(impl):
    x = impl.Value(0.5)
    total = x
    for _ in range(5000):
        total = total + x
    try:
        total.backward()
    except RecursionError:
        raise AssertionError("backward on a chain of 5000 additions raised RecursionError: "
                             "build the topological order with an explicit stack, not "
                             "recursion (Python stops at ~1000 nested calls)") from None
    assert x.grad == pytest.approx(5001.0), (
        f"x summed 5001 times: dx should be 5001, got {x.grad}")


def _alive_after(build_and_use) -> bool:
    """Whether a graph's output survives `del` with the cycle collector off."""
    gc.collect()
    gc.disable()
    try:
        probe = weakref.ref(build_and_use())
        return probe() is not None
    finally:
        gc.enable()


@pytest.mark.points(2)
def test_graph_is_freed_without_the_cycle_collector(impl):
    def graph():
        a = impl.Value(0.8)
        hidden = (a * a + 1.0).tanh()
        return (hidden * a).exp() - hidden.relu()

    def sorted_only():
        out = graph()
        out.topological_order()
        return out

    def with_backward():
        out = graph()
        out.backward()
        return out

    if _alive_after(sorted_only):
        raise AssertionError(
            "after `del`, a graph whose topological_order() had been computed was still alive "
            "(nothing else had run). The usual cause is a nested function that calls itself, "
            "as micrograd's build_topo does: it refers to itself through its closure, a "
            "reference cycle that keeps the function, the list and set it closes over, and "
            "so every node, alive until Python's slow cycle collector runs. Build the order "
            "with an explicit stack in a loop (no nested recursive function), as the "
            "docstring asks.")
    assert not _alive_after(graph) and not _alive_after(with_backward), (
        "after `del`, the nodes of a finished graph were still alive: something forms a "
        "reference cycle, e.g. a _backward closure that refers to its own output node, or a "
        "list of nodes cached on a node. Cycles are freed only by Python's slow cycle "
        "collector, which made micrograd's moons demo ~6x slower. Store the local "
        "derivatives as numbers and keep no node lists on the nodes.")


# --- the neural network ---------------------------------------------------------------------

def torch_forward(model, X):
    """Scores of a torch copy of `model` on X, and the torch parameters in parameters() order."""
    params, h = [], torch.tensor(X, dtype=F64)
    for k, layer in enumerate(model.layers):
        W = torch.tensor([[w.data for w in n.w] for n in layer.neurons], dtype=F64,
                         requires_grad=True)
        b = torch.tensor([n.b.data for n in layer.neurons], dtype=F64, requires_grad=True)
        params.append((W, b))
        h = h @ W.T + b
        if k < len(model.layers) - 1:
            h = torch.relu(h)
    return h, params


def torch_grads_in_order(params):
    return [g for W, b in params for j in range(len(b))
            for g in [*W.grad[j].tolist(), float(b.grad[j])]]


@pytest.mark.points(1)
def test_mlp_parameters_count_and_order(impl):
    model = impl.MLP(2, [16, 16, 1], rng=random.Random(0))
    params = model.parameters()
    assert len(params) == 2 * 16 + 16 + 16 * 16 + 16 + 16 + 1 == 337, (
        f"MLP(2, [16, 16, 1]) has (2+1)*16 + (16+1)*16 + (16+1)*1 = 337 parameters, "
        f"parameters() returned {len(params)}")
    first = model.layers[0].neurons[0]
    assert params[0] is first.w[0] and params[2] is first.b, (
        "parameters() should list layer by layer, neuron by neuron, the weights then the bias")
    assert len({id(p) for p in params}) == 337, "parameters() lists some Value twice"


@pytest.mark.points(2)
def test_mlp_forward_and_backward_match_torch(impl, rng):
    model = impl.MLP(3, [5, 4, 1], rng=random.Random(1))
    X = rng.normal(size=(6, 3)).tolist()
    scores = [model(x) for x in X]
    loss = sum(((s - 0.5) ** 2 for s in scores), impl.Value(0.0))
    t_scores, params = torch_forward(model, X)
    t_loss = ((t_scores[:, 0] - 0.5) ** 2).sum()
    assert_close([s.data for s in scores], t_scores[:, 0].detach(),
                 "MLP scores (ReLU on hidden layers, linear output)", RTOL, ATOL)
    model.zero_grad()
    loss.backward()
    t_loss.backward()
    assert_close([p.grad for p in model.parameters()], torch_grads_in_order(params),
                 "gradients of sum((score - 0.5)^2) w.r.t. parameters()", RTOL, ATOL)


@pytest.mark.points(1)
def test_hinge_loss_matches_its_formula(impl):
    model = impl.MLP(2, [4, 1], rng=random.Random(2))
    X, y = make_moons(n_samples=12, noise=0.1, random_state=0)
    y = 2 * y - 1
    loss, acc = impl.hinge_loss(model, X.tolist(), y.tolist(), alpha=1e-2)
    t_scores, params = torch_forward(model, X.tolist())
    s = t_scores[:, 0]
    t_y = torch.tensor(y, dtype=F64)
    expected = torch.relu(1 - t_y * s).mean() + 1e-2 * sum((W ** 2).sum() + (b ** 2).sum()
                                                           for W, b in params)
    assert_close(loss.data, expected.detach(), "hinge_loss: mean relu(1 - y*s) + alpha * "
                 "sum(p^2)", RTOL, ATOL)
    expected_acc = float(((s > 0) == (t_y > 0)).double().mean())
    assert acc == pytest.approx(expected_acc), f"accuracy: expected {expected_acc}, got {acc}"


@pytest.mark.points(2)
def test_training_separates_a_small_moons_sample(impl):
    # A smaller version of the 100-point demo (which is in tools/benchmarks/s12_autograd.py)
    X, y = make_moons(n_samples=20, noise=0.1, random_state=3)
    y = 2 * y - 1
    model = impl.MLP(2, [8, 8, 1], rng=random.Random(3))
    history = impl.train(model, X.tolist(), y.tolist(), steps=50)
    assert len(history) == 50, f"train(steps=50) should return 50 records, got {len(history)}"
    loss, acc = impl.hinge_loss(model, X.tolist(), y.tolist())
    assert acc == 1.0 and loss.data < 0.1 * history[0][0], (
        f"50 SGD steps on 20 moons points should reach 100% training accuracy (it takes ~20 "
        f"steps) and cut the loss 10x; got accuracy {acc:.2f}, loss {history[0][0]:.3f} -> "
        f"{loss.data:.3f}. Check zero_grad before backward, the sign of the update "
        "(p.data -= lr * p.grad) and the learning-rate schedule.")
    assert math.isfinite(loss.data)
