"""Per-parent-node classifiers and the decodings of a hierarchical tf-idf model.

A *local classifier per parent node*: the implicit root and every class that has
children get a linear classifier (any learner of :func:`ktt.linear.make_classifier`)
trained on the training examples below them, to tell their children apart. All
node classifiers are stacked into one :class:`ktt.linear.LinearScores`, so one
product scores the whole tree for a batch, and the conditional probability of
every class given its parent is one gather (:class:`ParentNodes`).

Three decodings turn the conditionals into leaf scores and a path
(:class:`HierarchicalTfidfModel`, ``decoding``):

``greedy``
    The original KTT decision: on every level, the most probable child of the
    class chosen one level up. A mistake near the top can never be undone.
``global``
    Each leaf's score is its *path probability*, the product of the
    conditionals along its path; the prediction is the leaf with the largest
    one (an exact search over all paths, not a greedy one).
``blend`` (default)
    The path probability combined with a flat leaf classifier, as a normalised
    geometric mixture
    ``p(leaf) ∝ p_path(leaf)^(1-w) · p_flat(leaf)^w``. The weight ``w`` is
    chosen on the validation split from :data:`BLEND_WEIGHTS` (``w = 1`` is
    the flat model exactly, ``w = 0`` is ``global``), so on data where the tree
    misleads, the model falls back towards the flat one, and where it helps, it
    keeps it. The flat classifier reads the word block of the features only:
    with character n-grams, a text has ten times more non-zero features, and a
    classifier over every leaf pays for each of them once per leaf, while the
    node classifiers, each over a few children, get the character n-grams at a
    small share of that cost. It is then exactly the flat model (``tfidf_lsgd``)
    with the same word settings. docs/models.md shows the measurements behind
    these choices.
"""

from __future__ import annotations

import functools
import logging
import warnings
from typing import NamedTuple, Sequence

import numpy as np
from scipy import sparse

from ktt.chunks import CACHE_BYTES, in_row_chunks, row_chunks
from ktt.errors import KttError
from ktt.hierarchy import Hierarchy
from ktt.linear import LIBLINEAR, LinearScores, classifier_columns, fit_columns, join_class_groups, score_rule
from ktt.model_sklearn import Loader
from ktt.params import Interval, Options
from ktt.tfidf import TfidfLinearModel
from ktt.workers import run_jobs

log = logging.getLogger(__name__)

