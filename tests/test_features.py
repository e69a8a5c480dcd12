"""ktt's vectorised n-grams give scikit-learn's ``TfidfVectorizer.transform`` values, bit for bit.

:class:`ktt.features._BlockTransformer` finds the n-grams of a whole batch with
a trie walked by numpy (``_CharWbWindows``, ``_WordWindows``) instead of
scikit-learn's analyser text by text. These tests compare its matrices with
``TfidfVectorizer.transform`` on real data (preprocessed ICD-10-CM descriptions,
raw 20 newsgroups posts) and on texts made to break it, for several n-gram
ranges, and check that every configuration or batch it does not reproduce
takes the analyser and still gives the same values.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

import ktt.features
from conftest import shared_data
from ktt.features import TfidfFeatures, _BlockTransformer, _CharWbWindows, _WordWindows
from ktt.vocabulary import fit_block

#: Texts made to break a vectorised analyser: empty and blank texts, words of every length around the
#: n-gram sizes, runs of exotic whitespace, accents, combining marks, CJK, emoji and other characters
#: outside the BMP, a lone surrogate, lower-casing that changes length (İ) or depends on context (final
#: sigma), characters never seen in training, a very long word, and the batch separators themselves.
ODD = [
    "", " ", "   \t\n  \r\n", "a", "a b c d", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh",
    "ab  cd\t\tef\n\ngh", "  leading and trailing  ", "a\u3000b\x1cc\x1dd\x1ee\x1ff\x85g\xa0h\u2028i\u2003j",
    "ÉCOLE Café NAÏVE façade", "e\u0301te\u0301 n\u0303o", "日本語のテキスト 中文 한국어", "😀 smile 😀x 🧬🧬🧬",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𐍈 \U0010fffd", "ΟΔΟΣ ΑΣ\nΒΣ Σ σς", "İstanbul İİ DİYARBAKIR", "ﬁne ẞ ǅ ǈ", "\ud800 lone \udfff",
    "zzzqqq ☃☃ ⌘⌘ ≠≠", "x" * 3000, "fractur " * 50, "\uffff \U0010ffff \ufdd0 \uf8ff", "_0_1_2_3_ fractur",
    "_0_1_2_3_ _9_8_7_6_ _5_0_5_0_ left", "A\u0130\u03a3", "KELVIN \u212a", "tab\tsep\tvalues",
]
#: Seen in training, so that the vocabulary holds non-ASCII characters.
TRAIN_ODD = ["ÉCOLE Café naïve", "日本語 テキスト 中文", "😀 smile", "𝔘𝔫𝔦", "e\u0301te\u0301", "ΟΔΟΣ Σ", "İstanbul"]


@pytest.fixture(scope="module")
def icd():
    """(train, test) preprocessed ICD-10-CM descriptions: 3,000 and 1,500 rows."""
    from ktt.preprocess import preprocess

    frame = pd.read_csv(shared_data("icd10cm", "icd10cm.csv")).sample(n=4500, random_state=3)
    texts = preprocess(frame["text"].tolist())
    return texts[:3000] + TRAIN_ODD, texts[3000:]


@pytest.fixture(scope="module")
def news():
    """(train, test) raw 20 newsgroups posts: long, mixed case, every kind of whitespace and punctuation."""
    train = pd.read_parquet(shared_data("20newsgroups", "train.parquet"), columns=["text"])["text"]
    test = pd.read_parquet(shared_data("20newsgroups", "test.parquet"), columns=["text"])["text"]
    return train.sample(n=200, random_state=0).tolist() + TRAIN_ODD, test.sample(n=150, random_state=0).tolist()


def block_matrix(block: _BlockTransformer, texts: list) -> sparse.csr_matrix:
    rows, columns, values = block.entries(texts)
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(texts)), out=indptr[1:])
    assert np.all(np.diff(rows) >= 0)
    return sparse.csr_matrix((values, columns, indptr), shape=(len(texts), block.n_features))


def assert_same(ours: sparse.csr_matrix, expected: sparse.csr_matrix):
    """The same CSR arrays: scikit-learn's matrix has sorted indices, and the values agree bit for bit."""
    expected.sort_indices()
    np.testing.assert_array_equal(ours.indptr, expected.indptr)
    np.testing.assert_array_equal(ours.indices, expected.indices)
    np.testing.assert_array_equal(ours.data, expected.data)


def assert_transforms_like(vectorizer: TfidfVectorizer, texts: list, kind=None):
    block = _BlockTransformer(vectorizer)
    assert type(block.windows) is kind if kind else block.windows is None
    for batch in [texts, texts[:2], texts[:1], ODD, ODD[:1], ODD[-5:]] + [[text] for text in ODD[:12]]:
        assert_same(block_matrix(block, batch), vectorizer.transform(batch))
    return block


