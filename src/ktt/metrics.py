"""Leaf, per-level and hierarchical metrics of a model's test output.

A model's ``test()`` returns a dict with ``targets`` and ``predictions`` (leaf
class names), ``targets_b`` and ``scores`` (arrays ``(n, n_leaf_columns)``),
and optionally ``classes`` (the column order; default ``hierarchy.leaf_classes``)
and ``paths`` (``(n, depth)`` class indices: the model's own per-level
prediction; default the ancestors of the predicted leaf).

The building blocks (:func:`level_accuracies`, :func:`hierarchical_prf`,
:func:`path_consistency`, :func:`micro_pr_curve`) work on plain arrays, without
a model. scikit-learn is imported only where it is needed.
"""

from __future__ import annotations

import math
import re
from typing import Mapping, Sequence

import numpy as np

from ktt.chunks import row_chunks
from ktt.errors import KttError
from ktt.hierarchy import Hierarchy

# Elements of ``scores`` handled at once by the chunked micro PR curve.
_CHUNK_ELEMENTS = 1 << 22

_METRIC_NAME = re.compile(r"^(?P<prefix>.*?)(?P<name>leaf_\w+|level\d+_accuracy|hierarchical_\w+|path_consistency|stopped_level\d+_share)$")


# ------------------------------------------------------------------ inputs
def _required(output: Mapping, key: str):
    try:
        return output[key]
    except KeyError:
        raise KttError(f"the test output lacks the key {key!r}") from None


def _names(values, what: str) -> np.ndarray:
    names = np.asarray(values)
    if names.ndim != 1:
        raise KttError(f"{what} must be one-dimensional, got shape {names.shape}")
    return names


def leaf_name_paths(names: Sequence[str], hierarchy: Hierarchy) -> np.ndarray:
    """Class-index paths ``(n, depth)`` of leaf class names.

    Each distinct name is looked up once, so this is fast for long inputs.

    Parameters
    ----------
    names : sequence of str
        Leaf class names.
    hierarchy : Hierarchy

    Returns
    -------
    ndarray of shape (n, depth), int64

    Raises
    ------
    KttError
        If a name is not a leaf class of ``hierarchy``.
    """
    names = _names(names, "leaf class names")
    if names.size == 0:
        return np.empty((0, hierarchy.depth), dtype=np.int64)
    unique, inverse = np.unique(names, return_inverse=True)
    return hierarchy.leaf_path_indices(unique.tolist())[inverse.ravel()]


def _check_paths(paths, depth: int | None, what: str) -> np.ndarray:
    paths = np.asarray(paths)
    if paths.ndim != 2 or (depth is not None and paths.shape[1] != depth):
        expected = f"(n, {depth})" if depth is not None else "(n, depth)"
        raise KttError(f"{what} must have shape {expected}, got {paths.shape}")
    if paths.size and not np.issubdtype(paths.dtype, np.integer):
        raise KttError(f"{what} must hold integer class indices, got dtype {paths.dtype}")
    return paths


def _check_levels(paths: np.ndarray, hierarchy: Hierarchy, what: str) -> None:
    """Every column of ``paths`` must hold classes of its own level."""
    offsets = hierarchy.level_offsets
    for level in range(hierarchy.depth):
        column = paths[:, level]
        if column.size and (column.min() < offsets[level] or column.max() >= offsets[level + 1]):
            raise KttError(
                f"{what} column {level} must hold level-{level + 1} class indices "
                f"in [{offsets[level]}, {offsets[level + 1]})"
            )


