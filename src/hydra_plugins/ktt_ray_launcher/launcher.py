"""The launcher class Hydra instantiates for ``hydra/launcher=ray`` (Ray is imported in :mod:`._core`)."""

from typing import Any, Dict, Optional, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class KttRayLauncher(Launcher):
    """Run each job of a sweep as a Ray task (see :class:`~hydra_plugins.ktt_ray_launcher.config.KttRayLauncherConf`)."""

    def __init__(self, address: Optional[str] = None, working_dir: Optional[str] = None,
                 remote: Optional[Dict[str, Any]] = None, init: Optional[Dict[str, Any]] = None) -> None:
        self.address = address
        self.working_dir = working_dir
        self.remote = dict(remote or {})
        self.init = dict(init or {})
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hydra_plugins.ktt_ray_launcher import _core

        return _core.launch(self, job_overrides, initial_job_idx)