@pytest.mark.parametrize("data", ["icd", "news"])
@pytest.mark.parametrize("ngram_range", [(2, 5), (1, 3), (3, 6)])
@pytest.mark.parametrize("sublinear_tf", [False, True])
def test_char_wb_windows_equal_scikit_learn(request, data, ngram_range, sublinear_tf):
    train, test = request.getfixturevalue(data)
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=ngram_range, sublinear_tf=sublinear_tf).fit(train)
    assert_transforms_like(vectorizer, test, _CharWbWindows)


@pytest.mark.parametrize("data", ["icd", "news"])
@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 2), (2, 3)])
@pytest.mark.parametrize("sublinear_tf", [False, True])
def test_word_windows_equal_scikit_learn(request, data, ngram_range, sublinear_tf):
    train, test = request.getfixturevalue(data)
    vectorizer = TfidfVectorizer(ngram_range=ngram_range, sublinear_tf=sublinear_tf).fit(train)
    block = assert_transforms_like(vectorizer, test, _WordWindows)
    assert block.windows.min_texts > 1  # small batches take the analyser: both ways were compared above


@pytest.mark.parametrize("settings", [dict(lowercase=False), dict(min_df=3, max_df=0.5), dict(max_features=500)])
def test_other_fitted_vocabularies_equal_scikit_learn(icd, settings):
    train, test = icd
    for analyzer, kind in (("char_wb", _CharWbWindows), ("word", _WordWindows)):
        vectorizer = TfidfVectorizer(analyzer=analyzer, ngram_range=(1, 3), **settings).fit(train + ODD)
        assert_transforms_like(vectorizer, test, kind)


def test_the_default_featuriser_equals_scikit_learn_blocks(icd):
    train, test = icd
    features = TfidfFeatures(word_ngrams=2, char_ngrams=(2, 5), sublinear_tf=True)
    features.fit_transform(train)
    for batch in (test + ODD, ODD, ["", "fractur"], [""], test[:1]):
        ours = features.transform(batch)
        ours.check_format(full_check=True)
        assert_same(ours, sparse.hstack([v.transform(batch) for v in features.vectorizers_], format="csr"))
    restored = pickle.loads(pickle.dumps(features))
    assert restored._transformers is None  # the tries are rebuilt on first use, never pickled
    assert_same(restored.transform(test), features.transform(test))


@pytest.mark.parametrize("data", ["icd", "news"])
@pytest.mark.parametrize("settings", [
    dict(ngram_range=(1, 1)), dict(ngram_range=(1, 2), sublinear_tf=True), dict(ngram_range=(1, 3), min_df=2),
    dict(ngram_range=(1, 2), min_df=0.01, max_df=0.5), dict(ngram_range=(1, 2), lowercase=False, max_df=3),
    dict(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True), dict(analyzer="char_wb", ngram_range=(1, 3)),
    dict(analyzer="char_wb", ngram_range=(4, 7), min_df=2, lowercase=False),
])
def test_the_numpy_vocabulary_is_scikit_learns(request, data, settings):
    """``fit_block`` learns ``fit``'s vocabulary and idf; its training matrix is that vectorizer's
    ``transform`` of the training texts, bit for bit (scikit-learn's own ``fit_transform`` differs from
    it in the last bits: it sums each norm in the order terms were first seen)."""
    train, test = request.getfixturevalue(data)
    train = train + ODD
    expected, ours = TfidfVectorizer(**settings).fit(train), TfidfVectorizer(**settings)
    matrix = fit_block(ours, train)
    assert list(ours.vocabulary_.items()) == sorted(expected.vocabulary_.items(), key=lambda item: item[1])
    np.testing.assert_array_equal(ours.idf_, expected.idf_)
    matrix.check_format(full_check=True)
    assert_same(matrix, expected.transform(train))
    np.testing.assert_allclose(matrix.toarray(), TfidfVectorizer(**settings).fit_transform(train).toarray(),
                               rtol=1e-13, atol=1e-15)
    assert_transforms_like(ours, test, _CharWbWindows if ours.analyzer == "char_wb" else _WordWindows)
    assert_same(pickle.loads(pickle.dumps(ours)).transform(test), expected.transform(test))


@pytest.mark.parametrize("settings", [dict(ngram_range=(1, 3), min_df=2),
                                      dict(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)])
def test_the_numpy_vocabulary_is_the_same_learned_chunk_by_chunk(icd, monkeypatch, settings):
    """Texts read in chunks (a few thousand characters each here): the chunks' vocabularies merge into fit's."""
    import ktt.vocabulary

    train, _ = icd
    train = train + ODD
    for reader in (ktt.vocabulary._Words, ktt.vocabulary._CharWb):
        monkeypatch.setattr(reader, "chunk_characters", 5000)
    assert len(ktt.vocabulary._chunks(train, 5000)) > 20
    expected, ours = TfidfVectorizer(**settings).fit(train), TfidfVectorizer(**settings)
    matrix = fit_block(ours, train)
    assert ours.vocabulary_ == expected.vocabulary_
    np.testing.assert_array_equal(ours.idf_, expected.idf_)
    matrix.check_format(full_check=True)
    assert_same(matrix, expected.transform(train))


