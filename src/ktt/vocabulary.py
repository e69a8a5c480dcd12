"""Learning a word n-gram vocabulary and its document counts with numpy.

``TfidfVectorizer.fit_transform`` counts the n-grams of every text in a Python
dictionary, one n-gram at a time, then sorts the vocabulary's strings: on long
documents with word bigrams (20 newsgroups: 1.35 million terms) that is most of
a model's featurising time. :func:`fit_word_block` learns the same vocabulary,
document counts, idf and matrix from arrays: each token becomes the rank of its
word, each n-gram one integer of those ranks, and the vocabulary's order (the
order of the n-grams' strings) is the order of those integers.
"""

from __future__ import annotations

import re
from itertools import chain
from numbers import Integral
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer

#: scikit-learn's default token pattern, the one this module reproduces.
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_KEY_LIMIT = np.iinfo(np.int64).max


def reproduces(vectorizer: TfidfVectorizer) -> bool:
    """Whether :func:`fit_word_block` learns exactly what ``vectorizer.fit_transform`` would."""
    return (vectorizer.analyzer == "word" and vectorizer.token_pattern == TOKEN_PATTERN
            and vectorizer.tokenizer is None and vectorizer.preprocessor is None and vectorizer.stop_words is None
            and not vectorizer.strip_accents and vectorizer.input == "content" and vectorizer.vocabulary is None
            and vectorizer.max_features is None and not vectorizer.binary and vectorizer.dtype == np.float64
            and vectorizer.ngram_range[0] == 1)


def fit_word_block(vectorizer: TfidfVectorizer, texts: Sequence[str]) -> sparse.csr_matrix | None:
    """Fit ``vectorizer`` on ``texts`` and return their tf-idf matrix, as its ``fit_transform`` does.

    The same vocabulary (terms and columns), idf and matrix values: the counts go
    through scikit-learn's own :class:`~sklearn.feature_extraction.text.TfidfTransformer`.

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
    learned = _counts(texts, vectorizer.ngram_range[1], vectorizer.lowercase, vectorizer.min_df, vectorizer.max_df)
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


def _counts(texts: Sequence[str], max_n: int, lowercase: bool, min_df, max_df):
    """``(terms, counts)``: the kept n-grams, sorted, and the texts' count matrix over them (float64,
    canonical CSR); None where scikit-learn would raise or the n-grams do not fit in 64-bit keys."""
    find = re.compile(TOKEN_PATTERN).findall
    tokens = [find(text.lower() if lowercase else text) for text in texts]
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    n_tokens = int(lengths.sum())
    if not n_tokens:
        return None
    ranks, words = pd.factorize(np.fromiter(chain.from_iterable(tokens), dtype=object, count=n_tokens), sort=True)
    del tokens
    base = len(words) + 1  # a term's key: its words' ranks + 1, base ``base``, 0 where it has fewer words
    if float(base) ** max_n >= _KEY_LIMIT:
        return None
    ranks = ranks.astype(np.int64) + 1
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    left = np.repeat(lengths, lengths) - (np.arange(n_tokens) - np.repeat(np.cumsum(lengths) - lengths, lengths))
    keys, docs = [], []
    key = np.zeros(n_tokens, dtype=np.int64)
    for n in range(1, max_n + 1):  # key[i]: the n-gram starting at token i, where the text has n tokens left
        key[: n_tokens - n + 1] += ranks[n - 1:] * base ** (max_n - n)
        starts = np.flatnonzero(left >= n)
        keys.append(key[starts])
        docs.append(doc[starts])
    del key, doc, left, ranks
    codes, vocabulary = pd.factorize(np.concatenate(keys))  # hashing, then sorting only the distinct keys
    order = np.argsort(vocabulary)
    column = np.empty(len(order), dtype=np.int64)
    column[order] = np.arange(len(order))
    vocabulary = vocabulary[order]
    # Summed duplicates, sorted columns: the counts of the (text, term) pairs
    matrix = sparse.coo_matrix((np.ones(len(codes)), (np.concatenate(docs), column[codes])),
                               shape=(len(texts), len(vocabulary))).tocsr()
    kept = _kept(np.bincount(matrix.indices, minlength=len(vocabulary)), len(texts), min_df, max_df)
    if kept is None:
        return None
    if not kept.all():
        vocabulary, matrix = vocabulary[kept], matrix[:, np.flatnonzero(kept)]
    return _strings(vocabulary, words, base, max_n), matrix


def _kept(document_counts: np.ndarray, n_texts: int, min_df, max_df) -> np.ndarray | None:
    """The terms ``min_df`` and ``max_df`` keep, as scikit-learn decides; None where it raises."""
    high = max_df if isinstance(max_df, Integral) else max_df * n_texts
    low = min_df if isinstance(min_df, Integral) else min_df * n_texts
    if high < low:
        return None
    kept = (document_counts <= high) & (document_counts >= low)
    return kept if kept.any() else None


def _strings(vocabulary: np.ndarray, words: np.ndarray, base: int, max_n: int) -> list[str]:
    """Each key's n-gram: its words joined by one space."""
    strings = None
    for n in range(max_n):
        ranks = vocabulary // base ** (max_n - 1 - n) % base
        if strings is None:
            strings = words[ranks - 1]
            continue
        more = np.flatnonzero(ranks)
        strings[more] = strings[more] + " " + words[ranks[more] - 1]
    return strings.tolist()
