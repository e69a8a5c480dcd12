"""The tracking store: which one, whether it answers, and a local one made safe for several processes.

A team points every run at one MLflow tracking server (``tracking.uri=http://mlflow:5000``,
backed by a database); alone, MLflow's default is ``sqlite:///mlflow.db`` in the cwd.

:func:`configure` is the one door: it sets the URI, fails in seconds (one line) if a
server or database does not answer, and prepares a local SQLite store under a file lock.
MLflow creates a fresh SQLite store's schema the first time a process opens it, without a
lock: several ``python -m ktt`` started at the same moment on a missing ``mlflow.db`` race
on it (``table latest_metrics already exists``, ``duplicate column name``, alembic errors),
and two that create the same experiment at once can put a run in the ``Default``
experiment. Here one process at a time creates the schema (:func:`prepare_sqlite`) and
the experiment (:func:`experiment_id`); the others wait for it, then find both made.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterator

import mlflow

from ktt.errors import KttError

log = logging.getLogger(__name__)

#: Seconds to wait for a tracking server or database before giving up.
CONNECT_TIMEOUT_S = 10
#: Seconds a process waits for another to finish preparing the same SQLite store.
LOCK_TIMEOUT_S = 600
SQLITE_PREFIX = "sqlite:///"
#: The lock file (in the temporary folder, one per user) that one process at a time holds to prepare a local store.
LOCK_FILE = f"ktt-mlflow-sqlite-{os.getuid() if hasattr(os, 'getuid') else 0}.lock"


def configure(uri: str | None) -> None:
    """Point MLflow at ``uri`` (None keeps MLflow's default: ``sqlite:///mlflow.db`` in the cwd).

    A tracking server or database that does not answer fails here, in seconds,
    rather than after MLflow's retries (minutes). A local SQLite store is created
    (schema and all) under a file lock, so processes started together do not race.

    Raises
    ------
    KttError
        If the server or database cannot be reached.
    """
    if uri:
        mlflow.set_tracking_uri(uri)
    resolved = current_uri()
    check_reachable(resolved)
    prepare_sqlite(resolved)


def current_uri() -> str:
    """The tracking store MLflow uses now: the one :func:`configure` set, or MLflow's default."""
    return mlflow.get_tracking_uri()


def check_reachable(uri: str) -> None:
    """Connect once to an ``http(s)://`` tracking server or a database store (not SQLite); raise if it fails.

    A server answers ``GET /health`` with 200; one that answers with another status
    (a proxy's 403, a 502 of a server still starting) refuses, and fails here too.
    """
    from ktt.secrets import mask_error, mask_text

    scheme = uri.split(":", 1)[0].lower() if "://" in uri else ""
    if scheme in ("http", "https"):
        import requests

        try:
            response = requests.get(uri.rstrip("/") + "/health", timeout=CONNECT_TIMEOUT_S)
        except requests.RequestException as error:
            reason = "timed out" if isinstance(error, requests.Timeout) else "connection refused or failed"
            raise KttError(f"cannot reach the MLflow tracking server {mask_text(uri)} ({reason}); start it "
                           "(mlflow server) or fix tracking.uri") from None
        if response.status_code != 200:
            raise KttError(f"the MLflow tracking server {mask_text(uri)} refused the connection (GET /health: HTTP "
                           f"{response.status_code} {response.reason}); check the server and tracking.uri")
    elif scheme.split("+")[0] in ("postgresql", "mysql", "mssql"):
        import sqlalchemy

        timeout = {"postgresql": {"connect_timeout": CONNECT_TIMEOUT_S},
                   "mysql": {"connect_timeout": CONNECT_TIMEOUT_S}}.get(scheme.split("+")[0], {})
        try:
            engine = sqlalchemy.create_engine(uri, connect_args=timeout)
            try:
                with engine.connect():
                    pass
            finally:
                engine.dispose()
        except ImportError as error:
            raise KttError(f"tracking.uri={mask_text(uri)!r} needs a database driver that is not installed "
                           f"({error.name or error})") from None
        except sqlalchemy.exc.SQLAlchemyError as error:
            raise KttError(f"cannot connect to the MLflow tracking database {mask_text(uri)}: {mask_error(error)}; "
                           "check that it runs and tracking.uri") from None


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, absolute (None for other stores and in-memory SQLite)."""
    if not uri.startswith(SQLITE_PREFIX):
        return None
    path = uri[len(SQLITE_PREFIX):].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(os.path.abspath(path))


@contextlib.contextmanager
def store_lock(uri: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on a local SQLite store (a no-op for servers and other databases).

    One lock file in the temporary folder serves every SQLite store of the user
    (not one beside each database: nothing is added to the user's folders, and no lock
    files pile up); it is held for the seconds it takes to create a schema or an
    experiment. SQLite over a network filesystem is not supported by MLflow anyway.

    Parameters
    ----------
    uri : str, optional
        The tracking URI; default: MLflow's current one.
    """
    path = sqlite_path(uri or current_uri())
    if path is None:
        yield
        return
    from filelock import FileLock, Timeout

    lock = FileLock(Path(tempfile.gettempdir()) / LOCK_FILE)
    try:
        lock.acquire(timeout=LOCK_TIMEOUT_S)
    except Timeout:
        raise KttError(f"another process has held the MLflow store {path} for {LOCK_TIMEOUT_S} s; "
                       f"check for a stuck process (its lock: {lock.lock_file})") from None
    try:
        yield
    finally:
        lock.release()


def prepare_sqlite(uri: str) -> None:
    """Create a local SQLite store's schema (tracking and model registry) once, under :func:`store_lock`.

    Opening the stores through a client here creates any missing table and leaves the
    opened stores in MLflow's cache, so the run that follows does not open them again.
    A store that exists already is only opened.
    """
    if sqlite_path(uri) is None:
        return
    with store_lock(uri):
        client = mlflow.MlflowClient(uri)  # may open the store already: under the lock too
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)


def experiment_id(name: str) -> str:
    """The id of experiment ``name`` in the current store, created if new (under :func:`store_lock`).

    When two processes create the same experiment at once, MLflow's ``set_experiment``
    returns the other's without making it active; passing its id to ``start_run``
    holds either way.
    """
    with store_lock():
        return mlflow.set_experiment(name).experiment_id
