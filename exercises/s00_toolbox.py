"""s00 · Toolbox: the four utilities every later step leans on.

You build
    set_seed(seed)                        seed every random number generator in play
    train_val_test_split(X, y, ...)       a shuffled (optionally stratified) three-way split
    iterate_minibatches(X, y, ...)        one epoch of shuffled mini-batches
    Standardizer                          z-scoring fitted on the training split only

Why they matter
    Reproducibility: an experiment you cannot rerun bit-for-bit is an anecdote. Python's
    ``random``, NumPy's global generator, torch and MLX each keep their own state; seeding one
    leaves the others free. Prefer passing an explicit ``np.random.Generator`` (as the split
    and the batch iterator below take one) over global state.

    Leakage: every statistic a model uses -- the mean and std of a scaler, a vocabulary, a
    feature selection -- must be computed on the training split alone. Fitting the scaler on
    all the data lets the test set whisper its mean into training, and the test score stops
    measuring generalisation.

The math
    Standardisation maps each feature j to z_j = (x_j - mu_j) / sigma_j with
    mu_j = (1/n) sum_i x_ij and sigma_j = sqrt((1/n) sum_i (x_ij - mu_j)^2) over the TRAINING
    rows (population std, ddof = 0, as scikit-learn's StandardScaler). A constant feature has
    sigma_j = 0; we divide by 1 instead so it maps to 0 rather than NaN.

    Stratification keeps class proportions: for each class c with n_c samples, round(f * n_c)
    of them go to a split of fraction f, so a rare class cannot vanish from validation.

Shapes
    X: (n, d) features, y: (n,) labels or targets. Splits keep rows paired: X_train[i] and
    y_train[i] come from the same original row.

You should be able to explain
    - why a validation split is needed on top of a test split (model selection uses it up);
    - what goes wrong when the scaler is fitted before splitting;
    - why an epoch must visit every sample exactly once, and why we shuffle each epoch.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np


class Split(NamedTuple):
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def set_seed(seed: int) -> np.random.Generator:
    """Seed Python's ``random``, NumPy's global generator, and torch / MLX when installed.

    Returns ``np.random.default_rng(seed)``, the generator new code should pass around.
    torch and MLX are optional: seed them only if they can be imported.
    """
    raise NotImplementedError("s00 toolbox: seed random, numpy, torch and mlx (when importable); return default_rng(seed)")


def train_val_test_split(X: np.ndarray, y: np.ndarray, val_frac: float = 0.15,
                         test_frac: float = 0.15, *, seed: int = 0,
                         stratify: bool = False) -> Split:
    """Shuffle the rows with ``np.random.default_rng(seed)`` and cut them in three.

    Sizes: n_test = round(test_frac * n), n_val = round(val_frac * n) (Python's ``round``),
    the rest is train. With ``stratify=True`` the same rounding is applied within each class
    of ``y`` (any label type: ints of any dtype, strings), so every split keeps the class
    proportions. The same seed must give the same split, another seed another split; which
    shuffled rows go to which split, and their order inside it, are yours to choose.
    """
    if not 0 <= val_frac < 1 or not 0 <= test_frac < 1 or val_frac + test_frac >= 1:
        raise ValueError(f"need 0 <= val_frac, test_frac and val_frac + test_frac < 1, got "
                         f"{val_frac} and {test_frac}")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    raise NotImplementedError("s00 toolbox: shuffle with the seeded rng, cut test / val / train (per class if stratify)")


def iterate_minibatches(X: np.ndarray, y: np.ndarray, batch_size: int, *,
                        rng: np.random.Generator | None = None,
                        drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (X_batch, y_batch) covering every row exactly once (one epoch).

    ``rng`` given: visit the rows in the order ``rng.permutation(n)``; ``rng`` None: in order.
    The last batch may be smaller, unless ``drop_last`` drops it.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    raise NotImplementedError("s00 toolbox: permute (if rng), then yield consecutive slices of batch_size rows")


class Standardizer:
    """Z-score features with statistics from ``fit`` (the training split) only.

    After ``fit``: ``mean_`` and ``scale_`` of shape (d,); ``scale_`` is the population std
    with zeros replaced by 1.0. ``fit`` returns self; ``transform`` and ``inverse_transform``
    return float64 NumPy arrays for any numeric input (ints, float32).
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> Standardizer:
        raise NotImplementedError("s00 toolbox: store the column means and population stds (0 -> 1.0)")

    def transform(self, X: np.ndarray) -> np.ndarray:
        if self.mean_ is None:
            raise RuntimeError("call fit(X_train) before transform")
        raise NotImplementedError("s00 toolbox: apply the stored statistics")

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        self.fit(X)
        return self.transform(X)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        if self.mean_ is None:
            raise RuntimeError("call fit(X_train) before inverse_transform")
        raise NotImplementedError("s00 toolbox: undo transform")
