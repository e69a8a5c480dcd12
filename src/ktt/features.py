"""Text to tf-idf features: word n-grams of preprocessed text, optionally character n-grams.

:class:`TfidfFeatures` is the one featuriser of every ktt tf-idf model. It learns
one scikit-learn :class:`~sklearn.feature_extraction.text.TfidfVectorizer` per
block (word n-grams; character n-grams inside word boundaries, ``char_wb``) and
stacks the blocks, each l2-normalised, side by side.

Both blocks read the output of :func:`ktt.preprocess.preprocess`: lower-cased
Treebank tokens, stemmed (stop words kept). Character n-grams of the stemmed
tokens were measured against character n-grams of the raw lower-cased text on
ICD-10-CM and 20 newsgroups (``docs/benchmarks.md``); reading one text keeps
every consumer of a model (the ONNX graph, the BentoML service, the pyfunc
model, batch scoring) on one input, the preprocessed text.

Fitting learns each block's vocabulary, idf and training matrix with numpy
(:func:`ktt.vocabulary.fit_block`: the vectorizer's own ``fit`` results, and
its ``transform`` of the training texts, 2x faster than ``fit_transform``).
Transforming is ktt's own code, not ``TfidfVectorizer.transform``: the same
n-grams, vocabulary, idf and l2 norm give the same values (tests compare them),
without scikit-learn's per-call validation, which costs more than the
arithmetic for a single text. The n-grams of a batch are not built text by
text with scikit-learn's Python analyser: the whole batch is one array of
symbols (characters for ``char_wb``, words for word n-grams), and a trie of
the vocabulary walked with numpy finds every window that is a term
(:class:`_Windows`); configurations it does not reproduce exactly keep the
analyser.
"""

from __future__ import annotations

import re
from itertools import repeat
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer

from ktt.errors import KttError
from ktt.vocabulary import TOKEN_PATTERN, code_points, fit_block

_INT32_MAX = np.iinfo(np.int32).max
#: ``char_ngrams="auto"``: the character n-grams used for short texts.
AUTO_CHAR_NGRAMS = (2, 5)
#: ``char_ngrams="auto"``: texts up to this median length (characters, preprocessed) get character n-grams.
#: A text has about 4 character n-grams of 2-5 characters per character, so on long documents (news
#: posts: median 1,100 characters) they multiply the features' size and cost by 5 to 6 while words
#: already carry the evidence; names, titles and short descriptions gain from them (docs/models.md).
AUTO_CHAR_MAX_LENGTH = 300


def resolve_char_ngrams(char_ngrams, texts: Sequence[str]) -> tuple[int, int] | None:
    """``char_ngrams`` with ``"auto"`` decided from the texts' median length."""
    if char_ngrams == "off":  # a string for null, where a value must be one (Hydra's choice() takes no null)
        return None
    if char_ngrams == "auto":
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        return AUTO_CHAR_NGRAMS if len(lengths) and np.median(lengths) <= AUTO_CHAR_MAX_LENGTH else None
    return tuple(int(n) for n in char_ngrams) if char_ngrams else None


def check_min_df(min_df: int | float, n_texts: int) -> None:
    """Raise a one-line :class:`KttError` when an integer ``min_df`` exceeds the number of training texts."""
    if isinstance(min_df, int) and min_df > n_texts:
        raise KttError(f"min_df={min_df} is larger than the {n_texts} training texts; lower min_df")


