"""Sweeps and tuning: ``python -m ktt -m ...`` as one tracked, summarised sweep.

- :mod:`ktt.sweep.callback`: the Hydra callback (``hydra.callbacks.sweep`` in
  ``conf/config.yaml``) that warms the data cache, creates the MLflow parent run,
  nests each job's run under it and prints the summary;
- :mod:`ktt.sweep.job`: what a job's run learns about its sweep (``parent_run_id``, tags);
- :mod:`ktt.sweep.cache`, :mod:`ktt.sweep.parent`, :mod:`ktt.sweep.summary`: one step each.

The sweepers themselves (a grid sweeper that keeps going when a job fails, and an
Optuna search) are Hydra plugins in ``hydra_plugins/ktt_optuna_sweeper``.
"""

from ktt.sweep.callback import SweepCallback

__all__ = ["SweepCallback"]
