"""Public graders for s08 SVM: hinge loss and subgradient, Pegasos, kernels, SMO."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs, make_circles, make_moons
from sklearn.metrics import hinge_loss as sk_hinge_loss
from sklearn.metrics.pairwise import polynomial_kernel as sk_poly
from sklearn.metrics.pairwise import rbf_kernel as sk_rbf
from sklearn.svm import SVC

from graders.helpers import assert_close, check_shape, gradcheck


def _signs_away_from_the_kink(rng, n=40, d=5):
    """Data, labels in {-1, +1} and (w, b) such that no margin is within 0.05 of the kink."""
    X = rng.normal(size=(n, d))
    w, b = rng.normal(size=d), 0.3
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    margins = y * (X @ w + b)
    keep = np.abs(margins - 1) > 0.05
    return X[keep], y[keep], w, b


# --- hinge loss and its subgradient -------------------------------------------------------

@pytest.mark.points(1)
def test_hinge_loss_matches_the_formula(impl, rng):
    X, y, w, b = _signs_away_from_the_kink(rng)
    lam = 0.3
    expected = lam / 2 * w @ w + sk_hinge_loss(y, X @ w + b)
    got = impl.hinge_loss(w, b, X, y, lam)
    # the same float64 sums in another order: only rounding differs
    assert_close(got, expected, "hinge_loss(w, b, X, y, lam) = lam/2 ||w||^2 + mean hinge",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.points(2)
def test_hinge_subgradient_matches_finite_differences(impl, rng):
    X, y, w, b = _signs_away_from_the_kink(rng)
    lam = 0.5
    theta = np.concatenate([w, [b]])  # gradcheck perturbs this array in place

    def objective():
        return impl.hinge_loss(theta[:-1], theta[-1], X, y, lam)

    grad_w, grad_b = impl.hinge_subgradient(w, b, X, y, lam)
    check_shape(grad_w, w.shape, "grad_w from hinge_subgradient")
    # away from every kink J is smooth, so the smooth-function threshold applies
    gradcheck(objective, theta, np.concatenate([grad_w, [grad_b]]),
              "hinge_subgradient (w and b together; no margin is near 1)")


@pytest.mark.points(1)
def test_confident_samples_do_not_pull_on_w(impl, rng):
    X = rng.normal(size=(200, 3))
    w, b = np.array([4.0, -3.0, 2.0]), 0.2
    X = X[np.abs(X @ w + b) >= 3]  # every margin y f is at least 3
    y = np.sign(X @ w + b)
    lam = 0.1
    grad_w, grad_b = impl.hinge_subgradient(w, b, X, y, lam)
    # only the regulariser remains: lam * w exactly, and no bias pull
    assert_close(grad_w, lam * w, "grad_w when every sample has margin y f >= 3 (only lam*w "
                 "remains: samples beyond the margin have zero hinge and zero subgradient)",
                 rtol=1e-12, atol=1e-12)
    assert abs(grad_b) < 1e-12, f"grad_b should be 0 when no sample is active, got {grad_b}"


# --- Pegasos --------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_pegasos_reaches_the_primal_optimum(impl):
    X, y = make_blobs(300, centers=[[-1, -1], [1, 1]], cluster_std=1.2, random_state=0)
    s = np.where(y == 1, 1.0, -1.0)
    lam = 0.05
    svm = impl.LinearSVM(lam=lam, n_epochs=50, batch_size=32, seed=0).fit(X, y)
    ref = SVC(kernel="linear", C=1.0 / (lam * len(y))).fit(X, y)  # the same objective, exactly
    opt = lam / 2 * ref.coef_[0] @ ref.coef_[0] + sk_hinge_loss(s, ref.decision_function(X))
    ours = lam / 2 * svm.coef_ @ svm.coef_ + sk_hinge_loss(s, X @ svm.coef_ + svm.intercept_)
    # Pegasos is stochastic: 50 epochs bring it within a few per cent of the exact optimum
    assert ours <= 1.03 * opt, (
        f"Pegasos ends at J = {ours:.4f}, the exact optimum (from SVC with C = 1/(lam n)) is "
        f"{opt:.4f}. Check eta_t = 1/(lam t), the lam*w term and the sign of the y_i x_i term.")
    hist = np.asarray(svm.objective_history_)
    check_shape(hist, (50,), "objective_history_ (one value per epoch)")
    assert hist[-1] < hist[0], "the objective should go down over the epochs"


# --- kernels --------------------------------------------------------------------------------

@pytest.mark.points(2)
def test_kernels_match_sklearn(impl, rng):
    X, Z = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    check_shape(impl.linear_kernel(X, Z), (7, 5), "linear_kernel(X (7, 3), Z (5, 3))")
    # float64 products and exp: only rounding differs
    assert_close(impl.linear_kernel(X, Z), X @ Z.T, "linear_kernel", rtol=1e-12, atol=1e-12)
    assert_close(impl.polynomial_kernel(X, Z, degree=3, gamma=0.5, coef0=2.0),
                 sk_poly(X, Z, degree=3, gamma=0.5, coef0=2.0),
                 "polynomial_kernel(degree=3, gamma=0.5, coef0=2)", rtol=1e-10, atol=1e-12)
    assert_close(impl.rbf_kernel(X, Z, gamma=0.3), sk_rbf(X, Z, gamma=0.3),
                 "rbf_kernel(gamma=0.3) = exp(-gamma ||x - z||^2)", rtol=1e-9, atol=1e-12)


@pytest.mark.points(1)
def test_rbf_gram_matrix_is_a_valid_kernel(impl, rng):
    X = rng.normal(size=(25, 4)) * 2.0
    K = impl.rbf_kernel(X, X, gamma=0.2)
    assert_close(K, K.T, "rbf_kernel(X, X) must be symmetric", rtol=0, atol=1e-12)
    assert_close(np.diag(K), np.ones(25), "the diagonal of rbf_kernel(X, X): exp(0) = 1",
                 rtol=0, atol=1e-10)
    lowest = np.linalg.eigvalsh(K).min()
    # a Gram matrix is positive semi-definite; -1e-10 allows eigen-solver round-off
    assert lowest > -1e-10, f"rbf_kernel(X, X) has a negative eigenvalue {lowest:.3g}"


# --- SMO and the kernel SVM -----------------------------------------------------------------

@pytest.mark.points(2)
def test_hard_margin_support_vectors_on_separable_data(impl):
    X, y = make_blobs(40, centers=[[-2, -2], [2, 2]], cluster_std=0.8, random_state=0)
    svm = impl.KernelSVM(C=1e4, kernel="linear").fit(X, y)
    ref = SVC(C=1e4, kernel="linear").fit(X, y)
    assert sorted(svm.support_.tolist()) == sorted(ref.support_.tolist()), (
        f"support vectors: yours are rows {sorted(svm.support_.tolist())}, the maximum-margin "
        f"ones are {sorted(ref.support_.tolist())}")
    w = svm.dual_coef_ @ svm.support_vectors_
    s = np.where(y == 1, 1.0, -1.0)
    yf = s * svm.decision_function(X)
    # SMO stops at tol = 1e-3 on the KKT gap: margins agree to about 1e-2
    assert np.all(yf > 1 - 1e-2), f"a sample is inside the hard margin: min y f = {yf.min():.4f}"
    assert_close(yf[svm.support_], np.ones(len(svm.support_)),
                 "y f(x) on the support vectors (they sit exactly on the margin)", atol=1e-2)
    assert_close(2 / np.linalg.norm(w), 2 / np.linalg.norm(ref.coef_[0]),
                 "the margin width 2 / ||w||", rtol=1e-2)


@pytest.mark.points(2)
def test_rbf_solves_circles_where_linear_fails(impl):
    X, y = make_circles(200, noise=0.08, factor=0.4, random_state=1)
    Xtr, ytr, Xte, yte = X[:150], y[:150], X[150:], y[150:]
    rbf = impl.KernelSVM(C=1.0, kernel="rbf", gamma=1.0).fit(Xtr, ytr)
    lin = impl.LinearSVM(lam=0.01, n_epochs=20, seed=0).fit(Xtr, ytr)
    acc_rbf = float((rbf.predict(Xte) == yte).mean())
    acc_lin = float((lin.predict(Xte) == yte).mean())
    assert acc_rbf >= 0.95, f"the RBF SVM should separate two circles; test accuracy {acc_rbf}"
    assert acc_lin <= 0.75, (
        f"a linear SVM cannot separate concentric circles, yet it scored {acc_lin}")


@pytest.mark.points(2)
def test_kernel_svm_matches_sklearn_svc(impl):
    X, y = make_moons(200, noise=0.25, random_state=0)
    Xtr, ytr, Xte, yte = X[:150], y[:150], X[150:], y[150:]
    svm = impl.KernelSVM(C=1.0, kernel="rbf", gamma=0.7).fit(Xtr, ytr)
    ref = SVC(C=1.0, kernel="rbf", gamma=0.7).fit(Xtr, ytr)
    ours = float((svm.predict(Xte) == yte).mean())
    theirs = ref.score(Xte, yte)
    assert ours >= theirs - 0.02, f"accuracy {ours:.3f} vs scikit-learn SVC {theirs:.3f}"
    # both solve the same dual to the same KKT tolerance 1e-3
    assert_close(svm.decision_function(Xte), ref.decision_function(Xte),
                 "decision_function vs sklearn SVC (same C, gamma)", atol=2e-2)
    assert abs(len(svm.support_) - len(ref.support_)) <= 2, (
        f"{len(svm.support_)} support vectors, SVC has {len(ref.support_)}")


@pytest.mark.points(1)
def test_predict_returns_the_original_labels(impl):
    X, y = make_blobs(60, centers=[[-2, 0], [2, 0]], cluster_std=0.7, random_state=2)
    labels = np.array(["cat", "dog"])[y]
    for model in (impl.LinearSVM(lam=0.01, n_epochs=10), impl.KernelSVM(C=1.0, kernel="rbf")):
        pred = model.fit(X, labels).predict(X)
        acc = float((pred == labels).mean())
        assert acc >= 0.95, (
            f"{type(model).__name__} on labels 'cat' / 'dog' gets training accuracy {acc}: map "
            "classes_[1] to +1 when fitting and f(x) > 0 back to classes_[1]")
        f = model.decision_function(X)
        assert np.mean((f > 0) == (labels == "dog")) >= 0.95, (
            f"{type(model).__name__}: decision_function should be positive for classes_[1]")


# --- exact loops, the kink, options ----------------------------------------------------------

def pegasos_reference(X, s, lam, n_epochs, batch_size, seed):
    """The documented Pegasos loop, written independently: (w, b, objective after each epoch)."""
    n, d = X.shape
    rng = np.random.default_rng(seed)
    w, b, t, history = np.zeros(d), 0.0, 0, []
    for _ in range(n_epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            t += 1
            eta = 1.0 / (lam * t)
            Xb, sb = X[idx], s[idx]
            active = sb * (Xb @ w + b) < 1
            grad_w = lam * w - (sb[active, None] * Xb[active]).sum(0) / len(idx)
            grad_b = -sb[active].sum() / len(idx)
            w, b = w - eta * grad_w, b - eta * grad_b
            norm = np.sqrt(w @ w)
            if norm > 1.0 / np.sqrt(lam):
                w = w * (1.0 / np.sqrt(lam) / norm)
        history.append(lam / 2 * w @ w + np.maximum(0.0, 1.0 - s * (X @ w + b)).mean())
    return w, b, np.array(history)


@pytest.mark.points(2)
def test_pegasos_equals_the_documented_loop(impl, rng):
    X = rng.normal(size=(30, 3)) + np.array([3.0, -2.0, 0.5])  # off the origin: b matters
    labels = np.where(X[:, 0] - X[:, 1] + 0.5 * rng.normal(size=30) > 5, "pos", "neg")
    s = np.where(labels == "pos", 1.0, -1.0)  # classes_ = ["neg", "pos"]: "pos" is +1
    for lam, n_epochs, batch_size, seed in ((0.1, 3, 7, 4), (2.0, 2, 30, 0), (0.05, 2, 1, 9)):
        svm = impl.LinearSVM(lam=lam, n_epochs=n_epochs, batch_size=batch_size,
                             seed=seed).fit(X, labels)
        w, b, history = pegasos_reference(X, s, lam, n_epochs, batch_size, seed)
        where = f"LinearSVM(lam={lam}, n_epochs={n_epochs}, batch_size={batch_size}, seed={seed})"
        # the same float64 updates in the same order: only summation order differs
        assert_close(svm.coef_, w, f"{where}.coef_ vs the documented loop: each epoch one "
                     "rng.permutation(n) from default_rng(seed), batches in that order (the last "
                     "one shorter), t counting every update of the fit, eta = 1/(lam t), the "
                     "batch's mean subgradient, then w projected onto ||w|| <= 1/sqrt(lam)",
                     rtol=1e-9, atol=1e-12)
        assert_close(svm.intercept_, b, f"{where}.intercept_ (b steps by -eta * grad_b and is "
                     "not projected)", rtol=1e-9, atol=1e-12)
        assert_close(svm.objective_history_, history, f"{where}.objective_history_ (J on the "
                     "whole training set after each epoch, penalty included)", rtol=1e-9,
                     atol=1e-12)
        # b is far from 0 here, so a wrong sign or operator on the intercept shows
        assert_close(svm.decision_function(X), X @ w + b, f"{where}.decision_function(X) = "
                     "X @ coef_ + intercept_", rtol=1e-9, atol=1e-12)


@pytest.mark.points(1)
def test_a_margin_of_exactly_one_is_not_active(impl):
    X = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.5, 0.0]])
    y = np.array([1.0, 1.0, -1.0, 1.0])
    w, b = np.array([1.0, -1.0]), 0.0  # margins exactly 1, 2, 1 and 0.5
    grad_w, grad_b = impl.hinge_subgradient(w, b, X, y, 0.25)
    # only the last sample (margin 0.5 < 1) is active; margins of exactly 1 take subgradient 0
    assert_close(grad_w, 0.25 * w - np.array([0.5, 0.0]) / 4, "grad_w with margins exactly "
                 "1, 2, 1, 0.5: at the kink (y f = 1) the hinge contributes 0, so only the "
                 "sample with margin 0.5 is active", rtol=1e-12, atol=1e-15)
    assert_close(grad_b, -1.0 / 4, "grad_b with margins 1, 2, 1, 0.5", rtol=1e-12, atol=1e-15)
    assert_close(impl.hinge_loss(w, b, X, y, 0.25), 0.25 / 2 * 2 + 0.5 / 4,
                 "hinge_loss with margins 1, 2, 1, 0.5 (lam/2 ||w||^2 + mean hinge)",
                 rtol=1e-12, atol=1e-15)


@pytest.mark.points(1)
def test_kernel_defaults_and_far_away_points(impl, rng):
    X, Z = rng.normal(size=(6, 3)), rng.normal(size=(4, 3))
    # float64 products: only rounding differs
    assert_close(impl.polynomial_kernel(X, Z), sk_poly(X, Z, degree=3, gamma=1.0, coef0=1.0),
                 "polynomial_kernel(X, Z) with its defaults degree=3, gamma=1, coef0=1",
                 rtol=1e-10, atol=1e-12)
    assert_close(impl.rbf_kernel(X, Z), sk_rbf(X, Z, gamma=1.0), "rbf_kernel's default gamma=1",
                 rtol=1e-9, atol=1e-12)
    # ||x||^2 ~ 3e9 for points 1e-3 apart: the expansion cancels badly (negative before clipping)
    far = np.random.default_rng(0).normal(size=(12, 30)) * 1e-3 + 1e4
    K = impl.rbf_kernel(far, far, gamma=0.5)
    assert K.max() <= 1.0, (
        f"rbf_kernel of points far from the origin has an entry {K.max()!r} > 1: "
        "||x||^2 + ||z||^2 - 2 x.z can come out slightly negative there; clip it at 0 before exp")
