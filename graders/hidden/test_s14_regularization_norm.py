"""Hidden graders for s14: other shapes, scales and hyper-parameters against torch; BatchNorm's
train / eval contract; dropout edge cases; early stopping with min_delta."""

import numpy as np
import pytest
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from graders.helpers import assert_close, assert_finite
from graders.test_s14_regularization_norm import (
    ATOL,
    F64,
    RTOL,
    check_norm_layer,
    torch_norm_run,
)

ONE_BUG = {"report_multiple_bugs": False,
           "phases": (Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink)}


@pytest.mark.points(2)
@settings(max_examples=12, deadline=None, **ONE_BUG)
@given(lead=st.lists(st.integers(1, 4), min_size=1, max_size=3), D=st.integers(2, 9),
       scale=st.sampled_from([1e-3, 1.0, 1e3]), eps=st.sampled_from([1e-5, 1e-3]),
       seed=st.integers(0, 10**6))
def test_layernorm_random_shapes_match_torch(impl, lead, D, scale, eps, seed):
    rng = np.random.default_rng(seed)
    shape = (*lead, D)
    x = rng.normal(size=shape) * scale + rng.normal()
    dout = rng.normal(size=shape)
    ln = impl.LayerNorm(D, eps=eps)
    ln.gamma, ln.beta = rng.normal(size=D), rng.normal(size=D)
    y = ln.forward(x)
    dx = ln.backward(dout)
    expected = torch_norm_run(torch.nn.LayerNorm(D, eps=eps, dtype=F64), x, ln.gamma,
                              ln.beta, dout)
    # inputs of scale 1e-3 with eps 1e-3 have outputs ~0.03: relative error stays ~1e-14
    check_norm_layer(ln, y, dx, expected, f"LayerNorm({D}, eps={eps}) on shape {shape}, "
                     f"input scale {scale}")


@pytest.mark.points(2)
@pytest.mark.parametrize("momentum,eps,N", [(0.3, 1e-3, 5), (0.01, 1e-5, 2)])
def test_batchnorm_other_settings_match_torch(impl, rng, momentum, eps, N):
    C = 5
    bn = impl.BatchNorm1d(C, eps=eps, momentum=momentum)
    tbn = torch.nn.BatchNorm1d(C, eps=eps, momentum=momentum, dtype=F64)
    bn.gamma, bn.beta = rng.normal(size=C), rng.normal(size=C)
    for step in range(4):
        x = rng.normal(size=(N, C)) * rng.uniform(0.1, 5, size=C)
        dout = rng.normal(size=(N, C))
        train = step < 3
        tbn.zero_grad()
        y = bn.forward(x, train=train)
        dx = bn.backward(dout)
        expected = torch_norm_run(tbn, x, bn.gamma, bn.beta, dout, train=train)
        check_norm_layer(bn, y, dx, expected, f"BatchNorm1d(momentum={momentum}, eps={eps}) "
                         f"with batches of {N}, {'train' if train else 'eval'} step {step}")
        assert_close(bn.running_var, tbn.running_var, "running_var", RTOL, ATOL)


@pytest.mark.points(1)
def test_batchnorm_eval_output_of_a_sample_does_not_depend_on_its_batch(impl, rng):
    bn = impl.BatchNorm1d(3)
    for _ in range(3):
        bn.forward(rng.normal(size=(16, 3)), train=True)
    sample = rng.normal(size=(1, 3))
    alone = bn.forward(sample, train=False)
    batch = np.vstack([sample, rng.normal(5.0, 2.0, size=(7, 3))])
    together = bn.forward(batch, train=False)[:1]
    assert_close(together, alone, "in eval mode, one sample's output with or without other "
                 "samples in the batch (eval uses running statistics only)", 1e-12, 1e-15)


@pytest.mark.points(1)
def test_batchnorm_first_running_var_is_unbiased(impl):
    bn = impl.BatchNorm1d(1, momentum=1.0)  # momentum 1: running stats = the last batch's
    bn.forward(np.array([[0.0], [2.0]]), train=True)
    assert_close(bn.running_var, [2.0], "running_var after one batch [0, 2] with momentum 1 "
                 "(unbiased variance: ((0-1)^2 + (2-1)^2) / (2 - 1) = 2, not 1)", 1e-12, 0)
    assert_close(bn.running_mean, [1.0], "running_mean after the batch [0, 2]", 1e-12, 0)


@pytest.mark.points(1)
def test_norms_stay_finite_on_large_offsets(impl, rng):
    x = 1e6 + rng.normal(size=(4, 6))
    ln, bn = impl.LayerNorm(6), impl.BatchNorm1d(6)
    for name, y in (("LayerNorm", ln.forward(x)), ("BatchNorm", bn.forward(x, train=True))):
        assert_finite(y, f"{name} of inputs around 1e6")
        assert np.abs(y).max() < 10, f"{name} of inputs around 1e6 should be O(1)"