def output_paths(output: Mapping, hierarchy: Hierarchy) -> tuple[np.ndarray, np.ndarray]:
    """True and predicted class-index paths of a test output.

    Parameters
    ----------
    output : mapping
        A model's test output (see the module docstring).
    hierarchy : Hierarchy

    Returns
    -------
    true_paths, pred_paths : ndarray of shape (n, depth)
        The ancestors of each target; the model's ``paths`` if given, else
        the ancestors of each predicted leaf.

    Raises
    ------
    KttError
        On missing keys, unknown class names, mismatched lengths, or an empty output.
    """
    targets = _names(_required(output, "targets"), "targets")
    predictions = _names(_required(output, "predictions"), "predictions")
    if len(targets) != len(predictions):
        raise KttError(f"targets ({len(targets)}) and predictions ({len(predictions)}) differ in length")
    if len(targets) == 0:
        raise KttError("the test output has no examples")
    true_paths = leaf_name_paths(targets, hierarchy)
    if output.get("paths") is None:
        return true_paths, leaf_name_paths(predictions, hierarchy)
    pred_paths = _check_paths(output["paths"], hierarchy.depth, "paths")
    if len(pred_paths) != len(targets):
        raise KttError(f"paths has {len(pred_paths)} rows but there are {len(targets)} targets")
    _check_levels(pred_paths, hierarchy, "paths")
    return true_paths, pred_paths


def output_columns(output: Mapping, hierarchy: Hierarchy) -> np.ndarray:
    """Leaf paths ``(n_columns, depth)`` of the columns of ``scores``/``targets_b``.

    Also checks that ``scores`` and ``targets_b`` have shape ``(n, n_columns)``.
    """
    classes = output.get("classes")
    classes = hierarchy.leaf_classes if classes is None else list(classes)
    n = len(_required(output, "targets"))
    for key in ("targets_b", "scores"):
        shape = np.shape(_required(output, key))
        if shape != (n, len(classes)):
            raise KttError(f"{key} must have shape ({n}, {len(classes)}) (examples, leaf classes), got {shape}")
    return leaf_name_paths(classes, hierarchy)


# ------------------------------------------------------------- building blocks
def _same_shape(true_paths, pred_paths) -> tuple[np.ndarray, np.ndarray]:
    true_paths = _check_paths(true_paths, None, "true_paths")
    pred_paths = _check_paths(pred_paths, None, "pred_paths")
    if true_paths.shape != pred_paths.shape:
        raise KttError(f"true_paths {true_paths.shape} and pred_paths {pred_paths.shape} differ in shape")
    if len(true_paths) == 0:
        raise KttError("there are no examples to score")
    return true_paths, pred_paths


def level_accuracies(true_paths, pred_paths, reaches=None) -> np.ndarray:
    """Accuracy on every level.

    Parameters
    ----------
    true_paths, pred_paths : array-like of shape (n, depth)
        Class indices, top level first.
    reaches : array-like of bool, shape (n, depth), optional
        Where a true path has a real class (a ragged tree's stops are False, see
        :meth:`ktt.hierarchy.Hierarchy.real_mask`). A level's accuracy is then over
        the examples whose true path reaches it; a prediction that stops above is wrong there.

    Returns
    -------
    ndarray of shape (depth,)
        Share of examples whose predicted class equals the true class, per level
        (nan on a level no true path reaches).
    """
    true_paths, pred_paths = _same_shape(true_paths, pred_paths)
    if reaches is None:
        return (true_paths == pred_paths).mean(axis=0)
    reaches = np.asarray(reaches, dtype=bool)
    counts = reaches.sum(axis=0)
    hits = ((true_paths == pred_paths) & reaches).sum(axis=0)
    return np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)


