"""The SQL adapter: items and a category tree from any database SQLAlchemy can reach.

Two queries describe the data:

- ``items_query`` returns one row per example: an id, a text and the id of the
  item's class (``id``, ``text``, ``class_id`` by default);
- ``classes_query`` returns the category tree: a class id and its parent's id,
  NULL for a root (``id``, ``parent_id``), and optionally a ``name``.

An item's label path is its class's ancestry, from the root down to the class,
found by following the parent links. The base class then cleans, cuts to
``depth``, subsamples, splits and writes the same intermediate dataset as the
flat-file adapter.

Rules
-----
Labels
    A class's label is its ``name_col`` value when the classes query returns that
    column, else its id as a string (``12``, never ``12.0``). A NULL or blank name
    is an error naming the class; two siblings with the same name are an error
    (their items could not be told apart); equal names under different parents are
    fine (the hierarchy qualifies them).
Depth
    The path of an item is root .. item's class, so its length is the level of the
    item's class (a root class is level 1). ``depth=d`` keeps the first ``d`` labels.
    An item whose class sits above level ``d`` (path shorter than ``d``) has no label
    at level ``d``: it is dropped with a warning and counted among the base class's
    "missing or empty label" rows; if every item with a class is dropped that way it
    is an error. ``depth=null`` keeps whole paths: items' classes may sit on
    different levels (a ragged tree, see :mod:`ktt.hierarchy`).
Broken data
    Errors, each naming the offending id: a NULL or duplicate class id; an orphan
    (a ``parent_col`` value that is not a class id of the classes query: a root must
    have a NULL parent); a cycle of parent links (a class that is its own ancestor,
    with the cycle shown); an item whose class id is not a class of the classes
    query; a duplicate item id (NULL item ids are not compared). Every class the
    query returns is checked, used or not: filter the classes query to leave out a
    broken part of the tree.
Dirty items
    An item with a NULL or blank text, or a NULL class id, is dropped and counted by
    the base class's rules.
Order
    Rows keep the query's order, which the seeded split depends on: end the items
    query with ``ORDER BY`` (a database may otherwise return rows in any order).
Queries
    Both run through ``sqlalchemy.text()``, so they are portable (write ``%`` as is)
    and a colon before a word must be escaped as ``\\:``.
Fingerprint
    ``sha256:`` over every row of both queries in query order: item id, text and
    class id; class id, parent id and name. Ids are canonicalised (``12``, ``12.0``
    from a chunk with NULLs, and for class ids ``'12'``, are one id) and NULL is told
    apart from ``''``, so the fingerprint does not depend on the chunk size, the
    URL or the driver, and changes whenever a row the queries return changes (or
    their order). Computing it means reading the data: each
    :meth:`SQLAdapter.adapt` reads both queries once, even when the cached result
    is then reused, and keeps the rows for its :meth:`SQLAdapter.read`.
Credentials
    The URL's password is never logged, put in an error message, in the settings or
    the cache (``meta.json``): see :mod:`ktt.secrets`.
"""

from __future__ import annotations

import decimal
import hashlib
import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ktt.data.adapter import Adapter, Snapshot, check_distinct_columns
from ktt.errors import KttError
from ktt.params import Interval
from ktt.secrets import mask_error, mask_text

log = logging.getLogger(__name__)

#: Bump when the fingerprint's encoding of rows changes.
_FINGERPRINT_VERSION = "ktt-sql-rows-v1"