@pytest.mark.points(1)
def test_dropout_with_p_zero_and_high_p(impl):
    x = np.full((300, 300), 1.5)
    out = impl.Dropout(0.0, rng=np.random.default_rng(3)).forward(x, train=True)
    assert_close(out, x, "Dropout(p=0) in train mode (nothing dropped, scale 1)", 0, 0)
    p, n = 0.9, x.size
    out = impl.Dropout(p, rng=np.random.default_rng(4)).forward(x, train=True)
    # std of the mean = 1.5 * sqrt(p / (1 - p) / n) = 0.015; allow 5 of them
    assert abs(out.mean() - 1.5) < 5 * 1.5 * np.sqrt(p / (1 - p) / n), (
        f"Dropout(0.9): mean {out.mean():.4f}, expected ~1.5 (kept entries scale by 10)")


@pytest.mark.points(1)
def test_dropout_mask_is_independent_of_the_values(impl, rng):
    x = rng.normal(size=(200, 200))
    out = impl.Dropout(0.5, rng=np.random.default_rng(5)).forward(x, train=True)
    dropped = out == 0
    assert abs(dropped[x > 0].mean() - dropped[x < 0].mean()) < 0.03, (
        "positive and negative inputs should be dropped equally often")


@pytest.mark.points(2)
def test_early_stopping_with_min_delta(impl):
    stopper = impl.EarlyStopping(patience=2, min_delta=0.05)
    w = {"W": np.array([0.0])}
    decisions = []
    for loss in [1.0, 0.97, 0.96, 0.94, 0.80, 0.78, 0.77]:
        w["W"] += 1
        decisions.append(stopper.step(loss, w))
        if decisions[-1]:
            break
    # epoch 1 (0.97) and 2 (0.96) are within 0.05 of 1.0: no improvement -> stop at epoch 2
    assert decisions == [False, False, True], (
        f"with min_delta=0.05 and patience 2, losses 1.0, 0.97, 0.96 improve by less than "
        f"0.05 on the best: stop at the 3rd epoch; decisions were {decisions}")
    assert stopper.best_epoch == 0 and stopper.best_weights["W"][0] == 1.0, (
        f"best epoch should stay 0 (weights W=1), got {stopper.best_epoch}")


@pytest.mark.points(1)
def test_early_stopping_counter_resets_on_improvement(impl):
    stopper = impl.EarlyStopping(patience=2)
    w = {"W": np.zeros(3)}
    decisions = [stopper.step(loss, w) for loss in [3.0, 3.1, 2.0, 2.5, 1.0, 1.1, 1.2]]
    assert decisions == [False, False, False, False, False, False, True], (
        f"patience 2 with losses 3.0, 3.1, 2.0, 2.5, 1.0, 1.1, 1.2: only the 7th epoch ends "
        f"two non-improving epochs in a row; got {decisions}")
    assert stopper.best_loss == 1.0 and stopper.best_epoch == 4


@pytest.mark.points(1)
def test_dropout_eval_forward_forgets_the_last_train_mask(impl, rng):
    drop = impl.Dropout(0.5, rng=np.random.default_rng(6))
    x = rng.normal(size=(8, 9))
    drop.forward(x, train=True)
    out = drop.forward(x, train=False)
    dout = rng.normal(size=x.shape)
    assert_close(out, x, "Dropout eval forward after a train forward", 0, 0)
    assert_close(drop.backward(dout), dout, "Dropout backward after train forward, then eval "
                 "forward: the eval pass is the identity, so its backward must be too (an "
                 "eval forward must drop the mask left by the train pass)", 0, 0)


@pytest.mark.points(1)
def test_early_stopping_needs_more_than_min_delta(impl):
    stopper = impl.EarlyStopping(patience=1, min_delta=0.25)
    w = {"W": np.zeros(2)}
    assert stopper.step(1.0, w) is False
    # 0.75 is exactly best - min_delta: not an improvement "by more than min_delta"
    assert stopper.step(0.75, w) is True, (
        "EarlyStopping(patience=1, min_delta=0.25): after 1.0, a loss of exactly 0.75 improves "
        "by exactly min_delta, not MORE than it, so it is not an improvement and training "
        "should stop (val_loss < best_loss - min_delta, strictly)")
    assert stopper.best_epoch == 0 and stopper.best_loss == 1.0


@pytest.mark.points(1)
def test_restore_writes_into_the_same_arrays(impl):
    W = np.zeros((2, 3))
    weights = {"W": W}
    stopper = impl.EarlyStopping(patience=2)
    W += 5.0
    stopper.step(0.5, weights)
    W += 1.0
    stopper.step(0.9, weights)
    stopper.restore(weights)
    assert weights["W"] is W and np.all(W == 5.0), (
        "restore must write the best values INTO the arrays the model holds (W[...] = best): "
        "replacing the dict entry leaves the model's own array at its last values")


@pytest.mark.points(1)
def test_batchnorm_running_stats_follow_the_momentum_convention(impl):
    bn = impl.BatchNorm1d(2, momentum=0.3)
    x = np.array([[1.0, 4.0], [3.0, 8.0], [5.0, 0.0]])
    bn.forward(x, train=True)
    assert_close(bn.running_mean, 0.7 * 0.0 + 0.3 * x.mean(axis=0), "running_mean after one "
                 "train batch with momentum 0.3 (torch: (1 - momentum) * old + momentum * "
                 "batch)", 1e-12, 1e-15)
    assert_close(bn.running_var, 0.7 * 1.0 + 0.3 * x.var(axis=0, ddof=1), "running_var after "
                 "one train batch with momentum 0.3 (unbiased batch variance)", 1e-12, 1e-15)
