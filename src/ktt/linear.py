"""Linear learners and the scoring of their decisions, in the layout prediction needs.

A ktt tf-idf model trains scikit-learn linear classifiers (:func:`make_classifier`)
and then keeps only what prediction reads: their weights, stacked column-wise in
one matrix (features x columns) in :class:`LinearScores`, with the intercepts and
the rule that turns decisions into scores (:data:`SCORE_RULES`). One sparse-dense
(or sparse-sparse) product scores every classifier of a model at once, the
per-group rules are vectorised over the columns, and nothing is copied per call.

A binary classifier's single weight vector ``w`` is stored as two columns,
``-w`` and ``w``: every rule below then gives the same values as scikit-learn's
two-class special cases, and a group is always one column per class.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import numpy as np
from scipy import sparse
from scipy.special import expit

from ktt.features import kept_entries

#: Learners a ktt tf-idf model can train, with the scikit-learn estimator behind each.
LEARNERS = {
    "sgd": "sklearn.linear_model.SGDClassifier (one-vs-rest, parallel over classes)",
    "svm": "sklearn.svm.LinearSVC (liblinear, squared hinge, one-vs-rest)",
    "logreg": "sklearn.linear_model.LogisticRegression (liblinear) in a OneVsRestClassifier",
}
LOSSES = ("hinge", "log_loss", "log", "modified_huber", "squared_hinge", "perceptron")
#: Per-class score rules (see :func:`apply_rule`).
SCORE_RULES = ("softmax", "logistic", "modified_huber")
#: Candidate temperatures of the ``softmax`` rule, tried on the validation split (see :func:`choose_temperature`).
TEMPERATURES = (1.0, 0.7, 0.5, 0.35, 0.25, 0.15, 0.1)
#: Share of the softmax of the decisions mixed into tied modified_huber rows (see :func:`apply_rule`).
TIE_BREAK = 1e-6
#: A weight matrix is kept dense (C-contiguous) unless it is this large and mostly zeros.
DENSE_MAX_BYTES = 256 * 2**20
#: ... where "mostly zeros" means at most this share of non-zero weights.
SPARSE_BELOW = 0.25
#: ``tol="auto"`` of ``svm``: liblinear's dual solver stops when the largest violation of its optimality
#: conditions is below it. scikit-learn's default (1e-4) is 100x stricter, liblinear's own (0.1) 10x looser.
#: At 1e-2 the default tfidf_hsgd gave the same test accuracy on icd10cm, ipc and 20ng (20k rows each)
#: and 10-40% less fitting CPU, most on long documents, whose solves need the most passes (docs/models.md).
SVM_TOL = 1e-2
#: Up to this many rows, a product with sparse weights gathers the rows' weights with numpy
#: instead of a scipy sparse-sparse product (whose fixed cost, ~50 us, dominates for one short row).
#: Per weight entry numpy's gather costs ~3x scipy's product: on whole ICD-10-CM descriptions
#: (~12,000 sparse node weights per text) the two tie for one text and scipy is 2.2x faster for 4.
FEW_ROWS = 1


def canonical_loss(loss: str) -> str:
    """``log`` is the old name of ``log_loss``."""
    return "log_loss" if loss == "log" else loss


def make_classifier(learner: str, loss: str = "modified_huber", alpha: float = 1e-4, C: float = 1.0,
                    max_iter: int = 1000, class_weight=None, random_state=None, n_jobs=None, tol="auto"):
    """A fresh scikit-learn linear classifier.

    Parameters
    ----------
    learner : {"sgd", "svm", "logreg"}
        See :data:`LEARNERS`.
    loss : str
        SGD's loss (``sgd`` only).
    alpha : float
        SGD's L2 regularisation strength (``sgd`` only).
    C : float
        Inverse regularisation strength (``svm`` and ``logreg``).
    max_iter : int
        Epochs (SGD) or solver iterations (liblinear).
    class_weight : None or "balanced"
    random_state : int or None
    n_jobs : int or None
        Threads over classes (SGD only; liblinear is single-threaded).
    tol : float or "auto"
        The solver's stopping tolerance; ``auto``: :data:`SVM_TOL` for ``svm``,
        scikit-learn's default for the others.
    """
    tolerance = {} if tol == "auto" else {"tol": float(tol)}
    if learner == "sgd":
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(loss=canonical_loss(loss), alpha=alpha, max_iter=max_iter, class_weight=class_weight,
                             random_state=random_state, n_jobs=n_jobs, **tolerance)
    if learner == "svm":
        from sklearn.svm import LinearSVC

        return LinearSVC(C=C, max_iter=max_iter, class_weight=class_weight, random_state=random_state,
                         tol=tolerance.get("tol", SVM_TOL))
    if learner == "logreg":
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        return OneVsRestClassifier(LogisticRegression(C=C, solver="liblinear", max_iter=max_iter,
                                                      class_weight=class_weight, random_state=random_state,
                                                      **tolerance),
                                   n_jobs=n_jobs)
    raise ValueError(f"unknown learner {learner!r} (allowed: {', '.join(LEARNERS)})")


def score_rule(classifier) -> str:
    """How a fitted classifier's decisions become scores, as its ``predict_proba`` would.

    ``log_loss`` (SGD) and liblinear's logistic regression: one-vs-rest logistic
    probabilities, normalised; ``modified_huber``: clipped, normalised; every
    other loss (hinge, squared hinge, perceptron, LinearSVC): softmax of the
    decisions, ktt's normalisation for classifiers without probabilities.
    """
    if isinstance(classifier, FittedLinear):
        return classifier.rule
    loss = getattr(classifier, "loss", None)
    if type(getattr(classifier, "estimator", classifier)).__name__ == "LogisticRegression" or loss == "log_loss":
        return "logistic"
    if loss == "modified_huber":
        return "modified_huber"
    return "softmax"


def classifier_columns(classifier) -> tuple[np.ndarray, np.ndarray]:
    """``(weights, intercepts)`` of a fitted linear classifier: (n_features x n_classes) and (n_classes,).

    A binary classifier's one weight vector becomes two columns ``[-w, w]``; a
    ``OneVsRestClassifier``'s estimators are stacked in class order.
    """
    if isinstance(classifier, FittedLinear):
        return classifier.weights, classifier.intercepts
    if hasattr(classifier, "estimators_"):
        coef = np.vstack([np.asarray(e.coef_, dtype=np.float64) for e in classifier.estimators_])
        intercept = np.concatenate([np.ravel(np.asarray(e.intercept_, dtype=np.float64)) for e in classifier.estimators_])
    else:
        coef = np.asarray(classifier.coef_, dtype=np.float64)
        intercept = np.ravel(np.asarray(classifier.intercept_, dtype=np.float64))
    intercept = np.broadcast_to(intercept, (coef.shape[0],))
    if coef.shape[0] == 1 and len(classifier.classes_) == 2:
        coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    return coef.T, np.array(intercept)


class FittedLinear(NamedTuple):
    """What prediction keeps of a fitted linear classifier (:func:`fitted_linear`).

    ``weights`` (n_features x k) are dense, or CSC when mostly zeros; the other
    fields are what :func:`classifier_columns` and :func:`score_rule` read.
    """

    weights: object
    intercepts: np.ndarray
    classes_: np.ndarray
    rule: str


def fitted_linear(classifier) -> FittedLinear:
    """A fitted classifier reduced to its columns, sparse when at most :data:`SPARSE_BELOW` of them are non-zero.

    A node classifier of a hierarchical model is zero outside its node's
    vocabulary: kept sparse from the moment it is fitted, the node classifiers
    of a model never exist densely all at once.
    """
    weights, intercepts = classifier_columns(classifier)
    if np.count_nonzero(weights) <= SPARSE_BELOW * weights.size:
        weights = sparse.csc_matrix(weights)
    return FittedLinear(weights, intercepts, np.asarray(classifier.classes_), score_rule(classifier))


def fit_columns(new_classifier, features, labels) -> FittedLinear:
    """The columns (:func:`fitted_linear`) of ``new_classifier()`` fitted on ``features``, ``labels``."""
    return fitted_linear(new_classifier().fit(features, labels))


#: Learners fitted by liblinear. Their multi-class fit is independent binary problems, one per class
#: ("c against every other row"), on one core: their classes are fitted in groups on several cores
#: (:func:`fit_class_group`); ``logreg``'s binary problems are separate fits (a OneVsRestClassifier), so
#: its groups give the columns of one fit, while ``svm``'s share liblinear's random sequence within a fit.
#: liblinear draws its random numbers from one generator per process: their jobs run in worker
#: processes, not threads (:mod:`ktt.workers`).
LIBLINEAR = ("svm", "logreg")
#: The label of the rows outside a class group; never a class name (checked).
OTHER = "\x00ktt:other"


def class_groups(classes: Sequence, n_groups: int) -> list[np.ndarray]:
    """``classes`` (sorted, as scikit-learn orders them) in at most ``n_groups`` interleaved groups of 2 or more.

    Interleaving spreads large and small classes alike; a group of one class would
    make a binary problem, whose single weight vector is not that class's column.
    """
    classes = np.unique(np.asarray(classes, dtype=object).astype(str))
    n_groups = max(1, min(int(n_groups), len(classes) // 2))
    return [classes[i::n_groups] for i in range(n_groups)]


def fit_class_group(new_classifier, features, labels: np.ndarray, group: np.ndarray) -> FittedLinear:
    """The one-vs-rest columns of the classes in ``group``, fitted on every row.

    Rows of the other classes are relabelled :data:`OTHER`, whose own column is
    dropped: each class in the group then solves the same binary problem (the
    class against every other row) as in one fit over all classes. A ``balanced``
    class weight is computed over all ``labels``, as that fit would.
    """
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.asarray(labels, dtype=object).astype(str)
    if OTHER in group:
        raise ValueError(f"a class is named {OTHER!r}")
    classifier = new_classifier()
    if getattr(classifier, "class_weight", None) == "balanced":
        names = np.unique(labels)
        weights = compute_class_weight("balanced", classes=names, y=labels)
        classifier.set_params(class_weight={**dict(zip(names, weights)), OTHER: 1.0})
    inside = np.isin(labels, group)
    fitted = fitted_linear(classifier.fit(features, np.where(inside, labels, OTHER)))
    keep = np.flatnonzero(fitted.classes_ != OTHER)
    weights = fitted.weights[:, keep]
    return FittedLinear(weights, fitted.intercepts[keep], fitted.classes_[keep], fitted.rule)


def join_class_groups(parts: Sequence[FittedLinear]) -> FittedLinear:
    """The groups of :func:`fit_class_group` as one classifier, columns in sorted class order."""
    if len(parts) == 1:
        return parts[0]
    classes = np.sort(np.concatenate([part.classes_ for part in parts]))
    places = [np.searchsorted(classes, part.classes_) for part in parts]
    intercepts = np.empty(len(classes))
    if any(sparse.issparse(part.weights) for part in parts):
        order = np.argsort(np.concatenate(places), kind="stable")
        weights = sparse.hstack([sparse.csc_matrix(part.weights) for part in parts], format="csc")[:, order]
    else:
        weights = np.empty((parts[0].weights.shape[0], len(classes)))
        for part, place in zip(parts, places):
            weights[:, place] = part.weights
    for part, place in zip(parts, places):
        intercepts[place] = part.intercepts
    return FittedLinear(weights, intercepts, classes, parts[0].rule)


class Group(NamedTuple):
    """A run of columns scored together (one classifier): ``columns[start:stop]``."""

    start: int
    stop: int


class LinearScores:
    """Stacked linear classifiers: one product for all of them, then per-group score rules.

    Parameters
    ----------
    weights : list of ndarray (n_features x k_i)
        Each classifier's weight columns (see :func:`classifier_columns`).
    intercepts : list of ndarray (k_i,)
    rule : str
        One of :data:`SCORE_RULES`, for every group.
    tie_break : bool
        For ``modified_huber``: in rows whose largest probabilities tie, mix in a
        :data:`TIE_BREAK` share of the softmax of the decisions, so that the tie
        goes to the larger decision, as in scikit-learn's ``predict``.
    temperature : float
        ``softmax`` only: decisions are divided by it first (below 1 sharpens).
        Margin-based learners (LinearSVC, hinge) have decisions of an arbitrary
        scale, so the model fits it on the validation split (:func:`choose_temperature`).

    Attributes
    ----------
    groups : list of Group
        Where each classifier's columns are.
    """

    temperature = 1.0  # checkpoints written before it existed

    def __init__(self, weights: Sequence[np.ndarray], intercepts: Sequence[np.ndarray], rule: str,
                 tie_break: bool = False, temperature: float = 1.0):
        if rule not in SCORE_RULES:
            raise ValueError(f"unknown score rule {rule!r}")
        self.rule = rule
        self.tie_break = tie_break
        self.temperature = temperature
        sizes = [w.shape[1] for w in weights]
        stops = np.cumsum(sizes)
        self.groups = [Group(int(stop - size), int(stop)) for size, stop in zip(sizes, stops)]
        self.starts = np.asarray([g.start for g in self.groups], dtype=np.int64)
        self.group_of = np.repeat(np.arange(len(sizes)), sizes)
        self.intercept = np.concatenate(intercepts) if intercepts else np.zeros(0)
        self.weights = _prediction_layout(weights)

    @property
    def n_columns(self) -> int:
        return len(self.intercept)

    def decisions(self, features) -> np.ndarray:
        """Decision values (n x n_columns) of every stacked classifier."""
        if isinstance(self.weights, SplitWeights):
            product = self.weights.product(features.tocsr())
        else:
            product = np.asarray(features @ self.weights)
        product += self.intercept
        return product

    def __setstate__(self, state):
        if sparse.issparse(state.get("weights")):  # checkpoints from before SplitWeights
            state["weights"] = SplitWeights(state["weights"])
        self.__dict__.update(state)

    def scores(self, features) -> np.ndarray:
        """Per-column scores: each group's rule applied to its decisions (each group's row sums to 1)."""
        return self.scores_of_decisions(self.decisions(features))

    def scores_of_decisions(self, decisions: np.ndarray, temperature: float | None = None) -> np.ndarray:
        """:meth:`scores` from :meth:`decisions` (overwritten), at this scorer's temperature or another."""
        temperature = self.temperature if temperature is None else temperature
        if self.rule == "softmax" and temperature != 1.0:
            decisions /= temperature
        return apply_rule(decisions, self.rule, self.starts, self.group_of, self.tie_break)

    def temperatures(self) -> tuple[float, ...]:
        """The temperatures worth trying: :data:`TEMPERATURES` for ``softmax``, else only 1."""
        return TEMPERATURES if self.rule == "softmax" else (1.0,)


