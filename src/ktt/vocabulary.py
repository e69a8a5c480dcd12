"""Learning an n-gram vocabulary and its document counts with numpy.

``TfidfVectorizer.fit_transform`` counts the n-grams of every text in a Python
dictionary, one n-gram at a time, then sorts the vocabulary's strings: on long
documents with word bigrams (20 newsgroups: 1.35 million terms), or with
character n-grams on any text, that is most of a model's featurising time.
:func:`fit_block` learns the same vocabulary, document counts, idf and matrix
from arrays. Each symbol (a word, for word n-grams; a character, for ``char_wb``)
becomes its rank among the symbols seen, plus one; each n-gram becomes one
integer, its symbols' ranks as digits (zeros after the last symbol of a shorter
n-gram). Since every symbol sorts after the space that joins words, and every
string after its own prefixes, the order of those integers is the order of the
n-grams' strings: the vocabulary's order.
"""

from __future__ import annotations

import re
from itertools import chain
from numbers import Integral
from typing import Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer

#: scikit-learn's default token pattern, the one this module reproduces.
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_KEY_LIMIT = float(np.iinfo(np.int64).max)


class _Occurrences(NamedTuple):
    """Every n-gram occurrence of a batch: its key and its text; ``terms`` turns keys into strings."""

    keys: np.ndarray
    texts: np.ndarray
    terms: Callable[[np.ndarray], list[str]]


def reproduces(vectorizer: TfidfVectorizer) -> bool:
    """Whether :func:`fit_block` learns exactly what ``vectorizer.fit_transform`` would."""
    common = (vectorizer.preprocessor is None and not vectorizer.strip_accents and vectorizer.input == "content"
              and vectorizer.vocabulary is None and vectorizer.max_features is None and not vectorizer.binary
              and vectorizer.dtype == np.float64)
    if vectorizer.analyzer == "word":
        return (common and vectorizer.token_pattern == TOKEN_PATTERN and vectorizer.tokenizer is None
                and vectorizer.stop_words is None and vectorizer.ngram_range[0] == 1)
    return common and vectorizer.analyzer == "char_wb"


def fit_block(vectorizer: TfidfVectorizer, texts: Sequence[str]) -> sparse.csr_matrix | None:
    """Fit ``vectorizer`` on ``texts`` and return their tf-idf matrix, as its ``fit_transform`` does.

    The same vocabulary (terms and columns) and idf as ``fit``; the matrix is
    that vectorizer's ``transform`` of the texts, bit for bit (the counts go
    through scikit-learn's own :class:`~sklearn.feature_extraction.text.TfidfTransformer`).

    Returns
    -------
    scipy.sparse.csr_matrix or None
        None, with ``vectorizer`` untouched, when this path does not apply (see
        :func:`reproduces`; a text that is not a ``str``; n-grams too many to
        number in 64 bits) or when scikit-learn would raise (no terms, or none
        left by ``min_df``/``max_df``): the caller then runs ``fit_transform``,
        which gives its own answer.
    """
    if not reproduces(vectorizer) or not all(isinstance(text, str) for text in texts):
        return None
    texts = [text.lower() for text in texts] if vectorizer.lowercase else list(texts)
    low, high = vectorizer.ngram_range
    found = _word_ngrams(texts, high) if vectorizer.analyzer == "word" else _char_wb_ngrams(texts, low, high)
    learned = None if found is None else _counts(found, len(texts), vectorizer.min_df, vectorizer.max_df)
    if learned is None:
        return None
    terms, counts = learned
    tfidf = TfidfTransformer(norm=vectorizer.norm, use_idf=vectorizer.use_idf, smooth_idf=vectorizer.smooth_idf,
                             sublinear_tf=vectorizer.sublinear_tf).fit(counts)
    vectorizer.vocabulary_ = dict(zip(terms, range(len(terms))))
    vectorizer.fixed_vocabulary_ = False
    if vectorizer.use_idf:
        vectorizer.idf_ = tfidf.idf_
    vectorizer._tfidf = tfidf  # noqa: SLF001 (fit_transform's own state: its transform uses it)
    return sparse.csr_matrix(tfidf.transform(counts, copy=False))


