"""Stopping above the leaf when unsure (non-mandatory leaf prediction).

A prediction is a path with a score per level (the probability of the chosen
class there: the summed scores of the leaves below it, see
:meth:`ktt.model_sklearn.SklearnModel.paths_from_scores`), so its scores never
grow down the path. With a ``predict_threshold``, the path stops at the deepest
level whose score, and every score above it, reaches that level's threshold;
the top level is always predicted. Metrics then score the partial paths as
they are (hierarchical precision/recall/F1, and the share of rows stopped at
each level; see :mod:`ktt.metrics`).

``predict_threshold`` is one number for every level, one per level, or
``auto``: per level, the lowest threshold at which the validation split's
predictions of that level are right at least ``threshold_precision`` of the
time (the most rows kept at that precision).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ktt.errors import KttError

#: ``predict_threshold=auto`` aims at this precision per level unless ``threshold_precision`` says otherwise.
DEFAULT_TARGET_PRECISION = 0.9


def check_setting(predict_threshold, target_precision: float = DEFAULT_TARGET_PRECISION) -> None:
    """Raise a one-line :class:`KttError` unless ``predict_threshold`` is None, ``auto``, a number or numbers in [0, 1]."""
    allowed = "(allowed: null, auto, a number in [0, 1], or a list of one per level)"
    if predict_threshold is None or predict_threshold == "auto":
        pass
    elif isinstance(predict_threshold, (int, float)) and not isinstance(predict_threshold, bool):
        if not 0 <= predict_threshold <= 1:
            raise KttError(f"invalid predict_threshold={predict_threshold!r} {allowed}")
    elif isinstance(predict_threshold, (list, tuple)) and predict_threshold:
        if any(isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 1 for t in predict_threshold):
            raise KttError(f"invalid predict_threshold={list(predict_threshold)!r} {allowed}")
    else:
        raise KttError(f"invalid predict_threshold={predict_threshold!r} {allowed}")
    if isinstance(target_precision, bool) or not isinstance(target_precision, (int, float)) \
            or not 0 < target_precision <= 1:
        raise KttError(f"invalid threshold_precision={target_precision!r} (allowed: a number in (0, 1])")


def level_thresholds(predict_threshold, depth: int) -> np.ndarray:
    """A number or a list (one per level) as an array of ``depth`` thresholds.

    Raises
    ------
    KttError
        If a list does not have one threshold per level.
    """
    if isinstance(predict_threshold, (list, tuple)):
        if len(predict_threshold) != depth:
            raise KttError(f"predict_threshold has {len(predict_threshold)} values but the label tree has {depth} "
                           f"levels; give one number, or {depth}")
        return np.asarray(predict_threshold, dtype=float)
    return np.full(depth, float(predict_threshold))


def choose_thresholds(pred_paths: np.ndarray, path_scores: np.ndarray, true_paths: np.ndarray,
                      pred_real: np.ndarray, true_real: np.ndarray, target_precision: float) -> np.ndarray:
    """Per level, the lowest threshold whose kept predictions reach ``target_precision`` on labelled rows.

    Parameters
    ----------
    pred_paths, path_scores : ndarray of shape (n, depth)
        Predicted class indices and their scores.
    true_paths : ndarray of shape (n, depth)
        True class indices.
    pred_real, true_real : ndarray of bool, shape (n, depth)
        Where the paths have real classes (not a ragged tree's stops).
    target_precision : float

    Returns
    -------
    ndarray of shape (depth,)
        0 on the top level; above 1 (never kept) on a level where no threshold reaches the precision.
    """
    depth = pred_paths.shape[1]
    thresholds = np.zeros(depth)
    for level in range(1, depth):
        rows = pred_real[:, level]
        if not rows.any():
            continue
        scores = path_scores[rows, level]
        correct = (pred_paths[rows, level] == true_paths[rows, level]) & true_real[rows, level]
        order = np.argsort(-scores, kind="stable")
        precision = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
        # a cut can only fall between distinct scores: the last position of each score
        last = np.r_[scores[order][1:] != scores[order][:-1], True]
        reaching = np.flatnonzero(last & (precision >= target_precision))
        thresholds[level] = scores[order][reaching[-1]] if len(reaching) else np.nextafter(1.0, 2.0)
    return thresholds


def stopped_levels(path_scores: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Where a path is cut: True on every level below the first one whose score is under its threshold.

    The top level is never cut.

    Parameters
    ----------
    path_scores : ndarray of shape (n, depth)
    thresholds : sequence of float, one per level

    Returns
    -------
    ndarray of bool, shape (n, depth)
    """
    below = np.asarray(path_scores) < np.asarray(thresholds, dtype=float)[None, :]
    below[:, 0] = False
    return np.logical_or.accumulate(below, axis=1)