class SQLAdapter(Adapter):
    """Read items and their category tree from a database.

    Parameters
    ----------
    url : str
        SQLAlchemy URL, e.g. ``sqlite:///ktt.db`` or
        ``postgresql+psycopg://user:password@host:5432/db``. Its password is masked
        wherever ktt shows or records the URL.
    items_query : str
        SQL returning one row per item, with the columns ``id_col``, ``text_col``
        and ``class_col``. End it with ``ORDER BY`` for a reproducible split.
    classes_query : str
        SQL returning one row per class, with the columns ``class_id_col`` and
        ``parent_col`` (NULL for a root) and, optionally, ``name_col``.
    id_col, text_col, class_col : str
        Item id, text and class id columns of ``items_query``.
    class_id_col, parent_col : str
        Class id and parent class id columns of ``classes_query``.
    name_col : str or None
        Column of ``classes_query`` naming a class; if the query does not return it
        (or it is None) classes are labelled by their ids.
    split_col : str or None
        Column of ``items_query`` giving each item's split: ``train``, ``val`` or
        ``test`` (any case). None (default): items are split at random by ``split``.
    chunksize : int
        Rows fetched at a time (server-side cursors where the driver has them).
    progress : bool
        Show a progress bar of the item rows read.
    **kwargs
        Passed to :class:`~ktt.data.adapter.Adapter` (name, depth, split, proportion, seed).

    Examples
    --------
    >>> adapter = SQLAdapter("sqlite:///shop.db", name="shop", depth=2)  # doctest: +SKIP
    >>> dataset = adapter.adapt(".ktt/cache")                               # doctest: +SKIP
    """

    _parameter_constraints = {
        "url": [str],
        "items_query": [str],
        "classes_query": [str],
        "id_col": [str],
        "text_col": [str],
        "class_col": [str],
        "class_id_col": [str],
        "parent_col": [str],
        "name_col": [None, str],
        "split_col": [None, str],
        "chunksize": [Interval(int, 1, None)],
        "progress": [bool],
    }

    #: The fingerprint covers the database's content (and the URL may hold a password).
    _not_in_cache_key = frozenset({"url", "chunksize", "progress"})

    def __init__(
        self,
        url: str,
        items_query: str = "SELECT id, text, class_id FROM items ORDER BY id",
        classes_query: str = "SELECT * FROM classes ORDER BY id",
        id_col: str = "id",
        text_col: str = "text",
        class_col: str = "class_id",
        class_id_col: str = "id",
        parent_col: str = "parent_id",
        name_col: str | None = "name",
        split_col: str | None = None,
        chunksize: int = 50_000,
        progress: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.url = url
        self.items_query = items_query
        self.classes_query = classes_query
        self.id_col = id_col
        self.text_col = text_col
        self.class_col = class_col
        self.class_id_col = class_id_col
        self.parent_col = parent_col
        self.name_col = name_col
        self.split_col = split_col
        self.chunksize = chunksize
        self.progress = progress

    def __repr__(self) -> str:
        return f"SQLAdapter(name={self.name!r}, url={self.masked_url!r})"

    @property
    def masked_url(self) -> str:
        """The URL with its password replaced by ``***`` (safe to show)."""
        return mask_text(str(self.url))

    # ------------------------------------------------------------- settings
    def validate(self) -> None:
        """Check the settings without connecting; raise :class:`KttError` on the first bad one."""
        super().validate()
        for name in ("items_query", "classes_query"):
            if not getattr(self, name).strip():
                raise KttError(f"invalid {name}='' (allowed: a SQL query returning rows)")
        check_distinct_columns({"id_col": self.id_col, "text_col": self.text_col, "class_col": self.class_col,
                                "split_col": self.split_col})
        self._parsed_url()

    def _parsed_url(self):
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(self.url)
        except (ArgumentError, ValueError, TypeError):
            raise KttError(
                f"invalid url={self.masked_url!r} (allowed: a SQLAlchemy URL such as sqlite:///ktt.db or "
                "postgresql+psycopg://user:password@host:5432/db)"
            ) from None
        database = url.database or ""
        if url.get_backend_name() == "sqlite" and database and database != ":memory:" \
                and not database.startswith("file:") and not Path(database).is_file():
            raise KttError(f"SQLite database {database} does not exist; set dataset.url (or KTT_SQL_URL)")
        return url

    # ------------------------------------------------------------- snapshot
    def snapshot(self) -> Snapshot:
        """Both queries' rows, read once: their fingerprint (the cache key) and, on a cache miss, the rows."""
        rows = self._read_database()
        return Snapshot(rows.fingerprint, rows.frame)

    def fingerprint(self) -> str:
        """SHA-256 over the rows both queries return (see the module's Fingerprint rule)."""
        return self._read_database().fingerprint

    def read(self) -> pd.DataFrame:
        """Items with ``text`` and ``path`` (a tuple of labels, root first; None when dropped)."""
        return self._read_database().frame()

    # ------------------------------------------------------------- reading
    def _read_database(self) -> "_Rows":
        import sqlalchemy

        self._parsed_url()
        password = sqlalchemy.engine.make_url(self.url).password
        secrets = [password] if password else []
        digest = hashlib.sha256(_FINGERPRINT_VERSION.encode())
        try:
            engine = sqlalchemy.create_engine(self.url)
        except ImportError as error:
            raise KttError(f"cannot use url={self.masked_url!r}: its driver is not installed "
                           f"({mask_error(error, secrets)})") from None
        except sqlalchemy.exc.SQLAlchemyError as error:
            raise KttError(f"cannot use url={self.masked_url!r}: {mask_error(error, secrets)}") from None
        step = f"connect to {self.masked_url}"
        try:
            with engine.connect() as connection:
                streaming = connection.execution_options(stream_results=True, max_row_buffer=self.chunksize)
                step = f"run classes_query on {self.masked_url}"
                tree = self._read_classes(streaming, digest)
                digest.update(b"|items|")
                step = f"run items_query on {self.masked_url}"
                texts, paths, splits = self._read_items(streaming, tree, digest)
        except sqlalchemy.exc.SQLAlchemyError as error:
            raise KttError(f"cannot {step}: {mask_error(error, secrets)}") from None
        finally:
            engine.dispose()
        return _Rows(texts, paths, f"sha256:{digest.hexdigest()}", splits)

    def _chunks(self, connection, query_name: str, required: dict[str, str]):
        """The query's rows, ``chunksize`` at a time; the first chunk is checked for the required columns."""
        import sqlalchemy

        query = sqlalchemy.text(getattr(self, query_name))
        first = True
        for chunk in pd.read_sql(query, connection, chunksize=self.chunksize):
            if first:
                for setting, column in required.items():
                    if column not in chunk.columns:
                        raise KttError(
                            f"column {column!r} not found in the result of {query_name} "
                            f"(columns: {', '.join(map(str, chunk.columns))}); set dataset.{setting}"
                        )
                first = False
            yield chunk.reset_index(drop=True)

    def _read_classes(self, connection, digest) -> "_Tree":
        required = {"class_id_col": self.class_id_col, "parent_col": self.parent_col}
        ids, parents, names = [], [], []
        with_names = None
        for chunk in self._chunks(connection, "classes_query", required):
            if with_names is None:
                with_names = self.name_col is not None and self.name_col in chunk.columns
            chunk_ids = canonical_ids(chunk[self.class_id_col])
            chunk_parents = canonical_ids(chunk[self.parent_col])
            chunk_names = chunk[self.name_col] if with_names else chunk_ids
            digest.update(_combine(*(_hash_values(c) for c in (chunk_ids, chunk_parents, chunk_names))).tobytes())
            ids.append(chunk_ids)
            parents.append(chunk_parents)
            names.append(chunk_names)
        if not sum(map(len, ids)):
            raise KttError("classes_query returned no rows; it must return every class of the tree")
        ids, parents, names = (pd.concat(c, ignore_index=True) for c in (ids, parents, names))
        tree = _Tree.build(ids, parents, names if with_names else None, self.parent_col, self.name_col)
        log.info("Read %d classes from %s: %d root(s), %d level(s)", len(ids), self.masked_url,
                 tree.n_roots, int(tree.levels.max()))
        return tree

    def _read_items(self, connection, tree: "_Tree", digest) -> tuple[pd.Series, np.ndarray, np.ndarray | None]:
        """Item texts, label paths and (with ``split_col``) given splits, an empty cell as ``""``."""
        from tqdm import tqdm

        required = {"id_col": self.id_col, "text_col": self.text_col, "class_col": self.class_col}
        if self.split_col:
            required["split_col"] = self.split_col
        item_ids, texts, class_index, splits = [], [], [], []
        start = time.perf_counter()
        with tqdm(desc=f"reading {self.name}", unit=" rows", unit_scale=True,
                  disable=None if self.progress else True) as bar:  # None: only on a terminal
            for chunk in self._chunks(connection, "items_query", required):
                ids, id_hashes = _id_column(chunk[self.id_col])
                text = chunk[self.text_col]
                # A chunk has few distinct class ids: canonicalise and look up those only.
                codes, uniques = pd.factorize(chunk[self.class_col])
                unique_ids = canonical_ids(pd.Series(uniques, dtype=object))
                has_class = codes >= 0
                index = np.full(len(codes), -1, dtype=np.int64)
                class_hashes = np.full(len(codes), _NULL_HASH, dtype=np.uint64)
                if len(uniques):
                    index[has_class] = tree.index.get_indexer(unique_ids)[codes[has_class]]
                    class_hashes[has_class] = _hash_values(unique_ids)[codes[has_class]]
                digest.update(_combine(id_hashes, _hash_values(text), class_hashes).tobytes())
                if self.split_col:
                    split = chunk[self.split_col].map(lambda v: "" if v is None or v != v else str(v))
                    digest.update(_hash_values(split).tobytes())
                    splits.append(split)
                unknown = np.flatnonzero(has_class & (index < 0))
                if len(unknown):
                    row = unknown[0]
                    raise KttError(
                        f"item {ids.iloc[row]} has {self.class_col} {unique_ids.iloc[codes[row]]}, which is not a "
                        "class id of classes_query; every item's class must be among the classes selected"
                    )
                item_ids.append(ids)
                texts.append(text)
                class_index.append(index)
                bar.update(len(chunk))
        elapsed = time.perf_counter() - start
        if not sum(map(len, texts)):
            raise KttError("items_query returned no rows")
        item_ids = pd.concat(item_ids, ignore_index=True)
        duplicated = (item_ids.duplicated() & item_ids.notna()).to_numpy(dtype=bool)
        if duplicated.any():
            raise KttError(f"items_query returned the item id {item_ids[duplicated].iloc[0]} more than once; "
                           "item ids must be unique")
        texts = pd.concat(texts, ignore_index=True)
        class_index = np.concatenate(class_index)
        log.info("Read %d items from %s in %.1f s (%.0f rows/s)", len(texts), self.masked_url, elapsed,
                 len(texts) / max(elapsed, 1e-9))
        splits = pd.concat(splits, ignore_index=True).to_numpy(dtype=object) if self.split_col else None
        return texts, self._paths(tree, class_index), splits

    def _paths(self, tree: "_Tree", class_index: np.ndarray) -> np.ndarray:
        """Each item's label path (None without a class or, under the depth rule, above ``depth``)."""
        has_class = class_index >= 0
        levels = np.where(has_class, tree.levels[np.maximum(class_index, 0)], 0)
        paths = np.where(has_class, tree.paths[np.maximum(class_index, 0)], None)
        if not has_class.any():
            return paths
        used = levels[has_class]
        if self.depth is None:  # whole paths; items' classes may sit on different levels (a ragged tree)
            return paths
        above = has_class & (levels < self.depth)
        if not (has_class & ~above).any():
            raise KttError(
                f"depth={self.depth} is deeper than every item's class: the deepest item class sits on level "
                f"{used.max()}; use depth<={used.max()}"
            )
        if above.any():
            log.warning(
                "Dropped %d of %d items whose class sits above depth=%d (counted as 'missing or empty label')",
                int(above.sum()), len(paths), self.depth,
            )
            paths[above] = None
        return paths


class _Rows:
    """What one reading of the database gave: item texts, label paths, fingerprint."""

    def __init__(self, texts: pd.Series, paths: np.ndarray, fingerprint: str, splits: np.ndarray | None = None):
        self.texts = texts
        self.paths = paths
        self.fingerprint = fingerprint
        self.splits = splits

    def frame(self) -> pd.DataFrame:
        """Items with ``text``, ``path`` and (with a split column) ``split``, as :meth:`SQLAdapter.read` returns them."""
        frame = pd.DataFrame({"text": self.texts, "path": self.paths})
        if self.splits is not None:
            frame["split"] = self.splits
        return frame


class _Tree:
    """The class tree: for each class (by position in ``index``) its level and label path."""

    def __init__(self, index: pd.Index, levels: np.ndarray, paths: np.ndarray, n_roots: int):
        self.index = index
        self.levels = levels
        self.paths = paths
        self.n_roots = n_roots

    @classmethod
    def build(cls, ids: pd.Series, parents: pd.Series, names: pd.Series | None, parent_col: str,
              name_col: str | None) -> "_Tree":
        """Check the classes and walk every class up to its root."""
        if ids.isna().any():
            raise KttError(f"classes_query returned a NULL class id (row {int(ids.isna().idxmax())}); "
                           "every class needs an id")
        duplicated = ids.duplicated()
        if duplicated.any():
            raise KttError(f"classes_query returned the class id {ids[duplicated].iloc[0]} more than once; "
                           "class ids must be unique")
        index = pd.Index(ids.to_numpy(dtype=object))
        if names is None:
            labels = ids.tolist()
        else:
            labels = [None if _is_null(n) else str(n).strip() for n in names]
            blank = next((i for i, label in enumerate(labels) if not label), None)
            if blank is not None:
                raise KttError(f"class {ids.iloc[blank]} has an empty {name_col}; name every class "
                               "(or set dataset.name_col=null to label classes by id)")
        parent_list = parents.tolist()
        has_parent = parents.notna().to_numpy()
        parent_pos = index.get_indexer(parents)
        orphans = np.flatnonzero(has_parent & (parent_pos < 0))
        if len(orphans):
            first = orphans[0]
            raise KttError(
                f"class {ids.iloc[first]} has {parent_col} {parent_list[first]}, which is not a class id of "
                f"classes_query ({len(orphans)} orphan class(es)); a root class must have a NULL {parent_col}"
            )
        if names is not None:
            siblings = pd.DataFrame({"parent": parents.fillna("\0root"), "label": labels})
            clash = np.flatnonzero(siblings.duplicated(keep=False).to_numpy())
            if len(clash):
                first = clash[0]
                other = next(r for r in clash[1:] if labels[r] == labels[first]
                             and parent_list[r] == parent_list[first])
                raise KttError(
                    f"classes {ids.iloc[first]} and {ids.iloc[other]} are both named {labels[first]!r} under the "
                    "same parent; sibling names must be unique (or set dataset.name_col=null to label by id)"
                )
        n = len(ids)
        levels = np.zeros(n, dtype=np.int64)
        paths = np.empty(n, dtype=object)
        done = np.zeros(n, dtype=bool)
        for start in range(n):
            chain, on_chain = [], {}
            node = start
            while node >= 0 and not done[node]:
                if node in on_chain:
                    cycle = chain[on_chain[node]:] + [node]
                    shown = " -> ".join(str(ids.iloc[c]) for c in cycle[:8]) + (" -> ..." if len(cycle) > 8 else "")
                    raise KttError(
                        f"class {ids.iloc[node]} is its own ancestor (parent links {shown}); every class must "
                        f"lead up to a root with a NULL {parent_col}"
                    )
                on_chain[node] = len(chain)
                chain.append(node)
                node = parent_pos[node]
            prefix = paths[node] if node >= 0 else ()
            for member in reversed(chain):
                prefix = prefix + (labels[member],)
                paths[member] = prefix
                levels[member] = len(prefix)
                done[member] = True
        return cls(index, levels, paths, int((~has_parent).sum()))


def canonical_ids(values: pd.Series) -> pd.Series:
    """Ids as strings, None for NULL, so that ``12``, ``12.0``, ``Decimal('12')`` and ``'12'`` are one id.

    Parameters
    ----------
    values : Series
        An id column as a driver returned it (integers; floats when NULLs are mixed in;
        decimals, strings, UUIDs ...).

    Returns
    -------
    Series of object
        ``str`` ids; None where the value is NULL.
    """
    values = values.reset_index(drop=True)
    if pd.api.types.is_bool_dtype(values):
        return values.astype(str).astype(object)
    if pd.api.types.is_integer_dtype(values):
        return values.astype(str).astype(object)
    if pd.api.types.is_float_dtype(values):
        null = values.isna().to_numpy()
        present = values.to_numpy()[~null]
        if np.all(np.isfinite(present) & (present == np.floor(present)) & (np.abs(present) < 2**53)):
            out = values.astype("Int64").astype(str).astype(object)
        else:
            out = values.map(_canonical_id).astype(object)
        out[null] = None
        return out
    return values.map(_canonical_id).astype(object)


def _canonical_id(value):
    if _is_null(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating, decimal.Decimal)):
        try:
            return str(int(value)) if value == math.floor(value) else str(value)
        except (ValueError, OverflowError, decimal.InvalidOperation):  # nan, inf
            return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def _is_null(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA


#: The hash of a NULL (any fixed value: a string hashing to it by chance has odds of 2**-64).
_NULL_HASH = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0x100000001B3)


