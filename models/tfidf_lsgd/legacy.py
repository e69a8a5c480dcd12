"""Checkpoints written before ktt's shared tf-idf prediction path, converted on load.

They hold a ``pipeline_`` (TfidfVectorizer + SGDClassifier) and a ``hierarchy``
parameter; the converted model predicts the same labels and scores.
"""

from __future__ import annotations

from ktt.features import TfidfFeatures
from ktt.linear import LinearScores, classifier_columns, score_rule


def convert_state(state: dict) -> dict:
    """The state of a current TfidfLSGD from an old one (a current state is returned as is)."""
    if "pipeline_" not in state:
        return state
    state = dict(state)
    pipeline = state.pop("pipeline_")
    vectorizer, classifier = pipeline.steps[0][1], pipeline.steps[-1][1]
    features = TfidfFeatures(word_ngrams=1, min_df=state.get("min_df", 1))
    features.vectorizers_, features.n_features_ = [vectorizer], len(vectorizer.vocabulary_)
    features._transformers = None
    weights, intercepts = classifier_columns(classifier)
    state.update(learner="sgd", alpha=classifier.alpha, C=1.0, word_ngrams=1, char_ngrams=None, sublinear_tf=False,
                 features_=features, scorer_=LinearScores([weights], [intercepts], score_rule(classifier)))
    hierarchy = state.pop("hierarchy", None)
    if hierarchy is not None:
        state["hierarchy_"] = hierarchy
    return state
