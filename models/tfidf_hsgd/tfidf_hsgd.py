"""Tfidf-HierarchicalSGD: one shared tf-idf vectoriser and one SGD classifier per parent node.

A *local classifier per parent node*: every class that has children (and the
implicit root) gets a linear classifier trained by SGD on the training examples
below it, to tell its children apart. Predictions are made top down, so every
predicted path is a root-to-leaf path of the hierarchy.

The per-node machinery is written directly on scikit-learn (one
``SGDClassifier`` per node, fitted in parallel threads on row subsets of one
tf-idf matrix) rather than with hiclass's ``LocalClassifierPerParentNode``:
with the same base estimator both reach the same accuracy on every level, but
hiclass fitted 5 to 10 times slower on ICD-10-CM (it scans the whole label
array for every node), gives per-level probabilities (and warns against them
without calibration) instead of a score per leaf, and its 5.0.8 release fails
with sample weights on SGD and, for some strategies, with ``hinge``.
``scripts/bench_hsgd.py`` measures both against tfidf_lsgd.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier

from ktt.errors import KttError
from ktt.hierarchy import Hierarchy
from ktt.model_sklearn import Loader, SklearnModel, softmax
from models.tfidf_lsgd.tfidf_lsgd import TfidfLSGD

#: ``parent`` of the implicit root node, whose children are the top-level classes.
ROOT = -1
#: Share of the softmax of the decision scores mixed into modified_huber's
#: probabilities, to break their ties in the order of the decision function.
TIE_BREAK = 1e-6


class ParentNode(NamedTuple):
    """What tfidf_hsgd learned at one parent node.

    Attributes
    ----------
    parent : int
        Index (into ``hierarchy.classes``) of the node; :data:`ROOT` for the root.
    level : int
        Level of its children (0 = top).
    children : ndarray of int
        Indices of its children in the hierarchy.
    seen : ndarray of int
        Children that occur among the node's training examples.
    classifier : SGDClassifier or None
        Fitted on the node's examples when ``seen`` has two children or more;
        its ``classes_`` are ``seen``.
    """

    parent: int
    level: int
    children: np.ndarray
    seen: np.ndarray
    classifier: SGDClassifier | None


class TfidfHSGD(SklearnModel):
    """tf-idf features and one SGD classifier per parent node, predicted top down.

    Fitting learns one :class:`~sklearn.feature_extraction.text.TfidfVectorizer`
    on all training texts, then, for the root and every class with children, an
    :class:`~sklearn.linear_model.SGDClassifier` over its children, trained on
    the rows of the training examples below it (parallel over nodes, ``n_jobs``
    threads). A node needs no classifier when its examples name fewer than two
    children:

    * one child seen (always so for a node with a single child): that child's
      conditional probability is 1 and its unseen siblings' 0;
    * no example at all: uniform over its children. Such a node is unknown to
      its parent's classifier, so its own probability, and that of every leaf
      below it, is already 0: the choice never changes a score.

    A child that none of its parent's examples has gets conditional probability 0.

    **Scores.** The conditional probability of a child given its parent is the
    node classifier's ``predict_proba`` for ``log_loss`` and ``modified_huber``,
    and the softmax of its decision scores (:func:`ktt.model_sklearn.softmax`,
    as in tfidf_lsgd) for the other losses. modified_huber's probabilities are
    clipped and their largest values can tie (several children at 1, or all
    at 0, which sklearn makes uniform), so in such rows a :data:`TIE_BREAK`
    (1e-6) share of the softmax of the decision scores is mixed in: a tie goes
    to the larger decision score, as in sklearn's ``predict``, not to the first
    child. A leaf's *path probability* is the product of the conditional
    probabilities along its path; a class's probability is the sum over the
    leaves below it (the product down to it).

    **Prediction.** The predicted path is decided greedily top down: on every
    level, the most probable child of the class chosen one level up (first in
    hierarchy order on a tie). This is computed from the scores alone
    (:meth:`paths_from_scores`), and the scores are made to agree with it: a
    leaf's score is its path probability, except that, where the greedy leaf is
    not the most probable leaf, the two exchange their scores (and on an exact
    tie the greedy leaf's score is raised by one floating-point step). Moving
    score into the greedy leaf never changes the greedy decision, so
    ``predictions`` (the argmax of the scores, as for every ktt model) is always
    the last class of the top-down path. Rows still sum to 1.

    **Path scores.** A level's path score is the probability of the predicted
    class there: the sum of the scores of the leaves below it (for rows whose
    scores were exchanged, that includes the exchanged score). The conditional
    probability of a level is the ratio of consecutive path scores.

    The hierarchy has a fixed depth: label paths of different lengths are
    refused by the dataset adapter ("label paths have N to M levels; set depth"),
    so every leaf is on the last level.

    Parameters
    ----------
    loss : str
        ``hinge``, ``log_loss`` (``log`` is accepted as its old name),
        ``modified_huber``, ``squared_hinge`` or ``perceptron``, for every node.
    max_iter : int
        Upper bound on SGD epochs of each node's classifier.
    min_df : int or float
        Minimum document count (int) or share (float in (0, 1]) of a term to
        enter the shared vocabulary.
    class_weight : None or "balanced"
        ``balanced`` weighs child c of a node by W_c = N / (C * N_c), counted
        among that node's examples.
    random_state : int or None
        Seed of SGD's shuffling (the same for every node).
    n_jobs : int or None
        Threads fitting node classifiers in parallel (-1: all cores).
    progress : bool
        Show a progress bar over the nodes (on stderr) while fitting.
    hierarchy : Hierarchy or None
        The label hierarchy, required by :meth:`fit`; the runner hands it over
        after reading the data. It is saved inside the checkpoint.

    Examples
    --------
    >>> from ktt.hierarchy import Hierarchy
    >>> from ktt.model_sklearn import Loader
    >>> hierarchy, _ = Hierarchy.from_paths([("Food", "Tea"), ("Food", "Nuts"), ("Home", "Hose")])
    >>> train = Loader(["green tea", "roast nuts", "garden hose"] * 5, np.array(["Tea", "Nuts", "Hose"] * 5))
    >>> model = TfidfHSGD(min_df=1, hierarchy=hierarchy).fit(train)
    >>> model.predict(["green tea"]).tolist()
    ['Tea']
    """

    # The same hyperparameters, with the same validation, as tfidf_lsgd.
    _parameter_constraints = {**TfidfLSGD._parameter_constraints, "progress": [bool]}

    def __init__(
        self,
        loss: str = "modified_huber",
        max_iter: int = 1000,
        min_df: int | float = 50,
        class_weight: str | None = None,
        random_state: int | None = 42,
        n_jobs: int | None = -1,
        progress: bool = False,
        hierarchy: Hierarchy | None = None,
    ):
        self.loss = loss
        self.max_iter = max_iter
        self.min_df = min_df
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.progress = progress
        self.hierarchy = hierarchy

    # ------------------------------------------------------------------ fitting
    def fit(self, train: Loader, val: Loader | None = None) -> "TfidfHSGD":
        """Fit the vectoriser and every node's classifier on ``train``; ``val`` is not used.

        Parameters
        ----------
        train : Loader
            Preprocessed texts and their leaf class names (leaves of ``hierarchy``).
        val : Loader, optional
            Ignored.

        Returns
        -------
        TfidfHSGD
            self

        Raises
        ------
        KttError
            Without a hierarchy, with fewer than 2 leaf classes, with a target
            that is not a leaf of the hierarchy, or when the vocabulary is empty
            (``min_df`` too high, or texts without terms).
        """
        self.validate_params()
        hierarchy = self._hierarchy()
        texts, targets = train
        if len(set(targets)) < 2:
            raise KttError("the training split has fewer than 2 leaf classes; a classifier needs at least 2")
        codes = leaf_codes(hierarchy, targets)
        vectorizer, features = self._fit_vectorizer(texts)
        self.nodes_ = self._fit_nodes(features, codes)
        self.vectorizer_ = vectorizer
        self.classes_ = np.asarray(hierarchy.leaf_classes, dtype=object)
        return self

    def _hierarchy(self) -> Hierarchy:
        if self.hierarchy is None:
            raise KttError(
                f"{type(self).__name__} needs the label hierarchy; pass hierarchy= or call set_params(hierarchy=...)"
            )
        return self.hierarchy

    def _fit_vectorizer(self, texts: Sequence[str]) -> tuple[TfidfVectorizer, sparse.csr_matrix]:
        if isinstance(self.min_df, int) and self.min_df > len(texts):
            raise KttError(f"min_df={self.min_df} is larger than the {len(texts)} training texts; lower min_df")
        vectorizer = TfidfVectorizer(min_df=self.min_df)
        try:
            features = vectorizer.fit_transform(texts)
        except ValueError as error:
            if "empty vocabulary" in str(error):
                raise KttError(f"the {len(texts)} training texts have no terms (empty vocabulary)") from None
            if "no terms remain" in str(error) or "min_df" in str(error):
                raise KttError(
                    f"min_df={self.min_df} leaves no terms in the vocabulary of the {len(texts)} "
                    "training texts; lower min_df"
                ) from None
            raise
        return vectorizer, features.tocsr()

    def _new_classifier(self) -> SGDClassifier:
        loss = "log_loss" if self.loss == "log" else self.loss
        return SGDClassifier(loss=loss, max_iter=self.max_iter, class_weight=self.class_weight,
                             random_state=self.random_state, n_jobs=1)

    def _fit_nodes(self, features: sparse.csr_matrix, codes: np.ndarray) -> list[ParentNode]:
        """Fit the classifiers of all parent nodes, largest first, in parallel threads."""
        from tqdm.auto import tqdm

        tasks = parent_tasks(self.hierarchy, codes)
        to_fit = sorted((i for i, task in enumerate(tasks) if len(task.seen) > 1), key=lambda i: -len(tasks[i].rows))
        jobs = (
            delayed(fit_classifier)(i, self._new_classifier(), features[tasks[i].rows], tasks[i].labels)
            for i in to_fit
        )
        fitted = Parallel(n_jobs=self.n_jobs, prefer="threads", return_as="generator_unordered")(jobs)
        classifiers = dict(tqdm(fitted, total=len(to_fit), desc="fitting parent nodes", unit="node",
                                disable=not self.progress, leave=False))
        return [
            ParentNode(task.parent, task.level, task.children, task.seen, classifiers.get(i))
            for i, task in enumerate(tasks)
        ]

    # ------------------------------------------------------------------ scoring
    def encode(self, texts: Sequence[str]):
        """tf-idf features (sparse, n x n_features) of preprocessed texts."""
        self._check_fitted()
        return self.vectorizer_.transform(texts)

    def score_features(self, features) -> np.ndarray:
        """Per-leaf scores (n x n_leaves, in ``classes_`` order) of encoded texts.

        Path probabilities, made to agree with the top-down decision (see the
        class docstring): rows sum to 1 and their argmax is the greedy leaf.
        """
        self._check_fitted()
        return self._agree_with_greedy(self.path_probabilities(features))

    def path_probabilities(self, features) -> np.ndarray:
        """Product of the conditional probabilities along each leaf's path.

        Parameters
        ----------
        features : sparse matrix of shape (n, n_features)

        Returns
        -------
        ndarray of shape (n, n_leaves)
            Columns in ``classes_`` (hierarchy leaf) order; rows sum to 1.
        """
        self._check_fitted()
        hierarchy = self.hierarchy
        offsets = hierarchy.level_offsets
        parent_of = np.asarray(hierarchy.parent_of)
        # Classes x examples, so that looking up each class's parent row is a fast row gather.
        above = np.ones((1, features.shape[0]))  # the root's probability
        for level in range(hierarchy.depth):
            parents = parent_of[offsets[level]:offsets[level + 1]] - (offsets[level - 1] if level else ROOT)
            above = self._conditionals(features, level) * above[parents]
        return np.ascontiguousarray(above.T)

    def _conditionals(self, features, level: int) -> np.ndarray:
        """Conditional probability (level size x n) of every class on ``level`` given its parent."""
        offset = self.hierarchy.level_offsets[level]
        conditional = np.zeros((self.hierarchy.level_sizes[level], features.shape[0]))
        for node in self.nodes_:
            if node.level != level:
                continue
            if node.classifier is not None:
                conditional[node.seen - offset] = self._classifier_scores(node.classifier, features).T
            elif len(node.seen) == 1:
                conditional[node.seen[0] - offset] = 1.0
            else:
                conditional[node.children - offset] = 1.0 / len(node.children)
        return conditional

    def _classifier_scores(self, classifier: SGDClassifier, features) -> np.ndarray:
        """A node's probabilities over its seen children (rows sum to 1), as tfidf_lsgd scores its leaves.

        modified_huber's probabilities are clipped, so the most probable children
        can tie (several at 1, or all at 0); in such rows a :data:`TIE_BREAK`
        share of the softmax of the decision scores orders them as sklearn's
        ``predict`` does.
        """
        if classifier.loss == "log_loss":
            return classifier.predict_proba(features)
        if classifier.loss != "modified_huber":
            return softmax(decisions(classifier, features))
        probabilities = classifier.predict_proba(features)
        tied = np.flatnonzero((probabilities == probabilities.max(axis=1, keepdims=True)).sum(axis=1) > 1)
        if len(tied):
            probabilities[tied] *= 1 - TIE_BREAK
            probabilities[tied] += TIE_BREAK * softmax(decisions(classifier, features[tied]))
        return probabilities

    def _agree_with_greedy(self, scores: np.ndarray) -> np.ndarray:
        """Exchange scores so that every row's argmax is its greedy top-down leaf (see the class docstring)."""
        leaf_offset = self.hierarchy.level_offsets[-2]
        rows = np.arange(len(scores))
        block = scores
        for _ in range(self.hierarchy.depth + 2):  # one pass suffices; the rest guards float rounding
            greedy = self.paths_from_scores(block)[0][:, -1] - leaf_offset
            best = block.argmax(axis=1)
            differ = greedy != best
            rows, greedy, best = rows[differ], greedy[differ], best[differ]
            if not len(rows):
                return scores
            scores[rows, greedy], scores[rows, best] = scores[rows, best], scores[rows, greedy]
            tied = scores[rows].argmax(axis=1) != greedy
            scores[rows[tied], greedy[tied]] = np.nextafter(scores[rows[tied], greedy[tied]], np.inf)
            block = scores[rows]
        raise KttError("tfidf_hsgd could not make its scores agree with its top-down paths (please report)")

    # -------------------------------------------------------------------- paths
    def paths_from_scores(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Greedy top-down paths and per-level class probabilities from per-leaf scores.

        On every level the path takes the child, of the class chosen one level
        up, with the largest summed leaf score (the first in hierarchy order on
        a tie). With path-probability scores this is the child with the largest
        conditional probability.

        Parameters
        ----------
        scores : ndarray of shape (n, n_leaves)
            In ``classes_`` order (as :meth:`score_features` returns them).

        Returns
        -------
        paths : ndarray of shape (n, depth)
            Class indices (into ``hierarchy.classes``) from the top level down;
            always a root-to-leaf path, and ``paths[:, -1]`` is the argmax of
            :meth:`score_features`' scores.
        path_scores : ndarray of shape (n, depth)
            The probability of each predicted class: the summed scores of the leaves below it.
        """
        hierarchy = self._hierarchy()
        scores = np.asarray(scores)
        offsets = hierarchy.level_offsets
        parent_of = np.asarray(hierarchy.parent_of)
        rows = np.arange(len(scores))
        paths = np.empty((len(scores), hierarchy.depth), dtype=np.int64)
        path_scores = np.empty(paths.shape, dtype=float)
        chosen = np.full(len(scores), ROOT)
        for level in range(hierarchy.depth):
            level_scores = self._level_scores(scores, level)
            allowed = parent_of[offsets[level]:offsets[level + 1]][None, :] == chosen[:, None]
            column = np.where(allowed, level_scores, -np.inf).argmax(axis=1)
            chosen = offsets[level] + column
            paths[:, level] = chosen
            path_scores[:, level] = level_scores[rows, column]
        return paths, path_scores

    def _level_scores(self, scores: np.ndarray, level: int) -> np.ndarray:
        """Summed leaf scores (n x level size) below every class of ``level``."""
        if level == self.hierarchy.depth - 1:
            return scores
        return self.hierarchy.level_scores(scores, self.hierarchy.leaf_paths, level)


class ParentTask(NamedTuple):
    """The training data of one parent node: its examples' rows and child labels."""

    parent: int
    level: int
    children: np.ndarray
    rows: np.ndarray
    labels: np.ndarray
    seen: np.ndarray


def leaf_codes(hierarchy: Hierarchy, targets: Sequence[str]) -> np.ndarray:
    """Class indices ``(n, depth)`` on the path of each target leaf name.

    Raises
    ------
    KttError
        If a target is not a leaf class of ``hierarchy``.
    """
    unique, inverse = np.unique(np.asarray(targets, dtype=object).astype(str), return_inverse=True)
    leaves = set(hierarchy.leaf_classes)
    unknown = [name for name in unique.tolist() if name not in leaves]
    if unknown:  # checked here: leaf_path_indices maps an upper-level name to a wrong leaf
        raise KttError(f"{unknown[0]!r} is not a leaf class of this hierarchy")
    return hierarchy.leaf_path_indices(unique.tolist())[inverse.ravel()]


def parent_tasks(hierarchy: Hierarchy, codes: np.ndarray) -> list[ParentTask]:
    """One task per parent node: the root, then every class above the leaf level.

    Parameters
    ----------
    hierarchy : Hierarchy
    codes : ndarray of shape (n, depth)
        Class indices on each training example's path.

    Returns
    -------
    list of ParentTask
        In hierarchy order; a node without examples has empty ``rows``.
    """
    children = hierarchy.children
    tasks = [_task(ROOT, 0, children[ROOT], np.arange(len(codes)), codes[:, 0])]
    for level in range(1, hierarchy.depth):
        order = np.argsort(codes[:, level - 1], kind="stable")
        parents, starts = np.unique(codes[order, level - 1], return_index=True)
        groups = dict(zip(parents.tolist(), np.split(order, starts[1:])))
        for parent in range(hierarchy.level_offsets[level - 1], hierarchy.level_offsets[level]):
            rows = groups.get(parent, np.empty(0, dtype=np.int64))
            tasks.append(_task(parent, level, children[parent], rows, codes[rows, level]))
    return tasks


def _task(parent: int, level: int, children: list[int], rows: np.ndarray, labels: np.ndarray) -> ParentTask:
    return ParentTask(parent, level, np.asarray(children, dtype=np.int64), rows, labels, np.unique(labels))


def decisions(classifier: SGDClassifier, features) -> np.ndarray:
    """Decision scores (n x n_classes), two columns ``[-d, d]`` for a binary classifier."""
    decision = classifier.decision_function(features)
    if decision.ndim == 1:  # two classes: sklearn returns the positive class's score only
        decision = np.column_stack([-decision, decision])
    return decision


def fit_classifier(key, classifier: SGDClassifier, features, labels: np.ndarray) -> tuple:
    """``(key, classifier.fit(features, labels))``, for one parallel job."""
    return key, classifier.fit(features, labels)