def _word_ngrams(texts: list[str], max_n: int) -> _Occurrences | None:
    """Word 1- to ``max_n``-grams of the default token pattern (the words of an n-gram joined by a space)."""
    find = re.compile(TOKEN_PATTERN).findall
    tokens = [find(text) for text in texts]
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    if not lengths.sum():
        return None
    ranks, words = pd.factorize(np.fromiter(chain.from_iterable(tokens), dtype=object, count=int(lengths.sum())),
                                sort=True)
    base = len(words) + 1
    if float(base) ** max_n >= _KEY_LIMIT:
        return None
    keys, rows = _windows(ranks.astype(np.int64) + 1, lengths, base, range(1, max_n + 1), max_n)

    def terms(vocabulary: np.ndarray) -> list[str]:
        strings = words[vocabulary // base ** (max_n - 1) - 1]
        for n in range(1, max_n):
            rank = vocabulary // base ** (max_n - 1 - n) % base
            more = np.flatnonzero(rank)
            strings[more] = strings[more] + " " + words[rank[more] - 1]
        return strings.tolist()

    return _Occurrences(keys, np.repeat(np.arange(len(texts)), lengths)[rows], terms)


def _char_wb_ngrams(texts: list[str], min_n: int, max_n: int) -> _Occurrences | None:
    """``char_wb`` n-grams: the ``min_n``- to ``max_n``-character windows of each word padded to ``" w "``;
    a padded word shorter than ``min_n`` is one n-gram, whole (scikit-learn's ``_char_wb_ngrams``)."""
    words = [text.split() for text in texts]
    n_words = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    if not n_words.sum():
        return None
    padded = list(chain.from_iterable(words))
    lengths = np.fromiter(map(len, padded), dtype=np.int64, count=len(padded)) + 2
    points = np.frombuffer("".join(f" {word} " for word in padded).encode("utf-32-le", "surrogatepass"),
                           dtype=np.uint32)
    alphabet, ranks = np.unique(points, return_inverse=True)
    base = len(alphabet) + 1
    # A term's string is its code points; a NUL would read as the end of a shorter term
    if alphabet[0] == 0 or float(base) ** max_n >= _KEY_LIMIT:
        return None
    short = np.flatnonzero(lengths < min_n)  # whole padded words, shorter than any window
    sizes = range(min(min_n, int(lengths[short].min(initial=min_n))), max_n + 1)
    keys, rows = _windows(ranks.astype(np.int64) + 1, lengths, base, sizes, max_n, min_n)

    def terms(vocabulary: np.ndarray) -> list[str]:
        digits = np.stack([vocabulary // base ** (max_n - 1 - n) % base for n in range(max_n)], axis=1)
        codes = np.where(digits > 0, alphabet[np.maximum(digits - 1, 0)], 0).astype(np.uint32)
        return np.ascontiguousarray(codes).view(f"<U{max_n}").ravel().tolist()

    word_text = np.repeat(np.arange(len(texts)), n_words)
    return _Occurrences(keys, np.repeat(word_text, lengths)[rows], terms)


def _windows(symbols: np.ndarray, lengths: np.ndarray, base: int, sizes: range, max_n: int,
             min_n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The keys of the windows of ``sizes`` symbols inside each run of ``lengths`` symbols, and where they start.

    A window smaller than ``min_n`` counts only when it is its whole run.
    """
    total = len(symbols)
    left = np.repeat(lengths, lengths) - (np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths))
    key = np.zeros(total, dtype=np.int64)
    keys, starts = [], []
    for n in range(1, sizes.stop):  # key[p]: the first n symbols from p, while n <= the symbols left
        key[: total - n + 1] += symbols[n - 1:] * base ** (max_n - n)
        if n < sizes.start:
            continue
        at = np.flatnonzero(left >= n) if n >= min_n else np.flatnonzero(
            (left == n) & (np.repeat(lengths, lengths) == n))
        keys.append(key[at])
        starts.append(at)
    return np.concatenate(keys), np.concatenate(starts)


def _counts(found: _Occurrences, n_texts: int, min_df, max_df):
    """``(terms, counts)``: the kept n-grams, sorted, and the texts' count matrix over them (float64,
    canonical CSR); None where ``min_df`` and ``max_df`` leave no term (scikit-learn raises)."""
    codes, vocabulary = pd.factorize(found.keys)  # hashing, then sorting only the distinct keys
    order = np.argsort(vocabulary)
    column = np.empty(len(order), dtype=np.int64)
    column[order] = np.arange(len(order))
    vocabulary = vocabulary[order]
    # Summed duplicates, sorted columns: the counts of the (text, term) pairs
    matrix = sparse.coo_matrix((np.ones(len(codes)), (found.texts, column[codes])),
                               shape=(n_texts, len(vocabulary))).tocsr()
    kept = _kept(np.bincount(matrix.indices, minlength=len(vocabulary)), n_texts, min_df, max_df)
    if kept is None:
        return None
    if not kept.all():
        vocabulary, matrix = vocabulary[kept], matrix[:, np.flatnonzero(kept)]
    return found.terms(vocabulary), matrix


def _kept(document_counts: np.ndarray, n_texts: int, min_df, max_df) -> np.ndarray | None:
    """The terms ``min_df`` and ``max_df`` keep, as scikit-learn decides; None where it raises."""
    high = max_df if isinstance(max_df, Integral) else max_df * n_texts
    low = min_df if isinstance(min_df, Integral) else min_df * n_texts
    if high < low:
        return None
    kept = (document_counts <= high) & (document_counts >= low)
    return kept if kept.any() else None
