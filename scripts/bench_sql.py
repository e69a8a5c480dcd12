"""Benchmark the SQL adapter on a generated table: rows/s of read() and adapt(), against bare pandas.read_sql.

Generates ``--rows`` items over a 3-level tree (``--fanout`` children per class:
10 gives 10 / 100 / 1,000 classes) in SQLite (a temp file) and in PostgreSQL (a
throwaway server started from Debian's binaries, as the tests' fixture does),
then times, in the same run and on the same query:

- ``pandas.read_sql``: one bare call of the items query (the baseline), and the
  same with ``chunksize`` (the adapter's way of reading);
- ``SQLAdapter.read()``: both queries, the tree walk, the fingerprint, the label paths;
- ``SQLAdapter.adapt()``: all of it plus cleaning, the split, the hierarchy and the
  Parquet files (a fresh cache), and again with the cache warm.

Usage::

    .venv/bin/python scripts/bench_sql.py                      # 1M rows, sqlite and postgresql
    .venv/bin/python scripts/bench_sql.py --rows 200000 --backends sqlite
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ktt.data.sql import SQLAdapter

ITEMS_QUERY = "SELECT id, text, class_id FROM items ORDER BY id"
CLASSES_QUERY = "SELECT * FROM classes ORDER BY id"


def make_tree(fanout: int) -> pd.DataFrame:
    """Classes of a 3-level tree: id, parent_id (None for roots), name."""
    rows, next_id = [], 1
    level = [None]
    for depth in range(3):
        new_level = []
        for parent in level:
            for k in range(fanout):
                rows.append((next_id, parent, f"L{depth + 1}-{next_id}"))
                new_level.append(next_id)
                next_id += 1
        level = new_level
    return pd.DataFrame(rows, columns=["id", "parent_id", "name"]).astype({"parent_id": "Int64"})


def make_items(n: int, leaves: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """``n`` items with 6-word texts, each in a random leaf class."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{i}" for i in range(5000)], dtype=object)
    words = vocabulary[rng.integers(0, len(vocabulary), size=(n, 6))]
    texts = [" ".join(row) for row in words]
    return pd.DataFrame({"id": np.arange(1, n + 1), "text": texts, "class_id": rng.choice(leaves, size=n)})


def load_sqlite(path: Path, classes: pd.DataFrame, items: pd.DataFrame) -> str:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE classes (id INTEGER PRIMARY KEY, parent_id INTEGER, name TEXT)")
        connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, text TEXT, class_id INTEGER)")
        connection.executemany("INSERT INTO classes VALUES (?, ?, ?)",
                               [(int(i), None if pd.isna(p) else int(p), n) for i, p, n in classes.itertuples(index=False)])
        connection.executemany("INSERT INTO items VALUES (?, ?, ?)",
                               zip(items["id"].tolist(), items["text"].tolist(), items["class_id"].tolist()))
    return f"sqlite:///{path}"


def load_postgres(url: str, classes: pd.DataFrame, items: pd.DataFrame) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE classes (id INTEGER PRIMARY KEY, parent_id INTEGER, name TEXT)")
        connection.exec_driver_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, text TEXT, class_id INTEGER)")
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy("COPY classes (id, parent_id, name) FROM STDIN") as copy:
            for i, p, n in classes.itertuples(index=False):
                copy.write_row((int(i), None if pd.isna(p) else int(p), n))
        with cursor.copy("COPY items (id, text, class_id) FROM STDIN") as copy:
            for row in zip(items["id"].tolist(), items["text"].tolist(), items["class_id"].tolist()):
                copy.write_row(row)
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()


def postgres_server():
    """A throwaway PostgreSQL server on 127.0.0.1 (user ktt); yields its SQLAlchemy URL."""
    from ktt.testing import postgres_server as server

    try:
        return server(password="bench-pw")
    except FileNotFoundError as error:
        raise SystemExit(str(error)) from None


def timed(function, repeat: int) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench(url: str, n_rows: int, chunksize: int, repeat: int, work: Path) -> list[dict]:
    def bare():
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            frame = pd.read_sql(sa.text(ITEMS_QUERY), connection)
        engine.dispose()
        return frame

    def bare_chunked():
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            streaming = connection.execution_options(stream_results=True, max_row_buffer=chunksize)
            frame = pd.concat(pd.read_sql(sa.text(ITEMS_QUERY), streaming, chunksize=chunksize), ignore_index=True)
        engine.dispose()
        return frame

    def adapter():
        return SQLAdapter(url, items_query=ITEMS_QUERY, classes_query=CLASSES_QUERY, name="bench", depth=3,
                          chunksize=chunksize)

    caches = iter(range(10**6))

    def adapt_fresh():
        return adapter().adapt(work / f"cache-{next(caches)}")

    warm_cache = work / "cache-warm"
    results = {}
    results["pandas.read_sql (one call)"], frame = timed(bare, repeat)
    assert len(frame) == n_rows
    results["pandas.read_sql (chunksize)"], _ = timed(bare_chunked, repeat)
    results["SQLAdapter.read()"], frame = timed(lambda: adapter().read(), repeat)
    assert len(frame) == n_rows
    results["SQLAdapter.adapt() (fresh cache)"], dataset = timed(adapt_fresh, repeat)
    adapter().adapt(warm_cache)
    results["SQLAdapter.adapt() (cache hit)"], _ = timed(lambda: adapter().adapt(warm_cache), repeat)
    baseline = results["pandas.read_sql (one call)"]
    return [{"step": step, "seconds": round(seconds, 2), "rows/s": round(n_rows / seconds),
             "x bare read_sql": round(seconds / baseline, 2)} for step, seconds in results.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--fanout", type=int, default=10, help="children per class (3 levels)")
    parser.add_argument("--chunksize", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=1, help="best of this many timings")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    classes = make_tree(args.fanout)
    leaves = classes["id"].to_numpy()[-args.fanout**3:]
    start = time.perf_counter()
    items = make_items(args.rows, leaves)
    print(f"generated {args.rows:,} items over {len(classes):,} classes in {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory(prefix="ktt-bench-sql-") as tmp:
        work = Path(tmp)
        for backend in args.backends:
            start = time.perf_counter()
            if backend == "sqlite":
                url = load_sqlite(work / "bench.db", classes, items)
                print(f"\n== sqlite ({time.perf_counter() - start:.1f} s to load)")
                table = bench(url, args.rows, args.chunksize, args.repeat, work / "sqlite")
            else:
                with postgres_server() as url:
                    load_postgres(url, classes, items)
                    print(f"\n== postgresql ({time.perf_counter() - start:.1f} s to start and load)")
                    table = bench(url, args.rows, args.chunksize, args.repeat, work / "postgresql")
            print(pd.DataFrame(table).to_string(index=False))


if __name__ == "__main__":
    main()
