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

@pytest.mark.points(3)
def test_lenet_learns_digits(impl):
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X.reshape(-1, 1, 8, 8), y, test_size=0.25,
                                              random_state=0, stratify=y)
    mu, sd = X_tr.mean(), X_tr.std()  # standardise with training statistics (s00)
    X_tr, X_te = (X_tr - mu) / sd, (X_te - mu) / sd
    model = impl.LeNet(seed=0)
    history = impl.train(model, X_tr, y_tr, seed=0)
    acc = float(np.mean(model.forward(X_te).argmax(axis=1) == y_te))
    assert acc >= 0.97, (
        f"the given LeNet, trained with your conv2d and max-pool, reached {acc:.3f} test "
        f"accuracy on 8x8 digits (loss {history[0]:.3f} -> {history[-1]:.3f}); >= 0.97 "
        "expected. The layer tests above pin down which function is wrong.")