class TfidfFeatures(BaseEstimator):
    """Word (and character) tf-idf features of preprocessed texts.

    Parameters
    ----------
    word_ngrams : int
        Word n-grams from 1 to ``word_ngrams`` words.
    char_ngrams : tuple of (int, int), "auto", "off" or None
        ``(low, high)``: character n-grams of ``low`` to ``high`` characters
        inside word boundaries (scikit-learn's ``char_wb``); None or ``"off"``: words only;
        ``"auto"``: :data:`AUTO_CHAR_NGRAMS` when the median training text has
        at most :data:`AUTO_CHAR_MAX_LENGTH` characters, else words only.
    min_df : int or float
        Minimum document count (int) or share (float) of a word n-gram.
    char_min_df : int or float
        The same for character n-grams.
    sublinear_tf : bool
        Term frequency ``1 + log(tf)`` instead of ``tf``.

    Attributes
    ----------
    char_ngrams_ : tuple of (int, int) or None
        The character n-grams in use (``char_ngrams`` with ``"auto"`` resolved).
    vectorizers_ : list of TfidfVectorizer
        The fitted blocks (words first).
    n_word_features_ : int
        Columns of the word block (the first columns).
    n_features_ : int
        Columns of the stacked matrix.
    """

    def __init__(self, word_ngrams: int = 1, char_ngrams: tuple[int, int] | None = None, min_df: int | float = 1,
                 char_min_df: int | float = 1, sublinear_tf: bool = False):
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.char_min_df = char_min_df
        self.sublinear_tf = sublinear_tf

    def _vectorizers(self, char_ngrams) -> list[TfidfVectorizer]:
        blocks = [TfidfVectorizer(ngram_range=(1, int(self.word_ngrams)), min_df=self.min_df,
                                  sublinear_tf=self.sublinear_tf)]
        if char_ngrams:
            low, high = char_ngrams
            blocks.append(TfidfVectorizer(analyzer="char_wb", ngram_range=(int(low), int(high)),
                                          min_df=self.char_min_df, sublinear_tf=self.sublinear_tf))
        return blocks

    def fit_transform(self, texts: Sequence[str], y=None) -> sparse.csr_matrix:
        """Learn the vocabularies and idf of every block; return the training matrix.

        Raises
        ------
        KttError
            When a block's vocabulary is empty (texts without terms, or ``min_df``
            higher than any term's document count).
        """
        texts = list(texts)
        check_min_df(self.min_df, len(texts))
        char_ngrams = resolve_char_ngrams(self.char_ngrams, texts)
        blocks, matrices = self._vectorizers(char_ngrams), []
        for vectorizer in blocks:
            try:
                matrix = fit_block(vectorizer, texts)
                matrices.append(vectorizer.fit_transform(texts) if matrix is None else matrix)
            except ValueError as error:
                if "empty vocabulary" in str(error):
                    raise KttError(f"the {len(texts)} training texts have no terms (empty vocabulary)") from None
                if "no terms remain" in str(error) or "min_df" in str(error):
                    raise KttError(f"min_df={vectorizer.min_df} leaves no terms in the vocabulary of the "
                                   f"{len(texts)} training texts; lower min_df") from None
                raise
        self.char_ngrams_ = char_ngrams
        self.vectorizers_ = blocks
        self.n_features_ = sum(len(v.vocabulary_) for v in blocks)
        self.n_word_features_ = len(blocks[0].vocabulary_)
        self._transformers = None
        return _hstack(matrices)

    def fit(self, texts: Sequence[str], y=None) -> "TfidfFeatures":
        self.fit_transform(texts)
        return self

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """The tf-idf matrix (n x ``n_features_``, float64, CSR with sorted indices) of preprocessed texts."""
        if not hasattr(self, "vectorizers_"):
            raise KttError("TfidfFeatures is not fitted yet")
        if self._transformers is None:
            self._transformers = [_BlockTransformer(v) for v in self.vectorizers_]
        texts = texts if isinstance(texts, list) else list(texts)
        n = len(texts)
        parts = [block.entries(texts) for block in self._transformers]
        offsets = np.cumsum([0] + [block.n_features for block in self._transformers])
        if n == 1:  # one row: the blocks one after the other
            indices = np.concatenate([columns + offset for (_, columns, _), offset in zip(parts, offsets)])
            data = np.concatenate([values for _, _, values in parts])
            return canonical_csr(data, indices, np.array([0, len(data)]), (1, self.n_features_))
        counts = [np.bincount(rows, minlength=n) for rows, _, _ in parts]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.sum(counts, axis=0), out=indptr[1:])
        # Each row holds the blocks one after the other: every entry's place, without sorting.
        indices = np.empty(indptr[-1], dtype=np.int64)
        data = np.empty(indptr[-1], dtype=np.float64)
        start = indptr[:-1].copy()
        for (rows, columns, values), count, offset in zip(parts, counts, offsets):
            block_start = np.cumsum(count) - count
            at = np.arange(len(rows)) + (start - block_start)[rows]
            indices[at] = columns + offset
            data[at] = values
            start += count
        return canonical_csr(data, indices, indptr, (n, self.n_features_))

    def word_columns(self, features: sparse.csr_matrix) -> sparse.csr_matrix:
        """The word block of a matrix from :meth:`transform` (its first ``n_word_features_`` columns)."""
        if len(self.vectorizers_) == 1:
            return features
        keep = features.indices < self.n_word_features_
        return kept_entries(features, keep, features.indices[keep], self.n_word_features_)

    def __getstate__(self):
        state = super().__getstate__().copy()
        state["_transformers"] = None  # rebuilt on first use; compiled analysers are not pickled
        return state

    def __setstate__(self, state):
        state.setdefault("_transformers", None)
        super().__setstate__(state)


