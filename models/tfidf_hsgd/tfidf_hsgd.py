"""Tfidf-HierarchicalSGD: tf-idf features and one linear classifier per parent node.

The model is :class:`ktt.hierarchical.HierarchicalTfidfModel` with its defaults
here: per-parent-node classifiers, blended with a flat leaf classifier at a
weight chosen on the validation split (``decoding="blend"``), or decided greedily
top down as in the original KTT (``decoding="greedy"``, ``model=tfidf_hsgd_ktt``).
"""

from __future__ import annotations

from ktt.hierarchical import HierarchicalTfidfModel
from ktt_models.tfidf_hsgd.legacy import ParentNode, convert_state

__all__ = ["ParentNode", "TfidfHSGD"]


class TfidfHSGD(HierarchicalTfidfModel):
    """tf-idf features, one linear classifier per parent node, and a decoding.

    Parameters and scores: see :class:`ktt.hierarchical.HierarchicalTfidfModel`.

    Examples
    --------
    >>> import numpy as np
    >>> from ktt.hierarchy import Hierarchy
    >>> from ktt.model_sklearn import Loader
    >>> hierarchy, _ = Hierarchy.from_paths([("Food", "Tea"), ("Food", "Nuts"), ("Home", "Hose")])
    >>> train = Loader(["green tea", "roast nut", "garden hose"] * 5, np.array(["Tea", "Nuts", "Hose"] * 5))
    >>> model = TfidfHSGD(min_df=1).fit(train, hierarchy=hierarchy)
    >>> model.predict(["green tea"]).tolist()
    ['Tea']
    """

    def __setstate__(self, state):
        super().__setstate__(convert_state(state))
