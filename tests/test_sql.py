"""The SQL adapter against SQLite (a temp file) and a real PostgreSQL server, and credential masking."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from conftest import mlflow_runs, run_cli
from ktt.data.flat_file import FlatFileAdapter
from ktt.data.sql import SQLAdapter, canonical_ids
from ktt.errors import KttError
from ktt.secrets import mask_error, mask_secrets, mask_text

PASSWORD = "s3cret-pw"  # the conftest server's

# id, parent_id, name: two roots, three levels; "Accessories" names a class under two parents.
CLASSES = [
    (1, None, "Food"), (2, 1, "Snacks"), (3, 1, "Drinks"), (4, 2, "Chips"), (5, 2, "Nuts"), (6, 3, "Tea"),
    (7, 1, "Accessories"), (8, 7, "Cups"),
    (10, None, "Home"), (11, 10, "Garden"), (12, 11, "Hose"), (13, 11, "Tools"), (14, 10, "Accessories"),
    (15, 14, "Hooks"),
]
WORDS = {4: "salted potato chips", 5: "roasted peanuts", 6: "green tea bags", 8: "paper cups",
         12: "garden hose 20m", 13: "steel rake", 15: "wall hooks"}
LEAVES = list(WORDS)
# id, text, class_id; inserted in a shuffled order, read back ORDER BY id.
ITEMS = [(i, f"{WORDS[LEAVES[i % len(LEAVES)]]} no. {i}", LEAVES[i % len(LEAVES)]) for i in range(1, 71)]
ITEMS = ITEMS[1::2] + ITEMS[::2]


class Database:
    """One test's tables: a SQLite file, or a fresh schema of the session's PostgreSQL server."""

    def __init__(self, url: str, schema: str | None):
        self.url = url
        self.schema = schema
        self.engine = sa.create_engine(url)

    def table(self, name: str) -> str:
        return f"{self.schema}.{name}" if self.schema else name

    def load(self, items=ITEMS, classes=CLASSES, names: bool = True) -> None:
        """(Re)create the ``items`` and ``classes`` tables with these rows (no constraints)."""
        metadata = sa.MetaData(schema=self.schema)
        id_type = sa.Text if any(isinstance(c[0], str) for c in classes) else sa.Integer
        item_table = sa.Table("items", metadata, sa.Column("id", sa.Integer), sa.Column("text", sa.Text),
                              sa.Column("class_id", id_type))
        class_columns = [sa.Column("id", id_type), sa.Column("parent_id", id_type)]
        if names:
            class_columns.append(sa.Column("name", sa.Text))
        class_table = sa.Table("classes", metadata, *class_columns)
        with self.engine.begin() as connection:
            metadata.drop_all(connection)
            metadata.create_all(connection)
            connection.execute(item_table.insert(), [dict(zip(("id", "text", "class_id"), row)) for row in items])
            keys = ("id", "parent_id", "name") if names else ("id", "parent_id")
            connection.execute(class_table.insert(), [dict(zip(keys, row[: len(keys)])) for row in classes])

    def execute(self, statement: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(sa.text(statement.format(items=self.table("items"), classes=self.table("classes"))))

    def adapter(self, **kwargs) -> SQLAdapter:
        settings = {
            "url": self.url,
            "name": "shop",
            "items_query": f"SELECT id, text, class_id FROM {self.table('items')} ORDER BY id",
            "classes_query": f"SELECT * FROM {self.table('classes')} ORDER BY id",
        }
        return SQLAdapter(**(settings | kwargs))


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'shop.db'}", None)
        yield database
        database.engine.dispose()
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    database = Database(url, schema)
    with database.engine.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    yield database
    with database.engine.begin() as connection:
        connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    database.engine.dispose()


def all_splits(dataset) -> dict[str, pd.DataFrame]:
    return {name: dataset.split(name) for name in ("train", "val", "test")}


# ----------------------------------------------------------------------------- the tree
def test_walks_the_tree_and_cuts_to_depth(db, tmp_path):
    db.load()
    frame = db.adapter().read()
    assert frame["text"].tolist() == [text for _, text, _ in sorted(ITEMS)]  # the query's order
    by_text = dict(zip(frame["text"], frame["path"]))
    assert by_text["salted potato chips no. 7"] == ("Food", "Snacks", "Chips")
    assert by_text["wall hooks no. 6"] == ("Home", "Accessories", "Hooks")

    full = db.adapter(depth=3).adapt(tmp_path / "cache")
    assert full.hierarchy.level_sizes == [2, 5, 7]
    assert "Food > Accessories" in full.hierarchy.classes and "Home > Accessories" in full.hierarchy.classes
    assert full.hierarchy.path_names("Hooks") == ["Home", "Home > Accessories", "Hooks"]
    assert db.adapter().adapt(tmp_path / "cache").hierarchy == full.hierarchy  # depth=null: every item on level 3
    assert db.adapter(depth=2).adapt(tmp_path / "cache").hierarchy.level_sizes == [2, 5]
    assert db.adapter(depth=1).adapt(tmp_path / "cache").hierarchy.classes == ["Food", "Home"]


def test_labels_are_ids_without_a_name_column(db, tmp_path):
    db.load(names=False)
    frame = db.adapter().read()
    assert frame["path"][0] == ("1", "2", "5")  # item 1 is in Nuts; ids as strings, never "5.0"
    named = db.adapter(name_col="label")  # a name column the query does not return: ids too
    assert named.read()["path"][0] == ("1", "2", "5")
    db.load()
    assert db.adapter(name_col=None).read()["path"][0] == ("1", "2", "5")


def test_text_ids_work_too(db, tmp_path):
    classes = [("FOOD", None), ("SNK", "FOOD"), ("CHP", "SNK"), ("HOME", None), ("GRD", "HOME"), ("HOS", "GRD")]
    items = [(i, f"thing {i}", ["CHP", "HOS", None][i % 3]) for i in range(1, 31)]
    db.load(items=items, classes=classes, names=False)
    dataset = db.adapter().adapt(tmp_path / "cache")
    assert dataset.hierarchy.path_names("CHP") == ["FOOD", "SNK", "CHP"]
    assert dataset.meta["rows_dropped"]["missing or empty label"] == 10


def test_items_above_the_depth_are_dropped_and_counted(db, tmp_path, caplog):
    items = ITEMS + [(101, "any snack", 2), (102, "any food", 1), (103, "", 4), (104, "no class", None)]
    db.load(items=items)
    with caplog.at_level("WARNING"):
        dataset = db.adapter(depth=3).adapt(tmp_path / "cache")
    assert "Dropped 2 of 74 items whose class sits above depth=3" in caplog.text
    assert dataset.meta["rows_read"] == 74
    assert dataset.meta["rows_dropped"] == {"empty or missing text": 1, "missing or empty label": 3,
                                            "label path with an empty level": 0}
    assert sum(dataset.meta["sizes"].values()) == 70
    assert db.adapter(depth=2).adapt(tmp_path / "cache").meta["rows_dropped"]["missing or empty label"] == 2
    with pytest.raises(KttError, match=r"^depth=4 is deeper than every item's class: the deepest item class "
                                        r"sits on level 3; use depth<=3$"):
        db.adapter(depth=4).adapt(tmp_path / "cache")
    ragged = db.adapter(depth=None).adapt(tmp_path / "cache")  # whole paths, of 1 to 3 levels
    assert sum(ragged.meta["sizes"].values()) == 72
    assert ragged.hierarchy.label_path("Food > <stop> > <stop>") == ["Food"]
    assert ragged.hierarchy.label_path("Snacks > <stop>") == ["Food", "Snacks"]


def test_a_split_column_of_the_items_query_is_used_as_given(db, tmp_path):
    db.load()
    fold = "CASE WHEN id % 10 = 0 THEN 'TEST' WHEN id % 10 = 1 THEN 'val' ELSE 'Train' END AS fold"
    query = f"SELECT id, text, class_id, {fold} FROM {db.table('items')} ORDER BY id"
    dataset = db.adapter(items_query=query, split_col="fold").adapt(tmp_path / "cache")
    assert dataset.meta["sizes"] == {"train": 56, "val": 7, "test": 7}
    assert all(text.endswith("0") for text in dataset.split("test")["text"])
    assert dataset.path != db.adapter(items_query=query).adapt(tmp_path / "cache").path
    with pytest.raises(KttError, match=r"column 'nope' not found in the result of items_query .*set dataset.split_col"):
        db.adapter(items_query=query, split_col="nope").adapt(tmp_path / "cache")
    only_train = query.replace("'TEST'", "'train'")
    with pytest.raises(KttError, match=r"^the test split of dataset 'shop' is empty \(given by dataset.split_col=fold"):
        db.adapter(items_query=only_train, split_col="fold").adapt(tmp_path / "cache")


BROKEN = [
    pytest.param(None, CLASSES + [(20, 99, "Lost")],
                 r"^class 20 has parent_id 99, which is not a class id of classes_query \(1 orphan class\(es\)\); "
                 r"a root class must have a NULL parent_id$", id="orphan"),
    pytest.param(None, CLASSES + [(30, 32, "A"), (31, 30, "B"), (32, 31, "C")],
                 r"^class 3[012] is its own ancestor \(parent links 3\d -> 3\d -> 3\d -> 3\d\); every class must "
                 r"lead up to a root with a NULL parent_id$", id="cycle"),
    pytest.param(None, CLASSES + [(40, 40, "Self")], r"^class 40 is its own ancestor \(parent links 40 -> 40\)",
                 id="self-parent"),
    pytest.param(None, CLASSES + [(4, 2, "Crisps")],
                 r"^classes_query returned the class id 4 more than once; class ids must be unique$",
                 id="duplicate-class-id"),
    pytest.param(ITEMS + [(7, "again", 4)], None,
                 r"^items_query returned the item id 7 more than once; item ids must be unique$",
                 id="duplicate-item-id"),
    pytest.param(ITEMS + [(200, "stray", 77)], None,
                 r"^item 200 has class_id 77, which is not a class id of classes_query", id="unknown-class"),
    pytest.param(None, CLASSES + [(9, 2, "Chips")],
                 r"^classes (4 and 9|9 and 4) are both named 'Chips' under the same parent", id="sibling-names"),
    pytest.param(None, CLASSES + [(9, 2, " ")], r"^class 9 has an empty name", id="blank-name"),
]


@pytest.mark.parametrize("items, classes, message", BROKEN)
def test_broken_data_is_a_one_line_error(db, tmp_path, items, classes, message):
    db.load(items=items or ITEMS, classes=classes or CLASSES)
    with pytest.raises(KttError, match=message) as error:
        db.adapter(depth=3).adapt(tmp_path / "cache")
    assert "\n" not in str(error.value)


def test_bad_columns_and_queries_are_one_line_errors(db, tmp_path):
    db.load()
    with pytest.raises(KttError, match=r"^column 'title' not found in the result of items_query "
                                        r"\(columns: id, text, class_id\); set dataset.text_col$"):
        db.adapter(text_col="title").adapt(tmp_path / "cache")
    with pytest.raises(KttError, match=r"^column 'parent' not found in the result of classes_query .*"
                                        r"set dataset.parent_col$"):
        db.adapter(parent_col="parent").adapt(tmp_path / "cache")
    with pytest.raises(KttError, match=r"^dataset.id_col and dataset.text_col name the same column 'id'; "
                                        r"give each its own column$"):
        db.adapter(text_col="id").adapt(tmp_path / "cache")
    with pytest.raises(KttError, match=r"^cannot run items_query on .*: .*nothere") as error:
        db.adapter(items_query="SELECT id, text, class_id FROM nothere").adapt(tmp_path / "cache")
    assert "\n" not in str(error.value) and PASSWORD not in str(error.value)
    # queries go through sqlalchemy.text(): '%' is written as is on every backend
    like = db.adapter(items_query=f"SELECT * FROM {db.table('items')} WHERE text LIKE '%chips%' ORDER BY id")
    assert set(like.read()["text"].str.split(" no.").str[0]) == {"salted potato chips"}


# ------------------------------------------------------------------------ chunks, cache
def test_chunked_reading_gives_the_same_result_as_one_chunk(db, tmp_path):
    # NULL class ids in the first rows: that chunk's class_id column comes back as floats
    items = [(-i, f"unlabelled {i}", None) for i in range(3)] + ITEMS
    db.load(items=items)
    small, whole = db.adapter(chunksize=4, depth=3), db.adapter(chunksize=100_000, depth=3)
    assert small.fingerprint() == whole.fingerprint()
    pd.testing.assert_frame_equal(small.read(), whole.read())
    a, b = small.adapt(tmp_path / "c1"), whole.adapt(tmp_path / "c2")
    assert a.path.name == b.path.name  # the same cache key
    for name, frame in all_splits(a).items():
        pd.testing.assert_frame_equal(frame, b.split(name))


def test_fingerprint_follows_the_data_and_the_cache_is_reused(db, tmp_path):
    db.load()
    cache = tmp_path / "cache"
    first = db.adapter().adapt(cache)
    mtime = (first.path / "train.parquet").stat().st_mtime_ns
    again = db.adapter().adapt(cache)
    assert again.path == first.path and (again.path / "train.parquet").stat().st_mtime_ns == mtime
    db.execute("UPDATE {items} SET text = 'roasted cashews no. 3' WHERE id = 3")
    changed_text = db.adapter().adapt(cache)
    assert changed_text.path != first.path
    db.execute("UPDATE {classes} SET name = 'Crisps' WHERE id = 4")
    changed_name = db.adapter().adapt(cache)
    assert changed_name.path not in (first.path, changed_text.path)
    assert "Crisps" in changed_name.hierarchy.classes
    meta = json.loads((changed_name.path / "meta.json").read_text())
    assert meta["source"].startswith("sha256:") and "url" not in json.dumps(meta["settings"])


def test_sqlite_and_postgresql_give_the_same_fingerprint_and_dataset(postgres_url, tmp_path):
    lite = Database(f"sqlite:///{tmp_path / 'shop.db'}", None)
    server = Database(postgres_url, f"t_{uuid.uuid4().hex[:12]}")
    with server.engine.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {server.schema}"))
    try:
        for database in (lite, server):
            database.load()
        a, b = lite.adapter(depth=2), server.adapter(depth=2)
        assert a.fingerprint() == b.fingerprint()
        from_lite, from_server = a.adapt(tmp_path / "lite"), b.adapt(tmp_path / "server")
        for name, frame in all_splits(from_lite).items():
            pd.testing.assert_frame_equal(frame, from_server.split(name))
        assert from_lite.hierarchy == from_server.hierarchy
        with server.engine.begin() as connection:
            connection.execute(sa.text(f"DELETE FROM {server.table('items')} WHERE id = 70"))
        assert server.adapter(depth=2).fingerprint() != a.fingerprint()
    finally:
        with server.engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {server.schema} CASCADE"))
        for database in (lite, server):
            database.engine.dispose()


def test_empty_queries_are_errors(db, tmp_path):
    db.load()
    with pytest.raises(KttError, match=r"^items_query returned no rows$"):
        db.adapter(items_query=f"SELECT * FROM {db.table('items')} WHERE id < 0").adapt(tmp_path / "cache")
    with pytest.raises(KttError, match=r"^classes_query returned no rows; it must return every class"):
        db.adapter(classes_query=f"SELECT * FROM {db.table('classes')} WHERE id < 0").adapt(tmp_path / "cache")


def test_the_config_takes_the_url_from_the_environment(monkeypatch):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from ktt.cli import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_module("ktt.conf", version_base="1.3"):
        assert compose("config", overrides=["dataset=sql"]).dataset.url == "sqlite:///ktt.db"
        monkeypatch.setenv("KTT_SQL_URL", "postgresql+psycopg://ktt:pw@db/shop")
        cfg = compose("config", overrides=["dataset=sql"])
        assert cfg.dataset.url == "postgresql+psycopg://ktt:pw@db/shop"
        assert cfg.dataset.progress is cfg.progress and cfg.dataset.seed == cfg.seed
    GlobalHydra.instance().clear()


def test_canonical_ids():
    assert canonical_ids(pd.Series([1, 2])).tolist() == ["1", "2"]
    assert canonical_ids(pd.Series([1.0, None, 3.0])).tolist() == ["1", None, "3"]
    assert canonical_ids(pd.Series(["a", None, 4, 5.0, 2.5])).tolist() == ["a", None, "4", "5", "2.5"]


# ------------------------------------------------------------------ SQL == flat file
def test_sql_and_flat_file_give_identical_datasets(db, tmp_path):
    items = ITEMS + [(101, "", 4), (102, "no class", None)]
    db.load(items=items)
    names = {cid: name for cid, _, name in CLASSES}
    parents = {cid: parent for cid, parent, _ in CLASSES}

    def path(class_id):
        labels = []
        while class_id is not None:
            labels.insert(0, names[class_id])
            class_id = parents[class_id]
        return " > ".join(labels)

    rows = sorted(items)  # the SQL query's ORDER BY id
    csv = tmp_path / "shop.csv"
    pd.DataFrame({"text": [t for _, t, _ in rows],
                  "category": [path(c) if c is not None else None for _, _, c in rows]}).to_csv(csv, index=False)
    settings = {"name": "shop", "depth": 2, "split": [0.7, 0.15, 0.15], "seed": 5}
    from_sql = db.adapter(**settings).adapt(tmp_path / "sql")
    from_file = FlatFileAdapter(path=str(csv), **settings).adapt(tmp_path / "file")
    for name, frame in all_splits(from_sql).items():
        pd.testing.assert_frame_equal(frame, from_file.split(name))
    assert (from_sql.path / "hierarchy.json").read_bytes() == (from_file.path / "hierarchy.json").read_bytes()
    assert from_sql.meta["rows_dropped"] == from_file.meta["rows_dropped"]


# --------------------------------------------------------------------------- secrets
def test_mask_text_hides_url_passwords():
    assert mask_text("postgresql+psycopg://ktt:s3cret-pw@127.0.0.1:5432/db") == "postgresql+psycopg://ktt:***@127.0.0.1:5432/db"
    # a multirun escapes the colons of an override
    assert mask_text(r"dataset.url=postgresql+psycopg\://ktt\:s3cret-pw@h\:5/db") == r"dataset.url=postgresql+psycopg\://ktt\:***@h\:5/db"
    assert mask_text("pg://u@h/db?sslmode=require&password=s3cret-pw") == "pg://u@h/db?sslmode=require&password=***"
    assert mask_text("sqlite:///ktt.db and https://hydra.cc, a@b.c") == "sqlite:///ktt.db and https://hydra.cc, a@b.c"
    nested = mask_secrets({"dataset": {"url": "mysql://root:pw@db/x", "depth": 3}, "tags": ["redis://:pw@h"]})
    assert nested == {"dataset": {"url": "mysql://root:***@db/x", "depth": 3}, "tags": ["redis://:***@h"]}
    assert mask_error(ValueError(f"first line with {PASSWORD} and pg://u:x@h\nsecond"), [PASSWORD]) == \
        "first line with *** and pg://u:***@h"


def test_connection_errors_do_not_show_the_password(postgres_url, tmp_path):
    wrong = postgres_url.replace(PASSWORD, "wrong-horse-pw")
    adapter = SQLAdapter(url=wrong, name="shop")
    assert "wrong-horse-pw" not in repr(adapter) and "ktt:***@" in repr(adapter)
    with pytest.raises(KttError, match=r"^cannot connect to postgresql\+psycopg://ktt:\*\*\*@127.0.0.1:\d+/postgres: "
                                        r"connection failed: .*password authentication failed") as error:
        adapter.adapt(tmp_path / "cache")
    assert "wrong-horse-pw" not in str(error.value)
    closed = postgres_url.rsplit(":", 1)[0] + ":1/postgres"
    with pytest.raises(KttError, match=r"ktt:\*\*\*@127.0.0.1:1/postgres: connection failed") as error:
        SQLAdapter(url=closed, name="shop").adapt(tmp_path / "cache")
    assert PASSWORD not in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(KttError, match=r"^cannot use url='nope://u:\*\*\*@h': Can't load plugin: sqlalchemy.dialects:nope$"):
        SQLAdapter(url="nope://u:s3cret-pw@h", name="shop").adapt(tmp_path / "cache")
    with pytest.raises(KttError, match=r"^invalid url='not a url' \(allowed: a SQLAlchemy URL such as sqlite:///ktt.db"):
        SQLAdapter(url="not a url", name="shop").adapt(tmp_path / "cache")
    with pytest.raises(KttError, match=r"^SQLite database .*missing.db does not exist; set dataset.url"):
        SQLAdapter(url=f"sqlite:///{tmp_path / 'missing.db'}", name="shop").adapt(tmp_path / "cache")
    assert not (tmp_path / "missing.db").exists()


@pytest.fixture(scope="module")
def cli_database(postgres_url):
    """Small items/classes tables in their own schema of the session's server, for CLI runs."""
    schema = f"cli_{uuid.uuid4().hex[:8]}"
    database = Database(postgres_url, schema)
    with database.engine.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    database.load()
    yield database
    with database.engine.begin() as connection:
        connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    database.engine.dispose()


