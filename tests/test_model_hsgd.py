"""tfidf_hsgd: per-parent-node classifiers, decoded greedily, globally or blended with a flat one; always a valid path."""

import numpy as np
import pytest
from sklearn.base import clone

from conftest import mlflow_runs, node_classifiers, run_cli
from ktt.data.loaders import Loader, get_loaders
from ktt.errors import KttError
from ktt.hierarchy import Hierarchy
from ktt.linear import softmax
from ktt.metrics import get_metrics, path_consistency
from ktt.model import Model
from ktt_models.tfidf_hsgd import TfidfHSGD
from ktt_models.tfidf_lsgd import TfidfLSGD

LOSSES = ["hinge", "log_loss", "log", "modified_huber", "squared_hinge", "perceptron"]

# Food > Snacks has two leaves, Food > Drinks one (a single-child node),
# Home > Garden one; Home > Tools > {Saw, Drill} never occurs in training.
PATHS = {
    "chip": ("Food", "Snacks", "Chips"),
    "nut": ("Food", "Snacks", "Nuts"),
    "tea": ("Food", "Drinks", "Tea"),
    "hose": ("Home", "Garden", "Hose"),
}
UNSEEN = [("Home", "Tools", "Saw"), ("Home", "Tools", "Drill")]
WORDS = {"chip": "salt crisp potato", "nut": "peanut roast almond", "tea": "green leaf brew",
         "hose": "water garden pipe"}


def toy_loader(n_per_class=20, seed=0, keys=tuple(WORDS)):
    rng = np.random.default_rng(seed)
    texts, targets = [], []
    for key in keys:
        for _ in range(n_per_class):
            texts.append(" ".join(rng.choice(WORDS[key].split() + ["the", "pack", "big"], size=5)))
            targets.append(PATHS[key][-1])
    return Loader(texts, np.asarray(targets, dtype=object))


def toy_hierarchy(unseen=False):
    return Hierarchy.from_paths([*PATHS.values(), *(UNSEEN if unseen else [])])[0]


def assert_valid_paths(paths, hierarchy):
    """Every row is a root-to-leaf chain of ``parent_of``."""
    parent_of = np.asarray(hierarchy.parent_of)
    assert (parent_of[paths[:, 0]] == -1).all()
    for level in range(1, hierarchy.depth):
        assert (parent_of[paths[:, level]] == paths[:, level - 1]).all()
    assert (paths[:, -1] >= hierarchy.level_offsets[-2]).all()


def level_scores(scores, hierarchy, level):
    """Summed leaf scores (n x level size) below each class of ``level`` (columns in leaf order)."""
    ancestors = hierarchy.leaf_paths[:, level] - hierarchy.level_offsets[level]
    summed = np.zeros((len(scores), hierarchy.level_sizes[level]))
    np.add.at(summed.T, ancestors, scores.T)
    return summed


# ------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def icd_fitted(icd_sample, tmp_path_factory):
    """tfidf_hsgd (hinge) fitted on the train split of the ICD sample, through the flat-file adapter."""
    from ktt.data.flat_file import FlatFileAdapter

    dataset = FlatFileAdapter(path=str(icd_sample), name="icd_sample").adapt(tmp_path_factory.mktemp("cache"))
    train, val, test = get_loaders(dataset)
    model = TfidfHSGD(loss="hinge", min_df=2, decoding="greedy").fit(train, val, hierarchy=dataset.hierarchy)
    return model, test, train


def test_every_prediction_is_a_valid_path_on_real_data(icd_fitted):
    model, test, _ = icd_fitted
    output = model.test(test)
    hierarchy = model.hierarchy
    assert_valid_paths(output["paths"], hierarchy)
    leaves = np.asarray(hierarchy.classes, dtype=object)[output["paths"][:, -1]]
    np.testing.assert_array_equal(output["predictions"], leaves)
    metrics = get_metrics(output, hierarchy)
    assert metrics["path_consistency"] == 1.0
    assert metrics["leaf_accuracy"] > 0.5
    assert metrics["level1_accuracy"] >= metrics["level2_accuracy"] >= metrics["leaf_accuracy"]
    # the model's classes are all the hierarchy's leaves, in its order
    assert model.classes_.tolist() == hierarchy.leaf_classes
    assert output["scores"].shape == (len(test.texts), hierarchy.level_sizes[-1])


