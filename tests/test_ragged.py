"""Ragged label trees: leaves on any level, a label that is a leaf and a parent, metrics on partial paths."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import mlflow_client, mlflow_runs, run_cli
from ktt.hierarchy import Hierarchy
from ktt.metrics import get_metrics, hierarchical_prf

#: A leaf on level 1 (Gift cards) beside 3-level branches; Food > Drinks is a leaf (water) and the parent of Tea.
LEAVES = {
    ("Gift cards",): "gift card voucher present",
    ("Food", "Snacks", "Chips"): "salted potato chips crisp",
    ("Food", "Snacks", "Nuts"): "roasted peanuts almonds cashew",
    ("Food", "Drinks", "Tea"): "green tea bags herbal",
    ("Food", "Drinks"): "bottled still mineral water",
    ("Home", "Garden"): "garden hose spray nozzle",
}
TEXTS = ["gift voucher present", "herbal green tea", "still mineral water", "salted chips crisp", "garden hose"]
EXPECTED = [["Gift cards"], ["Food", "Drinks", "Tea"], ["Food", "Drinks"], ["Food", "Snacks", "Chips"],
            ["Home", "Garden"]]


def ragged_rows(n_per_leaf: int = 14) -> pd.DataFrame:
    rows = []
    for i in range(n_per_leaf):
        for path, words in LEAVES.items():
            words = words.split()
            shift = i % len(words)
            rows.append((" ".join(words[shift:] + words[:shift]) + f" item {i}", " > ".join(path)))
    return pd.DataFrame(rows, columns=["text", "category"])


@pytest.fixture(scope="module")
def ragged_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("ragged") / "ragged.csv"
    ragged_rows().to_csv(path, index=False)
    return path


# ------------------------------------------------------------------ the hierarchy
def test_stops_pad_short_paths_and_equal_depth_trees_have_none():
    hierarchy, codes = Hierarchy.from_paths([path for path in LEAVES])
    assert hierarchy.level_sizes == [3, 4, 6]
    assert hierarchy.ragged
    assert set(hierarchy.leaf_classes) == {"Chips", "Nuts", "Tea", "Drinks > <stop>", "Garden > <stop>",
                                           "Gift cards > <stop> > <stop>"}
    # Drinks is a parent (of Tea and of its stop) and, through its stop, a leaf
    drinks = hierarchy.index["Drinks"]
    assert sorted(hierarchy.classes[i] for i in hierarchy.children[drinks]) == ["Drinks > <stop>", "Tea"]
    assert [hierarchy.label_path(hierarchy.classes[c[-1]]) for c in codes] == [list(p) for p in LEAVES]
    assert Hierarchy.from_dict(json.loads(json.dumps(hierarchy.to_dict()))) == hierarchy
    equal, _ = Hierarchy.from_paths([("A", "B"), ("A", "C"), ("D", "E")])
    assert not equal.ragged and "stops" not in equal.to_dict()
    assert equal.display_names(["B", "E"]) == ["B", "E"]


# ------------------------------------------------------------------ the metrics
def _output(hierarchy, true_paths, pred_paths):
    leaves = [hierarchy.leaf_classes.index(hierarchy.classes[p]) for p in pred_paths]
    n, k = len(true_paths), len(hierarchy.leaf_classes)
    scores = np.zeros((n, k))
    scores[np.arange(n), leaves] = 1.0
    targets_b = np.zeros((n, k), dtype=np.int8)
    targets_b[np.arange(n), [hierarchy.leaf_classes.index(hierarchy.classes[t]) for t in true_paths]] = 1
    return {"targets": [hierarchy.classes[t] for t in true_paths], "predictions": [hierarchy.classes[p] for p in pred_paths],
            "targets_b": targets_b, "scores": scores}


def test_hierarchical_f1_and_level_accuracy_by_hand():
    hierarchy, _ = Hierarchy.from_paths([path for path in LEAVES])
    leaf = {name: name for name in hierarchy.leaf_classes}
    true = ["Tea", "Drinks > <stop>", "Gift cards > <stop> > <stop>", "Chips"]
    pred = ["Drinks > <stop>", "Tea", "Gift cards > <stop> > <stop>", "Garden > <stop>"]
    metrics = get_metrics(_output(hierarchy, [hierarchy.index[leaf[t]] for t in true],
                                  [hierarchy.index[leaf[p]] for p in pred]), hierarchy)
    # sets: {Food, Drinks, Tea} vs {Food, Drinks}: 2 hits, |P|=2, |T|=3
    #       {Food, Drinks} vs {Food, Drinks, Tea}: 2 hits, |P|=3, |T|=2
    #       {Gift cards} vs {Gift cards}: 1 hit; {Food, Snacks, Chips} vs {Home, Garden}: 0 hits, |P|=2, |T|=3
    precision, recall = 5 / (2 + 3 + 1 + 2), 5 / (3 + 2 + 1 + 3)
    assert metrics["hierarchical_precision"] == pytest.approx(precision)
    assert metrics["hierarchical_recall"] == pytest.approx(recall)
    assert metrics["hierarchical_f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert metrics["level1_accuracy"] == pytest.approx(3 / 4)
    assert metrics["level2_accuracy"] == pytest.approx(2 / 3)  # Gift cards does not reach level 2
    assert metrics["level3_accuracy"] == pytest.approx(0 / 2)  # Tea predicted as a stop; Chips as Home
    assert metrics["leaf_accuracy"] == pytest.approx(1 / 4)
    assert [metrics[f"stopped_level{k}_share"] for k in (1, 2, 3)] == [0.25, 0.5, 0.25]


def test_equal_depth_metrics_are_the_same_through_the_ragged_path():
    hierarchy, codes = Hierarchy.from_paths([("A", "B", "C"), ("A", "B", "D"), ("A", "E", "F"), ("G", "H", "I")] * 3)
    rng = np.random.default_rng(0)
    pred = hierarchy.leaf_paths[rng.integers(0, 4, len(codes))]
    output = _output(hierarchy, codes[:, -1], pred[:, -1])
    plain = get_metrics(output, hierarchy)
    masked = get_metrics(output | {"stopped": np.zeros(codes.shape, bool)}, hierarchy)
    assert not any(key.startswith("stopped") for key in plain)
    assert {k: v for k, v in masked.items() if not k.startswith("stopped")} == plain
    assert hierarchical_prf(codes, pred) == hierarchical_prf(codes, pred, np.ones(codes.shape, bool),
                                                             np.ones(codes.shape, bool))


# ------------------------------------------------------------------ end to end
@pytest.mark.parametrize("model", ["tfidf_lsgd", "tfidf_hsgd"])
def test_both_models_train_and_predict_paths_of_every_length(ragged_csv, tmp_path, model):
    from ktt import tracking
    from ktt.preprocess import preprocess

    run_cli(f"model={model}", "dataset=file", f"dataset.path={ragged_csv}", "min_df=1", "progress=false",
            "reference=true", cwd=tmp_path)
    (run,) = mlflow_runs(tmp_path)
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    for key in ("test_level1_accuracy", "test_level3_accuracy", "test_hierarchical_f1", "test_path_consistency",
                "test_stopped_level1_share"):
        assert 0 <= metrics[key] <= 1, key
    assert metrics["test_hierarchical_f1"] > 0.9
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow_client(tmp_path)
    hierarchy = json.loads(open(client.download_artifacts(run.info.run_id, "hierarchy.json", str(tmp_path))).read())
    assert len(hierarchy["stops"]) == 4
    model_ = tracking.load_model(run.info.run_id, tracking_uri=uri)
    leaves = model_.predict(preprocess(TEXTS))
    assert [model_.hierarchy.label_path(leaf) for leaf in leaves] == EXPECTED
    import mlflow

    mlflow.set_tracking_uri(uri)
    pyfunc = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert pyfunc.predict(TEXTS) == [path[-1] for path in EXPECTED]  # the class each path stops at
    reference = pd.read_parquet(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="reference/reference_set.parquet", tracking_uri=uri))
    assert "CGift cards > <stop> > <stop>" in reference.columns


def test_a_served_bento_answers_paths_of_different_lengths(ragged_csv, tmp_path):
    from test_serving import exported_hsgd_run, predict, serve_bento

    home = tmp_path / "bentoml"
    run = exported_hsgd_run(ragged_csv, home, tmp_path, "min_df=1")
    with serve_bento(run.data.tags["ktt.bento_tag"], home, tmp_path) as server:
        answer = predict(server["url"], {"texts": TEXTS})
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert [p["path"] for p in predictions] == EXPECTED
        assert [len(p["scores"]) for p in predictions] == [len(path) for path in EXPECTED]
        assert all(0 < s <= 1 for p in predictions for s in p["scores"])
        single = predict(server["url"], {"text": TEXTS[0]}).json()
        assert single["path"] == ["Gift cards"] and len(single["scores"]) == 1
    onnx = run_cli("run_id=latest", "export=onnx", "dataset=file", f"dataset.path={ragged_csv}", "model=tfidf_hsgd",
                   cwd=tmp_path, module="ktt.export", check=False)
    assert onnx.returncode == 2 and "ONNX export is not supported" in onnx.stderr


def test_the_flat_model_refuses_onnx_on_a_ragged_tree_in_one_line(ragged_csv, tmp_path):
    result = run_cli("dataset=file", f"dataset.path={ragged_csv}", "min_df=1", "progress=false", "plots=false",
                     "export=onnx", cwd=tmp_path, check=False)
    assert result.returncode == 2
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("ktt: error:")]
    assert "ONNX export is not supported for a ragged label tree" in line


# ------------------------------------------------------------ stopping when unsure
def test_stopped_levels_cut_below_the_first_unsure_level():
    from ktt.stopping import stopped_levels

    scores = np.array([[0.9, 0.8, 0.7], [0.9, 0.4, 0.39], [0.2, 0.1, 0.1], [0.9, 0.3, 0.6]])
    stopped = stopped_levels(scores, [0.5, 0.5, 0.5])
    assert stopped.tolist() == [[False, False, False], [False, True, True], [False, True, True],
                                [False, True, True]]  # the top level stays; a confident level below a cut too
    assert not stopped_levels(scores, [0.0, 0.0, 0.0]).any()


def test_auto_thresholds_are_the_lowest_reaching_the_precision():
    from ktt.stopping import choose_thresholds

    # level 2 scores 0.9 (right), 0.8 (right), 0.7 (wrong), 0.6 (right), 0.5 (wrong)
    pred = np.array([[0, 1]] * 5)
    true = np.array([[0, 1], [0, 1], [0, 2], [0, 1], [0, 2]])
    scores = np.array([[1, 0.9], [1, 0.8], [1, 0.7], [1, 0.6], [1, 0.5]])
    real = np.ones(pred.shape, bool)
    assert choose_thresholds(pred, scores, true, real, real, 0.75).tolist() == [0.0, 0.6]  # 3 of 4 right
    assert choose_thresholds(pred, scores, true, real, real, 1.0).tolist() == [0.0, 0.8]
    never = choose_thresholds(pred, scores, np.array([[0, 2]] * 5), real, real, 0.5)
    assert never[1] > 1


@pytest.fixture(scope="module")
def fitted_ragged():
    from ktt.data.flat_file import FlatFileAdapter
    from ktt.data.loaders import get_loaders
    from ktt_models.tfidf_hsgd import TfidfHSGD

    import tempfile

    folder = tempfile.mkdtemp()
    path = f"{folder}/ragged.csv"
    ragged_rows(20).to_csv(path, index=False)
    dataset = FlatFileAdapter(path=path, name="ragged").adapt(f"{folder}/cache")
    train, val, test = get_loaders(dataset)
    model = TfidfHSGD(learner="svm", min_df=1, n_jobs=1).fit(train, val, hierarchy=dataset.hierarchy)
    return model, train, val, test


def test_a_threshold_cuts_served_paths_and_metrics_report_the_partial_paths(fitted_ragged):
    from ktt.preprocess import preprocess
    from ktt.serving.runtime import ModelRuntime

    model, _, val, test = fitted_ragged
    full = ModelRuntime(model).classify(preprocess(TEXTS))
    assert [p["path"] for p in full] == EXPECTED
    model.fit_stop_thresholds([0.0, 1.0, 1.0])
    try:
        cut = ModelRuntime(model).classify(preprocess(TEXTS))
        for before, after in zip(full, cut):
            keep = 1 + sum(1 for s in before["scores"][1:] if s >= 1.0)  # the top level always
            assert after["path"] == before["path"][:keep] and after["scores"] == before["scores"][:keep]
        output = model.test(test)
        metrics = get_metrics(output, model.hierarchy)
        real = model.hierarchy.real_mask(output["paths"]) & ~output["stopped"]
        depths = real.sum(axis=1)
        assert metrics["stopped_level1_share"] == pytest.approx(np.mean(depths == 1))
        assert metrics["stopped_level1_share"] > 0.5
        true = model.hierarchy.leaf_path_indices(list(output["targets"]))
        true_real = model.hierarchy.real_mask(true)
        assert metrics["hierarchical_precision"] == pytest.approx(hierarchical_prf(true, output["paths"], true_real,
                                                                                   real)[0])
    finally:
        model.fit_stop_thresholds(None)
    assert "stopped" not in model.test(test)


def test_predict_threshold_auto_runs_end_to_end(ragged_csv, tmp_path):
    from ktt import tracking

    run_cli("model=tfidf_hsgd", "dataset=file", f"dataset.path={ragged_csv}", "min_df=1", "progress=false",
            "plots=false", "predict_threshold=auto", "threshold_precision=0.95", cwd=tmp_path)
    (run,) = mlflow_runs(tmp_path)
    params, metrics = run.data.params, run.data.metrics
    assert params["stop_threshold_level1"] == "0.0" and "stop_threshold_level3" in params
    shares = [metrics[f"test_stopped_level{k}_share"] for k in (1, 2, 3)]
    assert sum(shares) == pytest.approx(1.0)
    model = tracking.load_model(run.info.run_id, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert model.stop_thresholds_.tolist() == [float(params[f"stop_threshold_level{k}"]) for k in (1, 2, 3)]
    bad = run_cli("predict_threshold=1.5", "dataset=file", f"dataset.path={ragged_csv}", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "invalid predict_threshold=1.5" in bad.stderr


def test_blend_fits_no_flat_classifier_over_too_many_leaves_and_texts(fitted_ragged, monkeypatch):
    from ktt import hierarchical
    from ktt_models.tfidf_hsgd import TfidfHSGD

    model, train, val, test = fitted_ragged
    assert model.flat_ is not None  # 6 leaves: blend as always
    monkeypatch.setattr(hierarchical, "MAX_BLEND_WORK", 6 * len(train.texts) - 1)
    capped = TfidfHSGD(learner="svm", min_df=1, n_jobs=1).fit(train, val, hierarchy=model.hierarchy)
    assert capped.flat_ is None and capped.blend_weight_ == 0.0
    global_ = TfidfHSGD(learner="svm", min_df=1, n_jobs=1, decoding="global").fit(train, val,
                                                                                 hierarchy=model.hierarchy)
    np.testing.assert_allclose(capped.predict_scores(test.texts), global_.predict_scores(test.texts))
    fixed = TfidfHSGD(learner="svm", min_df=1, n_jobs=1, blend_weight=0.5).fit(train, val, hierarchy=model.hierarchy)
    assert fixed.flat_ is not None  # a weight the user sets still fits the flat classifier


def test_scoring_in_row_chunks_changes_no_score_path_or_calibration(fitted_ragged, monkeypatch):
    from ktt import chunks
    from ktt_models.tfidf_hsgd import TfidfHSGD
    from ktt_models.tfidf_lsgd import TfidfLSGD

    model, train, val, test = fitted_ragged
    hierarchy = model.hierarchy

    def fitted():
        return [TfidfHSGD(learner="svm", min_df=1, n_jobs=1).fit(train, val, hierarchy=hierarchy),
                TfidfHSGD(learner="svm", min_df=1, n_jobs=1, decoding="greedy").fit(train, val, hierarchy=hierarchy),
                TfidfLSGD(learner="svm", min_df=1, n_jobs=1).fit(train, val, hierarchy=hierarchy)]

    whole = fitted()
    expected = [m.test(test) for m in whole]
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 8 * len(hierarchy.classes) * 3)  # 3 rows at a time
    assert len(chunks.row_chunks(len(val.texts), len(hierarchy.classes))) > 2
    chunked = fitted()
    for before, after, output in zip(whole, chunked, expected):
        assert after.temperature_ == before.temperature_
        assert getattr(after, "blend_weight_", None) == getattr(before, "blend_weight_", None)
        for scored in (before.test(test), after.test(test)):
            for key in ("scores", "predictions", "paths", "path_scores"):
                np.testing.assert_array_equal(scored[key], output[key])


def test_plots_name_a_stop_after_the_class_it_stops_at(tmp_path, monkeypatch):
    from ktt import plots

    hierarchy, codes = Hierarchy.from_paths([path for path in LEAVES])
    drawn = {}
    monkeypatch.setattr(plots, "_plot_confusion", lambda matrix, rows, columns, title, path: drawn.update(
        rows=rows, columns=columns))
    plots.save_confusion(codes, codes[::-1], hierarchy, 2, tmp_path / "confusion_level3.png")
    assert sorted(drawn["rows"]) == sorted(["Chips", "Nuts", "Tea", "Drinks (stop)", "Garden (stop)",
                                            "Gift cards (stop)"])
    assert drawn["columns"] == drawn["rows"]
    assert not any("<stop>" in label for label in drawn["rows"])
    long, _ = Hierarchy.from_paths([("A category name far longer than a tick label",), ("B", "C")])
    label = plots.class_label(long, long.index["A category name far longer than a tick label > <stop>"])
    assert label == "A category name far lo… (stop)" and len(label) == plots.MAX_LABEL_CHARS
    assert plots.class_label(long, long.index["C"]) == "C"
