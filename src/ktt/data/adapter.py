"""The adapter base: from a source of labelled text to an intermediate dataset.

A concrete adapter only says how to read its source (:meth:`Adapter.read`) and
what identifies the source's content (:meth:`Adapter.fingerprint`). Cleaning,
depth, subsampling, splitting, building the hierarchy, writing and caching are
the same for every source and live here.

The cache key is the source's fingerprint and the adapter's constructor parameters,
collected from the signatures as scikit-learn's ``get_params`` does
(:meth:`Adapter.settings`): a new parameter is part of the key without further ado.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd

from ktt.data.intermediate import IntermediateDataset, write_dataset
from ktt.errors import KttError
from ktt.hierarchy import Hierarchy
from ktt.params import Interval, validate_attributes

log = logging.getLogger(__name__)

#: Bump when the intermediate format or the adaptation rules change: old caches are then ignored.
FORMAT_VERSION = 1
#: The splits of an intermediate dataset, in order; also the values a given split column may hold.
SPLITS = ("train", "val", "test")


class Snapshot(NamedTuple):
    """The source as one adaptation sees it: its fingerprint, taken once, and how to read its rows."""

    fingerprint: str
    read: Callable[[], pd.DataFrame]


class Adapter(ABC):
    """Common adaptation logic.

    Parameters
    ----------
    name : str
        Dataset name (names the cache folder and, by default, the MLflow experiment).
    depth : int or None
        Number of hierarchy levels to keep (paths are cut to their first ``depth``
        labels). None keeps whole paths, which may differ in length (a ragged tree).
    split : sequence of 3 floats
        Train, validation and test proportions, summing to 1.
    proportion : float
        Share of the (clean) rows to use, sampled with ``seed``; for quick runs.
    seed : int
        Seed of the subsample and the split.
    """

    _parameter_constraints = {
        "name": [str],
        "depth": [None, Interval(int, 1, None)],
        "proportion": [Interval(float, 0, 1, closed="right")],
        "seed": [Interval(int, 0, None)],
    }

    #: Constructor parameters left out of the cache key, because they cannot change the
    #: rows (how much to read at a time, progress bars) or the fingerprint covers what they
    #: name (a database URL, which may hold a password). Subclasses add to it.
    _not_in_cache_key: frozenset = frozenset()

    def __init__(
        self,
        name: str,
        depth: int | None = None,
        split: Sequence[float] = (0.8, 0.1, 0.1),
        proportion: float = 1.0,
        seed: int = 42,
    ):
        self.name = name
        self.depth = depth
        self.split = split
        self.proportion = proportion
        self.seed = seed

    # ------------------------------------------------------------ per source
    @abstractmethod
    def read(self) -> pd.DataFrame:
        """The source's rows as a DataFrame with ``text`` and ``path`` (list of labels).

        Rows may be dirty (missing text or labels): :meth:`adapt` drops and counts them.
        A source whose rows come with their split adds a ``split`` column (see
        :func:`given_splits`): ``train``, ``val`` or ``test`` per row (any case), or
        None for rows to split at random into the splits no row names.
        """

    def split_setting(self) -> str:
        """The setting that gives the splits, named in errors about them."""
        return f"dataset.split_col={getattr(self, 'split_col', None)}"

    @abstractmethod
    def fingerprint(self) -> str:
        """A string that changes whenever the source's content changes."""

    def snapshot(self) -> Snapshot:
        """The source's fingerprint and a reader of its rows, for one adaptation.

        An adapter that has to read the whole source to fingerprint it (SQL) overrides
        this to hand over the rows it read, so that the source is read once.
        """
        return Snapshot(self.fingerprint(), self.read)

    @classmethod
    def param_names(cls) -> list[str]:
        """The named parameters of every ``__init__`` in the class's MRO (as ``get_params`` finds them)."""
        names = []
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            for parameter in inspect.signature(init).parameters.values():
                if parameter.name != "self" and parameter.kind not in (parameter.VAR_POSITIONAL,
                                                                        parameter.VAR_KEYWORD):
                    names.append(parameter.name)
        return sorted(set(names))

    def settings(self) -> dict:
        """The settings that shape the result (part of the cache key): the adapter class and its
        constructor parameters (:meth:`param_names`) but those in ``_not_in_cache_key``."""
        left_out = set().union(*(klass.__dict__.get("_not_in_cache_key", ()) for klass in type(self).__mro__))
        params = {name: getattr(self, name) for name in self.param_names() if name not in left_out}
        return {"adapter": type(self).__name__, **json.loads(json.dumps(params, default=str))}

    # ---------------------------------------------------------------- common
    def validate(self) -> None:
        """Check the settings; raise :class:`KttError` on the first bad one."""
        validate_attributes(self)
        split = list(self.split)
        if (
            len(split) != 3
            or any(not isinstance(s, (int, float)) or s < 0 for s in split)
            or not math.isclose(sum(split), 1.0, abs_tol=1e-6)
            or split[0] == 0
            or split[2] == 0
        ):
            raise KttError(
                f"invalid split={split} (allowed: three proportions [train, val, test] "
                "summing to 1, train and test > 0)"
            )

    def cache_key(self, fingerprint: str) -> str:
        """The cache folder's name: a hash of the format version, the source's fingerprint and :meth:`settings`."""
        blob = json.dumps({"format": FORMAT_VERSION, "source": fingerprint, "settings": self.settings()},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def adapt(self, cache_dir: str | Path) -> IntermediateDataset:
        """Adapt the source, or reuse the cached result if source and settings are unchanged.

        Parameters
        ----------
        cache_dir : path-like
            Where intermediate datasets are kept, one folder per dataset and cache key.

        Returns
        -------
        IntermediateDataset
        """
        self.validate()
        snapshot = self.snapshot()
        destination = Path(cache_dir) / self.name / self.cache_key(snapshot.fingerprint)
        if (destination / "meta.json").is_file():
            log.info("Using the cached intermediate dataset %s", destination)
            cached = IntermediateDataset(destination)
            meta = cached.meta  # its warnings again, as when it was adapted
            _warn(meta["rows_dropped"], meta["rows_read"], meta.get("warnings", []))
            return cached
        log.info("Adapting dataset %r", self.name)
        frame = snapshot.read()
        given = "split" in frame.columns
        if given:
            frame["split"] = split_names(frame["split"], self.split_setting())
        frame, dropped = clean(frame)
        n_rows = len(frame) + sum(dropped.values())
        if frame.empty:
            _warn(dropped, n_rows, [])
            reasons = "; ".join(f"{reason} ({count})" for reason, count in dropped.items() if count)
            raise KttError(f"dataset {self.name!r} has no usable rows ({n_rows} read, all dropped"
                           + (f": {reasons})" if reasons else ")"))
        warning = unsplit_paths(frame["path"])
        warnings = [warning] if warning else []
        _warn(dropped, n_rows, warnings)
        frame["path"] = cut_paths(frame["path"], self.depth)
        frame = self._subsample(frame)
        hierarchy, codes = Hierarchy.from_paths(frame["path"])
        rows = pd.DataFrame({"text": frame["text"].to_numpy(), "codes": list(codes)})
        frames = self._given_split(rows, frame["split"].to_numpy()) if given else self._split(rows)
        meta = {
            "name": self.name,
            "source": snapshot.fingerprint,
            "settings": self.settings(),
            "rows_read": n_rows,
            "rows_dropped": dropped,
            "sizes": {name: len(f) for name, f in frames.items()},
            "level_sizes": hierarchy.level_sizes,
            "warnings": warnings,
        }
        dataset = write_dataset(destination, frames, hierarchy, meta)
        log.info(
            "Wrote %s: %s rows (train/val/test), levels of %s classes",
            destination,
            "/".join(str(len(f)) for f in frames.values()),
            "/".join(str(s) for s in hierarchy.level_sizes),
        )
        return dataset

    def _subsample(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.proportion >= 1:
            return frame.reset_index(drop=True)
        n = max(1, round(len(frame) * self.proportion))
        rng = np.random.default_rng(self.seed)
        keep = np.sort(rng.choice(len(frame), size=n, replace=False))
        return frame.iloc[keep].reset_index(drop=True)

    def _split(self, frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
        rng = np.random.default_rng(self.seed + 1)
        order = rng.permutation(len(frame))
        n_train = round(len(frame) * self.split[0])
        n_val = round(len(frame) * self.split[1])
        if n_train == 0 or n_train + n_val >= len(frame):
            raise KttError(
                f"dataset {self.name!r} has {len(frame)} usable rows: too few for split={list(self.split)}"
            )
        bounds = {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}
        return {name: frame.iloc[np.sort(rows)].reset_index(drop=True) for name, rows in bounds.items()}

    def _given_split(self, frame: pd.DataFrame, splits: np.ndarray) -> dict[str, pd.DataFrame]:
        """The splits the source gives (:meth:`given_splits`); rows without one (None) are split at random
        into the training split and the splits the source does not give.

        The proportions of ``split`` are renormalised over those splits (e.g. a given
        test file and ``split=[0.8, 0.1, 0.1]``: 8 of 9 other rows train, 1 of 9 validation).

        Raises
        ------
        KttError
            If a split ends up without rows (after cleaning and subsampling).
        """
        named = {name: np.flatnonzero(splits == name) for name in SPLITS}
        rest = np.flatnonzero(pd.isna(splits))
        if len(rest):
            drawn = ["train"] + [name for name in SPLITS[1:] if name not in self.given_splits()]
            shares = np.array([self.split[SPLITS.index(name)] for name in drawn], dtype=float)
            rng = np.random.default_rng(self.seed + 1)
            order = rest[rng.permutation(len(rest))]
            bounds = np.round(np.cumsum(shares / shares.sum()) * len(rest)).astype(int)
            for name, part in zip(drawn, np.split(order, bounds[:-1])):
                named[name] = np.sort(np.concatenate([named[name], part]))
        for name in SPLITS:
            if not len(named[name]):
                raise KttError(
                    f"the {name} split of dataset {self.name!r} is empty (given by {self.split_setting()}, "
                    f"after dropping unusable rows and dataset.proportion={self.proportion}); give it rows"
                )
        return {name: frame.iloc[rows].reset_index(drop=True) for name, rows in named.items()}

    def given_splits(self) -> tuple[str, ...]:
        """The splits the source gives when its rows carry a ``split`` column (default: all three)."""
        return SPLITS


def split_names(values: pd.Series, setting: str) -> np.ndarray:
    """Given split values as ``train``/``val``/``test`` (case and surrounding spaces ignored), None where unset.

    ``validation``, ``valid`` and ``dev`` are not accepted: a benchmark that names
    its splits otherwise maps them before ktt reads them, so a typo never silently
    moves rows to the training split.

    Raises
    ------
    KttError
        On a value that names none of the three splits, or an empty cell.
    """
    names = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and value != value):
            names[i] = None
            continue
        name = str(value).strip().lower()
        if name not in SPLITS:
            raise KttError(
                f"{setting}: row {i} has the split {value!r} (allowed: train, val, test, in any case)"
            )
        names[i] = name
    return names


def check_distinct_columns(columns: dict[str, str | None]) -> None:
    """Raise :class:`KttError` when two column settings (``{"text_col": "title", ...}``, None: unset) name
    the same column: a text column that is also the label column would train on the answers."""
    setting_of: dict[str, str] = {}
    for setting, column in columns.items():
        if column is None:
            continue
        if column in setting_of:
            raise KttError(f"dataset.{setting_of[column]} and dataset.{setting} name the same column {column!r}; "
                           "give each its own column")
        setting_of[column] = setting


def _warn(dropped: dict[str, int], n_rows: int, warnings: list[str]) -> None:
    """Log the dropped rows by reason, then the other warnings about the data."""
    for reason, count in dropped.items():
        if count:
            log.warning("Dropped %d of %d rows: %s", count, n_rows, reason)
    for warning in warnings:
        log.warning("%s", warning)


#: Characters that often join the levels of a path written as one string.
PATH_SEPARATORS = (">", "/", "|", "\\", "»", "→")


def unsplit_paths(paths: pd.Series) -> str | None:
    """A warning (one line) when most one-level paths hold a path separator in their label, else None.

    ``Food>Snacks>Chips`` read with the delimiter ``" > "`` is one label, not three
    levels: the model would then learn flat classes, or a tree of two shapes where
    some rows are written one way and some the other. A one-level label with a
    separator can be a real name ("Food/Drink"), so this warns, and only when such
    labels are most of the one-level ones.
    """
    single = paths[paths.map(len) == 1].map(lambda path: path[0])
    if not len(single):
        return None
    for separator in PATH_SEPARATORS:
        holding = single[single.str.contains(separator, regex=False)]
        if 2 * len(holding) > len(single):
            return (f"{len(holding)} of {len(paths)} label paths have one level whose label contains "
                    f"{separator!r} (e.g. {holding.iloc[0]!r}): if these are paths, their levels were not split; "
                    "set the label delimiter (dataset.delimiter for a file)")
    return None


def clean(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop rows without usable text or labels; return the rest and the counts by reason."""
    text_ok = frame["text"].map(lambda t: isinstance(t, str) and bool(t.strip()))
    has_path = frame["path"].map(_has_path)
    path_ok = frame["path"].map(lambda path: _has_path(path) and _all_levels_named(path))
    dropped = {
        "empty or missing text": int((~text_ok).sum()),
        "missing or empty label": int((text_ok & ~has_path).sum()),
        "label path with an empty level": int((text_ok & has_path & ~path_ok).sum()),  # "A >  > B", "A > B > "
    }
    return frame[text_ok & path_ok], dropped


def _has_path(path) -> bool:
    return not (path is None or isinstance(path, (str, bytes)) or not hasattr(path, "__len__") or len(path) == 0)


def _all_levels_named(path) -> bool:
    return all(isinstance(label, str) and label.strip() for label in path)


def cut_paths(paths: pd.Series, depth: int | None) -> pd.Series:
    """Cut every label path to at most ``depth`` levels (None: whole paths).

    Paths may differ in length (a ragged tree, see :mod:`ktt.hierarchy`); a path
    shorter than ``depth`` is kept whole.

    Raises
    ------
    KttError
        If ``depth`` is deeper than the longest path.
    """
    if depth is not None:
        lengths = paths.map(len)
        longest = int(lengths.max())
        if depth > longest:
            raise KttError(
                f"depth={depth} is deeper than the data: the longest label path has {longest} "
                f"level(s) (data row {lengths.idxmax()}); use depth<={longest}"
            )
    return paths.map(lambda p: tuple(label.strip() for label in p[:depth]))
