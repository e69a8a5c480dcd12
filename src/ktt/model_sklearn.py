"""The base of ktt's scikit-learn models: :class:`SklearnModel`.

It implements the parts of the :class:`~ktt.model.Model` contract that every tf-idf
model shares (scores, label paths, testing, reference sets), on top of three
methods a model writes: ``fit``, ``encode`` and ``score_features``. The data a model
reads comes from :mod:`ktt.data.loaders`, the metrics of its ``test()`` output from
:mod:`ktt.metrics`.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ktt.chunks import in_row_chunks
from ktt.data.loaders import Loader
from ktt.errors import KttError
from ktt.hierarchy import Hierarchy
from ktt.model import Model
from ktt.pooling import pool_features


class LevelSums:
    """Per-class sums of per-leaf score columns, level by level (:func:`ktt.linear.group_reduce`).

    Parameters
    ----------
    hierarchy : Hierarchy
    column_paths : ndarray of shape (n_columns, depth)
        The class-index path of each score column's leaf.
    """

    def __init__(self, hierarchy: Hierarchy, column_paths: np.ndarray):
        self.levels = []
        for level in range(hierarchy.depth):
            nodes = np.asarray(column_paths)[:, level] - hierarchy.level_offsets[level]
            order = np.argsort(nodes, kind="stable")
            present, starts = np.unique(nodes[order], return_index=True)
            sorted_columns = bool(np.array_equal(order, np.arange(len(order))))
            self.levels.append((nodes, starts, present, hierarchy.level_sizes[level], sorted_columns))

    def level(self, scores: np.ndarray, level: int, transposed: np.ndarray | None = None) -> np.ndarray:
        """Summed scores (n x level size) of the leaves below each class of ``level`` (0 where none).

        ``transposed``: ``scores`` laid out columns x examples (C-ordered), if the caller has it.
        """
        from ktt.linear import group_reduce, segment_reduce

        nodes, starts, present, size, sorted_columns = self.levels[level]
        if sorted_columns and len(starts) == len(nodes) == size:
            return scores
        if sorted_columns and transposed is not None:
            summed = group_reduce(np.add, transposed, starts).T
        else:
            summed = segment_reduce(np.add, scores if sorted_columns else scores[:, np.argsort(nodes, kind="stable")],
                                    starts)
        if len(present) == size:
            return summed
        full = np.zeros((len(scores), size))
        full[:, present] = summed
        return full

    def all_levels(self, scores: np.ndarray) -> list[np.ndarray]:
        """:meth:`level` of every level, from one columns x examples copy of ``scores``."""
        transposed = np.ascontiguousarray(scores.T)
        return [self.level(scores, level, transposed) for level in range(len(self.levels))]

    def chosen(self, scores: np.ndarray, level: int, classes: np.ndarray) -> np.ndarray:
        """The summed scores (n,) of the leaves below one class of ``level`` per row (``classes``, 0-based in the level)."""
        nodes = self.levels[level][0]
        if self.levels[level][4]:  # one way per model, whatever the batch: a row's scores never depend on it
            return self.level(scores, level)[np.arange(len(scores)), classes]
        return np.einsum("ij,ij->i", scores, nodes[None, :] == classes[:, None])


class SklearnModel(Model, BaseEstimator):
    """Shared implementation for tf-idf models.

    A subclass implements :meth:`fit` (setting ``classes_``, the leaf classes in
    score-column order, and ``hierarchy_``, the label hierarchy it was fitted
    with), :meth:`encode` (texts to tf-idf features) and :meth:`score_features`
    (features to per-leaf scores). Predictions are always the argmax of the
    scores, so every exporter and server agrees with ``test()``.
    """

    @abstractmethod
    def encode(self, texts: Sequence[str]):
        """tf-idf features (sparse, n x n_features) of preprocessed texts."""

    @abstractmethod
    def score_features(self, features) -> np.ndarray:
        """Per-leaf scores (n x n_classes, in ``classes_`` order) of encoded texts."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise KttError(f"{type(self).__name__} is not fitted yet; call fit or load a checkpoint")

    def _keep_hierarchy(self, targets, hierarchy: Hierarchy | None) -> None:
        """Check the training targets and keep ``hierarchy`` as ``hierarchy_``.

        Without a hierarchy the leaf classes form a one-level one.

        Raises
        ------
        KttError
            With fewer than 2 leaf classes, or a target that is not a leaf of ``hierarchy``.
        """
        if len(set(targets)) < 2:
            raise KttError("the training split has fewer than 2 leaf classes; a classifier needs at least 2")
        if hierarchy is None:
            hierarchy, _ = Hierarchy.from_paths(sorted({(str(t),) for t in targets}))
        unknown = set(map(str, targets)) - set(hierarchy.leaf_classes)
        if unknown:
            raise KttError(f"{sorted(unknown)[0]!r} is not a leaf class of this hierarchy")
        self.hierarchy_ = hierarchy

    @property
    def hierarchy(self) -> Hierarchy | None:
        """The label hierarchy the model was fitted with (``hierarchy_``), None before fitting."""
        return getattr(self, "hierarchy_", None)

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Per-leaf scores of preprocessed texts."""
        self._check_fitted()
        return self.score_features(self.encode(texts))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Predicted leaf class names of preprocessed texts."""
        return self.classes_[np.argmax(self.predict_scores(texts), axis=1)]

    def predict_path(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The predicted root-to-leaf path of preprocessed texts, with a score per level.

        Returns
        -------
        paths : ndarray of shape (n, depth)
            Class indices (into ``hierarchy_.classes``) from the top level down.
        path_scores : ndarray of shape (n, depth)
            The score of each predicted class (see :meth:`paths_from_scores`).
        """
        return self.paths_from_scores(self.predict_scores(texts))

    def paths_from_scores(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Paths and per-level scores from per-leaf scores.

        The path is the predicted leaf (the argmax) and its ancestors; a level's
        score is the summed score of the leaves under the predicted class there
        (for probabilistic scores: the probability of that class). Models that
        decide level by level override :meth:`_paths_of_scores`. Rows are
        decided in chunks (:func:`ktt.chunks.row_chunks`).
        """
        if self.hierarchy is None:
            raise KttError(f"{type(self).__name__} has no hierarchy; fit it first")
        return in_row_chunks(self._paths_of_scores, np.asarray(scores), self._score_width())

    def _paths_of_scores(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`paths_from_scores` of one chunk of rows."""
        paths = self._column_paths()[np.argmax(scores, axis=1)]
        return paths, self._path_scores(scores, paths)

    def _score_width(self) -> int:
        """Columns of the widest dense array scoring a row builds (sizes the row chunks): one per class."""
        return len(self.hierarchy.classes) if self.hierarchy is not None else len(self.classes_)

    def _column_paths(self) -> np.ndarray:
        """The class-index path (n_columns x depth) of each score column's leaf, computed once."""
        cached = self.__dict__.get("_column_paths_cache")
        if cached is None:
            cached = self.hierarchy.leaf_path_indices(list(self.classes_))
            self.__dict__["_column_paths_cache"] = cached
        return cached

    def _level_sums(self) -> "LevelSums":
        """Summing leaf scores per class of each level, prepared once per model."""
        cached = self.__dict__.get("_level_sums_cache")
        if cached is None:
            cached = LevelSums(self.hierarchy, self._column_paths())
            self.__dict__["_level_sums_cache"] = cached
        return cached

    def _path_scores(self, scores: np.ndarray, paths: np.ndarray, level_sums: list | None = None) -> np.ndarray:
        """Each predicted class's summed leaf scores (n x depth).

        ``level_sums`` are the per-level sums of the upper levels when the caller has them.
        """
        hierarchy, sums = self.hierarchy, self._level_sums()
        rows = np.arange(len(scores))
        path_scores = np.empty(paths.shape, dtype=float)
        for level in range(paths.shape[1] - 1):
            classes = paths[:, level] - hierarchy.level_offsets[level]
            path_scores[:, level] = (level_sums[level][rows, classes] if level_sums is not None
                                     else sums.chosen(scores, level, classes))
        path_scores[:, -1] = scores[rows, self._leaf_columns()[paths[:, -1]]]  # one column per leaf
        return path_scores

    def _leaf_columns(self) -> np.ndarray:
        """Score column of each class index (-1 where a class has none), computed once."""
        cached = self.__dict__.get("_leaf_columns_cache")
        if cached is None:
            cached = np.full(len(self.hierarchy.classes), -1, dtype=np.int64)
            cached[self._column_paths()[:, -1]] = np.arange(len(self.classes_))
            self.__dict__["_leaf_columns_cache"] = cached
        return cached

    # ------------------------------------------------------- stopping when unsure
    def fit_stop_thresholds(self, predict_threshold, val: Loader | None = None,
                            target_precision: float = 0.9) -> "SklearnModel":
        """Set the per-level thresholds below which a predicted path stops (``stop_thresholds_``).

        See :mod:`ktt.stopping`. Fitted after :meth:`fit`, on the validation split
        for ``predict_threshold="auto"``; None removes them (always predict to the leaf).

        Parameters
        ----------
        predict_threshold : None, "auto", float or list of float
        val : Loader, optional
            Required for ``auto``.
        target_precision : float
            ``auto``'s per-level precision.

        Raises
        ------
        KttError
            On a bad setting, or ``auto`` without a validation split.
        """
        from ktt.metrics import leaf_name_paths
        from ktt.stopping import check_setting, choose_thresholds, level_thresholds

        self._check_fitted()
        check_setting(predict_threshold, target_precision)
        hierarchy = self.hierarchy
        if predict_threshold is None:
            self.stop_thresholds_ = None
        elif predict_threshold != "auto":
            self.stop_thresholds_ = level_thresholds(predict_threshold, hierarchy.depth)
        else:
            if val is None or not len(val.texts):
                raise KttError("predict_threshold=auto chooses the thresholds on the validation split, which is "
                               "empty; give it rows (dataset.split) or set predict_threshold to a number")
            paths, path_scores = self.predict_path(val.texts)
            known = np.isin(np.asarray(val.targets, dtype=object).astype(str), hierarchy.leaf_classes)
            true_paths = leaf_name_paths(np.asarray(val.targets, dtype=object)[known].astype(str), hierarchy)
            paths, path_scores = paths[known], path_scores[known]
            self.stop_thresholds_ = choose_thresholds(paths, path_scores, true_paths, hierarchy.real_mask(paths),
                                                      hierarchy.real_mask(true_paths), target_precision)
        return self

    def stopped(self, paths: np.ndarray, path_scores: np.ndarray) -> np.ndarray | None:
        """Levels (n x depth, True where cut) of predicted paths below the stop thresholds; None without them."""
        thresholds = getattr(self, "stop_thresholds_", None)
        if thresholds is None:
            return None
        from ktt.stopping import stopped_levels

        return stopped_levels(path_scores, thresholds)

    def __getstate__(self):
        state = super().__getstate__().copy()
        for cache in ("_column_paths_cache", "_level_sums_cache", "_leaf_columns_cache"):
            state.pop(cache, None)
        return state

    def test(self, loader: Loader, return_encodings: bool = False) -> dict:
        """Score a loader.

        Returns
        -------
        dict
            ``targets`` (leaf names), ``targets_b`` (binarised targets, columns in
            ``classes`` order), ``predictions`` (leaf names), ``scores``, ``classes``,
            ``paths`` and ``path_scores`` (see :meth:`predict_path`; when the model
            has a hierarchy), ``stopped`` (levels cut by :meth:`fit_stop_thresholds`,
            when set) and, if ``return_encodings``, ``encodings`` (pooled
            tf-idf features).
        """
        self._check_fitted()
        texts, targets = loader
        features = self.encode(texts)
        scores = self.score_features(features)
        column = {name: i for i, name in enumerate(self.classes_)}
        targets_b = np.zeros(scores.shape, dtype=np.int8)
        rows = [(r, column[t]) for r, t in enumerate(targets) if t in column]
        if rows:
            r, c = zip(*rows)
            targets_b[list(r), list(c)] = 1
        output = {
            "targets": np.asarray(targets, dtype=object),
            "targets_b": targets_b,
            "predictions": self.classes_[np.argmax(scores, axis=1)],
            "scores": scores,
            "classes": self.classes_,
        }
        if self.hierarchy is not None:
            output["paths"], output["path_scores"] = self.paths_from_scores(scores)
            stopped = self.stopped(output["paths"], output["path_scores"])
            if stopped is not None:
                output["stopped"] = stopped
        if return_encodings:
            output["encodings"] = pool_features(features)
        return output

    def gen_reference_set(self, loader: Loader) -> pd.DataFrame:
        """The reference set for drift monitoring.

        Columns: ``targets`` (leaf names), ``F0..F<k>`` (average-pooled tf-idf
        features, pool width :data:`ktt.pooling.REFERENCE_SET_FEATURE_POOL`) and one
        ``C<class>`` score column per leaf class.
        """
        output = self.test(loader, return_encodings=True)
        encodings, scores = output["encodings"], output["scores"]
        columns = {"targets": output["targets"]}
        columns.update({f"F{i}": encodings[:, i] for i in range(encodings.shape[1])})
        columns.update({f"C{name}": scores[:, i] for i, name in enumerate(self.classes_)})
        return pd.DataFrame(columns)

    def onnx_pipeline(self):
        """The model as a fitted scikit-learn ``Pipeline(tfidf, classifier)``, for the ONNX exporter.

        The default is the fitted ``pipeline_``; models that hold their weights
        otherwise build one (or raise :class:`KttError` saying why they cannot).

        Raises
        ------
        KttError
            If the model has no such pipeline.
        """
        self._check_fitted()
        pipeline = getattr(self, "pipeline_", None)
        if pipeline is None or not hasattr(pipeline, "steps"):
            raise KttError(f"ONNX export is not supported for {type(self).__name__}")
        return pipeline
