"""The label hierarchy: one object that models, metrics and exporters all ask.

It is KTT's ``hierarchy.json``: every class of every level in one list
(``classes``), level by level, with ``level_sizes``, ``level_offsets`` (where
each level starts in ``classes``; one more entry than levels) and ``parent_of``
(for each class, the index in ``classes`` of its parent; ``-1`` on the top level).

Ragged trees. Label paths may differ in length (a leaf at any level, and a label
that is a leaf for some rows and a parent for others). The hierarchy then pads
every path that stops above the deepest level with *stop* pseudo-classes, one
per missing level, named after the class they stop at (``"Gift cards > <stop>"``,
``"Gift cards > <stop> > <stop>"``), listed in ``stops``. Every leaf therefore
sits on the last level and every model works unchanged: a parent node's
classifier learns "stop here" as one of its children, a flat classifier learns
the padded leaf. Outputs meant for people (served paths, batch scoring, the
pyfunc model, metrics) drop the stops (:meth:`Hierarchy.label_path`,
:meth:`Hierarchy.real_mask`). An equal-depth tree has no stops, and its
``hierarchy.json`` is what it was before ragged trees.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from functools import cached_property
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ktt.errors import KttError

PATH_SEPARATOR = " > "
#: Label of the pseudo-class that ends a path above the deepest level (see the module docstring).
STOP = "<stop>"


class Hierarchy:
    """A fixed-depth tree of classes (a ragged tree padded with stop pseudo-classes).

    Parameters
    ----------
    classes : list of str
        Class names, level by level; unique.
    level_sizes : list of int
        How many classes each level has.
    parent_of : list of int
        Index (into ``classes``) of each class's parent, ``-1`` for top-level classes.
    stops : list of int, optional
        Indices of the stop pseudo-classes (see the module docstring); none for an equal-depth tree.
    """

    def __init__(self, classes: Sequence[str], level_sizes: Sequence[int], parent_of: Sequence[int],
                 stops: Sequence[int] = ()):
        self.classes = list(classes)
        self.level_sizes = [int(s) for s in level_sizes]
        self.parent_of = [int(p) for p in parent_of]
        self.stops = sorted(int(i) for i in stops)
        self.level_offsets = [0]
        for size in self.level_sizes:
            self.level_offsets.append(self.level_offsets[-1] + size)
        if self.level_offsets[-1] != len(self.classes) or len(self.parent_of) != len(self.classes):
            raise KttError("hierarchy is inconsistent: level_sizes and parent_of must cover every class")
        if len(set(self.classes)) != len(self.classes):
            raise KttError("hierarchy is inconsistent: class names must be unique")
        if self.stops and (self.stops[0] < self.level_offsets[1] or self.stops[-1] >= len(self.classes)):
            raise KttError("hierarchy is inconsistent: stops must be classes below the top level")

    # ------------------------------------------------------------------ building
    @classmethod
    def from_paths(cls, paths: Iterable[Sequence[str]]) -> tuple["Hierarchy", np.ndarray]:
        """Build the hierarchy of a set of label paths.

        A class is a path prefix. Its name is its own label or, where the same
        label names more than one class (under two parents, or on two levels),
        the whole prefix joined by ``" > "``. Classes are ordered by their prefix, so children of one parent
        are contiguous and the result does not depend on row order. Paths shorter
        than the longest are padded with stop pseudo-classes (see the module docstring).

        Parameters
        ----------
        paths : iterable of sequences of str
            One root-to-leaf label path per example.

        Returns
        -------
        hierarchy : Hierarchy
        codes : ndarray of shape (n_examples, depth)
            Each example's class index (into ``classes``) on every level.
        """
        paths = [tuple(p) for p in paths]
        if not paths:
            raise KttError("no labelled rows to build a hierarchy from")
        depth = max(map(len, paths))
        if any(STOP in p for p in paths):
            raise KttError(f"the label {STOP!r} is reserved (it marks a path that stops above the deepest level); "
                           "rename it in the data")
        # STOP sorts after no real label in particular; it only has to be a distinct tuple element
        paths = [p + (STOP,) * (depth - len(p)) for p in paths]
        classes, level_sizes, parent_of, stops = [], [], [], []
        index_of: dict[tuple, int] = {}
        levels = [sorted({p[: level + 1] for p in paths}) for level in range(depth)]
        label_count = Counter(prefix[-1] for prefixes in levels for prefix in prefixes)
        for level, prefixes in enumerate(levels):
            for prefix in prefixes:
                index_of[prefix] = len(classes)
                if prefix[-1] == STOP:
                    stops.append(len(classes))
                    name = classes[index_of[prefix[:-1]]] + PATH_SEPARATOR + STOP
                else:
                    name = prefix[-1] if label_count[prefix[-1]] == 1 else PATH_SEPARATOR.join(prefix)
                classes.append(name)
                parent_of.append(index_of[prefix[:-1]] if level else -1)
            level_sizes.append(len(prefixes))
        codes = np.array([[index_of[p[: lvl + 1]] for lvl in range(depth)] for p in paths], dtype=np.int64)
        return cls(classes, level_sizes, parent_of, stops), codes

    # --------------------------------------------------------------- (de)serial
    def to_dict(self) -> dict:
        """The ``hierarchy.json`` content (``stops`` only for a ragged tree)."""
        data = {
            "classes": self.classes,
            "level_sizes": self.level_sizes,
            "level_offsets": self.level_offsets,
            "parent_of": self.parent_of,
        }
        if self.stops:
            data["stops"] = self.stops
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Hierarchy":
        try:
            return cls(data["classes"], data["level_sizes"], data["parent_of"], data.get("stops", ()))
        except KeyError as missing:
            raise KttError(f"hierarchy.json lacks the key {missing}") from None

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def from_json(cls, path: str | Path) -> "Hierarchy":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Hierarchy) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Hierarchy(depth={self.depth}, level_sizes={self.level_sizes})"

    def __setstate__(self, state: dict) -> None:
        state.setdefault("stops", [])  # pickled before ragged trees
        self.__dict__.update(state)

    # ------------------------------------------------------------------ queries
    @property
    def depth(self) -> int:
        return len(self.level_sizes)

    @property
    def ragged(self) -> bool:
        """Whether some paths stop above the deepest level (the tree has stop pseudo-classes)."""
        return bool(self.stops)

    @cached_property
    def is_stop(self) -> np.ndarray:
        """Boolean array over ``classes``: True for the stop pseudo-classes."""
        mask = np.zeros(len(self.classes), dtype=bool)
        mask[self.stops] = True
        return mask

    def real_mask(self, paths: np.ndarray) -> np.ndarray:
        """Boolean array like ``paths`` (class indices): True where the class is a real one, not a stop."""
        return ~self.is_stop[np.asarray(paths)]

    @cached_property
    def display_index(self) -> np.ndarray:
        """For every class, itself, or for a stop, the real class it stops at."""
        shown = np.arange(len(self.classes))
        parent_of = np.asarray(self.parent_of)
        for level in range(1, self.depth):  # top-down, so a stop's parent is already resolved
            block = np.arange(self.level_offsets[level], self.level_offsets[level + 1])
            stop = block[self.is_stop[block]]
            shown[stop] = shown[parent_of[stop]]
        return shown

    def display_names(self, leaf_names: Sequence[str]) -> list[str]:
        """The deepest real class of each named leaf (the leaf itself in an equal-depth tree)."""
        if not self.stops:
            return list(leaf_names)
        return [self.classes[self.display_index[self.index[name]]] for name in leaf_names]

    def label_path(self, leaf_name: str) -> list[str]:
        """Real class names from the top level down to ``leaf_name``, without stops."""
        return [self.classes[i] for i in self.leaf_path_indices([leaf_name])[0] if not self.is_stop[i]]

    def level_classes(self, level: int) -> list[str]:
        """Names of the classes on ``level`` (0 = top)."""
        return self.classes[self.level_offsets[level] : self.level_offsets[level + 1]]

    @property
    def leaf_classes(self) -> list[str]:
        return self.level_classes(self.depth - 1)

    @cached_property
    def index(self) -> dict[str, int]:
        """Class name to its index in ``classes``."""
        return {name: i for i, name in enumerate(self.classes)}

    @cached_property
    def leaf_paths(self) -> np.ndarray:
        """Array (n_leaves, depth): the class index on every level of each leaf's path."""
        n_leaves = self.level_sizes[-1]
        paths = np.empty((n_leaves, self.depth), dtype=np.int64)
        paths[:, -1] = np.arange(self.level_offsets[-2], self.level_offsets[-1])
        parent_of = np.asarray(self.parent_of)
        for level in range(self.depth - 2, -1, -1):
            paths[:, level] = parent_of[paths[:, level + 1]]
        return paths

    @cached_property
    def children(self) -> dict[int, list[int]]:
        """Class index to the indices of its children (``-1`` is the root)."""
        children = defaultdict(list)
        for i, parent in enumerate(self.parent_of):
            children[parent].append(i)
        return dict(children)

    def leaf_path_indices(self, leaf_names: Sequence[str]) -> np.ndarray:
        """Array (n, depth) of class indices on the path to each named leaf."""
        offset = self.level_offsets[-2]
        rows = np.asarray([self.index.get(name, -1) for name in leaf_names], dtype=np.int64) - offset
        if len(rows) and rows.min() < 0:  # unknown, or a class of an upper level
            raise KttError(f"{leaf_names[int(rows.argmin())]!r} is not a leaf class of this hierarchy")
        return self.leaf_paths[rows]

    def membership(self, column_paths: np.ndarray, level: int):
        """Sparse (n_columns x level size) matrix: 1 where a column's leaf lies below a class of ``level``.

        Parameters
        ----------
        column_paths : ndarray of shape (n_columns, depth)
            The class-index path of each score column's leaf (e.g. ``leaf_path_indices(classes_)``).
        level : int
            0 = top.
        """
        from scipy import sparse

        n_columns = len(column_paths)
        nodes = np.asarray(column_paths)[:, level] - self.level_offsets[level]
        return sparse.csr_matrix((np.ones(n_columns), (np.arange(n_columns), nodes)),
                                 shape=(n_columns, self.level_sizes[level]))

    def level_scores(self, scores: np.ndarray, column_paths: np.ndarray, level: int) -> np.ndarray:
        """Scores of the classes of ``level``: each class's summed leaf scores.

        Parameters
        ----------
        scores : ndarray of shape (n, n_columns)
            Per-leaf scores.
        column_paths : ndarray of shape (n_columns, depth)
            The class-index path of each column's leaf (e.g. ``leaf_path_indices(classes_)``).
        level : int
            0 = top.

        Returns
        -------
        ndarray of shape (n, level_sizes[level])
        """
        return np.asarray(np.asarray(scores) @ self.membership(column_paths, level))

    def path_names(self, leaf_name: str) -> list[str]:
        """Class names from the top level down to ``leaf_name``."""
        return [self.classes[i] for i in self.leaf_path_indices([leaf_name])[0]]
