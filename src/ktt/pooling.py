"""Average pooling of tf-idf features: the ``F<i>`` columns of reference sets and monitoring rows.

A vocabulary of tens of thousands of terms is too wide to monitor column by
column; drift is computed on the averages of consecutive groups of
:data:`REFERENCE_SET_FEATURE_POOL` columns instead, the same at training time
(:meth:`ktt.model_sklearn.SklearnModel.gen_reference_set`) and at serving time
(:meth:`ktt.serving.runtime.ModelRuntime.classify`).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

#: Width of the average pools of tf-idf features in reference sets and monitoring rows.
REFERENCE_SET_FEATURE_POOL = 64


def pool_features(features, pool: int = REFERENCE_SET_FEATURE_POOL) -> np.ndarray:
    """Average-pool each row's features over consecutive groups of ``pool`` columns.

    Parameters
    ----------
    features : sparse matrix or ndarray of shape (n, n_features)
    pool : int
        Group width; the last group is narrower when ``pool`` does not divide n_features.

    Returns
    -------
    ndarray of shape (n, ceil(n_features / pool))
    """
    n_features = features.shape[1]
    n_pooled = -(-n_features // pool)
    columns = np.arange(n_features)
    widths = np.minimum(pool, n_features - np.arange(n_pooled) * pool)
    pooling = sparse.csr_matrix(
        (1.0 / widths[columns // pool], (columns, columns // pool)), shape=(n_features, n_pooled)
    )
    pooled = features @ pooling
    return pooled.toarray() if sparse.issparse(pooled) else np.asarray(pooled)
