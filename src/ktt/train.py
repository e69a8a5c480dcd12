"""The training recipe behind ``python -m ktt``.

Data flows one way: dataset config -> adapter -> intermediate dataset (cached)
-> preprocessed loaders (cached) -> model.fit -> model.test -> metrics -> MLflow
run. Each arrow is one call below.

The plots are drawn in a child process (:class:`ktt.plots.BackgroundPlots`)
while the metrics are computed and the checkpoint is logged, on the core that
the single-threaded steps after the fit leave idle. Every MLflow call goes
through :mod:`ktt.tracking`; docs/benchmarks.md has what this order costs and
what was tried instead.
"""

from __future__ import annotations

import contextlib
import logging
import re

from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ktt import tracking
from ktt.data.loaders import get_loaders
from ktt.errors import InvalidParameter, KttError
from ktt.export import export_run, export_settings
from ktt.metrics import get_metrics
from ktt.plots import BackgroundPlots
from ktt.progress import stage
from ktt.stopping import check_setting as check_stop_setting
from ktt.sweep import job as sweep_job
from ktt.sweep.parent import check_keep_models

log = logging.getLogger("ktt")


def train(cfg: DictConfig) -> float:
    """Adapt the dataset, fit and test the model, and track it all in one MLflow run.

    Parameters
    ----------
    cfg : DictConfig
        The composed config (see ``conf/config.yaml``).

    Returns
    -------
    float
        The value of ``cfg.objective`` (what a sweep optimises).
    """
    model = instantiate(cfg.model, _convert_="all")
    try:
        model.validate_params()  # bad hyperparameters fail here, before any data is read
    except InvalidParameter as error:
        raise error.renamed(_setting_of(cfg.model, error.name)) from None
    predict_threshold = cfg.predict_threshold
    if OmegaConf.is_config(predict_threshold):  # a list of one threshold per level
        predict_threshold = OmegaConf.to_object(predict_threshold)
    check_stop_setting(predict_threshold, cfg.threshold_precision)
    check_keep_models(cfg.get("keep_models", "all"))
    adapter = instantiate(cfg.dataset, _convert_="all")
    adapter.validate()
    export = export_settings(cfg.export)  # bad export options fail here too, before any data is read
    evaluate_test = cfg.get("evaluate_test", True)  # false while tuning: the test split is never read
    if cfg.reference and cfg.reference_split == "test" and not evaluate_test:
        raise KttError("reference_split=test needs evaluate_test=true; use reference_split=val while tuning")

    tracking.configure(cfg.tracking.uri)
    timings: dict[str, float] = {}
    with tracking.start_run(cfg.tracking.experiment, cfg.tracking.run_name, **sweep_job.run_args()) as run, \
            contextlib.ExitStack() as cleanup:
        tracking.log_config(cfg)
        tracking.log_environment()
        with stage("adapting data", timings, progress=cfg.progress):
            dataset = adapter.adapt(cfg.paths.cache_dir)
        tracking.log_dataset(dataset)
        with stage("preprocessing", timings):
            train_loader, val_loader, test_loader = get_loaders(dataset, progress=cfg.progress, test=evaluate_test)
        hierarchy = dataset.hierarchy

        with stage(f"fitting {cfg.tracking.run_name}", timings, progress=cfg.progress):
            model.fit(train_loader, val_loader, hierarchy=hierarchy)
        tracking.log_params({f"fitted_{name}": value for name, value in model.fitted_settings().items()})
        if predict_threshold is not None:  # stop above the leaf when unsure (ktt.stopping)
            model.fit_stop_thresholds(predict_threshold, val_loader, cfg.threshold_precision)
            tracking.log_params({f"stop_threshold_level{k}": float(t)
                                 for k, t in enumerate(model.stop_thresholds_, start=1)})
        plots = cleanup.enter_context(BackgroundPlots()) if cfg.plots else None
        with stage("testing", timings):
            splits = [(prefix, loader) for prefix, loader in (("val_", val_loader), ("test_", test_loader))
                      if loader is not None and len(loader.texts)]  # no val split, or tuning: no test split
            metrics = {}
            for prefix, loader in splits:
                output = model.test(loader)
                if plots is not None and prefix == splits[-1][0]:  # the test split's, or else the val split's
                    plots.draw(output, hierarchy)
                metrics.update(get_metrics(output, hierarchy, prefix=prefix))
                del output  # one split's scores (rows x leaves) at a time
        tracking.log_metrics(metrics | {f"time_{name.split()[0]}_s": t for name, t in timings.items()})
        if cfg.objective not in metrics:
            raise KttError(f"objective {cfg.objective!r} is not a computed metric (e.g. {', '.join(sorted(metrics)[:4])})")

        tracking.log_model(model, hierarchy)
        if cfg.reference:
            with stage("generating the reference set"):
                loader = {"train": train_loader, "val": val_loader, "test": test_loader}[cfg.reference_split]
                tracking.log_frame(model.gen_reference_set(loader), "reference/reference_set.parquet")
        if export["format"] != "none":
            with stage(f"exporting ({export['format']})"):
                check_loader = test_loader if test_loader is not None else val_loader
                exported = export_run(model, export, run.info.run_id, texts=check_loader.texts or None)
            log.info(exported.summary)
        if plots is not None:
            with stage("plotting"):  # only the wait: they were drawn while the steps above ran
                tracking.log_plots(plots.wait())
        tracking.log_hydra_files(HydraConfig.get().runtime.output_dir)
        sweep = sweep_job.current()
        if sweep is not None and sweep.keep_models == "best":
            from ktt.tracking.sweep import prune_models

            if run.info.run_id in prune_models(sweep, run.info.run_id):
                log.info("Deleted this job's model files: it is worse than the sweep's best (keep_models=best)")
        if cfg.register and sweep_job.current() is None:  # in a sweep, the summary registers the best job
            with stage("registering the model"):
                version = tracking.register_model(run.info.run_id, cfg.tracking.registered_model)
            log.info("Registered as models:/%s/%s", version.name, version.version)
        report(metrics, run)
    return float(metrics[cfg.objective])


def _setting_of(model_config: DictConfig, parameter: str) -> str:
    """The config key a user sets for a model parameter: ``seed`` for ``random_state: ${seed}``."""
    raw = OmegaConf.to_container(model_config, resolve=False).get(parameter)
    found = re.fullmatch(r"\$\{([\w.]+)\}", raw) if isinstance(raw, str) else None
    return found.group(1) if found else f"model.{parameter}"


def report(metrics: dict[str, float], run) -> None:
    """Print the metrics table and where the run is."""
    from ktt.metrics import format_table

    print(format_table(metrics))
    print(tracking.ui_hint(run))
