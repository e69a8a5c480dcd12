"""ktt's prediction path gives scikit-learn's own values, on whole real test splits.

The flat model's features, decisions and scores are compared with a
``TfidfVectorizer`` + classifier pipeline rebuilt from the same fitted state; the
hierarchical model's conditionals with each node classifier's own
``predict_proba`` / ``decision_function``; old checkpoints are converted on load.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from conftest import node_classifiers
from ktt.features import TfidfFeatures
from ktt.linear import softmax
from ktt.data.loaders import get_loaders
from ktt_models.tfidf_hsgd import TfidfHSGD
from ktt_models.tfidf_lsgd import TfidfLSGD

LOSSES = ["hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron"]


@pytest.fixture(scope="module")
def splits(icd_sample, tmp_path_factory):
    from ktt.data.flat_file import FlatFileAdapter

    dataset = FlatFileAdapter(path=str(icd_sample), name="icd_sample").adapt(tmp_path_factory.mktemp("cache"))
    train, val, test = get_loaders(dataset)
    return dataset.hierarchy, train, val, test


@pytest.mark.parametrize("settings", [dict(word_ngrams=1), dict(word_ngrams=2, sublinear_tf=True),
                                      dict(word_ngrams=2, char_ngrams=(2, 5), sublinear_tf=True, char_min_df=2)])
def test_features_equal_tfidfvectorizer_transform(splits, settings):
    _, train, _, test = splits
    features = TfidfFeatures(**settings)
    features.fit_transform(train.texts)
    expected = sparse.hstack([v.transform(test.texts) for v in features.vectorizers_], format="csr")
    ours = features.transform(test.texts)
    assert ours.shape == expected.shape and ours.has_sorted_indices
    for matrix in (ours, features.transform(test.texts[:1]), features.word_columns(ours)):
        matrix.check_format(full_check=True)  # assembled without scipy's constructor: still a valid CSR
        assert matrix.indices.dtype == matrix.indptr.dtype
    assert (features.word_columns(ours) != expected[:, :features.n_word_features_]).nnz == 0
    assert abs(ours - expected).max() <= 1e-12
    single = sparse.vstack([features.transform([text]) for text in test.texts[:50]])
    assert abs(single - expected[:50]).max() <= 1e-12
    odd = ["", "zzzz qqqq", "   ", "x"]  # empty or unknown texts: empty (or short) rows, no error
    expected_odd = sparse.hstack([v.transform(odd) for v in features.vectorizers_], format="csr")
    assert abs(features.transform(odd) - expected_odd).max() <= 1e-12 and features.transform([""]).nnz == 0


@pytest.mark.parametrize("loss", LOSSES)
def test_flat_scores_equal_the_sklearn_pipeline_on_the_whole_test_split(splits, loss):
    hierarchy, train, _, test = splits
    model = TfidfLSGD(loss=loss, min_df=2, word_ngrams=1, n_jobs=1).fit(train, hierarchy=hierarchy)
    pipeline = model.onnx_pipeline()  # the same fitted vectoriser and weights as scikit-learn objects
    classifier = pipeline.steps[-1][1]
    if loss in ("log_loss", "modified_huber"):
        expected = pipeline.predict_proba(test.texts)
    else:
        expected = softmax(pipeline.decision_function(test.texts))
    scores = model.predict_scores(test.texts)
    assert np.abs(scores - expected).max() <= 1e-9
    np.testing.assert_array_equal(model.predict(test.texts), model.classes_[expected.argmax(axis=1)])
    assert list(classifier.classes_) == list(model.classes_)


@pytest.mark.parametrize("loss", LOSSES)
def test_node_conditionals_equal_each_node_classifier(splits, loss):
    hierarchy, train, _, test = splits
    model = TfidfHSGD(loss=loss, min_df=2, word_ngrams=1, decoding="greedy", n_jobs=1).fit(train, hierarchy=hierarchy)
    features = model.encode(test.texts)
    conditionals = model.nodes_.conditionals(features)
    tasks, classifiers = node_classifiers(model, train)
    checked = 0
    for classifier in classifiers:
        if classifier is None:
            continue
        if loss == "log_loss":
            expected = classifier.predict_proba(features)
        elif loss == "modified_huber":
            expected = classifier.predict_proba(features)
        else:
            decision = classifier.decision_function(features)
            expected = softmax(np.column_stack([-decision, decision]) if decision.ndim == 1 else decision)
        got = conditionals[:, classifier.classes_]
        if loss == "modified_huber":  # ties broken by a 1e-6 share of the decisions' softmax
            assert np.abs(got - expected).max() <= 1e-6
            np.testing.assert_array_equal(classifier.classes_[got.argmax(axis=1)], classifier.predict(features))
        else:
            assert np.abs(got - expected).max() <= 1e-9
        checked += 1
    assert checked >= 3
    paths, _ = model.predict_path(test.texts)
    np.testing.assert_array_equal(np.asarray(hierarchy.classes, dtype=object)[paths[:, -1]], model.predict(test.texts))


def test_single_texts_and_batches_agree(splits):
    hierarchy, train, val, test = splits
    model = TfidfHSGD(min_df=2, n_jobs=1).fit(train, val, hierarchy=hierarchy)
    batch_paths, batch_scores = model.predict_path(test.texts[:40])
    for i, text in enumerate(test.texts[:40]):
        paths, scores = model.predict_path([text])
        np.testing.assert_array_equal(paths[0], batch_paths[i])
        np.testing.assert_allclose(scores[0], batch_scores[i], atol=1e-12)


@pytest.mark.parametrize("model_class, settings", [(TfidfLSGD, dict(loss="hinge")),
                                                   (TfidfHSGD, dict(loss="modified_huber", decoding="greedy"))])
def test_an_old_checkpoint_loads_and_predicts_as_it_did(splits, tmp_path, model_class, settings):
    """A checkpoint in the old layout (sklearn objects, a ``hierarchy`` parameter) is converted on load."""
    from ktt.model import Model

    hierarchy, train, _, test = splits
    model = model_class(min_df=2, word_ngrams=1, n_jobs=1, **settings).fit(train, hierarchy=hierarchy)
    expected = model.test(test)
    old = model_class.__new__(model_class)
    state = {k: v for k, v in model.__dict__.items() if k in ("loss", "max_iter", "min_df", "class_weight",
                                                               "random_state", "n_jobs", "classes_")}
    state["hierarchy"] = hierarchy
    vectorizer = model.features_.vectorizers_[0]
    if model_class is TfidfLSGD:
        state["pipeline_"] = model.onnx_pipeline()
    else:
        from ktt_models.tfidf_hsgd.legacy import ParentNode

        tasks, classifiers = node_classifiers(model, train)
        state.update(vectorizer_=vectorizer, progress=False,
                     nodes_=[ParentNode(t.parent, t.level, t.children, t.seen, c) for t, c in zip(tasks, classifiers)])
    old.__dict__.update(state)
    old.save(tmp_path / "old.joblib")
    loaded = Model.from_checkpoint(tmp_path / "old.joblib")
    assert isinstance(loaded, model_class) and loaded.hierarchy == hierarchy
    output = loaded.test(test)
    np.testing.assert_array_equal(output["predictions"], expected["predictions"])
    np.testing.assert_array_equal(output["paths"], expected["paths"])
    assert np.abs(output["scores"] - expected["scores"]).max() <= 1e-9


def test_data_aware_defaults_follow_the_training_texts():
    from ktt.features import AUTO_CHAR_MAX_LENGTH, resolve_char_ngrams
    from ktt.tfidf import auto_min_df

    short, long = ["red apple juice"] * 10, ["word " * 100] * 10
    assert resolve_char_ngrams("auto", short) == (2, 5) and resolve_char_ngrams("auto", long) is None
    assert resolve_char_ngrams("auto", ["x" * AUTO_CHAR_MAX_LENGTH] * 3) == (2, 5)
    assert resolve_char_ngrams([3, 4], long) == (3, 4) and resolve_char_ngrams(None, short) is None
    assert [auto_min_df(n) for n in (10, 99_999, 100_000, 250_000)] == [1, 1, 1, 2]
    features = TfidfFeatures(char_ngrams="auto")
    features.fit_transform(short + ["green tea leaves"] * 10)
    assert features.char_ngrams_ == (2, 5) and len(features.vectorizers_) == 2
    assert features.n_word_features_ == len(features.vectorizers_[0].vocabulary_)
    matrix = features.transform(["red tea"])
    word = features.word_columns(matrix)
    assert word.shape[1] == features.n_word_features_
    assert abs(word - features.vectorizers_[0].transform(["red tea"])).max() <= 1e-12


def test_split_weights_give_the_sparse_product():
    """Frequent features' weight rows dense, the rest sparse: the same product for one row, few rows and a batch."""
    from ktt.linear import FEW_ROWS, SplitWeights

    rng = np.random.default_rng(0)
    weights = sparse.random(300, 40, density=0.05, random_state=1, format="csr")
    weights[:10] = rng.normal(size=(10, 40))  # frequent features: dense rows
    split = SplitWeights(weights)
    assert split.dense.shape == (10, 40) and split.rest[:10].nnz == 0
    np.testing.assert_array_equal(split.toarray(), weights.toarray())
    features = sparse.random(FEW_ROWS + 40, 300, density=0.05, random_state=2, format="csr")
    features[3] = 0  # an empty row (a text with no known term)
    features.eliminate_zeros()
    expected = (features @ weights).toarray()
    np.testing.assert_allclose(split.product(features), expected, atol=1e-12)
    np.testing.assert_allclose(split.product(features[:FEW_ROWS]), expected[:FEW_ROWS], atol=1e-12)
    np.testing.assert_allclose(split.product(features[5:6]), expected[5:6], atol=1e-12)
    np.testing.assert_allclose(split.product(features[:FEW_ROWS + 3]), expected[:FEW_ROWS + 3], atol=1e-12)


