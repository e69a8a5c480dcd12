"""Tfidf-LeafSGD: a tf-idf vectoriser and one linear SGD classifier over the leaf classes."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline

from ktt.errors import KttError
from ktt.hierarchy import Hierarchy
from ktt.model_sklearn import Loader, SklearnModel, softmax
from ktt.params import Interval, Options

LOSSES = ("hinge", "log_loss", "log", "modified_huber", "squared_hinge", "perceptron")
#: Losses whose SGDClassifier has ``predict_proba``; the others' decision scores are softmaxed.
PROBABILISTIC_LOSSES = ("log_loss", "modified_huber")


class TfidfLSGD(SklearnModel):
    """tf-idf features and a linear classifier trained by SGD over the leaf classes.

    The upper levels of a prediction are the ancestors of the predicted leaf.

    Parameters
    ----------
    loss : str
        ``hinge``, ``log_loss`` (``log`` is accepted as its old name),
        ``modified_huber``, ``squared_hinge`` or ``perceptron``. Scores are
        probabilities for ``log_loss`` and ``modified_huber`` (sklearn's
        ``predict_proba``) and the softmax of the decision scores for the others.
    max_iter : int
        Upper bound on SGD epochs.
    min_df : int or float
        Minimum document count (int) or share (float in (0, 1]) of a term to enter the vocabulary.
    class_weight : None or "balanced"
        ``balanced`` weighs class c by W_c = N / (C * N_c).
    random_state : int or None
        Seed of SGD's shuffling; same seed and data give the same model.
    n_jobs : int or None
        Cores for the one-vs-rest fits (-1: all).
    hierarchy : Hierarchy or None
        The label hierarchy; the runner hands it over after reading the data.
    """

    _parameter_constraints = {
        "loss": [Options(LOSSES)],
        "max_iter": [Interval(int, 1, None)],
        "min_df": [Interval(int, 1, None), Interval(float, 0, 1, closed="right")],
        "class_weight": [None, Options(("balanced",))],
        "random_state": [None, Interval(int, 0, None)],
        "n_jobs": [None, int],
    }

    def __init__(
        self,
        loss: str = "modified_huber",
        max_iter: int = 1000,
        min_df: int | float = 50,
        class_weight: str | None = None,
        random_state: int | None = 42,
        n_jobs: int | None = -1,
        hierarchy: Hierarchy | None = None,
    ):
        self.loss = loss
        self.max_iter = max_iter
        self.min_df = min_df
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.hierarchy = hierarchy

    def _loss(self) -> str:
        return "log_loss" if self.loss == "log" else self.loss

    def fit(self, train: Loader, val: Loader | None = None) -> "TfidfLSGD":
        """Fit the vectoriser and the classifier on ``train``; ``val`` is not used."""
        self.validate_params()
        texts, targets = train
        if isinstance(self.min_df, int) and self.min_df > len(texts):
            raise KttError(
                f"min_df={self.min_df} is larger than the {len(texts)} training texts; lower min_df"
            )
        if len(set(targets)) < 2:
            raise KttError("the training split has fewer than 2 leaf classes; a classifier needs at least 2")
        pipeline = Pipeline([
            ("tfidf", TfidfVectorizer(min_df=self.min_df)),
            ("clf", SGDClassifier(loss=self._loss(), max_iter=self.max_iter, class_weight=self.class_weight,
                                  random_state=self.random_state, n_jobs=self.n_jobs)),
        ])
        try:
            pipeline.fit(texts, targets)
        except ValueError as error:
            if "no terms remain" in str(error) or "min_df" in str(error):
                raise KttError(
                    f"min_df={self.min_df} leaves no terms in the vocabulary of the {len(texts)} "
                    "training texts; lower min_df"
                ) from None
            raise
        self.pipeline_ = pipeline
        self.classes_ = np.asarray(pipeline.classes_, dtype=object)
        return self

    def encode(self, texts):
        self._check_fitted()
        return self.pipeline_.named_steps["tfidf"].transform(texts)

    def score_features(self, features) -> np.ndarray:
        clf = self.pipeline_.named_steps["clf"]
        if self._loss() in PROBABILISTIC_LOSSES:
            return clf.predict_proba(features)
        decision = clf.decision_function(features)
        if decision.ndim == 1:  # two classes: sklearn returns the positive class's score only
            decision = np.column_stack([-decision, decision])
        return softmax(decision)