@pytest.fixture(scope="module")
def cli_cwd(tmp_path_factory):
    return tmp_path_factory.mktemp("sql_cli")


def assert_nowhere(cwd: Path, *texts: str) -> None:
    """No file under ``cwd`` (Hydra outputs, job log, MLflow store and artifacts, cache) holds the password."""
    for path in cwd.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert PASSWORD.encode() not in content, f"the password is in {path}"
    for text in texts:
        assert PASSWORD not in text


def cli_args(database: Database, items_table: str = "items") -> list[str]:
    return ["dataset=sql", f"dataset.url={database.url}",
            f"dataset.items_query='SELECT id, text, class_id FROM {database.table(items_table)} ORDER BY id'",
            f"dataset.classes_query='SELECT * FROM {database.table('classes')} ORDER BY id'",
            "min_df=1", "plots=false", "progress=false"]


def test_cli_run_keeps_the_password_out_of_everything(cli_database, cli_cwd):
    result = run_cli(*cli_args(cli_database), cwd=cli_cwd)
    (run,) = mlflow_runs(cli_cwd)
    assert run.info.status == "FINISHED"
    masked = cli_database.url.replace(PASSWORD, "***")
    # MLflow params and tags
    assert run.data.params["dataset.url"] == masked
    assert int(run.data.params["data.train_size"]) == 56
    assert not [k for k, v in {**run.data.params, **run.data.tags}.items() if PASSWORD in v]
    # stdout/stderr (log lines name the masked URL)
    assert f"Read 70 items from {masked}" in result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    # the Hydra output files and the job log, in the job's output folder
    (hydra_dir,) = list(cli_cwd.glob("outputs/*/*/.hydra"))
    for name in ("config.yaml", "overrides.yaml", "hydra.yaml"):
        text = (hydra_dir / name).read_text()
        assert masked in text and PASSWORD not in text, name
    assert PASSWORD not in (hydra_dir.parent / "ktt.log").read_text()
    # the run's hydra/ artifacts
    import mlflow

    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="hydra",
                                                tracking_uri=f"sqlite:///{cli_cwd / 'mlflow.db'}",
                                                dst_path=str(cli_cwd / "downloaded"))
    assert {p.name for p in Path(local).iterdir()} >= {"config.yaml", "overrides.yaml", "hydra.yaml"}
    assert all(PASSWORD not in p.read_text() for p in Path(local).iterdir())
    # the cache (meta.json) and anything else on disk, MLflow's database included
    (meta,) = list(cli_cwd.glob(".ktt/cache/sql/*/meta.json"))
    assert PASSWORD not in meta.read_text()
    assert_nowhere(cli_cwd)


def test_failing_multirun_keeps_the_password_out_of_everything(cli_database, cli_cwd):
    # a multirun logs each job's overrides, writes multirun.yaml, and reports the failed job with its overrides
    result = run_cli("-m", *cli_args(cli_database, items_table="nothere"), cwd=cli_cwd, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "ktt\\:***@" in output  # the launcher's line of the job's (escaped) overrides
    assert "cannot run items_query on postgresql+psycopg://ktt:***@" in output and "nothere" in output
    errors = [r.data.tags.get("ktt.error", "") for r in mlflow_runs(cli_cwd) if r.info.status == "FAILED"]
    assert any(e.startswith("cannot run items_query on postgresql+psycopg://ktt:***@") for e in errors), errors
    (multirun_yaml,) = list(cli_cwd.glob("multirun/*/*/multirun.yaml"))
    assert "ktt:***@" in multirun_yaml.read_text()
    (job_overrides,) = list(cli_cwd.glob("multirun/*/*/0/.hydra/overrides.yaml"))
    assert "ktt\\:***@" in job_overrides.read_text()
    assert_nowhere(cli_cwd, output)