def test_a_large_sparse_node_layout_predicts_as_the_dense_one(splits, tmp_path, monkeypatch):
    """Node weights over the size limit are kept split (SplitWeights); a checkpoint holding them as one CSR
    matrix (before the split) is converted on load; predictions and scores do not change."""
    import pickle

    import ktt.linear
    from ktt.linear import SplitWeights
    from ktt.model import Model

    hierarchy, train, val, test = splits
    settings = dict(min_df=1, char_ngrams=(2, 4), n_jobs=1)
    dense = TfidfHSGD(**settings).fit(train, val, hierarchy=hierarchy)
    monkeypatch.setattr(ktt.linear, "DENSE_MAX_BYTES", 0)
    split = TfidfHSGD(**settings).fit(train, val, hierarchy=hierarchy)
    assert isinstance(split.nodes_.scorer.weights, SplitWeights) and len(split.nodes_.scorer.weights.dense)
    expected = dense.test(test)
    for model in (split, _with_csr_weights(split, pickle)):
        model.save(tmp_path / "model.joblib")
        output = Model.from_checkpoint(tmp_path / "model.joblib").test(test)
        np.testing.assert_array_equal(output["predictions"], expected["predictions"])
        assert np.abs(output["scores"] - expected["scores"]).max() <= 1e-9


