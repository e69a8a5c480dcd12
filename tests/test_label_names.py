"""Leaf names as training texts: which names, when ``auto`` adds them, and what a model gains from them."""

import numpy as np
import pytest

from ktt.data.loaders import Loader
from ktt.hierarchy import Hierarchy
from ktt.label_names import AUTO_SHARE, leaf_name_texts, share_with_words, with_label_names
from ktt.model import Model
from ktt_models.tfidf_hsgd import TfidfHSGD
from ktt_models.tfidf_lsgd import TfidfLSGD

# "Cough syrup" and "Throat lozenges" have no training row; their names are in the taxonomy.
PATHS = [("Food", "Snacks", "Potato chips"), ("Food", "Snacks", "Salted nuts"), ("Food", "Drinks", "Green tea"),
         ("Health", "Cold", "Cough syrup"), ("Health", "Cold", "Throat lozenges")]
ROWS = {"Potato chips": "crisp potato chip salt", "Salted nuts": "roast salted peanut almond",
        "Green tea": "green tea leaf brew"}


def loader(n_per_class=12, seed=0):
    rng = np.random.default_rng(seed)
    texts, targets = [], []
    for leaf, words in ROWS.items():
        for _ in range(n_per_class):
            texts.append(" ".join(rng.choice(words.split() + ["pack", "big", "the"], size=5)))
            targets.append(leaf)
    return Loader(texts, np.asarray(targets, dtype=object))


def test_a_leaf_name_is_its_own_label_preprocessed_also_for_repeated_labels_and_stops():
    hierarchy, _ = Hierarchy.from_paths([("Food", "Other"), ("Home", "Other"), ("Gift cards",), ("Home", "Garden")])
    names = dict(zip(hierarchy.leaf_classes, leaf_name_texts(hierarchy)))
    # "Other" names two classes: the hierarchy calls them "Food > Other" and "Home > Other"
    assert names["Food > Other"] == names["Home > Other"] == "other"
    assert names["Gift cards > <stop>"] == "gift card"  # a stop stands for the class it stops at
    assert names["Garden"] == "garden"


def test_auto_share_counts_names_with_a_word_of_the_texts():
    texts = ["green tea leaf", "roast peanut", "water hose"]
    assert share_with_words(["green tea", "peanut", "garden hose", "shovel"], texts) >= AUTO_SHARE
    assert share_with_words(["a01b", "a01c", "b65d"], texts) == 0.0
    assert share_with_words(["a01b", "a01c", "tea"], texts) == pytest.approx(1 / 3)
    assert share_with_words([], texts) == 0.0


@pytest.mark.parametrize("label_names,added", [(True, True), (False, False), ("auto", True)])
def test_with_label_names_adds_one_row_per_leaf(label_names, added):
    hierarchy, _ = Hierarchy.from_paths(PATHS)
    train = loader()
    texts, targets, used = with_label_names(label_names, hierarchy, *train)
    assert used is added
    extra = len(hierarchy.leaf_classes) if added else 0
    assert len(texts) == len(targets) == len(train.texts) + extra
    assert texts[: len(train.texts)] == train.texts
    if added:
        assert dict(zip(targets[-extra:], texts[-extra:]))["Cough syrup"] == "cough syrup"


def test_auto_leaves_names_that_are_codes_out():
    hierarchy, _ = Hierarchy.from_paths([("A", "A01B"), ("A", "A01C"), ("B", "B65D")])
    train = Loader(["plough soil", "sow seed", "contain box"] * 4, np.asarray(["A01B", "A01C", "B65D"] * 4, dtype=object))
    texts, _, used = with_label_names("auto", hierarchy, *train)
    assert not used and texts == train.texts


@pytest.mark.parametrize("model_class", [TfidfLSGD, TfidfHSGD])
def test_a_class_without_training_rows_is_predicted_from_its_name(model_class):
    hierarchy, _ = Hierarchy.from_paths(PATHS)
    model = model_class(min_df=1, learner="svm").fit(loader(), hierarchy=hierarchy)
    assert model.label_names_
    assert model.predict(["cough syrup for the night", "throat lozenges"]).tolist() == ["Cough syrup", "Throat lozenges"]
    without = model_class(min_df=1, learner="svm", label_names=False).fit(loader(), hierarchy=hierarchy)
    assert not without.label_names_
    assert "Cough syrup" not in without.predict(["cough syrup for the night", "throat lozenges"]).tolist()
    # the rows it was trained on keep their labels
    train = loader(seed=1)
    assert (model.predict(train.texts) == train.targets).mean() == 1.0


def test_auto_off_gives_the_model_without_names():
    hierarchy, _ = Hierarchy.from_paths([("A", "A01B"), ("A", "A01C"), ("B", "B65D")])
    train = Loader(["plough soil field", "sow seed drill", "contain box lid"] * 4,
                   np.asarray(["A01B", "A01C", "B65D"] * 4, dtype=object))
    auto = TfidfHSGD(min_df=1).fit(train, hierarchy=hierarchy)
    off = TfidfHSGD(min_df=1, label_names=False).fit(train, hierarchy=hierarchy)
    features = auto.encode(["plough the seed", "a box"])
    np.testing.assert_array_equal(auto.score_features(features), off.score_features(off.encode(["plough the seed", "a box"])))


def test_a_checkpoint_from_before_label_names_loads_as_trained_without_them(tmp_path):
    hierarchy, _ = Hierarchy.from_paths(PATHS)
    model = TfidfLSGD(min_df=1, label_names=False).fit(loader(), hierarchy=hierarchy)
    state = model.__getstate__()
    del state["label_names"], state["label_names_"]
    old = TfidfLSGD.__new__(TfidfLSGD)
    old.__setstate__(state)
    path = tmp_path / "model.joblib"
    old.save(path)
    loaded = Model.from_checkpoint(path)
    assert loaded.get_params()["label_names"] is False and loaded.label_names_ is False
    assert loaded.predict(["green tea"]).tolist() == ["Green tea"]
