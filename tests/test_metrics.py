"""Metrics on small hand-computed hierarchies, the table, and the plots."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_score

from ktt.errors import KttError
from ktt.hierarchy import Hierarchy
from ktt.metrics import (
    format_table,
    get_metrics,
    hierarchical_prf,
    level_accuracies,
    micro_average_precision,
    path_consistency,
)
from ktt.plots import BackgroundPlots, level_confusion, save_plots

# Classes: A=0 B=1 C=2 | a1=3 a2=4 b1=5 b2=6 c1=7
PATHS = [("A", "a1"), ("A", "a2"), ("B", "b1"), ("B", "b2"), ("C", "c1")]
TARGETS = ["a1", "a2", "b1", "b2", "c1", "a1"]
PREDICTIONS = ["a1", "a1", "b2", "b1", "c1", "b1"]
METRIC_NAMES = [
    "leaf_accuracy",
    "leaf_precision_weighted",
    "leaf_macro_f1",
    "leaf_auprc_micro",
    "level1_accuracy",
    "level2_accuracy",
    "hierarchical_precision",
    "hierarchical_recall",
    "hierarchical_f1",
    "path_consistency",
]


@pytest.fixture
def hierarchy() -> Hierarchy:
    return Hierarchy.from_paths(PATHS)[0]


def make_output(hierarchy: Hierarchy, targets, predictions, **extra) -> dict:
    """A test output whose predicted leaf scores 0.6 and every other leaf 0.1."""
    leaves = hierarchy.leaf_classes
    targets_b = np.array([[leaf == t for leaf in leaves] for t in targets], dtype=int)
    scores = np.array([[0.6 if leaf == p else 0.1 for leaf in leaves] for p in predictions])
    return {"targets": np.array(targets), "predictions": np.array(predictions),
            "targets_b": targets_b, "scores": scores, **extra}


def test_hierarchy_layout_assumed_by_these_tests(hierarchy):
    assert hierarchy.classes == ["A", "B", "C", "a1", "a2", "b1", "b2", "c1"]


def test_metrics_by_hand(hierarchy):
    metrics = get_metrics(make_output(hierarchy, TARGETS, PREDICTIONS), hierarchy)
    assert list(metrics) == METRIC_NAMES
    expected = {
        "leaf_accuracy": 2 / 6,
        # precision a1 = 1/2 (support 2), c1 = 1 (support 1), others 0
        "leaf_precision_weighted": (2 * 0.5 + 1 * 1) / 6,
        # F1 a1 = 0.5, c1 = 1, a2 b1 b2 = 0
        "leaf_macro_f1": 1.5 / 5,
        # 0.6 holds 6 scores, 2 positive; 0.1 holds the other 24, 4 positive
        "leaf_auprc_micro": (2 / 6) * (2 / 6) + (4 / 6) * (6 / 30),
        "level1_accuracy": 5 / 6,
        "level2_accuracy": 2 / 6,
        # 5 right top classes + 2 right leaves out of 12 classes either side
        "hierarchical_precision": 7 / 12,
        "hierarchical_recall": 7 / 12,
        "hierarchical_f1": 7 / 12,
        "path_consistency": 1.0,
    }
    assert metrics == pytest.approx(expected)


def test_inconsistent_paths_count_per_level_classes(hierarchy):
    A, B, C, a1, b1, b2, c1 = 0, 1, 2, 3, 5, 6, 7
    paths = np.array([[A, a1], [B, a1], [B, b2], [A, b1], [C, c1], [A, b1]])
    metrics = get_metrics(make_output(hierarchy, TARGETS, PREDICTIONS, paths=paths), hierarchy, prefix="test_")
    assert metrics["test_path_consistency"] == pytest.approx(3 / 6)
    assert metrics["test_level1_accuracy"] == pytest.approx(4 / 6)
    assert metrics["test_level2_accuracy"] == pytest.approx(2 / 6)
    # hits per row: 2, 0, 1, 0, 2, 1
    for name in ("precision", "recall", "f1"):
        assert metrics[f"test_hierarchical_{name}"] == pytest.approx(6 / 12)
    # leaf metrics come from the predicted leaf names
    assert metrics["test_leaf_accuracy"] == pytest.approx(2 / 6)


def test_perfect_predictions_score_one(hierarchy):
    leaves = hierarchy.leaf_classes * 2
    metrics = get_metrics(make_output(hierarchy, leaves, leaves), hierarchy, prefix="val_")
    assert set(metrics) == {"val_" + name for name in METRIC_NAMES}
    assert all(value == pytest.approx(1.0) for value in metrics.values())


def test_leaf_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    paths = [(f"t{i % 4}", f"leaf{i}") for i in range(12)]
    hierarchy = Hierarchy.from_paths(paths)[0]
    leaves = np.array(hierarchy.leaf_classes)
    targets = rng.choice(leaves[:10], 300)  # two leaves never occur as targets
    predictions = rng.choice(leaves, 300)
    scores = rng.random((300, 12)).round(2)
    targets_b = (targets[:, None] == leaves[None, :]).astype(int)
    output = {"targets": targets, "predictions": predictions, "targets_b": targets_b, "scores": scores}
    metrics = get_metrics(output, hierarchy)
    assert metrics["leaf_accuracy"] == pytest.approx(np.mean(targets == predictions))
    assert metrics["leaf_precision_weighted"] == pytest.approx(
        precision_score(targets, predictions, average="weighted", zero_division=0))
    assert metrics["leaf_macro_f1"] == pytest.approx(f1_score(targets, predictions, average="macro", zero_division=0))
    assert metrics["leaf_auprc_micro"] == pytest.approx(average_precision_score(targets_b, scores, average="micro"))


def test_micro_average_precision_matches_sklearn_with_ties_and_chunks(monkeypatch):
    import ktt.metrics

    rng = np.random.default_rng(1)
    monkeypatch.setattr(ktt.metrics, "_CHUNK_ELEMENTS", 7)
    for _ in range(20):
        targets_b = (rng.random((25, 6)) < 0.3).astype(int)
        targets_b[0, 0] = 1
        scores = rng.random((25, 6)).round(1).astype(np.float32)
        assert micro_average_precision(targets_b, scores) == pytest.approx(
            average_precision_score(targets_b, scores, average="micro"), abs=1e-12)


def test_micro_average_precision_is_nan_without_positives():
    assert np.isnan(micro_average_precision(np.zeros((3, 2)), np.ones((3, 2))))


def test_column_order_comes_from_classes(hierarchy):
    output = make_output(hierarchy, TARGETS, PREDICTIONS)
    order = [4, 2, 0, 3, 1]
    shuffled = dict(output, classes=[hierarchy.leaf_classes[i] for i in order],
                    targets_b=output["targets_b"][:, order], scores=output["scores"][:, order])
    assert get_metrics(shuffled, hierarchy) == pytest.approx(get_metrics(output, hierarchy))


def test_building_blocks():
    true = np.array([[0, 3], [0, 4], [1, 5]])
    pred = np.array([[0, 3], [1, 5], [0, 5]])
    np.testing.assert_allclose(level_accuracies(true, pred), [1 / 3, 2 / 3])
    assert hierarchical_prf(true, pred) == pytest.approx((3 / 6, 3 / 6, 3 / 6))
    # a repeated class counts once in the predicted set: P̂ = {3}, T̂ = {0, 3}
    assert hierarchical_prf([[0, 3]], [[3, 3]]) == pytest.approx((1.0, 0.5, 2 / 3))
    assert hierarchical_prf([[0, 3]], [[1, 4]]) == (0.0, 0.0, 0.0)


def test_path_consistency(hierarchy):
    assert path_consistency([[0, 3], [1, 6], [2, 7], [2, 3]], hierarchy) == pytest.approx(3 / 4)
    # a leaf in the top column is not a valid path either
    assert path_consistency([[3, 3]], hierarchy) == 0.0


@pytest.mark.parametrize(
    "change",
    [
        {"targets": np.array(["a1", "a2", "b1", "b2", "c1", "zz"])},
        {"predictions": np.array(PREDICTIONS[:5])},
        {"scores": np.zeros((6, 4))},
        {"targets_b": np.zeros((5, 5))},
        {"classes": ["a1", "a2", "b1", "b2", "nope"]},
        {"paths": np.zeros((6, 3), dtype=int)},
        {"paths": np.full((6, 2), 3)},  # a leaf index in the top-level column
    ],
)
def test_bad_output_raises_ktt_error(hierarchy, change):
    output = dict(make_output(hierarchy, TARGETS, PREDICTIONS), **change)
    with pytest.raises(KttError):
        get_metrics(output, hierarchy)


def test_building_blocks_reject_shape_mismatch(hierarchy):
    with pytest.raises(KttError):
        level_accuracies(np.zeros((3, 2), int), np.zeros((3, 3), int))
    with pytest.raises(KttError):
        hierarchical_prf(np.zeros((3, 2), int), np.zeros((2, 2), int))
    with pytest.raises(KttError):
        path_consistency(np.zeros((3, 1), int), hierarchy)


# -------------------------------------------------------------------- table
def test_format_table_single_prefix(hierarchy):
    metrics = get_metrics(make_output(hierarchy, TARGETS, PREDICTIONS), hierarchy, prefix="test_")
    table = format_table(metrics)
    for key in metrics:
        assert "test_" + key.removeprefix("test_") in table
    assert "0.3333" in table
    assert len({len(line) for line in table.splitlines()[:2]}) == 1


def test_format_table_groups_prefixes(hierarchy):
    output = make_output(hierarchy, TARGETS, PREDICTIONS)
    metrics = {**get_metrics(output, hierarchy, prefix="val_"), **get_metrics(output, hierarchy, prefix="test_")}
    lines = format_table(metrics).splitlines()
    assert lines[0].split() == ["metric", "val", "test"]
    assert len(lines) == 2 + len(METRIC_NAMES)
    for name in METRIC_NAMES:
        row = next(line for line in lines if line.split()[0] == name)
        assert len(row.split()) == 3


# -------------------------------------------------------------------- plots
def _assert_pngs(written, expected_names):
    assert [path.name for path in written] == expected_names
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_plots_depth_two(hierarchy, tmp_path):
    written = save_plots(make_output(hierarchy, TARGETS, PREDICTIONS), hierarchy, tmp_path / "plots")
    _assert_pngs(written, ["confusion_level1.png", "confusion_level2.png", "pr_curve.png"])


@pytest.mark.parametrize("paths", [[("x",), ("y",)], [("top", "x"), ("top", "y")]])
def test_save_plots_two_leaves(paths, tmp_path):
    hierarchy = Hierarchy.from_paths(paths)[0]
    output = make_output(hierarchy, ["x", "y", "y"], ["x", "x", "y"])
    written = save_plots(output, hierarchy, tmp_path)
    names = [f"confusion_level{k}.png" for k in range(1, hierarchy.depth + 1)] + ["pr_curve.png"]
    _assert_pngs(written, names)


def test_level_pr_curves_read_the_scores_in_row_chunks(monkeypatch):
    import ktt.metrics
    from ktt.metrics import level_pr_curve, micro_pr_curve, output_columns, output_paths

    rng = np.random.default_rng(3)
    hierarchy = Hierarchy.from_paths([(f"top{i % 3}", f"leaf{i}") for i in range(12)])[0]
    leaves = np.array(hierarchy.leaf_classes)
    targets = rng.choice(leaves, 50)
    output = {"targets": targets, "predictions": rng.choice(leaves, 50), "scores": rng.random((50, 12)).round(2),
              "targets_b": (targets[:, None] == leaves[None, :]).astype(int)}
    columns, (true_paths, _) = output_columns(output, hierarchy), output_paths(output, hierarchy)
    truth = (true_paths[:, :1] == np.arange(3)[None, :]).astype(int)
    whole = micro_pr_curve(truth, hierarchy.level_scores(output["scores"], columns, 0))
    monkeypatch.setattr(ktt.metrics, "_CHUNK_ELEMENTS", 12 * 7)  # 7 rows at a time
    for a, b in zip(whole, level_pr_curve(true_paths, output["scores"], columns, hierarchy, 0)):
        np.testing.assert_array_equal(a, b)


def test_save_plots_many_classes(tmp_path):
    rng = np.random.default_rng(2)
    hierarchy = Hierarchy.from_paths([(f"top{i % 3}", f"a rather long leaf class name number {i}") for i in range(40)])[0]
    leaves = np.array(hierarchy.leaf_classes)
    targets, predictions = rng.choice(leaves, 200), rng.choice(leaves, 200)
    scores = rng.random((200, 40))
    output = {"targets": targets, "predictions": predictions, "scores": scores / scores.sum(axis=1, keepdims=True),
              "targets_b": (targets[:, None] == leaves[None, :]).astype(int)}
    written = save_plots(output, hierarchy, tmp_path)
    _assert_pngs(written, ["confusion_level1.png", "confusion_level2.png", "pr_curve.png"])


def test_level_confusion_keeps_most_frequent_and_other_column():
    true = np.array([0, 0, 0, 1, 1, 2, 3])
    pred = np.array([0, 1, 3, 1, 1, 2, 0])
    matrix, shown, restricted = level_confusion(true, pred, 4, max_classes=2)
    assert restricted and shown.tolist() == [0, 1]
    np.testing.assert_allclose(matrix, [[1 / 3, 1 / 3, 1 / 3], [0, 1, 0]])
    matrix, shown, restricted = level_confusion(true, pred, 4)
    assert not restricted and matrix.shape == (4, 4)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)


# ------------------------------------------------------- plots in a child process
def test_background_plots_draw_what_save_plots_draws(hierarchy, tmp_path):
    output = make_output(hierarchy, TARGETS, PREDICTIONS, paths=None)
    here = save_plots(output, hierarchy, tmp_path / "here")
    with BackgroundPlots() as plots:
        assert plots.process is not None
        plots.draw(output, hierarchy)
        folder = plots.wait()
        drawn = sorted(folder.iterdir())
        assert [p.name for p in drawn] == sorted(p.name for p in here)
        assert all(p.read_bytes() == (tmp_path / "here" / p.name).read_bytes() for p in drawn)
    assert not plots.workdir.exists()


def test_background_plots_report_the_childs_error(hierarchy):
    output = make_output(hierarchy, TARGETS, PREDICTIONS)
    output["scores"] = output["scores"][:, :2]
    with BackgroundPlots() as plots:
        plots.draw(output, hierarchy)
        with pytest.raises(KttError, match=r"^drawing the plots failed: .*scores must have shape \(6, 5\)"):
            plots.wait()


def test_background_plots_draw_here_without_a_child(hierarchy, monkeypatch, caplog):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with BackgroundPlots() as plots:
        assert plots.process is None
        plots.draw(make_output(hierarchy, TARGETS, PREDICTIONS), hierarchy)
        assert sorted(p.name for p in plots.wait().iterdir()) == ["confusion_level1.png", "confusion_level2.png",
                                                                  "pr_curve.png"]
    assert "drawing them here" in caplog.text


def test_background_plots_draw_a_large_output_here(hierarchy, monkeypatch):
    monkeypatch.setattr("ktt.plots.MAX_PAYLOAD_BYTES", 100)
    with BackgroundPlots() as plots:
        child = plots.process
        plots.draw(make_output(hierarchy, TARGETS, PREDICTIONS), hierarchy)
        assert plots.process is None and child.poll() is not None
        assert len(list(plots.wait().iterdir())) == 3
        assert not (plots.workdir / "payload").exists()


def test_background_plots_closed_before_drawing_leave_nothing_behind():
    plots = BackgroundPlots()
    process = plots.process
    plots.close()
    assert process.poll() is not None and not plots.workdir.exists()
