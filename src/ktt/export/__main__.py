"""``python -m ktt.export run_id=<id>|latest export=onnx|bento [overrides]``: export a past run.

The config is composed as for training (same groups and keys), so ``export.*``
options, ``tracking.uri`` and, for ``run_id=latest``, the model and dataset that
pick the run (the newest FINISHED run of ``model`` in the dataset's experiment)
are given the same way::

    python -m ktt.export run_id=3f2a... export=onnx
    python -m ktt.export run_id=latest dataset=file dataset.path=my.csv export=bento export.max_latency_ms=5000
"""

from __future__ import annotations

import logging
import sys

USAGE = __doc__.split("\n\n", 1)[1]


def main(argv: list[str] | None = None) -> None:
    """Parse ``run_id=``, compose the config from the other overrides, export, print one line."""
    from ktt.cli import fail, precheck, register_resolvers
    from ktt.errors import KttError

    argv = sys.argv[1:] if argv is None else list(argv)
    if any(arg in ("-h", "--help") for arg in argv):
        print("usage: python -m ktt.export run_id=<id>|latest export=onnx|bento [overrides]\n\n" + USAGE)
        return
    run_ids = [arg.split("=", 1)[1] for arg in argv if arg.startswith("run_id=")]
    overrides = [arg for arg in argv if not arg.startswith("run_id=")]
    if len(run_ids) != 1 or not run_ids[0]:
        fail("give one run_id=<MLflow run id> (or run_id=latest: the newest FINISHED run of the model and dataset)")
    register_resolvers()
    precheck(overrides)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    try:
        print(export(run_ids[0], overrides).summary)
    except KttError as error:
        fail(str(error))


def export(run_id: str, overrides: list[str]):
    """Export run ``run_id`` (or ``latest``) as the composed config's ``export`` says.

    Returns
    -------
    ktt.export.ExportResult
    """
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from ktt.cli import CONFIG_MODULE, CONFIG_NAME
    from ktt.errors import KttError
    from ktt.export.run import export_settings

    GlobalHydra.instance().clear()
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=overrides)
    GlobalHydra.instance().clear()
    settings = export_settings(cfg.export)
    if settings["format"] == "none":
        raise KttError("nothing to export: add export=onnx or export=bento")

    import mlflow  # slow to import: only once the config is known to be good

    from ktt import tracking
    from ktt.export.run import export_run, find_run

    tracking.configure(cfg.tracking.uri)
    client = mlflow.MlflowClient(mlflow.get_tracking_uri())
    experiment = cfg.tracking.experiment if run_id == "latest" else None
    run_id = find_run(client, run_id, experiment, cfg.model._target_)
    model = tracking.load_model(run_id)
    return export_run(model, settings, run_id)


if __name__ == "__main__":
    main()
