"""s12 · Autograd: a scalar ``Value`` that remembers how it was made, and backward for free.

You build
    Value                  a float that records its inputs and local derivatives, so that
                           ``loss.backward()`` fills ``.grad`` of every Value loss depends on
    Neuron, Layer, MLP     a tiny neural network made of Values, with ``parameters()``
    hinge_loss, train      the micrograd moons demo: max-margin loss + L2, plain SGD

In s11 you wrote every layer's backward pass by hand. Here each *primitive* operation knows
its own local derivative and the chain rule composes them over any expression you write:
what ``torch.autograd`` does, on Python floats (a batch is a Python loop: slow, but every
gradient is inspectable). The lab explains the design at length and lists what you
should be able to explain.

The math
    Every operation out = f(a, b) records its children and its local derivatives:
        a + b   -> (1, 1)           a * b   -> (b, a)           a ** n  -> (n * a ** (n-1),)
        exp(a)  -> (exp(a),)        log(a)  -> (1 / a,)         tanh(a) -> (1 - tanh(a)**2,)
        relu(a) -> (1 if a > 0 else 0,)
    Compound operations use the primitives: -a = a * -1, a - b = a + (-b), a / b = a * b ** -1.
    backward() visits the nodes in REVERSE topological order (consumers before their inputs)
    and, for every edge node -> child, does  child.grad += local_derivative * node.grad
    (``+=``: a node used along several paths receives the sum of their contributions).
    Local derivatives are plain numbers, not micrograd's closures: no reference cycles, so
    ``train`` can pause the cycle collector (the lab's section 3 measures why).
"""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Sequence


