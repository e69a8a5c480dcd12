"""Launch a batch of jobs as Ray tasks and wait for their results.

The sweep's process composes each job's config (as Hydra's other launchers do)
and sends it, with the task function, Hydra's context (ktt's sweep callback and
its parent run included) and Hydra's global state, to one Ray task per job. The
task moves to the sweep's working directory, takes the driver's ``KTT_*``,
``MLFLOW_*`` and ``HYDRA_*`` variables and runs the job with Hydra's ``run_job``,
so the job's folder, log and callbacks are those of any other launcher.
"""

import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)

#: Environment variables of the sweep's process that every job gets.
FORWARDED_ENV = ("KTT_", "MLFLOW_", "HYDRA_")


def forwarded_env() -> Dict[str, str]:
    """The driver's ``KTT_*``, ``MLFLOW_*`` and ``HYDRA_*`` variables."""
    return {key: value for key, value in os.environ.items() if key.startswith(FORWARDED_ENV)}


def execute_job(sweep_config: DictConfig, hydra_context, task_function, singleton_state: Dict[Any, Any],
                working_dir: str, env: Dict[str, str]) -> JobReturn:
    """Run one job in a Ray worker: the sweep's folder and variables, Hydra's state, then ``run_job``.

    The forwarded variables become exactly the driver's: a worker process is reused across
    tasks and inherits the cluster's own environment, and MLflow's ``set_tracking_uri``
    writes ``MLFLOW_TRACKING_URI`` into it, so a stale value would redirect the job's runs.
    """
    os.chdir(working_dir)
    for key in [key for key in os.environ if key.startswith(FORWARDED_ENV) and key not in env]:
        del os.environ[key]
    os.environ.update(env)
    setup_globals()
    Singleton.set_state(singleton_state)
    HydraConfig.instance().set_config(sweep_config)
    return run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


def start_ray(launcher) -> None:
    """Join the configured cluster, or start a local instance, unless this process is connected already."""
    import ray

    if ray.is_initialized():
        return
    options = {"address": launcher.address, **launcher.init}
    options.setdefault("logging_level", logging.WARNING)
    log.info("Connecting to Ray (%s)", launcher.address or "a local instance")
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError) as error:  # down, or its token is not ours
        from ktt.errors import KttError

        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        where = launcher.address or "a local instance"
        raise KttError(f"cannot connect to the Ray cluster at {where} ({reason}); start it (ray start --head), fix "
                       "hydra.launcher.address, and give this process the cluster's token if it uses one "
                       "(RAY_AUTH_MODE=token with RAY_AUTH_TOKEN or ~/.ray/auth_token)") from None


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
    """Run the batch as Ray tasks, all at once (Ray queues those its CPUs cannot take yet); results in order."""
    import ray

    setup_globals()
    assert launcher.config is not None and launcher.hydra_context is not None and launcher.task_function is not None
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    start_ray(launcher)
    working_dir = str(Path(launcher.working_dir or os.getcwd()).resolve())
    remote = ray.remote(**launcher.remote)(execute_job) if launcher.remote else ray.remote(execute_job)
    log.info("Ray launcher: %d job(s), sweep output dir %s, working dir %s", len(job_overrides), sweep_dir,
             working_dir)
    state, env = Singleton.get_state(), forwarded_env()
    pending: List[Any] = []
    configs: List[DictConfig] = []
    for offset, overrides in enumerate(job_overrides):
        idx = initial_job_idx + offset
        log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        sweep_config = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
            sweep_config.hydra.job.num = idx
        configs.append(sweep_config)
        pending.append(remote.remote(sweep_config, launcher.hydra_context, launcher.task_function, state,
                                     working_dir, env))
    try:
        return [result(ref, sweep_config) for ref, sweep_config in zip(pending, configs)]
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


def result(ref, sweep_config: DictConfig) -> JobReturn:
    """A task's JobReturn; a task that Ray itself lost (its worker or node died) is a FAILED job, not a crashed sweep."""
    import ray
    from hydra.core.utils import JobStatus

    try:
        return ray.get(ref)
    except ray.exceptions.RayError as error:
        log.error("job %s: Ray lost its task: %s", sweep_config.hydra.job.num, str(error).strip().splitlines()[0])
        failed = JobReturn(overrides=list(sweep_config.hydra.overrides.task), cfg=sweep_config,
                           hydra_cfg=sweep_config, status=JobStatus.FAILED)
        failed._return_value = error
        return failed
