"""Everything ktt logs to and reads from MLflow: this package is the only code that calls MLflow.

One run per job, in an experiment named after the dataset. The runner, the
exporters, the batch scorer and the sweeps call these functions; model code never
talks to MLflow. This module logs a training run (params, metrics, plots,
checkpoint, pyfunc model, reference set, Hydra files) and loads a run's model;
:mod:`ktt.tracking.runs` reads and extends a past run by id (exports);
:mod:`ktt.tracking.sweep` writes a sweep's parent run, its jobs' failures and its summary;
:mod:`ktt.tracking.store` picks and prepares the tracking store (a server, a
database, a local SQLite file safe for several processes); :mod:`ktt.tracking.registry`
registers a run's model in the Model Registry and turns ``models:/<name>/<version>``
or ``models:/<name>@<alias>`` into the run behind it; :mod:`ktt.tracking.pyfunc` is
the MLflow pyfunc flavour of a ktt model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import subprocess
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Iterator

import mlflow
from mlflow.entities import RunStatus
from omegaconf import DictConfig, OmegaConf

from ktt.errors import KttError, error_line
from ktt.tracking.registry import check_version_sha256, register_model, resolve_run
from ktt.tracking.runs import (CHECKPOINT_DIR, CHECKPOINT_FILE, PRUNED_TAG, SHA256_TAG, checkpoint_uri, client,
                               download_checkpoint, get_run, set_tags)
from ktt.tracking.store import configure, experiment_id

log = logging.getLogger(__name__)

ERROR_TAG = "ktt.error"
#: Packages whose versions every run records.
TRACKED_PACKAGES = ("ktt", "scikit-learn", "numpy", "scipy", "pandas", "nltk", "joblib", "mlflow",
                    "hydra-core", "omegaconf", "pyarrow")
#: What a logged pyfunc model needs to run (its ``requirements.txt``).
RUNTIME_PACKAGES = ("mlflow", "scikit-learn", "numpy", "scipy", "pandas", "pyarrow", "nltk", "joblib",
                    "hydra-core", "omegaconf")


@contextlib.contextmanager
def start_run(experiment: str, run_name: str | None = None, **kwargs) -> Iterator[mlflow.ActiveRun]:
    """Start a run that ends FINISHED only if the body completes.

    Any exception ends it FAILED, with the error's line (:func:`ktt.errors.error_line`:
    the user's cause and fix, or the type and first line of a bug) as the ``ktt.error``
    tag; a KeyboardInterrupt ends it KILLED. The exception is re-raised (even if
    the store cannot record the end: the first error is the one to report).
    """
    run = mlflow.start_run(experiment_id=experiment_id(experiment), run_name=run_name, **kwargs)
    try:
        yield run
    except BaseException as error:
        killed = isinstance(error, KeyboardInterrupt)
        try:
            mlflow.set_tag(ERROR_TAG, "interrupted" if killed else error_line(error)[:5000])
        except Exception as tag_error:  # noqa: BLE001 - still end the run, still raise the first error
            log.warning("could not record the error in run %s: %s", run.info.run_id, error_line(tag_error))
        try:
            mlflow.end_run(RunStatus.to_string(RunStatus.KILLED if killed else RunStatus.FAILED))
        except Exception as end_error:  # noqa: BLE001
            log.warning("could not end run %s: %s", run.info.run_id, error_line(end_error))
        raise
    else:
        mlflow.end_run(RunStatus.to_string(RunStatus.FINISHED))


def flatten(config: dict, prefix: str = "") -> dict[str, str]:
    """Nested dict to ``a.b.c`` keys with string values (MLflow params)."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = str(value)[:6000]
    return flat


def log_config(cfg: DictConfig) -> None:
    """The resolved config as flat params (the ``hydra`` node excluded; URL passwords masked)."""
    from ktt.secrets import mask_secrets

    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("hydra", None)
    mlflow.log_params(flatten(mask_secrets(resolved)))


def log_environment() -> None:
    """Package versions, Python, and the project's git commit, as tags."""
    tags = {"ktt.python": platform.python_version()}
    for package in TRACKED_PACKAGES:
        try:
            tags[f"ktt.version.{package}"] = version(package)
        except PackageNotFoundError:
            pass
    commit, dirty = git_state(Path(__file__).resolve().parent)
    if commit:
        tags["ktt.git_commit"] = commit
        tags["ktt.git_dirty"] = str(dirty).lower()
    mlflow.set_tags(tags)


