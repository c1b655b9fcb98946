"""Unit tests of the framework pieces: stub generator, mutants, loader, helpers, data, labs."""

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from graders import helpers
from tools import fetch_data, hints, labs
from tools.contract import MutantError, apply_mutant
from tools.course import find_step
from tools.loader import ImplementationError, load_implementation
from tools.stubgen import StubError, make_stub

SOLUTION = textwrap.dedent('''\
    """Doc."""
    import numpy as np


    def double(x: np.ndarray) -> np.ndarray:
        """Return 2x."""
        if x is None:
            raise ValueError("x")
        # BEGIN SOLUTION: multiply by two
        y = 2 * x
        return y
        # END SOLUTION


    class Box:
        def size(self) -> int:
            # BEGIN SOLUTION
            return 3
            # END SOLUTION
    ''')


# --- stub generator ----------------------------------------------------------------------

def test_stub_replaces_regions_and_keeps_everything_else():
    stub = make_stub(SOLUTION, "s99_demo_step")
    assert 'raise NotImplementedError("s99 demo step: multiply by two")' in stub
    assert 'raise NotImplementedError("s99 demo step: implement size")' in stub
    assert "y = 2 * x" not in stub and "return 3" not in stub
    assert '"""Return 2x."""' in stub and 'raise ValueError("x")' in stub
    assert "BEGIN SOLUTION" not in stub and "END SOLUTION" not in stub


@pytest.mark.parametrize("bad, why", [
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "never closed"),
    ("def f():\n    return 1\n    # END SOLUTION\n", "without BEGIN"),
    ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", "inside a function"),
    ("def f():\n    return 1\n", "no BEGIN SOLUTION"),
])
def test_stub_generator_rejects_bad_markers(bad, why):
    with pytest.raises(StubError, match=why):
        make_stub(bad, "s99_demo")


def test_stub_messages_are_escaped():
    src = ('def f():\n    # BEGIN SOLUTION: use "quotes" and \\ backslash\n    pass\n'
           '    # END SOLUTION\n')
    ns: dict = {}
    exec(compile(make_stub(src, "s99_x"), "stub", "exec"), ns)
    with pytest.raises(NotImplementedError, match='use "quotes"'):
        ns["f"]()


# --- mutants ------------------------------------------------------------------------------

