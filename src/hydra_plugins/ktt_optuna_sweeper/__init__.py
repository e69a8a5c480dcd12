"""ktt's Hydra sweeper, shipped with ktt: ``hydra/sweeper=ktt`` (ktt's default).

- ``search: grid`` (the default): every combination of the sweeps, like Hydra's
  basic sweeper, except that a failed job does not stop the sweep: the others
  run and ktt's summary names it.
- ``search: optuna``: an Optuna (>= 4) study over a space declared in Hydra's
  override grammar, persistent, resumable and shareable through ``storage``
  (sqlite or PostgreSQL). It replaces hydra-optuna-sweeper 1.3, which pins
  optuna < 3 and whose RDB storage fails under SQLAlchemy 2.

Only the modules without a leading underscore are imported by Hydra's plugin
scan (on every ``python -m ktt``); Optuna is imported when a search starts.
"""

__version__ = "0.1.0"
