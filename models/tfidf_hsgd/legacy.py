"""Checkpoints written before ktt's shared tf-idf prediction path, converted on load.

They hold a ``vectorizer_``, a list of :class:`ParentNode` (``nodes_``) and a
``hierarchy`` parameter, and decide greedily top down; the converted model
(``decoding="greedy"``) predicts the same paths and scores.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ktt.features import TfidfFeatures
from ktt.hierarchical import ParentNodes, ParentTask


class ParentNode(NamedTuple):
    """What an old checkpoint learned at one parent node (kept so that old checkpoints unpickle)."""

    parent: int
    level: int
    children: np.ndarray
    seen: np.ndarray
    classifier: object


def convert_state(state: dict) -> dict:
    """The state of a current TfidfHSGD from an old one (a current state is returned as is)."""
    if "vectorizer_" not in state:
        return state
    state = dict(state)
    vectorizer = state.pop("vectorizer_")
    nodes = state.pop("nodes_")
    hierarchy = state.pop("hierarchy")
    features = TfidfFeatures(word_ngrams=1, min_df=state.get("min_df", 1))
    features.vectorizers_, features.n_features_ = [vectorizer], len(vectorizer.vocabulary_)
    features._transformers = None
    empty = np.empty(0, dtype=np.int64)
    tasks = [ParentTask(n.parent, n.level, n.children, empty, empty, n.seen) for n in nodes]
    loss = "log_loss" if state.get("loss") == "log" else state.get("loss")
    alphas = [n.classifier.alpha for n in nodes if n.classifier is not None]
    state.update(
        decoding="greedy", blend_weight="auto", learner="sgd", alpha=alphas[0] if alphas else 1e-4, C=1.0, word_ngrams=1, char_ngrams=None,
        sublinear_tf=False, features_=features, hierarchy_=hierarchy, flat_=None, blend_weight_=0.0,
        nodes_=ParentNodes(hierarchy, tasks, [n.classifier for n in nodes], tie_break=loss == "modified_huber"))
    return state
