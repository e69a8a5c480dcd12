"""Shared fixtures: small real data, an isolated MLflow store, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ktt.testing import free_port, postgres_bin_dir, postgres_server  # noqa: F401  (free_port: for the tests)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/data is not beside this checkout)")
    return path


@pytest.fixture(scope="session")
def icd_sample(tmp_path_factory) -> Path:
    """About 3,000 real ICD-10-CM rows from the first 3 chapters, as a CSV (made from the bundled package)."""
    from ktt.data.icd10cm import ICD10CMAdapter

    frame = ICD10CMAdapter(name="icd10cm").read()
    chapters = frame["path"].map(lambda p: p[0])
    keep = chapters.isin(chapters.unique()[:3])
    frame = frame[keep].sample(n=3000, random_state=0).sort_index()
    path = tmp_path_factory.mktemp("data") / "icd_sample.csv"
    pd.DataFrame({"text": frame["text"], "category": frame["path"].map(" > ".join)}).to_csv(path, index=False)
    return path


def cli_env(env: dict | None = None) -> dict[str, str]:
    """The environment of a CLI started by a test: no tracking URI or BentoML home leaks in from other tests."""
    full_env = {**os.environ, "KTT_SHARED_DATA": str(SHARED_DATA), "BENTOML_DO_NOT_TRACK": "True", **(env or {})}
    full_env.pop("MLFLOW_TRACKING_URI", None)
    full_env.pop("BENTOML_HOME", None)
    return full_env


def run_cli(*args: str, cwd: Path, check: bool = True, env: dict | None = None, timeout: int = 600,
            module: str = "ktt"):
    """Run ``python -m <module>`` (default ``ktt``) in ``cwd``, so its MLflow store and outputs stay there."""
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                            env=cli_env(env), timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{module} {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def mlflow_client(cwd: Path):
    """A client of the default sqlite store that ``python -m ktt`` creates in ``cwd``."""
    import mlflow

    return mlflow.MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")


def mlflow_runs(cwd: Path) -> list:
    """Every run of the default store in ``cwd``, newest first."""
    client = mlflow_client(cwd)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, order_by=["attributes.start_time DESC"])


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on 127.0.0.1 for this test session (Debian's binaries).

    Yields a SQLAlchemy URL with a password (user ``ktt``, password ``s3cret-pw``,
    database ``postgres``). Skips if PostgreSQL is not installed.
    """
    if postgres_bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (bash scripts/setup.sh --dev installs it as root)")
    with postgres_server(password="s3cret-pw") as url:
        yield url


def node_classifiers(model, train) -> tuple[list, list]:
    """``(tasks, classifiers)`` of a fitted hierarchical model's parent nodes, fitted again as scikit-learn objects.

    The same seed and the very training matrix (with the leaf names, where the model used them) give the same fits, so each node's own
    ``predict_proba`` / ``decision_function`` can be asked (the model keeps only the weights).
    """
    from sklearn.base import clone

    from ktt.hierarchical import leaf_codes, parent_tasks
    from ktt.label_names import with_label_names

    texts, targets, _ = with_label_names(model.label_names_, model.hierarchy, *train)  # the rows it was fitted on
    features = clone(model.features_).fit_transform(texts)
    tasks = parent_tasks(model.hierarchy, leaf_codes(model.hierarchy, targets))
    classifiers = [model._new_classifier(n_jobs=1).fit(features[task.rows], task.labels) if len(task.seen) >= 2
                   else None for task in tasks]
    return tasks, classifiers


def default_sigint() -> None:
    """``preexec_fn`` for a child a test will Ctrl-C: Python keeps SIGINT ignored if it starts ignored
    (as under ``nohup cmd &`` in a non-interactive shell), so the child gets the default disposition."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
