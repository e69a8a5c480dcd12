"""The launcher's config schema, registered as ``hydra/launcher=ray``.

No ``from __future__ import annotations`` here: Hydra's plugin scan runs this
module before it is in ``sys.modules``, where dataclasses look string annotations up.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class KttRayLauncherConf:
    """``hydra/launcher=ray``: every job of a sweep as one Ray task."""

    _target_: str = "hydra_plugins.ktt_ray_launcher.launcher.KttRayLauncher"
    # The Ray cluster: null starts a Ray instance inside the sweep's process (this machine only);
    # "auto" joins the cluster this machine belongs to (`ray start`), "<head>:6379" a cluster's head,
    # "ray://<head>:10001" connects through Ray Client.
    address: Optional[str] = None
    # Where each job runs (its relative paths: outputs, .ktt/cache, sqlite:///mlflow.db): null is the
    # sweep's working directory, which every node of a cluster must see at the same path.
    working_dir: Optional[str] = None
    # Options of ray.remote for each job: CPUs it holds (give the model as many: n_jobs), memory, resources.
    remote: Dict[str, Any] = field(default_factory=lambda: {"num_cpus": 1, "max_retries": 0})
    # More ray.init options (e.g. num_cpus for a local instance). Jobs' own logs are in their folders,
    # not echoed by Ray to the sweep's console.
    init: Dict[str, Any] = field(default_factory=lambda: {"log_to_driver": False})


ConfigStore.instance().store(group="hydra/launcher", name="ray", node=KttRayLauncherConf, provider="ktt")