def _hash_values(values: pd.Series) -> np.ndarray:
    """One 64-bit hash per value (pandas' hash_array); NULLs get their own hash, distinct from ''."""
    from pandas.util import hash_array

    array = values.to_numpy()
    if array.dtype == object:
        null = pd.isna(array)
        if null.any():
            array = np.where(null, "", array)
        hashes = hash_array(array, categorize=False)
    else:
        null = pd.isna(array) if array.dtype.kind == "f" else np.zeros(len(array), dtype=bool)
        hashes = hash_array(array)
    hashes[null] = _NULL_HASH
    return hashes


def _combine(*hashes: np.ndarray) -> np.ndarray:
    """Row hashes of several columns' hashes (order-sensitive, wrapping uint64 arithmetic)."""
    combined = hashes[0].copy()
    for column in hashes[1:]:
        combined *= _MIX
        combined ^= column
    return combined


def _id_column(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """An item id column as canonical values (nullable Int64 when integral, else str) and their hashes.

    Integral ids stay numbers (hashing 1M ints is cheap, their strings are not), so
    ``12`` and ``12.0`` (a chunk with NULLs) are one id, like ``canonical_ids`` makes them.
    """
    values = values.reset_index(drop=True)
    if pd.api.types.is_integer_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("Int64"), hash_ints(values.to_numpy(dtype=np.int64), np.zeros(len(values), bool))
    if pd.api.types.is_float_dtype(values) or pd.api.types.infer_dtype(values, skipna=True) in ("integer", "floating",
                                                                                                 "mixed-integer-float"):
        numbers = pd.to_numeric(values, errors="coerce")
        null = numbers.isna().to_numpy()
        present = numbers.to_numpy(dtype=np.float64, na_value=np.nan)[~null]
        if (values.isna().to_numpy() == null).all() and np.all(
                np.isfinite(present) & (present == np.floor(present)) & (np.abs(present) < 2**63)):
            integers = numbers.astype("Int64")
            return integers, hash_ints(integers.to_numpy(dtype=np.int64, na_value=0), null)
    canonical = canonical_ids(values)
    return canonical, _hash_values(canonical)


def hash_ints(values: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Hashes of int64 values, NULLs (``null``) with their own hash."""
    from pandas.util import hash_array

    hashes = hash_array(values)
    hashes[null] = _NULL_HASH
    return hashes