@pytest.mark.parametrize("texts, settings", [
    (["", "a b", " ! "], {}),  # no token: scikit-learn's "empty vocabulary"
    (["tea", "nuts"], dict(min_df=2)),  # min_df leaves no term
    (["tea", "nuts"], dict(min_df=2, max_df=1)),  # max_df below min_df
    (["tea", b"nuts"], {}),  # bytes: the analyser decodes them
    (["tea nuts tea"], dict(binary=True)), (["tea nuts tea"], dict(max_features=1)),
    (["tea nuts tea"], dict(ngram_range=(2, 2))), (["tea nuts"], dict(token_pattern=r"\w+")),
    (["w%d" % i for i in range(2000)], dict(ngram_range=(1, 6))),  # (words + 1) ** 6 n-gram keys overflow 64 bits
    (["", " \t "], dict(analyzer="char_wb")),  # no word
    (["tea\x00 nuts"], dict(analyzer="char_wb")),  # a NUL character ends a term's string early
    (["".join(map(chr, range(0x4E00, 0x4E00 + 9000)))], dict(analyzer="char_wb", ngram_range=(2, 5))),  # 9,000 ** 5
    (["tea nuts"], dict(analyzer="char")), (["tea nuts"], dict(analyzer="char_wb", strip_accents="ascii")),
    (["tea nuts"], dict(analyzer="char_wb", ngram_range=(4, 2))),  # scikit-learn says what is wrong
])
def test_the_numpy_vocabulary_leaves_other_cases_to_scikit_learn(texts, settings):
    vectorizer = TfidfVectorizer(**settings)
    assert fit_block(vectorizer, texts) is None
    assert not hasattr(vectorizer, "vocabulary_")


@pytest.mark.parametrize("settings", [dict(analyzer="char_wb", strip_accents="unicode"),
                                      dict(analyzer="char_wb", preprocessor=str.upper),
                                      dict(analyzer="char", ngram_range=(2, 4)),
                                      dict(stop_words=["of", "the"]), dict(token_pattern=r"(?u)\b\w+\b"),
                                      dict(analyzer="char_wb", ngram_range=(2, 4), vocabulary=["ab", " a", "fra"])])
def test_configurations_not_reproduced_take_the_analyser(icd, settings):
    train, test = icd
    assert_transforms_like(TfidfVectorizer(**settings).fit(train), test)


def test_batches_not_reproduced_take_the_analyser(icd):
    train, test = icd
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).fit(train)
    block = _BlockTransformer(vectorizer)
    # Every separator in the batch, bytes (decoded by the analyser): no windows, the analyser's values.
    for batch in (test[:20] + ["\uffff\U0010ffff\ufdd0\uf8ff"], test[:20] + [b"fractur of femur"]):
        assert block.windows.keys(batch, block.n_features, np.int64) is None
        assert_same(block_matrix(block, batch), vectorizer.transform(batch))
    words = _BlockTransformer(TfidfVectorizer(ngram_range=(1, 2)).fit(train))
    batch = test[:20] + ["_0_1_2_3_ _9_8_7_6_ _5_0_5_0_"]
    assert words.windows.keys(batch, words.n_features, np.int64) is None


def test_large_alphabets_and_sorted_child_tables_stay_exact(icd, monkeypatch):
    """3,000 distinct characters and 6-grams: keys ``(A + 1) ** 6`` would overflow 64 bits, trie nodes do not
    (the first level is dense, the next ones too large to be); with every level sorted, the same values."""
    train, test = icd
    rng = np.random.default_rng(0)
    cjk = [" ".join("".join(chr(0x4E00 + c) for c in rng.integers(0, 3000, 7)) for _ in range(6)) for _ in range(600)]
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 6)).fit(train + cjk[:500])
    dense = assert_transforms_like(vectorizer, test + cjk[500:], _CharWbWindows)
    assert {child.dtype for child in dense.windows.trie.children} == {np.dtype(np.int32), np.dtype(np.int64)}
    monkeypatch.setattr(ktt.features, "DENSE_CHILDREN", 0)
    for fitted, kind in ((vectorizer, _CharWbWindows), (TfidfVectorizer(ngram_range=(1, 3)).fit(train), _WordWindows)):
        block = assert_transforms_like(fitted, test + cjk[500:], kind)
        assert all(child.dtype == np.int64 for child in block.windows.trie.children)
