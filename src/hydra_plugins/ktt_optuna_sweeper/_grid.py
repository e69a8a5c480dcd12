"""The grid: every combination of the sweeps, batch by batch, failures logged, not raised."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from hydra_plugins.ktt_optuna_sweeper._search_space import SearchSpaceError, as_override

log = logging.getLogger(__name__)


def failure_line(result: JobReturn) -> str:
    """A failed job's error in one line (:func:`ktt.errors.error_line`)."""
    from ktt.errors import error_line

    return error_line(result._return_value)


def run_grid(sweeper, arguments: List[str]) -> List[Sequence[JobReturn]]:
    """Launch every combination of ``sweeper.params`` and the command line's sweeps; return the batches' results."""
    lines = [f"{key}={value}" if isinstance(value, str) else as_override(key, value)
             for key, value in sweeper.params.items()] + list(arguments)
    parser = OverridesParser.create(config_loader=sweeper.hydra_context.config_loader)
    overrides = parser.parse_overrides(lines)
    for override in overrides:
        if override.is_sweep_override() and not override.is_discrete_sweep():
            raise SearchSpaceError(f"ktt: error: {override.input_line}: a grid needs a list of values; "
                                   "interval(...) is for hydra.sweeper.search=optuna")
    sweeper.overrides = sweeper.split_arguments(overrides, sweeper.max_batch_size)
    sweep_dir = Path(str(sweeper.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(sweeper.config, sweep_dir / "multirun.yaml")

    returns: List[Sequence[JobReturn]] = []
    initial_job_idx = 0
    while not sweeper.is_done():
        batch = sweeper.get_job_batch()
        sweeper.validate_batch_is_legal(batch)
        results = sweeper.launcher.launch(batch, initial_job_idx=initial_job_idx)
        for offset, result in enumerate(results):
            if result.status == JobStatus.FAILED:
                log.warning("Job %d failed: %s", initial_job_idx + offset, failure_line(result))
        initial_job_idx += len(batch)
        returns.append(results)
    return returns
