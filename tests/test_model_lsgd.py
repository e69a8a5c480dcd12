import numpy as np
import pandas as pd
import pytest

from ktt.data.loaders import Loader
from ktt.errors import KttError
from ktt.hierarchy import Hierarchy
from ktt.linear import SVM_TOL
from ktt.model import Model
from ktt.pooling import pool_features
from ktt_models.tfidf_lsgd import TfidfLSGD

PATHS = {
    "chip": ("Food", "Snacks", "Chips"),
    "nut": ("Food", "Snacks", "Nuts"),
    "tea": ("Food", "Drinks", "Tea"),
    "hose": ("Home", "Garden", "Hose"),
}


def loader(n_per_class=20, seed=0):
    rng = np.random.default_rng(seed)
    texts, targets = [], []
    words = {"chip": "salt crisp potato", "nut": "peanut roast almond", "tea": "green leaf brew", "hose": "water garden pipe"}
    for key, vocab in words.items():
        for _ in range(n_per_class):
            tokens = rng.choice(vocab.split() + ["the", "pack", "big"], size=5)
            texts.append(" ".join(tokens))
            targets.append(PATHS[key][-1])
    return Loader(texts, np.asarray(targets, dtype=object))


def hierarchy():
    return Hierarchy.from_paths(PATHS.values())[0]


@pytest.mark.parametrize("loss", ["hinge", "log_loss", "log", "modified_huber", "squared_hinge", "perceptron"])
def test_every_loss_gives_usable_scores(loss):
    model = TfidfLSGD(loss=loss, min_df=1).fit(loader(), hierarchy=hierarchy())
    output = model.test(loader(seed=1))
    scores = output["scores"]
    assert scores.shape == (80, 4)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-9)
    assert (scores >= 0).all()
    assert (output["predictions"] == model.classes_[scores.argmax(axis=1)]).all()
    assert (output["predictions"] == output["targets"]).mean() > 0.9
    assert output["targets_b"].shape == scores.shape
    assert (output["targets_b"].sum(axis=1) == 1).all()


def test_test_dict_and_reference_set_columns():
    model = TfidfLSGD(min_df=1).fit(loader())
    output = model.test(loader(seed=1), return_encodings=True)
    assert {"targets", "targets_b", "predictions", "scores", "encodings"} <= set(output)
    n_features = model.features_.n_features_
    assert output["encodings"].shape == (80, -(-n_features // 64))
    reference = model.gen_reference_set(loader(seed=1))
    features = [c for c in reference.columns if c.startswith("F")]
    assert list(reference.columns) == ["targets", *features, *[f"C{c}" for c in model.classes_]]
    assert features == [f"F{i}" for i in range(len(features))]


def test_pool_features_averages_consecutive_columns():
    matrix = np.arange(10, dtype=float).reshape(1, 10)
    np.testing.assert_allclose(pool_features(matrix, pool=4), [[1.5, 5.5, 8.5]])


def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    model = TfidfLSGD(loss="hinge", min_df=1).fit(loader(), hierarchy=hierarchy())
    digest = model.save(tmp_path / "model.joblib")
    assert (tmp_path / "model.joblib.sha256").read_text().startswith(digest)
    again = TfidfLSGD.from_checkpoint(tmp_path / "model.joblib")
    other = TfidfLSGD().load(tmp_path / "model.joblib")
    base = Model.from_checkpoint(tmp_path / "model.joblib")
    test = loader(seed=2)
    for loaded in (again, other, base):
        np.testing.assert_array_equal(loaded.predict(test.texts), model.predict(test.texts))
        np.testing.assert_array_equal(loaded.predict_scores(test.texts), model.predict_scores(test.texts))
        assert loaded.hierarchy == model.hierarchy and loaded.loss == "hinge"


def test_corrupt_or_unverified_checkpoints_are_refused(tmp_path):
    model = TfidfLSGD(min_df=1).fit(loader())
    path = tmp_path / "model.joblib"
    model.save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(KttError, match="does not match its recorded sha256"):
        TfidfLSGD.from_checkpoint(path)
    (tmp_path / "model.joblib.sha256").unlink()
    with pytest.raises(KttError, match="has no model.joblib.sha256 beside it"):
        TfidfLSGD.from_checkpoint(path)
    garbage = tmp_path / "garbage.joblib"
    garbage.write_bytes(b"\x80\x04garbage")
    from ktt.files import file_sha256
    with pytest.raises(KttError, match="cannot load checkpoint"):
        TfidfLSGD.from_checkpoint(garbage, sha256=file_sha256(garbage))


def test_same_seed_same_model():
    a = TfidfLSGD(min_df=1, random_state=3).fit(loader())
    b = TfidfLSGD(min_df=1, random_state=3).fit(loader())
    test = loader(seed=4)
    np.testing.assert_array_equal(a.predict_scores(test.texts), b.predict_scores(test.texts))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"loss": "foo"}, r"invalid loss='foo' \(allowed: hinge, log_loss, log, modified_huber, squared_hinge, perceptron\)"),
        ({"min_df": -1}, r"invalid min_df=-1 \(allowed: auto or an integer in \[1, inf\] or a number in \(0, 1\]\)"),
        ({"max_iter": 0}, r"invalid max_iter=0"),
        ({"tol": 0.0}, r"invalid tol=0.0 \(allowed: auto or a number in \(0, inf\)\)"),
        ({"tol": "fast"}, r"invalid tol='fast'"),
        ({"class_weight": "auto"}, r"invalid class_weight='auto' \(allowed: null or balanced\)"),
        ({"min_df": 500}, r"min_df=500 is larger than the 80 training texts; lower min_df"),
        ({"min_df": 0.99}, r"min_df=0.99 leaves no terms in the vocabulary of the 80 training texts; lower min_df"),
    ],
)
def test_bad_hyperparameters_are_one_line_errors(params, message):
    with pytest.raises(KttError, match=message):
        TfidfLSGD(**params).fit(loader())