def canonical_csr(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, int]) -> sparse.csr_matrix:
    """A CSR matrix of arrays that are already canonical (columns sorted in each row, no duplicates).

    scipy's constructor checks and converts its arguments at a fixed cost (about
    100 µs) as large as the whole product for one text; these arrays come from
    :meth:`TfidfFeatures.transform`, which builds them canonical, so the matrix is
    assembled directly (indices and indptr in one index type, as scipy requires).
    """
    index_type = np.int32 if max(shape[1], len(data)) < _INT32_MAX else np.int64
    matrix = sparse.csr_matrix.__new__(sparse.csr_matrix)
    matrix.data = np.asarray(data, dtype=np.float64)
    matrix.indices = np.asarray(indices, dtype=index_type)
    matrix.indptr = np.asarray(indptr, dtype=index_type)
    matrix._shape = (int(shape[0]), int(shape[1]))
    matrix.maxprint = 50
    matrix.has_sorted_indices = True
    matrix.has_canonical_format = True
    return matrix


def kept_entries(matrix: sparse.csr_matrix, keep: np.ndarray, columns: np.ndarray,
                 n_columns: int) -> sparse.csr_matrix:
    """The entries of a canonical CSR ``matrix`` where ``keep`` is true, moved to ``columns`` (in the same
    order within each row) of a matrix with ``n_columns`` columns and the same rows."""
    rows = matrix.shape[0]
    row_of = np.repeat(np.arange(rows), np.diff(matrix.indptr))
    indptr = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_of[keep], minlength=rows), out=indptr[1:])
    return canonical_csr(matrix.data[keep], columns, indptr, (rows, n_columns))


def _hstack(matrices: list) -> sparse.csr_matrix:
    """Blocks side by side (the training matrix)."""
    if len(matrices) == 1:
        return matrices[0]
    stacked = sparse.hstack(matrices, format="csr")
    stacked.sort_indices()
    return stacked


class _BlockTransformer:
    """A fitted TfidfVectorizer's transform, without scikit-learn's per-call overhead.

    The same n-grams, vocabulary lookup, term-frequency rule, idf product and l2
    norm as ``TfidfVectorizer.transform``, in that order, so values agree to the
    last bits that floating-point summation order allows. The n-grams of a batch
    come from :class:`_WordWindows` or :class:`_CharWbWindows` when one reproduces
    the vectorizer's analyser, else from the analyser itself, text by text.
    """

    def __init__(self, vectorizer: TfidfVectorizer):
        self.analyze = vectorizer.build_analyzer()
        self.vocabulary = vectorizer.vocabulary_
        self.idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        self.sublinear = bool(vectorizer.sublinear_tf)
        self.norm = vectorizer.norm
        self.n_features = len(self.vocabulary)
        self.windows = next((kind(vectorizer) for kind in (_WordWindows, _CharWbWindows)
                             if kind.reproduces(vectorizer)), None)

    def entries(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, columns, values)`` of the block's non-zero entries, sorted by row then column."""
        # (row, column) keys of the whole batch, in 32 bits when they fit (half the sorting), counted.
        dtype = np.int32 if len(texts) * self.n_features <= _INT32_MAX else np.int64
        windows = self.windows if self.windows is not None and len(texts) >= self.windows.min_texts else None
        keys = windows.keys(texts, self.n_features, dtype) if windows is not None else None
        if keys is None:
            keys = self._analysed(texts, dtype)
        keys, counts = _counted(keys)
        rows, indices = np.divmod(keys, self.n_features)
        data = counts.astype(np.float64)
        if self.sublinear:  # 1 + log(1) is 1: the logarithm of repeated terms only
            repeated = (counts > 1).nonzero()[0]
            data[repeated] = np.log(data[repeated]) + 1.0
        data *= self.idf[indices]
        if self.norm == "l2":
            norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=len(texts)))
            norms[norms == 0.0] = 1.0
            data /= norms[rows]
        return rows, indices, data

    def _analysed(self, texts: list[str], dtype) -> np.ndarray:
        """``row * n_features + column`` of every n-gram of the vectorizer's analyser found in the vocabulary."""
        lookup, analyze = self.vocabulary.get, self.analyze
        lengths = np.zeros(len(texts), dtype=np.int64)
        columns: list[int] = []
        for row, text in enumerate(texts):
            before = len(columns)
            columns.extend(i for i in map(lookup, analyze(text)) if i is not None)
            lengths[row] = len(columns) - before
        keys = np.asarray(columns, dtype=dtype)
        if len(texts) > 1:
            keys += np.repeat(np.arange(len(texts), dtype=dtype) * self.n_features, lengths)
        return keys