def test_reference_set_has_a_score_column_per_leaf(icd_fitted):
    model, test, _ = icd_fitted
    small = Loader(test.texts[:50], test.targets[:50])
    reference = model.gen_reference_set(small)
    features = [c for c in reference.columns if c.startswith("F")]
    n_features = model.features_.n_features_
    assert features == [f"F{i}" for i in range(-(-n_features // 64))]
    assert list(reference.columns) == ["targets", *features, *[f"C{c}" for c in model.classes_]]


def test_modified_huber_ties_go_to_the_larger_decision_score(icd_fitted):
    """Clipped probabilities tie (all 0, or several 1); each node must still choose as sklearn's predict."""
    hinge_model, test, train = icd_fitted
    hierarchy = hinge_model.hierarchy
    model = clone(hinge_model).set_params(loss="modified_huber").fit(train, hierarchy=hierarchy)
    features = model.encode([*test.texts[:300], "", "unrelated words only"])
    conditionals = model.nodes_.conditionals(features)
    tasks, classifiers = node_classifiers(model, train)
    tied = 0
    for classifier in classifiers:
        if classifier is None:
            continue
        probabilities = classifier.predict_proba(features)
        tied += ((probabilities == probabilities.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum()
        chosen = classifier.classes_[conditionals[:, classifier.classes_].argmax(axis=1)]
        np.testing.assert_array_equal(chosen, classifier.predict(features))
    assert tied > 0  # the case arises on this data


# ------------------------------------------------------- top down vs flat leaves
def crafted():
    """Top A has five leaves sharing the word alpha; top B has one leaf, b0, with beta.

    A text of alphas and betas spreads A's probability over five leaves, so the
    single most probable leaf can be b0 while A is the most probable top class.
    """
    paths = [("A", f"a{i}") for i in range(5)] + [("B", "b0")]
    rng = np.random.default_rng(0)
    texts, targets = [], []
    for top, leaf in paths:
        common = "alpha" if top == "A" else "beta"
        for _ in range(20):
            words = rng.choice([common, common, f"w{leaf}", f"w{leaf}", "the"], size=4)
            texts.append(" ".join(words) + f" w{leaf}")
            targets.append(leaf)
    mixtures = [" ".join(["alpha"] * k + ["beta"] * j) for k in range(1, 7) for j in range(1, 4)]
    return Hierarchy.from_paths(paths)[0], Loader(texts, np.asarray(targets, dtype=object)), mixtures


def test_flat_leaves_per_level_can_be_inconsistent_but_top_down_paths_cannot():
    hierarchy, train, mixtures = crafted()
    test = Loader(mixtures, np.full(len(mixtures), "a0", dtype=object))

    # tfidf_lsgd, each level decided on its own from the summed leaf probabilities
    flat = TfidfLSGD(loss="log_loss", min_df=1).fit(train, hierarchy=hierarchy)
    scores = flat.predict_scores(test.texts)
    per_level = np.column_stack([
        hierarchy.level_offsets[level] + level_scores(scores, hierarchy, level).argmax(axis=1)
        for level in range(hierarchy.depth)
    ])
    assert path_consistency(per_level, hierarchy) < 1.0  # the data do show the problem

    model = TfidfHSGD(loss="log_loss", min_df=1, decoding="greedy").fit(train, hierarchy=hierarchy)
    output = model.test(test)
    assert get_metrics(output, hierarchy)["path_consistency"] == 1.0
    # the top class is the most probable one, and the leaf the most probable child under it ...
    probabilities = model.path_probabilities(model.encode(test.texts))
    top = level_scores(probabilities, hierarchy, 0).argmax(axis=1)
    np.testing.assert_array_equal(output["paths"][:, 0], top)
    children = np.where(hierarchy.leaf_paths[:, 0][None, :] == top[:, None], probabilities, -np.inf)
    np.testing.assert_array_equal(output["paths"][:, 1], hierarchy.level_offsets[1] + children.argmax(axis=1))
    # ... even where the single most probable leaf lies under the other top class,
    most_probable_top = hierarchy.leaf_paths[probabilities.argmax(axis=1), 0]
    assert (most_probable_top != top).any()
    # and the prediction (the argmax of the scores) is the path's leaf in every row.
    leaves = output["paths"][:, 1] - hierarchy.level_offsets[1]
    np.testing.assert_array_equal(output["predictions"], model.classes_[leaves])


def ambiguous():
    """A text that is a0, a1 or a2 one time in five each, and b0 two times in five.

    P(A | text) = 0.6 > P(B | text) = 0.4, so greedy top-down decoding chooses A
    and then one of its three leaves: right one time in five. The most probable
    leaf is b0, right two times in five: the best any decoding can do.
    """
    hierarchy = Hierarchy.from_paths([("A", "a0"), ("A", "a1"), ("A", "a2"), ("B", "b0")])[0]
    texts = ["same words"] * 100 + ["alpha one"] * 20 + ["alpha two"] * 20 + ["alpha three"] * 20 + ["beta"] * 20
    targets = ["a0", "a1", "a2"] * 20 + ["b0"] * 40 + ["a0"] * 20 + ["a1"] * 20 + ["a2"] * 20 + ["b0"] * 20
    test = Loader(["same words"] * 10, np.array(["a0", "a1", "b0", "a2", "b0", "a0", "b0", "a1", "b0", "a2"], dtype=object))
    return hierarchy, Loader(texts, np.asarray(targets, dtype=object)), test


@pytest.mark.parametrize("decoding", ["global", "blend"])
def test_greedy_top_down_decoding_is_provably_wrong_where_global_and_blend_are_right(decoding):
    hierarchy, train, test = ambiguous()
    # liblinear's logistic regression: calibrated enough to learn the odds of the ambiguous text
    settings = dict(learner="logreg", C=100.0, min_df=1)
    greedy = TfidfHSGD(decoding="greedy", **settings).fit(train, hierarchy=hierarchy)
    other = TfidfHSGD(decoding=decoding, **settings).fit(train, train, hierarchy=hierarchy)
    probabilities = other.path_probabilities(other.encode(["same words"]))[0]
    np.testing.assert_allclose(probabilities, [0.2, 0.2, 0.2, 0.4], atol=0.05)  # the classifiers learned the odds
    assert greedy.predict(["same words"])[0] in ("a0", "a1", "a2")
    assert other.predict(["same words"])[0] == "b0"
    accuracy = {name: float((m.predict(test.texts) == test.targets).mean()) for name, m in (("greedy", greedy), (decoding, other))}
    assert accuracy == {"greedy": 0.2, decoding: 0.4}


def test_blend_weight_is_chosen_on_validation_and_its_ends_are_the_flat_and_global_models():
    hierarchy, train, mixtures = crafted()
    val = Loader(train.texts[::2], train.targets[::2])
    blend = TfidfHSGD(loss="log_loss", min_df=1).fit(train, val, hierarchy=hierarchy)
    assert 0.0 <= blend.blend_weight_ <= 1.0
    flat = TfidfLSGD(loss="log_loss", min_df=1).fit(train, hierarchy=hierarchy)
    as_flat = TfidfHSGD(loss="log_loss", min_df=1, blend_weight=1.0).fit(train, hierarchy=hierarchy)
    as_global = TfidfHSGD(loss="log_loss", min_df=1, blend_weight=0.0).fit(train, hierarchy=hierarchy)
    global_ = TfidfHSGD(loss="log_loss", min_df=1, decoding="global").fit(train, hierarchy=hierarchy)
    column = [list(flat.classes_).index(c) for c in as_flat.classes_]  # hierarchy order vs sorted names
    np.testing.assert_allclose(as_flat.predict_scores(mixtures), flat.predict_scores(mixtures)[:, column], atol=1e-12)
    np.testing.assert_array_equal(as_global.predict_scores(mixtures), global_.predict_scores(mixtures))


# ------------------------------------------------------------------ edge cases
def test_single_child_unseen_child_and_unseen_node():
    hierarchy = toy_hierarchy(unseen=True)
    # Snacks > Nuts is never seen: Snacks' examples all share one child
    train = toy_loader(keys=("chip", "tea", "hose"))
    model = TfidfHSGD(loss="log_loss", min_df=1, decoding="global").fit(train, hierarchy=hierarchy)
    nodes = {hierarchy.classes[t.parent] if t.parent >= 0 else "<root>": (t, fitted)
             for t, fitted in zip(model.nodes_.tasks, model.nodes_.has_classifier)}
    assert nodes["<root>"][1] and nodes["Food"][1]
    for name in ("Snacks", "Drinks", "Garden", "Home", "Tools"):
        assert not nodes[name][1], name
    assert [hierarchy.classes[c] for c in nodes["Home"][0].seen] == ["Garden"]
    assert len(nodes["Tools"][0].seen) == 0

    test = toy_loader(seed=1)
    scores = model.predict_scores(test.texts)
    column = {name: i for i, name in enumerate(model.classes_)}
    conditional = model.nodes_.conditionals(model.encode(test.texts))
    # single child (Drinks > Tea) and one seen child (Snacks > Chips): probability 1; unseen sibling 0
    np.testing.assert_array_equal(conditional[:, hierarchy.index["Tea"]], 1.0)
    np.testing.assert_array_equal(conditional[:, hierarchy.index["Chips"]], 1.0)
    assert (scores[:, column["Nuts"]] == 0).all()
    # a node without examples: uniform children, but its own probability (and its leaves') is 0
    np.testing.assert_array_equal(conditional[:, hierarchy.index["Saw"]], 0.5)
    assert (scores[:, [column["Saw"], column["Drill"]]] == 0).all()
    # Home's only seen child takes all of Home's probability, and Hose is Garden's only child
    probabilities = model.path_probabilities(model.encode(test.texts))
    home = level_scores(probabilities, hierarchy, 0)[:, hierarchy.index["Home"]]
    np.testing.assert_allclose(probabilities[:, column["Hose"]], home)
    output = model.test(test)
    assert_valid_paths(output["paths"], hierarchy)
    chips, hoses = test.targets == "Chips", test.targets == "Hose"
    assert (output["predictions"][chips] == "Chips").mean() > 0.9 and (output["predictions"][hoses] == "Hose").all()


def test_depth_one_hierarchy_is_a_flat_classifier():
    hierarchy = Hierarchy.from_paths([(p[-1],) for p in PATHS.values()])[0]
    model = TfidfHSGD(loss="log_loss", min_df=1).fit(toy_loader(), hierarchy=hierarchy)
    output = model.test(toy_loader(seed=1))
    assert len(model.nodes_.tasks) == 1 and output["paths"].shape == (80, 1)
    assert (output["predictions"] == output["targets"]).mean() > 0.9


# ---------------------------------------------------------------------- scores
@pytest.mark.parametrize("decoding", ["greedy", "global", "blend"])
@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_gives_usable_scores_that_agree_with_the_path(loss, decoding):
    hierarchy = toy_hierarchy()
    model = TfidfHSGD(loss=loss, min_df=1, decoding=decoding).fit(toy_loader(), toy_loader(seed=9),
                                                                   hierarchy=hierarchy)
    output = model.test(toy_loader(seed=1))
    scores = output["scores"]
    assert scores.shape == (80, 4)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-9)
    assert (scores >= 0).all()
    assert (output["predictions"] == output["targets"]).mean() > 0.9
    assert_valid_paths(output["paths"], hierarchy)
    np.testing.assert_array_equal(output["predictions"], model.classes_[scores.argmax(axis=1)])
    np.testing.assert_array_equal(output["paths"][:, -1] - hierarchy.level_offsets[-2], scores.argmax(axis=1))
    # path scores: the probability of the predicted class on each level, shrinking down the path
    path_scores = output["path_scores"]
    np.testing.assert_allclose(path_scores[:, -1], scores.max(axis=1))
    rows = np.arange(80)
    for level in range(hierarchy.depth):
        summed = level_scores(scores, hierarchy, level)
        predicted = output["paths"][:, level] - hierarchy.level_offsets[level]
        np.testing.assert_allclose(path_scores[:, level], summed[rows, predicted])
    assert (np.diff(path_scores, axis=1) <= 1e-12).all()


def test_scores_are_path_probabilities_except_where_the_greedy_leaf_swaps_with_the_best():
    hierarchy, train, mixtures = crafted()
    model = TfidfHSGD(loss="log_loss", min_df=1, decoding="greedy").fit(train, hierarchy=hierarchy)
    features = model.encode(mixtures)
    probabilities = model.path_probabilities(features)
    scores = model.score_features(features)
    swapped = probabilities.argmax(axis=1) != scores.argmax(axis=1)
    assert swapped.any() and not swapped.all()
    np.testing.assert_array_equal(scores[~swapped], probabilities[~swapped])
    np.testing.assert_array_equal(np.sort(scores[swapped], axis=1), np.sort(probabilities[swapped], axis=1))


def test_ties_are_broken_the_same_way_by_scores_and_paths():
    model = TfidfHSGD(loss="log_loss", min_df=1, decoding="greedy").fit(toy_loader(), hierarchy=toy_hierarchy())
    leaves = model.hierarchy.level_offsets[-2]
    uniform = np.full((3, 4), 0.25)
    scores = model._agree_with_greedy(uniform.copy())
    paths, _ = model.paths_from_scores(scores)
    np.testing.assert_array_equal(paths[:, -1] - leaves, scores.argmax(axis=1))
    # Food (3 leaves) beats Home (1 leaf), then Snacks (2) beats Drinks (1): Chips, raised by one step
    assert model.classes_[scores.argmax(axis=1)].tolist() == ["Chips"] * 3
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)


# ---------------------------------------------------------------- persistence
def test_save_load_round_trip_gives_identical_scores(tmp_path):
    model = TfidfHSGD(loss="hinge", min_df=1).fit(toy_loader(), toy_loader(seed=9), hierarchy=toy_hierarchy(unseen=True))
    digest = model.save(tmp_path / "model.joblib")
    assert (tmp_path / "model.joblib.sha256").read_text().startswith(digest)
    test = toy_loader(seed=2)
    expected = model.test(test)
    for loaded in (TfidfHSGD.from_checkpoint(tmp_path / "model.joblib"),
                   TfidfHSGD().load(tmp_path / "model.joblib"),
                   Model.from_checkpoint(tmp_path / "model.joblib")):
        assert isinstance(loaded, TfidfHSGD) and loaded.loss == "hinge"
        assert loaded.hierarchy == model.hierarchy  # the hierarchy travels inside the checkpoint
        output = loaded.test(test)
        for key in ("scores", "predictions", "paths", "path_scores"):
            np.testing.assert_array_equal(output[key], expected[key])
    with pytest.raises(KttError, match="holds a TfidfHSGD, not a TfidfLSGD"):
        TfidfLSGD.from_checkpoint(tmp_path / "model.joblib")


def test_same_seed_same_model_whatever_the_threads():
    test = toy_loader(seed=4)
    a = TfidfHSGD(min_df=1, random_state=3, n_jobs=1).fit(toy_loader(), toy_loader(seed=9), hierarchy=toy_hierarchy())
    b = TfidfHSGD(min_df=1, random_state=3, n_jobs=2).fit(toy_loader(), toy_loader(seed=9), hierarchy=toy_hierarchy())
    np.testing.assert_array_equal(a.predict_scores(test.texts), b.predict_scores(test.texts))


@pytest.mark.parametrize("learner", ["svm", "logreg"])
def test_liblinear_fits_on_several_cores_are_reproducible(icd_sample, tmp_path, learner):
    """liblinear draws from one random generator per process: fitted in threads, two runs with one seed
    differed (ktt.workers); in forked workers every fit is the one a single worker gives."""
    from ktt.data.flat_file import FlatFileAdapter

    dataset = FlatFileAdapter(path=str(icd_sample), name="icd_sample").adapt(tmp_path)
    train, val, test = get_loaders(dataset)
    fits = [TfidfHSGD(learner=learner, word_ngrams=2, char_ngrams="auto", sublinear_tf=True, n_jobs=2)
            .fit(train, val, hierarchy=dataset.hierarchy) for _ in range(2)]
    np.testing.assert_array_equal(*(model.predict_scores(test.texts) for model in fits))
    assert fits[0].fitted_settings()["n_jobs"] == 2  # logged as fitted_n_jobs: the class groups follow it


def test_calibration_scores_are_the_same_in_cache_sized_chunks(icd_sample, tmp_path, monkeypatch):
    """The temperature and weight search scores the validation rows in chunks that stay in the cache
    (ktt.chunks.CACHE_BYTES), with two reused buffers: every pair's scores equal those of the whole split."""
    import ktt.hierarchical
    from ktt.data.flat_file import FlatFileAdapter

    dataset = FlatFileAdapter(path=str(icd_sample), name="icd_sample").adapt(tmp_path)
    train, val, _ = get_loaders(dataset)
    model = TfidfHSGD(learner="svm", min_df=2, n_jobs=1).fit(train, val, hierarchy=dataset.hierarchy)
    features = model.encode(val.texts)
    pairs = [(temperature, weight) for temperature in (1.0, 0.25) for weight in (0.0, 0.3, 1.0)]

    def pair_scores():
        scores, chunks = {}, set()
        for k, rows, chunk in model._calibration_scores(features, pairs):
            scores.setdefault(k, np.empty((len(val.texts), chunk.shape[1])))[rows] = chunk
            chunks.add((rows.start, rows.stop))
        return scores, len(chunks)

    chunked, n_chunks = pair_scores()
    monkeypatch.setattr(ktt.hierarchical, "CACHE_BYTES", 2**40)
    whole, n_whole = pair_scores()
    assert n_chunks > 1 and n_whole == 1
    for k, (temperature, weight) in enumerate(pairs):
        np.testing.assert_array_equal(chunked[k], whole[k])
        # ... and the scores prediction blends at that temperature
        model.nodes_.scorer.temperature = model.flat_.temperature = temperature
        path_log, flat_log = model._log_parts(features)
        expected = model.path_probabilities(features) if not weight else path_log * (1 - weight) + flat_log * weight
        np.testing.assert_array_equal(whole[k], expected)


def test_constructor_stores_params_and_clones():
    model = TfidfHSGD(loss="hinge", min_df=3, progress=True)
    params = model.get_params()
    assert params["loss"] == "hinge" and params["min_df"] == 3 and params["progress"] is True
    assert "hierarchy" not in params  # data, not a hyperparameter: fitted state (hierarchy_)
    assert not hasattr(model, "classes_") and model.hierarchy is None
    fitted = clone(model).set_params(min_df=1).fit(toy_loader(), hierarchy=toy_hierarchy())
    assert hasattr(fitted, "nodes_") and not hasattr(model, "nodes_")


def test_progress_bar_goes_to_stderr(capsys):
    TfidfHSGD(min_df=1, progress=True).fit(toy_loader(), hierarchy=toy_hierarchy())
    captured = capsys.readouterr()
    assert captured.out == "" and "fitting parent nodes" in captured.err


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "params, message",
    [
        ({"loss": "foo"}, r"invalid loss='foo' \(allowed: hinge, log_loss, log, modified_huber, squared_hinge, perceptron\)"),
        ({"min_df": -1}, r"invalid min_df=-1 \(allowed: auto or an integer in \[1, inf\] or a number in \(0, 1\]\)"),
        ({"decoding": "beam"}, r"invalid decoding='beam' \(allowed: greedy, global, blend\)"),
        ({"blend_weight": 2.0}, r"invalid blend_weight=2.0"),
        ({"learner": "forest"}, r"invalid learner='forest' \(allowed: sgd, svm, logreg\)"),
        ({"char_ngrams": [5, 2]}, r"invalid char_ngrams=\[5, 2\]"),
        ({"max_iter": 0}, r"invalid max_iter=0"),
        ({"class_weight": "auto"}, r"invalid class_weight='auto' \(allowed: null or balanced\)"),
        ({"progress": "yes"}, r"invalid progress='yes' \(allowed: any bool\)"),
        ({"min_df": 500}, r"min_df=500 is larger than the 80 training texts; lower min_df"),
        ({"min_df": 0.99}, r"min_df=0.99 leaves no terms in the vocabulary of the 80 training texts; lower min_df"),
    ],
)
def test_bad_hyperparameters_are_one_line_errors(params, message):
    with pytest.raises(KttError, match=message):
        TfidfHSGD(**params).fit(toy_loader(), hierarchy=toy_hierarchy())


def test_fitting_without_a_hierarchy_is_a_one_line_error():
    with pytest.raises(KttError, match=r"TfidfHSGD needs the label hierarchy: fit\(train, val, hierarchy=\.\.\.\)"):
        TfidfHSGD(min_df=1).fit(toy_loader())


@pytest.mark.parametrize(
    "texts, targets, message",
    [
        (["green tea", "salt chips"], ["Tea", "Tea"], "fewer than 2 leaf classes"),
        (["green tea", "salt chips"], ["Tea", "Snacks"], "'Snacks' is not a leaf class of this hierarchy"),
        (["green tea", "kale"], ["Tea", "Kale"], "'Kale' is not a leaf class of this hierarchy"),
        (["a b", "a c"], ["Tea", "Chips"], r"the 2 training texts have no terms \(empty vocabulary\)"),
    ],
)
def test_bad_training_data_are_one_line_errors(texts, targets, message):
    with pytest.raises(KttError, match=message):
        TfidfHSGD(min_df=1).fit(Loader(texts, np.array(targets, dtype=object)), hierarchy=toy_hierarchy())


def test_each_node_is_fitted_on_the_examples_below_it_with_the_shared_settings():
    texts, targets = toy_loader()
    texts, targets = texts[:50], targets[:50]  # 20 chips, 20 nuts, 10 tea: all under Food
    hierarchy = toy_hierarchy()
    model = TfidfHSGD(min_df=1, class_weight="balanced").fit(Loader(texts, targets), hierarchy=hierarchy)
    tasks, classifiers = node_classifiers(model, Loader(texts, targets))
    nodes = {hierarchy.classes[t.parent] if t.parent >= 0 else "<root>": c for t, c in zip(tasks, classifiers)}
    assert nodes["<root>"] is None  # only Food is seen at the top
    food, snacks = nodes["Food"], nodes["Snacks"]
    assert food.classes_.tolist() == [hierarchy.index["Drinks"], hierarchy.index["Snacks"]]
    assert snacks.classes_.tolist() == [hierarchy.index["Chips"], hierarchy.index["Nuts"]]
    # SGD counts one update per example and epoch: Food saw its 50 rows, Snacks its 40
    assert food.t_ - 1 == food.n_iter_ * 50 and snacks.t_ - 1 == snacks.n_iter_ * 40
    assert food.class_weight == "balanced" and food.loss == "modified_huber" and food.random_state == 42
    # one vocabulary, fitted on all training texts, shared by every node
    assert food.coef_.shape[1] == snacks.coef_.shape[1] == model.features_.n_features_
    assert model.nodes_.has_classifier == [c is not None for c in classifiers]


# ------------------------------------------------------------------------ CLI
def test_cli_run_with_hinge_is_finished_and_path_consistent(icd_sample, tmp_path):
    run_cli("model=tfidf_hsgd", "loss=hinge", "dataset=file", f"dataset.path={icd_sample}", "min_df=2",
            "progress=false", "plots=false", cwd=tmp_path)
    (run,) = mlflow_runs(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.data.params["loss"] == "hinge" and run.data.params["model.loss"] == "hinge"
    assert run.data.params["model._target_"] == "ktt_models.tfidf_hsgd.TfidfHSGD"
    metrics = run.data.metrics
    assert metrics["test_path_consistency"] == 1.0 and metrics["val_path_consistency"] == 1.0
    assert metrics["test_leaf_accuracy"] > 0.5


def test_svm_temperature_is_chosen_on_validation_with_the_best_accuracy():
    """``temperature="auto"`` picks, on the validation split, a temperature no fixed one beats."""
    from ktt.linear import TEMPERATURES

    hierarchy, train, val = toy_hierarchy(), toy_loader(), toy_loader(seed=9)

    def val_accuracy(model):
        return float(np.mean(model.predict(val.texts) == val.targets))

    settings = dict(learner="svm", min_df=1, decoding="global")
    auto = TfidfHSGD(**settings).fit(train, val, hierarchy=hierarchy)
    assert auto.temperature_ in TEMPERATURES
    fixed = [val_accuracy(TfidfHSGD(temperature=t, **settings).fit(train, val, hierarchy=hierarchy)) for t in TEMPERATURES]
    assert val_accuracy(auto) == max(fixed)
    assert val_accuracy(auto) == fixed[TEMPERATURES.index(auto.temperature_)]
    # the node scores are the softmax of the decisions at that temperature
    features = auto.encode(val.texts[:5])
    decisions = auto.nodes_.scorer.decisions(features)
    group = auto.nodes_.scorer.groups[0]
    expected = softmax(decisions[:, group.start:group.stop] / auto.temperature_)
    assert np.allclose(auto.nodes_.scorer.scores(features)[:, group.start:group.stop], expected)


def test_learners_with_probabilities_keep_temperature_one():
    model = TfidfHSGD(loss="log_loss", min_df=1).fit(toy_loader(), toy_loader(seed=9), hierarchy=toy_hierarchy())
    assert model.temperature_ == 1.0