class Value:
    """A scalar in a computation graph: ``data``, ``grad`` and how it was computed."""

    __slots__ = ("data", "grad", "_prev", "_local", "_op", "__weakref__")

    def __init__(self, data: float, _children: tuple[Value, ...] = (),
                 _local: tuple[float, ...] = (), _op: str = "") -> None:
        self.data = float(data)
        self.grad = 0.0
        self._prev = _children  # the Values this one was computed from
        self._local = _local    # d self / d child, one float per child, same order
        self._op = _op          # for printing and drawing the graph

    def __repr__(self) -> str:
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"

    @staticmethod
    def lift(x: Value | float) -> Value:
        """Wrap a plain number as a constant leaf; a Value is returned unchanged."""
        return x if isinstance(x, Value) else Value(x)

    # --- primitives: forward value and local derivatives side by side --------------------

    def __add__(self, other: Value | float) -> Value:
        """out = self + other; d out/d self = 1, d out/d other = 1."""
        other = Value.lift(other)
        # BEGIN SOLUTION: return Value(sum, (self, other), local derivatives, "+")
        return Value(self.data + other.data, (self, other), (1.0, 1.0), "+")
        # END SOLUTION

    def __mul__(self, other: Value | float) -> Value:
        """out = self * other; d out/d self = other, d out/d other = self."""
        other = Value.lift(other)
        # BEGIN SOLUTION: return the product with local derivatives (other, self)
        return Value(self.data * other.data, (self, other), (other.data, self.data), "*")
        # END SOLUTION

    def __pow__(self, n: float) -> Value:
        """out = self ** n for a constant int/float n; d out/d self = n * self ** (n - 1)."""
        if not isinstance(n, (int, float)):
            raise TypeError("only a constant (int or float) exponent is supported")
        if self.data < 0 and not float(n).is_integer():
            raise ValueError(f"{self.data} ** {n} is not a real number")
        # BEGIN SOLUTION: forward self.data ** n; local derivative n * self.data ** (n - 1)
        return Value(self.data ** n, (self,), (n * self.data ** (n - 1),), f"**{n:g}")
        # END SOLUTION

    def exp(self) -> Value:
        """out = e ** self; d out/d self = out."""
        # BEGIN SOLUTION: the derivative of exp is exp itself
        e = math.exp(self.data)
        return Value(e, (self,), (e,), "exp")
        # END SOLUTION

    def log(self) -> Value:
        """out = ln(self) for self > 0; d out/d self = 1 / self."""
        if self.data <= 0:
            raise ValueError(f"log of a non-positive number {self.data}")
        # BEGIN SOLUTION: natural log; local derivative 1 / self.data
        return Value(math.log(self.data), (self,), (1.0 / self.data,), "log")
        # END SOLUTION

    def tanh(self) -> Value:
        """out = tanh(self); d out/d self = 1 - out ** 2."""
        # BEGIN SOLUTION: compute t = math.tanh(self.data); local derivative 1 - t ** 2
        t = math.tanh(self.data)
        return Value(t, (self,), (1.0 - t * t,), "tanh")
        # END SOLUTION

    def relu(self) -> Value:
        """out = max(0, self); d out/d self = 1 if self > 0 else 0 (0 at exactly 0, as torch)."""
        # BEGIN SOLUTION: forward max(0, x); the gradient passes only where x > 0
        return Value(max(0.0, self.data), (self,), (float(self.data > 0),), "relu")
        # END SOLUTION

    # --- compound operations, written with the primitives above -------------------------

    def __neg__(self) -> Value:
        """-self, as self * -1."""
        # BEGIN SOLUTION: multiply by -1
        return self * -1.0
        # END SOLUTION

    def __sub__(self, other: Value | float) -> Value:
        """self - other, as self + (-other)."""
        # BEGIN SOLUTION: add the negation
        return self + (-Value.lift(other))
        # END SOLUTION

    def __truediv__(self, other: Value | float) -> Value:
        """self / other, as self * other ** -1."""
        # BEGIN SOLUTION: multiply by the reciprocal, other ** -1
        return self * Value.lift(other) ** -1
        # END SOLUTION

    __radd__ = __add__  # 2 + v is v + 2
    __rmul__ = __mul__  # 2 * v is v * 2

    def __rsub__(self, other: float) -> Value:  # 2 - v
        return Value.lift(other) - self

    def __rtruediv__(self, other: float) -> Value:  # 2 / v
        return Value.lift(other) / self

    # --- backpropagation ------------------------------------------------------------------

    def topological_order(self) -> list[Value]:
        """Every Value this one depends on (itself included), each once, inputs before outputs.

        Use an explicit stack, not recursion: a chain of 10,000 additions (a long sum) is
        deeper than Python's recursion limit.
        """
        # BEGIN SOLUTION: iterative depth-first search; append a node after all its children
        order, visited = [], {self}
        stack = [(self, iter(self._prev))]  # (node, its children not yet looked at)
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in visited:  # descend into the first unvisited child
                    visited.add(child)
                    stack.append((child, iter(child._prev)))
                    break
            else:  # every child is in order already: the node can follow them
                stack.pop()
                order.append(node)
        return order
        # END SOLUTION

    def backward(self) -> None:
        """Fill ``.grad`` of everything this Value depends on with d self / d node.

        Interior nodes (those with children) are reset to 0 first; leaves accumulate (+=),
        so two calls add the gradient twice to the leaves, like torch. Then self.grad += 1
        and, in reverse topological order, every node passes local * node.grad to its children.
        """
        # BEGIN SOLUTION: reset interior grads, seed 1, chain rule in reverse topological order
        order = self.topological_order()
        for node in order:
            if node._prev:
                node.grad = 0.0
        self.grad += 1.0
        for node in reversed(order):
            for child, local in zip(node._prev, node._local, strict=True):
                child.grad += local * node.grad
        # END SOLUTION


class Module:
    """Anything with parameters: a Neuron, a Layer, an MLP."""

    def parameters(self) -> list[Value]:
        return []

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0


