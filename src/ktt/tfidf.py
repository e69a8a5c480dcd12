"""The tf-idf linear model family: one featuriser, one learner, one prediction path.

:class:`TfidfLinearModel` is a flat model (one linear classifier over the leaf
classes, upper levels from the leaf's ancestors) and the base of every ktt tf-idf
model: the hierarchical model (:class:`ktt.hierarchical.HierarchicalTfidfModel`)
adds per-parent-node classifiers and a decoding on top of the same features and
learner. Model folders (``models/<name>/``) subclass these with their defaults.

Prediction reads only fitted state in the layout it needs: the featuriser's own
transform (:class:`ktt.features.TfidfFeatures`) and the stacked weights of
:class:`ktt.linear.LinearScores`.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
from typing import Sequence

import numpy as np
from joblib import effective_n_jobs

from ktt.chunks import CACHE_BYTES, in_row_chunks, row_chunks
from ktt.errors import KttError
from ktt.features import TfidfFeatures, check_min_df
from ktt.hierarchy import Hierarchy
from ktt.label_names import with_label_names
from ktt.linear import (LEARNERS, LIBLINEAR, LOSSES, LinearScores, canonical_loss, choose_temperature,
                        class_groups, classifier_columns, fit_class_group, fit_columns, join_class_groups,
                        make_classifier, score_rule)
from ktt.model_sklearn import Loader, SklearnModel
from ktt.params import Interval, NgramRange, Options
from ktt.workers import run_jobs

log = logging.getLogger(__name__)

#: The settings each learner reads of ``loss``, ``alpha`` and ``C`` (see :func:`ktt.linear.make_classifier`).
LEARNER_SETTINGS = {"sgd": ("loss", "alpha"), "svm": ("C",), "logreg": ("C",)}

#: ``min_df="auto"``: a word must occur in this many training texts per ``AUTO_MIN_DF_ROWS`` (at least 1).
AUTO_MIN_DF_ROWS = 100_000


def auto_min_df(n_texts: int) -> int:
    """The document-count threshold of ``min_df="auto"``: 1 below 100k texts, then 1 per 100k.

    Rare terms carry most of the signal in short texts (labels of codes,
    product names), so small data keeps every term; above 100k texts the
    threshold grows with the data to bound the vocabulary.
    """
    return max(1, math.floor(n_texts / AUTO_MIN_DF_ROWS))


class TfidfLinearModel(SklearnModel):
    """tf-idf features (words, optionally characters) and one linear classifier over the leaf classes.

    Parameters
    ----------
    learner : {"sgd", "svm", "logreg"}
        ``sgd``: SGDClassifier with ``loss`` and ``alpha``; ``svm``: LinearSVC
        with ``C``; ``logreg``: liblinear LogisticRegression with ``C``.
    loss : str
        SGD's loss: ``hinge``, ``log_loss`` (``log`` is its old name),
        ``modified_huber``, ``squared_hinge`` or ``perceptron``.
    alpha : float
        SGD's L2 regularisation strength.
    C : float
        Inverse regularisation strength of ``svm`` and ``logreg``.
    max_iter : int
        Epochs (SGD) or solver iterations (liblinear).
    tol : float or "auto"
        The solver's stopping tolerance; ``auto``: 1e-2 for ``svm``
        (:data:`ktt.linear.SVM_TOL`), scikit-learn's default for the others.
    min_df : int, float or "auto"
        Minimum document count (int) or share (float in (0, 1]) of a word
        n-gram; ``auto`` follows the number of training texts (:func:`auto_min_df`).
    word_ngrams : int
        Word n-grams of 1 to ``word_ngrams`` words.
    char_ngrams : list of two ints, "auto", "off" or None
        ``[low, high]`` character n-grams inside word boundaries, or None (``off``);
        ``auto``: 2-5 when the median training text is short (at most 300
        characters), none for long documents (:func:`ktt.features.resolve_char_ngrams`).
    sublinear_tf : bool
        Term frequency ``1 + log(tf)``.
    class_weight : None or "balanced"
        ``balanced`` weighs class c by W_c = N / (C * N_c).
    random_state : int or None
        Seed of SGD's shuffling and liblinear's.
    n_jobs : int or None
        Threads over classes (SGD) or over parent nodes (hierarchical models); -1: all cores.
    temperature : float or "auto"
        Scores of learners without probabilities (``svm``, ``hinge``, ``squared_hinge``,
        ``perceptron``) are the softmax of the decisions divided by it; ``auto``
        fits it on the validation split (smallest log-loss, 1 without one). It
        changes scores, never the flat model's labels.

    Scores are probabilities (``predict_proba``'s rule) for ``log_loss``,
    ``modified_huber`` and ``logreg``, and the softmax of the decision scores
    for the others (:func:`ktt.linear.score_rule`).

    Attributes
    ----------
    features_ : ktt.features.TfidfFeatures
    scorer_ : ktt.linear.LinearScores
    classes_ : ndarray
        Leaf classes, in score-column order.
    temperature_ : float
        The softmax temperature in use (1 for learners with probabilities).
    label_names_ : bool
        Whether the leaf names were added to the training texts.
    """

    _parameter_constraints = {
        "learner": [Options(tuple(LEARNERS))],
        "loss": [Options(LOSSES)],
        "alpha": [Interval(float, 0, None, closed="neither")],
        "C": [Interval(float, 0, None, closed="neither")],
        "max_iter": [Interval(int, 1, None)],
        "tol": [Options(("auto",)), Interval(float, 0, None, closed="neither")],
        "min_df": [Options(("auto",)), Interval(int, 1, None), Interval(float, 0, 1, closed="right")],
        "word_ngrams": [Interval(int, 1, 5)],
        "char_ngrams": [None, Options(("auto", "off")), NgramRange(1, 10)],
        "sublinear_tf": [bool],
        "class_weight": [None, Options(("balanced",))],
        "random_state": [None, Interval(int, 0, None)],
        "n_jobs": [None, Interval(int, None, -1), Interval(int, 1, None)],
        "temperature": [Options(("auto",)), Interval(float, 0, None, closed="neither")],
        "label_names": [bool, Options(("auto",))],
    }
    temperature_ = 1.0  # checkpoints written before it existed

    def __init__(self, learner: str = "sgd", loss: str = "modified_huber", alpha: float = 1e-4, C: float = 1.0,
                 max_iter: int = 1000, min_df: int | float | str = "auto", word_ngrams: int = 1,
                 char_ngrams: Sequence[int] | None = None, sublinear_tf: bool = False,
                 class_weight: str | None = None, random_state: int | None = 42, n_jobs: int | None = -1,
                 temperature: float | str = "auto", label_names: bool | str = "auto", tol: float | str = "auto"):
        self.learner = learner
        self.loss = loss
        self.alpha = alpha
        self.C = C
        self.max_iter = max_iter
        self.min_df = min_df
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.sublinear_tf = sublinear_tf
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.temperature = temperature
        self.label_names = label_names
        self.tol = tol

    def __setstate__(self, state):
        # checkpoints written before label names: trained without them; before tol: scikit-learn's default
        tol = 1e-4 if state.get("learner") == "svm" else "auto"
        super().__setstate__({"label_names": False, "label_names_": False, "tol": tol} | state)

    # ------------------------------------------------------------------ fitting
    def fit(self, train: Loader, val: Loader | None = None, hierarchy: Hierarchy | None = None):
        """Fit the featuriser and the leaf classifier on ``train``.

        Parameters
        ----------
        train : Loader
            Preprocessed texts and their leaf class names.
        val : Loader, optional
            Fits ``temperature="auto"``.
        hierarchy : Hierarchy, optional
            The label hierarchy (kept as ``hierarchy_``); without it the leaves are one level.

        Returns
        -------
        self
        """
        self.validate_params()
        texts, targets = self._training_rows(train, hierarchy)
        features = self._fit_features(texts)
        jobs = self._flat_jobs(features, targets)
        parts = run_jobs(jobs, self.n_jobs, processes=self.learner in LIBLINEAR)
        classifier = join_class_groups([part for _, part in parts])
        self.classes_ = np.asarray(classifier.classes_, dtype=object)
        self.scorer_ = self._scores_of([classifier])
        self.temperature_ = self.scorer_.temperature = self._fit_temperature(val)
        return self

    def _training_rows(self, train: Loader, hierarchy: Hierarchy | None) -> tuple[list[str], np.ndarray]:
        """Check ``train``, keep the hierarchy and add the leaf names (``label_names``) to the rows."""
        self._warn_ignored_settings()
        self._keep_hierarchy(train.targets, hierarchy)
        if self.min_df != "auto":
            check_min_df(self.min_df, len(train.texts))  # the user's texts, not counting the names
        texts, targets, self.label_names_ = with_label_names(self.label_names, self.hierarchy_, *train)
        if self.label_names_:
            log.info("training on %d leaf names as texts too (label_names=%s)", len(texts) - len(train.texts),
                     self.label_names)
        return texts, targets

    def _warn_ignored_settings(self) -> None:
        """Log a warning when a setting of another learner was changed (``learner=svm loss=hinge``): it is ignored."""
        defaults = inspect.signature(TfidfLinearModel.__init__).parameters
        own = LEARNER_SETTINGS.get(self.learner, ())
        ignored = [f"{name}={getattr(self, name)!r}" for name in ("loss", "alpha", "C")
                   if name not in own and getattr(self, name) != defaults[name].default]
        if ignored:
            log.warning("learner=%s ignores %s (its settings: %s)", self.learner, ", ".join(ignored), ", ".join(own))

    def fitted_settings(self) -> dict:
        """``min_df``, ``char_ngrams``, ``label_names``, ``temperature`` and ``n_jobs`` as fitting resolved them.

        ``n_jobs`` is the number of cores: with ``svm``, the flat classifier's classes are
        fitted in one group per core, and liblinear's random sequence restarts with each
        group, so the same seed gives the same model for the same number of cores.
        """
        self._check_fitted()
        features = self.features_
        return {"min_df": features.min_df, "char_ngrams": list(features.char_ngrams_) if features.char_ngrams_ else None,
                "label_names": bool(self.label_names_), "temperature": float(self.temperature_),
                "n_jobs": int(effective_n_jobs(self.n_jobs))}

    def _fit_temperature(self, val: Loader | None) -> float:
        if self.temperature != "auto":
            return float(self.temperature) if self.scorer_.rule == "softmax" else 1.0
        known = self._known_rows(val)
        if known is None or len(self.scorer_.temperatures()) == 1:
            return 1.0
        texts, truth = known
        return choose_temperature(self.scorer_, self.encode(texts), truth, row_chunks(len(truth), self._score_width(), CACHE_BYTES))

    def _known_rows(self, val: Loader | None) -> tuple[list[str], np.ndarray] | None:
        """The validation texts whose class the model knows, and each one's score column (None if there are none)."""
        if val is None or not len(val.texts):
            return None
        column = {name: i for i, name in enumerate(self.classes_)}
        truth = np.asarray([column.get(t, -1) for t in np.asarray(val.targets, dtype=object)], dtype=np.int64)
        known = truth >= 0
        if not known.any():
            return None
        return [t for t, k in zip(val.texts, known) if k], truth[known]

    def _fit_features(self, texts: Sequence[str]):
        min_df = auto_min_df(len(texts)) if self.min_df == "auto" else self.min_df
        self.features_ = TfidfFeatures(word_ngrams=self.word_ngrams, min_df=min_df,
                                       char_ngrams=self.char_ngrams,
                                       char_min_df=min_df, sublinear_tf=self.sublinear_tf)
        return self.features_.fit_transform(texts)

    def _flat_jobs(self, features, targets: np.ndarray) -> list:
        """Jobs (:func:`ktt.workers.run_jobs`) fitting the flat leaf classifier; each gives ``("flat", FittedLinear)``.

        A :data:`ktt.linear.LIBLINEAR` learner (one core per fit) is one job per
        class group (:func:`ktt.linear.fit_class_group`), so that it fills every core;
        any other is one job with ``n_jobs`` threads of its own. The parts join with
        :func:`ktt.linear.join_class_groups`.
        """
        if self.learner in LIBLINEAR:
            groups = class_groups(targets, effective_n_jobs(self.n_jobs))
            factory = functools.partial(self._new_classifier, n_jobs=1)
            return [functools.partial(_flat_part, fit_class_group, factory, features, targets, group)
                    for group in groups]
        factory = functools.partial(self._new_classifier, n_jobs=self.n_jobs)
        return [functools.partial(_flat_part, fit_columns, factory, features, targets)]

    def _new_classifier(self, n_jobs=None):
        return make_classifier(self.learner, loss=self.loss, alpha=float(self.alpha), C=float(self.C),
                               max_iter=self.max_iter, class_weight=self.class_weight,
                               random_state=self.random_state, n_jobs=n_jobs, tol=self.tol)

    def _scores_of(self, classifiers, tie_break: bool = False) -> LinearScores:
        columns = [classifier_columns(c) for c in classifiers]
        return LinearScores([w for w, _ in columns], [b for _, b in columns], score_rule(classifiers[0]),
                            tie_break=tie_break)

    # --------------------------------------------------------------- predicting
    def encode(self, texts: Sequence[str]):
        self._check_fitted()
        return self.features_.transform(texts)

    def score_features(self, features) -> np.ndarray:
        return in_row_chunks(self.scorer_.scores, features, self._score_width())

    def onnx_pipeline(self):
        """The model as a scikit-learn ``Pipeline(tfidf, classifier)`` for skl2onnx.

        Raises
        ------
        KttError
            With character n-grams (skl2onnx has no ``char_wb``), sublinear tf (which
            skl2onnx ignores: measured score differences of 0.03 to 0.06) or
            ``learner="logreg"``.
        """
        from sklearn.pipeline import Pipeline

        self._check_fitted()
        if self.learner == "logreg":
            raise KttError(f"ONNX export is not supported for {type(self).__name__} with learner=logreg; "
                           "use learner=sgd or svm to export ONNX")
        unsupported = [name for name, used in (("char_ngrams", len(self.features_.vectorizers_) > 1),
                                               ("sublinear_tf", self.sublinear_tf)) if used]
        if unsupported:
            raise KttError(f"ONNX export is not supported for {type(self).__name__} with {' and '.join(unsupported)} "
                           "(skl2onnx converts neither char_wb n-grams nor sublinear tf); train with "
                           "char_ngrams=null sublinear_tf=false to export ONNX")
        classifier = self._new_classifier()
        weights = self.scorer_.weights
        weights = weights.toarray() if hasattr(weights, "toarray") else np.asarray(weights)
        coef, intercept = weights.T, self.scorer_.intercept
        if len(self.classes_) == 2:  # stored as [-w, w]
            coef, intercept = coef[1:], intercept[1:]
        if self.scorer_.rule == "softmax" and self.scorer_.temperature != 1.0:
            # softmax(d / T): the graph's decisions are divided by T through its weights (labels unchanged)
            coef, intercept = coef / self.scorer_.temperature, intercept / self.scorer_.temperature
        classifier.coef_, classifier.intercept_ = np.ascontiguousarray(coef), np.array(intercept)
        classifier.classes_ = np.asarray(self.classes_)
        if hasattr(classifier, "t_"):
            classifier.t_ = 1.0
        classifier.n_features_in_ = coef.shape[1]
        return Pipeline([("tfidf", self.features_.vectorizers_[0]), ("clf", classifier)])

    def _loss(self) -> str:
        return canonical_loss(self.loss)


def _flat_part(fit, *args) -> tuple[str, object]:
    return "flat", fit(*args)
