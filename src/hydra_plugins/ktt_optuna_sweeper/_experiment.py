"""The best trial of a search as a reusable ``experiment`` config.

Written to ``<sweep_dir>/experiment/best_<study>.yaml``, a ``# @package _global_``
config holding the trial's config-group choices (``override /model: ...``) and
its overrides as values, so that::

    python -m ktt -cd <sweep_dir> +experiment=best_<study>

trains and tests the best configuration (``-cd`` adds the sweep folder to the
config search path; copying the file into ``conf/experiment/`` makes it
permanent). Tuning-only settings of the ``hparams_search`` config (such as
``evaluate_test: false``) are not carried over.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

#: Config groups that describe the sweep, not the experiment.
SKIPPED_GROUPS = ("hparams_search", "experiment")


def experiment_name(study_name: str | None) -> str:
    """``best_<study name>``, with characters a config name cannot hold replaced by ``_``."""
    return "best_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", study_name or "study")


def experiment_config(overrides: list[str], choices: dict[str, str | None]) -> dict:
    """The experiment as a plain dict: a ``defaults`` list of group choices, then values.

    Parameters
    ----------
    overrides : list of str
        The trial's overrides (fixed ones and sampled parameters).
    choices : dict
        The trial's ``hydra.runtime.choices`` (group -> option).
    """
    defaults = [{f"override /{group}": option} for group, option in choices.items()
                if option is not None and not group.startswith("hydra") and group not in SKIPPED_GROUPS]
    values = OmegaConf.create()
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if key in choices or key.startswith("hydra") or override.is_delete():
            continue
        OmegaConf.update(values, key, override.value(), merge=True, force_add=True)
    return {"defaults": defaults, **OmegaConf.to_container(values)}


def write_experiment(sweeper, study_name: str | None, trial, sweep_dir: Path) -> Path | None:
    """Write the trial as ``<sweep_dir>/experiment/best_<study>.yaml`` and return its path."""
    overrides = trial.user_attrs.get("overrides")
    if not overrides:
        log.warning("Trial %d has no recorded overrides; not writing an experiment config", trial.number)
        return None
    job_config = sweeper.hydra_context.config_loader.load_sweep_config(sweeper.config, list(overrides))
    choices = OmegaConf.to_container(job_config.hydra.runtime.choices)
    name = experiment_name(study_name)
    body = OmegaConf.to_yaml(OmegaConf.create(experiment_config(overrides, choices)))
    header = (
        "# @package _global_\n"
        f"# Best trial ({trial.number}, value {trial.value:.6g}) of Optuna study {study_name!r}, written by ktt's sweeper.\n"
        f"# Train and test it:   python -m ktt -cd {sweep_dir.resolve()} +experiment={name}\n"
        f"# or copy this file to conf/experiment/ and run:   python -m ktt +experiment={name}\n"
    )
    path = sweep_dir / "experiment" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + body, encoding="utf-8")
    log.info("Best trial written as %s", path)
    return path