def choose_temperature(scorer: LinearScores, features, truth: np.ndarray,
                       chunks: Sequence[slice] | None = None) -> float:
    """The temperature of :meth:`LinearScores.temperatures` with the smallest log-loss.

    Parameters
    ----------
    scorer : LinearScores
        A single classifier (one group).
    features : sparse matrix (n x n_features)
        Validation examples.
    truth : ndarray of int
        The true column of each example.
    chunks : sequence of slice, optional
        Row chunks scored one at a time (default: all rows at once); each row's
        log-likelihood is the same either way.
    """
    temperatures = scorer.temperatures()
    likelihoods: list[list[np.ndarray]] = [[] for _ in temperatures]
    for rows in chunks if chunks is not None else [slice(None)]:
        decisions, known = scorer.decisions(features[rows]), truth[rows]
        for parts, temperature in zip(likelihoods, temperatures):
            scores = scorer.scores_of_decisions(decisions.copy(), temperature)
            parts.append(np.log(np.maximum(scores[np.arange(len(known)), known], 1e-12)))
    losses = [-np.mean(np.concatenate(parts)) for parts in likelihoods]
    return temperatures[int(np.argmin(losses))]


def _prediction_layout(weights: Sequence[np.ndarray]):
    """Weights as one (n_features x n_columns) matrix: C-contiguous dense, or :class:`SplitWeights`
    when large and mostly zeros.

    Dense, the product with a sparse row costs its non-zeros times the columns;
    sparse, it costs the non-zero weights of the row's features, and memory
    shrinks with the zeros (per-node weights of a hierarchical model are zero
    outside the node's vocabulary).
    """
    n_features = weights[0].shape[0]
    n_columns = sum(w.shape[1] for w in weights)
    nonzero = sum(w.nnz if sparse.issparse(w) else int(np.count_nonzero(w)) for w in weights)
    if n_features * n_columns * 8 <= DENSE_MAX_BYTES or nonzero > SPARSE_BELOW * n_features * n_columns:
        dense = [w.toarray() if sparse.issparse(w) else w for w in weights]
        return np.ascontiguousarray(np.hstack(dense) if len(dense) > 1 else dense[0])
    return SplitWeights(sparse.hstack([sparse.csr_matrix(w) for w in weights], format="csr"))