def _sorted_distinct(paths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted, and a mask of the first occurrence of each value in a row."""
    ordered = np.sort(paths, axis=1)
    first = np.ones(ordered.shape, dtype=bool)
    first[:, 1:] = np.diff(ordered, axis=1) != 0
    return ordered, first


def hierarchical_prf(true_paths, pred_paths, true_real=None, pred_real=None) -> tuple[float, float, float]:
    """Hierarchical precision, recall and F1 (Kiritchenko et al., 2005).

    Each label set is the set of classes on its path (the implicit root
    excluded), so an inconsistent predicted path counts as the set of its
    per-level classes. The sums run over all examples (micro). In a ragged tree
    the sets hold the real classes only (``true_real``/``pred_real``): a path
    that stops at level k is a set of k classes, so a prediction that stops
    above the truth loses recall, not precision, and one that goes below it
    loses precision.

    Parameters
    ----------
    true_paths, pred_paths : array-like of shape (n, depth)
        Class indices, top level first.
    true_real, pred_real : array-like of bool, shape (n, depth), optional
        Which entries are real classes (:meth:`ktt.hierarchy.Hierarchy.real_mask`);
        default all.

    Returns
    -------
    hP, hR, hF : float
        ``Σ|P̂∩T̂| / Σ|P̂|``, ``Σ|P̂∩T̂| / Σ|T̂|`` and their harmonic mean.
    """
    true_paths, pred_paths = _same_shape(true_paths, pred_paths)
    if true_real is not None or pred_real is not None:
        return _ragged_prf(true_paths, pred_paths, true_real, pred_real)
    ordered, first = _sorted_distinct(pred_paths)
    n_true = _sorted_distinct(true_paths)[1].sum()
    in_true = (ordered[:, :, None] == true_paths[:, None, :]).any(axis=2)
    hits = float((in_true & first).sum())
    precision = hits / first.sum()
    recall = hits / n_true
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)


def _ragged_prf(true_paths, pred_paths, true_real, pred_real) -> tuple[float, float, float]:
    """:func:`hierarchical_prf` over the real classes of each path (stops are in no set)."""
    true_real = np.ones(true_paths.shape, bool) if true_real is None else np.asarray(true_real, dtype=bool)
    pred_real = np.ones(pred_paths.shape, bool) if pred_real is None else np.asarray(pred_real, dtype=bool)
    # a stop becomes a value no class has, distinct between the two sides and from each other
    true_paths = np.where(true_real, true_paths, -1)
    pred_paths = np.where(pred_real, pred_paths, -2)
    ordered, first = _sorted_distinct(pred_paths)
    first &= ordered >= 0
    true_ordered, true_first = _sorted_distinct(true_paths)
    n_true = (true_first & (true_ordered >= 0)).sum()
    in_true = (ordered[:, :, None] == true_paths[:, None, :]).any(axis=2)
    hits = float((in_true & first).sum())
    n_pred = first.sum()
    precision = hits / n_pred if n_pred else 0.0
    recall = hits / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)


def stop_shares(pred_real) -> np.ndarray:
    """Share of predicted paths that stop at each level (their deepest real class is there).

    Parameters
    ----------
    pred_real : array-like of bool, shape (n, depth)
        Which entries of the predicted paths are real classes.

    Returns
    -------
    ndarray of shape (depth,)
    """
    pred_real = np.asarray(pred_real, dtype=bool)
    depths = pred_real.sum(axis=1)
    return np.bincount(depths, minlength=pred_real.shape[1] + 1)[1:] / len(pred_real)


def path_consistency(pred_paths, hierarchy: Hierarchy) -> float:
    """Share of predicted paths that are root-to-leaf paths of ``hierarchy``.

    A path is consistent if its top class is a top-level class and every
    class's parent is the class predicted one level up.

    Parameters
    ----------
    pred_paths : array-like of shape (n, depth)
        Class indices into ``hierarchy.classes``, top level first.
    hierarchy : Hierarchy

    Returns
    -------
    float
    """
    pred_paths = _check_paths(pred_paths, hierarchy.depth, "pred_paths")
    if len(pred_paths) == 0:
        raise KttError("there are no examples to score")
    if pred_paths.min() < 0 or pred_paths.max() >= len(hierarchy.classes):
        raise KttError(f"pred_paths must hold class indices in [0, {len(hierarchy.classes)})")
    parent_of = np.asarray(hierarchy.parent_of)
    consistent = parent_of[pred_paths[:, 0]] == -1
    for level in range(1, hierarchy.depth):
        consistent &= parent_of[pred_paths[:, level]] == pred_paths[:, level - 1]
    return float(consistent.mean())


def micro_pr_curve(targets_b, scores) -> tuple[np.ndarray, np.ndarray]:
    """Micro-averaged precision-recall curve, computed without flattening copies.

    Equivalent to ``sklearn.metrics.precision_recall_curve(targets_b.ravel(),
    scores.ravel())`` restricted to the thresholds where recall changes (the
    only ones that matter for average precision). ``scores`` is read in row
    chunks, so memory stays small for large inputs.

    Parameters
    ----------
    targets_b : array-like of shape (n, n_classes)
        Binary indicators; non-zero means positive.
    scores : array-like of shape (n, n_classes)
        Higher means more likely.

    Returns
    -------
    precision, recall : ndarray
        In scikit-learn's order: recall decreasing, ending with ``(1, 0)``.
        Both are ``[1.]``/``[0.]`` when there are no positives.
    """
    targets_b, scores = np.asarray(targets_b), np.asarray(scores)
    if targets_b.shape != scores.shape or scores.ndim != 2:
        raise KttError(f"targets_b {targets_b.shape} and scores {scores.shape} must be 2-D and of one shape")
    chunks = row_chunks(len(scores), scores.shape[1], 8 * _CHUNK_ELEMENTS)
    return _micro_pr_curve_of_blocks(lambda: ((targets_b[rows], scores[rows]) for rows in chunks))


def level_pr_curve(true_paths, scores, column_paths, hierarchy: Hierarchy, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Micro-averaged precision-recall curve of the classes of one level.

    Each class is scored by the summed scores of the leaves below it
    (:meth:`ktt.hierarchy.Hierarchy.level_scores`) and is true for the rows whose
    path holds it. :func:`micro_pr_curve` of those two matrices, computed a few rows
    at a time: for a whole split they are rows x level size.

    Parameters
    ----------
    true_paths : ndarray of shape (n, depth)
        Class indices of each row's true path.
    scores : ndarray of shape (n, n_columns)
        Per-leaf scores.
    column_paths : ndarray of shape (n_columns, depth)
        The class-index path of each score column's leaf.
    hierarchy : Hierarchy
    level : int
        0 = top.
    """
    size, offset = hierarchy.level_sizes[level], hierarchy.level_offsets[level]
    chunks = row_chunks(len(scores), max(size, np.shape(scores)[1]), 8 * _CHUNK_ELEMENTS)

    def blocks():
        for rows in chunks:
            truth = np.zeros((len(true_paths[rows]), size), dtype=np.uint8)
            truth[np.arange(len(truth)), true_paths[rows, level] - offset] = 1
            yield truth, hierarchy.level_scores(scores[rows], column_paths, level)

    return _micro_pr_curve_of_blocks(blocks)


def _micro_pr_curve_of_blocks(blocks) -> tuple[np.ndarray, np.ndarray]:
    """:func:`micro_pr_curve` of a matrix given in row blocks: ``blocks()`` iterates over ``(targets_b, scores)``
    row blocks, the same each time (it is called twice)."""
    positives = []
    for targets, block in blocks():
        if np.isnan(block).any():
            raise KttError("scores contain NaN")
        positives.append(block[targets != 0])
    thresholds, at_threshold = np.unique(np.concatenate(positives or [np.empty(0)]), return_counts=True)
    if thresholds.size == 0:
        return np.ones(1), np.zeros(1)

    # Number of scores >= each threshold: bin every score by how many
    # thresholds it reaches, then sum the bins from the top down.
    reached = np.zeros(thresholds.size + 1, dtype=np.int64)
    for _, block in blocks():
        bins = np.searchsorted(thresholds, block.ravel(), side="right")
        reached += np.bincount(bins, minlength=thresholds.size + 1)
    predicted = np.cumsum(reached[::-1])[::-1][1:]
    true_positives = np.cumsum(at_threshold[::-1])[::-1]

    precision = np.append(true_positives / predicted, 1.0)
    recall = np.append(true_positives / true_positives[0], 0.0)
    return precision, recall


def average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """Average precision (scikit-learn's step-wise definition) of a PR curve.

    ``nan`` for the curve of an input without positives.
    """
    if len(recall) < 2:
        return math.nan
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def micro_average_precision(targets_b, scores) -> float:
    """``sklearn.metrics.average_precision_score(targets_b, scores, average="micro")``, memory-lean.

    ``nan`` if ``targets_b`` has no positives at all.
    """
    return average_precision(*micro_pr_curve(targets_b, scores))


# ------------------------------------------------------------------ metrics
def _leaf_metrics(true_leaves: np.ndarray, pred_leaves: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import f1_score, precision_score

    return {
        "leaf_accuracy": float(np.mean(true_leaves == pred_leaves)),
        "leaf_precision_weighted": float(
            precision_score(true_leaves, pred_leaves, average="weighted", zero_division=0)
        ),
        "leaf_macro_f1": float(f1_score(true_leaves, pred_leaves, average="macro", zero_division=0)),
    }


def get_metrics(output: Mapping, hierarchy: Hierarchy, prefix: str = "") -> dict[str, float]:
    """All metrics of a model's test output.

    Parameters
    ----------
    output : mapping
        A model's test output (see the module docstring).
    hierarchy : Hierarchy
    prefix : str, optional
        Prepended to every key, e.g. ``"test_"``.

    Returns
    -------
    dict of str to float
        ``leaf_accuracy``, ``leaf_precision_weighted``, ``leaf_macro_f1``,
        ``leaf_auprc_micro``, ``level{k}_accuracy`` for k = 1..depth,
        ``hierarchical_precision``, ``hierarchical_recall``,
        ``hierarchical_f1`` and ``path_consistency``.

    Raises
    ------
    KttError
        On missing keys, unknown class names or mismatched shapes.
    """
    true_paths, pred_paths = output_paths(output, hierarchy)
    output_columns(output, hierarchy)
    if output.get("paths") is None:
        pred_leaves = pred_paths[:, -1]
    else:
        pred_leaves = leaf_name_paths(output["predictions"], hierarchy)[:, -1]

    metrics = _leaf_metrics(true_paths[:, -1], pred_leaves)
    metrics["leaf_auprc_micro"] = micro_average_precision(output["targets_b"], output["scores"])
    true_real = pred_real = None
    if hierarchy.ragged or output.get("stopped") is not None:
        true_real = hierarchy.real_mask(true_paths)
        pred_real = hierarchy.real_mask(pred_paths)
        if output.get("stopped") is not None:  # a prediction stopped above its leaf when unsure
            pred_real = pred_real & ~np.asarray(output["stopped"], dtype=bool)
    for level, accuracy in enumerate(level_accuracies(true_paths, pred_paths, true_real), start=1):
        metrics[f"level{level}_accuracy"] = float(accuracy)
    h_precision, h_recall, h_f1 = hierarchical_prf(true_paths, pred_paths, true_real, pred_real)
    metrics["hierarchical_precision"] = h_precision
    metrics["hierarchical_recall"] = h_recall
    metrics["hierarchical_f1"] = h_f1
    metrics["path_consistency"] = path_consistency(pred_paths, hierarchy)
    if pred_real is not None:
        for level, share in enumerate(stop_shares(pred_real), start=1):
            metrics[f"stopped_level{level}_share"] = float(share)
    return {prefix + key: value for key, value in metrics.items()}


# -------------------------------------------------------------------- table
def _split_key(key: str) -> tuple[str, str]:
    """``"test_leaf_accuracy"`` -> ``("test_", "leaf_accuracy")``; unknown names keep no prefix."""
    match = _METRIC_NAME.match(key)
    return (match["prefix"], match["name"]) if match else ("", key)


def _format_value(value) -> str:
    try:
        return f"{float(value):.4f}"
    except (TypeError, ValueError):
        return str(value)


def _render(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, ["-" * w for w in widths], *rows]:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_table(metrics: Mapping[str, float]) -> str:
    """A plain-text table of metrics.

    With one prefix (or none) it has two columns, metric and value; with
    several prefixes (e.g. ``val_`` and ``test_``) the rows are the metric
    names without prefix and there is one value column per prefix.

    Parameters
    ----------
    metrics : mapping of str to float

    Returns
    -------
    str
        Aligned lines; values with 4 decimals, ``-`` where a prefix lacks a metric.
    """
    split = {key: _split_key(key) for key in metrics}
    prefixes = list(dict.fromkeys(prefix for prefix, _ in split.values()))
    if len(prefixes) <= 1:
        rows = [[key, _format_value(value)] for key, value in metrics.items()]
        return _render(["metric", "value"], rows)
    names = list(dict.fromkeys(name for _, name in split.values()))
    table = {split[key]: value for key, value in metrics.items()}
    rows = [
        [name, *(_format_value(table[(p, name)]) if (p, name) in table else "-" for p in prefixes)]
        for name in names
    ]
    header = ["metric", *(prefix.rstrip("_") or "(none)" for prefix in prefixes)]
    return _render(header, rows)
