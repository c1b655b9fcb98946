"""Public graders for s14 regularisation and normalisation: torch.nn as the oracle for
LayerNorm / BatchNorm1d (forward, backward, running statistics, eval mode), finite-difference
gradient checks, statistical tests of dropout, and early stopping."""

import numpy as np
import pytest
import torch

from graders.helpers import assert_close, check_shape, gradcheck

F64 = torch.float64
# float64 on both sides with the same formulas in a different order: ~1e-15 relative.
RTOL, ATOL = 1e-10, 1e-12


def torch_norm_run(module, x, gamma, beta, dout, train=True):
    """Forward + backward of a float64 torch norm module: (y, dx, dgamma, dbeta)."""
    with torch.no_grad():
        module.weight.copy_(torch.tensor(gamma))
        module.bias.copy_(torch.tensor(beta))
    module.train(train)
    tx = torch.tensor(x, requires_grad=True)
    y = module(tx)
    y.backward(torch.tensor(dout))
    return y.detach(), tx.grad, module.weight.grad, module.bias.grad


def check_norm_layer(ours, y, dx, t_result, what):
    ty, tdx, tdgamma, tdbeta = t_result
    assert_close(y, ty, f"{what}: forward output", RTOL, ATOL)
    assert_close(dx, tdx, f"{what}: dL/dx from backward", RTOL, ATOL)
    assert_close(ours.dgamma, tdgamma, f"{what}: dgamma", RTOL, ATOL)
    assert_close(ours.dbeta, tdbeta, f"{what}: dbeta", RTOL, ATOL)


# --- dropout --------------------------------------------------------------------------------

@pytest.mark.points(1)
def test_dropout_is_the_identity_in_eval_mode(impl, rng):
    x = rng.normal(size=(5, 7))
    drop = impl.Dropout(0.5, rng=np.random.default_rng(0))
    out = drop.forward(x, train=False)
    assert_close(out, x, "Dropout(0.5).forward(x, train=False) (eval: no dropping, no "
                 "scaling)", 0, 0)
    dout = rng.normal(size=(5, 7))
    assert_close(drop.backward(dout), dout, "backward after an eval-mode forward", 0, 0)


@pytest.mark.points(2)
def test_dropout_keeps_the_expectation(impl):
    p, n = 0.3, 100_000
    x = np.full((400, 250), 2.0)
    out = impl.Dropout(p, rng=np.random.default_rng(1)).forward(x, train=True)
    check_shape(out, x.shape, "dropout output")
    zero_share = float(np.mean(out == 0))
    # 5 standard deviations of a Bernoulli share over n = 100,000 draws: ~0.0072
    assert abs(zero_share - p) < 5 * np.sqrt(p * (1 - p) / n), (
        f"Dropout(p=0.3) zeroed {zero_share:.4f} of the entries, expected ~0.3: drop each "
        "entry with probability p")
    kept = out[out != 0]
    assert_close(kept, np.full(kept.shape, 2.0 / (1 - p)), "the entries that were kept "
                 "(inverted dropout scales them by 1 / (1 - p) so that E[out] = x)", 1e-12, 0)
    # E[out] = 2; std of the mean = 2 * sqrt(p / (1 - p) / n) ~ 0.0041; allow 5 of them
    assert abs(out.mean() - 2.0) < 5 * 2.0 * np.sqrt(p / (1 - p) / n), (
        f"the mean of dropout(x = 2) is {out.mean():.4f}, expected ~2: without the "
        "1 / (1 - p) scale the expectation shrinks to (1 - p) * x")


@pytest.mark.points(1)
def test_dropout_backward_uses_the_forward_mask(impl, rng):
    x = rng.uniform(0.5, 1.5, size=(30, 20))
    p = 0.4
    drop = impl.Dropout(p, rng=np.random.default_rng(2))
    out = drop.forward(x, train=True)
    dout = rng.normal(size=x.shape)
    keep = out != 0  # the mask the forward pass drew (x is never 0 here)
    dx = drop.backward(dout)
    forward_ok = np.allclose(out[keep], x[keep] / (1 - p), rtol=1e-12)
    try:
        assert_close(dx, dout * keep / (1 - p), "Dropout backward (the upstream gradient "
                     "through the SAME mask and 1 / (1 - p) scale as the forward pass)",
                     1e-12, 1e-15)
    except AssertionError as exc:
        if forward_ok:
            raise
        ratio = float(np.median(out[keep] / x[keep]))
        raise AssertionError(
            f"the forward pass already fails: its kept entries are x * {ratio:.4g} instead "
            f"of x / (1 - p) = x * {1 / (1 - p):.4g}, so this backward failure follows from "
            f"it. Fix forward first (see test_dropout_keeps_the_expectation); backward must "
            f"then use the same mask and scale. ({exc})") from None