def _with_csr_weights(model, pickle):
    """A copy of ``model`` whose node weights are one CSR matrix, as checkpoints before SplitWeights hold them."""
    copy = pickle.loads(pickle.dumps(model))
    scorer = copy.nodes_.scorer
    scorer.__dict__["weights"] = sparse.csr_matrix(scorer.weights.toarray())
    return copy


@pytest.mark.parametrize("rule", ["softmax", "logistic", "modified_huber"])
def test_group_rules_give_the_same_bits_by_blocks_and_by_reduceat_and_in_any_chunk(rule, monkeypatch):
    import ktt.linear as linear

    rng = np.random.default_rng(0)
    sizes = [22] + list(rng.integers(1, 20, 60))
    starts = np.cumsum([0] + sizes[:-1])
    group_of = np.repeat(np.arange(len(sizes)), sizes)
    decisions = rng.standard_normal((300, sum(sizes))) * 2
    decisions[:, 5:9] = 3.0  # equal clipped values: modified_huber's ties
    decisions[:10, 22:40] = -5.0  # groups whose clipped values are all 0
    results = {}
    for name, entries in (("reduceat", 10**12), ("blocks", 1)):
        monkeypatch.setattr(linear, "BLOCK_ENTRIES", entries)
        results[name] = (linear.apply_rule(decisions.copy(), rule, starts, group_of, tie_break=True),
                         linear.segment_reduce(np.add, np.abs(decisions), starts),
                         linear.segment_reduce(np.maximum, decisions, starts))
        # a row's scores are the same bits whatever the rows around it (chunked scoring relies on it)
        for rows in (slice(0, 1), slice(5, 12)):
            part = linear.apply_rule(decisions[rows].copy(), rule, starts, group_of, tie_break=True)
            np.testing.assert_array_equal(part, results[name][0][rows])
    for by_reduceat, by_blocks in zip(results["reduceat"], results["blocks"]):
        np.testing.assert_array_equal(by_blocks, by_reduceat)