@pytest.mark.parametrize("params, warning", [
    (dict(learner="svm", loss="hinge", alpha=1e-3), "learner=svm ignores loss='hinge', alpha=0.001 (its settings: C)"),
    (dict(learner="sgd", C=0.5), "learner=sgd ignores C=0.5 (its settings: loss, alpha)"),
    (dict(learner="svm", C=0.5), None), (dict(learner="sgd", loss="hinge", alpha=1e-3), None), (dict(), None)])
def test_a_setting_of_another_learner_is_warned_about(params, warning, caplog):
    with caplog.at_level("WARNING", logger="ktt.tfidf"):
        TfidfLSGD(n_jobs=1, **params).fit(loader())
    assert [r.getMessage() for r in caplog.records if "ignores" in r.getMessage()] == ([warning] if warning else [])


def test_balanced_class_weight_reaches_the_learner():
    texts, targets = loader()
    texts, targets = texts[:50], targets[:50]  # 20 chips, 20 nuts, 10 tea
    plain = TfidfLSGD(loss="log_loss", min_df=1).fit(Loader(texts, targets))
    balanced = TfidfLSGD(loss="log_loss", min_df=1, class_weight="balanced").fit(Loader(texts, targets))
    assert balanced._new_classifier().class_weight == "balanced"
    test = loader(seed=3).texts
    assert not np.allclose(balanced.predict_scores(test), plain.predict_scores(test))


@pytest.mark.parametrize("learner, tol, expected", [("svm", "auto", SVM_TOL), ("sgd", "auto", 1e-3), ("logreg", "auto", 1e-4),
                                                    ("svm", 0.5, 0.5), ("sgd", 0.5, 0.5), ("logreg", 0.5, 0.5)])
def test_the_tolerance_reaches_the_learner(learner, tol, expected):
    classifier = TfidfLSGD(learner=learner, tol=tol)._new_classifier()
    assert getattr(classifier, "estimator", classifier).tol == expected


@pytest.mark.parametrize("learner, tol", [("svm", 1e-4), ("sgd", "auto")])
def test_a_checkpoint_from_before_tol_refits_with_the_tolerance_it_was_trained_with(learner, tol):
    model = TfidfLSGD(min_df=1, learner=learner).fit(loader(), hierarchy=hierarchy())
    state = model.__getstate__()
    del state["tol"]
    old = TfidfLSGD.__new__(TfidfLSGD)
    old.__setstate__(state)
    assert old.get_params()["tol"] == tol
    np.testing.assert_array_equal(old.predict_scores(loader(seed=2).texts), model.predict_scores(loader(seed=2).texts))


def test_one_class_is_an_error():
    with pytest.raises(KttError, match="fewer than 2 leaf classes"):
        TfidfLSGD(min_df=1).fit(Loader(["a b", "a c"], np.array(["x", "x"], dtype=object)))


