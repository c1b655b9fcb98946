"""graders/helpers.py messages a learner reads: shapes as Python writes them, numbers with
enough digits to differ, and sentences instead of pytest's bare failures."""

import numpy as np
import pytest

from graders import helpers


def test_shapes_are_written_as_python_tuples():
    with pytest.raises(AssertionError, match=r"expected shape \(3,\), got \(2,\)"):
        helpers.check_shape(np.zeros(2), (3,), "DivergenceError.history")
    with pytest.raises(AssertionError, match=r"expected shape \(\), got \(1,\)"):
        helpers.check_shape(np.zeros(1), (), "a scalar")


def test_unequal_numbers_differ_on_screen():
    a, e = 0.13573022, 0.13573022 + 2.28e-9
    shown, wanted = helpers.fmt_pair(a, e)
    assert shown != wanted and float(shown) == pytest.approx(a, rel=1e-9)
    assert helpers.fmt_pair(1.5, 1.5) == ("1.5", "1.5")
    with pytest.raises(AssertionError) as info:
        helpers.assert_close(np.array([a]), np.array([e]), "x", rtol=1e-10, atol=0)
    assert f"is {shown} where {wanted} was expected" in str(info.value)


def test_return_type_and_return_self_messages():
    with pytest.raises(AssertionError, match="transform must return a NumPy array, got list"):
        helpers.expect_array([[1.0]], "Standardizer.transform")
    with pytest.raises(AssertionError, match="must return a 2-D array, got 1-D"):
        helpers.expect_array(np.zeros(3), "f", ndim=2)

    class Model:
        def fit(self):
            pass

    m = Model()
    with pytest.raises(AssertionError, match=r"Model.fit must end with `return self`.*got None"):
        helpers.expect_self(m.fit(), m, "Model.fit")
    helpers.expect_self(m, m, "Model.fit")


def test_expect_raises_says_which_call_and_why():
    err = helpers.expect_raises(ValueError, lambda: int("x"), "int('x')", "not a number")
    assert isinstance(err, ValueError)
    with pytest.raises(AssertionError) as info:
        helpers.expect_raises(ZeroDivisionError, lambda: 1.0, "f(lr=5)", "lr is too large")
    assert str(info.value) == ("f(lr=5) should have raised ZeroDivisionError (lr is too "
                               "large), but it returned normally: 1.0")
