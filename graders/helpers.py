"""Grader helpers: one place for every check a grader makes, each failing with a message a
learner can act on (what was checked, what was expected, what came back, where to look).

Arrays may be NumPy arrays, torch tensors or MLX arrays; they are compared as float64 NumPy.
Every tolerance passed in by a grader should carry a one-line comment on why it is that value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "to_numpy", "check_shape", "assert_close", "assert_finite", "rel_error", "fmt_pair",
    "expect_array", "expect_self", "expect_raises",
    "numerical_gradient", "gradcheck", "overfit_tiny_batch", "assert_causal",
]


def to_numpy(x) -> np.ndarray:
    """float64 NumPy copy of a NumPy / torch / MLX array or a Python number."""
    if hasattr(x, "detach"):  # torch
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    return np.array(x, dtype=np.float64, copy=True)


def _fmt_shape(shape) -> str:
    """A shape as Python writes the tuple: (3,), (2, 5), ()."""
    return str(tuple(int(s) for s in shape))


def fmt_pair(actual: float, expected: float) -> tuple[str, str]:
    """Two numbers with just enough significant digits that unequal values differ on screen."""
    for digits in (8, 10, 12, 14, 17):
        a, e = f"{actual:.{digits}g}", f"{expected:.{digits}g}"
        if a != e or actual == expected:
            return a, e
    return repr(float(actual)), repr(float(expected))


def expect_array(value, what: str, ndim: int | None = None) -> np.ndarray:
    """`value` must be a NumPy array: "transform must return a NumPy array, got list"."""
    if not isinstance(value, np.ndarray):
        raise AssertionError(f"{what} must return a NumPy array, got {type(value).__name__}. "
                             "Build the result with NumPy operations (np.asarray(...) around a "
                             "list) so callers can index and broadcast it.")
    if ndim is not None and value.ndim != ndim:
        raise AssertionError(f"{what} must return a {ndim}-D array, got {value.ndim}-D with "
                             f"shape {_fmt_shape(value.shape)}")
    return value


def expect_raises(exc_type: type[BaseException], call: Callable[[], object], what: str,
                  why: str) -> BaseException:
    """Run call(); it must raise exc_type. Returns the exception for further checks.

    Fails with a sentence instead of pytest's bare "DID NOT RAISE": `what` names the call,
    `why` says why it should have raised.
    """
    try:
        result = call()
    except exc_type as exc:
        return exc
    shown = repr(result)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise AssertionError(f"{what} should have raised {exc_type.__name__} ({why}), but it "
                         f"returned normally: {shown}")


def expect_self(result, obj, method: str) -> None:
    """A fit-like method must `return self`, so calls can be chained (fit(X).predict(X))."""
    if result is not obj:
        got = "None" if result is None else f"a {type(result).__name__}"
        raise AssertionError(f"{method} must end with `return self` (the fitted object), got "
                             f"{got}. Chained calls such as {method}(...).transform(X) use it.")


def check_shape(actual, expected: Sequence[int], what: str, names: str | None = None) -> None:
    """Fail with "expected (B, T, C) = (2, 5, 8), got (2, 8, 5): did you transpose?"."""
    shape = tuple(getattr(actual, "shape", np.shape(actual)))
    expected = tuple(expected)
    if shape == expected:
        return
    label = f"({names}) = " if names else ""
    msg = f"{what}: expected shape {label}{_fmt_shape(expected)}, got {_fmt_shape(shape)}"
    if len(shape) == len(expected) and sorted(shape) == sorted(expected):
        msg += ": the same sizes in another order; did you transpose or swap axes?"
    elif len(shape) != len(expected):
        msg += f": {len(shape)} dimensions instead of {len(expected)}; "
        msg += "a reduction over the wrong axis, or a missing keepdims / reshape?"
    raise AssertionError(msg)


def assert_finite(actual, what: str) -> None:
    a = to_numpy(actual)
    bad = ~np.isfinite(a)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(a[idx]) else "inf"
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {a.size} values are not finite (first: {kind} at "
            f"index {idx}). Look for exp() of a large number, log(0) or a division by zero."
        )


def assert_close(actual, expected, what: str, rtol: float = 1e-7, atol: float = 1e-9) -> None:
    """Elementwise |actual - expected| <= atol + rtol * |expected|, naming the worst element."""
    a, e = to_numpy(actual), to_numpy(expected)
    check_shape(a, e.shape, what)
    assert_finite(a, what)
    err = np.abs(a - e)
    allowed = atol + rtol * np.abs(e)
    if np.all(err <= allowed):
        return
    worst = np.unravel_index(np.argmax(err - allowed), err.shape) if err.ndim else ()
    where = f" at index {tuple(int(i) for i in worst)}" if err.ndim else ""
    n_bad = int(np.sum(err > allowed))
    shown, wanted = fmt_pair(float(a[worst]), float(e[worst]))
    raise AssertionError(
        f"{what}: {n_bad} of {err.size} values differ from the expected ones; the worst"
        f"{where} is {shown} where {wanted} was expected "
        f"(difference {err[worst]:.3g}, tolerance {allowed[worst]:.3g})."
    )


def rel_error(a, b) -> float:
    """CS231n relative error on the whole array: ||a - b|| / max(1e-8, ||a|| + ||b||)."""
    a, b = to_numpy(a), to_numpy(b)
    return float(np.linalg.norm(a - b) / max(1e-8, np.linalg.norm(a) + np.linalg.norm(b)))


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5,
                       coords: Sequence[tuple[int, ...]] | None = None) -> np.ndarray:
    """Central differences of the scalar f() with respect to x (modified in place, restored).

    Only `coords` are evaluated when given (others are left 0): big tensors are checked on
    a random sample of coordinates, as CS231n recommends.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    for idx in coords if coords is not None else np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        f_plus = float(f())
        x[idx] = old - h
        f_minus = float(f())
        x[idx] = old
        grad[idx] = (f_plus - f_minus) / (2 * h)
    return grad