@pytest.mark.points(1)
def test_dropout_is_reproducible_and_draws_new_masks(impl):
    x = np.ones((20, 20))
    a = impl.Dropout(0.5, rng=np.random.default_rng(7)).forward(x)
    b = impl.Dropout(0.5, rng=np.random.default_rng(7)).forward(x)
    drop = impl.Dropout(0.5, rng=np.random.default_rng(7))
    first, second = drop.forward(x), drop.forward(x)
    assert np.array_equal(a, b), "two Dropouts with equally seeded rngs gave different masks"
    assert not np.array_equal(first, second), (
        "two forward passes drew the same mask: draw a fresh mask from self.rng every call")


# --- L2 weight decay --------------------------------------------------------------------------

@pytest.mark.points(1)
def test_l2_penalty_value_gradient_and_sgd_equivalence(impl, rng):
    Ws = [rng.normal(size=(4, 3)), rng.normal(size=5)]
    loss, grads = impl.l2_penalty(Ws, 0.01)
    assert loss == pytest.approx(0.005 * sum(float((W ** 2).sum()) for W in Ws), rel=1e-12), (
        "l2_penalty value: (weight_decay / 2) * sum of squared weights")
    gradcheck(lambda: impl.l2_penalty(Ws, 0.01)[0], Ws[0], grads[0], "l2_penalty gradient")
    tWs = [torch.tensor(W, requires_grad=True) for W in Ws]
    (0.005 * sum((tW ** 2).sum() for tW in tWs)).backward()
    for k, (gk, tW) in enumerate(zip(grads, tWs, strict=True)):
        assert_close(gk, tW.grad, f"l2_penalty gradient {k} vs torch autograd", 1e-12, 1e-15)
    g = rng.normal(size=(4, 3))
    assert_close(Ws[0] - 0.1 * (g + grads[0]), (1 - 0.1 * 0.01) * Ws[0] - 0.1 * g,
                 "an SGD step on loss + l2_penalty (it must equal weight decay: "
                 "W <- (1 - lr * wd) W - lr * g)", 1e-12, 1e-15)


# --- LayerNorm --------------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 5)])
def test_layernorm_matches_torch(impl, rng, shape):
    D = shape[-1]
    x = rng.normal(1.0, 3.0, size=shape)
    dout = rng.normal(size=shape)
    ln = impl.LayerNorm(D)
    ln.gamma, ln.beta = rng.normal(size=D), rng.normal(size=D)
    y = ln.forward(x)
    dx = ln.backward(dout)
    expected = torch_norm_run(torch.nn.LayerNorm(D, dtype=F64), x, ln.gamma, ln.beta, dout)
    check_norm_layer(ln, y, dx, expected, f"LayerNorm({D}) on shape {shape}")


@pytest.mark.points(2)
def test_layernorm_gradcheck(impl, rng):
    x = rng.normal(size=(3, 5))
    R = rng.normal(size=(3, 5))
    ln = impl.LayerNorm(5)
    ln.gamma, ln.beta = rng.normal(size=5), rng.normal(size=5)

    def f():
        return float(np.sum(ln.forward(x) * R))

    ln.forward(x)
    dx = ln.backward(R)
    gradcheck(f, x, dx, "LayerNorm dL/dx (mean and variance depend on every x)")
    gradcheck(f, ln.gamma, ln.dgamma, "LayerNorm dL/dgamma")
    gradcheck(f, ln.beta, ln.dbeta, "LayerNorm dL/dbeta")


@pytest.mark.points(1)
def test_layernorm_eps_inside_the_sqrt_for_nearly_constant_rows(impl, rng):
    x = 3.0 + 1e-3 * rng.normal(size=(4, 8))  # variance ~1e-6, comparable to eps = 1e-5
    x[0] = 3.0  # an exactly constant row must give beta, not NaN
    ln = impl.LayerNorm(8)
    y = ln.forward(x)
    expected = torch_norm_run(torch.nn.LayerNorm(8, dtype=F64), x, ln.gamma, ln.beta,
                              np.ones_like(x))[0]
    assert_close(y, expected, "LayerNorm of rows with tiny variance (divide by "
                 "sqrt(var + eps): eps goes INSIDE the square root, as torch)", RTOL, ATOL)


# --- BatchNorm --------------------------------------------------------------------------------

