"""ktt's Hydra launcher on Ray, shipped with ktt: ``hydra/launcher=ray``.

Each job of a sweep (a grid or an Optuna batch) is one Ray task, on a local Ray
instance or on a Ray cluster (``hydra.launcher.address``). It is ktt's own,
written on Ray's core API (``ray.init``, ``ray.remote``, ``ray.get``), because the
PyPI ``hydra-ray-launcher`` (1.2.2) cannot be installed beside ktt: it pins
``cloudpickle<3`` (ktt's MLflow and BentoML run on cloudpickle 3) and requires
``ray[default]`` and ``boto3`` for its AWS autoscaler mode. The launcher here does
what its local mode does, plus what ktt's jobs need on a cluster: every job starts
in the sweep's working directory (shared by the nodes, as with SLURM) with the
driver's ``KTT_*``, ``MLFLOW_*`` and ``HYDRA_*`` variables.

Only the modules without a leading underscore are imported by Hydra's plugin
scan (on every ``python -m ktt``); Ray is imported when a sweep launches.
"""

__version__ = "0.1.0"