#: ``parent`` of the implicit root node, whose children are the top-level classes.
ROOT = -1
DECODINGS = ("greedy", "global", "blend")
#: Candidate weights of the flat classifier in ``blend``, tried on the validation split.
BLEND_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: ``blend`` without a validation split uses this weight.
DEFAULT_BLEND_WEIGHT = 0.5
#: Probabilities are floored here before logarithms, so that no leaf's blended score is -inf.
FLOOR = 1e-12
#: ``blend`` with ``blend_weight="auto"`` fits no flat classifier (it decodes as ``global``) when leaf
#: classes x training texts exceed this: a one-vs-rest classifier over every leaf costs time in proportion
#: to both (measured, LinearSVC on 2 cores: 1,530 leaves x 16,000 texts, 17 s; 1,704 x 59,604, about 5
#: minutes, where the validation split then gave the flat part a weight of 0; 19,075 x 59,771, hours and
#: 4.7 GB of dense weights), while each node classifier decides among a few children. A set weight still fits it.
MAX_BLEND_WORK = 50_000_000


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
    """One task per parent node: the root, then every class above the leaf level, in hierarchy order.

    Parameters
    ----------
    hierarchy : Hierarchy
    codes : ndarray of shape (n, depth)
        Class indices on each training example's path.
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


class ParentNodes:
    """Every parent node's classifier, stacked: the conditional probability of each class given its parent.

    A node needs no classifier when its examples name fewer than two children:
    one child seen (always so for a single child) gets conditional probability 1
    and its unseen siblings 0; a node without examples is uniform over its
    children (it is unknown to its own parent, so its probability is already 0).
    A child that none of its parent's examples has gets 0.

    Parameters
    ----------
    hierarchy : Hierarchy
    tasks : list of ParentTask
    classifiers : list
        The fitted classifier of each task, None where it needs none.
    tie_break : bool
        See :class:`ktt.linear.LinearScores` (modified_huber).
    """

    def __init__(self, hierarchy: Hierarchy, tasks: Sequence[ParentTask], classifiers: Sequence, tie_break: bool):
        n_classes = len(hierarchy.classes)
        empty = np.empty(0, dtype=np.int64)
        #: Each node's task without its rows (parent, level, children, seen).
        self.tasks = [task._replace(rows=empty, labels=empty) for task in tasks]
        #: Whether each node has a classifier (two seen children or more).
        self.has_classifier = [classifier is not None for classifier in classifiers]
        self.constant = np.zeros(n_classes)
        self.class_column = np.full(n_classes, -1, dtype=np.int64)
        weights, intercepts, rule, column = [], [], "softmax", 0
        for task, classifier in zip(tasks, classifiers):
            if classifier is None:
                if len(task.seen) == 1:
                    self.constant[task.seen[0]] = 1.0
                elif len(task.children):
                    self.constant[task.children] = 1.0 / len(task.children)
                continue
            w, b = classifier_columns(classifier)
            weights.append(w)
            intercepts.append(b)
            rule = score_rule(classifier)
            self.class_column[np.asarray(classifier.classes_, dtype=np.int64)] = column + np.arange(w.shape[1])
            column += w.shape[1]
        self.scorer = LinearScores(weights, intercepts, rule, tie_break=tie_break) if weights else None
        self.leaf_paths = hierarchy.leaf_paths
        self.level_offsets = list(hierarchy.level_offsets)
        self.parent_of = np.asarray(hierarchy.parent_of)

    def conditionals(self, features) -> np.ndarray:
        """Conditional probability (n x n_classes) of every class given its parent.

        A transposed view of :meth:`class_conditionals`.
        """
        return self.class_conditionals(features).T

    def class_conditionals(self, features) -> np.ndarray:
        """Conditional probabilities laid out classes x examples (C-ordered), for fast row gathers."""
        scores = self.scorer.scores(features) if self.scorer is not None else None
        return self.conditionals_of_scores(scores, features.shape[0])

    def conditionals_of_scores(self, scores: np.ndarray | None, n: int) -> np.ndarray:
        """:meth:`class_conditionals` from the stacked scorer's scores (n x its columns; None without one)."""
        conditional = np.repeat(self.constant[:, None], n, axis=1)
        if scores is not None:
            known = np.flatnonzero(self.class_column >= 0)
            conditional[known] = np.ascontiguousarray(scores.T)[self.class_column[known]]
        return conditional

    def path_probabilities(self, conditional: np.ndarray) -> np.ndarray:
        """Product of the conditionals along each leaf's path (n x n_leaves, hierarchy leaf order).

        ``conditional`` is laid out classes x examples (:meth:`class_conditionals`).
        """
        probabilities = conditional[self.leaf_paths[:, 0]]
        for level in range(1, self.leaf_paths.shape[1]):
            probabilities *= conditional[self.leaf_paths[:, level]]
        return np.ascontiguousarray(probabilities.T)

    def greedy_paths(self, level_scores) -> np.ndarray:
        """Greedy top-down paths (n x depth): on every level, the best-scored child of the last choice.

        ``level_scores(level)`` gives the (n x level size) scores of that level's
        classes; the first class in hierarchy order wins a tie.
        """
        offsets = self.level_offsets
        depth = len(offsets) - 1
        chosen = None
        paths = None
        for level in range(depth):
            scores = level_scores(level)
            if paths is None:
                paths = np.empty((len(scores), depth), dtype=np.int64)
                chosen = np.full(len(scores), ROOT)
            allowed = self.parent_of[offsets[level]:offsets[level + 1]][None, :] == chosen[:, None]
            chosen = offsets[level] + np.where(allowed, scores, -np.inf).argmax(axis=1)
            paths[:, level] = chosen
        return paths


