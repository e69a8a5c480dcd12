"""A past run, by id: what the exporters and the batch scorer read from it and add to it.

Training logs into the active run (:mod:`ktt.tracking`); these functions work on
any run through an MLflow client, so that ``python -m ktt.export`` and
``python -m ktt.predict`` can read and extend runs that ended long ago.
"""

from __future__ import annotations

from pathlib import Path

import mlflow

from ktt.errors import KttError

CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_FILE = "model.joblib"
SHA256_TAG = "ktt.checkpoint_sha256"
#: On a sweep job whose model files were deleted (``keep_models=best``): why.
PRUNED_TAG = "ktt.models_deleted"
REFERENCE_SET = "reference/reference_set.parquet"


def client(tracking_uri: str | None = None) -> mlflow.MlflowClient:
    """A client of ``tracking_uri`` (default: the store :func:`ktt.tracking.configure` picked)."""
    return mlflow.MlflowClient(tracking_uri or mlflow.get_tracking_uri())


def get_run(run_id: str, tracking_uri: str | None = None):
    """The run (``info``, ``data.params``, ``data.tags``, ``data.metrics``)."""
    return client(tracking_uri).get_run(run_id)


def experiment_name(run, tracking_uri: str | None = None) -> str:
    """The name of the run's experiment."""
    return client(tracking_uri).get_experiment(run.info.experiment_id).name


def checkpoint_uri(run_id: str) -> str:
    """The ``runs:/`` URI of a run's checkpoint."""
    return f"runs:/{run_id}/{CHECKPOINT_DIR}/{CHECKPOINT_FILE}"


def download_checkpoint(run_id: str, destination: str | Path | None = None, tracking_uri: str | None = None) -> str:
    """Download a run's checkpoint (not yet verified: see :func:`ktt.model.read_checkpoint`).

    Returns
    -------
    str
        The local file.

    Raises
    ------
    KttError
        If it cannot be downloaded.
    """
    try:
        return mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=f"{CHECKPOINT_DIR}/{CHECKPOINT_FILE}",
            dst_path=None if destination is None else str(destination), tracking_uri=client(tracking_uri).tracking_uri)
    except (mlflow.exceptions.MlflowException, OSError) as error:
        reason = str(getattr(error, "message", None) or error).strip().splitlines()
        raise KttError(f"run {run_id} records a checkpoint, but {checkpoint_uri(run_id)} cannot be downloaded: "
                       f"{reason[0] if reason else type(error).__name__}") from None


def download_reference_set(run_id: str, destination: str | Path, tracking_uri: str | None = None) -> str | None:
    """Download a run's reference set (``reference=true``); None if it has none."""
    store = client(tracking_uri)
    if not any(a.path == REFERENCE_SET for a in store.list_artifacts(run_id, str(Path(REFERENCE_SET).parent))):
        return None
    return mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_SET,
                                               dst_path=str(destination), tracking_uri=store.tracking_uri)


def log_export(run_id: str, folder: str | Path, artifact_path: str, metrics: dict | None = None,
               tags: dict | None = None, tracking_uri: str | None = None) -> None:
    """Add an export to a run: ``folder``'s files under ``artifact_path``, then metrics and tags."""
    store = client(tracking_uri)
    store.log_artifacts(run_id, str(folder), artifact_path)
    for key, value in (metrics or {}).items():
        store.log_metric(run_id, key, value)
    set_tags(run_id, tags or {}, tracking_uri)


def set_tags(run_id: str, tags: dict, tracking_uri: str | None = None) -> None:
    """Set tags on a run."""
    store = client(tracking_uri)
    for key, value in tags.items():
        store.set_tag(run_id, key, value)