def git_state(directory: Path) -> tuple[str | None, bool]:
    """The commit of the git checkout holding ``directory`` and whether it has changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True,
                                text=True, timeout=10)
        if commit.returncode:
            return None, False
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=directory,
                                capture_output=True, text=True, timeout=10)
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, False


def log_dataset(dataset) -> None:
    """Dataset fingerprint, cache folder, split sizes and dropped rows; the adapter's warnings as the tag
    ``data.warnings`` (one per line)."""
    meta = dataset.meta
    params = {
        "data.fingerprint": meta["source"],
        "data.cache_dir": str(dataset.path),
        "data.level_sizes": "/".join(map(str, meta["level_sizes"])),
        "data.rows_read": meta["rows_read"],
    }
    params.update({f"data.{name}_size": size for name, size in meta["sizes"].items()})
    params.update({f"data.dropped.{reason.replace(' ', '_')}": n for reason, n in meta["rows_dropped"].items()})
    mlflow.log_params(params)
    if meta.get("warnings"):
        mlflow.set_tag("data.warnings", "\n".join(meta["warnings"]))
    mlflow.log_artifact(str(dataset.path / "hierarchy.json"))


def log_model(model, hierarchy) -> str:
    """The joblib checkpoint (with its sha256, also as a tag) and ``hierarchy.json``.

    Returns
    -------
    str
        The checkpoint's sha256.
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / CHECKPOINT_DIR
        digest = model.save(folder / CHECKPOINT_FILE)
        hierarchy.to_json(folder / "hierarchy.json")
        mlflow.log_artifacts(str(folder), CHECKPOINT_DIR)
        log_pyfunc(folder)
    mlflow.set_tag(SHA256_TAG, digest)
    return digest


def log_pyfunc(checkpoint_folder: Path) -> None:
    """The same checkpoint as an MLflow pyfunc model named ``model``, with ktt's code and pinned requirements.

    The code is ``ktt`` and ``ktt_models``, copied under those names (:func:`ktt.files.copy_code`).
    """
    from ktt.files import copy_code
    from ktt.tracking.pyfunc import KttPythonModel

    requirements = []
    for package in RUNTIME_PACKAGES:
        try:
            requirements.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pass
    with tempfile.TemporaryDirectory() as code:
        mlflow.pyfunc.log_model(
            name="model",
            python_model=KttPythonModel(),
            artifacts={"checkpoint": str(checkpoint_folder)},
            code_paths=[str(path) for path in copy_code(Path(code))],
            pip_requirements=requirements,
        )


def log_hydra_files(output_dir: str | Path) -> None:
    """The job's ``.hydra`` folder (config, overrides, hydra settings)."""
    hydra_dir = Path(output_dir) / ".hydra"
    if hydra_dir.is_dir():
        mlflow.log_artifacts(str(hydra_dir), "hydra")


def log_frame(frame, artifact_file: str) -> None:
    """A DataFrame as a Parquet artifact."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(artifact_file).parent) if Path(artifact_file).parent.name else None)


def log_params(params: dict) -> None:
    """Log parameters the job decided while running (e.g. fitted stop thresholds) to the active run."""
    mlflow.log_params(params)


def log_metrics(metrics: dict[str, float]) -> None:
    """Metrics of the active run."""
    mlflow.log_metrics(metrics)


def log_plots(folder: str | Path) -> None:
    """The plots drawn in ``folder`` (:class:`ktt.plots.BackgroundPlots`), as artifacts ``plots/``."""
    mlflow.log_artifacts(str(folder), "plots")


def load_model(reference: str, tracking_uri: str | None = None):
    """Download a run's checkpoint and load it, verified against the run's recorded sha256.

    Parameters
    ----------
    reference : str
        An MLflow run id (``runs:/<id>`` is accepted too), or a registered version:
        ``models:/<name>/<version>`` or ``models:/<name>@<alias>`` (the run that logged
        it; its sha256 must also be the version's).
    tracking_uri : str, optional
        The tracking store; defaults to MLflow's current one.

    Returns
    -------
    ktt.model.Model

    Examples
    --------
    >>> model = load_model("models:/tfidf_lsgd-icd10cm@champion")  # doctest: +SKIP
    """
    from ktt.model import Model

    store = client(tracking_uri)
    run_id = resolve_run(reference, store)
    run = store.get_run(run_id)
    expected = run.data.tags.get(SHA256_TAG)
    if expected is None:
        raise KttError(f"run {run_id} has no recorded checkpoint (status {run.info.status})")
    if PRUNED_TAG in run.data.tags:
        raise KttError(f"run {run_id} has no model files any more: its sweep deleted them "
                       f"({run.data.tags[PRUNED_TAG]}); run its config again, or sweep with keep_models=all")
    check_version_sha256(store, reference, expected)
    local = download_checkpoint(run_id, tracking_uri=store.tracking_uri)
    try:
        return Model.from_checkpoint(local, sha256=expected)
    except KttError as error:  # name the run's artifact, not the download's temporary copy
        raise KttError(str(error).replace(str(local), checkpoint_uri(run_id))) from None


def ui_hint(run) -> str:
    """How to open a run in the MLflow UI."""
    uri = mlflow.get_tracking_uri()
    default = f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    command = "mlflow ui" if uri in ("sqlite:///mlflow.db", default) else f"mlflow ui --backend-store-uri {uri}"
    return (f"run {run.info.run_id} (experiment {run.info.experiment_id}); open it with `{command}` and "
            f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}")