class SplitWeights:
    """Mostly-zero weights (n_features x n_columns) split by feature for the product with tf-idf rows.

    A feature whose weight row is non-zero in more than :data:`SPARSE_BELOW` of
    the columns (a frequent character n-gram, which every node classifier
    weighs) is a row of a C-contiguous dense block; the other rows stay CSR. A
    text's product is then one small dense gather-and-multiply plus a sparse
    product over the rare features, instead of a sparse product dominated by the
    frequent ones (measured on ICD-10-CM node weights: 1,255 of 49,216 rows held
    about half of the non-zeros that one text touches).

    Parameters
    ----------
    weights : sparse matrix (n_features x n_columns)

    Attributes
    ----------
    shape : tuple of int
    dense_index : ndarray of int64 (n_features,)
        Each feature's row in ``dense``, or -1 for a feature kept in ``rest``.
    dense : ndarray (n_dense x n_columns)
    rest : csr_matrix (n_features x n_columns)
        The other rows (the dense ones empty).
    """

    def __init__(self, weights):
        weights = sparse.csr_matrix(weights)
        weights.sort_indices()
        self.shape = weights.shape
        lengths = np.diff(weights.indptr)
        dense = lengths > SPARSE_BELOW * weights.shape[1]
        self.dense_index = np.full(weights.shape[0], -1, dtype=np.int64)
        self.dense_index[dense] = np.arange(int(dense.sum()))
        self.dense = np.ascontiguousarray(weights[np.flatnonzero(dense)].toarray())
        self.rest = sparse.csr_matrix(sparse.diags((~dense).astype(np.float64)) @ weights)
        self.rest.eliminate_zeros()

    def toarray(self) -> np.ndarray:
        full = self.rest.toarray()
        full[self.dense_index >= 0] = self.dense
        return full

    def product(self, features: sparse.csr_matrix) -> np.ndarray:
        """``features @ weights`` (n x n_columns, dense)."""
        rows = features.shape[0]
        mapped = self.dense_index[features.indices]
        inside = mapped >= 0
        # dense_index grows with the feature, so each row's mapped columns stay sorted. scipy's product of
        # these few entries with the dense block adds weight rows in place; gathering the rows into a new
        # array first (fancy indexing) copied them and cost twice as much for one text.
        frequent = kept_entries(features, inside, mapped[inside], len(self.dense))
        product = np.asarray(frequent @ self.dense) if len(self.dense) else np.zeros((rows, self.shape[1]))
        if rows <= FEW_ROWS:
            product += _gather_product(features, self.rest)
        else:
            rare = features @ self.rest
            product += rare.toarray() if sparse.issparse(rare) else np.asarray(rare)
        return product


