"""``hydra/sweeper=ktt``: a grid that keeps going when a job fails, or an Optuna search."""

from __future__ import annotations

from typing import Any, List, Mapping, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from omegaconf import OmegaConf

from hydra_plugins.ktt_optuna_sweeper import config  # noqa: F401 - registers hydra/sweeper=ktt
from hydra_plugins.ktt_optuna_sweeper._search_space import SearchSpaceError

SEARCHES = ("grid", "optuna")
DIRECTIONS = ("maximize", "minimize")
SAMPLERS = ("tpe", "random")


class KttSweeper(BasicSweeper):
    """Run the jobs of a sweep: every combination (``grid``) or Optuna's trials (``optuna``).

    Parameters
    ----------
    search : {"grid", "optuna"}
    params : mapping
        Sweeps (or fixed values) declared in the config, in Hydra's override
        grammar; the command line wins for the same key. For ``optuna`` they
        are the search space (see ``_search_space``).
    direction : {"maximize", "minimize"}
        What to do with the value the task returns (ktt: ``cfg.objective``).
    max_batch_size : int or None
        ``grid``: jobs handed to the launcher at once (None: all).
    n_trials : int
        ``optuna``: trials this sweep runs; a resumed or shared study keeps its earlier ones.
    n_jobs : int
        ``optuna``: trials asked at once and launched as one batch (in parallel
        with the joblib or submitit launchers).
    storage : str or None
        ``optuna``: None keeps the study in memory; an SQLAlchemy URL
        (``sqlite:///optuna.db``, ``postgresql+psycopg://user:pw@host/db``)
        persists it, so the same ``study_name`` and ``storage`` resume it (trial
        numbers continue) and several machines can join it.
    study_name : str or None
    seed : int or None
        Sampler seed, offset by the number of trials the study already has.
    sampler : {"tpe", "random"}
    conditions : mapping or None
        ``optuna``: parameters sampled only for some values of another
        (``{"loss": {"learner": ["sgd"]}}``); see ``_search_space``.

    Notes
    -----
    Hydra's basic sweeper re-raises the first failed job's error once its batch
    is done, which skips the remaining batches and the ``on_multirun_end``
    callbacks (ktt's summary). Here a failed job is logged (``grid``) or told to
    Optuna as a FAIL trial (``optuna``) and the sweep goes on.
    """

    def __init__(self, search: str = "grid", params: Optional[Mapping[str, Any]] = None,
                 direction: str = "maximize", max_batch_size: Optional[int] = None, n_trials: int = 20,
                 n_jobs: int = 1, storage: Optional[str] = None, study_name: Optional[str] = None,
                 seed: Optional[int] = None, sampler: str = "tpe",
                 conditions: Optional[Mapping[str, Any]] = None) -> None:
        if OmegaConf.is_config(params):
            params = OmegaConf.to_container(params, resolve=True)
        if OmegaConf.is_config(conditions):
            conditions = OmegaConf.to_container(conditions, resolve=True)
        self.conditions = dict(conditions or {})
        super().__init__(max_batch_size=max_batch_size, params=dict(params or {}))
        self.search = search
        self.direction = direction
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.storage = storage
        self.study_name = study_name
        self.seed = seed
        self.sampler = sampler

    def validate(self) -> None:
        """Check the settings; raise :class:`SearchSpaceError` (one line) on the first bad one."""
        for name, allowed in (("search", SEARCHES), ("direction", DIRECTIONS), ("sampler", SAMPLERS)):
            if getattr(self, name) not in allowed:
                raise SearchSpaceError(f"ktt: error: invalid hydra.sweeper.{name}={getattr(self, name)!r} "
                                       f"(allowed: {', '.join(allowed)})")
        for name, low in (("n_trials", 0), ("n_jobs", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise SearchSpaceError(f"ktt: error: invalid hydra.sweeper.{name}={value!r} (allowed: an integer >= {low})")

    def sweep(self, arguments: List[str]) -> Any:
        self.validate()
        if self.search == "optuna":
            from hydra_plugins.ktt_optuna_sweeper._search import run_search

            return run_search(self, arguments)
        from hydra_plugins.ktt_optuna_sweeper._grid import run_grid

        return run_grid(self, arguments)
