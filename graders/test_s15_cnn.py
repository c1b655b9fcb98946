"""Public graders for s15 CNN: im2col, conv2d and max-pool against torch, and a LeNet on digits."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from graders.helpers import assert_close, check_shape, gradcheck

torch = pytest.importorskip("torch")
F = torch.nn.functional

# (stride, padding, kh, kw): plain, "same", strided with a non-square kernel, stride > kernel
CONV_CASES = [(1, 0, 3, 3), (1, 1, 3, 3), (2, 1, 3, 2), (3, 2, 2, 4)]
# (kernel, stride, padding): the usual 2x2/2, overlapping 3x3/2 with padding, overlapping 2x2/1
POOL_CASES = [(2, 2, 0), (3, 2, 1), (2, 1, 0)]


def _t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def _torch_conv(x, W, b, stride, padding, dout):
    xt, Wt, bt = _t(x, True), _t(W, True), _t(b, True)
    out = F.conv2d(xt, Wt, bt, stride=stride, padding=padding)
    out.backward(_t(dout))
    return out.detach().numpy(), xt.grad.numpy(), Wt.grad.numpy(), bt.grad.numpy()


def _conv_inputs(rng, stride, padding, kh, kw):
    x, W, b = rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(4, 3, kh, kw)), rng.normal(size=4)
    OH, OW = (7 + 2 * padding - kh) // stride + 1, (6 + 2 * padding - kw) // stride + 1
    return x, W, b, rng.normal(size=(2, 4, OH, OW))


def _case(c):
    return "stride={}, padding={}, kernel={}x{}".format(*c)


# --- im2col ---------------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.parametrize("case", CONV_CASES, ids=_case)
def test_im2col_matches_torch_unfold(impl, rng, case):
    stride, padding, kh, kw = case
    x = rng.normal(size=(2, 3, 7, 6))
    cols = impl.im2col(x, kh, kw, stride, padding)
    ref = F.unfold(_t(x), (kh, kw), padding=padding, stride=stride).transpose(1, 2)
    ref = ref.reshape(-1, 3 * kh * kw).numpy()
    check_shape(cols, ref.shape, f"im2col(x of shape (2, 3, 7, 6), {_case(case)})",
                "N * OH * OW, C * kh * kw")
    assert_close(cols, ref, f"im2col with {_case(case)} (rows ordered (n, i, j), columns "
                 "(c, u, v))", atol=0)  # a pure copy: exact


# --- conv2d -----------------------------------------------------------------------------------

@pytest.mark.points(3)
@pytest.mark.parametrize("case", CONV_CASES, ids=_case)
def test_conv2d_forward_matches_torch(impl, rng, case):
    x, W, b, dout = _conv_inputs(rng, *case)
    out, _ = impl.conv2d_forward(x, W, b, case[0], case[1])
    ref = _torch_conv(x, W, b, case[0], case[1], dout)[0]
    check_shape(out, ref.shape, f"conv2d_forward output with {_case(case)}", "N, F, OH, OW")
    # float64 sums of at most 3 * 3 * 4 products: rounding only
    assert_close(out, ref, f"conv2d_forward with {_case(case)} vs F.conv2d (a cross-"
                 "correlation: the filter is not flipped)", rtol=1e-10, atol=1e-12)


@pytest.mark.points(3)
@pytest.mark.parametrize("case", CONV_CASES, ids=_case)
def test_conv2d_backward_matches_torch_autograd(impl, rng, case):
    x, W, b, dout = _conv_inputs(rng, *case)
    _, cache = impl.conv2d_forward(x, W, b, case[0], case[1])
    dx, dW, db = impl.conv2d_backward(dout, cache)
    _, rdx, rdW, rdb = _torch_conv(x, W, b, case[0], case[1], dout)
    # float64 sums of a few hundred products: rounding only
    assert_close(dx, rdx, f"dx with {_case(case)} (col2im must ADD overlapping windows and "
                 "drop the padding)", rtol=1e-10, atol=1e-12)
    assert_close(dW, rdW, f"dW with {_case(case)}", rtol=1e-10, atol=1e-12)
    assert_close(db, rdb, f"db with {_case(case)} (sum over N, OH, OW)", rtol=1e-10,
                 atol=1e-12)


@pytest.mark.points(2)
def test_conv2d_backward_passes_gradcheck(impl, rng):
    """Central differences, independent of torch: L = sum(out * dout)."""
    x, W, b, dout = _conv_inputs(rng, 2, 1, 3, 2)
    _, cache = impl.conv2d_forward(x, W, b, 2, 1)
    dx, dW, db = impl.conv2d_backward(dout, cache)

    def f():
        return np.sum(impl.conv2d_forward(x, W, b, 2, 1)[0] * dout)

    gradcheck(f, x, dx, "conv2d_backward: dx")
    gradcheck(f, W, dW, "conv2d_backward: dW")
    gradcheck(f, b, db, "conv2d_backward: db")


# --- max-pool ---------------------------------------------------------------------------------

@pytest.mark.points(3)
@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: "kernel={}, stride={}, padding={}"
                         .format(*c))
def test_maxpool_forward_and_backward_match_torch(impl, rng, case):
    k, s, p = case
    x = rng.normal(size=(2, 3, 7, 6)) - 1.0  # mostly negative: -inf padding matters
    xt = _t(x, True)
    ref = F.max_pool2d(xt, k, s, p)
    dout = rng.normal(size=tuple(ref.shape))
    ref.backward(_t(dout))
    out, cache = impl.maxpool2d_forward(x, k, s, p)
    what = f"max-pool kernel={k}, stride={s}, padding={p}"
    # a max and a scatter: exact, except where torch adds two routed gradients (rounding)
    assert_close(out, ref.detach().numpy(), f"{what}: forward (pad with -inf, not 0)", atol=0)
    assert_close(impl.maxpool2d_backward(dout, cache), xt.grad.numpy(),
                 f"{what}: backward (each dout goes to its window's argmax; overlapping "
                 "windows add up)", rtol=1e-12, atol=1e-12)


# --- the network ------------------------------------------------------------------------------

def _lenet_weights(model):
    return [a for layer in model.layers if hasattr(layer, "W") for a in (layer.W, layer.b)]


def _torch_lenet(model):
    """A float64 torch copy of the given LeNet (same weights), as a list of callables."""
    params = [_t(p, True) for p in _lenet_weights(model)]
    W1, b1, W2, b2, W3, b3, W4, b4 = params

    def forward(x):
        h = F.max_pool2d(F.relu(F.conv2d(x, W1, b1, padding=1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, W2, b2, padding=1)), 2).flatten(1)
        h = F.relu(h @ W3.flatten(1).T + b3)
        return h @ W4.flatten(1).T + b4

    return forward, params


@pytest.fixture(scope="module")
def digits_run(impl):
    """One epoch of the given train() with your functions, and the same epoch in torch.

    One epoch, not the lab's 15 (which reach ~0.98 test accuracy): every one of its 84 SGD
    steps on the real digits must equal torch's, which a run of any length then inherits.
    Shared by the two tests below, so the training runs once per grading.
    """
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X.reshape(-1, 1, 8, 8), y, test_size=0.25,
                                              random_state=0, stratify=y)
    mu, sd = X_tr.mean(), X_tr.std()  # standardise with training statistics (s00)
    X_tr, X_te = (X_tr - mu) / sd, (X_te - mu) / sd
    model = impl.LeNet(seed=0)
    forward, params = _torch_lenet(model)
    epochs, lr, batch = 1, 0.05, 16
    history = impl.train(model, X_tr, y_tr, lr=lr, epochs=epochs, batch_size=batch, seed=0)
    gen, n_batches, t_history = np.random.default_rng(0), len(y_tr) // batch, []
    for epoch in range(epochs):  # the given train(), step for step
        order = gen.permutation(len(y_tr))[:n_batches * batch].reshape(n_batches, -1)
        losses = []
        for idx in order:
            loss = F.cross_entropy(forward(_t(X_tr[idx])), torch.as_tensor(y_tr[idx]))
            for p in params:
                p.grad = None
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p -= lr * (1 - epoch / epochs) * p.grad
            losses.append(loss.item())
        t_history.append(float(np.mean(losses)))
    return {"model": model, "history": history, "t_params": params, "t_history": t_history,
            "X_te": X_te, "y_te": y_te}


@pytest.mark.points(2)
def test_lenet_training_on_digits_follows_torch_step_for_step(impl, digits_run):
    run = digits_run
    # float64 on both sides; 84 SGD steps amplify rounding a little: ~1e-12 relative
    assert_close(run["history"], run["t_history"], "the mean loss of each epoch of the given "
                 "LeNet trained with your conv2d / max-pool vs the same LeNet in torch",
                 rtol=1e-8, atol=1e-10)
    mine = _lenet_weights(run["model"])
    for k, (p, tp) in enumerate(zip(mine, run["t_params"], strict=True)):
        assert_close(p, tp.detach().numpy(), f"LeNet parameter {k} after 1 epoch of SGD "
                     "(84 steps) vs torch: the layer tests above pin down which function "
                     "is wrong", rtol=1e-7, atol=1e-9)


@pytest.mark.points(1)
def test_lenet_learns_digits(impl, digits_run):
    run = digits_run
    acc = float(np.mean(run["model"].forward(run["X_te"]).argmax(axis=1) == run["y_te"]))
    # the reference reaches 0.884 after this one epoch (0.98 after the lab's 15)
    assert acc >= 0.8, (
        f"the given LeNet, trained 1 epoch with your conv2d and max-pool, reached {acc:.3f} "
        f"test accuracy on 8x8 digits (loss {run['history'][0]:.3f} -> "
        f"{run['history'][-1]:.3f}); >= 0.8 expected. The layer tests above pin down which "
        "function is wrong.")
