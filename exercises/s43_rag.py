"""s43 · Retrieval-augmented generation: look the answer up, then say where you found it.

You build
    chunk_spans(n_words, size, overlap)     word windows [start, end) that overlap
    chunk_corpus(docs, size, overlap)       every document cut into chunks, with ids
    relevant_ids(chunks, doc, start, end)   the chunks that hold a whole evidence span
    fit_tfidf(texts), embed_tfidf(...)      TF-IDF embeddings (smooth idf, L2 rows)
    normalize_rows(x), top_k(q, index, k)   exact top-k cosine retrieval, ties defined
    bigram_overlap(query, text), rerank(...) a second, word-order-aware scoring pass
    build_prompt(...), parse_citations(...) a prompt with numbered sources; citations kept
                                            only when they point at a retrieved chunk
    extract_answer(question, texts, ids)    an extractive reader that cites its chunk
    recall_at_k(...), mean_reciprocal_rank  is the evidence in the top k, how high?

How it differs from the previous steps
    A language model only knows what its weights absorbed. RAG keeps knowledge outside the
    model: cut documents into chunks, embed them, and at question time put the k chunks most
    similar to the question into the prompt. The model can then answer about things it never
    trained on, and the answer can cite the chunk it used, which a reader can check. Retrieval
    is measured on its own (is the evidence among the top k?) before any answer is judged.

The math (tokens = re.findall("[a-z0-9]+", text.lower()), see tokenize)
    chunks: step = size - overlap; windows start at 0, step, 2 step, ... and end at
        min(start + size, n); the last window is the first that reaches n. Consecutive windows
        share exactly `overlap` words, every word is in some window, none is empty.
    tf-idf: vocabulary = sorted distinct tokens of the index texts (column j = j-th term);
        idf(t) = ln((1 + n) / (1 + df(t))) + 1 over n texts (df = texts containing t);
        vector = count(t) * idf(t), divided by its L2 norm (an all-zero row stays zero).
        Tokens outside the vocabulary are ignored. It equals scikit-learn's
        TfidfVectorizer(token_pattern=r"[a-z0-9]+") (smooth idf, l2 norm).
    cosine(q, x) = q . x / (|q| |x|), 0 when either is zero. top_k sorts each query's scores
        descending, equal scores by lower index first (a stable argsort of -score), and keeps
        min(k, N). On normalised float32 vectors it equals faiss.IndexFlatIP's search.
    rerank: new score = first-stage score + weight * bigram_overlap(query, text), where
        bigram_overlap = |distinct query bigrams found in text| / |distinct query bigrams|
        (0 for a query of fewer than two tokens); sorted descending, ties keep input order.
    recall@k = share of questions with at least one relevant chunk among their first k
        (the "hit rate"; with one relevant chunk per question it is the usual recall@k);
        MRR = mean over questions of 1 / rank of the first relevant chunk (0 when none).

Shapes: embeddings (n, V) float64; top_k(queries (Q, D), index (N, D), k) -> scores (Q, k'),
ids (Q, k') int64 with k' = min(k, N).

Pitfalls
    - overlap >= size never advances (refused); a last window that is already covered by the
      one before it is an empty-looking duplicate: stop at the first window that reaches n.
    - a dot product is not a cosine unless both sides are normalised; a zero vector must not
      become NaN (no token in common with the vocabulary is a normal question).
    - fit the idf on the index, not on the queries: the query is embedded with the index's
      vocabulary and idf, or the coordinates mean different words.
    - a chunk that cuts the evidence sentence in two cannot support the answer: overlap is
      what keeps a sentence whole in at least one chunk.
    - a generated "[7]" is only a citation if chunk 7 was actually in the prompt.

You should be able to explain
    - what an embedding means operationally (a point whose neighbours share its words /
      meaning) and why cosine, not the raw dot product, compares texts of different lengths;
    - why chunk size and overlap trade recall against prompt length;
    - why retrieval is evaluated separately (recall@k, MRR) before the answers;
    - why a citation makes an answer checkable, and why it must point at a retrieved chunk.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

STOPWORDS = frozenset("a an the is was by of in and to for".split())


def tokenize(text: str) -> list[str]:
    """Lower-cased runs of [a-z0-9]. Given: nothing to implement."""
    return re.findall("[a-z0-9]+", text.lower())


def chunk_spans(n_words: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """Windows (start, end) with starts 0, size - overlap, ..., end = min(start + size,
    n_words), stopping after the first window that reaches n_words; [] when n_words == 0."""
    if n_words < 0 or size < 1 or not 0 <= overlap < size:
        raise ValueError(f"need n_words >= 0, size >= 1 and 0 <= overlap < size, got "
                         f"{n_words}, {size}, {overlap}")
    raise NotImplementedError("s43 rag: advance by size - overlap until a window reaches the end")


def chunk_corpus(docs: list[str], size: int, overlap: int) -> list[dict]:
    """Chunks of every document's whitespace words, in document order: {"id" (0, 1, ...),
    "doc" (document index), "start", "end" (word span), "text" (those words joined by " ")}."""
    raise NotImplementedError("s43 rag: split each doc, cut it with chunk_spans, number the chunks")


def relevant_ids(chunks: list[dict], doc: int, start: int, end: int) -> set[int]:
    """Ids of the chunks of document doc whose span contains the whole span [start, end)."""
    raise NotImplementedError("s43 rag: same document, chunk start <= start and end <= chunk end")


def fit_tfidf(texts: list[str]) -> tuple[dict[str, int], np.ndarray]:
    """(vocab {term: column} over the sorted distinct tokens, idf (V,) float64 with
    idf = ln((1 + n) / (1 + df)) + 1, n = len(texts), df = texts containing the term)."""
    raise NotImplementedError("s43 rag: document frequency of each term, then the smoothed idf")


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """x (..., d) as float64, each vector along the last axis divided by its L2 norm; an
    all-zero vector stays all zero."""
    x = np.asarray(x, dtype=np.float64)
    raise NotImplementedError("s43 rag: divide by the row norms, leaving zero rows alone")


def embed_tfidf(texts: list[str], vocab: dict[str, int], idf: np.ndarray) -> np.ndarray:
    """(len(texts), V) float64: term counts times idf, L2-normalised rows; unknown tokens are
    ignored, so a text without known tokens is a zero row."""
    raise NotImplementedError("s43 rag: count known tokens per text, weight by idf, normalise the rows")


def top_k(queries: np.ndarray, index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores (Q, k'), ids (Q, k') int64), k' = min(k, N): each query's highest cosine
    similarities with the index rows, descending, equal scores by lower index first."""
    queries, index = np.asarray(queries, np.float64), np.asarray(index, np.float64)
    if queries.ndim != 2 or index.ndim != 2 or queries.shape[1] != index.shape[1] or k < 1:
        raise ValueError(f"need (Q, D) and (N, D) arrays and k >= 1, got {queries.shape}, "
                         f"{index.shape}, k={k}")
    raise NotImplementedError("s43 rag: cosine = normalised dot products; stable argsort of -scores, first k")


