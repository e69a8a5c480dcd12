"""The sweep's parent run, created once in the process that starts the sweep.

Creating the store, the experiment and the parent run here, before any job
starts, is what keeps a fresh sqlite store consistent when parallel jobs open
it at once (they would otherwise race on its schema and on the experiment).
Jobs then only add their runs, nested under the parent with ``parent_run_id``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ktt.sweep.cache import sweep_keys
from ktt.sweep.job import ROLE_TAG, SweepParent

log = logging.getLogger(__name__)

#: The parent's experiment when the sweep's config cannot name one.
FALLBACK_EXPERIMENT = "ktt-sweeps"
SWEEP_DIR_TAG = "ktt.sweep.dir"
SWEEPER_TAG = "ktt.sweep.sweeper"
LAUNCHER_TAG = "ktt.sweep.launcher"
OBJECTIVE_TAG = "ktt.sweep.objective"
SWEEP_OVERRIDES_TAG = "ktt.sweep.overrides"
#: ``keep_models``: every job's model files, or only those of the sweep's best job(s).
KEEP_MODELS = ("best", "all")


def direction_of(cfg: DictConfig) -> str:
    """``maximize`` unless the sweeper says ``direction: minimize`` (ktt's metrics are all higher-is-better)."""
    direction = OmegaConf.select(cfg, "hydra.sweeper.direction", default=None)
    return "minimize" if str(direction).lower() == "minimize" else "maximize"


def start_parent(cfg: DictConfig) -> SweepParent:
    """Create the experiment (if new) and a RUNNING parent run for the sweep.

    Parameters
    ----------
    cfg : DictConfig
        The sweep's config (``on_multirun_start``): its ``tracking`` node names
        the store and the experiment, ``hydra`` the sweep.

    Returns
    -------
    SweepParent
    """
    from ktt.secrets import mask_text
    from ktt.tracking.sweep import absolute_tracking_uri, create_parent_run

    uri = absolute_tracking_uri(cfg.tracking.uri)
    # a sweep over dataset.path leaves the sweep's own experiment name unresolved: its jobs keep theirs
    name = OmegaConf.select(cfg, "tracking.experiment", default=None, throw_on_resolution_failure=False,
                            throw_on_missing=False) or FALLBACK_EXPERIMENT
    name = str(name)

    choices = cfg.hydra.runtime.choices
    search = choices.get("hparams_search")
    sweep_dir = str(Path(str(cfg.hydra.sweep.dir)).resolve())
    launcher = str(choices.get("hydra/launcher", "basic"))
    tags = {
        ROLE_TAG: "parent",
        SWEEP_DIR_TAG: sweep_dir,
        SWEEPER_TAG: str(choices.get("hydra/sweeper", "")),
        LAUNCHER_TAG: launcher,
        OBJECTIVE_TAG: str(cfg.objective),
        SWEEP_OVERRIDES_TAG: mask_text(json.dumps(list(cfg.hydra.overrides.task))),
    }
    if search:
        tags["ktt.sweep.hparams_search"] = str(search)
    run_id, experiment_id = create_parent_run(uri, name, f"sweep {search}" if search else "sweep", tags)
    log.info("Sweep parent run %s in experiment %r (%s)", run_id, name, mask_text(uri))
    return SweepParent(
        run_id=run_id,
        experiment_id=experiment_id,
        tracking_uri=uri,
        sweep_dir=sweep_dir,
        objective=str(cfg.objective),
        direction=direction_of(cfg),
        launcher=launcher,
        fixed_keys=tuple(sorted(sweep_keys(cfg)[1])),
        keep_models=check_keep_models(cfg.get("keep_models", "all")),
    )


def check_keep_models(value) -> str:
    """``keep_models``, or a one-line error naming the allowed values."""
    from ktt.errors import KttError

    if value not in KEEP_MODELS:
        raise KttError(f"invalid keep_models={value!r} (allowed: {', '.join(KEEP_MODELS)})")
    return str(value)
