"""Warm the data cache once, in the process that starts a sweep.

Every job of a sweep would otherwise adapt and preprocess the same data at the
same time (the cache's writes are atomic, so that is only wasted work). The
sweep's own config (its non-swept values) names the data of every job unless
the sweep changes the data itself (a ``dataset.*``, ``seed`` or ``paths.*``
key): then each job adapts its own, as in a plain run.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

#: Keys whose change changes the adapted data (``dataset.seed`` is ``${seed}``).
DATA_KEYS = ("dataset", "seed", "paths")


def sweep_keys(cfg: DictConfig) -> tuple[set[str], set[str]]:
    """The keys a sweep varies and the keys it fixes, from its overrides and the sweeper's ``params``.

    Returns
    -------
    swept, fixed : set of str
        Keys (without ``+``/``~``) with several values, and keys with one value for every job.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = list(cfg.hydra.overrides.task)
    params = OmegaConf.select(cfg, "hydra.sweeper.params")
    if params:
        lines = [f"{key}={value}" for key, value in params.items()] + lines
    swept, fixed = set(), set()
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.key_or_group.lstrip("+~")
        swept.discard(key)
        fixed.discard(key)
        (swept if override.is_sweep_override() else fixed).add(key)
    return swept, fixed


def changes_data(key: str) -> bool:
    """Whether a key (``dataset.proportion``, ``dataset``, ``seed``) shapes the adapted data."""
    return any(key == name or key.startswith(name + ".") or key.startswith(name + "/") for name in DATA_KEYS)


def warm_cache(cfg: DictConfig) -> bool:
    """Adapt and preprocess the sweep's data into ``cfg.paths.cache_dir`` unless the sweep changes it.

    Only the splits the jobs read are preprocessed: with ``evaluate_test: false``
    (tuning) the test split is not read here either.

    Parameters
    ----------
    cfg : DictConfig
        The sweep's config, as Hydra hands it to ``on_multirun_start``.

    Returns
    -------
    bool
        Whether the cache was warmed. Errors are logged, not raised: the jobs
        then meet them and fail one by one, named in the summary.
    """
    data_keys = sorted(key for key in sweep_keys(cfg)[0] if changes_data(key))
    if data_keys:
        log.info("Not warming the data cache: the sweep changes %s; each job adapts its own", ", ".join(data_keys))
        return False
    from hydra.utils import instantiate

    from ktt.progress import stage

    try:
        adapter = instantiate(cfg.dataset, _convert_="all")
        with stage("warming the data cache for the sweep's jobs"):
            dataset = adapter.adapt(cfg.paths.cache_dir)
            splits = ("train", "val", "test") if cfg.get("evaluate_test", True) else ("train", "val")
            for split in splits:
                dataset.preprocessed_texts(split, progress=bool(cfg.get("progress", False)))
    except Exception as error:  # noqa: BLE001 - any error is the jobs' to report
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        log.warning("Not warming the data cache: %s", message)
        return False
    return True
