"""Hidden graders for s15 CNN: invariants and random shapes the public tests do not show."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.helpers import assert_close, gradcheck, overfit_tiny_batch

torch = pytest.importorskip("torch")
F = torch.nn.functional


@st.composite
def conv_geometry(draw):
    """A random but valid (N, C, H, W, F, kh, kw, stride, padding)."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding = draw(st.integers(0, min(kh, kw) // 2))
    H, W = draw(st.integers(kh, 8)), draw(st.integers(kw, 8))
    return (draw(st.integers(1, 3)), draw(st.integers(1, 3)), H, W, draw(st.integers(1, 3)),
            kh, kw, draw(st.integers(1, 3)), padding)


@settings(max_examples=20, deadline=None)
@given(geo=conv_geometry(), seed=st.integers(0, 2**16))
@pytest.mark.points(2)
def test_col2im_is_the_adjoint_of_im2col(impl, geo, seed):
    """<im2col(x), c> == <x, col2im(c)>: col2im must be exactly im2col's transpose."""
    N, C, H, W, _, kh, kw, stride, padding = geo
    gen = np.random.default_rng(seed)
    x = gen.normal(size=(N, C, H, W))
    cols = impl.im2col(x, kh, kw, stride, padding)
    c = gen.normal(size=cols.shape)
    back = impl.col2im(c, (N, C, H, W), kh, kw, stride, padding)
    lhs, rhs = float(np.sum(cols * c)), float(np.sum(x * back))
    # two float64 sums of the same products in different orders
    assert abs(lhs - rhs) <= 1e-9 * (1 + abs(lhs)), (
        f"for x of shape {(N, C, H, W)}, kernel {kh}x{kw}, stride {stride}, padding {padding}: "
        f"<im2col(x), c> = {lhs:.10g} but <x, col2im(c)> = {rhs:.10g}. col2im must add every "
        "value back to the pixel im2col copied it from (and ignore the padding).")


@settings(max_examples=20, deadline=None)
@given(geo=conv_geometry(), seed=st.integers(0, 2**16))
@pytest.mark.points(2)
def test_conv2d_matches_torch_on_random_shapes(impl, geo, seed):
    N, C, H, W, Fo, kh, kw, stride, padding = geo
    gen = np.random.default_rng(seed)
    x, Wt, b = gen.normal(size=(N, C, H, W)), gen.normal(size=(Fo, C, kh, kw)), gen.normal(size=Fo)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, Wt, b))
    ref = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
    dout = gen.normal(size=tuple(ref.shape))
    ref.backward(torch.tensor(dout))
    out, cache = impl.conv2d_forward(x, Wt, b, stride, padding)
    dx, dW, db = impl.conv2d_backward(dout, cache)
    what = f"x {(N, C, H, W)}, W {(Fo, C, kh, kw)}, stride {stride}, padding {padding}"
    # float64 sums of at most a few hundred products: rounding only
    assert_close(out, ref.detach().numpy(), f"conv2d_forward, {what}", rtol=1e-9, atol=1e-11)
    assert_close(dx, xt.grad.numpy(), f"conv2d_backward dx, {what}", rtol=1e-9, atol=1e-11)
    assert_close(dW, wt.grad.numpy(), f"conv2d_backward dW, {what}", rtol=1e-9, atol=1e-11)
    assert_close(db, bt.grad.numpy(), f"conv2d_backward db, {what}", rtol=1e-9, atol=1e-11)


@pytest.mark.points(1)
def test_conv2d_is_translation_equivariant(impl, rng):
    """Stride 1: shifting the image (inside a zero border) shifts the feature map alike."""
    x = np.zeros((1, 2, 12, 12))
    x[:, :, 3:7, 2:6] = rng.normal(size=(1, 2, 4, 4))
    W, b = rng.normal(size=(3, 2, 3, 3)), np.zeros(3)
    out, _ = impl.conv2d_forward(x, W, b, 1, 1)
    shifted, _ = impl.conv2d_forward(np.roll(x, (2, 3), axis=(2, 3)), W, b, 1, 1)
    # the same products, moved: rounding only
    assert_close(shifted, np.roll(out, (2, 3), axis=(2, 3)), "conv2d of a shifted image vs "
                 "the shifted conv2d output (weight sharing: every position uses the same "
                 "filter)", rtol=1e-12, atol=1e-12)


@pytest.mark.points(1)
def test_maxpool_backward_routes_each_gradient_to_its_argmax(impl, rng):
    x = rng.normal(size=(2, 2, 6, 6))
    out, cache = impl.maxpool2d_forward(x, 2, 2, 0)
    dout = rng.uniform(1.0, 2.0, size=out.shape)
    dx = impl.maxpool2d_backward(dout, cache)
    windows = x.reshape(2, 2, 3, 2, 3, 2)
    is_max = windows == windows.max(axis=(3, 5), keepdims=True)
    got = dx.reshape(2, 2, 3, 2, 3, 2)
    assert np.all(got[~is_max] == 0), (
        "max-pool backward gave gradient to inputs that were not the max of their window: "
        "only the argmax of each window took part in the output.")
    assert_close(got.sum(axis=(3, 5)), dout, "the gradient each 2x2 window receives in total "
                 "(all of dout, at one position)", rtol=1e-12, atol=0)