def bigram_overlap(query: str, text: str) -> float:
    """Share of the query's distinct token bigrams that occur in text (0.0 for a query of
    fewer than two tokens)."""
    raise NotImplementedError("s43 rag: sets of adjacent token pairs; the share of the query's found in text")


def rerank(query: str, texts: list[str], ids, scores, weight: float = 1.0
           ) -> tuple[np.ndarray, np.ndarray]:
    """(ids, new scores) sorted by new = score + weight * bigram_overlap(query, text),
    descending, equal new scores in their input order; texts[i] is candidate ids[i]'s text."""
    ids, scores = np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float64)
    if not len(texts) == len(ids) == len(scores):
        raise ValueError(f"{len(texts)} texts, {len(ids)} ids and {len(scores)} scores")
    raise NotImplementedError("s43 rag: add the weighted bigram overlap, stable sort descending")


def build_prompt(question: str, texts: list[str], ids) -> str:
    """One line "[id] text" per retrieved chunk in the given order, then "Question: " +
    question and "Answer:", joined by newlines; no chunks gives the closed-book prompt;
    ValueError when texts and ids differ in length."""
    raise NotImplementedError("s43 rag: numbered sources first, then the question and the answer cue")


def parse_citations(answer: str, ids) -> list[int]:
    """The ids cited as "[n]" in answer that are among ids (the retrieved chunks), in order of
    first citation, each once; any other number in brackets is dropped."""
    raise NotImplementedError("s43 rag: find every [n], keep retrieved ones, first occurrence only")


def extract_answer(question: str, texts: list[str], ids) -> dict:
    """{"answer", "citations"}: split each text at . ? !; the sentence sharing the most
    distinct tokens with the question (ties: earlier text, then earlier sentence) answers with
    its tokens that are neither in the question nor STOPWORDS, joined by " ", citing [its id];
    no shared token anywhere gives {"answer": "", "citations": []}; ValueError when texts and
    ids differ in length."""
    raise NotImplementedError("s43 rag: score sentences by shared question tokens, keep the first best")


def recall_at_k(rankings: list, relevant: list[set[int]], k: int) -> float:
    """Share of questions whose first k ranked ids contain at least one relevant id."""
    if len(rankings) != len(relevant) or len(rankings) == 0 or k < 1:
        raise ValueError("need as many rankings as relevant sets, at least one, and k >= 1")
    raise NotImplementedError("s43 rag: a hit when any of the first k ids is relevant; mean of the hits")


def mean_reciprocal_rank(rankings: list, relevant: list[set[int]]) -> float:
    """Mean over questions of 1 / (1-based rank of the first relevant id), 0 when none is."""
    if len(rankings) != len(relevant) or len(rankings) == 0:
        raise ValueError("need as many rankings as relevant sets, and at least one")
    raise NotImplementedError("s43 rag: reciprocal rank of the first hit per question, averaged")