class Neuron(Module):
    """out = act(sum_i w_i * x_i + b): ReLU if ``nonlin`` else linear (the output layer)."""

    def __init__(self, nin: int, nonlin: bool = True, rng: random.Random | None = None):
        rng = rng if rng is not None else random.Random(0)
        self.w = [Value(rng.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0.0)
        self.nonlin = nonlin

    def __call__(self, x: Sequence[Value | float]) -> Value:
        # BEGIN SOLUTION: weighted sum plus bias, then relu if nonlin
        act = self.b
        for wi, xi in zip(self.w, x, strict=True):
            act = act + wi * xi
        return act.relu() if self.nonlin else act
        # END SOLUTION

    def parameters(self) -> list[Value]:
        """The weights, then the bias."""
        # BEGIN SOLUTION: w followed by b
        return [*self.w, self.b]
        # END SOLUTION


class Layer(Module):
    """``nout`` independent Neurons reading the same input."""

    def __init__(self, nin: int, nout: int, nonlin: bool = True,
                 rng: random.Random | None = None):
        rng = rng if rng is not None else random.Random(0)
        self.neurons = [Neuron(nin, nonlin, rng) for _ in range(nout)]

    def __call__(self, x: Sequence[Value | float]) -> list[Value]:
        # BEGIN SOLUTION: one output per neuron
        return [n(x) for n in self.neurons]
        # END SOLUTION

    def parameters(self) -> list[Value]:
        """Every neuron's parameters, neuron by neuron."""
        # BEGIN SOLUTION: concatenate the neurons' parameter lists in order
        return [p for n in self.neurons for p in n.parameters()]
        # END SOLUTION


class MLP(Module):
    """Layers of sizes nin -> nouts[0] -> ... -> nouts[-1]; ReLU everywhere but the last."""

    def __init__(self, nin: int, nouts: Sequence[int], rng: random.Random | None = None):
        rng = rng if rng is not None else random.Random(0)
        sizes = [nin, *nouts]
        self.layers = [Layer(sizes[i], sizes[i + 1], nonlin=i != len(nouts) - 1, rng=rng)
                       for i in range(len(nouts))]

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        """The last layer's outputs; a single Value when the last layer has one neuron."""
        # BEGIN SOLUTION: feed x through every layer; unwrap a single output
        for layer in self.layers:
            x = layer(x)
        return x[0] if len(x) == 1 else x
        # END SOLUTION

    def parameters(self) -> list[Value]:
        # BEGIN SOLUTION: every layer's parameters, first layer first
        return [p for layer in self.layers for p in layer.parameters()]
        # END SOLUTION


def hinge_loss(model: MLP, X: Sequence[Sequence[float]], y: Sequence[float],
               alpha: float = 1e-4) -> tuple[Value, float]:
    """(loss, accuracy) for labels y in {-1, +1} and scores s_i = model(X[i]).

    loss = (1/n) sum_i relu(1 - y_i * s_i) + alpha * sum_p p ** 2  (max-margin + L2);
    accuracy = fraction of points with sign(s_i) == y_i (a score of exactly 0 counts as -1).
    """
    # BEGIN SOLUTION: mean of relu(1 - y*s) plus alpha * sum of squared parameters
    scores = [model([float(v) for v in xi]) for xi in X]
    margins = [(1 - float(yi) * si).relu() for yi, si in zip(y, scores, strict=True)]
    data_loss = sum(margins, Value(0.0)) * (1.0 / len(margins))
    reg_loss = sum((p * p for p in model.parameters()), Value(0.0)) * alpha
    correct = sum((si.data > 0) == (yi > 0) for yi, si in zip(y, scores, strict=True))
    accuracy = correct / len(scores)
    return data_loss + reg_loss, accuracy
    # END SOLUTION


def train(model: MLP, X: Sequence[Sequence[float]], y: Sequence[float], steps: int = 100,
          lr0: float = 1.0, alpha: float = 1e-4) -> list[tuple[float, float]]:
    """Full-batch SGD; step k uses lr = lr0 * (1 - 0.9 * k / steps). Returns (loss, accuracy)
    measured before each update (k = 0 .. steps - 1)."""
    history: list[tuple[float, float]] = []
    collector_was_on = gc.isenabled()
    gc.disable()  # see the module docstring: no cycles, so reference counting frees each graph
    try:
        # BEGIN SOLUTION: per step: loss, zero_grad, backward, p.data -= lr * p.grad, record
        for k in range(steps):
            loss, acc = hinge_loss(model, X, y, alpha)
            model.zero_grad()
            loss.backward()
            lr = lr0 * (1.0 - 0.9 * k / steps)
            for p in model.parameters():
                p.data -= lr * p.grad
            history.append((loss.data, acc))
        # END SOLUTION
    finally:
        if collector_was_on:
            gc.enable()
    return history