def _mutant(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(body)
    return path


def test_mutant_applies_exactly_once(tmp_path):
    src, desc = apply_mutant(SOLUTION, _mutant(tmp_path, 'description = "d"\n[[replace]]\n'
                                               'old = "y = 2 * x"\nnew = "y = 3 * x"\n'))
    assert "y = 3 * x" in src and desc == "d"


@pytest.mark.parametrize("old, why", [("return", "matches 2 places"), ("nothere", "matches 0")])
def test_stale_or_ambiguous_mutants_are_rejected(tmp_path, old, why):
    with pytest.raises(MutantError, match=why):
        apply_mutant(SOLUTION, _mutant(tmp_path, f'[[replace]]\nold = "{old}"\nnew = "x"\n'))


# --- loader: the graded code must come from the graded file --------------------------------

def test_loader_refuses_functions_imported_from_elsewhere(tmp_path):
    step = find_step("s00")
    fake = tmp_path / "s00_toolbox.py"
    fake.write_text(step.solution.read_text().replace(
        "def set_seed(", "from random import seed as set_seed\n\n\ndef _old_set_seed("))
    with pytest.raises(ImplementationError, match="`set_seed` .* comes from random"):
        load_implementation(step, str(fake))


def test_loader_reports_import_errors_in_plain_words(tmp_path):
    fake = tmp_path / "s00_toolbox.py"
    fake.write_text("def broken(:\n")
    with pytest.raises(ImplementationError, match="could not be imported: SyntaxError"):
        load_implementation(find_step("s00"), str(fake))


def test_loader_requires_every_api_name(tmp_path):
    fake = tmp_path / "s00_toolbox.py"
    fake.write_text("def set_seed(seed):\n    return None\n")
    with pytest.raises(ImplementationError, match="has no `train_val_test_split`"):
        load_implementation(find_step("s00"), str(fake))


# --- grader helpers -------------------------------------------------------------------------

def test_gradcheck_accepts_a_right_and_rejects_a_wrong_gradient():
    x = np.random.default_rng(0).normal(size=(3, 4))
    f = lambda: float(np.sum(np.tanh(x) ** 2))  # noqa: E731
    right = 2 * np.tanh(x) * (1 - np.tanh(x) ** 2)
    assert helpers.gradcheck(f, x, right, "tanh^2") < 1e-7
    with pytest.raises(AssertionError, match="disagrees with finite differences"):
        helpers.gradcheck(f, x, right * 1.01, "tanh^2")


def test_check_shape_suggests_a_transpose():
    with pytest.raises(AssertionError, match="did you transpose"):
        helpers.check_shape(np.zeros((2, 8, 5)), (2, 5, 8), "attention(x)", "B, T, C")


def test_assert_close_names_the_worst_element():
    with pytest.raises(AssertionError, match=r"worst at index \(1,\) is 5"):
        helpers.assert_close(np.array([1.0, 5.0]), np.array([1.0, 2.0]), "f(x)")
    with pytest.raises(AssertionError, match="not finite"):
        helpers.assert_close(np.array([np.nan]), np.array([1.0]), "f(x)")


def test_assert_causal_catches_a_leak():
    cumsum = lambda x: np.cumsum(x, axis=1)  # noqa: E731  causal
    helpers.assert_causal(cumsum, np.random.default_rng(0).normal(size=(2, 6)), "cumsum")
    leaky = lambda x: np.cumsum(x[:, ::-1], axis=1)[:, ::-1]  # noqa: E731  sees the future
    with pytest.raises(AssertionError, match="leaks from the future"):
        helpers.assert_causal(leaky, np.random.default_rng(0).normal(size=(2, 6)), "rev")


def test_overfit_tiny_batch_reports_a_stuck_loss():
    with pytest.raises(AssertionError, match="could not overfit"):
        helpers.overfit_tiny_batch(lambda: 1.0, steps=5, target=0.1, what="stuck model")


# --- data fetch -----------------------------------------------------------------------------

def test_fetch_from_a_local_file_verifies_the_checksum(tmp_path, monkeypatch):
    # a good local copy: the one this checkout fetched already (CI fetches it first, .ci/run)
    fetched = fetch_data.cache_dir() / "tinyshakespeare.txt"
    monkeypatch.setenv("ML2LLM_DATA_DIR", str(tmp_path / "cache"))
    bad = tmp_path / "bad.txt"
    bad.write_text("not shakespeare")
    with pytest.raises(fetch_data.DataError, match="expected 1115394"):
        fetch_data.fetch("tinyshakespeare", bad)
    assert not list((tmp_path / "cache").glob("*")), "a bad file must not be left in the cache"
    if not fetched.exists():
        pytest.skip("tinyshakespeare was not fetched here (python tools/fetch_data.py "
                    "tinyshakespeare), so there is no good local copy to take")
    path = fetch_data.fetch("tinyshakespeare", fetched)
    assert path.stat().st_size == 1115394 and path.parent == tmp_path / "cache"


def test_fetch_unknown_dataset_names_the_known_ones():
    with pytest.raises(fetch_data.DataError, match="known: tinyshakespeare"):
        fetch_data.fetch("nope")


# --- labs -----------------------------------------------------------------------------------

def test_lab_source_becomes_a_stable_notebook():
    src = "# %% [markdown]\n# # Title\n# text\n\n# %%\nx = 1\n"
    step = find_step("s00")
    text = labs.notebook_text(src, step)
    assert text == labs.notebook_text(src, step), "generation must be deterministic"
    nb = json.loads(text)
    kinds = [c["cell_type"] for c in nb["cells"]]
    assert kinds == ["code", "markdown", "code"]
    assert "".join(nb["cells"][1]["source"]) == "# Title\ntext"


# --- device selection -----------------------------------------------------------------------

def test_device_override_is_validated(monkeypatch):
    from tools import device

    monkeypatch.setenv("ML2LLM_DEVICE", "tpu")
    with pytest.raises(ValueError, match="choose one of mlx, cuda, mps, cpu"):
        device.pick_device()
    monkeypatch.setenv("ML2LLM_DEVICE", "cpu")
    if "cpu" in device.available():
        assert device.pick_device() == "cpu"
    monkeypatch.delenv("ML2LLM_DEVICE")
    if device.available():
        assert device.pick_device() in device.available()


# --- hints store -------------------------------------------------------------------------

def test_hints_pack_moves_inline_hints_into_an_encoded_file_and_unpack_restores_them(tmp_path):
    manifest = tmp_path / "curriculum.toml"
    original = textwrap.dedent('''\
        # a comment kept as it is
        [[step]]
        id = "s98_first"
        title = "First"
        phase = 0
        hints = [
            "Use the seeded generator, \\"rng\\".",
            "Then cut the shuffled indices.",
        ]
        budget = 60

        [[step]]
        id = "s99_second"
        title = "Second"
        phase = 0
        hints = ["One line: divide by the sum."]
        ''')
    manifest.write_text(original)
    assert hints.pack(manifest, tmp_path / "hintstore") == ["s98_first", "s99_second"]
    text = manifest.read_text()
    assert "seeded generator" not in text and "divide by the sum" not in text
    assert 'hints_file = "hintstore/s98_first.txt"\nbudget = 60' in text
    assert text.startswith("# a comment kept as it is")
    stored = (tmp_path / "hintstore" / "s98_first.txt").read_text()
    assert "seeded" not in stored and "shuffled" not in stored
    from tools.course import load_steps
    first, second = load_steps(manifest)
    assert first.hints == ('Use the seeded generator, "rng".', "Then cut the shuffled indices.")
    assert second.hints == ("One line: divide by the sum.",)
    assert hints.problems(manifest) == []

    hints.unpack("s98_first", manifest)
    assert load_steps(manifest)[0].hints == first.hints
    assert any("s98_first: hints are inline" in p for p in hints.problems(manifest))
    assert not (tmp_path / "hintstore" / "s98_first.txt").exists()


def test_a_damaged_hints_file_is_named_in_plain_words(tmp_path):
    (tmp_path / "hintstore").mkdir()
    (tmp_path / "hintstore" / "s98_x.txt").write_text("# header\nnot base64 at all!\n")
    with pytest.raises(hints.HintsError, match="tools/hintstore/s98_x.txt: not a hints file"):
        hints.read("hintstore/s98_x.txt", tmp_path)