def gradcheck(f: Callable[[], float], x: np.ndarray, analytic, what: str, *,
              kinks: bool = False, max_coords: int = 60, seed: int = 0) -> float:
    """Compare an analytic gradient of the scalar f() w.r.t. x with central differences.

    x must be the float64 array f reads (it is perturbed in place). Relative error thresholds
    (CS231n): <= 1e-7 is good; we fail above 1e-6 for smooth functions (float64 central
    differences with h = 1e-5 are accurate to ~1e-9) and above 1e-4 where the function has
    kinks (ReLU, abs, max), whose finite differences can straddle the kink.
    """
    if x.dtype != np.float64:
        raise TypeError("gradcheck needs a float64 array: float32 differences are too noisy")
    g = to_numpy(analytic)
    check_shape(g, x.shape, f"{what} (gradient)")
    assert_finite(g, f"{what} (gradient)")
    coords = list(np.ndindex(x.shape))
    if len(coords) > max_coords:
        pick = np.random.default_rng(seed).choice(len(coords), max_coords, replace=False)
        coords = [coords[i] for i in sorted(pick)]
    numeric = numerical_gradient(f, x, coords=coords)
    sel = tuple(np.array(coords).T)
    err = rel_error(g[sel], numeric[sel])
    tol = 1e-4 if kinks else 1e-6
    if err > tol:
        diff = np.abs(g[sel] - numeric[sel])
        k = int(np.argmax(diff))
        raise AssertionError(
            f"{what}: the analytic gradient disagrees with finite differences (relative error "
            f"{err:.2e}, allowed {tol:.0e}). Worst at index {coords[k]}: yours "
            f"{g[sel][k]:.6g}, numerical {numeric[sel][k]:.6g}. Check the chain rule factor "
            "for this input, a missing 1/N for a mean, or a transposed matrix."
        )
    return err


def overfit_tiny_batch(train_step: Callable[[], float], steps: int, target: float,
                       what: str) -> list[float]:
    """Run `train_step` (one update, returns the loss) and require the loss to reach `target`.

    A model that cannot memorise a handful of examples has a bug in its forward pass, its
    gradients or its update, long before capacity or data matter.
    """
    losses = []
    for _ in range(steps):
        loss = float(train_step())
        if not np.isfinite(loss):
            raise AssertionError(f"{what}: the loss became {loss} after {len(losses)} steps; "
                                 "check the learning rate and the gradients' signs.")
        losses.append(loss)
    if losses[-1] > target:
        marks = [losses[int(i)] for i in np.linspace(0, len(losses) - 1, 5)]
        curve = " -> ".join(f"{v:.4g}" for v in marks)
        raise AssertionError(
            f"{what}: could not overfit a tiny batch: loss {curve} after {steps} steps, "
            f"target < {target}. A correct model memorises a few examples easily; look for "
            "a gradient with the wrong sign or scale, or parameters that are never updated."
        )
    return losses


def assert_causal(fn: Callable, x, what: str, axis: int = 1, positions: Sequence[int] = (),
                  atol: float = 1e-6) -> None:
    """Perturb the future, the past must not move: output[:, :t+1] depends only on x[:, :t+1].

    `fn` maps x (a NumPy array or torch tensor, time on `axis`) to an output with time on the
    same axis. Future positions are replaced by fresh random values (or random token ids for
    integer inputs). atol covers float32 reassociation noise; any real leak is far larger.
    """
    T = x.shape[axis]
    positions = positions or sorted({0, T // 2, T - 2})
    base = to_numpy(fn(x))
    rng = np.random.default_rng(1234)
    for t in positions:
        x2 = x.clone() if hasattr(x, "clone") else np.array(x, copy=True)
        future = [slice(None)] * x2.ndim
        future[axis] = slice(t + 1, None)
        future = tuple(future)
        shape = tuple(x2[future].shape)
        if str(x2.dtype).endswith(("int64", "int32", "long")):
            high = int(x.max()) + 1
            noise = rng.integers(0, max(2, high), size=shape)
        else:
            noise = rng.normal(size=shape) * 3.0
        if hasattr(x2, "clone"):  # torch
            import torch
            x2[future] = torch.as_tensor(noise, dtype=x2.dtype)
        else:
            x2[future] = noise
        out = to_numpy(fn(x2))
        past = [slice(None)] * out.ndim
        past[axis] = slice(0, t + 1)
        moved = np.abs(out[tuple(past)] - base[tuple(past)])
        if moved.max() > atol:
            where = np.unravel_index(np.argmax(moved), moved.shape)[axis]
            raise AssertionError(
                f"{what}: information leaks from the future. Changing positions > {t} moved the "
                f"output at position {int(where)} by {moved.max():.3g}. Position i may only "
                "attend to positions <= i: check the causal mask (which triangle, which "
                "diagonal) and that it is applied before the softmax."
            )