class HierarchicalTfidfModel(TfidfLinearModel):
    """tf-idf features, one linear classifier per parent node and a decoding (see the module docstring).

    Parameters
    ----------
    decoding : {"blend", "global", "greedy"}
        How leaf scores and paths are decided.
    blend_weight : float or "auto"
        ``blend``'s weight of the flat classifier; ``auto`` chooses it on the
        validation split (accuracy, then log-loss on ties), jointly with ``temperature``.
    progress : bool
        Show a progress bar over the nodes (on stderr) while fitting.
    **params
        The featuriser's and learner's parameters, as :class:`ktt.tfidf.TfidfLinearModel`.

    Attributes
    ----------
    nodes_ : ParentNodes
        The stacked node classifiers.
    flat_ : LinearScores or None
        The flat leaf classifier (``blend`` only).
    blend_weight_ : float
        The weight in use (``blend``; 0 for the other decodings).
    temperature_ : float
        The softmax temperature of the node (and flat) classifiers, chosen with
        the weight on the validation split (:meth:`_calibrate`); 1 for learners
        with probabilities.
    classes_ : ndarray
        The hierarchy's leaf classes, in hierarchy order (score columns).
    """

    _parameter_constraints = {
        "decoding": [Options(DECODINGS)],
        "blend_weight": [Options(("auto",)), Interval(float, 0, 1)],
        "progress": [bool],
    }

    def __init__(self, decoding: str = "blend", blend_weight: float | str = "auto", progress: bool = False,
                 learner: str = "sgd", loss: str = "modified_huber", alpha: float = 1e-4, C: float = 1.0,
                 max_iter: int = 1000, min_df: int | float | str = "auto", word_ngrams: int = 1,
                 char_ngrams: Sequence[int] | None = None, sublinear_tf: bool = False,
                 class_weight: str | None = None, random_state: int | None = 42, n_jobs: int | None = -1,
                 temperature: float | str = "auto", label_names: bool | str = "auto", tol: float | str = "auto"):
        super().__init__(learner=learner, loss=loss, alpha=alpha, C=C, max_iter=max_iter, min_df=min_df,
                         word_ngrams=word_ngrams, char_ngrams=char_ngrams, sublinear_tf=sublinear_tf,
                         class_weight=class_weight, random_state=random_state, n_jobs=n_jobs,
                         temperature=temperature, label_names=label_names, tol=tol)
        self.decoding = decoding
        self.blend_weight = blend_weight
        self.progress = progress

    # ------------------------------------------------------------------ fitting
    def fit(self, train: Loader, val: Loader | None = None, hierarchy: Hierarchy | None = None):
        """Fit the featuriser, every node's classifier and (``blend``) the flat classifier.

        Parameters
        ----------
        train : Loader
            Preprocessed texts and their leaf class names (leaves of ``hierarchy``).
        val : Loader, optional
            Chooses ``blend_weight="auto"``.
        hierarchy : Hierarchy
            The label hierarchy, kept as ``hierarchy_``.

        Raises
        ------
        KttError
            Without a hierarchy, with fewer than 2 leaf classes, with a target that
            is not a leaf of the hierarchy, or when the vocabulary is empty.
        """
        self.validate_params()
        if hierarchy is None:
            raise KttError(f"{type(self).__name__} needs the label hierarchy: fit(train, val, hierarchy=...)")
        texts, targets = self._training_rows(train, hierarchy)
        codes = leaf_codes(hierarchy, targets)
        features = self._fit_features(texts)
        self.classes_ = np.asarray(hierarchy.leaf_classes, dtype=object)
        flat = None
        if self.decoding == "blend" and self._fits_flat(len(self.classes_), len(texts)):
            # on leaf names, as tfidf_lsgd is: the same class order, so the same per-class SGD seeds
            flat = (self.features_.word_columns(features), targets.astype(str))
        tasks, classifiers, flat_classifier = self._fit_classifiers(features, codes, flat)
        self.nodes_ = ParentNodes(self.hierarchy_, tasks, classifiers, tie_break=self._loss() == "modified_huber")
        self.flat_ = self._flat_scores(flat_classifier) if flat is not None else None
        self.temperature_, self.blend_weight_ = self._calibrate(val)
        for scorer in (self.nodes_.scorer, self.flat_):
            if scorer is not None:
                scorer.temperature = self.temperature_
        return self

    def _fit_classifiers(self, features, codes: np.ndarray, flat=None) -> tuple[list[ParentTask], list, object]:
        """Every parent node's task and fitted columns (None where it needs none), in hierarchy order,
        and the flat classifier fitted on ``flat = (features, leaf names)`` if given.

        All of them are jobs of one pool (:func:`ktt.workers.run_jobs`), the flat one first:
        liblinear fits its classes one after another on one core, so the node fits fill the other cores.
        """
        from tqdm.auto import tqdm

        tasks = parent_tasks(self.hierarchy_, codes)
        jobs = [(i, task) for i, task in enumerate(tasks) if len(task.seen) >= 2]
        # Largest first, so that the longest fits do not start last on a busy pool.
        jobs.sort(key=lambda job: -len(job[1].rows) * len(job[1].seen))
        # Each job builds its classifier: a fitted scikit-learn object (dense weights) referenced from
        # this list would live until the last job ends (measured: 1.06 GB peak instead of 0.39 GB).
        node_classifier = functools.partial(self._new_classifier, n_jobs=1)
        # Each job takes its rows of the features when it starts: taken here, every level's nodes would
        # hold a copy of the whole matrix until the last job ends.
        work = [functools.partial(_fit_one, i, node_classifier, features, task.rows, task.labels) for i, task in jobs]
        if flat is not None:
            work[:0] = self._flat_jobs(*flat)
        classifiers: list = [None] * len(tasks)
        flat_parts = []
        with warnings.catch_warnings():
            # Threads entering and leaving scikit-learn's own warning contexts at once can leave one
            # nested (single-job) fit without its propagated settings, which it reports; harmless here.
            warnings.filterwarnings("ignore", message="`sklearn.utils.parallel.delayed` should be used")
            # A node with a few examples, each of its own child, is a valid task, not a regression problem.
            warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
            results = run_jobs(work, self.n_jobs, processes=self.learner in LIBLINEAR)
            for i, classifier in tqdm(results, total=len(work), desc="fitting parent nodes", unit="node",
                                      disable=not self.progress, leave=False):
                if i == "flat":
                    flat_parts.append(classifier)
                else:
                    classifiers[i] = classifier
        return tasks, classifiers, join_class_groups(flat_parts) if flat_parts else None

    def _flat_scores(self, classifier) -> LinearScores:
        """The flat classifier's scores, columns in hierarchy leaf order (leaves never seen score 0)."""
        w, b = classifier_columns(classifier)
        n_leaves, column = len(self.classes_), {name: i for i, name in enumerate(self.classes_)}
        seen = np.asarray([column[name] for name in classifier.classes_], dtype=np.int64)
        intercepts = np.full(n_leaves, -1e6)  # unseen leaves: a decision no seen leaf is below
        intercepts[seen] = b
        if sparse.issparse(w):
            # Moved by a 0/1 matrix with one entry per seen column: each weight is multiplied by 1 and
            # added to nothing, so the values are exact, and the weights never exist densely.
            move = sparse.csr_matrix((np.ones(len(seen)), (np.arange(len(seen)), seen)), shape=(len(seen), n_leaves))
            weights = sparse.csr_matrix(w) @ move
        else:
            weights = np.zeros((w.shape[0], n_leaves))
            weights[:, seen] = w
        return LinearScores([weights], [intercepts], score_rule(classifier))

    def _calibrate(self, val: Loader | None) -> tuple[float, float]:
        """``(temperature, blend weight)``: the pair with the best validation accuracy, then log-loss.

        Candidates are :data:`ktt.linear.TEMPERATURES` for learners scored by a
        softmax of their decisions (``temperature="auto"``; 1 for the others) and
        :data:`BLEND_WEIGHTS` (``blend`` with ``blend_weight="auto"``; 0 for the
        other decodings). ``greedy``'s labels do not depend on either; its
        temperature is chosen by the log-loss of the path probabilities.
        """
        nodes = self.nodes_.scorer
        softmax_rule = nodes is not None and nodes.rule == "softmax"
        if self.temperature != "auto":
            temperatures = (float(self.temperature) if softmax_rule else 1.0,)
        else:
            temperatures = nodes.temperatures() if nodes is not None else (1.0,)
        if self.decoding != "blend" or self.flat_ is None:
            weights = (0.0,)
        elif self.blend_weight == "auto":
            weights = BLEND_WEIGHTS
        else:
            weights = (float(self.blend_weight),)
        known = self._known_rows(val)
        if known is None:
            weight = DEFAULT_BLEND_WEIGHT if len(weights) > 1 else weights[0]
            return (temperatures[0] if len(temperatures) == 1 else 1.0), weight
        if len(temperatures) * len(weights) == 1:
            return temperatures[0], weights[0]
        texts, truth = known
        features = self.encode(texts)
        pairs = [(temperature, weight) for temperature in temperatures for weight in weights]
        hits = np.zeros(len(pairs), dtype=np.int64)
        if self.decoding != "greedy":  # greedy's labels depend on neither: every pair is a finalist
            for k, rows, blended in self._calibration_scores(features, pairs):
                hits[k] += np.count_nonzero(blended.argmax(axis=1) == truth[rows])
        # The pairs of the best accuracy; the smallest log-loss (a softmax over every leaf) decides
        # between them, the first one on a tie. Only they need it: a second pass over the rows.
        finalists = [pair for pair, count in zip(pairs, hits) if count == hits.max()]
        if len(finalists) == 1:
            return finalists[0]
        likelihoods: list[list[np.ndarray]] = [[] for _ in finalists]
        for k, rows, blended in self._calibration_scores(features, finalists):
            if finalists[k][1]:
                blended = _normalised(blended)
            likelihoods[k].append(np.log(np.maximum(blended[np.arange(len(blended)), truth[rows]], FLOOR)))
        losses = [-float(np.mean(np.concatenate(parts))) for parts in likelihoods]
        return finalists[int(np.argmin(losses))]

    def _calibration_scores(self, features, pairs: Sequence[tuple[float, float]]):
        """``(pair index, rows, scores)`` for each row chunk of ``features`` and each ``(temperature, weight)``.

        ``scores`` (chunk rows x leaves) are the path probabilities at a weight of 0,
        else the blend's unnormalised log-scores (their argmax is the prediction), in a
        buffer that the next item overwrites. Rows are scored in chunks small enough to
        stay in the cache (:data:`ktt.chunks.CACHE_BYTES`), each chunk at every pair: a
        row's scores do not depend on its chunk.
        """
        nodes = self.nodes_.scorer
        blends = self.flat_ is not None and any(weight for _, weight in pairs)
        for rows in row_chunks(features.shape[0], self._score_width(), CACHE_BYTES):
            part = features[rows]
            node_decisions = nodes.decisions(part) if nodes is not None else None
            flat_decisions = self.flat_.decisions(self.features_.word_columns(part)) if blends else None
            for temperature in dict.fromkeys(temperature for temperature, _ in pairs):
                scores = nodes.scores_of_decisions(node_decisions.copy(), temperature) if nodes is not None else None
                path = self.nodes_.path_probabilities(self.nodes_.conditionals_of_scores(scores, part.shape[0]))
                path_log = flat_log = None
                for k, (pair_temperature, weight) in enumerate(pairs):
                    if pair_temperature != temperature:
                        continue
                    if not weight:
                        yield k, rows, path
                        continue
                    if path_log is None:
                        path_log = np.log(np.maximum(path, FLOOR))
                        flat = self.flat_.scores_of_decisions(flat_decisions.copy(), temperature)
                        flat_log = np.log(np.maximum(flat, FLOOR))
                        blended, share = np.empty_like(path_log), np.empty_like(path_log)
                    # path_log * (1 - weight) + flat_log * weight, in two buffers that stay in the cache
                    np.multiply(path_log, 1 - weight, out=blended)
                    blended += np.multiply(flat_log, weight, out=share)
                    yield k, rows, blended

    def fitted_settings(self) -> dict:
        """The flat model's, and ``blend_weight`` (None where no flat classifier was fitted)."""
        return super().fitted_settings() | {"blend_weight": float(self.blend_weight_) if self.flat_ is not None else None}

    def _fits_flat(self, n_leaves: int, n_texts: int) -> bool:
        """Whether ``blend`` fits its flat classifier (not with ``blend_weight="auto"`` above :data:`MAX_BLEND_WORK`)."""
        if self.blend_weight != "auto" or n_leaves * n_texts <= MAX_BLEND_WORK:
            return True
        log.info("%d leaf classes x %d training texts (more than %d): no flat classifier; blend decodes as "
                 "global (set blend_weight to fit one anyway)", n_leaves, n_texts, MAX_BLEND_WORK)
        return False

    # --------------------------------------------------------------- predicting
    def _log_parts(self, features) -> tuple[np.ndarray, np.ndarray]:
        path = self.path_probabilities(features)
        flat = self.flat_.scores(self.features_.word_columns(features))
        return np.log(np.maximum(path, FLOOR)), np.log(np.maximum(flat, FLOOR))

    def score_features(self, features) -> np.ndarray:
        """Per-leaf scores (n x n_leaves, hierarchy leaf order); rows sum to 1 and their argmax is the prediction.

        Rows are scored in chunks (:func:`ktt.chunks.row_chunks`).
        """
        self._check_fitted()
        return in_row_chunks(self._chunk_scores, features, self._score_width())

    def _chunk_scores(self, features) -> np.ndarray:
        """:meth:`score_features` of one chunk of rows."""
        if self.decoding == "blend":
            weight = self.blend_weight_
            if weight == 1.0:
                return self.flat_.scores(self.features_.word_columns(features))
            if weight == 0.0:
                return self.path_probabilities(features)
            path_log, flat_log = self._log_parts(features)
            return _normalised(path_log * (1 - weight) + flat_log * weight)
        probabilities = self.path_probabilities(features)
        if self.decoding == "greedy":
            return self._agree_with_greedy(probabilities)
        return probabilities

    def path_probabilities(self, features) -> np.ndarray:
        """Product of the conditional probabilities along each leaf's path (n x n_leaves; rows sum to 1)."""
        self._check_fitted()
        return self.nodes_.path_probabilities(self.nodes_.class_conditionals(features))

    def _paths_of_scores(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Paths and per-level class probabilities from per-leaf scores (one chunk of rows).

        ``global`` and ``blend``: the argmax leaf and its ancestors. ``greedy``:
        on every level, the child (of the class chosen one level up) with the
        largest summed leaf score, the first in hierarchy order on a tie. A
        level's score is the summed score of the leaves below the chosen class.
        """
        if self.decoding != "greedy":
            return super()._paths_of_scores(scores)
        sums = self._level_sums()
        levels = sums.all_levels(scores)
        paths = self.nodes_.greedy_paths(levels.__getitem__)
        return paths, self._path_scores(scores, paths, levels)

    def _agree_with_greedy(self, scores: np.ndarray) -> np.ndarray:
        """Exchange scores so that every row's argmax is its greedy top-down leaf.

        A leaf's score is its path probability, except that, where the greedy leaf
        is not the most probable leaf, the two exchange their scores (and on an
        exact tie the greedy leaf's score is raised by one floating-point step).
        Moving score into the greedy leaf never changes the greedy decision, so
        the argmax of the scores is always the last class of the top-down path.
        """
        leaf_offset = self.hierarchy_.level_offsets[-2]
        rows = np.arange(len(scores))
        block = scores
        for _ in range(self.hierarchy_.depth + 2):  # one pass suffices; the rest guards float rounding
            greedy = self._paths_of_scores(block)[0][:, -1] - leaf_offset
            best = block.argmax(axis=1)
            differ = greedy != best
            rows, greedy, best = rows[differ], greedy[differ], best[differ]
            if not len(rows):
                return scores
            scores[rows, greedy], scores[rows, best] = scores[rows, best], scores[rows, greedy]
            tied = scores[rows].argmax(axis=1) != greedy
            scores[rows[tied], greedy[tied]] = np.nextafter(scores[rows[tied], greedy[tied]], np.inf)
            block = scores[rows]
        raise KttError(f"{type(self).__name__} could not make its scores agree with its top-down paths (please report)")

    def onnx_pipeline(self):
        raise KttError(f"ONNX export is not supported for {type(self).__name__} (one graph per parent node "
                       "is not a single scikit-learn pipeline); export it with export=bento")


def _fit_one(index, new_classifier, features, rows: np.ndarray, labels: np.ndarray) -> tuple[object, object]:
    """``(index, the columns of new_classifier() fitted on features[rows])`` (:func:`ktt.linear.fitted_linear`),
    for one parallel job."""
    return index, fit_columns(new_classifier, features[rows], labels)


def _normalised(log_scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of log-scores (in place)."""
    log_scores -= log_scores.max(axis=1, keepdims=True)
    np.exp(log_scores, out=log_scores)
    log_scores /= log_scores.sum(axis=1, keepdims=True)
    return log_scores
