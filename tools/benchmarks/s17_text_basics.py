"""Benchmark for s17: the reference TF-IDF against scikit-learn's TfidfVectorizer."""

from __future__ import annotations

import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from tools.course import find_step
from tools.loader import load_implementation


def _best_of_3(fn):
    best, out = float("inf"), None
    for _ in range(3):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _docs(n: int = 2000, length: int = 60, vocab: int = 3000) -> list[str]:
    """Zipf-distributed words: a realistic long tail of rare terms."""
    g = np.random.default_rng(0)
    words = np.array([f"w{i:04d}" for i in range(vocab)])
    p = 1.0 / np.arange(1, vocab + 1)
    return [" ".join(g.choice(words, size=length, p=p / p.sum())) for _ in range(n)]


def bench() -> list[dict]:
    mod = load_implementation(find_step("s17_text_basics"), "solutions")
    docs = _docs()
    opts = {"min_df": 2, "sublinear_tf": True}
    ours_s, ours = _best_of_3(lambda: mod.Tfidf(**opts).fit_transform(docs))
    ref_s, ref = _best_of_3(lambda: TfidfVectorizer(**opts).fit_transform(docs).toarray())
    return [{"step": "s17_text_basics", "task": "TF-IDF fit_transform (min_df 2, sublinear)",
             "data": "2000 docs x 60 Zipf words", "ours_s": ours_s, "sklearn_s": ref_s,
             "metric": "max abs difference", "ours": float(np.abs(ours - ref).max()),
             "sklearn": 0.0}]


if __name__ == "__main__":
    for row in bench():
        print(row)
