"""The MLflow Model Registry: register a run's model, and find the run behind a registered one.

``python -m ktt register=true`` registers the run's pyfunc model (``model/``, which
carries the checkpoint) as a new version of ``tracking.registered_model`` (default
``<model>-<dataset>``, e.g. ``tfidf_lsgd-icd10cm``); in a sweep only the best job is
registered. Each version is tagged with the run's test metrics, its data fingerprint
and its checkpoint's sha256 (:func:`register_model`).

Everything in ktt that takes a run also takes a registered version, ``models:/<name>/<version>``
or ``models:/<name>@<alias>`` (aliases such as ``champion`` replace the stages that MLflow
deprecated in 2.9); :func:`resolve_run` turns either into the run id. Loading the
checkpoint still verifies it against the run's sha256, and against the version's.
"""

from __future__ import annotations

import mlflow

from ktt.errors import KttError

REGISTRY_PREFIX = "models:/"
RUNS_PREFIX = "runs:/"
#: The pyfunc model's name in a run (``mlflow.pyfunc.log_model(name=...)``).
MODEL_NAME = "model"
#: Version tags: the checkpoint's sha256 (the name of the run's tag too) and the data fingerprint.
VERSION_SHA256_TAG = "ktt.checkpoint_sha256"
VERSION_FINGERPRINT_TAG = "ktt.data.fingerprint"
#: The run's param holding the data fingerprint (see :func:`ktt.tracking.log_dataset`).
FINGERPRINT_PARAM = "data.fingerprint"
#: The run's tag naming the registered version (``<name>/<version>``).
REGISTERED_TAG = "ktt.registered_model"


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``(name, version, alias)`` of ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.

    Raises
    ------
    KttError
        If ``uri`` has neither form.
    """
    reference = uri.removeprefix(REGISTRY_PREFIX)
    name, at, alias = reference.partition("@")
    version = None
    if not at:
        name, _, version = reference.rpartition("/")
    if not name or "/" in name or not (alias or version) or (version is not None and not version.isdigit()):
        raise KttError(f"invalid registered model {uri!r} (allowed: models:/<name>/<version> or "
                       "models:/<name>@<alias>)")
    return name, version, alias or None


def model_version(client, uri: str):
    """The registered version behind ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.

    Raises
    ------
    KttError
        If the URI is malformed or names no version.
    """
    name, version, alias = parse_model_uri(uri)
    try:
        return client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except mlflow.exceptions.MlflowException as error:
        if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            raise
        first = str(error.message).strip().splitlines()[0] if str(error.message).strip() else error.error_code
        raise KttError(f"no registered model {uri} in {client.tracking_uri} ({first})") from None


def resolve_run(reference: str, client=None, experiment: str | None = None, model_target: str | None = None) -> str:
    """The run id behind anything ktt accepts as a run.

    Parameters
    ----------
    reference : str
        A run id, ``runs:/<id>[/...]``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
        or ``latest``: the newest FINISHED run in ``experiment`` whose ``model._target_``
        param is ``model_target``.
    client : mlflow.MlflowClient, optional
        Default: a client of MLflow's current tracking URI.
    experiment, model_target : str, optional
        What ``latest`` looks for.

    Returns
    -------
    str

    Raises
    ------
    KttError
        If there is no such run or version.
    """
    client = client or mlflow.MlflowClient()
    reference = reference.strip()
    if reference.startswith(REGISTRY_PREFIX):
        found = model_version(client, reference)
        if not found.run_id:
            raise KttError(f"{reference} was not logged by a ktt run (its version has no run id); "
                           "give a run id instead")
        return found.run_id
    if reference == "latest":
        return latest_run(client, experiment, model_target)
    run_id = reference.removeprefix(RUNS_PREFIX).split("/")[0]
    try:
        return client.get_run(run_id).info.run_id
    except mlflow.exceptions.MlflowException as error:
        if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            raise
        raise KttError(f"no MLflow run {run_id!r} in {client.tracking_uri}") from None


def latest_run(client, experiment: str | None, model_target: str | None) -> str:
    """The newest FINISHED run of ``model_target`` (its ``model._target_`` param) in ``experiment``.

    Raises
    ------
    KttError
        If there is no such run.
    """
    found = client.get_experiment_by_name(experiment) if experiment else None
    if found is None:
        raise KttError(f"no MLflow experiment {experiment!r} in {client.tracking_uri}; "
                       "train first or pass run_id=<id>")
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"attributes.status = 'FINISHED' and params.`model._target_` = '{model_target}'",
        order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise KttError(f"no FINISHED run of {model_target} in experiment {experiment!r}; "
                       "train first or pass run_id=<id>")
    return runs[0].info.run_id


def check_version_sha256(client, reference: str, sha256: str | None) -> None:
    """For a ``models:/`` reference: the version's recorded sha256 must be the run's.

    Raises
    ------
    KttError
        If the version records another checkpoint than its run's.
    """
    if not reference.strip().startswith(REGISTRY_PREFIX):
        return
    recorded = model_version(client, reference.strip()).tags.get(VERSION_SHA256_TAG)
    if recorded is not None and recorded != sha256:
        raise KttError(f"{reference} records checkpoint sha256 {recorded[:12]}..., its run {sha256 and sha256[:12]}...; "
                       "the version does not hold its run's checkpoint: register the run again")


def logged_model_id(client, run_id: str) -> str:
    """The id of the pyfunc model (``model``) that run ``run_id`` logged.

    Raises
    ------
    KttError
        If the run logged no such model (it failed before, or is not a ktt run).
    """
    run = client.get_run(run_id)
    found = client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                        filter_string=f"source_run_id = '{run_id}' AND name = '{MODEL_NAME}'",
                                        max_results=1)
    if not found:
        raise KttError(f"run {run_id} logged no model named {MODEL_NAME!r}; nothing to register")
    return found[0].model_id


def version_tags(run) -> dict[str, str]:
    """The tags of a run's registered version: its test metrics, data fingerprint and checkpoint sha256."""
    tags = {name: repr(float(value)) for name, value in sorted(run.data.metrics.items()) if name.startswith("test_")}
    if FINGERPRINT_PARAM in run.data.params:
        tags[VERSION_FINGERPRINT_TAG] = run.data.params[FINGERPRINT_PARAM]
    if VERSION_SHA256_TAG in run.data.tags:
        tags[VERSION_SHA256_TAG] = run.data.tags[VERSION_SHA256_TAG]
    return tags


def register_model(run_id: str, name: str, client=None):
    """Register run ``run_id``'s pyfunc model as a new version of ``name`` (created if new).

    The version is tagged with :func:`version_tags`, and the run with
    ``ktt.registered_model=<name>/<version>``.

    Parameters
    ----------
    run_id : str
    name : str
        The registered model (``tracking.registered_model``).
    client : mlflow.MlflowClient, optional
        Default: a client of MLflow's current tracking URI.

    Returns
    -------
    mlflow.entities.model_registry.ModelVersion
    """
    client = client or mlflow.MlflowClient()
    if not name or not str(name).strip():
        raise KttError("tracking.registered_model is empty; give the registered model a name")
    run = client.get_run(run_id)
    model_id = logged_model_id(client, run_id)
    try:
        client.create_registered_model(name)
    except mlflow.exceptions.MlflowException as error:
        if error.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    version = client.create_model_version(name, source=f"{REGISTRY_PREFIX}{model_id}", run_id=run_id,
                                          tags=version_tags(run), model_id=model_id)
    client.set_tag(run_id, REGISTERED_TAG, f"{name}/{version.version}")
    return version
