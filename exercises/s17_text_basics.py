"""s17 · Text basics: from raw strings to vectors you can compare.

You build
    normalize(text)                        Unicode NFC, lowercase, one space between words
    word_tokenize(text)                    words of 2+ letters or digits, punctuation dropped
    char_tokenize(text)                    the characters of the normalised text
    build_vocabulary(docs, min_df, ...)    term -> column, alphabetical, rare terms dropped
    bag_of_words(docs, vocabulary)         the (n_docs, V) term-count matrix
    Tfidf                                  fit idf on training documents, transform any
    cosine_similarity(A, B)                (n, m) cosines of rows, 0 for a zero vector
    nearest_neighbors(Q, X, k)             the k most similar rows of X for each query

How it differs from s16
    Until now every input was already a vector. Text is not: before any model sees it, we
    choose units (characters or words), a vocabulary (which units get a column) and a
    weighting. Every choice here is a modelling decision, and, like the scaler of s00, the
    vocabulary and the idf are statistics of the TRAINING documents only.

The math
    Tokens: maximal runs of Unicode word characters (letters, digits, "_") of length >= 2,
    scikit-learn's default pattern r"(?u)\\b\\w\\w+\\b", after lowercasing. "Don't stop!"
    gives ["don", "stop"]: the apostrophe splits, the "t" is too short.

    Bag of words: X[i, j] = number of times term j occurs in document i. Order is lost.

    TF-IDF (as scikit-learn's TfidfVectorizer), with n training documents and df_j the number
    of them that contain term j at least once:
        tf_ij  = X_ij, or 1 + ln X_ij for X_ij > 0 when sublinear_tf (0 stays 0)
        idf_j  = ln((1 + n) / (1 + df_j)) + 1    smooth_idf (as if one extra document held
                                                 every term once: no division by zero)
        idf_j  = ln(n / df_j) + 1                otherwise
        w_ij   = tf_ij * idf_j, then each row divided by its L2 (or L1) norm; a row of zeros
                 stays zeros. The "+ 1" keeps a term that is in every document (idf 0) alive.
    Natural logarithms throughout.

    Cosine: cos(a, b) = a . b / (||a|| ||b||), in [-1, 1], symmetric, unchanged when a or b
    is scaled by a positive number. A zero vector has no direction: we define its cosine
    with anything (itself included) as 0 rather than 0/0 = NaN.

Shapes
    docs: a list of n strings. Bag of words and TF-IDF: (n, V) float arrays, column j is the
    term with vocabulary[term] == j. cosine_similarity(A (n, d), B (m, d)) -> (n, m).
    nearest_neighbors(Q (q, d), X (m, d), k) -> indices (q, k) ints and cosines (q, k).

You should be able to explain
    - why the vocabulary and idf must be fitted on the training documents only;
    - why idf down-weights "the" and what the "+ 1" terms protect against;
    - why cosine, not Euclidean distance, compares documents of different lengths;
    - what a bag of words cannot represent ("dog bites man" vs "man bites dog").
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern
NORMS = (None, "l1", "l2")


def normalize(text: str, lowercase: bool = True) -> str:
    """NFC-normalise, lowercase (if asked), turn every whitespace run into one space, strip."""
    raise NotImplementedError("s17 text basics: NFC, optional lowercase, collapse whitespace runs, strip the ends")


def word_tokenize(text: str, lowercase: bool = True) -> list[str]:
    """The runs of 2+ word characters of ``text`` (lowercased first if asked), in order."""
    raise NotImplementedError("s17 text basics: lowercase if asked, then every match of TOKEN_PATTERN")


def char_tokenize(text: str, lowercase: bool = False) -> list[str]:
    """The characters of ``normalize(text, lowercase)``, one string per character."""
    raise NotImplementedError("s17 text basics: normalise, then split into characters")


def build_vocabulary(docs: list[str], min_df: int = 1, max_features: int | None = None,
                     lowercase: bool = True) -> dict[str, int]:
    """Terms in >= ``min_df`` documents; then the ``max_features`` most frequent (by total
    count, ties by term), numbered 0.. in alphabetical order of the kept terms."""
    if min_df < 1 or (max_features is not None and max_features < 1):
        raise ValueError(f"need min_df >= 1 and max_features >= 1 or None, got {min_df}, "
                         f"{max_features}")
    raise NotImplementedError("s17 text basics: document frequency and total count per term, filter, sort, number")


def bag_of_words(docs: list[str], vocabulary: dict[str, int],
                 lowercase: bool = True) -> np.ndarray:
    """X (n_docs, V) float: X[i, vocabulary[t]] = count of term t in docs[i]; others ignored."""
    raise NotImplementedError("s17 text basics: count each in-vocabulary token of each document")


class Tfidf:
    """TF-IDF with scikit-learn's formulas; ``fit`` sets ``vocabulary_`` and ``idf_`` (V,)."""

    def __init__(self, *, min_df: int = 1, max_features: int | None = None,
                 lowercase: bool = True, smooth_idf: bool = True, sublinear_tf: bool = False,
                 norm: str | None = "l2") -> None:
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.min_df, self.max_features, self.lowercase = min_df, max_features, lowercase
        self.smooth_idf, self.sublinear_tf, self.norm = smooth_idf, sublinear_tf, norm
        self.vocabulary_: dict[str, int] | None = None
        self.idf_: np.ndarray | None = None

    def fit(self, docs: list[str]) -> Tfidf:
        """Vocabulary and idf from ``docs`` (the training documents). Returns self."""
        self.vocabulary_ = build_vocabulary(docs, self.min_df, self.max_features,
                                            self.lowercase)
        counts = bag_of_words(docs, self.vocabulary_, self.lowercase)
        raise NotImplementedError("s17 text basics: document frequencies, then idf_ (smoothed or not)")
        return self

    def transform(self, docs: list[str]) -> np.ndarray:
        """W (n_docs, V): tf (or 1 + ln tf) times the FITTED idf, rows normalised by ``norm``."""
        if self.idf_ is None:
            raise RuntimeError("call fit(train_docs) before transform")
        tf = bag_of_words(docs, self.vocabulary_, self.lowercase)
        raise NotImplementedError("s17 text basics: sublinear tf, times idf, row norm with zero rows left at zero")

    def fit_transform(self, docs: list[str]) -> np.ndarray:
        return self.fit(docs).transform(docs)


def cosine_similarity(A: np.ndarray, B: np.ndarray | None = None) -> np.ndarray:
    """S (n, m): S[i, j] = A_i . B_j / (||A_i|| ||B_j||), 0 where either row is zero; B = A
    when omitted."""
    A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    B = A if B is None else np.atleast_2d(np.asarray(B, dtype=np.float64))
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"rows of A and B must have the same length, got {A.shape[1]} "
                         f"and {B.shape[1]}")
    raise NotImplementedError("s17 text basics: divide each row by its norm (zero rows stay zero), then A_hat @ B_hat.T")


def nearest_neighbors(Q: np.ndarray, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row of Q, the indices (q, k) of the k rows of X with the highest cosine, best
    first, equal cosines in increasing index order, and those cosines (q, k)."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    if not 1 <= k <= len(X):
        raise ValueError(f"k must be between 1 and the {len(X)} rows of X, got {k}")
    raise NotImplementedError("s17 text basics: cosines, a stable sort of their negatives, keep the first k")
