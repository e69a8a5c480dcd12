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
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer

#: scikit-learn's default token pattern, the one this module reproduces.
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_KEY_LIMIT = float(np.iinfo(np.int64).max)


def code_points(text: str) -> np.ndarray:
    """The code points of ``text`` (lone surrogates included, as scikit-learn's analyser sees them)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def reproduces(vectorizer: TfidfVectorizer) -> bool:
    """Whether :func:`fit_block` learns exactly what ``vectorizer.fit_transform`` would."""
    low, high = vectorizer.ngram_range
    common = (vectorizer.preprocessor is None and not vectorizer.strip_accents and vectorizer.input == "content"
              and vectorizer.vocabulary is None and vectorizer.max_features is None and not vectorizer.binary
              and vectorizer.dtype == np.float64 and 1 <= low <= high)
    if vectorizer.analyzer == "word":
        return (common and vectorizer.token_pattern == TOKEN_PATTERN and vectorizer.tokenizer is None
                and vectorizer.stop_words is None and low == 1)
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
    reader = _Words(high) if vectorizer.analyzer == "word" else _CharWb(low, high)
    learned = _counts(reader, texts, vectorizer.min_df, vectorizer.max_df)
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


class _Words:
    """Word 1- to ``max_n``-grams of the default token pattern: a text is one run of word symbols."""

    #: Characters of text per chunk: about 2 word n-gram occurrences per 6 characters.
    chunk_characters = 1 << 25

    def __init__(self, max_n: int):
        self.min_n, self.max_n = 1, max_n
        self.find = re.compile(TOKEN_PATTERN).findall

    def read(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(symbols, run lengths, each run's text)``."""
        tokens = [self.find(text) for text in texts]
        lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        return (np.fromiter(chain.from_iterable(tokens), dtype=object, count=int(lengths.sum())), lengths,
                np.arange(len(texts)))

    @staticmethod
    def alphabet(symbols: Iterable[np.ndarray]) -> np.ndarray:
        """The distinct symbols of every chunk, sorted (each chunk reduced to its own before the next is read)."""
        return np.sort(pd.unique(np.concatenate([pd.unique(part) for part in symbols])))

    @staticmethod
    def ranks(symbols: np.ndarray, alphabet: np.ndarray) -> np.ndarray:
        return pd.Index(alphabet).get_indexer(symbols)

    @staticmethod
    def factorize(symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(ranks, alphabet)`` of one chunk's symbols, in one pass."""
        return pd.factorize(symbols, sort=True)

    def terms(self, vocabulary: np.ndarray, alphabet: np.ndarray, base: int) -> list[str]:
        """Each key's n-gram: its words joined by one space."""
        strings = alphabet[vocabulary // base ** (self.max_n - 1) - 1]
        for n in range(1, self.max_n):
            rank = vocabulary // base ** (self.max_n - 1 - n) % base
            more = np.flatnonzero(rank)
            strings[more] = strings[more] + " " + alphabet[rank[more] - 1]
        return strings.tolist()


class _CharWb:
    """``char_wb`` n-grams: the ``min_n``- to ``max_n``-character windows of each word padded to ``" w "``
    (a run of character symbols); a padded word shorter than ``min_n`` is one n-gram, whole
    (scikit-learn's ``_char_wb_ngrams``)."""

    #: Characters of text per chunk: up to ``max_n - min_n + 1`` n-gram occurrences per character.
    chunk_characters = 1 << 22

    def __init__(self, min_n: int, max_n: int):
        self.min_n, self.max_n = min_n, max_n

    @staticmethod
    def read(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(code points, padded word lengths, each word's text)``."""
        words = [text.split() for text in texts]
        n_words = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        padded = list(chain.from_iterable(words))
        lengths = np.fromiter(map(len, padded), dtype=np.int64, count=len(padded)) + 2
        points = code_points("".join(f" {word} " for word in padded))
        return points, lengths, np.repeat(np.arange(len(texts)), n_words)

    @staticmethod
    def alphabet(symbols: Iterable[np.ndarray]) -> np.ndarray:
        return np.unique(np.concatenate([np.unique(part) for part in symbols]))

    @staticmethod
    def ranks(symbols: np.ndarray, alphabet: np.ndarray) -> np.ndarray:
        return np.searchsorted(alphabet, symbols)

    def factorize(self, symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        alphabet = self.alphabet([symbols])
        return self.ranks(symbols, alphabet), alphabet

    def terms(self, vocabulary: np.ndarray, alphabet: np.ndarray, base: int) -> list[str]:
        """Each key's characters (a term's string is its code points; keys hold no NUL, see :func:`_counts`)."""
        digits = np.stack([vocabulary // base ** (self.max_n - 1 - n) % base for n in range(self.max_n)], axis=1)
        codes = np.where(digits > 0, alphabet[np.maximum(digits - 1, 0)], 0).astype(np.uint32)
        return np.ascontiguousarray(codes).view(f"<U{self.max_n}").ravel().tolist()


def _chunks(texts: list[str], characters: int) -> list[slice]:
    """Consecutive slices of ``texts`` of about ``characters`` characters each (at least one text)."""
    ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
    bounds = [0]
    while bounds[-1] < len(texts):
        limit = (ends[bounds[-1] - 1] if bounds[-1] else 0) + characters
        bounds.append(max(bounds[-1] + 1, int(np.searchsorted(ends, limit, side="right"))))
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


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


def _counts(reader, texts: list[str], min_df, max_df) -> tuple[list[str], sparse.csr_matrix] | None:
    """``(terms, counts)``: the kept n-grams, sorted, and the texts' count matrix over them (float64,
    canonical CSR); None where there is no term or ``min_df`` and ``max_df`` leave none (scikit-learn
    raises), or where the keys would not fit in 64 bits or a character is NUL.

    Texts are read in chunks of ``reader.chunk_characters`` (the memory of a chunk's occurrences is
    what the arrays hold at once): a first pass finds the symbols of every chunk, a second one counts
    each chunk's n-grams, and the chunks' vocabularies are merged.
    """
    chunks = _chunks(texts, reader.chunk_characters)
    read = reader.read(texts) if len(chunks) == 1 else None
    if read:
        ranks, alphabet = reader.factorize(read[0])
    else:
        alphabet = reader.alphabet(reader.read(texts[chunk])[0] for chunk in chunks)
    base = len(alphabet) + 1  # a key's digits: its symbols' ranks + 1, then zeros for a shorter n-gram
    if not len(alphabet) or float(base) ** reader.max_n >= _KEY_LIMIT or (
            alphabet.dtype == np.uint32 and alphabet[0] == 0):  # a NUL would read as the end of a term
        return None
    parts = []
    for chunk in chunks:
        symbols, runs, run_text = read or reader.read(texts[chunk])
        if not read:
            ranks = reader.ranks(symbols, alphabet)
        short = runs[runs < reader.min_n]  # whole runs shorter than any window (char_wb)
        sizes = range(min(reader.min_n, int(short.min(initial=reader.min_n))), reader.max_n + 1)
        keys, starts = _windows(ranks.astype(np.int64) + 1, runs, base, sizes, reader.max_n, reader.min_n)
        codes, uniques = pd.factorize(keys)  # hashing, then sorting only the distinct keys
        order = np.argsort(uniques)
        column = np.empty(len(order), dtype=np.int64)
        column[order] = np.arange(len(order))
        rows = np.repeat(run_text, runs)[starts]
        # Summed duplicates, columns sorted: the counts of the chunk's (text, n-gram) pairs
        parts.append((uniques[order], sparse.coo_matrix((np.ones(len(codes)), (rows, column[codes])),
                                                        shape=(chunk.stop - chunk.start, len(uniques))).tocsr()))
        del symbols, ranks, keys, starts, codes, rows, column
    if len(parts) == 1:
        vocabulary, matrix = parts[0]
    else:  # every chunk's columns, in the merged (sorted) vocabulary: still sorted in each row
        merged = np.sort(np.concatenate([uniques for uniques, _ in parts]))
        vocabulary = merged[np.concatenate([[True], merged[1:] != merged[:-1]])]
        matrix = sparse.vstack([sparse.csr_matrix((counts.data, np.searchsorted(vocabulary, uniques)[counts.indices],
                                                   counts.indptr), shape=(counts.shape[0], len(vocabulary)))
                                for uniques, counts in parts], format="csr")
        del parts
    kept = _kept(np.bincount(matrix.indices, minlength=len(vocabulary)), len(texts), min_df, max_df)
    if kept is None:
        return None
    if not kept.all():
        vocabulary, matrix = vocabulary[kept], matrix[:, np.flatnonzero(kept)]
    return reader.terms(vocabulary, alphabet, base), matrix


def _kept(document_counts: np.ndarray, n_texts: int, min_df, max_df) -> np.ndarray | None:
    """The terms ``min_df`` and ``max_df`` keep, as scikit-learn decides; None where it raises."""
    high = max_df if isinstance(max_df, Integral) else max_df * n_texts
    low = min_df if isinstance(min_df, Integral) else min_df * n_texts
    if high < low:
        return None
    kept = (document_counts <= high) & (document_counts >= low)
    return kept if kept.any() else None