@pytest.mark.points(1)
def test_maxpool_passes_gradcheck(impl, rng):
    x = rng.normal(size=(2, 2, 5, 5))
    _, cache = impl.maxpool2d_forward(x, 3, 2, 1)
    dout = rng.normal(size=(2, 2, 3, 3))
    dx = impl.maxpool2d_backward(dout, cache)
    gradcheck(lambda: np.sum(impl.maxpool2d_forward(x, 3, 2, 1)[0] * dout), x, dx,
              "maxpool2d_backward: dx", kinks=True)  # max switches winner at ties


@pytest.mark.points(2)
def test_lenet_gradients_pass_gradcheck(impl, rng):
    model = impl.LeNet(seed=3)
    x, y = rng.normal(size=(3, 1, 8, 8)), np.array([1, 7, 4])

    def f():
        return impl.softmax_cross_entropy(model.forward(x), y)[0]

    _, dlogits = impl.softmax_cross_entropy(model.forward(x), y)
    model.backward(dlogits)
    for i, layer in enumerate(model.layers):
        for name, (p, g) in zip(("W", "b"), layer.params(), strict=False):
            gradcheck(f, p, g.copy(), f"LeNet layer {i} ({type(layer).__name__}) d{name}",
                      kinks=True, max_coords=20)  # ReLU and max-pool have kinks


@pytest.mark.points(1)
def test_lenet_overfits_a_tiny_batch(impl, rng):
    model = impl.LeNet(seed=1)
    x, y = rng.normal(size=(10, 1, 8, 8)), np.arange(10)
    overfit_tiny_batch(lambda: model.train_step(x, y, 0.05), steps=150, target=0.05,
                       what="LeNet on 10 random 8x8 images")


@pytest.mark.points(1)
def test_maxpool_ties_after_a_relu_go_to_the_first_position(impl, rng):
    """After a ReLU many windows are all 0: the whole gradient goes to the window's first
    position (row by row, as np.argmax picks), never split and never to a later one."""
    x = np.maximum(rng.normal(size=(2, 3, 6, 6)) - 0.8, 0.0)  # ~80% exact zeros
    x[0, 0, :2, :2] = 0.0  # at least one window entirely tied
    out, cache = impl.maxpool2d_forward(x, 2, 2, 0)
    dout = rng.uniform(1.0, 2.0, size=out.shape)
    dx = impl.maxpool2d_backward(dout, cache)
    windows = x.reshape(2, 3, 3, 2, 3, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 3, 3, 4)
    first = windows.argmax(axis=-1)  # np.argmax: the first maximum
    expected = np.zeros((2, 3, 3, 3, 4))
    np.put_along_axis(expected, first[..., None], dout[..., None], axis=-1)
    expected = expected.reshape(2, 3, 3, 3, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(x.shape)
    assert_close(dx, expected, "max-pool backward on a ReLU output with tied windows (all of "
                 "each window's gradient to its FIRST maximum, in row-major order, as "
                 "np.argmax)", atol=0)


@pytest.mark.points(1)
def test_conv2d_accepts_float32_and_integer_images(impl, rng):
    x64 = rng.integers(0, 17, size=(2, 1, 5, 5)).astype(np.float64)  # digits are 0..16
    W, b = rng.normal(size=(2, 1, 3, 3)), rng.normal(size=2)
    ref, _ = impl.conv2d_forward(x64, W, b, 1, 1)
    for x in (x64.astype(np.float32), x64.astype(np.int64)):
        out, _ = impl.conv2d_forward(x, W, b, 1, 1)
        # float32 inputs hold these small integers exactly; the products are float64
        assert_close(out, ref, f"conv2d_forward on {x.dtype} images vs the same float64 "
                     "images (copy the windows in the input's dtype, compute with W's)",
                     rtol=1e-6, atol=1e-6)


@pytest.mark.points(1)
def test_im2col_pads_with_the_fill_value(impl, rng):
    x = rng.normal(size=(1, 2, 3, 3))
    cols = impl.im2col(x, 2, 2, 1, 1, fill=7.5)
    ref = F.unfold(F.pad(torch.tensor(x), (1, 1, 1, 1), value=7.5), (2, 2)).transpose(1, 2)
    assert_close(cols, ref.reshape(-1, 8).numpy(), "im2col(x, 2, 2, stride=1, padding=1, "
                 "fill=7.5): the padded border holds the fill value (max-pool passes -inf)",
                 atol=0)