def _gather_product(features: sparse.csr_matrix, weights: sparse.csr_matrix) -> np.ndarray:
    """``features @ weights`` for a few rows: gather each row's weight rows, weight them, add them up."""
    product = np.zeros((features.shape[0], weights.shape[1]))
    for row in range(features.shape[0]):
        span = slice(features.indptr[row], features.indptr[row + 1])
        columns, values = features.indices[span], features.data[span]
        starts = weights.indptr[columns]
        lengths = weights.indptr[columns + 1] - starts
        total = int(lengths.sum())
        if not total:
            continue
        positions = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
        product[row] = np.bincount(weights.indices[positions], weights=weights.data[positions] * np.repeat(values, lengths),
                                   minlength=weights.shape[1])
    return product


def segment_reduce(ufunc, matrix: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``ufunc.reduceat(matrix, starts, axis=1)``, computed over a transposed copy (:func:`group_reduce`)."""
    return group_reduce(ufunc, np.ascontiguousarray(matrix.T), starts).T


#: :func:`group_reduce` takes each group's block of rows when the groups average at least this many
#: entries: a numpy call per group costs a few microseconds, a strided entry ~8 ns more.
BLOCK_ENTRIES = 1000


def group_reduce(ufunc, rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``ufunc.reduceat(rows, starts, axis=0)``: each (non-empty) group of consecutive rows reduced to one.

    ``rows`` is C-ordered (columns x examples). Sums are :func:`group_sum`. For
    an order-free ufunc (``np.maximum``), numpy's ``reduceat`` over axis 0 walks
    each example down its group with a stride of a whole row (measured ~10 ns an
    entry on 1,825 x 10,000 node scores, 5-8x a contiguous pass), so when the
    groups are large enough to repay a call each (:data:`BLOCK_ENTRIES`) each
    group's block of rows is reduced instead.
    """
    if ufunc is np.add:
        return group_sum(rows, starts)
    if rows.size < BLOCK_ENTRIES * len(starts):
        return ufunc.reduceat(rows, starts, axis=0)
    out = np.empty((len(starts), *rows.shape[1:]), dtype=rows.dtype)
    for group, (start, end) in enumerate(zip(starts, np.append(np.asarray(starts)[1:], len(rows)))):
        ufunc.reduce(rows[start:end], axis=0, out=out[group])
    return out


def group_sum(rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum of each (non-empty) group of consecutive rows of ``rows`` (columns x examples, C-ordered).

    One product with a 0/1 group matrix: every example's sum is the same left
    fold over its group's rows whatever the number of examples, so scoring a
    split in chunks of any size gives the same bits (``reduceat``'s order
    depends on the layout); it costs what ``reduceat`` does for one text and 7x
    less for 10,000 (4.6 us and 16 ms on 1,825 node columns, against 4.2 us and
    117 ms).
    """
    return np.asarray(_group_matrix(len(rows), np.asarray(starts, dtype=np.int64).tobytes()) @ rows)


@functools.lru_cache(maxsize=64)
def _group_matrix(n_rows: int, starts: bytes) -> sparse.csr_matrix:
    first = np.frombuffer(starts, dtype=np.int64)
    return sparse.csr_matrix((np.ones(n_rows), np.arange(n_rows), np.append(first, n_rows)),
                             shape=(len(first), n_rows))


def apply_rule(decisions: np.ndarray, rule: str, starts: np.ndarray, group_of: np.ndarray,
               tie_break: bool = False) -> np.ndarray:
    """Scores from decisions, group by group (a group: consecutive columns of one classifier).

    ``softmax``: ``exp(d - max) / sum``; ``logistic``: ``expit(d) / sum``;
    ``modified_huber``: ``(clip(d, -1, 1) + 1) / 2`` normalised, a group whose
    values are all 0 uniform (scikit-learn's ``predict_proba`` for each loss).

    Parameters
    ----------
    decisions : ndarray (n x n_columns)
        Overwritten.
    rule : str
    starts : ndarray of int
        First column of each group.
    group_of : ndarray of int
        Group of each column.
    tie_break : bool
        See :class:`LinearScores`.
    """
    if len(starts) > 1:
        # Laid out columns x examples, each group is a block of contiguous rows: one copy in, then
        # every reduction works on whole rows (group_sum, group_reduce). The result is its transposed view.
        return _grouped_rule(np.ascontiguousarray(decisions.T), rule, starts, group_of, tie_break).T
    scores = decisions
    if rule == "softmax":
        return softmax(scores)
    if rule == "logistic":
        expit(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores
    raw = decisions.copy() if tie_break else None
    np.clip(scores, -1, 1, out=scores)
    scores += 1.0
    scores /= 2.0
    sums = scores.sum(axis=1)  # scikit-learn's own order of operations
    zero = sums == 0
    if zero.any():
        scores[zero] = 1.0
        sums[zero] = scores.shape[1]
    scores /= sums[:, None]
    if tie_break:
        ties = (scores == scores.max(axis=1, keepdims=True)).sum(axis=1) > 1
        if ties.any():
            scores[ties] = scores[ties] * (1 - TIE_BREAK) + TIE_BREAK * softmax(raw[ties])
    return scores


def _grouped_rule(scores: np.ndarray, rule: str, starts: np.ndarray, group_of: np.ndarray,
                  tie_break: bool) -> np.ndarray:
    """:func:`apply_rule` on decisions laid out columns x examples (C-ordered, overwritten)."""
    if rule == "softmax":
        return _grouped_softmax(scores, starts, group_of)
    if rule == "logistic":
        expit(scores, out=scores)
        scores /= group_sum(scores, starts)[group_of]
        return scores
    raw = scores.copy() if tie_break else None
    np.clip(scores, -1, 1, out=scores)
    scores += 1.0
    scores /= 2.0
    sums = group_sum(scores, starts)  # groups x examples
    zero = sums == 0
    if zero.any():
        sizes = np.diff(np.append(starts, scores.shape[0]))
        scores[zero[group_of]] = 1.0
        sums = np.where(zero, sizes[:, None].astype(float), sums)
    scores /= sums[group_of]
    if tie_break:
        top = group_reduce(np.maximum, scores, starts)[group_of]
        ties = group_sum((scores == top).astype(np.float64), starts) > 1
        if ties.any():
            mixed = ties[group_of]
            tie_scores = scores * (1 - TIE_BREAK)
            tie_scores += TIE_BREAK * _grouped_softmax(raw, starts, group_of)
            scores[mixed] = tie_scores[mixed]
    return scores


def _grouped_softmax(scores: np.ndarray, starts: np.ndarray, group_of: np.ndarray) -> np.ndarray:
    scores -= group_reduce(np.maximum, scores, starts)[group_of]
    np.exp(scores, out=scores)
    scores /= group_sum(scores, starts)[group_of]
    return scores


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax (in place on a float array), ktt's normalisation of decision scores."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted
