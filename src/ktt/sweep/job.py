"""The job side of a sweep: which parent run a job's MLflow run belongs to.

:class:`~ktt.sweep.callback.SweepCallback` creates the sweep's parent run in the
process that starts the sweep and hands a :class:`SweepParent` to every job
through Hydra's ``on_job_start`` (the callback travels with the job to joblib
and submitit workers). :func:`run_args` turns it into the ``parent_run_id`` and
tags of the job's run; :func:`record_failure` gives a job that failed before it
opened its run a FAILED run anyway, so every job of a sweep is in MLflow.

Nothing here imports MLflow at module level: Hydra instantiates the callback
for every run, sweep or not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

#: On the parent and on every job: the parent run's id (``tags.`ktt.sweep` = '<id>'`` finds a whole sweep).
SWEEP_TAG = "ktt.sweep"
#: ``parent`` or ``job``.
ROLE_TAG = "ktt.sweep.role"
#: On a job: its Hydra job number in the sweep.
JOB_TAG = "ktt.sweep.job"
#: On a job: its overrides, a JSON list of strings.
OVERRIDES_TAG = "ktt.sweep.overrides"
#: On the sweep's best job: ``true``.
BEST_TAG = "ktt.sweep.best"


@dataclass(frozen=True)
class SweepParent:
    """What a job needs to know about its sweep (plain strings: it is pickled to workers).

    Attributes
    ----------
    run_id, experiment_id : str
        The parent run and its experiment.
    tracking_uri : str
        The tracking store, made absolute (a relative sqlite path resolved in the sweep's cwd).
    sweep_dir : str
        Hydra's sweep output folder.
    objective : str
        The metric the summary ranks by (``cfg.objective``).
    direction : str
        ``maximize`` or ``minimize``.
    launcher : str
        Hydra's launcher choice (``basic``, ``joblib``, ``submitit_local``, ...).
    fixed_keys : tuple of str
        Keys every job gets the same value for (the summary shows the others).
    keep_models : str
        ``best``: the model files of jobs worse than the sweep's best are deleted as
        the sweep goes (:func:`ktt.tracking.sweep.prune_models`); ``all`` keeps every job's.
    """

    run_id: str
    experiment_id: str
    tracking_uri: str
    sweep_dir: str
    objective: str
    direction: str = "maximize"
    launcher: str = "basic"
    fixed_keys: tuple[str, ...] = ()
    keep_models: str = "all"


_current: SweepParent | None = None


def enter(parent: SweepParent | None) -> None:
    """Make ``parent`` the sweep of the job about to run in this process (None: not in a sweep)."""
    global _current
    _current = parent


def current() -> SweepParent | None:
    """The sweep of the running job, or None outside a sweep."""
    return _current


def job_tags(hydra_cfg) -> dict[str, str]:
    """The sweep tags of a job, from its Hydra config (``HydraConfig.get()``)."""
    from ktt.secrets import mask_text

    parent = current()
    if parent is None:
        return {}
    return {
        SWEEP_TAG: parent.run_id,
        ROLE_TAG: "job",
        JOB_TAG: str(hydra_cfg.job.num),
        OVERRIDES_TAG: mask_text(json.dumps(list(hydra_cfg.overrides.task)))[:5000],
    }


def run_args() -> dict:
    """Keyword arguments for the job's run (:func:`ktt.tracking.start_run`): ``parent_run_id`` and the sweep tags.

    Returns
    -------
    dict
        Empty outside a sweep (a plain run, or a multirun without the callback).
    """
    parent = current()
    if parent is None:
        return {}
    from hydra.core.hydra_config import HydraConfig

    return {"parent_run_id": parent.run_id, "tags": job_tags(HydraConfig.get())}


def record_failure(config, error: BaseException) -> None:
    """Give a failed job a FAILED run under the parent if it failed before opening its own.

    Parameters
    ----------
    config : DictConfig
        The job's config (with its ``hydra`` node).
    error : BaseException
        What the job raised; its line (:func:`ktt.errors.error_line`) becomes the ``ktt.error`` tag.
    """
    parent = current()
    if parent is None:
        return
    from ktt.errors import error_line
    from ktt.tracking import ERROR_TAG
    from ktt.tracking.sweep import record_failed_job

    num = str(config.hydra.job.num)
    record_failed_job(parent, num, f"job {num}", {**job_tags(config.hydra), ERROR_TAG: error_line(error)[:5000]})
