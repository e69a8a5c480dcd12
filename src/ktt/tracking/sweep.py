"""A sweep in MLflow: its parent run, the runs of jobs that failed early, and its summary.

The sweep's logic (which jobs ran, how they rank, what is printed) is in
:mod:`ktt.sweep`; these functions are its only reads and writes of the store.
Every function takes the :class:`~ktt.sweep.job.SweepParent` (or the tracking URI
it holds), because sweep jobs may run in other processes and on other machines.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param, RunStatus

from ktt.sweep.job import JOB_TAG, SWEEP_TAG, SweepParent
from ktt.tracking.runs import CHECKPOINT_DIR, PRUNED_TAG, client

#: MLflow's own tag for nested runs (what ``parent_run_id=`` sets).
PARENT_TAG = "mlflow.parentRunId"


def absolute_tracking_uri(uri: str | None) -> str:
    """The tracking URI ktt uses for ``uri`` (None: MLflow's default), with a relative sqlite path made absolute."""
    from ktt.tracking.store import configure

    configure(uri)
    resolved = mlflow.get_tracking_uri()
    prefix = "sqlite:///"
    if resolved.startswith(prefix) and not resolved.startswith(prefix + "/"):
        resolved = prefix + str(Path(resolved[len(prefix):]).resolve())
    return resolved


def create_parent_run(tracking_uri: str, experiment: str, run_name: str, tags: dict) -> tuple[str, str]:
    """Create the experiment (if new) and the sweep's RUNNING parent run, tagged ``ktt.sweep=<its id>``.

    Returns
    -------
    run_id, experiment_id : str
    """
    store = client(tracking_uri)
    found = store.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else store.create_experiment(experiment)
    run = store.create_run(experiment_id, run_name=run_name, tags=tags)
    store.set_tag(run.info.run_id, SWEEP_TAG, run.info.run_id)
    return run.info.run_id, experiment_id


def record_failed_job(parent: SweepParent, job: str, run_name: str, tags: dict) -> None:
    """A FAILED run for job number ``job`` under the parent, unless the job has a run already."""
    store = client(parent.tracking_uri)
    existing = store.search_runs(
        [experiment.experiment_id for experiment in store.search_experiments()],
        filter_string=f"tags.`{SWEEP_TAG}` = '{parent.run_id}' and tags.`{JOB_TAG}` = '{job}'",
        max_results=1,
    )
    if existing:
        return  # the job's own run recorded the failure
    run = store.create_run(parent.experiment_id, run_name=run_name, tags={PARENT_TAG: parent.run_id, **tags})
    store.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))


def child_runs(parent: SweepParent) -> list:
    """Every run nested under the parent, in any experiment."""
    store = client(parent.tracking_uri)
    experiment_ids = [e.experiment_id for e in store.search_experiments()]
    runs, token = [], None
    while True:
        page = store.search_runs(experiment_ids, filter_string=f"tags.`{PARENT_TAG}` = '{parent.run_id}'",
                                 max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def end_run(tracking_uri: str, run_id: str, status: str, error: str | None = None) -> None:
    """End a run with ``status`` (``FINISHED``, ``FAILED``, ``KILLED``) and, if given, its ``ktt.error`` tag."""
    from ktt.tracking import ERROR_TAG

    store = client(tracking_uri)
    if error is not None:
        store.set_tag(run_id, ERROR_TAG, error)
    store.set_terminated(run_id, status)


def tag_runs(tracking_uri: str, tags: dict[str, dict[str, str]]) -> None:
    """Set tags on several runs: run id -> its tags."""
    store = client(tracking_uri)
    for run_id, run_tags in tags.items():
        for key, value in run_tags.items():
            store.set_tag(run_id, key, value)


def run_params(tracking_uri: str, run_id: str) -> dict[str, str]:
    """A run's params."""
    return client(tracking_uri).get_run(run_id).data.params


def log_summary(parent: SweepParent, metrics: dict[str, float], params: dict[str, str],
                files: list[tuple[str, str | None]]) -> None:
    """The summary on the parent run: metrics, params and files (path, artifact folder or None)."""
    import time

    store = client(parent.tracking_uri)
    now = int(time.time() * 1000)
    store.log_batch(parent.run_id, metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()],
                    params=[Param(key[:250], str(value)[:6000]) for key, value in params.items()])
    for path, folder in files:
        store.log_artifact(parent.run_id, path, folder)


def prune_models(parent: SweepParent, ending_run_id: str | None = None) -> list[str]:
    """Delete the model files of the sweep's finished jobs worse than its best objective (``keep_models=best``).

    The checkpoint folder and the MLflow model of each such run are deleted; its
    metrics, params, plots and other artifacts stay, and a ``ktt.models_deleted``
    tag says why. Jobs tied with the best keep theirs, so the job the summary
    tags as best always has its model. Each job calls this as it ends (with its
    own, still RUNNING, run as ``ending_run_id``), so a search holds one model
    at a time rather than one per trial; the summary calls it once more, for
    jobs that ended together.

    Returns
    -------
    list of str
        The runs whose models were deleted by this call.
    """
    import math

    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    store = client(parent.tracking_uri)
    scored = []
    for run in child_runs(parent):
        value = run.data.metrics.get(parent.objective)
        if (run.info.status == "FINISHED" or run.info.run_id == ending_run_id) and value is not None \
                and not math.isnan(value):
            scored.append((run, value))
    if not scored:
        return []
    best = (max if parent.direction == "maximize" else min)(value for _, value in scored)
    pruned = []
    for run, value in scored:
        if value == best or PRUNED_TAG in run.data.tags:
            continue
        _again_if_raced(get_artifact_repository(run.info.artifact_uri).delete_artifacts, CHECKPOINT_DIR)
        for model in store.search_logged_models(experiment_ids=[run.info.experiment_id],
                                                filter_string=f"source_run_id = '{run.info.run_id}'"):
            _again_if_raced(get_artifact_repository(model.artifact_location).delete_artifacts)
            _again_if_raced(store.delete_logged_model, model.model_id)
        _again_if_raced(store.set_tag, run.info.run_id, PRUNED_TAG,
                        f"{parent.objective} {value:.6g} is worse than the sweep's best {best:.6g} (keep_models=best)")
        pruned.append(run.info.run_id)
    return pruned


def _again_if_raced(call, *args, attempts: int = 5) -> None:
    """``call(*args)``, tried again if it fails: another job may be pruning the same run.

    Jobs that end together prune the same worse run at the same moment (the tag that
    marks it pruned is set only after its files are gone), so a delete can fail on a
    file the other job removed first, and MLflow's sqlite store can refuse a tag the
    other job inserted first. Deleting what is gone does nothing and setting a tag
    again updates it, so the next attempt finishes the job.
    """
    import time

    for attempt in range(attempts):
        try:
            call(*args)
            return
        except (OSError, mlflow.exceptions.MlflowException):
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