def test_predict_path_is_the_leaf_and_its_ancestors_with_level_probabilities():
    h = hierarchy()
    model = TfidfLSGD(loss="log_loss", min_df=1).fit(loader(), hierarchy=h)
    test = loader(seed=5)
    paths, path_scores = model.predict_path(test.texts)
    assert paths.shape == path_scores.shape == (80, 3)
    leaves = model.predict(test.texts)
    np.testing.assert_array_equal(paths, h.leaf_path_indices(leaves))
    scores = model.predict_scores(test.texts)
    np.testing.assert_allclose(path_scores[:, -1], scores.max(axis=1))
    # a parent's probability is at least its most likely child's, and the top level sums its leaves
    assert (path_scores[:, 0] >= path_scores[:, 1] - 1e-12).all() and (path_scores[:, 1] >= path_scores[:, 2] - 1e-12).all()
    food = [model.classes_.tolist().index(c) for c in ("Chips", "Nuts", "Tea")]
    is_food = paths[:, 0] == h.index["Food"]
    np.testing.assert_allclose(path_scores[is_food, 0], scores[is_food][:, food].sum(axis=1))
    output = model.test(test)
    np.testing.assert_array_equal(output["paths"], paths)


def test_svm_temperature_changes_scores_not_labels():
    """``temperature="auto"`` fits the softmax scale on validation (smallest log-loss); labels stay the same."""
    from ktt.linear import TEMPERATURES

    train, val = loader(), loader()
    one = TfidfLSGD(learner="svm", min_df=1, temperature=1.0).fit(train, val, hierarchy=hierarchy())
    auto = TfidfLSGD(learner="svm", min_df=1).fit(train, val, hierarchy=hierarchy())
    assert auto.temperature_ in TEMPERATURES
    assert auto.predict(val.texts).tolist() == one.predict(val.texts).tolist()
    column = {name: i for i, name in enumerate(auto.classes_)}
    truth = np.array([column[t] for t in val.targets])

    def log_loss(model):
        return -np.mean(np.log(model.predict_scores(val.texts)[np.arange(len(truth)), truth]))

    for t in TEMPERATURES:
        fixed = TfidfLSGD(learner="svm", min_df=1, temperature=t).fit(train, val, hierarchy=hierarchy())
        assert log_loss(auto) <= log_loss(fixed) + 1e-12


def test_liblinear_class_groups_solve_the_same_problems_as_one_fit():
    """learner=svm on several cores: each group's classes get the weights of one fit over every class."""
    from sklearn.svm import LinearSVC

    from ktt.features import TfidfFeatures
    from ktt.linear import class_groups, classifier_columns, fit_class_group, join_class_groups

    train = loader(n_per_class=30)
    features = TfidfFeatures(min_df=1).fit_transform(train.texts)
    whole = LinearSVC(tol=1e-8, max_iter=100_000).fit(features, train.targets)
    groups = class_groups(train.targets, 2)
    assert [len(g) for g in groups] == [2, 2] and sorted(np.concatenate(groups)) == sorted(set(train.targets))
    assert len(class_groups(train.targets, 8)) == 2  # never a group of one class (a binary problem)
    for class_weight in (None, "balanced"):
        whole.set_params(class_weight=class_weight).fit(features, train.targets)
        new = lambda: LinearSVC(tol=1e-8, max_iter=100_000, class_weight=class_weight)  # noqa: E731
        joined = join_class_groups([fit_class_group(new, features, train.targets, g) for g in groups])
        assert list(joined.classes_) == list(whole.classes_)
        weights, intercepts = classifier_columns(whole)
        np.testing.assert_allclose(joined.weights, weights, atol=1e-5)
        np.testing.assert_allclose(joined.intercepts, intercepts, atol=1e-5)


def test_svm_model_fits_its_classes_in_groups_on_every_core():
    one = TfidfLSGD(learner="svm", min_df=1, n_jobs=1).fit(loader(n_per_class=30), hierarchy=hierarchy())
    two = TfidfLSGD(learner="svm", min_df=1, n_jobs=2).fit(loader(n_per_class=30), hierarchy=hierarchy())
    test = loader(seed=3)
    assert list(one.classes_) == list(two.classes_)
    np.testing.assert_array_equal(one.predict(test.texts), two.predict(test.texts))
    np.testing.assert_allclose(one.predict_scores(test.texts), two.predict_scores(test.texts), atol=1e-3)