def _counted(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys, sorted, and how often each occurs: ``np.unique(keys, return_counts=True)``
    without its overhead (half its time on a batch of a million keys). Sorts ``keys`` in place."""
    keys.sort()
    bounds = np.empty(len(keys) + 1, dtype=bool)  # where a run of equal keys starts, and the end
    bounds[0] = bounds[-1] = True
    np.not_equal(keys[1:], keys[:-1], out=bounds[1:-1])
    bounds = bounds.nonzero()[0]
    return keys[bounds[:-1]], bounds[1:] - bounds[:-1]


#: A trie level's child table is a dense array up to this many entries (16 MB of int32), else sorted keys.
DENSE_CHILDREN = 1 << 22


class _Trie:
    """Every window of a symbol sequence that is a vocabulary term, found with numpy.

    Level ``d`` numbers the distinct ``d``-symbol prefixes of the terms from 1
    (0: no term starts so; the root is 1). The node reached from node ``p`` by
    symbol ``s`` is ``children[d][p * width + s]``: a dense array while it has at
    most :data:`DENSE_CHILDREN` entries, else the sorted keys ``p * width + s``,
    searched (a node is its key's position plus one). Every walk is exact: no
    hashing, no key width limit.

    Parameters
    ----------
    symbols : ndarray of int
        The terms' symbols (``0 .. width - 2``), one term after the other.
    lengths : ndarray of int
        Symbols of each term (at least one).
    columns : ndarray of int
        Each term's column.
    width : int
        Symbols, plus one that no term holds (unknown characters, separators).
    """

    def __init__(self, symbols: np.ndarray, lengths: np.ndarray, columns: np.ndarray, width: int):
        self.width = width
        self.children: list[np.ndarray] = []
        self.columns: list[np.ndarray | None] = []  # per level: the column of each node, -1 for a mere prefix
        starts = np.cumsum(lengths) - lengths
        node, n_nodes = np.ones(len(lengths), dtype=np.int64), 1
        for depth in range(1, int(lengths.max(initial=0)) + 1):
            deep = np.flatnonzero(lengths >= depth)
            keys, inverse = np.unique(node[deep] * width + symbols[starts[deep] + depth - 1], return_inverse=True)
            node = np.zeros(len(lengths), dtype=np.int64)
            node[deep] = inverse + 1
            if (n_nodes + 1) * width <= DENSE_CHILDREN:
                child = np.zeros((n_nodes + 1) * width, dtype=np.int32)
                child[keys] = np.arange(1, len(keys) + 1)
                self.children.append(child)
            else:
                self.children.append(keys)
            ends = lengths == depth
            column = None
            if ends.any():
                column = np.full(len(keys) + 1, -1, dtype=np.int32)
                column[node[ends]] = columns[ends]
            self.columns.append(column)
            n_nodes = len(keys)

    def find(self, symbols: np.ndarray, base: np.ndarray | None) -> np.ndarray:
        """``base[p] + column`` for every window ``symbols[p:p + d]`` that is a term (of that column);
        the columns alone without ``base``."""
        found_keys, node = [], symbols
        for depth, (child, column) in enumerate(zip(self.children, self.columns), start=1):
            if len(symbols) < depth:
                break
            if depth == 1:
                keys = symbols + self.width  # the root is node 1
            elif child.dtype == np.int32:  # dense: keys below DENSE_CHILDREN
                keys = node[:-1] * self.width + symbols[depth - 1:]
            else:
                keys = node[:-1].astype(np.int64) * self.width + symbols[depth - 1:]
            if child.dtype == np.int32:
                node = child[keys]
            else:
                at = np.minimum(np.searchsorted(child, keys), len(child) - 1)
                node = np.where(child[at] == keys, at + 1, 0)
            if column is not None:
                found = column[node]
                hit = (found >= 0).nonzero()[0]
                found_keys.append(found[hit] if base is None else base[hit] + found[hit])
        if not found_keys:
            return np.zeros(0, dtype=np.int32 if base is None else base.dtype)
        return np.concatenate(found_keys)


class _Windows:
    """The n-grams of a whole batch that are vocabulary terms, found with numpy.

    A subclass turns one text into symbols (characters, or words) whose windows
    that are terms are exactly the analyser's n-grams found in the vocabulary;
    the texts of a batch become one text, parted by a separator that no text and
    no term holds, with whitespace around it (so no word, and no lower-casing
    context such as a final sigma, crosses two texts).

    Attributes
    ----------
    trie : _Trie
        The vocabulary's terms as symbols.
    separators : list of str
        Candidate separators, the first one that no text of a batch holds is used.
    min_texts : int
        Smaller batches take the analyser, which costs less there.
    """

    trie: _Trie
    separators: list[str]
    min_texts = 1

    def keys(self, texts: list[str], n_features: int, dtype) -> np.ndarray | None:
        """``row * n_features + column`` (of ``dtype``) of every n-gram of the texts that is a term.

        None when a text is not a str (the analyser decodes bytes, rejects NaN)
        or a batch holds every separator: the caller analyses those texts itself.
        """
        if not all(isinstance(text, str) for text in texts):
            return None
        if len(texts) == 1:
            return self.trie.find(self.symbols(texts[0], None)[0], None).astype(dtype, copy=False)
        separator = next((s for s in self.separators if not any(s in text for text in texts)), None)
        if separator is None:
            return None
        symbols, parts = self.symbols(f"\n{separator}\n".join(texts), separator)
        rows = np.cumsum(parts, dtype=dtype)
        rows *= n_features
        return self.trie.find(symbols, rows)

    def symbols(self, text: str, separator: str | None) -> tuple[np.ndarray, np.ndarray | None]:
        """The symbols of ``text`` and where they are ``separator`` (None without one)."""
        raise NotImplementedError


class _CharWbWindows(_Windows):
    """scikit-learn's ``char_wb`` n-grams as windows of characters.

    The analyser lower-cases a text, splits it at whitespace (collapsing runs of
    it first changes nothing there), pads each word ``w`` to ``" w "`` and emits
    its n-grams of ``low`` to ``high`` characters, except that a padded word of at
    most ``n`` characters is emitted once, whole, and no longer n-gram of it. Of
    a fitted vocabulary's terms, those shorter than ``low`` are whole padded
    words, and a window that starts and ends with the padding is a whole padded
    word: so the emitted n-grams that are terms are exactly the windows of
    ``" w1  w2  ... "`` that are terms (a window across two words holds two
    spaces, which no term does).
    """

    def __init__(self, vectorizer: TfidfVectorizer):
        self.lowercase = bool(vectorizer.lowercase)
        terms = list(vectorizer.vocabulary_)
        points = code_points("".join(terms))
        alphabet = np.unique(points)
        # Code point -> symbol: 0 .. A - 1 for the terms' characters, A (no term's) for any other.
        self.unknown = len(alphabet)
        self.symbol = np.full(int(alphabet[-1]) + 2, self.unknown, dtype=np.int32)
        self.symbol[alphabet] = np.arange(len(alphabet))
        # Unicode noncharacters, then private use: no lower-casing makes them.
        self.separators = [chr(c) for c in (0xFFFF, 0x10FFFF, 0xFDD0, 0xF8FF) if c not in set(alphabet.tolist())]
        lengths = np.fromiter(map(len, terms), dtype=np.int64, count=len(terms))
        columns = np.fromiter(vectorizer.vocabulary_.values(), dtype=np.int64, count=len(terms))
        self.trie = _Trie(self.symbol[points], lengths, columns, len(alphabet) + 1)

    @staticmethod
    def reproduces(vectorizer: TfidfVectorizer) -> bool:
        """Whether the vectorizer's analyser is the ``char_wb`` one this class reproduces."""
        return (vectorizer.analyzer == "char_wb" and vectorizer.preprocessor is None and not vectorizer.strip_accents
                and vectorizer.input == "content" and not vectorizer.fixed_vocabulary_
                and len(vectorizer.vocabulary_) > 0)

    def symbols(self, text: str, separator: str | None) -> tuple[np.ndarray, np.ndarray | None]:
        words = (text.lower() if self.lowercase else text).split()
        points = code_points(f" {'  '.join(words)} " if words else "")
        symbols = self.symbol[np.minimum(points, len(self.symbol) - 1)]
        if separator is None:
            return symbols, None
        parts = points == ord(separator)
        at = np.flatnonzero(parts)
        symbols[at - 1] = symbols[at + 1] = self.unknown  # its padding: a 1-gram " " when low is 1
        return symbols, parts


class _WordWindows(_Windows):
    """scikit-learn's word n-grams (default token pattern) as windows of words.

    The analyser lower-cases a text, takes the matches of ``\\b\\w\\w+\\b`` and
    emits its n-grams, the tokens joined by one space: the windows of the tokens
    that are terms split at spaces (no token holds one). The pattern finds the
    same tokens in a text alone and between the separators of a batch.
    """

    min_texts = 8  # a few words per text: numpy's per-call cost is the analyser's below that

    def __init__(self, vectorizer: TfidfVectorizer):
        self.lowercase = bool(vectorizer.lowercase)
        self.tokens = re.compile(TOKEN_PATTERN).findall
        terms = list(vectorizer.vocabulary_)
        # Every term's words, one term after the other (no word holds a space), numbered in order of appearance
        symbols, words = pd.factorize(np.array(" ".join(terms).split(" "), dtype=object))
        self.word = dict(zip(words.tolist(), range(len(words))))
        # Separators: digits and underscores, which lower-casing neither makes nor changes.
        self.separators = [s for s in ("_0_1_2_3_", "_9_8_7_6_", "_5_0_5_0_") if s not in self.word]
        self.unknown = len(self.word)
        lengths = np.fromiter(map(str.count, terms, repeat(" ")), dtype=np.int64, count=len(terms)) + 1
        columns = np.fromiter(vectorizer.vocabulary_.values(), dtype=np.int64, count=len(terms))
        self.trie = _Trie(symbols, lengths, columns, len(self.word) + 1)

    @classmethod
    def reproduces(cls, vectorizer: TfidfVectorizer) -> bool:
        """Whether the vectorizer's analyser is the word one this class reproduces."""
        return (vectorizer.analyzer == "word" and vectorizer.token_pattern == TOKEN_PATTERN
                and vectorizer.tokenizer is None and vectorizer.stop_words is None
                and vectorizer.preprocessor is None and not vectorizer.strip_accents
                and vectorizer.input == "content" and not vectorizer.fixed_vocabulary_
                and len(vectorizer.vocabulary_) > 0)

    def symbols(self, text: str, separator: str | None) -> tuple[np.ndarray, np.ndarray | None]:
        tokens = self.tokens(text.lower() if self.lowercase else text)
        symbols = np.fromiter(map(self.word.get, tokens, repeat(self.unknown)), dtype=np.int32, count=len(tokens))
        if separator is None:
            return symbols, None
        return symbols, np.fromiter(map(separator.__eq__, tokens), dtype=bool, count=len(tokens))
