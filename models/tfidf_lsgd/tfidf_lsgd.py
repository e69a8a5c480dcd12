"""Tfidf-LeafSGD: tf-idf features and one linear classifier over the leaf classes.

The model is :class:`ktt.tfidf.TfidfLinearModel` with its defaults here; the
upper levels of a prediction are the ancestors of the predicted leaf.
"""

from __future__ import annotations

from ktt.tfidf import TfidfLinearModel
from ktt_models.tfidf_lsgd.legacy import convert_state


class TfidfLSGD(TfidfLinearModel):
    """tf-idf features (words, optionally characters) and a linear classifier over the leaf classes.

    The name is the original KTT's (SGD over the leaves); ``learner`` may also be
    ``svm`` or ``logreg``. ``model=tfidf_lsgd_ktt`` is the original's configuration.
    Parameters and scores: see :class:`ktt.tfidf.TfidfLinearModel`.

    Examples
    --------
    >>> from ktt.model_sklearn import Loader
    >>> import numpy as np
    >>> train = Loader(["green tea", "roast nut", "garden hose"] * 5, np.array(["Tea", "Nuts", "Hose"] * 5))
    >>> TfidfLSGD(min_df=1).fit(train).predict(["green tea"]).tolist()
    ['Tea']
    """

    def __setstate__(self, state):
        super().__setstate__(convert_state(state))
