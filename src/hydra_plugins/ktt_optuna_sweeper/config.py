"""The sweeper's config schema, registered as ``hydra/sweeper=ktt``.

No ``from __future__ import annotations`` here: Hydra's plugin scan runs this
module before it is in ``sys.modules``, where dataclasses look string annotations up.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class KttSweeperConf:
    """``hydra/sweeper=ktt``: a grid (every combination) or an Optuna search over ``params``."""

    _target_: str = "hydra_plugins.ktt_optuna_sweeper.sweeper.KttSweeper"
    # grid: every combination of the sweeps, like Hydra's basic sweeper; optuna: an Optuna study.
    search: str = "grid"
    # Sweeps declared in a config (key -> choice(...), a,b,c, range(...), interval(...), tag(log, ...))
    # or fixed values; the command line's overrides win over them.
    params: Dict[str, Any] = field(default_factory=dict)
    # optuna: parameters sampled only for some values of another, e.g. loss: {learner: [sgd]}.
    conditions: Dict[str, Any] = field(default_factory=dict)
    # maximize or minimize the value the task returns (also how ktt's summary ranks a grid).
    direction: str = "maximize"

    # --- grid
    # Jobs handed to the launcher at once (null: all).
    max_batch_size: Optional[int] = None

    # --- optuna
    # Trials this sweep runs (a resumed or shared study keeps its earlier trials).
    n_trials: int = 20
    # Trials asked at once and launched as one batch (parallel with joblib/submitit).
    n_jobs: int = 1
    # null: in memory; an SQLAlchemy URL (sqlite:///optuna.db, postgresql+psycopg://...) persists the study.
    storage: Optional[str] = None
    # The study to create or, with a storage, to resume or join.
    study_name: Optional[str] = None
    # Sampler seed (offset by the study's trial count, so a resumed study does not repeat itself).
    seed: Optional[int] = None
    # tpe or random.
    sampler: str = "tpe"


ConfigStore.instance().store(group="hydra/sweeper", name="ktt", node=KttSweeperConf, provider="ktt")