@pytest.mark.points(3)
def test_batchnorm_train_mode_matches_torch_including_running_stats(impl, rng):
    C = 4
    bn = impl.BatchNorm1d(C)
    tbn = torch.nn.BatchNorm1d(C, dtype=F64)
    bn.gamma, bn.beta = rng.normal(size=C), rng.normal(size=C)
    for step in range(3):
        x = rng.normal(2.0, 1.5, size=(8, C))
        dout = rng.normal(size=(8, C))
        y = bn.forward(x, train=True)
        dx = bn.backward(dout)
        tbn.zero_grad()
        expected = torch_norm_run(tbn, x, bn.gamma, bn.beta, dout, train=True)
        check_norm_layer(bn, y, dx, expected, f"BatchNorm1d train mode, batch {step + 1}")
        assert_close(bn.running_mean, tbn.running_mean, f"running_mean after {step + 1} "
                     "train batches (momentum 0.1)", RTOL, ATOL)
        assert_close(bn.running_var, tbn.running_var, f"running_var after {step + 1} train "
                     "batches (torch stores the UNBIASED batch variance, var * N / (N - 1), "
                     "while normalising with the biased one)", RTOL, ATOL)


@pytest.mark.points(2)
def test_batchnorm_eval_mode_uses_running_stats(impl, rng):
    C = 3
    bn = impl.BatchNorm1d(C)
    tbn = torch.nn.BatchNorm1d(C, dtype=F64)
    bn.gamma, bn.beta = rng.normal(size=C), rng.normal(size=C)
    for _ in range(4):
        x = rng.normal(-1.0, 2.0, size=(10, C))
        bn.forward(x, train=True)
        torch_norm_run(tbn, x, bn.gamma, bn.beta, np.zeros_like(x), train=True)
    x = rng.normal(3.0, 0.5, size=(6, C))  # a shifted batch: batch stats would hide the shift
    dout = rng.normal(size=(6, C))
    tbn.zero_grad()
    y = bn.forward(x, train=False)
    dx = bn.backward(dout)
    expected = torch_norm_run(tbn, x, bn.gamma, bn.beta, dout, train=False)
    check_norm_layer(bn, y, dx, expected, "BatchNorm1d eval mode (normalise with "
                     "running_mean / running_var, not the batch's statistics)")
    assert_close(bn.running_mean, tbn.running_mean, "running_mean after an eval forward (eval "
                 "must not update it)", RTOL, ATOL)


@pytest.mark.points(2)
def test_batchnorm_gradcheck_train_mode(impl, rng):
    x = rng.normal(size=(6, 3))
    R = rng.normal(size=(6, 3))
    bn = impl.BatchNorm1d(3)
    bn.gamma, bn.beta = rng.normal(size=3), rng.normal(size=3)

    def f():
        return float(np.sum(bn.forward(x, train=True) * R))

    bn.forward(x, train=True)
    dx = bn.backward(R)
    gradcheck(f, x, dx, "BatchNorm train-mode dL/dx (the batch mean and variance depend on "
              "every sample: their gradient terms are needed)")
    gradcheck(f, bn.gamma, bn.dgamma, "BatchNorm dL/dgamma")


# --- early stopping ---------------------------------------------------------------------------

@pytest.mark.points(3)
def test_early_stopping_stops_after_patience_and_restores_the_best(impl):
    losses = [1.0, 0.8, 0.7, 0.75, 0.72, 0.71, 0.9, 0.5]
    weights = {"W": np.zeros((2, 2)), "b": np.zeros(2)}
    stopper = impl.EarlyStopping(patience=3)
    stopped_at = None
    for epoch, loss in enumerate(losses):
        weights["W"] += 1.0  # training updates the arrays IN PLACE
        weights["b"] -= 1.0
        if stopper.step(loss, weights):
            stopped_at = epoch
            break
    assert stopped_at == 5, (
        f"validation losses {losses[:6]}: the best is epoch 2 (0.7); epochs 3, 4, 5 do not "
        f"improve, so with patience 3 training stops at epoch 5. It stopped at {stopped_at}.")
    assert stopper.best_epoch == 2 and stopper.best_loss == pytest.approx(0.7), (
        f"best epoch / loss: expected 2 / 0.7, got {stopper.best_epoch} / {stopper.best_loss}")
    assert_close(stopper.best_weights["W"], np.full((2, 2), 3.0), "best_weights['W'] (a COPY "
                 "taken at epoch 2, when W was 3; storing the live array would give the "
                 "last weights)", 0, 0)
    stopper.restore(weights)
    assert_close(weights["W"], np.full((2, 2), 3.0), "weights['W'] after restore (written "
                 "back in place)", 0, 0)
    assert_close(weights["b"], np.full(2, -3.0), "weights['b'] after restore", 0, 0)
